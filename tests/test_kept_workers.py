"""Workers kept between builds (report/daemon/pool.py): a build leaves its PDF workers running
in the user's pool for the next build of any report, no more than the pool's places, and they go
away on their own; ``report stop`` and ``report status``.

The suite turns kept workers off (conftest.py); these tests turn them on for their builds, each
in a pool of its own (``REPORT_POOL``), find the kept processes by their titles, and stop those
of their pool only: a developer's own kept processes survive the suite.
"""

from __future__ import annotations

import gc
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from helpers import copy_fixture, pdftotext, run_report, squeeze

from report import fonts
from report.build import build
from report.daemon import pool
from report.daemon.settings import (
    DEFAULT_KEEP_SECONDS,
    SERVER_KIND,
    WORKER_KIND,
    builder_stamp,
    ended,
    keep_seconds,
    kept_processes,
    memory_ceiling,
    pool_size,
    stop_kept,
)
from report.render import weasy
from report.render.weasy import STYLES_KEPT, Styles, Worker, start_worker


def new_pool() -> str:
    return f"test-{os.getpid()}-{secrets.token_hex(4)}"


def kept_pids(pool_name: str, kind: str = WORKER_KIND) -> set[int]:
    """The kept processes of ``kind`` in the pool."""
    return {process.pid for process in kept_processes(pool_name) if process.kind == kind}


def gone(pids: set[int], seconds: float) -> bool:
    """Whether the processes have exited (or are zombies) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_running(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _running(pid: int) -> bool:
    if not ended(pid):
        return True
    with suppress(ChildProcessError):  # a zombie of this test process's: reaped (else another's)
        os.waitpid(pid, os.WNOHANG)
    return False


@pytest.fixture
def own_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Builds here keep processes, in a pool of this test's own, stopped at the end."""
    name = new_pool()
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "60")
    monkeypatch.setenv("REPORT_POOL", name)
    monkeypatch.delenv("CI", raising=False)
    yield name
    stop_kept(kept_processes(name))


@pytest.fixture
def project(tmp_path: Path, own_pool: str) -> Path:
    return copy_fixture("ja-basic", tmp_path)


def edit(root: Path, old: str, new: str) -> None:
    method = root / "chapters" / "02-method.md"
    text = method.read_text(encoding="utf-8")
    assert old in text
    method.write_text(text.replace(old, new), encoding="utf-8")


def test_the_next_build_of_any_report_uses_the_kept_workers(
    project: Path, own_pool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(project)
    first = kept_pids(own_pool)
    assert first, "the build left no workers running"
    edit(project, "準備する", "測定する")
    result = build(project)
    assert kept_pids(own_pool) == first  # the same processes, none started
    assert result.rendered == ("pdf", "epub")
    assert "測定する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))
    other = copy_fixture("en-basic", tmp_path / "other")  # another report: the same workers
    build(other)
    assert kept_pids(own_pool) == first
    # What the workers kept of the first report changes nothing in the second's PDF.
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "0")
    build(other, out_dir=tmp_path / "alone", use_cache=False)
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "60")
    assert (other / "dist" / "en-basic.pdf").read_bytes() == (tmp_path / "alone" / "en-basic.pdf").read_bytes()
    build(project, formats=("epub",), out_dir=project / "epub-only")
    assert kept_pids(own_pool) == first


def test_kept_workers_exit_when_no_build_comes(project: Path, own_pool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "1")
    build(project, formats=("epub",))
    pids = kept_pids(own_pool)
    assert pids
    assert gone(pids, 10)


def test_a_kept_worker_exits_once_the_builder_changed(own_pool: str, tmp_path: Path) -> None:
    """A worker of another builder (its files changed since it started) serves no more builds."""
    address = pool._address(own_pool, "0" * 32, 0)
    started = pool._start(address, own_pool, "0" * 32, fonts.fontconfig_file(tmp_path), 60)
    started.connection.close()  # the build that started it is done
    assert gone({started.pid}, 30)


