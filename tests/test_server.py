"""The build server (report/daemon/server.py, report/daemon/client.py): a ``report build`` from
the command line leaves one running, the builder imported, and the next ``report build`` runs in
a process it forks, with the command's streams, folder, environment and exit status.

The suite turns kept processes off (conftest.py); these tests turn them on for their commands,
in a pool of this module's own (so that the first build is the one that starts its server), and
stop what that pool kept at the end of each test: never a server they did not start.
"""

from __future__ import annotations

import fcntl
import gc
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import copy_fixture, pdftotext, run_report, squeeze
from test_kept_workers import edit, gone, kept_pids, new_pool

import report as report_package
from report.cache import CACHE_DIR_NAME
from report.daemon.client import LOST, server_address
from report.daemon.settings import SERVER_CODE, SERVER_KIND, builder_stamp, kept_processes, stop_kept
from report.errors import ExitCode
from report.faults import FAULT_VARIABLE

STAMP = builder_stamp()
POOL = new_pool()  # this module's: its tests' servers only


def server_pids() -> set[int]:
    return kept_pids(POOL, SERVER_KIND)


def listening(stamp: str = STAMP, seconds: float = 20) -> int:
    """The server's process id, once it takes commands."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(server_address(POOL, stamp))
        except OSError:
            time.sleep(0.05)
            continue
        finally:
            probe.close()
        (pid,) = server_pids()
        return pid
    raise AssertionError("no build server took commands")


def waiting_for_a_lock(pid: int) -> bool:
    """Whether the process is blocked on a file lock (a ``->`` line of /proc/locks)."""
    return any("->" in line and str(pid) in line.split() for line in Path("/proc/locks").read_text().splitlines())


def children(pid: int) -> set[int]:
    return {
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    }


def children_page_faults(pid: int) -> int:
    """The minor page faults of the process's children that have ended (cminflt): any forked
    child has some, copying what it writes to, where its processor time may round to no tick."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[8])


def keeping(seconds: str = "60") -> dict[str, str]:
    """The environment of a command that keeps processes for ``seconds`` (as off CI)."""
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    return {**environment, "REPORT_KEEP_WORKERS": seconds, "REPORT_POOL": POOL}


def report(*arguments: str | Path, cwd: Path | None = None, keep: str = "60") -> subprocess.CompletedProcess[str]:
    return run_report(*arguments, cwd=cwd, env=keeping(keep))


@pytest.fixture(autouse=True)
def stopped_at_the_end() -> Iterator[None]:
    """What the test kept (this module's pool), stopped: the next test starts with none."""
    yield
    stop_kept(kept_processes(POOL))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_fixture("ja-basic", tmp_path)


def test_a_build_leaves_a_server_and_the_next_build_runs_in_it(project: Path, tmp_path: Path) -> None:
    first = report("build", project)
    assert first.returncode == 0, first.stderr
    server = listening()
    edit(project, "準備する", "点検する")
    before = children_page_faults(server)
    second = report("build", project, "--timings")
    assert second.returncode == 0, second.stderr
    assert children_page_faults(server) > before  # it ran in a child of the server
    assert second.stdout.startswith("wrote ") and "rendered afresh: pdf, epub" in second.stdout
    assert "点検する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))
    # The same bytes as a build from nothing, in the command's own process.
    fresh = report("build", project, "--no-cache", "-o", tmp_path / "fresh", keep="0")
    assert fresh.returncode == 0, fresh.stderr
    for name in ("ja-basic.pdf", "ja-basic.epub"):
        assert (project / "dist" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def idle_since(seconds: float = 20) -> float:
    """When the server last became idle: once no build runs, and it has read the chapters and
    EPUB pages of the report it built last."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        (server,) = [process for process in kept_processes(POOL) if process.kind == SERVER_KIND]
        if server.idle_since is not None:
            return server.idle_since
        time.sleep(0.05)
    raise AssertionError("the build server stayed busy")


def test_the_server_reads_the_last_build_of_its_report_for_the_next_build(project: Path, tmp_path: Path) -> None:
    """A build the server ran tells it its report; while no build runs, the server reads that
    report's chapters and its EPUB's pages into memory, for the next build it forks."""
    assert report("build", project).returncode == 0  # in the command's process: it starts the server
    listening()
    edit(project, "準備する", "点検する")
    assert report("build", project).returncode == 0  # in a child of the server, which it tells
    built_from_what_the_server_read(project, tmp_path, "点検する", "確かめる")


def test_the_command_that_starts_the_server_tells_it_its_report(project: Path, tmp_path: Path) -> None:
    """A build in the command's own process (no server was running: the kept processes had
    stopped) starts the server with its report's folder, and the server reads that report's
    last build at once, for the first build it forks: the next edit's."""
    assert report("build", project).returncode == 0  # in the command's process: it starts the server
    listening()
    built_from_what_the_server_read(project, tmp_path, "準備する", "点検する")


