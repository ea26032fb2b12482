"""The build server: the builder imported once, a process forked for each ``report build``
that :mod:`report.daemon.client` hands it.

A build from the command line starts one when none is running, after its own build; it
listens on a Linux abstract socket named by the user, the pool and the builder (its files and Python:
:func:`report.daemon.settings.builder_stamp`), answers only processes of its own user, and exits when it
has had no build for ``REPORT_KEEP_WORKERS`` seconds or the builder changed.

Forking is safe here because the server starts no thread and never loads WeasyPrint (the PDF
workers are spawned, by the forked child): it imports, and between builds reads into memory the
chapters of the report it last built, as the cache has them parsed, and its last EPUB's pages
(a child whose build succeeded tells it the report's folder on a pipe, as the command that
started it does on its command line; :func:`report.build.keep_last_build`), a step at a time,
never while a build runs, so that the builds it forks find them. Each child takes the
command's standard streams, working folder, environment and umask, then runs it as the command
itself would (:func:`report.cli.run`); the server sends the command its process id (to pass
Ctrl-C on) and, once the child has ended, its exit status. A command that goes away (its
terminal closed) has its child interrupted, as Ctrl-C would.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import math
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from setproctitle import setproctitle

from report.cache import read_builder_files
from report.daemon.client import STATUS, read_exactly, server_address
from report.daemon.settings import CHECK_SECONDS, SERVER_KIND, builder_stamp, peer, set_title
from report.errors import ExitCode
from report.faults import fault_point

_REQUEST_SECONDS = 2.0  # a command that connects and does not ask within this is dropped
# What a build imports on its way (most of them lazily, as it needs them: see report.build).
_PRELOADED = (
    "report.cli",
    "report.check",
    "report.load",
    "report.resolve",
    "report.parse",
    "report.assemble",
    "report.render.pdf",
    "report.render.epub",
    "report.bibliography",  # (and citeproc: 10-20 ms a build of a report with citations)
    "jinja2",
    "uharfbuzz",
    "PIL.Image",
    "ctypes",  # (the server's own: see _die_with_server)
    "report.daemon.pool",
)
_PR_SET_PDEATHSIG = 1  # prctl(2)


def serve(pool: str, stamp: str, keep: str, *built: str) -> None:
    """Serve the builds of ``pool`` run by builder ``stamp`` until none has come for ``keep``
    seconds; ``built``: the folder of the report the command that started it built, whose last
    build it reads into memory first."""
    os.chdir("/")  # not keep the folder of the build that started it
    sys.path[:] = [entry for entry in sys.path if entry not in ("", ".")]  # a command's folder is not a source
    for module in _PRELOADED:
        importlib.import_module(module)
    read_builder_files()  # what every build hashes for its cache keys
    # What the server loaded lives as long as it: out of the forked builds' collections (a full
    # one went over all of it, 25 ms of a build at 600 pages), and never copied into a build by
    # a collection writing to it (the standard library's advice for a process that forks).
    gc.freeze()
    if builder_stamp() != stamp or threading.active_count() > 1:  # changed meanwhile; forking is unsafe
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(server_address(pool, stamp))
    except OSError:  # one is already running
        return
    listener.listen(16)
    server = Server(listener, pool, stamp, float(keep))
    server.to_keep = Path(built[-1]) if built else None
    server.run()


class Server:
    def __init__(self, listener: socket.socket, pool: str, stamp: str, keep: float) -> None:
        self.listener = listener
        self.pool = pool
        self.stamp = stamp
        self.keep = keep
        self.pid = os.getpid()
        self.running: dict[int, socket.socket] = {}  # child process → its command's connection
        # Each child's pipe, on which its build tells the report's folder once it has succeeded:
        # the chapters and EPUB pages of the last such report are then read into memory
        # (report.build.keep_last_build) while no build runs, for the next builds to find.
        self.told: dict[int, bytearray] = {}  # the pipe's end → what came so far
        self.to_keep: Path | None = None
        self.keeping: Generator[None, None, None] | None = None
        self.builder_checked, self.builder_same = -math.inf, True  # see _same_builder
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        # A child's end wakes the loop: SIGCHLD writes to this pipe.
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)

    def run(self) -> None:
        last_build = time.monotonic()
        busy = self.to_keep is not None  # reading the report the command that started it built
        set_title(SERVER_KIND, self.pool, None if busy else time.time())
        while self.running or (time.monotonic() - last_build < self.keep and self._same_builder()):
            keeping = not self.running and (self.to_keep is not None or self.keeping is not None)
            for key, _ in self.selector.select(timeout=0 if keeping else CHECK_SECONDS):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj == self.wake_read:
                    os.read(self.wake_read, 512)
                elif key.fileobj in self.told:
                    self._read_told(key.fileobj)
                else:
                    self._gone(key.fileobj, key.data)
            if self._reap():
                last_build = time.monotonic()
            if not self.running:
                self._keep_step()
            # Busy while a build runs, and until the chapters of the report it built are read.
            now_busy = bool(self.running or self.told or self.to_keep is not None or self.keeping is not None)
            if now_busy != busy:
                busy = now_busy
                set_title(SERVER_KIND, self.pool, None if busy else time.time())

    def _same_builder(self) -> bool:
        """Whether the builder's files are still those the server was started from: looked at
        once every CHECK_SECONDS, not at every turn of the loop (reading a report's last build
        between builds turns it once a step, 551 times for the 596-page bench report)."""
        now = time.monotonic()
        if now - self.builder_checked >= CHECK_SECONDS:
            self.builder_checked, self.builder_same = now, builder_stamp() == self.stamp
        return self.builder_same

    def _read_told(self, pipe: int) -> None:
        """A build's child told the folder of the report it built (at its end: EOF)."""
        data = os.read(pipe, 4096)
        if data:
            self.told[pipe] += data
            return
        self.selector.unregister(pipe)
        os.close(pipe)
        told = bytes(self.told.pop(pipe)).splitlines()
        if told:
            self.to_keep = Path(os.fsdecode(told[-1]))

    def _keep_step(self) -> None:
        """One step of reading a report's last build into memory (a new report told replaces
        the one being read). A report that cannot be read (changed meanwhile, say) is left to
        its next build, which finds out for itself and says so."""
        if self.to_keep is not None:
            if self.keeping is not None:
                self.keeping.close()
            from report.build import keep_last_build

            self.keeping, self.to_keep = keep_last_build(self.to_keep), None
        if self.keeping is None:
            return
        try:
            next(self.keeping)
        except Exception:  # StopIteration: all read; anything else: left to the build
            self.keeping = None
            gc.freeze()  # out of the forked builds' collections, as what the server imported

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            request, descriptors = self._request(connection)
        except (OSError, EOFError, ValueError):  # not asked properly, or not by this user
            connection.close()
            return
        # A SIGINT meant for the child (its command gone) that comes before the child has set
        # its handler waits for it, blocked, instead of being lost: the server may have
        # inherited SIGINT ignored (a background job of a shell without job control, as on CI).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        told, telling = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process: the command, answered nothing, runs the build itself
            pid = -1
        if pid == 0:
            os.close(told)
            self._child(connection, descriptors, request, telling)  # never returns
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.close(telling)
        for descriptor in descriptors:
            os.close(descriptor)
        if pid < 0:
            os.close(told)
            connection.close()
            return
        self.told[told] = bytearray()
        self.selector.register(told, selectors.EVENT_READ)
        self.running[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, pid)
        try:
            connection.sendall(STATUS.pack(pid))
        except OSError:  # the command went away meanwhile
            self._gone(connection, pid)

    def _request(self, connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
        """What the command asks, and its standard streams: from a process of this user only."""
        if peer(connection)[1] != os.getuid():
            raise PermissionError
        connection.settimeout(_REQUEST_SECONDS)
        header, descriptors, _, _ = socket.recv_fds(connection, STATUS.size, 3)
        try:
            if len(header) != STATUS.size or len(descriptors) != 3:
                raise EOFError
            request: dict[str, Any] = json.loads(read_exactly(connection, STATUS.unpack(header)[0]))
        except BaseException:
            for descriptor in descriptors:
                os.close(descriptor)
            raise
        return request, descriptors

    def _gone(self, connection: Any, pid: int) -> None:
        """The command went away (or wrote, which it never does): its build is interrupted."""
        self.selector.unregister(connection)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)

    def _reap(self) -> bool:
        """Send each ended child's exit status to its command; whether any had ended."""
        ended = False
        while self.running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            ended = True
            connection = self.running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                connection.sendall(STATUS.pack(code if code >= 0 else 128 - code))
            with contextlib.suppress(KeyError):
                self.selector.unregister(connection)
            connection.close()
        return ended

    def _child(self, connection: socket.socket, descriptors: list[int], request: dict[str, Any], telling: int) -> None:
        """The forked process: becomes the command, runs it, and exits with its status (it
        never returns to the server's loop, whatever happens); a build that succeeds tells the
        server its report's folder on ``telling``."""
        # Never collected: the process ends with its command (a build holds the collector off
        # and turned it on again as it returned: it went over the whole build, 3–37 ms of its end).
        gc.disable()
        try:
            try:
                fault_point("fork")
                self._become(connection, descriptors, request)
                import report.build

                def tell(root: Path) -> None:
                    with contextlib.suppress(OSError):  # the server gone: its next start reads the cache
                        os.write(telling, os.fsencode(root) + b"\n")

                report.build.on_built = tell
            except Exception as error:  # e.g. the command's folder was removed meanwhile
                os.write(2, f"report: the build server could not run the command: {error}\n".encode())
                raise
            from report.cli import run

            run(request["arguments"], request["prog_name"])  # exits with the command's status
        finally:
            os._exit(ExitCode.INTERNAL)

    def _become(self, connection: socket.socket, descriptors: list[int], request: dict[str, Any]) -> None:
        """The command's signals, streams, folder, environment, umask and arguments."""
        signal.set_wakeup_fd(-1)
        setproctitle(" ".join([request["prog_name"], *request["arguments"]]))  # a build, no longer the server
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # (blocked since the fork)
        _die_with_server(self.pid)
        self.selector.close()
        for open_file in (self.listener, connection, *self.running.values()):
            open_file.close()
        for pipe in self.told:
            os.close(pipe)
        os.close(self.wake_read)
        os.close(self.wake_write)
        for target, descriptor in enumerate(descriptors):
            os.dup2(descriptor, target)
            os.close(descriptor)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["environment"])
        os.umask(request["umask"])
        sys.stdin, sys.stdout, sys.stderr = (
            open(  # noqa: SIM115 (the process's streams, open until it exits)
                target,
                "w" if target else "r",
                buffering=1 if line else -1,
                encoding=encoding,
                errors=errors,
                closefd=False,
            )
            for target, (encoding, errors, line) in enumerate(request["streams"])
        )
        sys.argv = [request["prog_name"], *request["arguments"]]


def _die_with_server(server: int) -> None:
    """A child whose server dies is interrupted, as by Ctrl-C: the command, which can no longer
    learn how its build ended, has said that it failed (and the build writes nothing)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
    if os.getppid() != server:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGINT)
