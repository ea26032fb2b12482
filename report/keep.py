"""What the command line keeps running between builds, and the plumbing both share: the PDF
workers of each report (:mod:`report.render.workers`) and the build server
(:mod:`report.server`). Both listen on Linux abstract Unix sockets, answer only processes of
their own user, and exit after ``REPORT_KEEP_WORKERS`` seconds without a build.

This module imports only the standard library: the ``report`` command's front
(:mod:`report.client`) uses it before it knows whether it will import the builder at all.
"""

from __future__ import annotations

import hashlib
import os
import site
import socket
import struct
import sys

KEEP_WORKERS_VARIABLE = "REPORT_KEEP_WORKERS"
DEFAULT_KEEP_SECONDS = 600.0
_PACKAGE = os.path.dirname(os.path.realpath(__file__))  # (no pathlib: the command's front imports this)
CHECK_SECONDS = 2.0  # how often an idle kept process looks at the clock and at what it serves


def keep_seconds() -> float:
    """How long a build's workers and the build server wait for the next build:
    ``REPORT_KEEP_WORKERS`` seconds; by default 10 minutes, and none on CI (``CI`` set) or off
    Linux (no abstract sockets)."""
    if sys.platform != "linux":
        return 0.0
    default = 0.0 if os.environ.get("CI") else DEFAULT_KEEP_SECONDS
    try:
        seconds = float(os.environ.get(KEEP_WORKERS_VARIABLE, default))
    except ValueError:
        seconds = default
    return seconds if seconds > 0 else 0.0  # (not NaN either)


def peer(connection: socket.socket) -> tuple[int, int]:
    """The process id and user id at the other end of a Unix socket."""
    pid, uid, _gid = struct.unpack(
        "3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    )
    return pid, uid


def spawn_detached(arguments: list[str]) -> int:
    """Start ``python arguments…`` in a session of its own (not stopped with the build's terminal
    or process group), with no standard streams, and the builder importable from where this
    copy of it is, whatever the working folder."""
    package_parent = os.path.dirname(_PACKAGE)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    null = os.open(os.devnull, os.O_RDWR)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, *arguments],
            environment,
            file_actions=[(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)],
            setsid=True,
        )
    finally:
        os.close(null)


def builder_stamp() -> str:
    """Which builder a process runs, from the files' sizes and times (a millisecond, where the
    content hash the cache keys name costs ten): this Python, the builder's files, and the folders
    Python's packages are installed in (a package installed, upgraded or removed changes the
    folder). A kept process whose builder changed is not used."""
    found = [sys.executable, sys.version]
    for folder, subfolders, files in os.walk(_PACKAGE):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        for name in sorted(files):
            status = os.stat(os.path.join(folder, name))
            found.append(f"{folder}/{name} {status.st_size} {status.st_mtime_ns}")
    for folder in site.getsitepackages():
        try:
            found.append(f"{folder} {os.stat(folder).st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(found).encode()).hexdigest()[:32]
