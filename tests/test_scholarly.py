"""Callouts, citations with a bibliography, and the index (issue 21): the ja and en
scholarly fixtures built once each, read back from their PDF and EPUB, checked by EPUBCheck
and Ace."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import BuiltProject
from helpers import pdftotext, squeeze
from lxml import etree
from test_epub_quality import NS, AceRun, Epub, ace_available
from test_parse import parse_text

SCHOLARLY = ("ja-scholarly", "en-scholarly")
CALLOUT_TITLES = {
    "ja-scholarly": ["注", "ヒント", "重要", "警告", "注意", "独自の題", "警告"],
    "en-scholarly": ["Note", "Tip", "Important", "Warning", "Caution", "A titled tip", "Caution"],
}

CALLOUT_BODIES = {
    "ja-scholarly": ["注の囲みの本文。", "ヒントの囲みの本文。", "重要の囲みの本文。", "警告の囲みの本文。",
                     "注意の囲みの本文。", "題を付けた囲みの本文。", "Pandoc形式の警告の本文。"],
    "en-scholarly": ["The body of a note.", "The body of a tip.", "The body of an important callout.",
                     "The body of a warning.", "The body of a caution.", "A tip with its own title.",
                     "A Pandoc-style caution."],
}  # fmt: skip


@pytest.fixture(scope="module")
def projects(
    build_project: Callable[[str], BuiltProject], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BuiltProject]:
    built = {name: build_project(name) for name in SCHOLARLY}
    for project in built.values():
        assert project.run.returncode == 0, f"{project.name}:\n{project.run.stderr}"
    return built


@pytest.fixture(scope="module")
def ace_runs(projects: dict[str, BuiltProject], tmp_path_factory: pytest.TempPathFactory) -> dict[str, AceRun]:
    if not ace_available():
        return {}
    base = tmp_path_factory.mktemp("ace-scholarly")
    return {name: AceRun(project.epub, base / name).start() for name, project in projects.items()}


@pytest.fixture(params=SCHOLARLY)
def project(request: pytest.FixtureRequest, projects: dict[str, BuiltProject]) -> BuiltProject:
    return projects[request.param]


def chapter_document(project: BuiltProject, chapter_id: str) -> etree._Element:
    epub = Epub(project.epub)
    return epub.document(f"{chapter_id}.xhtml")


def text_of(element: etree._Element) -> str:
    return "".join(element.itertext()).strip()


# --- checkers -------------------------------------------------------------------------------


def test_epubcheck_has_no_errors_or_warnings(project: BuiltProject) -> None:
    assert project.epubcheck is not None
    messages = [m for m in project.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert messages == [], messages


def test_ace_finds_no_violations(project: BuiltProject, ace_runs: dict[str, AceRun]) -> None:
    if not ace_runs:
        pytest.skip("Ace is not installed (./run test installs it)")
    assert ace_runs[project.name].violations(("minor", "moderate", "serious", "critical")) == []


# --- callouts -------------------------------------------------------------------------------


def test_callouts_are_titled_asides_in_the_epub(project: BuiltProject) -> None:
    document = chapter_document(project, "callouts")
    asides = document.findall(".//x:aside[@role='note']", NS)
    assert [text_of(aside.find("x:p[@class='callout-title']", NS)) for aside in asides] == CALLOUT_TITLES[project.name]
    kinds = [aside.get("class").split()[1] for aside in asides]
    assert kinds[:5] == ["callout-note", "callout-tip", "callout-important", "callout-warning", "callout-caution"]


def test_each_callout_prints_its_title_and_body_on_one_page(project: BuiltProject) -> None:
    pages = [squeeze(page) for page in pdftotext(project.pdf).split("\f")]
    for title, body in zip(CALLOUT_TITLES[project.name], CALLOUT_BODIES[project.name], strict=True):
        assert any(squeeze(title + body) in page for page in pages), (title, body)


def test_fenced_div_with_broken_attributes_is_an_error_with_its_line() -> None:
    _, diagnostics = parse_text('本文。\n\n::: {.note title="unclosed}\nx\n:::\n')
    ((error),) = diagnostics.errors
    assert error.location.line == 3 and "fenced div" in error.message


def test_word_slots_cannot_be_forged_in_raw_html() -> None:
    chapter, _ = parse_text('<span class="word-slot" title="callout-note"></span>\n')
    assert 'class="word-slot"' not in chapter.html
