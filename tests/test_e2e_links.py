"""End to end, a book written for another tool: one folder per chapter (README.md, index.md),
links between chapter files, the same section id in two chapters, extra front matter keys,
an HTML comment before a title (tests/fixtures/book-folders)."""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest
from conftest import BuiltProject
from helpers import BUNDLED_PDF_FAMILIES, copy_fixture, diagnostics_of, pdffonts, run_report, squeeze
from lxml import etree

from report.assemble import Assembler
from report.build import prepare

XHTML = "{http://www.w3.org/1999/xhtml}"
# Where each warning stands and what it names: the build succeeds with them.
WARNINGS = [
    ("src/README.md", 4, ['"author"', "metadata"]),
    ("src/README.md", 5, ['"tags"', "metadata"]),
    ("src/advanced/index.md", 3, ['"description"', "metadata"]),
    ("src/advanced/index.md", 6, ['"# 応用" title is used', '"応用編"']),
    ("src/README.md", 11, ['"code/example.py"', "not a chapter"]),
]


@pytest.fixture(scope="module")
def book(build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    project = build_project("book-folders")
    assert project.run.returncode == 0, project.run.stderr
    return project


def test_builds_with_a_warning_for_each_thing_it_cannot_use(book: BuiltProject) -> None:
    found = diagnostics_of(book.run.stderr)
    assert len(found) == len(WARNINGS), book.run.stderr
    for (path, line, words), diagnostic in zip(sorted(WARNINGS), sorted(found, key=_where), strict=True):
        assert _where(diagnostic) == (path, line), book.run.stderr
        for word in words:
            assert word in diagnostic["message"], (word, book.run.stderr)


def _where(diagnostic: re.Match[str]) -> tuple[str, int]:
    return (Path(diagnostic["path"]).as_posix().split("book-folders/")[-1], int(diagnostic["line"]))


def test_strict_makes_the_warnings_errors(book: BuiltProject, tmp_path: Path) -> None:
    run = run_report("build", book.root, "--strict", "-o", tmp_path / "out")
    assert run.returncode == 1
    assert len(diagnostics_of(run.stderr)) == len(WARNINGS), run.stderr
    assert not (tmp_path / "out").exists()


def test_pdf_is_sound_and_embeds_only_bundled_fonts(book: BuiltProject) -> None:
    check = subprocess.run(["qpdf", "--check", str(book.pdf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for row in pdffonts(book.pdf):
        assert row["family"] in BUNDLED_PDF_FAMILIES and row["emb"] == "yes", row


def test_links_between_chapter_files_land_on_the_right_pages(book: BuiltProject) -> None:
    reader = pypdf.PdfReader(book.pdf)
    pages = {name: reader.get_destination_page_number(dest) for name, dest in reader.named_destinations.items()}
    texts = [squeeze(page.extract_text() or "") for page in reader.pages]
    # The section a link names, not only its chapter: let束縛 starts a page after its chapter.
    assert "2.1let束縛" in texts[pages["let"]] and pages["let"] > pages["basic-variables"]
    # The same section id in two chapters: two destinations, each on its own chapter's page.
    assert "はじめにのまとめ。" in texts[pages["intro--summary"]]
    assert "基本のまとめ。" in texts[pages["basics--summary"]]
    links = {}
    for number, page in enumerate(reader.pages):
        for annotation in page.get("/Annots") or []:
            destination = annotation.get_object().get("/Dest")
            if destination is not None and number != pages["toc"]:
                links.setdefault(texts[number][:12], set()).add(str(destination))
    intro, basics, variables, advanced = (texts[pages[name]][:12] for name in ("intro", "basics", "let", "advanced"))
    assert links[intro] == {"basics", "let", "advanced"}  # ./README.md, README.md#let, index.md
    assert links[basics] == {"basics--summary", "basic-variables"}  # [](#summary) in its own chapter; a folder
    assert links[variables] == {"let", "intro--summary"}
    assert links[advanced] == {"let"}
    assert "第3章" in texts[pages["intro"]] and "サンプルコード" in texts[pages["intro"]]


def test_links_between_chapter_files_reach_the_right_epub_documents(book: BuiltProject) -> None:
    with zipfile.ZipFile(book.epub) as archive:
        documents = {
            Path(name).name: etree.fromstring(archive.read(name))
            for name in archive.namelist()
            if name.endswith(".xhtml")
        }
    links = {
        (name, "".join(a.itertext())): a.get("href")
        for name, document in documents.items()
        for a in document.iter(f"{XHTML}a")
        if name not in ("nav.xhtml", "cover.xhtml") and "fnref" not in (a.get("class") or "")
    }
    assert links == {
        ("intro.xhtml", "基本の章"): "basics.xhtml#basics",
        ("intro.xhtml", "let束縛の節"): "basic-variables.xhtml#let",
        ("intro.xhtml", "第3章"): "advanced.xhtml#advanced",
        ("basics.xhtml", "1.1節"): "#basics--summary",
        ("basics.xhtml", "次の章"): "basic-variables.xhtml#basic-variables",
        ("basic-variables.xhtml", "2.1節"): "#let",
        ("basic-variables.xhtml", "はじめにのまとめ"): "intro.xhtml#intro--summary",
        ("advanced.xhtml", "let束縛"): "basic-variables.xhtml#let",
    }
    for (name, _), href in links.items():
        document, _, fragment = href.rpartition("#")
        assert fragment in documents[document or name].xpath("//@id"), href
    assert "サンプルコード" in "".join(documents["intro.xhtml"].itertext())


def test_epubcheck_has_no_errors_or_warnings(book: BuiltProject) -> None:
    assert book.epubcheck is not None
    problems = [m for m in book.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert problems == []


def test_other_front_matter_keys_are_the_chapters_metadata_in_templates(book: BuiltProject) -> None:
    resolved, _ = prepare(book.root)
    template = Assembler(resolved).env.from_string(
        "{% for chapter in book.chapters %}{{ chapter.id }}:{{ chapter.meta.author | default('-') }}"
        "{{ chapter.meta.tags | default([]) | join('/') }} {% endfor %}"
    )
    assert template.render() == "intro:山田太郎入門/変数 basics:- basic-variables:- advanced:- "


def test_a_linked_file_that_goes_away_is_noticed_by_the_next_build(tmp_path: Path) -> None:
    """The files a chapter links to are inputs of the build: not "up to date" once one is deleted."""
    root = copy_fixture("book-folders", tmp_path / "src")
    assert run_report("build", root, "--format", "epub", "-o", tmp_path / "out").returncode == 0
    (root / "src" / "code" / "example.py").unlink()
    run = run_report("build", root, "--format", "epub", "-o", tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'link "code/example.py" is to a file that does not exist: printed as its text' in run.stderr
