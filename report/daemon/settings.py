"""What the command line keeps running between builds, and the settings both share: the PDF
workers of the user's pool (:mod:`report.daemon.pool`) and the build server
(:mod:`report.daemon.server`). Both listen on Linux abstract Unix sockets, answer only processes of
their own user, and exit after ``REPORT_KEEP_WORKERS`` seconds without a build. Each says in its
process title (``ps``) what it is, its pool and since when it is idle: ``report stop`` and
``report status`` find them there (:func:`kept_processes`).

This module imports only the standard library: the ``report`` command's front
(:mod:`report.daemon.client`) uses it before it knows whether it will import the builder at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import site
import socket
import struct
import sys
import time
from contextlib import suppress

KEEP_WORKERS_VARIABLE = "REPORT_KEEP_WORKERS"
DEFAULT_KEEP_SECONDS = 600.0
_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # report/ (no pathlib: the front imports this)
CHECK_SECONDS = 2.0  # how often an idle kept process looks at the clock and at what it serves
POOL_VARIABLE = "REPORT_POOL"  # a pool of kept processes of its own (the tests' own, not the user's)
DEFAULT_POOL = "main"
MEMORY_VARIABLE = "REPORT_WORKER_MEMORY"  # megabytes
LEAST_MEMORY_MB = 400.0
MEMORY_SHARE = 16  # of the machine's memory, a kept worker may hold this fraction
SERVER_KIND, WORKER_KIND = "build server", "PDF worker"
# What kept processes run (``python -c CODE POOL …``): how they are known while they start.
SERVER_CODE = "import sys; from report.daemon.server import serve; serve(*sys.argv[1:])"
WORKER_CODE = "import sys; from report.daemon.pool import keep_serving; keep_serving(*sys.argv[1:])"
_TITLE = re.compile(r"report: kept (?P<kind>[\w ]+) \((?P<pool>[\w.-]+)\), (?:busy|idle since (?P<since>\d+))")


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
    copy of it is, whatever the working folder. ``python -c`` puts the working folder first on
    the path: a report folder holding a ``report`` package (this repository at another commit, or
    a report that means harm) had its code run as the kept processes' builder."""
    package_parent = os.path.dirname(_PACKAGE)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    null = os.open(os.devnull, os.O_RDWR)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-P", *arguments],  # -P: not the working folder first on the path (see below)
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


def pool_name() -> str:
    """The pool of kept processes a build uses: ``REPORT_POOL``, else the user's one."""
    return chosen_pool() or DEFAULT_POOL


def chosen_pool() -> str | None:
    """The pool ``REPORT_POOL`` names (None when it names none: every pool is the user's)."""
    name = os.environ.get(POOL_VARIABLE, "")
    return name if re.fullmatch(r"[\w.-]{1,40}", name, re.ASCII) else None


def pool_size() -> int:
    """How many PDF workers a pool keeps at most, however many reports are built: one per core
    this process may use, and at least two."""
    return max(2, len(os.sched_getaffinity(0)))


def memory_ceiling() -> int:
    """The resident memory, in bytes, past which a kept worker exits after its build:
    ``REPORT_WORKER_MEMORY`` megabytes, else a sixteenth of the machine's memory and at least
    400 MB. The worker that joins a book keeps the joined PDF for the next build, about a
    megabyte a page (550 MB at 586 pages): a book that fits keeps the join, one that does not
    pays a join from nothing at its next build."""
    try:
        megabytes = float(os.environ.get(MEMORY_VARIABLE, 0))
    except ValueError:
        megabytes = 0
    if megabytes > 0:
        return int(megabytes * 2**20)
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(int(LEAST_MEMORY_MB * 2**20), machine // MEMORY_SHARE)


def resident_bytes(pid: int) -> int:
    """A process's resident memory (0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def set_title(kind: str, pool: str, idle_since: float | None) -> None:
    """Say in the process title what this kept process is and since when it waits for a build
    (None: it is building, or starting)."""
    from setproctitle import setproctitle

    state = "busy" if idle_since is None else f"idle since {int(idle_since)}"
    setproctitle(f"report: kept {kind} ({pool}), {state}")


class KeptProcess:
    """A kept process, as its title tells. (Not a dataclass: ``dataclasses`` imports
    ``inspect``, a third of what a build's command imported before it asked the build server.)"""

    __slots__ = ("idle_since", "kind", "memory", "pid", "pool", "starting")

    def __init__(
        self, pid: int, kind: str, pool: str, idle_since: float | None, memory: int, starting: bool = False
    ) -> None:
        self.pid = pid
        self.kind = kind  # SERVER_KIND or WORKER_KIND
        self.pool = pool
        self.idle_since = idle_since  # None: building, or starting
        self.memory = memory  # resident, in bytes
        self.starting = starting  # (it has no title yet)


def kept_processes(pool: str | None = None) -> list[KeptProcess]:
    """The kept processes of this user (of ``pool`` only, if given), from their titles, or
    their command lines while they start."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid() or ended(int(entry)):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                arguments = cmdline.read().rstrip(b"\0").decode(errors="replace").split("\0")
        except OSError:
            continue
        if title := _TITLE.match(arguments[0]):
            since = title["since"]
            process = (title["kind"], title["pool"], float(since) if since else None, False)
        elif len(arguments) > 4 and arguments[1:3] == ["-P", "-c"] and arguments[3] in (SERVER_CODE, WORKER_CODE):
            process = (SERVER_KIND if arguments[3] == SERVER_CODE else WORKER_KIND, arguments[4], None, True)
        else:
            continue
        if pool is None or process[1] == pool:
            kind, name, idle_since, starting = process
            found.append(KeptProcess(int(entry), kind, name, idle_since, resident_bytes(int(entry)), starting))
    return sorted(found, key=lambda p: (p.kind, p.pid))


def stop_kept(processes: list[KeptProcess], seconds: float = 5.0) -> None:
    """End the processes: asked to (SIGTERM), then forced (SIGKILL) if they are still there
    after ``seconds``."""
    for number in (signal.SIGTERM, signal.SIGKILL):
        processes = [p for p in processes if not ended(p.pid)]
        for process in processes:
            with suppress(OSError):
                os.kill(process.pid, number)
        deadline = time.monotonic() + seconds
        while any(not ended(p.pid) for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)


def ended(pid: int) -> bool:
    """Whether the process has exited (or is a zombie, its parent not having reaped it yet:
    told by /proc, where the system has it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's, running
        pass
    return False