def built_from_what_the_server_read(project: Path, tmp_path: Path, old: str, new: str) -> None:
    """Once the server is idle, the cache's parsed chapters and EPUB pages removed, an edit
    (``old`` → ``new``) built: it reads none of their cache entries (the server has them): it
    parses, and makes the EPUB page of, only the chapter edited; its outputs are a build from
    nothing's."""
    idle_since()
    entries = project / CACHE_DIR_NAME / "v1" / "entries"
    for kind in ("parsed", "epub-page"):
        shutil.rmtree(entries / kind)
    edit(project, old, new)
    built = report("build", project, "--timings")
    assert built.returncode == 0, built.stderr
    assert re.search(r"^parsed +2 +1$", built.stdout, re.MULTILINE), built.stdout
    assert re.search(r"^epub-page +[2-9] +1$", built.stdout, re.MULTILINE), built.stdout
    for kind in ("parsed", "epub-page"):
        assert len(list((entries / kind).glob("*.json"))) == 1, kind  # the edited chapter's
    fresh = report("build", project, "--no-cache", "-o", tmp_path / "fresh", keep="0")
    assert fresh.returncode == 0, fresh.stderr
    for name in ("ja-basic.pdf", "ja-basic.epub"):
        assert (project / "dist" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_reading_the_last_build_looks_at_the_builders_files_once_every_few_seconds(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's loop turns once a step of reading the last build into memory; it looks
    whether the builder changed once every CHECK_SECONDS, not at every turn (a step of 0.2 ms
    took 0.5 ms more for it)."""
    import report.build as build_module
    import report.daemon.server as server_module

    assert report("build", project, keep="0").returncode == 0
    looked, steps = [], []
    monkeypatch.setattr(server_module, "builder_stamp", lambda: looked.append(1) or STAMP)
    keep = build_module.keep_last_build
    monkeypatch.setattr(build_module, "keep_last_build", lambda root: (steps.append(1) for _ in keep(root)))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "server"))
    listener.listen(1)
    server = server_module.Server(listener, POOL, STAMP, keep=1.0)
    server.to_keep = project
    try:
        server.run()  # until a second passes with no build
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener.close()
        gc.unfreeze()
    assert len(steps) >= 10 and len(looked) == 1


def test_the_command_keeps_its_folder_environment_messages_and_exit_status(project: Path) -> None:
    assert report("build", project).returncode == 0
    server = listening()
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("id: method", "id: method\nmatter: x"), "utf-8")
    here = report("build", ".", "-o", "out", cwd=project, keep="0")
    before = children_page_faults(server)
    served = report("build", ".", "-o", "out", cwd=project)
    assert children_page_faults(server) > before
    assert here.returncode == served.returncode == ExitCode.REPORT_ERROR
    assert served.stderr == here.stderr
    assert 'chapters/02-method.md:3: "matter" must be one of "front", "body", "back"' in served.stderr
    assert served.stdout == here.stdout == ""
    assert not (project / "out").exists()


@contextmanager
def held_build(project: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """A served build waiting for the report's build lock (held here): the command, the server
    and the server's child running it."""
    assert report("build", project).returncode == 0
    server = listening()
    lock = open(project / CACHE_DIR_NAME / "build.lock", "a")  # noqa: SIM115 (held until the end)
    fcntl.flock(lock, fcntl.LOCK_EX)
    command = subprocess.Popen(
        [sys.executable, "-m", "report", "build", str(project), "-o", str(project / "out")],
        env=keeping(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (running := children(server)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(running) == 1
    child = running.pop()
    # Until the child waits for the lock: the server has told the command the child's process
    # id by then (it does so right after the fork). Killed before that, the server would leave
    # the command thinking no server took it, and building here, behind the lock.
    while not waiting_for_a_lock(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting_for_a_lock(child)
    try:
        yield command, server, child
    finally:
        lock.close()
        command.kill()
        command.wait()


def test_ctrl_c_is_passed_on_to_the_build(project: Path) -> None:
    with held_build(project) as (command, _server, child):
        time.sleep(0.3)  # the child has the lock in view
        command.send_signal(signal.SIGINT)
        _, stderr = command.communicate(timeout=20)
        assert command.returncode == ExitCode.REPORT_ERROR
        assert "interrupted; previous outputs are unchanged." in stderr
        assert gone({child}, 5)
        assert not (project / "out").exists()


def test_a_command_that_goes_away_has_its_build_interrupted(project: Path) -> None:
    with held_build(project) as (command, server, child):
        command.kill()
        command.wait()
        assert gone({child}, 10)
        assert server_pids() == {server}  # and the server goes on
        assert not (project / "out").exists()


def test_a_command_gone_before_its_child_has_its_handler_still_has_its_build_interrupted(project: Path) -> None:
    """Even from a server that inherited SIGINT ignored (a background job of a shell without job
    control, as CI runs the tests), whose child is slow to become the command: the SIGINT waits."""
    ignoring = f"import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); {SERVER_CODE}"
    server = subprocess.Popen(
        [sys.executable, "-c", ignoring, POOL, STAMP, "60"], env={**os.environ, FAULT_VARIABLE: "fork:delay"}
    )
    assert listening() == server.pid
    with held_build(project) as (command, _server, child):
        command.kill()
        command.wait()
        assert gone({child}, 10)
        assert not (project / "out").exists()


def test_a_server_that_dies_during_the_build_fails_the_command_and_stops_the_build(project: Path) -> None:
    with held_build(project) as (command, server, child):
        os.kill(server, signal.SIGKILL)
        _, stderr = command.communicate(timeout=20)
        assert command.returncode == LOST == ExitCode.INTERNAL
        assert "report: the build server stopped during the build" in stderr
        assert gone({child}, 10)  # interrupted, not left to write what the command said failed
    assert not (project / "out").exists()


def _serve(stamp: str, keep: str, builder: Path | None = None) -> subprocess.Popen[bytes]:
    """A server started by hand (of the builder in ``builder``, else this one)."""
    return subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, POOL, stamp, keep],
        env={**os.environ, "PYTHONPATH": str(builder)} if builder else None,
        cwd=builder,
    )


def test_the_server_exits_when_no_build_comes(project: Path) -> None:
    server = _serve(STAMP, "1")
    assert listening() == server.pid
    assert server.wait(timeout=10) == 0


def test_the_server_exits_when_the_builder_changes(tmp_path: Path) -> None:
    copy = tmp_path / "builder"
    shutil.copytree(Path(report_package.__file__).parent, copy / "report", ignore=shutil.ignore_patterns("__pycache__"))
    stamp = subprocess.run(
        [sys.executable, "-c", "from report.daemon.settings import builder_stamp; print(builder_stamp())"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert stamp != STAMP
    server = _serve(stamp, "60", copy)
    assert listening(stamp) == server.pid
    with open(copy / "report" / "daemon" / "settings.py", "a") as module:
        module.write("# changed\n")
    assert server.wait(timeout=10) == 0


def test_a_server_started_for_another_builder_never_serves() -> None:
    assert _serve("0" * 32, "60").wait(timeout=20) == 0  # these files are not that builder's


def _can_act_as_another_user() -> bool:
    """Whether a child of this process may become user 65534 (root, with CAP_SETUID)."""
    if os.getuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(65534)
        finally:
            os._exit(0 if os.getuid() == 65534 else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


another_user = pytest.mark.skipif(not _can_act_as_another_user(), reason="needs root to act as another user")


@another_user
def test_only_processes_of_the_servers_own_user_are_answered(project: Path) -> None:
    assert report("build", project).returncode == 0
    server = listening()
    address = server_address(POOL, STAMP)  # (named by this user)
    pid = os.fork()
    if pid == 0:  # another user asks the server to run a command for it
        status = 1
        try:
            os.setuid(65534)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.connect(address)
            status = 2
            try:
                socket.send_fds(probe, [b"\0\0\0\2"], [0, 1, 2])
                probe.sendall(b"{}")
                answer = probe.recv(4)
            except OSError:  # hung up on while asking
                answer = b""
            status = 0 if answer == b"" else 3  # no process id: no process started
        finally:
            os._exit(status)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert children(server) == set()
    assert server_pids() == {server}


@another_user
def test_a_server_of_another_user_is_not_handed_the_command(project: Path) -> None:
    """Anyone may bind an abstract socket's name: the command checks who listens on it."""
    address = server_address(POOL, STAMP)
    told_read, told_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # another user takes this user's server name, and waits for a command
        try:
            os.setuid(65534)
            squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            squatter.bind(address)
            squatter.listen(1)
            os.write(told_write, b"listening\n")
            connection, _ = squatter.accept()
            connection.settimeout(10)
            message, descriptors, _, _ = socket.recv_fds(connection, 4, 3)
            os.write(told_write, f"{len(message)} bytes, {len(descriptors)} descriptors\n".encode())
        finally:
            os._exit(0)
    os.close(told_write)
    with os.fdopen(told_read) as told:
        assert told.readline() == "listening\n"
        run = report("build", project)
        assert run.returncode == 0, run.stderr  # built here
        assert told.readline() == "0 bytes, 0 descriptors\n"
    os.waitpid(pid, 0)


def test_the_server_reads_the_builders_files_and_freezes_what_it_loaded_before_it_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """So that no build it forks reads them again to make its cache keys (see
    report.cache.read_builder_files), nor goes over the server's objects in its garbage
    collections; before the check that the builder is still the same."""
    import report.daemon.server as server

    done: list[str] = []
    monkeypatch.setattr(server, "read_builder_files", lambda: done.append("read"))
    monkeypatch.setattr(gc, "freeze", lambda: done.append("frozen"))
    monkeypatch.chdir(Path.cwd())  # serve() moves to the root folder
    monkeypatch.setattr(sys, "path", list(sys.path))  # and takes the current folder out of the path
    server.serve(POOL, "not this builder", "1")  # returns: the builder changed meanwhile
    assert done == ["read", "frozen"]


def test_a_build_imports_no_module_of_the_builder_that_the_server_has_not(tmp_path: Path) -> None:
    """What a build imports on its way (citations, callouts, index terms here), the server has
    imported before it forks: else every build it forks imports it again."""
    project = copy_fixture("ja-scholarly", tmp_path)
    code = (
        "import importlib, sys; from pathlib import Path; from report.daemon.server import _PRELOADED\n"
        "for module in _PRELOADED: importlib.import_module(module)\n"
        "before = set(sys.modules)\n"
        "from report.build import build; build(Path(sys.argv[1]))\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'report'))"
    )
    environment = {**os.environ, "REPORT_KEEP_WORKERS": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, env=environment, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"


def test_the_command_imports_little_before_it_asks_the_build_server() -> None:
    """Every build's command starts a Python of its own: what it imports before it hands the
    command to the server is on every build's clock (``dataclasses`` and ``inspect`` were a third
    of it)."""
    code = (
        "import sys; import report.daemon.client\n"
        "print(sorted(m for m in ('dataclasses', 'inspect', 'typing', 'click', 'rich') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["[]"]
