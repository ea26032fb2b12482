"""The PDF workers kept between builds: one pool per user and builder, shared by every report.

A build from the command line leaves its workers running, WeasyPrint loaded, for the next
build of any report (as Gradle's daemon is shared by the projects of one configuration): they
save the next build 0.5-1 s. The pool has a fixed number of places (:func:`pool_size`, one per
core and at least two), so however many reports are built, no more workers than that are ever
kept. Each place is a Linux abstract socket named by the user, the pool, the builder and the
place's number; a build takes a place by binding its claim socket (another build cannot bind
it until this one closes it or ends, even killed), then talks to the worker listening there,
or starts one. Builds take the places in order, so the workers of the last places, used only
when builds overlap, are the least recently used, and the first to exit when idle. A build that
finds fewer free places than it wants workers starts the others for itself (they end with it).

What a worker holds that belongs to one report (its parsed stylesheets and fonts) is kept per
report in a small in-worker cache (:class:`report.render.weasy.Worker`). A worker exits when it
has had no build for ``REPORT_KEEP_WORKERS`` seconds, when the builder changed, or after a build
that left it holding more memory than :func:`report.daemon.settings.memory_ceiling`.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import time
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NamedTuple

from report.daemon.settings import (
    CHECK_SECONDS,
    WORKER_CODE,
    WORKER_KIND,
    builder_stamp,
    memory_ceiling,
    peer,
    pool_name,
    pool_size,
    resident_bytes,
    set_title,
    spawn_detached,
)
from report.render.weasy import answer, become_worker
from report.render.workers import PdfWorkers

_GREETING_SECONDS = 1.0  # a kept worker that does not greet a build within this is not used
_GREETING = "report-pdf-worker"
_GREETING_BYTES = 65536  # the most a greeting may be: the names of the parts a worker keeps are the book's ids


def _address(pool: str, stamp: str, place: int) -> str:
    return f"\0report-pdf-{os.getuid()}-{pool}-{stamp}-{place}"


class KeptWorkers(PdfWorkers):
    """Workers of the user's pool (found, or started now to be left running), and any a build
    started for itself when the pool's places were taken: :meth:`close` hangs up on the kept
    ones, leaving them for the next build, and ends its own."""

    def __init__(
        self,
        connections: list[Connection],
        pids: list[int],
        claims: list[socket.socket],
        own: PdfWorkers | None,
        joins_kept: list[str],
        resumes: list[list[str]],
    ) -> None:
        self._attach(
            connections + (own.connections if own else []),
            joins_kept + (own.joins_kept if own else []),
            resumes + (own.resumes if own else []),
        )
        self.pids = pids
        self._claims = claims  # held while this build uses the places
        self._own = own

    @classmethod
    def reach(cls, fontconfig: Path, count: int, keep: float) -> KeptWorkers:
        """``count`` workers: those of the pool's free places (started where there are none),
        topped up with workers of this build's own."""
        pool, stamp = pool_name(), builder_stamp()
        connections: list[Connection] = []
        pids: list[int] = []
        joins_kept: list[str] = []
        resumes: list[list[str]] = []
        claims: list[socket.socket] = []
        for place in range(pool_size()):
            if len(connections) == count:
                break
            address = _address(pool, stamp, place)
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                claim.bind(address + "-claim")  # taken by another build: the next place
                greeting = _greeted(address) or _start(address, pool, stamp, fontconfig, keep)
            except OSError:
                claim.close()
                continue
            connections.append(greeting.connection)
            pids.append(greeting.pid)
            joins_kept.append(greeting.join_kept_for)
            resumes.append(list(greeting.resumes))
            claims.append(claim)
        own = PdfWorkers(fontconfig, count - len(connections)) if len(connections) < count else None
        return cls(connections, pids, claims, own, joins_kept, resumes)

    @property
    def alive(self) -> bool:
        return not any(c.closed for c in self.connections) and (self._own is None or self._own.alive)

    def close(self) -> None:
        with self._closing:
            self._hang_up()
            self._release()

    def stop(self) -> None:
        with self._closing:
            for pid in self.pids:
                with suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            self._hang_up()
            self._release()

    def _release(self) -> None:
        for claim in self._claims:
            claim.close()
        if self._own is not None:
            self._own.stop()

    def ended(self, index: int) -> str:
        if index >= len(self.pids) and self._own is not None:
            return self._own.ended(index - len(self.pids))
        return f"process {self.pids[index]}"


