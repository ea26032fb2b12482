"""Workers kept between builds (report/render/workers.py): a build of a report leaves its PDF
workers running for the next build of the same report, and they go away on their own.

The suite turns kept workers off (conftest.py); these tests turn them on for their builds, find
the kept processes by their command line, and stop them at the end.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import pytest
from helpers import copy_fixture, pdftotext, processes_with, squeeze

from report.build import build
from report.cache import CACHE_DIR_NAME
from report.keep import DEFAULT_KEEP_SECONDS, keep_seconds
from report.render import workers
from report.render.workers import KeptWorkers


def kept_pids(root: Path) -> set[int]:
    """The kept workers serving the report in ``root``."""
    return processes_with(b"keep_serving", str((root / CACHE_DIR_NAME).resolve()))


def gone(pids: set[int], seconds: float) -> bool:
    """Whether the processes have exited (or are zombies) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_running(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":  # ended, and not yet reaped
        with suppress(ChildProcessError):  # (a worker this test process started, else another's child)
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "60")
    monkeypatch.delenv("CI", raising=False)
    root = copy_fixture("ja-basic", tmp_path)
    yield root
    for pid in kept_pids(root):
        os.kill(pid, signal.SIGTERM)


def edit(root: Path, old: str, new: str) -> None:
    method = root / "chapters" / "02-method.md"
    text = method.read_text(encoding="utf-8")
    assert old in text
    method.write_text(text.replace(old, new), encoding="utf-8")


def test_the_next_build_of_the_report_uses_the_kept_workers(project: Path) -> None:
    build(project)
    first = kept_pids(project)
    assert first, "the build left no workers running"
    edit(project, "準備する", "測定する")
    result = build(project)
    assert kept_pids(project) == first  # the same processes, none started
    assert result.rendered == ("pdf", "epub")
    assert "測定する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))
    build(project, formats=("epub",), out_dir=project / "epub-only")
    assert kept_pids(project) == first


def test_kept_workers_exit_when_no_build_comes(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_KEEP_WORKERS", "1")
    build(project, formats=("epub",))
    pids = kept_pids(project)
    assert pids
    assert gone(pids, 10)


def test_kept_workers_exit_when_the_cache_is_removed_and_are_not_reused(project: Path) -> None:
    build(project, formats=("epub",))
    pids = kept_pids(project)
    assert pids
    shutil.rmtree(project / CACHE_DIR_NAME)
    build(project, formats=("epub",))  # a new cache folder: a new set of workers
    assert gone(pids, 10)
    assert kept_pids(project) and not kept_pids(project) & pids


def test_kept_workers_exit_when_a_build_of_changed_code_starts_its_own(project: Path) -> None:
    """One set per report: a build by another version of the builder names its own set as the
    cache folder's current one, and the old set exits instead of idling next to it."""
    build(project, formats=("epub",))
    pids = kept_pids(project)
    current = project / CACHE_DIR_NAME / "workers" / "current"
    assert current.read_text() == workers._set_name((project / CACHE_DIR_NAME).resolve())
    current.write_text("report-pdf-of-another-version")
    assert gone(pids, 10)


def test_a_build_does_not_wait_for_workers_another_build_is_using(project: Path) -> None:
    build(project, formats=("epub",))
    pids = kept_pids(project)
    cache = (project / CACHE_DIR_NAME).resolve()
    with open(cache / "workers" / f"{workers._set_name(cache)}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a build using them holds it
        assert KeptWorkers.reach(cache, cache / "fonts.conf", 1, 60) is None
        edit(project, "準備する", "測定する")
        build(project)  # with workers of its own
        assert kept_pids(project) == pids
    assert "測定する" in squeeze(pdftotext(project / "dist" / "ja-basic.pdf"))


def test_a_kept_worker_that_died_is_replaced(project: Path) -> None:
    build(project, formats=("epub",))
    (pid,) = kept_pids(project)
    os.kill(pid, signal.SIGKILL)
    assert gone({pid}, 10)
    edit(project, "準備する", "測定する")
    build(project, formats=("epub",))
    assert len(kept_pids(project) - {pid}) == 1


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


def test_builds_at_once_give_a_new_cache_folder_one_token(tmp_path: Path) -> None:
    """The token names the set of workers: builds starting together on a new cache folder must
    all read the same one, never a file still empty."""
    for attempt in range(20):
        cache = tmp_path / str(attempt)
        (cache / "workers").mkdir(parents=True)
        with ThreadPoolExecutor(8) as pool:
            tokens = set(pool.map(workers._cache_token, [cache] * 8))
        assert len(tokens) == 1 and len(tokens.pop()) == 32
        assert [p.name for p in (cache / "workers").iterdir()] == ["token"]