def test_a_kept_worker_that_grew_past_the_ceiling_exits_after_its_build(
    project: Path, own_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_WORKER_MEMORY", "1")  # megabytes: every worker is over it
    build(project, formats=("epub",))
    assert gone(kept_pids(own_pool), 10)
    monkeypatch.delenv("REPORT_WORKER_MEMORY")
    build(project, formats=("epub",), out_dir=project / "again")
    assert kept_pids(own_pool)  # (the default ceiling keeps them)


def test_a_build_does_not_wait_for_workers_another_build_is_using(project: Path, own_pool: str) -> None:
    build(project, formats=("epub",))
    pids = kept_pids(own_pool)
    claims = []
    for place in range(pool_size()):  # as builds using every place hold them
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        claim.bind(pool._address(own_pool, builder_stamp(), place) + "-claim")
        claims.append(claim)
    try:
        edit(project, "準備する", "測定する")
        build(project)  # with workers of its own, ended with it
        assert kept_pids(own_pool) == pids
    finally:
        for claim in claims:
            claim.close()
    assert "測定する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))


def joins_kept(pool_name: str) -> dict[int, str]:
    """By kept worker (pid), the styles key of the book whose join it keeps, as it greets a build."""
    return {greeted.pid: greeted.join_kept_for for greeted in _greetings(pool_name)}


def test_the_worker_that_joined_a_report_keeps_its_join_for_the_next_build(project: Path, own_pool: str) -> None:
    """It says so when the next build greets it, and that build joins there again: the parts sent
    as they were are kept (see Session.join)."""
    build(project)
    first = joins_kept(own_pool)
    assert set(first) == kept_pids(own_pool)  # each greets with its own id (KeptWorkers.stop ends them by it)
    assert len([key for key in first.values() if key]) == 1  # one keeps it (the machine's cores: the workers)
    edits = (("準備する", "測定する"), ("測定する", "準備する" + "。追加の文" * 200))  # the same length, longer
    for old, new in edits:
        edit(project, old, new)
        build(project)
        assert joins_kept(own_pool) == first
    assert "追加の文" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))


def test_a_kept_worker_greets_with_the_parts_it_can_resume_and_the_next_build_lays_them_out_there(
    project: Path, own_pool: str
) -> None:
    """A worker that laid out an edited chapter keeps that layout to resume, and says so when
    the next build greets it (a report's first build keeps none); that build sends the chapter
    there again, whichever worker is free first (see Session._send_layouts)."""
    build(project)
    assert all(not greeted.resumes for greeted in _greetings(own_pool))  # a first build keeps none (but an index)
    edit(project, "準備する", "測定する")
    build(project)
    method = f"{project.resolve()}/method"
    keeping = [greeted.pid for greeted in _greetings(own_pool) if method in greeted.resumes]
    assert len(keeping) == 1
    edit(project, "測定する", "準備する")
    build(project)
    assert [greeted.pid for greeted in _greetings(own_pool) if method in greeted.resumes] == keeping
    assert "準備する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))


def _greetings(pool_name: str) -> list[pool.Greeting]:
    """What each kept worker of the pool says as it greets a build (hung up on at once)."""
    found = []
    for place in range(pool_size()):
        greeted = pool._greeted(pool._address(pool_name, builder_stamp(), place))
        if greeted is not None:
            greeted.connection.close()
            found.append(greeted)
    return found


def test_a_kept_worker_that_died_is_replaced(project: Path, own_pool: str) -> None:
    build(project, formats=("epub",))
    (pid,) = kept_pids(own_pool)
    os.kill(pid, signal.SIGKILL)
    assert gone({pid}, 10)
    edit(project, "準備する", "測定する")
    build(project, formats=("epub",))
    assert len(kept_pids(own_pool) - {pid}) == 1


def test_workers_leave_no_temporary_files(
    project: Path, own_pool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeasyPrint copies a report's fonts into a temporary folder that only its finalizer removes,
    which a worker ended by a signal never runs: each worker has a folder of its own, removed when
    it is stopped (SIGTERM), and, when it was killed outright, by the next worker to start."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    build(project)
    pids = kept_pids(own_pool)
    folders = {int(folder.name.split("-")[2]): folder for folder in temporary.iterdir()}
    assert set(folders) == pids
    assert any(any(folder.iterdir()) for folder in folders.values())  # the fonts' copies
    killed = min(pids)
    os.kill(killed, signal.SIGKILL)
    assert gone({killed}, 10)
    assert folders[killed].is_dir()
    edit(project, "準備する", "測定する")
    build(project)  # a worker takes the killed one's place
    assert not folders[killed].exists()
    assert all(folder.is_dir() for pid, folder in folders.items() if pid != killed)  # the living's kept
    stop_kept(kept_processes(own_pool))
    assert list(temporary.iterdir()) == []
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "0")  # workers of the build's own, ended with it
    edit(project, "測定する", "準備する")
    build(project)
    assert list(temporary.iterdir()) == []


