"""The ``report`` command's front: a build goes to the build server when one is running
(:mod:`report.daemon.server`), else it runs here, and leaves a server for the next build.

Starting Python and importing the builder (Markdown, Jinja, ebooklib, click, rich…) takes a
fifth of a second or more: a third of an EPUB built after an edit. As Mercurial's chg does, the
command hands its arguments, working folder, environment and standard streams (their file
descriptors, passed over the socket) to a server that has the builder imported, and the
server forks a process that runs the command in their place: the same command, writing to the
same terminal, with the same exit status. Ctrl-C (SIGINT, SIGTERM, SIGHUP) is passed on.

Only ``report build`` is handed over, and only when builds keep processes between them
(:func:`report.daemon.settings.keep_seconds`: by default on Linux, not on CI). This module imports only
the standard library and :mod:`report.daemon.settings`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from report.daemon.settings import SERVER_CODE, builder_stamp, keep_seconds, peer, pool_name, spawn_detached

STATUS = struct.Struct("!i")
LOST = 3  # the server stopped during the build: ExitCode.INTERNAL (report.errors is not imported here)


def server_address(pool: str, stamp: str) -> str:
    """The build server's socket (Linux's abstract namespace), by user, pool and builder."""
    return f"\0report-build-{os.getuid()}-{pool}-{stamp}"


def run() -> None:
    arguments = sys.argv[1:]
    streams = (sys.stdin, sys.stdout, sys.stderr)
    served = arguments[:1] == ["build"] and keep_seconds() > 0 and None not in streams
    prog_name = "python -m report" if sys.argv[0].endswith("__main__.py") else os.path.basename(sys.argv[0])
    stamp = builder_stamp() if served else ""
    if served and (status := _built_by_server(stamp, arguments, prog_name)) is not None:
        os._exit(status)
    from report.cli import run as run_here

    built: list[Path] = []
    if served:
        import report.build

        report.build.on_built = built.append
    run_here(arguments, prog_name, then=(lambda: start_server(stamp, built[-1:])) if served else None)


def start_server(stamp: str, built: list[Path]) -> None:
    """A build server for the next builds (it exits at once if one is already running), told
    the folder of the report ``built`` here, if any: it reads that report's last build into
    memory at once, as it does after each build it runs (see report.daemon.server). Told
    nothing, the first build it ran after the kept processes had stopped read the whole book
    from the cache (0.6–0.7 s at 615 pages, against 0.35 s once read)."""
    with contextlib.suppress(OSError):  # the next build runs here too
        spawn_detached(["-c", SERVER_CODE, pool_name(), stamp, str(keep_seconds()), *map(os.fspath, built)])


def _built_by_server(stamp: str, arguments: list[str], prog_name: str) -> int | None:
    """The exit status of the command run by the server, or None if no server took it (it
    did not run: run it here)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(server_address(pool_name(), stamp))
        if peer(connection)[1] != os.getuid():  # anyone can bind an abstract name
            connection.close()
            return None
        request = json.dumps(_request(arguments, prog_name)).encode()
        socket.send_fds(connection, [STATUS.pack(len(request))], [0, 1, 2])
        connection.sendall(request)
        pid = STATUS.unpack(read_exactly(connection, STATUS.size))[0]
    except (OSError, EOFError):
        connection.close()
        return None
    # The command runs in process ``pid`` now: never here as well.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: _pass_on(pid, received))
    try:
        status: int = STATUS.unpack(read_exactly(connection, STATUS.size))[0]
    except (OSError, EOFError):
        print("report: the build server stopped during the build", file=sys.stderr)
        return LOST
    return status


def _request(arguments: list[str], prog_name: str) -> dict[str, object]:
    return {
        "arguments": arguments,
        "prog_name": prog_name,
        "cwd": os.getcwd(),
        "environment": dict(os.environ),
        "umask": _umask(),
        # How Python set up this process's standard streams (the server's were not terminals).
        "streams": [
            [stream.encoding, stream.errors, stream.line_buffering] for stream in (sys.stdin, sys.stdout, sys.stderr)
        ],
    }


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _pass_on(pid: int, number: int) -> None:
    with contextlib.suppress(OSError):  # it has just ended
        os.kill(pid, number)


def read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
