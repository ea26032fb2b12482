"""Session fixtures: each end-to-end project is built once, EPUBCheck runs once per EPUB."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import REPO_ROOT, EpubCheckRun, copy_fixture, report_toml, run_report
from hypothesis import settings

from report.i18n import words_for

# No wall-clock limits in unit tests: hypothesis's per-example deadline fails a correct test on
# a busy machine (one that reads files took 303 ms against its 200 ms under load).
settings.register_profile("report", deadline=None)
settings.load_profile("report")

# Builds in the suite don't leave workers running for the next build (hundreds of fixture
# folders would each keep a few); tests/test_kept_workers.py turns them on where it tests them.
os.environ["REPORT_KEEP_WORKERS"] = "0"
# A test that keeps them uses a pool of its own, never the developer's (see test_kept_workers.py).
os.environ["REPORT_POOL"] = f"tests-{os.getpid()}"

E2E_PROJECTS = ("ja-basic", "en-basic", "cjk-mixed", "ja-figures", "en-figures", "repository")

# An index mark, [term]{.index …}: a report with one gets a generated 索引 / Index chapter at the end.
INDEX_MARK = re.compile(r"\]\{[^}]*\.index\b")


@pytest.fixture(scope="session", autouse=True)
def temporary_files_in_the_suite_s_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What the suite's builds leave in the temporary folder on purpose (the crash reports of
    the fault-injection tests: a dozen a run) goes into the suite's own folder, which pytest
    removes after a few runs, not into /tmp."""
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    tempfile.tempdir = None  # read TMPDIR again


@dataclass
class BuiltProject:
    name: str
    root: Path  # the report folder that was built (a copy, or the repository itself)
    out: Path
    run: subprocess.CompletedProcess[str]
    config: dict
    chapter_titles: list[str]
    chapter_matters: list[str]
    epubcheck: EpubCheckRun | None = None

    @property
    def output_name(self) -> str:
        return self.config.get("output") or self.root.name

    @property
    def pdf(self) -> Path:
        return self.out / f"{self.output_name}.pdf"

    @property
    def epub(self) -> Path:
        return self.out / f"{self.output_name}.epub"


def chapter_front_matter(path: Path) -> tuple[dict, str]:
    """The chapter's front matter and body, read without the code under test."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.DOTALL)
    if not match:
        return {}, text
    return yaml.safe_load(match.group(1)) or {}, match.group(2)


def chapter_title(path: Path) -> str:
    meta, body = chapter_front_matter(path)
    if meta.get("title"):
        return str(meta["title"])
    heading = re.search(r"^# (.+?)(?:\s+\{[^{}]*\})?\s*$", body, flags=re.MULTILINE)  # without {#id .class}
    assert heading, f"{path} has no title"
    return heading.group(1)


@pytest.fixture(scope="session")
def build_project(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], BuiltProject]:
    """Build a project once per session with ``report build PATH -o OUT``; start EPUBCheck on its EPUB."""
    cache: dict[str, BuiltProject] = {}
    base = tmp_path_factory.mktemp("built")

    def build(name: str) -> BuiltProject:
        if name in cache:
            return cache[name]
        # The repository is built in place: only its gitignored .report-cache is written there.
        root = REPO_ROOT if name == "repository" else copy_fixture(name, base / "src")
        out = base / "out" / name
        run = run_report("build", root, "-o", out, cwd=base)
        config = report_toml(root)
        chapters = [root / c for c in config["chapters"]]
        project = BuiltProject(
            name=name,
            root=root,
            out=out,
            run=run,
            config=config,
            chapter_titles=[chapter_title(path) for path in chapters],
            chapter_matters=[chapter_front_matter(path)[0].get("matter", "body") for path in chapters],
        )
        if any(INDEX_MARK.search(path.read_text(encoding="utf-8")) for path in chapters):
            # At the end of the book, but before a closing colophon (奥付), as the builder puts it.
            end = len(chapters)
            while end and "colophon" in str(chapter_front_matter(chapters[end - 1])[0].get("class", "")).split():
                end -= 1
            project.chapter_titles.insert(end, words_for(config["language"]).index)
            project.chapter_matters.insert(end, "back")
        if run.returncode == 0 and project.epub.is_file():
            project.epubcheck = EpubCheckRun(project.epub).start()
        cache[name] = project
        return project

    return build


@pytest.fixture(scope="session")
def all_built(build_project: Callable[[str], BuiltProject]) -> dict[str, BuiltProject]:
    """All end-to-end projects, built one after another so that EPUBCheck overlaps the next build."""
    return {name: build_project(name) for name in E2E_PROJECTS}


@pytest.fixture(params=E2E_PROJECTS)
def built(request: pytest.FixtureRequest, all_built: dict[str, BuiltProject]) -> BuiltProject:
    project = all_built[request.param]
    assert project.run.returncode == 0, f"build of {project.name} failed:\n{project.run.stdout}\n{project.run.stderr}"
    return project


@pytest.fixture(scope="module", params=["ja-figures", "en-figures"])
def figures(request: pytest.FixtureRequest, build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    """The reports with formulas and charts (tests/test_math.py, tests/test_charts.py), built."""
    project = build_project(request.param)
    assert project.run.returncode == 0, project.run.stdout + project.run.stderr
    return project