def test_a_worker_keeps_what_it_loaded_out_of_the_garbage_collector_s_full_collections(tmp_path: Path) -> None:
    """WeasyPrint's modules and the fonts' tables live as long as the worker: frozen (see
    report.render.weasy.become_worker), a full collection in a layout no longer goes over them.
    Its collector is off: an edit's jobs are not collected while they run."""
    code = (
        "import gc; from report.render.weasy import become_worker; become_worker(None); "
        "print(gc.get_freeze_count(), len(gc.get_objects()), int(gc.isenabled()))"
    )
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    frozen, tracked, collecting = map(int, result.stdout.split())
    assert frozen > 20_000 and tracked < frozen / 10
    assert not collecting
    assert list(tmp_path.iterdir()) == []  # its temporary folder, removed as it ended


def test_a_worker_s_collector_comes_back_once_its_jobs_made_many_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build's jobs make millions of objects, an edit's some tens of thousands: the
    worker's collector, off, is turned on again between jobs past the limit, so that a cold
    build's garbage is collected as it goes."""
    monkeypatch.setattr(weasy, "_UNCOLLECTED_AT_MOST", 5_000)
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        made = [[index] for index in range(1_000)]
        weasy._collector_back_if_many()
        assert not gc.isenabled()
        made += [[index] for index in range(10_000)]
        weasy._collector_back_if_many()
        assert gc.isenabled()
    finally:
        if not was_enabled:
            gc.disable()
    assert len(made) == 11_000


def test_a_kept_worker_collects_once_the_build_s_process_has_ended_not_while_another_build_calls(
    tmp_path: Path,
) -> None:
    """The build hangs up on its workers before its last steps: a kept worker's collection
    waits for its process to end (a second at most), and is left for later if the next build
    calls meanwhile (see report.daemon.pool._build_over)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "listener"))
    listener.listen(1)
    with listener:
        builder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        started = time.monotonic()
        assert pool._build_over(builder.pid, listener)
        assert ended(builder.pid) and time.monotonic() - started < pool._BUILD_ENDS_WITHIN
        builder.wait()
        assert pool._build_over(builder.pid, listener)  # ended and reaped: no wait

        builder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as caller:
                caller.connect(str(tmp_path / "listener"))
                started = time.monotonic()
                assert not pool._build_over(builder.pid, listener)
                assert time.monotonic() - started < 0.5 and builder.poll() is None
        finally:
            builder.kill()
            builder.wait()


def test_whether_a_process_has_ended_with_or_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leftover files are removed, and stale workers' folders swept, by whether their process
    has ended: /proc tells (a zombie too); a system without it is asked with signal 0."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while not ended(child.pid) and time.monotonic() < deadline:  # a zombie until it is reaped
        time.sleep(0.01)
    assert ended(child.pid)
    assert not ended(os.getpid())
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: _no_proc(path) or real_open(path, *a, **k))
    assert not ended(os.getpid())
    assert not ended(1)  # another user's, or one's own init: running either way
    child.wait()
    assert ended(child.pid)


def _no_proc(path: object) -> None:
    if str(path).startswith("/proc/"):
        raise FileNotFoundError(path)


def test_when_workers_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORT_KEEP_WORKERS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert keep_seconds() == DEFAULT_KEEP_SECONDS
    monkeypatch.setenv("CI", "true")  # CI machines run one build: nothing to keep them for
    assert keep_seconds() == 0
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "30")
    assert keep_seconds() == 30
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "0")
    assert keep_seconds() == 0
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "soon")
    monkeypatch.delenv("CI")
    assert keep_seconds() == DEFAULT_KEEP_SECONDS


def test_how_much_memory_a_kept_worker_may_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sixteenth of the machine's memory, at least 400 MB, unless REPORT_WORKER_MEMORY says."""
    monkeypatch.delenv("REPORT_WORKER_MEMORY", raising=False)
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_ceiling() == max(400 * 2**20, machine // 16)
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**19}[name])  # 2 GB
    assert memory_ceiling() == 400 * 2**20
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**23}[name])  # 32 GB
    assert memory_ceiling() == 2 * 2**30
    monkeypatch.setenv("REPORT_WORKER_MEMORY", "250")
    assert memory_ceiling() == 250 * 2**20
    monkeypatch.setenv("REPORT_WORKER_MEMORY", "lots")
    assert memory_ceiling() == 2 * 2**30