class Greeting(NamedTuple):
    """A kept worker reached: the connection to it, its process id, the styles key of the book
    whose join it keeps (see Worker.join_kept_for) and the parts whose layouts it keeps to
    resume (see Worker.resumes)."""

    connection: Connection
    pid: int
    join_kept_for: str
    resumes: tuple[str, ...]


def _greeted(address: str) -> Greeting | None:
    """A connection to the kept worker at ``address``, once it has greeted, and what it says:
    None if there is none, it is another user's, or it does not answer (it may be about to
    exit). The process id is the one it greets with: the socket's peer is the build that bound
    it and started the worker, long gone."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(address)
        _, uid = peer(client)
    except OSError:
        client.close()
        return None
    connection = Connection(client.detach())
    if uid == os.getuid() and connection.poll(_GREETING_SECONDS):
        with suppress(EOFError, OSError, ValueError, TypeError):
            greeting, pid, join_kept_for, resumes = connection.recv_bytes(_GREETING_BYTES).decode().split(" ", 3)
            if greeting == _GREETING:
                return Greeting(connection, int(pid), join_kept_for, tuple(str(name) for name in json.loads(resumes)))
    connection.close()
    return None


def _start(address: str, pool: str, stamp: str, fontconfig: Path, keep: float) -> Greeting:
    """A new kept worker, already connected to: the socket is bound and this build queued on it
    before the process starts (it greets every later build, not this one)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
        listener.listen(8)
        client.connect(address)
        listener.set_inheritable(True)
        pid = spawn_detached(["-c", WORKER_CODE, pool, str(listener.fileno()), stamp, str(fontconfig), str(keep)])
    except OSError:
        client.close()
        raise
    finally:
        listener.close()
    return Greeting(Connection(client.detach()), pid, "", ())  # keeping no join, no layout yet


# The longest a kept worker waits for the build it answered to end before it collects.
_BUILD_ENDS_WITHIN = 1.0


def _build_over(builder: int, listener: socket.socket) -> bool:
    """Whether the build's process has ended (waited for, a second at most): the build hangs up
    on its workers before it writes its record and answers, and the workers' collections
    (0.05–0.2 s each) shared the cores with those last steps. False if another build calls
    meanwhile: it is not kept waiting for a collection."""
    if not hasattr(os, "pidfd_open"):  # (Linux's only)
        return True
    try:
        ending = os.pidfd_open(builder)
    except OSError:  # ended already, or no pidfd (Linux before 5.3)
        return True
    try:
        calling, _, _ = select.select([listener.fileno(), ending], [], [], _BUILD_ENDS_WITHIN)
    finally:
        os.close(ending)
    return listener.fileno() not in calling


def keep_serving(pool: str, listener_fd: str, stamp: str, fontconfig: str, keep: str) -> None:
    """A kept worker's life: answer the build that started it, then each later build, until
    none came for ``keep`` seconds, the builder changed, or a build left it too big."""
    listener = socket.socket(fileno=int(listener_fd))
    os.chdir("/")  # not keep the folder the first build ran in (every path it is sent is absolute)
    set_title(WORKER_KIND, pool, None)
    worker = become_worker(Path(fontconfig))
    listener.settimeout(CHECK_SECONDS)
    first, last_build = True, time.monotonic()
    while first or (time.monotonic() - last_build <= float(keep) and builder_stamp() == stamp):
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        with client:
            builder, user = peer(client)
            if user == os.getuid():
                set_title(WORKER_KIND, pool, None)
                connection = Connection(client.detach())
                try:
                    if not first:  # with the book whose join it keeps and the parts it can resume: they go there
                        names = json.dumps(worker.resumes, ensure_ascii=False)
                        connection.send_bytes(f"{_GREETING} {os.getpid()} {worker.join_kept_for} {names}".encode())
                    answer(connection, worker)
                except OSError:
                    pass
                finally:
                    connection.close()
        first = False
        worker.forget()  # what the build did not draw or join
        if _build_over(builder, listener):
            gc.collect()  # the build's garbage (WeasyPrint's boxes hold cycles), while no build waits
            gc.disable()  # again, for the next build (see report.render.weasy.become_worker)
        if resident_bytes(os.getpid()) > memory_ceiling():
            return
        last_build = time.monotonic()
        set_title(WORKER_KIND, pool, time.time())
