"""The command line: init, usage errors, failed builds, and builds on a machine without fonts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pypdf
import pytest
from conftest import BuiltProject
from helpers import copy_fixture, diagnostics_of, pdffonts, run_report

from report.build import BuildResult, Timings
from report.cache import Stats
from report.cli import _timings_table
from report.watch import Watcher


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "args",
    [
        ["build", "--format", "docx"],
        ["build", "--format", ""],
        ["build", "--profile", "poster"],
        ["build", "--no-such-option"],
        ["no-such-command"],
        ["init"],
    ],
    ids=["format-docx", "format-empty", "profile", "option", "command", "init-without-folder"],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    run = run_report(*args, cwd=tmp_path)
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "dist").exists()


def test_version_and_help() -> None:
    assert run_report("--version").returncode == 0
    help_text = run_report("--help").stdout
    for command in ("build", "check", "init"):
        assert command in help_text


def test_no_report_toml_is_a_report_error(tmp_path: Path) -> None:
    run = run_report("build", tmp_path, "-o", tmp_path / "out")
    assert run.returncode == 1
    assert "report.toml" in run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("language", [None, "en", "zh-Hans", "ko"])
def test_init_then_build(language: str | None, tmp_path: Path) -> None:
    folder = tmp_path / "new-report"
    init = run_report("init", folder, *(["--language", language] if language else []), cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    config = (folder / "report.toml").read_text(encoding="utf-8")
    assert f'language = "{language or "ja"}"' in config
    check = run_report("check", folder, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "warning" not in check.stderr
    if language not in (None, "en"):
        return  # two full builds are enough; zh and ko are built from their fixtures
    build = run_report("build", folder, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "warning" not in build.stderr
    expected = ["new-report.epub", "new-report.pdf"]
    assert sorted(p.name for p in (folder / "dist").iterdir() if not p.name.startswith(".")) == expected
    assert build.stdout.startswith("wrote ") and all(name in build.stdout for name in expected)


def test_init_refuses_an_existing_report(tmp_path: Path) -> None:
    folder = tmp_path / "existing"
    assert run_report("init", folder).returncode == 0
    before = {path: _digest(path) for path in folder.rglob("*") if path.is_file()}
    again = run_report("init", folder, "--language", "en")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert {path: _digest(path) for path in folder.rglob("*") if path.is_file()} == before


def test_failed_build_leaves_previous_outputs(tmp_path: Path) -> None:
    root = copy_fixture("ja-basic", tmp_path)
    out = tmp_path / "out"
    first = run_report("build", root, "-o", out)
    assert first.returncode == 0, first.stderr
    before = {path.name: _digest(path) for path in out.iterdir()}
    assert {"ja-basic.pdf", "ja-basic.epub"} <= set(before)

    chapter = root / "chapters" / "02-method.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n壊れた参照 [](#no-such-id)。\n", encoding="utf-8")
    second = run_report("build", root, "-o", out)
    assert second.returncode == 1
    (problem,) = diagnostics_of(second.stderr)
    assert problem["path"].endswith("02-method.md")
    assert int(problem["line"]) == len(chapter.read_text(encoding="utf-8").splitlines())
    assert {path.name: _digest(path) for path in out.iterdir()} == before, "outputs changed or temporary files left"


def test_pdf_is_the_same_without_system_fonts(tmp_path: Path, build_project: Callable[[str], BuiltProject]) -> None:
    """fontconfig sees no system font at all: same pages, same embedded fonts as the normal build."""
    normal = build_project("ja-basic")
    assert normal.run.returncode == 0, normal.run.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "FONTCONFIG_PATH": str(empty),
        "XDG_DATA_DIRS": str(empty),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HOME": str(home),
    }
    env.pop("FONTCONFIG_FILE", None)
    root = copy_fixture("ja-basic", tmp_path)
    run = run_report("build", root, "--format", "pdf", "-o", tmp_path / "out", env=env)
    assert run.returncode == 0, run.stderr
    isolated = tmp_path / "out" / "ja-basic.pdf"

    def fonts(pdf: Path) -> list[str]:
        return sorted(row["name"].split("+", 1)[1] for row in pdffonts(pdf))

    assert fonts(isolated) == fonts(normal.pdf)
    assert len(pypdf.PdfReader(isolated).pages) == len(pypdf.PdfReader(normal.pdf).pages)


@pytest.mark.parametrize(
    "name",
    ["01.md~", "01.md.swp", "01.md.swx", "4913", "#01.md#", ".#01.md", "01.md___jb_tmp___", "01.md___jb_old___",
     "01.md.bak", "01.md.orig", "01.md.tmp", "01.md.tmp.1234", "sedAb12Cd", ".01.md.kate-swp"],
)  # fmt: skip
def test_editor_temporary_files_are_not_changes(tmp_path: Path, name: str) -> None:
    watcher = SimpleNamespace(root=tmp_path, out_dir=tmp_path / "dist", cache_dir=tmp_path / ".report-cache")
    assert not Watcher._watched(watcher, None, str(tmp_path / "chapters" / name))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["01-intro.md", "report.toml", "flows.svg", "print.css", "page.html.j2"])
def test_the_report_s_own_files_are_changes(tmp_path: Path, name: str) -> None:
    watcher = SimpleNamespace(root=tmp_path, out_dir=tmp_path / "dist", cache_dir=tmp_path / ".report-cache")
    assert Watcher._watched(watcher, None, str(tmp_path / "chapters" / name))  # type: ignore[arg-type]


def test_timings_are_a_readable_table() -> None:
    timings = Timings()
    timings.update({"prepared": 0.5, "laid out": 1.25, "done": 1.5})
    stats = Stats()
    for kind, hit in [("pdf-part", True), ("pdf-part", False), ("pdf-part", False), ("subset", True)]:
        stats.count(kind, hit)
    table = _timings_table(BuildResult((), (), rendered=("pdf",), stats=stats, timings=timings))
    assert table.splitlines() == [
        "stage               ended     took",
        "prepared           0.50 s   0.50 s",
        "laid out           1.25 s   0.75 s",
        "done               1.50 s   0.25 s",
        "rendered afresh: pdf",
        "cache entries        hits   misses",
        "pdf-part                1        2",
        "subset                  1        0",
    ]