def test_a_worker_keeps_the_stylesheets_of_the_last_few_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept workers serve every report: each report's parsed stylesheets are kept, a few at most."""
    monkeypatch.setenv("FONTCONFIG_FILE", "")  # (the worker sets it: restored at the end)
    fontconfig = fonts.fontconfig_file(tmp_path)
    worker: Worker = start_worker(None)

    def styles(number: int) -> Styles:
        css = f"p {{ margin: {number}px }}"
        return Styles((css,), tmp_path.as_uri() + "/", (tmp_path,), fontconfig, None, str(number), ())

    worker.use(styles(0))
    parsed_first = worker.css
    for number in range(1, STYLES_KEPT):
        worker.use(styles(number))
    worker.use(styles(0))
    assert worker.css is parsed_first  # kept: not parsed again
    for number in range(STYLES_KEPT, 2 * STYLES_KEPT):
        worker.use(styles(number))
    assert len(worker._parsed) == STYLES_KEPT
    worker.use(styles(0))
    assert worker.css is not parsed_first  # the least recently used was dropped


def test_report_status_lists_and_report_stop_ends_the_kept_processes_of_the_pool(
    project: Path, own_pool: str, tmp_path: Path
) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    assert run_report("build", project, "--format", "epub", env=environment).returncode == 0
    other_pool = new_pool()  # another pool's processes (as a developer's own): never stopped here
    other = copy_fixture("en-basic", tmp_path / "other")
    try:
        assert (
            run_report("build", other, "--format", "epub", env={**environment, "REPORT_POOL": other_pool}).returncode
            == 0
        )
        deadline = time.monotonic() + 20
        while not kept_pids(own_pool, SERVER_KIND) and time.monotonic() < deadline:
            time.sleep(0.05)
        workers, servers = kept_pids(own_pool), kept_pids(own_pool, SERVER_KIND)
        assert len(workers) == 1 and len(servers) == 1
        status = run_report("status", env=environment)
        assert status.returncode == 0
        for pid, kind in [(pid, WORKER_KIND) for pid in workers] + [(pid, SERVER_KIND) for pid in servers]:
            line = next(line for line in status.stdout.splitlines() if line.split()[0] == str(pid))
            assert kind in line and own_pool in line and " MB" in line
        assert status.stdout.splitlines()[-1].startswith("2 kept processes (1 build server, 1 PDF worker), ")
        stop = run_report("stop", env=environment)
        assert stop.returncode == 0
        assert stop.stdout == "stopped 2 kept processes (1 build server, 1 PDF worker)\n"
        assert gone(workers | servers, 1)
        assert kept_pids(other_pool)  # the other pool's are still there
    finally:
        stop_kept(kept_processes(other_pool))


def test_diagnostics_print_as_written_without_emoji_codes(tmp_path: Path) -> None:
    """``path:100:`` holds ``:100:``, an emoji code: printed as it is."""
    root = copy_fixture("ja-basic", tmp_path)
    method = root / "chapters" / "02-method.md"
    lines = method.read_text(encoding="utf-8").splitlines()
    lines += [""] * (99 - len(lines)) + ["[](#no-such-target) :smile: [bold]x[/bold]"]
    method.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_report("check", root)
    assert run.returncode == 1
    assert "chapters/02-method.md:100: " in run.stderr
    assert "💯" not in run.stderr and "😄" not in run.stderr
    assert run.stderr.endswith("1 problem.\n")  # a check writes nothing: it does not say so


def test_a_report_folder_holding_a_report_package_runs_none_of_its_code(project: Path, own_pool: str) -> None:
    """The kept processes are started from the build's working folder, and ``python -c`` puts
    that folder first on the path: a ``report`` package there (this repository at another
    commit, or a report that means harm) was imported as the builder. The command as an author
    runs it, twice: the first build starts the kept processes, the second is theirs."""
    marker = project / "ran"
    package = project / "report"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    command = Path(sys.executable).with_name("report")  # the installed command (not python -m, run from here)
    for _ in range(2):
        done = subprocess.run([str(command), "build", "."], cwd=project, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
    assert kept_pids(own_pool) and kept_pids(own_pool, SERVER_KIND)
    assert not marker.exists()
