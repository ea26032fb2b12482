"""Property-based: whatever an author types, load → parse → resolve either succeeds with HTML
that parses, or fails with ReportError diagnostics that have a location — never anything else."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from report.assemble import to_xhtml
from report.build import build
from report.errors import Diagnostics, ReportError
from report.load import load_project
from report.parse import parse_chapter
from report.render.workers import PdfWorkers
from report.resolve import resolve_book

GOLDEN_ASSETS = Path(__file__).resolve().parent / "golden" / "assets"

# Pieces that exercise the dialect's corners: braces and pipes (ruby, attributes), brackets
# (links, footnotes, cross-references), tables, HTML-ish text, CJK, headings and fences.
FRAGMENTS = [
    "{", "}", "|", "[", "]", "(", ")", "#", "##", "### ", "\n", "\n\n", " ", "*", "**", "~~", "`", "```", "^",
    ":", "!", "\\", "<", ">", "&", "&amp;", "&#x3C;", '"', "'", "-", "---", "1.", "> ", ": ", "\t",
    "{漢字|かんじ}", "{漢字|かん|じ}", "{|}", "{a|}", "{#id}", "{.cls}", "{#sec .unnumbered}", "{.lead}\n",
    "[^1]", "[^1]: 注。\n", "[^x]", "^[", "^[インライン注]", "[](#sec)", "[](#nowhere)", "[text](#sec)", "[](#fig)", "[](https://e.x)",
    "[](02-b.md)", "[b](./02-b.md#a)", "[x](02-b.md#none)", "[](assets/sample.png)", "[](gone.md)", "\n## 節 {#a}\n",
    "![alt](assets/sample.png)", "![a](assets/label.svg \"t\"){#fig}", "![x](missing.png)", "![x](../../../x.png)",
    "\n| a | b |\n|---|---|\n| 1 | 2 |\n", "Table: 表 {#tbl}\n", "\n## 節 {#sec}\n", "\n# 二つ目\n",
    "<span>", "</span>", "<script>alert(1)</script>", "<div>", "</div>", "<b onclick='x'>", "<!--", "-->",
    '<span class="slot" title="sec"></span>', '<span class="svg-slot" title="9"></span>', "<a href='#sec'>",
    "</a>", "<img src=x onerror=alert(1)>", "<iframe>", "<br>", "<ruby>", "<rt>",
    "日本語", "한국어", "中文", "𠮷", "ﾊﾝｶｸ", "\u3000", "\u200b", "é", "≒", "⦅⦆", "\x07", "\x1b", "&#7;", "&#xFFFF;",
]  # fmt: skip
markdown_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40).map("".join)


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    """One report folder reused by every example (hypothesis and function fixtures do not mix)."""
    root = Path(tempfile.mkdtemp(prefix="report-props-"))
    shutil.copytree(GOLDEN_ASSETS, root / "chapters" / "assets")
    (root / "report.toml").write_text(
        'title = "P"\nlanguage = "ja"\nchapters = ["chapters/01-a.md", "chapters/02-b.md"]\n', encoding="utf-8"
    )
    (root / "chapters" / "02-b.md").write_text("# B\n\n[](#a)\n\n## 節 {#sec}\n", encoding="utf-8")
    yield root
    shutil.rmtree(root)


def run_pipeline(root: Path) -> None:
    """load → parse → resolve; ReportError is the only way to fail, with a location per problem."""
    try:
        project = load_project(root)
        diagnostics = Diagnostics()
        parsed = tuple(parse_chapter(c, project.config.root, diagnostics) for c in project.chapters)
        book = resolve_book(project.config, parsed, diagnostics)
        diagnostics.raise_if_errors()
    except ReportError as error:
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert diagnostic.location.path.is_relative_to(root)
            assert diagnostic.location.path.name in ("report.toml", "01-a.md", "02-b.md")
            assert diagnostic.location.line is not None and diagnostic.location.line >= 1, str(diagnostic)
            assert diagnostic.message and "\n" not in diagnostic.message
        return
    first, second = ({*re.findall(r'\sid="([^"]+)"', chapter.html)} for chapter in book.chapters)
    assert not first & second  # ids scoped per chapter are still unique in the print document
    for chapter in book.chapters:
        for fragment in (chapter.html, chapter.title_html, *(note.html for note in chapter.footnotes)):
            if fragment.strip():
                lxml_html.fragments_fromstring(fragment)  # HTML that parses
                xhtml = etree.fromstring(f"<div>{to_xhtml(fragment)}</div>".encode())  # and well-formed as XHTML
                assert not xhtml.xpath("//script | //iframe | //@*[starts-with(local-name(), 'on')]")
            assert '<span class="slot"' not in fragment  # every number slot was filled
            assert "\ue000" not in fragment
        # Every inline-SVG slot in the body has its SVG.
        chapter.html_with_svgs(chapter.html)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown=markdown_text)
def test_any_markdown(workspace: Path, markdown: str) -> None:
    (workspace / "chapters" / "01-a.md").write_text("---\ntitle: A\nid: a\n---\n" + markdown, encoding="utf-8")
    run_pipeline(workspace)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown=markdown_text)
def test_any_markdown_without_front_matter(workspace: Path, markdown: str) -> None:
    (workspace / "chapters" / "01-a.md").write_text(markdown, encoding="utf-8")
    run_pipeline(workspace)


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["front", "body", "back", "a b", "1abc", "ok-id", "", " ", "漢字", "lead wide"]),
    st.dates(),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
front_matter = st.dictionaries(
    st.one_of(st.sampled_from(["title", "id", "matter", "class", "titel", "tags"]), st.text(max_size=6)),
    yaml_values,
    max_size=5,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=front_matter)
def test_any_front_matter_values(workspace: Path, meta: dict) -> None:
    text = yaml.safe_dump(meta, allow_unicode=True) if meta else ""
    (workspace / "chapters" / "01-a.md").write_text(f"---\n{text}---\n# 題\n\n本文。\n", encoding="utf-8")
    run_pipeline(workspace)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.lists(
        st.sampled_from([*"abc:-[]{}|>&*!%@`'\"#? \n\t123漢", "title: ", "id: ", "matter: "]), max_size=30
    ).map("".join)
)
def test_any_front_matter_text(workspace: Path, raw: str) -> None:
    (workspace / "chapters" / "01-a.md").write_text(f"---\n{raw}\n---\n# 題\n", encoding="utf-8")
    run_pipeline(workspace)


@pytest.fixture(scope="module")
def pdf_worker() -> Iterator[PdfWorkers]:
    with PdfWorkers() as worker:
        yield worker


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown=markdown_text)
@example(
    markdown="本文と{漢字|かんじ}。\n\n## 節 {#sec}\n\n注[^1]と[](#sec)。\n\n[^1]: 注。\n"
)  # a typical chapter among the random ones
def test_any_markdown_through_the_whole_pipeline(workspace: Path, pdf_worker: PdfWorkers, markdown: str) -> None:
    """Random Markdown through every stage to files: a clean ReportError, or a PDF that qpdf
    accepts and an EPUB whose documents are all well-formed and whose manifest is complete."""
    (workspace / "chapters" / "01-a.md").write_text(f"---\ntitle: A\nid: a\n---\n{markdown}", encoding="utf-8")
    out = workspace / "out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        build(workspace, out_dir=out, use_cache=False, workers=pdf_worker)
    except ReportError as error:
        assert all(d.location.line for d in error.diagnostics if d.location.path.suffix == ".md"), error
        return
    check = subprocess.run(["qpdf", "--check", str(out / f"{workspace.name}.pdf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    with zipfile.ZipFile(out / f"{workspace.name}.epub") as epub:
        names = set(epub.namelist())
        opf = etree.fromstring(epub.read("EPUB/content.opf"))
        for item in opf.iter("{http://www.idpf.org/2007/opf}item"):
            assert f"EPUB/{item.get('href')}" in names
            if item.get("media-type") == "application/xhtml+xml":
                etree.fromstring(epub.read(f"EPUB/{item.get('href')}"))  # well-formed
