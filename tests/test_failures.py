"""A failed build leaves the previous outputs untouched and nothing behind (issue 24): each step
made to fail on purpose (``REPORT_FAULT``, see report/faults.py), Ctrl-C during the layout."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import copy_fixture, run_report, stop, unavailable

from report.faults import FAULT_VARIABLE, STEPS


def _snapshot(root: Path, out: Path) -> dict[str, str]:
    """Every file of the output folder and of the report folder but its cache (which a failed
    build may fill: see _left_behind), by path, with its hash."""
    files = {}
    for folder in (root, out):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".report-cache" not in path.parts:
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _left_behind(root: Path, out: Path) -> list[Path]:
    """Temporary files: the outputs' (``.NAME.FORMAT.PID.tmp``, ``.NAME.PID.old``), the parts being
    drawn (``parts/KEY.PID.pdf``), the cache's (``.tmp-*``)."""
    names = ("*.tmp", "*.old", ".tmp-*")
    found = [path for folder in (root, out) for name in names for path in folder.rglob(name)]
    return sorted(found + list(root.rglob("parts/*.pdf")))


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """ja-basic built once, then a chapter edited: the next build has everything to do again."""
    base = tmp_path_factory.mktemp("failures")
    root = copy_fixture("ja-basic", base / "src")
    out = base / "out"
    run = run_report("build", root, "-o", out)
    assert run.returncode == 0, run.stderr
    chapter = root / "chapters" / "01-intro.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n\n追記された段落。\n", encoding="utf-8")
    return root, out


def _copy(built_once: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    root, out = built_once
    shutil.copytree(root, tmp_path / "src", symlinks=True)
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "src", tmp_path / "out"


def _environment(**changes: str) -> dict[str, str]:
    return {**os.environ, "REPORT_KEEP_WORKERS": "0", **changes}


# One output is one rename: there is no step between two.
CASES = [
    (step, formats) for formats in ("pdf,epub", "pdf", "epub") for step in STEPS if step != "rename" or "," in formats
]


@pytest.mark.parametrize(("step", "formats"), CASES)
def test_a_step_that_fails_leaves_the_outputs_as_they_were(
    step: str, formats: str, built_once: tuple[Path, Path], tmp_path: Path
) -> None:
    root, out = _copy(built_once, tmp_path)
    before = _snapshot(root, out)
    run = run_report(
        "build", root, "-o", out, "--format", formats, "--no-cache", env=_environment(**{FAULT_VARIABLE: step})
    )
    reached = step != "epub" if formats == "pdf" else step in ("epub", "pdf-layout") if formats == "epub" else True
    if not reached:  # the step is not part of this build: it succeeds
        assert run.returncode == 0, run.stderr
        return
    assert run.returncode == 3, run.stdout + run.stderr
    assert f"{FAULT_VARIABLE}: failed at {step}" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert _snapshot(root, out) == before
    assert _left_behind(root, out) == []


def test_the_next_build_after_a_failure_succeeds_and_matches_a_clean_one(
    built_once: tuple[Path, Path], tmp_path: Path
) -> None:
    root, out = _copy(built_once, tmp_path)
    failed = run_report("build", root, "-o", out, env=_environment(**{FAULT_VARIABLE: "rename"}))
    assert failed.returncode == 3
    assert run_report("build", root, "-o", out, env=_environment()).returncode == 0
    reference = tmp_path / "reference"
    assert run_report("build", root, "-o", reference, "--no-cache", env=_environment()).returncode == 0
    for name in ("ja-basic.pdf", "ja-basic.epub"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()


def _stalled(root: Path, out: Path, step: str) -> subprocess.Popen[str]:
    """A build in a session of its own (as a terminal's foreground job), stalled at ``step``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "report", "build", str(root), "-o", str(out), "--no-cache"],
        env=_environment(**{FAULT_VARIABLE: f"{step}:stall"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As a terminal's foreground job has it, whatever the tests were started as (a shell's
        # background job without job control starts with Ctrl-C ignored, and so would the build).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if f"stalled at {step}" in line:
                return process
        raise AssertionError(f"the build ended without reaching {step}: {process.wait()}")
    except BaseException:  # (a timeout too) the build and its workers are stopped
        stop(process)
        raise


def _group_ended(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("step", ["pdf-layout", "rename"])
def test_ctrl_c_leaves_the_outputs_as_they_were_and_no_process(
    step: str, built_once: tuple[Path, Path], tmp_path: Path
) -> None:
    root, out = _copy(built_once, tmp_path)
    before = _snapshot(root, out)
    process = _stalled(root, out, step)
    try:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: to the whole foreground group, workers included
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            stop(process)
    assert process.returncode == 1, stdout + stderr
    assert "interrupted; previous outputs are unchanged." in stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert _snapshot(root, out) == before
    assert _left_behind(root, out) == []
    for _ in range(100):  # the workers end with the build
        if _group_ended(process.pid):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert _group_ended(process.pid), "a process of the build outlived it"


def test_a_build_killed_between_the_renames_leaves_each_output_old_or_new(
    built_once: tuple[Path, Path], tmp_path: Path
) -> None:
    """SIGKILL cannot be undone: each output is then whole, old or new, and the next build puts
    the pair right and clears what the killed one left."""
    root, out = _copy(built_once, tmp_path)
    old = {name: (out / name).read_bytes() for name in ("ja-basic.pdf", "ja-basic.epub")}
    process = _stalled(root, out, "rename")
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert (out / "ja-basic.pdf").read_bytes() != old["ja-basic.pdf"]  # renamed first
    assert (out / "ja-basic.epub").read_bytes() == old["ja-basic.epub"]
    assert run_report("build", root, "-o", out, env=_environment()).returncode == 0
    assert (out / "ja-basic.epub").read_bytes() != old["ja-basic.epub"]
    assert _left_behind(root, out) == []


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_check_that_cannot_run_fails_on_ci_and_is_skipped_elsewhere(
    ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="Ace is not installed"):
        unavailable("Ace is not installed")
