"""Incremental builds (report/cache.py): a change to any input shows in the outputs, an
unchanged input is never rebuilt, a damaged cache is recovered from.

No timing here: what was rebuilt is read from the cache's hit and miss counters, the
formats a build rendered afresh, and file hashes and modification times. Builds run
in this process (with one PDF worker for the module) so the counters can be read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import multiprocessing.connection
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from helpers import BUNDLED_PDF_FAMILIES, copy_fixture, pdffonts, pdftotext, run_report, squeeze
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import report.assemble
import report.build
import report.cache
import report.render.epub
import report.render.pdf
import report.resolve
from report import fonts
from report.assemble import Assembler
from report.build import BuildResult, build, prepare
from report.cache import CACHE_DIR_NAME, MEMO_MIN_BYTES, Cache, Stats, from_plain, to_plain
from report.errors import ReportError
from report.model import Label
from report.render import zipped
from report.render.pdf import _STYLES, PdfHeadStart, PdfRenderer, PdfRun
from report.render.weasy import (
    DrawJob,
    DrawnNumber,
    JoinJob,
    PartJob,
    PartLayout,
    Styles,
    numbers_packed_well,
    packed_numbers,
    unpacked_numbers,
)
from report.render.workers import PdfWorkers, Session


@pytest.fixture(scope="module")
def worker() -> Iterator[PdfWorkers]:
    with PdfWorkers() as pdf_worker:
        yield pdf_worker


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory, worker: PdfWorkers) -> Path:
    """The cache of a first build: each test starts from a copy, as an author's second build would
    (the fonts' cmaps and subsets are there; the PDF and EPUB, made for another folder, are not)."""
    root = copy_fixture("ja-basic", tmp_path_factory.mktemp("warm"))
    build(root, workers=worker)
    return root / CACHE_DIR_NAME


@pytest.fixture
def project(tmp_path: Path, warm_cache: Path) -> Path:
    root = copy_fixture("ja-basic", tmp_path)
    shutil.copytree(warm_cache, root / CACHE_DIR_NAME)
    return root


def run(root: Path, worker: PdfWorkers, **options: object) -> BuildResult:
    return build(root, workers=worker, **options)  # type: ignore[arg-type]


def pdf(root: Path) -> Path:
    return root / "dist" / "ja-basic.pdf"


def epub(root: Path) -> Path:
    return root / "dist" / "ja-basic.epub"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def epub_text(path: Path, suffix: str = ".xhtml") -> str:
    with zipfile.ZipFile(path) as archive:
        return "".join(archive.read(n).decode() for n in sorted(archive.namelist()) if n.endswith(suffix))


def epub_member(path: Path, ending: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(ending))
        return archive.read(name)


def files(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under the report (outputs and cache included): mtime, size, inode."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            status = path.stat()
            found[path.relative_to(root).as_posix()] = (status.st_mtime_ns, status.st_size, status.st_ino)
    return found


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


# --- nothing changed -----------------------------------------------------------------------------


def test_unchanged_report_is_not_rebuilt_and_nothing_is_written(project: Path, worker: PdfWorkers) -> None:
    first = run(project, worker)
    assert not first.up_to_date and first.rendered == ("pdf", "epub")
    before = files(project)

    again = run(project, worker)
    assert again.up_to_date and again.rendered == ()
    assert sum(again.stats.hits.values()) + sum(again.stats.misses.values()) == 0  # not even a cache lookup
    assert files(project) == before  # no output, cache file or lock touched
    assert [o.path for o in again.outputs] == [o.path for o in first.outputs]

    # The command line says so, and writes nothing either.
    cli = run_report("build", project)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("up to date:"), cli.stdout
    assert files(project) == before


def not_laid_out(result: BuildResult) -> bool:
    """No part of the PDF was laid out or drawn: all came from the cache."""
    stats = result.stats
    return stats.hits["pdf-layout"] > 0 and not stats.misses["pdf-layout"] and not stats.misses["pdf-part"]


def test_pdf_is_made_from_subsets_only(project: Path, worker: PdfWorkers) -> None:
    """WeasyPrint gets the faces cut to the document's characters, never the bundled files."""
    run(project, worker)
    cache = project / CACHE_DIR_NAME
    entries = list((cache / "v1" / "entries" / "pdf-layout").glob("*.json"))
    assert entries
    bundled = str(fonts.fonts_dir())
    for entry in entries:
        text = entry.read_text(encoding="utf-8")
        assert '"fetched"' in text and bundled not in text  # what WeasyPrint read: no bundled face
    configs = [path.read_text(encoding="utf-8") for path in cache.glob("fonts-*.conf")]
    assert any("<dir>" not in text for text in configs)  # its fontconfig knows no font folder
    rows = pdffonts(pdf(project))
    assert rows and {row["family"] for row in rows} <= BUNDLED_PDF_FAMILIES
    assert all(row["emb"] == "yes" and row["sub"] == "yes" for row in rows)


def test_changed_options_or_missing_outputs_rebuild(project: Path, worker: PdfWorkers) -> None:
    run(project, worker)
    epub_digest = digest(epub(project))

    epub(project).unlink()  # an output deleted: restored, from the cache
    restored = run(project, worker)
    assert not restored.up_to_date and restored.rendered == ()
    assert digest(epub(project)) == epub_digest

    pdf(project).write_bytes(b"%PDF-1.7 tampered")  # an output changed by hand: restored
    assert not run(project, worker).up_to_date
    assert pdf(project).read_bytes().startswith(b"%PDF") and b"tampered" not in pdf(project).read_bytes()

    printed = run(project, worker, profile="print")  # another option: another PDF
    assert not printed.up_to_date and "pdf" in printed.rendered
    screen = run(project, worker)
    assert not screen.up_to_date and screen.rendered == ()  # back again: both from the cache


# --- a change to any input is reflected, and only what depends on it is rebuilt ------------------


def test_chapter_edit_reparses_only_that_chapter(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project, worker)
    append(project / "chapters" / "02-method.md", "\n追記された段落でございます。\n")
    result = run(project, worker)
    assert result.stats.misses["parsed"] == 1 and result.stats.hits["parsed"] == 2
    assert result.rendered == ("pdf", "epub")
    assert "追記された段落でございます" in squeeze(pdftotext(pdf(project)))
    assert "追記された段落でございます" in epub_text(epub(project))

    # A new character: the print faces are cut again (their subsets keep the faces' glyph ids,
    # so the other chapters are not laid out again), to the document's characters and the
    # language's standard set. A character of that set new to the document, or none: the last
    # subsets serve, and no face is cut or looked up.
    cut: list[tuple[str, frozenset[str]]] = []
    subset_file = report.render.pdf.subset_file
    monkeypatch.setattr(
        report.render.pdf,
        "subset_file",
        lambda face, characters, cache: (
            cut.append((face.file, frozenset(characters))) or subset_file(face, characters, cache)
        ),
    )
    append(project / "chapters" / "01-intro.md", "\n鷗。\n")  # (of JIS X 0213, not 0208)
    new_character = run(project, worker)
    assert new_character.stats.misses["subset"] > 0 and len(cut) == len(fonts.FACES)
    assert all(fonts.standard_characters("ja") <= characters for _, characters in cut)
    assert all("鷗" in characters for file, characters in cut if "Mono" not in file)  # (the text faces')
    assert new_character.stats.misses["pdf-layout"] == 1 and "鷗" in pdftotext(pdf(project))
    cut.clear()
    append(project / "chapters" / "01-intro.md", "\n麒麟の鬱。\n")  # (of JIS X 0208)
    served = run(project, worker)
    assert cut == [] and served.stats.misses["pdf-layout"] == 1 and "麒麟" in pdftotext(pdf(project))
    # Laid out with the subsets of the standard set, it is what a build from nothing lays out
    # with subsets of the document's characters only.
    clean_build_matches(project)
    cut.clear()  # (the build from nothing's)
    append(project / "chapters" / "01-intro.md", "\n鬱鬱。\n")
    assert run(project, worker).stats.misses["subset"] == 0 and cut == []
    # Subsets cut from other faces (the bundled ones changed) never serve.
    monkeypatch.setattr(report.render.pdf, "_faces", lambda cache: "other faces")
    append(project / "chapters" / "01-intro.md", "\n鬱。\n")
    run(project, worker)
    assert len(cut) == len(fonts.FACES)


# What a process keeps of its last builds (see report.build.keep_last_build).
_KEPT_IN_PROCESS = (
    (report.build, "_KEPT_PARSED"),
    (report.build, "_HEAD_START_BASES"),
    (report.resolve, "_FILLED"),
    (report.resolve, "_LAST_TABLES"),
    (report.render.pdf, "_FACTS"),
    (report.render.epub, "_KEPT_PAGES"),
    (report.render.epub, "_TABLES_DIGESTS"),
)


def clean_build_matches(project: Path, name: str = "ja-basic") -> None:
    """The outputs of ``project``'s last (incremental) build are byte for byte those of a build
    of the same sources from nothing (in the same folder: WeasyPrint names images by path), in a
    process that kept nothing of earlier builds."""
    kept = {(module, attribute): getattr(module, attribute) for module, attribute in _KEPT_IN_PROCESS}
    for module, attribute in _KEPT_IN_PROCESS:
        setattr(module, attribute, {})
    try:
        with PdfWorkers() as fresh:
            build(project, out_dir=project / "clean", workers=fresh, use_cache=False)
    finally:
        for module, attribute in _KEPT_IN_PROCESS:
            setattr(module, attribute, kept[module, attribute])
    for suffix in (".pdf", ".epub"):
        assert digest(project / "clean" / f"{name}{suffix}") == digest(project / "dist" / f"{name}{suffix}")


def sent_to_workers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML of each part a run sends to be laid out or drawn, in order."""
    sent: list[str] = []
    lay_out, draw = Session.lay_out, Session.draw
    monkeypatch.setattr(
        Session, "lay_out", lambda self, job, first=False: sent.append(job.html) or lay_out(self, job, first)
    )
    monkeypatch.setattr(Session, "draw", lambda self, job: sent.append(job.part.html) or draw(self, job))
    return sent


def test_an_edit_lays_out_and_draws_only_its_chapter(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chapter edited without changing its length: its part is laid out and drawn again, the
    other parts (contents, folios, page references unchanged) come from the cache; so do the
    other chapters' EPUB pages; their print HTML is kept in the process."""
    run(project, worker)
    real_deflated = zipped._deflated
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    deflated: list[bytes] = []
    monkeypatch.setattr(zipped, "_deflated", lambda data: deflated.append(data) or real_deflated(data))
    result = run(project, worker)  # (characters the report has: the font subsets stay as they are)
    # Of the EPUB's members, only its page and the font that gained 測 are compressed again.
    assert sorted(data[:4] for data in deflated) == [b"<?xm", b"OTTO"]
    assert result.stats.misses["pdf-layout"] == 1 and result.stats.misses["pdf-part"] == 1
    assert result.stats.hits["pdf-part"] >= 4  # cover, contents, the two other chapters
    assert result.stats.misses["epub-page"] == 1 and result.stats.hits["epub-page"] == 2  # its EPUB page only
    # Its print HTML only: the others' print parts this process kept (report.assemble._KEPT_PARTS).
    assert result.stats.misses["print-body"] == 1 and result.stats.hits["print-body"] == 0
    # The EPUB was written once the layout was known (while the PDF was drawn and joined), not
    # ahead from the last build's layout.
    assert result.stats.hits["pdf-last-layout"] == 0
    # The PDF's faces are the last build's subsets, which have every character: none is looked
    # up for it; the EPUB's are (cut to its own characters).
    subsets = result.stats.hits["subset"] + result.stats.misses["subset"]
    assert 0 < subsets < len(fonts.FACES)
    assert "1.測定する。2.測定する。" in squeeze(pdftotext(pdf(project)))
    clean_build_matches(project)


def test_a_process_that_kept_nothing_reads_what_the_pdf_reads_of_each_part_from_the_cache(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run reads of each print part's HTML (its characters, ids, page-number boxes: see
    report.render.pdf._facts) is stored in the cache: a process that kept nothing of the last
    build (a build server started anew) reads it there, and finds it only for the part whose
    HTML changed. The PDF and EPUB are a build from nothing's."""
    run(project, worker)
    for module, attribute in _KEPT_IN_PROCESS:
        monkeypatch.setattr(module, attribute, {})
    found: list[str] = []
    find = report.render.pdf._found_facts
    monkeypatch.setattr(report.render.pdf, "_found_facts", lambda source: found.append(source) or find(source))
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert len(found) == 1 and "測定する" in found[0]
    assert result.stats.misses["pdf-facts"] == 1 and result.stats.hits["pdf-facts"] >= 4  # cover, contents, chapters
    clean_build_matches(project)


_HTML_PIECES = st.sampled_from(
    [
        '<h2 id="sec-1">節</h2>',
        '<p id="p&amp;2">段落 text</p>',
        '<a href="#sec-1">参照</a>',
        '<span class="page-number" data-page-of="sec-1" data-digits="12"></span>',
        '<a class="index-pages page-list" data-page-of="sec-1 p&amp;2"></a>',
        '<pre><code>print("コード")</code></pre>',
        "&#x1F600;&amp;ｶﾀｶﾅ\u00ad\u3000",
    ]
)


@given(st.lists(st.one_of(_HTML_PIECES, st.text(max_size=8)), max_size=12))
def test_a_part_s_facts_read_back_from_the_cache_are_those_found(pieces: list[str]) -> None:
    source = "".join(pieces)
    facts = report.render.pdf._found_facts(source)
    stored = json.loads(json.dumps(report.render.pdf._plain_facts(facts), ensure_ascii=False))
    assert report.render.pdf._stored_facts(stored) == facts


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"characters": "a", "code": "", "order": ["x"], "boxes": [["x"]], "linked": [], "named_digest": "d"},
        {"characters": 1, "code": "", "order": [], "boxes": [], "linked": [], "named_digest": "d"},
        {"characters": "a", "code": "", "order": "x", "boxes": [], "linked": [], "named_digest": "d"},
        {"characters": "a", "code": "", "order": [], "boxes": [], "linked": [2], "named_digest": "d"},
    ],
)
def test_facts_stored_otherwise_are_found_again(value: dict[str, Any] | None) -> None:
    assert report.render.pdf._stored_facts(value) is None


def test_a_term_marked_again_where_the_index_lists_its_section_leaves_the_index_s_epub_page(
    tmp_path: Path, worker: PdfWorkers
) -> None:
    """A term marked again in a section the index lists it in already: the printed index lists
    the mark's page (its HTML changes), the EPUB's index links to the section once, at its first
    mark (its page is as it was): of the EPUB's pages, only the edited chapter's is made again.
    The PDF and EPUB are a build from nothing's."""
    project = copy_fixture("ja-scholarly", tmp_path)
    run(project, worker)
    append(project / "chapters" / "03-terms.md", "\n\n[ICBM]{.index}を再び挙げる。\n")  # (its last section marks it)
    result = run(project, worker)
    assert result.stats.misses["epub-page"] == 1 and result.stats.hits["epub-page"] >= 4
    clean_build_matches(project, "ja-scholarly")


def test_an_epub_written_again_in_the_same_build_reads_no_page_twice(project: Path, worker: PdfWorkers) -> None:
    """Built alone, the EPUB is written from the last build's layout while the PDF is laid out.
    The last chapter a few pages longer makes the layout differ (more pages): the EPUB is written
    again, with the other chapters' pages as the first writing took them from the cache."""
    run(project, worker)
    paragraph = "付録の補足。本文の第一段落。"
    append(project / "chapters" / "90-appendix.md", "\n" + "\n\n".join([paragraph * 4] * 40) + "\n")
    result = run(project, worker, formats=("epub",), out_dir=project / "epub-only")
    assert result.stats.hits["pdf-last-layout"] == 1 and result.stats.misses["pdf-layout"] == 1
    # The appendix's page made once: the second writing only puts the markers of its pages in.
    assert result.stats.hits["epub-page"] == 2 and result.stats.misses["epub-page"] == 1
    assert result.stats.misses["epub"] == 2  # (written twice)
    with PdfWorkers() as fresh:
        build(project, out_dir=project / "clean", workers=fresh, use_cache=False)
    assert digest(project / "clean" / "ja-basic.epub") == digest(project / "epub-only" / "ja-basic.epub")


def record_layouts_and_whole_documents(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a run sends to be laid out (each part's HTML) and drawn ("drawn: " and the HTML),
    and "whole document" where it makes the whole print document (every part rendered, the
    fonts cut to its characters), in order."""
    events: list[str] = []
    lay_out, draw, subsets = Session.lay_out, Session.draw, PdfRenderer._subsets

    def recorded_lay_out(session: Session, job: PartJob, first: bool = False) -> None:
        events.append(job.html)
        lay_out(session, job, first)

    def recorded_draw(session: Session, job: DrawJob) -> None:
        events.append(f"drawn: {job.part.html}")
        draw(session, job)

    def recorded_subsets(renderer: PdfRenderer, assembler: Assembler, again: bool = False, last: Any = None) -> Any:
        if assembler not in _STYLES or again:
            events.append("whole document")
        return subsets(renderer, assembler, again, last)

    monkeypatch.setattr(Session, "lay_out", recorded_lay_out)
    monkeypatch.setattr(Session, "draw", recorded_draw)
    monkeypatch.setattr(PdfRenderer, "_subsets", recorded_subsets)
    return events


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_edited_chapter_is_sent_to_be_laid_out_before_the_whole_document_is_made(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chapter edited since the last build is sent with that build's styles as soon as the
    book is prepared, and to be drawn after it, with that build's page numbers; the run's own
    part turns out the same, so it is laid out and drawn once."""
    run(project, worker)
    events = record_layouts_and_whole_documents(monkeypatch)
    replace_in(project / "chapters" / "02-method.md", "準備する", "測定する")
    result = run(project, worker)
    assert len(events) == 3 and "1. 測定する" not in events[0] and "測定する。</li>" in events[0]
    assert events[1:] == [f"drawn: {events[0]}", "whole document"]
    assert result.stats.misses["pdf-layout"] == 1 and result.stats.misses["pdf-part"] == 1
    clean_build_matches(project)


def test_the_drawings_of_the_parts_after_an_edited_chapter_are_looked_up_while_it_is_laid_out(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts after an edited chapter are drawn from the cache once it is laid out: their
    drawings are looked up while it is, not when its layout comes (at 590 pages, that kept the
    join waiting 80 ms). Only the edited part's own lookup comes after."""
    run(project, worker)
    events: list[str] = []
    load, laid_out = Cache.load, PdfRun._laid_out

    def recorded_load(cache: Cache, kind: str, key: str) -> dict[str, Any] | None:
        if kind == "pdf-part":
            events.append("drawing looked up")
        return load(cache, kind, key)

    def recorded_laid_out(pdf_run: PdfRun, key: str, layout: PartLayout) -> None:
        events.append("laid out")
        laid_out(pdf_run, key, layout)

    monkeypatch.setattr(Cache, "load", recorded_load)
    monkeypatch.setattr(PdfRun, "_laid_out", recorded_laid_out)
    replace_in(project / "chapters" / "01-intro.md", "試験用の序論", "試験用の序章")  # the same length
    result = run(project, worker)
    assert events.count("laid out") == 1 and result.stats.misses["pdf-layout"] == 1
    before = events[: events.index("laid out")]
    assert before.count("drawing looked up") >= 4  # the cover, the contents, the two chapters after it
    assert events[events.index("laid out") + 1 :] == ["drawing looked up"]
    assert "試験用の序章" in squeeze(pdftotext(pdf(project)))
    clean_build_matches(project)


def test_with_no_join_kept_the_parts_the_cache_has_are_joined_while_the_edited_chapter_is_laid_out(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept processes gone (new workers: none keeps the book's join), the first chapter
    edited: every part the cache has drawn is sent to the join before the chapter's layout
    comes, not after it; moved by it, they are sent again, the join begun anew (the joiner keeps
    what it joined of them); the PDF is a build from nothing's."""
    run(project, worker)
    events: list[tuple[str, int, bool]] = []
    join, laid_out = Session.join, PdfRun._laid_out

    def recorded_join(session: Session, job: JoinJob, drawn_last: str = "") -> None:
        events.append(("join", len(job.parts), job.fresh))
        join(session, job, drawn_last)

    def recorded_laid_out(pdf_run: PdfRun, key: str, layout: PartLayout) -> None:
        events.append(("laid out", 0, False))
        laid_out(pdf_run, key, layout)

    monkeypatch.setattr(Session, "join", recorded_join)
    monkeypatch.setattr(PdfRun, "_laid_out", recorded_laid_out)
    replace_in(project / "chapters" / "01-intro.md", "試験用の序論", "試験用の序章")  # the same length
    with PdfWorkers() as new_workers:
        run(project, new_workers)
    laid = events.index(("laid out", 0, False))
    assert sum(count for _, count, _ in events[:laid]) == 4  # the cover, the contents, the two chapters after
    assert any(fresh for _, _, fresh in events[laid:])  # placed before the chapter was laid out, they moved
    assert "試験用の序章" in squeeze(pdftotext(pdf(project)))
    clean_build_matches(project)


def test_chapters_drawn_early_by_two_workers_are_each_drawn_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two chapters edited, each laid out and drawn early by a worker of its own. The appendix,
    short, is drawn before the introduction, made pages longer, is laid out: its drawing comes
    before the run can ask for it (the pages before it are not yet known), and waits for it."""
    with PdfWorkers(count=2) as workers:
        run(project, workers)
        events = record_layouts_and_whole_documents(monkeypatch)
        append(project / "chapters" / "01-intro.md", "\n" + "\n\n".join(["本文の第一段落。" * 20] * 8) + "\n")
        replace_in(project / "chapters" / "90-appendix.md", "振り返る", "振り返る振り返る")  # no new character
        result = run(project, workers)
    whole = events.index("whole document")
    assert sum(event.startswith("drawn: ") for event in events[:whole]) == 2
    assert len(events) == 5, "each laid out and drawn once"
    assert result.stats.misses["pdf-layout"] == 2 and result.stats.misses["pdf-part"] == 2
    # Drawn with the last build's page of table 1, the appendix shows its page now (the join sets it).
    assert "付録では第1章と8ページの表1を振り返る振り返る。" in squeeze(pdftotext(pdf(project)))
    clean_build_matches(project)


def test_an_early_layout_that_is_not_the_runs_own_part_is_not_used(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early layout guesses the part from the last build: a link to an id that another
    chapter gained in the same build makes the run's own part differ (its stand-in anchors). It
    is laid out again as the run makes it, and the PDF is a build from nothing's."""
    run(project, worker)
    events = record_layouts_and_whole_documents(monkeypatch)
    method = project / "chapters" / "02-method.md"
    replace_in(method, "準備する", "測定する")
    append(project / "chapters" / "90-appendix.md", "\n## 実験の方法 {#appendix-added}\n\n方法。\n")
    append(method, "\n[](#appendix-added)も参照。\n")
    run(project, worker)
    whole = events.index("whole document")
    early = [html for html in events[:whole] if "測定する。</li>" in html and not html.startswith("drawn: ")]
    later = [html for html in events[whole:] if "測定する。</li>" in html and not html.startswith("drawn: ")]
    assert len(early) == 1 and len(later) == 1, "sent early, then laid out again as the run makes it"
    assert 'id="appendix-added"' in later[0] and 'id="appendix-added"' not in early[0]
    clean_build_matches(project)


def test_a_chapter_is_not_laid_out_early_with_subsets_that_lack_its_characters(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A character the last build's font subsets do not have (in the chapter, or drawn by a
    stylesheet): the chapter waits for the run's own subsets (laid out with the last, it would
    draw a .notdef glyph)."""
    run(project, worker)
    events = record_layouts_and_whole_documents(monkeypatch)
    replace_in(project / "chapters" / "02-method.md", "準備する", "鬱屈する")
    (project / "styles").mkdir()
    (project / "styles" / "print.css").write_text('h2::before { content: "彙"; }\n', encoding="utf-8")
    result = run(project, worker)
    assert events[0] == "whole document"
    assert not any(".notdef" in warning for output in result.outputs for warning in output.warnings)
    assert "1.鬱屈する。" in squeeze(pdftotext(pdf(project)))
    clean_build_matches(project)


def test_a_chapter_a_page_longer_moves_the_folios_and_page_numbers_after_it(project: Path, worker: PdfWorkers) -> None:
    """Every page after the edited chapter moves: later parts get their new folios, the contents
    and page references show the new pages — as a build from nothing — yet a part that only
    moved is neither laid out nor drawn again (the join sets its numbers). The pages referred
    to go from one digit to two: the chapter that prints one in its text is laid out again
    (its stand-in had one digit); the contents is not (its numbers are set in boxes three
    digits wide)."""
    run(project, worker)
    assert pdfinfo_pages(pdf(project)) < 10
    lengthen_intro(project)
    result = run(project, worker)
    assert pdfinfo_pages(pdf(project)) >= 12
    text = squeeze(pdftotext(pdf(project)))
    method_page = re.search(r"第2章方法\.{3,}(\d+)", text)
    assert method_page is not None and int(method_page.group(1)) >= 10, "the contents: the method's new page"
    assert re.search(r"付録では第1章と\d\dページの表1", text), "the page of a table in another chapter"
    # The intro twice (it refers to a page its own growth moved past 9), the appendix; not the contents.
    assert result.stats.misses["pdf-layout"] == 3
    assert (
        result.stats.misses["pdf-part"] == 2
    )  # those two: the method chapter only moved, the contents kept its digits
    assert result.stats.hits["pdf-part"] >= 3  # the cover, the contents, the method chapter
    # The EPUB: a chapter that only moved gets new page-break markers, not a page made again.
    assert result.stats.misses["epub-page"] == 1 and result.stats.hits["epub-page"] >= 1
    clean_build_matches(project)


def test_an_id_added_to_a_chapter_changes_no_other_epub_page(project: Path, worker: PdfWorkers) -> None:
    """A new section (a new id of the book, that no other chapter links to): only its chapter's
    EPUB page is made again (the pages take of the others only the owners of the ids they link to)."""
    run(project, worker)
    append(project / "chapters" / "02-method.md", "\n## 追加の節 {#sec-added}\n\n追加した節の本文。\n")
    result = run(project, worker)
    assert result.stats.misses["epub-page"] == 1 and result.stats.hits["epub-page"] == 2
    assert "追加した節の本文" in epub_text(epub(project))
    clean_build_matches(project)


def _folios(path: Path) -> dict[str, float]:
    """Each page's folio (the last line's word, if a number) and how far its centre is from the
    page's centre."""
    import pdfplumber

    found = {}
    with pdfplumber.open(path) as document:
        for page in document.pages[1:]:
            words = page.extract_words()
            last = max(words, key=lambda word: word["bottom"], default=None)
            if last is not None and last["text"].isdigit():
                found[last["text"]] = (last["x0"] + last["x1"]) / 2 - float(page.width) / 2
    return found


def test_folios_set_by_the_join_are_centred_whatever_their_length(project: Path, worker: PdfWorkers) -> None:
    """The join writes a folio of two digits where the part, laid out alone, drew one of one:
    centred on the page as the one-digit folios are (as WeasyPrint would have centred it)."""
    lengthen_intro(project)
    run(project, worker)
    folios = _folios(pdf(project))
    assert {"3", "9", "10", "12"} <= folios.keys()
    assert all(abs(offset) < 0.5 for offset in folios.values()), folios


def test_page_numbers_out_of_the_joins_reach_are_drawn_in_and_drawn_again_when_they_move(
    project: Path, worker: PdfWorkers
) -> None:
    """A folio in a transparency group (a translucent margin box) is drawn into a form XObject,
    where the join does not set numbers: the part is drawn with its numbers filled in, and
    drawn again when they change — the output is still that of a build from nothing."""
    (project / "styles").mkdir()
    (project / "styles" / "print.css").write_text("@page { @bottom-center { opacity: 0.9 } }\n", encoding="utf-8")
    run(project, worker)
    lengthen_intro(project)
    result = run(project, worker)
    assert result.stats.misses["pdf-part"] >= 3  # the intro, the appendix, and the method chapter that moved
    assert {"3", "9", "10", "12"} <= _folios(pdf(project)).keys()
    clean_build_matches(project)


def test_an_epub_written_ahead_from_a_layout_that_changed_is_written_again(project: Path, worker: PdfWorkers) -> None:
    """The EPUB is written from the last build's layout while the PDF is laid out; when the
    layout comes out otherwise (every page after a longer chapter moves), it is written again:
    its page list is the new one, as in a build from nothing."""
    run(project, worker)
    lengthen_intro(project)
    result = run(project, worker, formats=("epub",), out_dir=project / "epub-only")
    assert result.stats.hits["pdf-last-layout"] == 1
    with PdfWorkers() as fresh:
        build(project, out_dir=project / "clean", workers=fresh, use_cache=False)
    assert digest(project / "clean" / "ja-basic.epub") == digest(project / "epub-only" / "ja-basic.epub")


def pdfinfo_pages(path: Path) -> int:
    import pypdf

    return len(pypdf.PdfReader(path).pages)


def lengthen_intro(root: Path) -> None:
    """Five pages more in the first chapter (of characters it has: the font subsets stay)."""
    paragraph = "本文の第一段落。設計の詳細は次の章で述べる。この章は試験用の序論である。"
    append(root / "chapters" / "01-intro.md", "\n" + "\n\n".join([paragraph * 3] * 40) + "\n")


def test_a_first_build_lays_out_each_part_once(tmp_path: Path, worker: PdfWorkers) -> None:
    """A first build cannot know how many digits its page numbers have. The contents' numbers
    are set in boxes three digits wide: it is laid out once, whatever they are. A reference
    in a chapter is laid out with the page estimated from the length of the text before it
    (here past page 9, rightly): no part is laid out twice."""
    root = copy_fixture("ja-basic", tmp_path)
    lengthen_intro(root)
    result = run(root, worker)
    text = squeeze(pdftotext(pdf(root)))
    method_page = re.search(r"第2章方法\.{3,}(\d+)", text)
    assert method_page is not None and int(method_page.group(1)) >= 10
    assert re.search(r"付録では第1章と\d\dページの表1", text)
    chapters = len(list((root / "chapters").glob("*.md")))
    assert result.stats.misses["pdf-layout"] == 2 + chapters  # cover and title page, contents, chapters


def test_image_changes_are_reflected(project: Path, worker: PdfWorkers) -> None:
    run(project, worker)
    pdf_before = digest(pdf(project))

    png = project / "assets" / "figures" / "sample.png"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 90, 200)).save(buffer, "PNG")
    png.write_bytes(buffer.getvalue())
    result = run(project, worker)
    assert result.stats.misses["parsed"] == 1  # only the chapter that shows it
    assert epub_member(epub(project), "sample.png") == buffer.getvalue()
    assert digest(pdf(project)) != pdf_before

    svg = project / "assets" / "figures" / "flow.svg"  # inlined: its text is in both outputs
    svg.write_text(svg.read_text(encoding="utf-8").replace("出力段階", "検証段階"), encoding="utf-8")
    result = run(project, worker)
    assert result.stats.misses["parsed"] == 1
    assert "検証段階" in squeeze(pdftotext(pdf(project)))
    assert "検証段階" in epub_text(epub(project))


def test_templates_and_styles_invalidate_only_their_format(project: Path, worker: PdfWorkers) -> None:
    run(project, worker)
    templates = project / "templates"
    styles = project / "styles"

    # A print-only template: the PDF changes; the layout does not move, so the EPUB is reused.
    (templates).mkdir()
    builtin = Path(fonts.__file__).parent / "templates"
    title_page = (builtin / "title-page.html.j2").read_text(encoding="utf-8")
    (templates / "title-page.html.j2").write_text(
        title_page.replace("</section>", "<p>版元校正用</p>\n</section>"), encoding="utf-8"
    )
    result = run(project, worker)
    assert result.rendered == ("pdf",) and result.stats.hits["epub"] == 1
    assert "版元校正用" in squeeze(pdftotext(pdf(project)))

    # An EPUB template: the EPUB changes, the PDF is not laid out again.
    (templates / "epub").mkdir()
    chapter = (builtin / "epub" / "chapter.xhtml.j2").read_text(encoding="utf-8")
    assert "<section" in chapter
    (templates / "epub" / "chapter.xhtml.j2").write_text(
        chapter.replace("<section", '<section data-report-test="epub-template"', 1), encoding="utf-8"
    )
    result = run(project, worker)
    assert result.rendered == ("epub",) and not_laid_out(result)
    assert 'data-report-test="epub-template"' in epub_text(epub(project))

    # The report's print stylesheet: PDF only. Its EPUB stylesheet: EPUB only.
    styles.mkdir()
    (styles / "print.css").write_text("h2 { color: #7a1f1f; }\n", encoding="utf-8")
    result = run(project, worker)
    assert result.rendered == ("pdf",) and result.stats.hits["epub"] == 1
    (styles / "epub.css").write_text(".report-test-rule { color: #7a1f1f; }\n", encoding="utf-8")
    result = run(project, worker)
    assert result.rendered == ("epub",) and not_laid_out(result)
    assert "report-test-rule" in epub_text(epub(project), ".css")


def test_config_changes_are_reflected(project: Path, worker: PdfWorkers) -> None:
    run(project, worker)
    toml = project / "report.toml"
    text = toml.read_text(encoding="utf-8")

    toml.write_text(text + '\n[epub]\nwriting-mode = "vertical-rl"\n', encoding="utf-8")
    result = run(project, worker)
    assert result.rendered == ("epub",) and not_laid_out(result)
    assert "vertical-rl" in epub_text(epub(project), ".css")

    toml.write_text(text.replace('font = "serif"', 'font = "sans"'), encoding="utf-8")
    result = run(project, worker)
    assert "pdf" in result.rendered
    families = {row["family"] for row in pdffonts(pdf(project))}
    assert "Noto-Serif-CJK-JP" not in families and "Noto-Sans-CJK-JP" in families

    toml.write_text(text.replace('title = "試験用報告書"', 'title = "改題された報告書"'), encoding="utf-8")
    result = run(project, worker)
    assert result.rendered == ("pdf", "epub")
    assert "改題された報告書" in squeeze(pdftotext(pdf(project), 1, 2))
    assert "改題された報告書" in epub_text(epub(project), ".opf")


def test_font_changes_are_reflected(project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch) -> None:
    run(project, worker)
    pdf_before = digest(pdf(project))

    # A bundled face replaced by another file: only its subset is cut again; both outputs change.
    bundled = fonts.fonts_dir()
    replaced = project.parent / "fonts"
    replaced.mkdir()
    for face in fonts.FACES:
        (replaced / face.file).symlink_to(bundled / face.file)
    (replaced / "NotoSerifCJKjp-Regular.otf").unlink()
    shutil.copyfile(bundled / "NotoSansCJKjp-Regular.otf", replaced / "NotoSerifCJKjp-Regular.otf")
    patch_everywhere(monkeypatch, "fonts_dir", lambda: replaced)
    epub_font = epub_member(epub(project), "NotoSerifCJKjp-Regular.otf")
    subsets = project / CACHE_DIR_NAME / "v1" / "entries" / "subset"
    known = set(subsets.glob("*.json"))
    result = run(project, worker)
    cut_again = {
        json.loads(path.read_text(encoding="utf-8"))["value"]["face"] for path in set(subsets.glob("*.json")) - known
    }
    assert cut_again == {"NotoSerifCJKjp-Regular.otf"}  # for the PDF and the EPUB; the other faces' subsets kept
    assert result.rendered == ("pdf", "epub")
    assert digest(pdf(project)) != pdf_before
    assert epub_member(epub(project), "NotoSerifCJKjp-Regular.otf") != epub_font

    # The list of faces changed: the PDF is laid out with the new list.
    patch_everywhere(monkeypatch, "FACES", tuple(f for f in fonts.FACES if f.file != "NotoSansMath-Regular.ttf"))
    result = run(project, worker)
    assert not result.up_to_date and "pdf" in result.rendered


def patch_everywhere(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> None:
    """Replace ``report.fonts.<name>`` in every module of the builder that imported it."""
    original = getattr(fonts, name)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("report") and getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, value)


def test_characters_generated_by_css_are_added_to_the_subsets(project: Path, worker: PdfWorkers) -> None:
    (project / "styles").mkdir()
    (project / "styles" / "print.css").write_text("ol { list-style-type: cjk-heavenly-stem; }\n", encoding="utf-8")
    result = run(project, worker)
    text = squeeze(pdftotext(pdf(project)))
    assert "甲、準備する" in text and "乙、測定する" in text  # 甲乙 are nowhere in the document
    assert not any(".notdef" in warning for output in result.outputs for warning in output.warnings)
    append(project / "chapters" / "01-intro.md", "\n追記。\n")
    again = run(project, worker)
    assert again.rendered == ("pdf", "epub")
    assert again.stats.hits["pdf-extra"] == 1 and again.stats.misses["pdf-extra"] == 0  # no second layout
    clean_build_matches(project)


def test_characters_only_the_contents_draws_are_added_and_everything_laid_out_again(
    project: Path, worker: PdfWorkers
) -> None:
    """The contents is drawn last, once every page is known, while a worker may have begun to
    join the other parts. A character only it draws as .notdef (its list markers', here) is
    added to the subsets, and every part laid out and drawn again: what was laid out and drawn
    without it is not taken from the cache — as a build from nothing."""
    (project / "styles").mkdir()
    (project / "styles" / "print.css").write_text(
        "nav.toc ol { list-style: cjk-heavenly-stem inside; }\n", encoding="utf-8"
    )
    result = run(project, worker)
    assert not any(".notdef" in warning for output in result.outputs for warning in output.warnings)
    assert "甲" in squeeze(pdftotext(pdf(project)))  # in no text of the report
    parts = 2 + len(list((project / "chapters").glob("*.md")))  # cover and title page, contents, chapters
    assert result.stats.misses["pdf-layout"] == 2 * parts and result.stats.hits["pdf-layout"] == 0
    clean_build_matches(project)


# --- a damaged cache ---------------------------------------------------------------------------------


def test_damaged_cache_files_are_rebuilt_not_crashed_on(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    import report.build
    import report.render.epub

    run(project, worker)
    # The next build reads them as a new process would: this one keeps its chapters and its
    # EPUB's pages in memory.
    monkeypatch.setattr(report.build, "_KEPT_PARSED", {})
    monkeypatch.setattr(report.render.epub, "_KEPT_PAGES", {})
    pdf_text, epub_digest = pdftotext(pdf(project)), digest(epub(project))
    cache = project / CACHE_DIR_NAME / "v1"
    damaged = [
        next((cache / "entries" / "parsed").glob("*.json")),
        next((cache / "entries" / "subset").glob("*.json")),
        *(cache / "objects").glob("*.otf"),
        *(cache / "objects").glob("*.pdf"),
        *(cache / "objects").glob("*.epub"),
        cache / "digests.json",
        *(cache / "builds").glob("*.json"),  # the build record
    ]
    for path in damaged:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # truncated, as by a crash or a full disk

    result = run(project, worker)
    assert not result.up_to_date
    assert result.stats.misses["parsed"] >= 1 and result.stats.misses["subset"] >= 1
    assert result.rendered == ("pdf", "epub")
    assert pdftotext(pdf(project)) == pdf_text
    assert digest(epub(project)) == epub_digest
    assert run(project, worker).up_to_date  # and the cache is whole again


def test_a_drawing_s_numbers_read_from_the_cache_are_passed_on_as_the_worker_packed_them(tmp_path: Path) -> None:
    """The build keeps a drawing's page numbers as the worker that drew it packed them, and
    passes them on to the join so: read from the cache, they are that text. A join reads them
    back as they were drawn, those of one font sharing its digits and widths. An entry whose
    numbers are not so packed (other code wrote it, or it is damaged) is no drawing: the part is
    drawn again, not sent to a join that cannot read them."""
    cache = Cache(tmp_path / "cache")
    name = cache.put_object(b"%PDF-1.7 a drawing", ".pdf")
    folio = DrawnNumber(
        page=0,
        ref="",
        matrix_at=(10, 40),
        glyphs_at=(50, 60),
        matrix=(1.0, 0.0, 0.0, -1.0, 394.0, 1089.9),
        width=5.6,
        digit_widths=tuple(float(6 + digit % 2) for digit in range(10)),
        align=0.5,
        digits=tuple(f"{0x11 + digit:04x}" for digit in range(10)),
    )
    packed = packed_numbers((folio, dataclasses.replace(folio, page=1)))
    cached = report.render.pdf._cached_drawing({"pdf": name, "numbers": packed}, cache)
    assert cached is not None and cached.numbers == packed
    numbers = unpacked_numbers(cached.numbers)
    assert numbers == (folio, dataclasses.replace(folio, page=1))
    for field_name in ("digit_widths", "digits"):
        assert len({id(getattr(number, field_name)) for number in numbers}) == 1, field_name
    plain = {"pdf": name, "numbers": to_plain((folio,), Path())}  # as the cache wrote them until now
    assert report.render.pdf._cached_drawing(plain, cache) is None
    row = json.loads(packed)["numbers"][0]
    damaged = [
        "not JSON",
        json.dumps({"numbers": [row]}),  # no fonts
        json.dumps({"fonts": [], "numbers": [row]}),  # a font it does not have
        *(
            json.dumps({**json.loads(packed), "numbers": [[*row[:at], value, *row[at + 1 :]]]})
            for at, value in [
                (0, "3"),  # a name for a page
                (0, True),  # a truth value is no number
                (1, 3),  # a number for a box's name
                (6, "1"),  # the matrix
                (12, None),  # the width
                (15, 1.5),  # a list's offset
            ]
        ),
        json.dumps({"fonts": [[[0.5] * 10, [1] * 10]], "numbers": [row]}),  # digits' glyphs as numbers
    ]
    for numbers in damaged:
        assert report.render.pdf._cached_drawing({"pdf": name, "numbers": numbers}, cache) is None, numbers


def test_the_cache_writes_through_a_folder_of_its_own_and_prune_sweeps_what_a_killed_writer_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is written as a temporary file in the cache's own folder for them, then renamed
    into place (made among an entry kind's thousands of files, a temporary file took ten times
    as long). What a writer killed before its rename left there, an hour old, a walk removes."""
    cache = Cache(tmp_path / "cache")
    temporary = cache.directory / "tmp"
    folders: list[Path] = []
    real = tempfile.mkstemp
    monkeypatch.setattr(
        tempfile, "mkstemp", lambda dir=None, **options: folders.append(Path(dir)) or real(dir=dir, **options)
    )
    cache.store("parsed", "a key", {"value": 1})
    name = cache.put_object(b"some bytes", ".bin")
    assert folders == [temporary, temporary] and list(temporary.iterdir()) == []
    assert cache.load("parsed", "a key") == {"value": 1} and cache.object_bytes(name) == b"some bytes"
    left, writing = temporary / ".tmp-left", temporary / ".tmp-writing"
    for path in (left, writing):
        path.write_bytes(b"half")
    hours_ago = time.time() - 7200
    os.utime(left, (hours_ago, hours_ago))
    (cache.directory / "size.json").unlink(missing_ok=True)  # the next prune walks the folders
    Cache(tmp_path / "cache").prune()
    assert not left.exists() and writing.exists()


def test_an_unchanged_chapter_is_not_read_again_to_tell_that_it_did_not_change(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's inputs are hashed before it reads them and checked after it, to tell whether
    they changed meanwhile: once a build hashed them, their stat signatures tell (as for the
    fonts). Of the chapters, only the one edited since is read for it, before and after."""
    chapters = sorted((project / "chapters").glob("*.md"))
    minutes_ago = time.time() - 600  # old enough for their hashes to be remembered
    for path in chapters:
        os.utime(path, (minutes_ago, minutes_ago))
    run(project, worker)
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    hashed: list[Path] = []
    real = report.cache._hash_file
    monkeypatch.setattr(report.cache, "_hash_file", lambda path: hashed.append(path) or real(path))
    assert not run(project, worker).up_to_date
    assert [path for path in hashed if path in chapters] == [method, method]
    assert run(project, worker).up_to_date


def test_a_large_object_damaged_with_its_times_restored_is_found(project: Path, worker: PdfWorkers) -> None:
    """Large objects (the fonts' subsets) are hashed again only when their stat signature
    changed: a damaged one is found even when whatever damaged it put its times back."""
    run(project, worker)
    cache = project / CACHE_DIR_NAME / "v1"
    minutes_ago = time.time() - 600  # old enough for their hashes to be remembered, too recent to be touched
    large = [path for path in (cache / "objects").glob("*.otf") if path.stat().st_size >= MEMO_MIN_BYTES]
    assert large
    for path in large:
        os.utime(path, (minutes_ago, minutes_ago))
    method = project / "chapters" / "02-method.md"  # edited with characters it has: the same subsets
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "備準する"), encoding="utf-8")
    assert run(project, worker).stats.misses["subset"] == 0
    remembered = json.loads((cache / "digests.json").read_text())
    assert {str(path) for path in large} <= set(remembered)

    for path in large:  # sixteen bytes changed in place: same file, same size, same times
        status = path.stat()
        with open(path, "r+b") as handle:
            handle.seek(status.st_size // 2)
            changed = bytes(byte ^ 0xFF for byte in handle.read(16))
            handle.seek(status.st_size // 2)
            handle.write(changed)
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
        assert (path.stat().st_size, path.stat().st_mtime_ns) == (status.st_size, status.st_mtime_ns)
    method.write_text(method.read_text(encoding="utf-8").replace("備準する", "準備する"), encoding="utf-8")
    result = run(project, worker)
    assert result.stats.misses["subset"] >= 1
    clean_build_matches(project)


# --- plain data --------------------------------------------------------------------------------


_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_DRAWN_NUMBERS = st.builds(
    DrawnNumber,
    page=st.integers(0, 999),
    ref=st.text(max_size=8),
    matrix_at=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    glyphs_at=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    matrix=st.tuples(*[_FINITE] * 6),
    width=_FINITE,
    digit_widths=st.lists(_FINITE, max_size=10).map(tuple),
    align=_FINITE,
    digits=st.lists(st.text(max_size=4), max_size=10).map(tuple),
    list_offset=st.integers(-1, 20),
)


@given(numbers=st.lists(_DRAWN_NUMBERS, max_size=6).map(tuple))
def test_packed_page_numbers_read_back_as_they_were_drawn(numbers: tuple[DrawnNumber, ...]) -> None:
    """A drawing's numbers as the worker packs them for the build and the join (see
    report.render.weasy.packed_numbers) read back equal, with the same types, and pass the
    check a cache entry's numbers are read with."""
    packed = packed_numbers(numbers)
    unpacked = unpacked_numbers(packed)
    assert unpacked == numbers and numbers_packed_well(packed)
    assert [[type(value) for value in dataclasses.astuple(number)] for number in unpacked] == [
        [type(value) for value in dataclasses.astuple(number)] for number in numbers
    ]


@given(numbers=st.lists(_DRAWN_NUMBERS, max_size=4).map(tuple))
def test_plain_data_reads_back_as_it_was_written(numbers: tuple[DrawnNumber, ...]) -> None:
    """What the cache writes as JSON reads back equal (a whole float is written as an integer)."""
    plain = json.loads(json.dumps(to_plain(numbers, Path("/"))))
    assert from_plain(tuple[DrawnNumber, ...], plain, Path("/")) == numbers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("page", "3"),  # a name for a number
        ("page", True),  # a truth value is no number
        ("ref", 3),
        ("matrix", [1, 0, 0, 1, 0]),  # five of six
        ("matrix", [1, 0, 0, 1, 0, "0"]),
        ("digit_widths", [0.5, None]),
        ("digits", [1]),
        ("matrix_at", {"0": 1}),
    ],
)
def test_plain_data_that_does_not_fit_its_type_is_refused(field: str, value: object) -> None:
    """Data written by other code is not taken for a model (the cache then makes it again)."""
    good = DrawnNumber(0, "", (0, 1), (2, 3), (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), 5.0, (0.5,) * 10, 0.5, ("0011",) * 10)
    plain = to_plain(good, Path("/"))
    assert from_plain(DrawnNumber, plain, Path("/")) == good
    with pytest.raises(ValueError):
        from_plain(DrawnNumber, {**plain, field: value}, Path("/"))


@given(pages=st.lists(st.integers(1, 999), min_size=1, max_size=12))
def test_a_page_list_names_each_page_once_in_runs(pages: list[int]) -> None:
    """A page reference's text: one id's page, or the pages of several as "3, 5–7": every page
    once, in order, each run of consecutive pages as a range."""
    from report.render.pdf import page_text

    names = {f"id{index}": page for index, page in enumerate(pages)}
    text = page_text(" ".join(names), lambda name: str(names[name]))
    runs = [[int(end) for end in piece.split("–")] for piece in text.split(", ")]
    listed = [page for run in runs for page in range(run[0], run[-1] + 1)]
    assert listed == sorted(set(pages))
    assert all(len(run) == 1 or run[0] < run[1] for run in runs)
    assert all(later[0] > earlier[-1] + 1 for earlier, later in itertools.pairwise(runs))  # runs are whole
    assert page_text("id0", lambda name: str(names[name])) == str(pages[0])


def test_a_new_id_s_page_is_guessed_from_where_the_page_of_the_known_id_before_it_began() -> None:
    """A mark added to a chapter: the last build's page of the id before it, and a page more for
    each whole page of text from that page's first known id to the new one, a page holding what
    the last three pages before it held, from the first known id of each (1,000 characters: 2,000
    from that of page 10 to that of page 12), or the capacity given when it was the first; but
    never fewer than a quarter of the capacity (pages broken early). Before any known id, no
    guess."""
    from report.render.pdf import _page_after_known

    def text(characters: int) -> str:
        return f"<p>{'字' * characters}</p>"

    source = (
        f'<h1 id="a">{text(2000)}<p id="b"></p>{text(300)}<p id="c"></p>{text(600)}<span id="d"></span>'
        f'{text(200)}<span id="e"></span>{text(1000)}<span id="f"></span>'
    )
    order = ("a", "b", "c", "d", "e", "f")
    known = {"a": "10", "b": "12", "c": "12"}
    # From the start of page 12 (b), not from c: 900 characters still fit on it. (Counted from c
    # and rounded, 600 characters were taken for a page more.)
    assert _page_after_known("d", source, order, known, capacity=100.0) == "12"
    assert _page_after_known("e", source, order, known, capacity=100.0) == "13"  # 1,100 from b
    assert _page_after_known("f", source, order, known, capacity=100.0) == "14"  # 2,100
    assert _page_after_known("f", source, order, {"c": "12"}, capacity=500.0) == "15"  # 12 + 1800 / 500
    assert _page_after_known("f", source, order, known, capacity=6000.0) == "13"  # 12 + 2100 / 1500
    assert _page_after_known("a", source, order, {"b": "12"}, capacity=500.0) is None

    # Sparse pages first (a title page, a table of contents: 100 characters a page), then running
    # text (1,000 a page): text added at the end is set as densely as the last pages, not as the
    # part's average (3,400 characters over 7 pages, which made 1,500 more three pages).
    source = (
        f'<h1 id="a">{text(400)}<p id="b">{text(1000)}</p><p id="c">{text(1000)}</p>'
        f'<p id="e">{text(1000)}</p><p id="f">{text(1500)}</p><span id="g"></span>'
    )
    order = ("a", "b", "c", "e", "f", "g")
    known = {"a": "1", "b": "5", "c": "6", "e": "7", "f": "8"}
    assert _page_after_known("g", source, order, known, capacity=100.0) == "9"


# --- the builder's own code in the keys ----------------------------------------------------------


def test_the_code_fingerprint_follows_every_report_import(tmp_path: Path) -> None:
    """A module's fingerprint covers the report modules it imports, at any indent and in any
    form, so that a change to one of them invalidates what the module made."""
    from report.cache import _report_imports

    module = tmp_path / "module.py"
    module.write_text(
        "from report.a import b, c as d\n"
        "from report.e import (\n    f,\n    g,  # why\n)\n"
        "import report.h\n"
        "def later():\n    from report.i import j\n"
        "import os\nfrom reporting import x\n# from report.k import l\n",
        encoding="utf-8",
    )
    expected = {"report.a", "report.a.b", "report.a.c", "report.e", "report.e.f", "report.e.g", "report.h"}
    assert _report_imports(module) == expected | {"report.i", "report.i.j"}


def test_the_code_fingerprint_names_the_installed_versions() -> None:
    import importlib.metadata

    from report.cache import DISTRIBUTIONS, _installed_versions, _normalised

    found = _installed_versions()
    assert {name: found.get(_normalised(name)) for name in DISTRIBUTIONS} == {
        name: importlib.metadata.version(name) for name in DISTRIBUTIONS
    }


def test_the_build_server_reads_what_the_code_fingerprints_hash_before_it_forks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After read_builder_files (which the build server calls before it forks builds), a code
    fingerprint reads no file of the builder and hashes the files' digests, not their bytes, and
    is the one read from the files."""
    from report.cache import (
        _builder_file,
        _data_files,
        _module_path,
        _report_imports,
        code_fingerprint,
        read_builder_files,
    )

    asked = [(("report.build",), True), (("report.parse", "report.check"), False), (("report.render.pdf",), False)]
    expected = [code_fingerprint.__wrapped__(*modules, data=data) for modules, data in asked]
    for cached in (_builder_file, _data_files, _module_path, _report_imports, code_fingerprint):
        cached.cache_clear()
    read_builder_files()

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("a file of the builder read again")

    for method in ("read_bytes", "read_text", "open", "is_file", "rglob"):
        monkeypatch.setattr(Path, method, no_reading)
    hashed: list[int] = []
    real_digest = report.cache.digest
    monkeypatch.setattr(
        report.cache, "digest", lambda *parts: hashed.append(sum(map(len, parts))) or real_digest(*parts)
    )
    assert [code_fingerprint(*modules, data=data) for modules, data in asked] == expected
    assert len(hashed) == len(asked) and max(hashed) < 20_000  # a digest a file (report.build reaches 700 kB)


def test_a_failure_while_the_pdf_is_drawn_is_reported_as_itself(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The EPUB is written while a thread waits for the PDF's parts: when writing it fails, the
    build stops the workers under that thread, and the failure is what the build reports."""
    from report.render.epub import EpubRenderer

    def broken(*_: object) -> None:
        raise RuntimeError("the EPUB failed")

    monkeypatch.setattr(EpubRenderer, "render", broken)
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    for _ in range(3):
        with PdfWorkers() as workers, pytest.raises(RuntimeError, match="the EPUB failed"):
            build(project, workers=workers)


def test_prune_removes_the_least_recently_used_files_beyond_the_budget_never_this_builds(tmp_path: Path) -> None:
    cache = Cache(tmp_path / CACHE_DIR_NAME)
    names = [cache.put_object(bytes([number]) * 1000, ".bin") for number in range(6)]
    cache.store("parsed", "k" * 64, {"value": 1})
    entry = next((cache.directory / "entries").rglob("*.json"))
    objects = cache.directory / "objects"
    for age, name in enumerate(names):  # the first the least recently used
        os.utime(objects / name, (cache.started - 3600 + age, cache.started - 3600 + age))
    os.utime(entry, (cache.started - 60, cache.started - 60))
    size = entry.stat().st_size

    # Over the budget: down to three quarters of it (3,000 bytes and the entry's three quarters).
    assert cache.prune(budget=4000 + size) == 4
    assert sorted(path.name for path in objects.iterdir()) == sorted(names[4:])
    assert entry.exists()
    # What this build used (touched since it started) stays, over the budget or not.
    cache.object_path(names[4])
    assert cache.prune(budget=0) == 2
    assert [path.name for path in objects.iterdir()] == [names[4]]
    assert not entry.exists()


def test_an_entry_this_process_marked_used_within_the_hour_is_marked_again_without_a_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build server reads entries between builds; a build it forks marks them used (for
    prune) without looking at their files again. A process that has not seen an entry within
    the hour looks, and touches one used over an hour ago."""
    import report.cache

    monkeypatch.setattr(report.cache, "_USED_SINCE", {})
    cache = Cache(tmp_path / CACHE_DIR_NAME)
    cache.store("parsed", "k" * 64, {"value": 1})
    assert cache.load("parsed", "k" * 64) is not None
    entry = next((cache.directory / "entries").rglob("*.json"))
    looked: list[Path] = []
    stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **options: looked.append(self) or stat(self, **options))
    Cache(tmp_path / CACHE_DIR_NAME).kept("parsed", "k" * 64)
    assert entry not in looked
    os.utime(entry, (time.time() - 7200, time.time() - 7200))
    monkeypatch.setattr(report.cache, "_USED_SINCE", {})  # another process
    Cache(tmp_path / CACHE_DIR_NAME).kept("parsed", "k" * 64)
    assert entry in looked and entry.stat().st_mtime > time.time() - 60


def test_a_cache_pruned_has_room_left_so_that_the_next_builds_do_not_walk_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache over its budget is pruned to three quarters of it: the builds after, each writing
    a little, find it under its budget without walking it (at its budget, each would walk it:
    0.1 s a build for a 500-page book's)."""
    walks: list[object] = []
    walk = os.walk
    monkeypatch.setattr(os, "walk", lambda *args, **options: walks.append(args) or walk(*args, **options))
    cache = Cache(tmp_path / CACHE_DIR_NAME)
    for number in range(9):
        name = cache.put_object(bytes([number]) * 1000, ".bin")
        os.utime(cache.directory / "objects" / name, (cache.started - 600 + number, cache.started - 600 + number))
    assert cache.prune(budget=8000) == 3 and walks
    walks.clear()
    for number in range(2):
        later = Cache(tmp_path / CACHE_DIR_NAME)
        later.put_object(bytes([100 + number]) * 1000, ".bin")
        assert later.prune(budget=8000) == 0
    assert not walks


def test_a_build_reads_its_config_once(project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch) -> None:
    """report.toml and the chapters it lists are read once a build (the book is prepared from
    the config the build read to find its outputs)."""
    import report.build
    import report.load

    read: list[Path] = []
    load_config = report.load.load_config
    for module in (report.build, report.load):
        monkeypatch.setattr(module, "load_config", lambda root: read.append(root) or load_config(root))
    append(project / "chapters" / "02-method.md", "\n追記された段落。\n")
    run(project, worker)
    assert read == [project]


def test_prune_walks_the_cache_only_when_it_may_be_over_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a walk, a build that wrote less than the room left does not walk the cache again,
    within the hour; one that may have filled it does, and so does the first after an hour."""
    walks: list[object] = []
    walk = os.walk
    monkeypatch.setattr(os, "walk", lambda *args, **options: walks.append(args) or walk(*args, **options))

    def build_writing(data: bytes) -> tuple[Cache, str]:
        cache = Cache(tmp_path / CACHE_DIR_NAME)
        return cache, cache.put_object(data, ".bin")

    first, old = build_writing(b"a" * 1000)
    assert first.prune(budget=5000) == 0 and walks
    walks.clear()
    second, _ = build_writing(b"b" * 1000)
    assert second.prune(budget=5000) == 0 and not walks  # 2,000 bytes at most
    third, _ = build_writing(b"c" * 4000)
    os.utime(third.directory / "objects" / old, (third.started - 60, third.started - 60))
    assert third.prune(budget=5000) == 1 and walks  # 6,000 bytes: the oldest goes
    assert sorted(path.stat().st_size for path in (third.directory / "objects").iterdir()) == [1000, 4000]
    walks.clear()
    record = third.directory / "size.json"
    record.write_text(json.dumps({"total": 5000, "walked": time.time() - 7200}), encoding="utf-8")
    fourth, _ = build_writing(b"")
    assert fourth.prune(budget=5000) == 0 and walks  # the last walk an hour old


def test_a_character_no_font_has_is_warned_of_from_the_cache_too(project: Path) -> None:
    """The glyph check runs with the parsing of a chapter and is kept with it: a build that
    takes the chapter from the cache still names the file and line."""
    intro = project / "chapters" / "01-intro.md"
    lines = intro.read_text(encoding="utf-8").count("\n")
    append(intro, "\nヒエログリフ \U00013000 の段落。\n")

    def glyph_warnings() -> tuple[list[tuple[str, int | None]], Stats]:
        cache = Cache(project / CACHE_DIR_NAME)
        _, warnings = prepare(project, cache=cache)
        found = [(w.location.path.name, w.location.line) for w in warnings if "U+13000" in w.message]
        return found, cache.stats

    first, parsed = glyph_warnings()
    assert first == [("01-intro.md", lines + 2)] and parsed.misses["parsed"] == 1
    again, cached = glyph_warnings()
    assert again == first and cached.misses["parsed"] == 0 and cached.hits["parsed"] == 3


def test_an_index_waits_for_the_pages_it_lists_and_is_laid_out_once(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paragraph with a new index term, and pages enough to move every later page, added to
    the first chapter: the index changed, and its page lists ("3, 5–7", set whole as text) are
    not guessed from the last build while that chapter is laid out; it is laid out once, after
    it, with its real pages. The PDF is a build's from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    build(root, workers=worker)
    sent: list[str] = []
    real = Session.lay_out
    monkeypatch.setattr(
        Session, "lay_out", lambda self, job, first=False: sent.append(job.html) or real(self, job, first)
    )
    paragraph = '[新しい索引語]{.index reading="あたらしいさくいんご"}を含む段落。本文の説明を続ける。' * 3
    append(root / "chapters" / "01-callouts.md", "\n" + "\n\n".join([paragraph] * 40) + "\n")
    build(root, workers=worker)
    lists = [html for html in sent if 'page-list" data-page-of' in html]
    assert len(lists) == 1 and "新しい索引語" in lists[0]
    clean_build_matches(root, "ja-scholarly")


def test_an_index_gaining_a_mark_is_laid_out_beside_the_edited_chapter_not_after_it(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paragraph marking a term the index lists already, added at the end of a first chapter
    some fifty pages long: one id new of the thirty-one its lists name. Its lists are laid out
    with the last build's pages at once, while the chapter is laid out, not once it is (a worker
    would wait meanwhile). The new mark's page is guessed as the last build's of the text before
    it (a page past 9, as it is), not as the chapter's first: the index is laid out once. The PDF
    is a build's from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    build(root, workers=worker)
    events: list[str] = []
    lay_out, laid_out = Session.lay_out, PdfRun._laid_out
    monkeypatch.setattr(
        Session,
        "lay_out",
        lambda self, job, first=False: (
            events.append("index" if "page-list" in job.html else "part") or lay_out(self, job, first)
        ),
    )
    monkeypatch.setattr(
        PdfRun, "_laid_out", lambda self, key, layout: events.append("arrived") or laid_out(self, key, layout)
    )
    mark = '[包括協定]{.index reading="ほうかつきょうてい"}'
    append(chapter, f"\n{mark}の発効後も、各国の評価は分かれている。\n")
    build(root, workers=worker)
    assert events.count("index") == 1
    assert events.index("index") < events.index("arrived")
    clean_build_matches(root, "ja-scholarly")


@pytest.mark.parametrize("keeper_free", [True, False])
def test_an_index_laid_out_beside_the_edited_chapter_is_drawn_while_the_chapter_is_laid_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keeper_free: bool
) -> None:
    """The index laid out with the last build's pages while the edited chapter is (see above)
    is drawn at once by its worker, free meanwhile, not once the chapter's pages are known (the
    join then waited for that drawing): the pages keep its lists' shapes, and the run takes the
    drawing. It is asked for with the layout, before the layout comes back (the worker draws
    right behind it, with no round trip through the build), and drawn once. Should the worker
    that keeps the index's layout be the one laying out the chapter (``keeper_free`` False), the
    index would wait there all the same: it is laid out once the chapter's pages are known, not
    with a guess, and drawn right behind its layout. The PDF is a build's from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    with PdfWorkers(count=2) as workers:
        build(root, workers=workers)
        joiner = next(index for index, key in enumerate(workers.joins_kept) if key)  # the chapter's
        index_name = f"{root.resolve()}/index"
        for names in workers.resumes:
            names[:] = [name for name in names if name != index_name]
        workers.resumes[1 - joiner if keeper_free else joiner].append(index_name)
        events: list[str] = []
        kinds: dict[str, str] = {}
        lay_out, draw, laid_out = Session.lay_out, Session.draw, PdfRun._laid_out

        def sent(self: Session, job: PartJob, first: bool = False) -> None:
            kinds[job.key] = "index" if "page-list" in job.html else "part"
            lay_out(self, job, first)

        monkeypatch.setattr(Session, "lay_out", sent)
        monkeypatch.setattr(
            Session, "draw", lambda self, job: events.append(f"{kinds.get(job.part.key)} drawn") or draw(self, job)
        )
        monkeypatch.setattr(
            PdfRun,
            "_laid_out",
            lambda self, key, layout: events.append(f"{kinds[key]} laid out") or laid_out(self, key, layout),
        )
        mark = '[包括協定]{.index reading="ほうかつきょうてい"}'
        append(chapter, f"\n{mark}の発効後も、各国の評価は分かれている。\n")
        build(root, workers=workers)
    assert events.count("index drawn") == 1
    if keeper_free:
        assert events.index("index drawn") < events.index("index laid out") < events.index("part laid out")
    else:
        assert events.index("part laid out") < events.index("index drawn") < events.index("index laid out")
    clean_build_matches(root, "ja-scholarly")


def test_an_index_guessed_wrong_is_laid_out_and_drawn_again_its_first_drawing_unused(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index sent with its lists' shapes guessed, and its drawing right behind its layout
    (see above): should the guess be wrong (here every new mark's page is guessed as page 1, a
    digit short), the index is laid out again once the edited chapter's pages are known, and
    drawn again; the first drawing is not used, and its file is removed. The PDF is a build's
    from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    build(root, workers=worker)
    monkeypatch.setattr(report.render.pdf, "_page_after_known", lambda *_: "1")
    events: list[str] = []
    lay_out, draw = Session.lay_out, Session.draw

    def kind(html: str) -> str:
        return "index" if "page-list" in html else "part"

    monkeypatch.setattr(
        Session,
        "lay_out",
        lambda self, job, first=False: events.append(f"{kind(job.html)} laid out") or lay_out(self, job, first),
    )
    monkeypatch.setattr(
        Session, "draw", lambda self, job: events.append(f"{kind(job.part.html)} drawn") or draw(self, job)
    )
    mark = '[包括協定]{.index reading="ほうかつきょうてい"}'
    append(chapter, f"\n{mark}の発効後も、各国の評価は分かれている。\n")
    build(root, workers=worker)
    laid = [at for at, event in enumerate(events) if event == "index laid out"]
    drawn = [at for at, event in enumerate(events) if event == "index drawn"]
    assert len(laid) == len(drawn) == 2
    assert laid[0] < drawn[0] < laid[1] < drawn[1]  # each drawing asked for right behind its layout
    assert not list((root / report.cache.CACHE_DIR_NAME).rglob("parts/*.pdf"))
    clean_build_matches(root, "ja-scholarly")


def test_pages_moved_before_the_index_are_set_in_its_lists_by_the_join(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page more in the first chapter moves every page the index lists by one. Its numbers
    keep their digits (all past 9 already) and its lists their shape ("13, 17–18" and
    "14, 18–19" are both "00, 00–00"): the index is neither laid out nor drawn again, the join
    sets their digits. The PDF is a build's from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    paragraphs = "\n" + "\n\n".join(["本文の説明を続ける。" * 6] * 12) + "\n"
    for _ in range(6):  # every page the index lists past 9
        append(root / "chapters" / "01-callouts.md", paragraphs)
    build(root, workers=worker)
    before = re.search(r"NATO(\d+),(\d+)–(\d+)", squeeze(pdftotext(root / "dist" / "ja-scholarly.pdf")))
    assert before is not None and int(before.group(1)) > 9
    sent = sent_to_workers(monkeypatch)
    append(root / "chapters" / "01-callouts.md", paragraphs)
    build(root, workers=worker)
    after = re.search(r"NATO(\d+),(\d+)–(\d+)", squeeze(pdftotext(root / "dist" / "ja-scholarly.pdf")))
    assert after is not None and [int(n) - 1 for n in after.groups()] == [int(n) for n in before.groups()]
    assert sent and not [html for html in sent if 'page-list" data-page-of' in html]
    clean_build_matches(root, "ja-scholarly")


def long_index_list(root: Path) -> Path:
    """ja-scholarly with a term on every other page, from past page 9: its page list, twenty
    pages, is broken over three lines of the index's column. Returns the chapter with the term."""
    (root / "styles").mkdir()
    (root / "styles" / "print.css").write_text("#callouts h2 { break-before: page; }\n", encoding="utf-8")
    chapter = root / "chapters" / "01-callouts.md"
    marked = '[試験語]{.index reading="しけんご"}を含む段落。'
    append(chapter, "".join(f"\n## 節{n}\n\n{marked if n >= 8 and n % 2 else '本文。'}\n" for n in range(48)))
    return chapter


def test_a_first_build_keeps_the_index_s_layout_for_the_first_page_of_text_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report's first build keeps no part's layout to resume (it lays out every part), but the
    index's: the first page of text added after it, its terms with it, changes the index's lists,
    and the index made anew was most of that edit's time (0.25–0.4 s of the 615-page bench
    report's 0.7). That edit sends the index to the worker that keeps it, which is not the one
    that keeps the join, and the chapter to the one that does: the moved parts' join and the
    index's layout are made side by side. The PDF is a build's from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    with PdfWorkers(count=2) as workers:
        build(root, workers=workers)
        index_name = f"{root.resolve()}/index"
        assert sorted(workers.resumes, key=len) == [[], [index_name]]
        keeper = next(index for index, names in enumerate(workers.resumes) if names)
        assert workers.joins_kept[keeper] == "" and workers.joins_kept[1 - keeper] != ""
        sent: list[tuple[int, str]] = []
        send = Session._send

        def recorded(self: Session, index: int, message: tuple[str, Any], answered: bool = True) -> None:
            if message[0] == "layout":
                sent.append((index, message[1].name))
            send(self, index, message, answered)

        monkeypatch.setattr(Session, "_send", recorded)
        mark = '[試験語]{.index reading="しけんご"}を含む段落。'
        append(chapter, "".join(f"\n{mark}本文の説明を続ける。" * 3 for _ in range(40)) + "\n")
        build(root, workers=workers)
    assert {index for index, name in sent if name == index_name} == {keeper}
    assert {index for index, name in sent if name.endswith("/callouts")} == {1 - keeper}
    clean_build_matches(root, "ja-scholarly")


def listed_pages(pdf: Path) -> list[int]:
    """The term's pages (see long_index_list), from its lines in the left column."""
    lines = [re.split(r"\s{3,}", line.strip())[0] for line in pdftotext(pdf).splitlines()]
    start = next(index for index, line in enumerate(lines) if line.startswith("試験語 "))
    pieces = [lines[start].removeprefix("試験語 ")]
    pieces += itertools.takewhile(lambda line: line[:1].isdigit(), lines[start + 1 :])
    assert len(pieces) == 3, "the list is broken over three lines"
    return [int(page) for page in re.findall(r"\d+", " ".join(pieces))]


def test_an_index_entry_gaining_a_mark_on_a_page_it_lists_is_neither_laid_out_nor_drawn_again(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The term marked once more on a page its entry lists already: the entry names an id more
    and shows the same pages. The workers know the index's boxes by their place, not by the ids
    they show the pages of: the index is neither laid out nor drawn again. The PDF is a build's
    from nothing."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    build(root, workers=worker)
    before = listed_pages(root / "dist" / "ja-scholarly.pdf")
    sent = sent_to_workers(monkeypatch)
    marked = '[試験語]{.index reading="しけんご"}を含む段落。'
    text = chapter.read_text(encoding="utf-8")
    at = text.index(marked, text.index("## 節9\n")) + len(marked)
    chapter.write_text(text[:at] + marked + text[at:], encoding="utf-8")
    build(root, workers=worker)
    assert listed_pages(root / "dist" / "ja-scholarly.pdf") == before
    assert sent and not [html for html in sent if 'page-list" data-page-of' in html]
    clean_build_matches(root, "ja-scholarly")


def test_a_page_list_broken_over_lines_has_its_pieces_set_by_the_join(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section added at the start of the chapter moves each page of the long list by one. The
    index is neither laid out nor drawn again; the join sets each line's digits, from where the
    line takes up the list."""
    root = copy_fixture("ja-scholarly", tmp_path)
    chapter = long_index_list(root)
    build(root, workers=worker)
    before = listed_pages(root / "dist" / "ja-scholarly.pdf")
    assert before == list(range(before[0], before[0] + 40, 2)) and 9 < before[0] < before[-1] < 99  # every other page
    sent = sent_to_workers(monkeypatch)
    text = chapter.read_text(encoding="utf-8")
    start = text.index("---\n", 4) + 4
    chapter.write_text(text[:start] + "\n## 追加の節\n\n本文。\n" + text[start:], encoding="utf-8")
    build(root, workers=worker)
    assert listed_pages(root / "dist" / "ja-scholarly.pdf") == [page + 1 for page in before]
    assert sent and not [html for html in sent if 'page-list" data-page-of' in html]
    clean_build_matches(root, "ja-scholarly")


def test_a_page_list_drawn_with_its_numbers_in_has_each_lines_digits(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the join cannot set a part's page numbers (one drawn in two runs of text, say), the
    worker draws them in: a page list broken over lines gets each line's digits there too."""
    root = copy_fixture("ja-scholarly", tmp_path)
    long_index_list(root)
    jobs: list[tuple[DrawJob, Styles]] = []
    draw = Session.draw
    monkeypatch.setattr(Session, "draw", lambda self, job: jobs.append((job, self.styles)) or draw(self, job))
    build(root, workers=worker)
    job, styles = next((job, styles) for job, styles in jobs if 'page-list" data-page-of' in job.part.html)
    target = tmp_path / "index.pdf"
    (tmp_path / "job.pickle").write_bytes(pickle.dumps((dataclasses.replace(job, target=target), styles)))
    # In a process of its own, as a worker: WeasyPrint's fonts there are the report's subsets only.
    drawn = subprocess.run(
        [sys.executable, "-c", _DRAWN_IN, str(tmp_path / "job.pickle")], capture_output=True, text=True
    )
    assert drawn.returncode == 0, drawn.stderr
    assert listed_pages(target) == listed_pages(root / "dist" / "ja-scholarly.pdf")


_DRAWN_IN = """
import pickle, sys
from pathlib import Path
from report.render import weasy
weasy.load_weasyprint()
job, styles = pickle.loads(Path(sys.argv[1]).read_bytes())
weasy._drawn_numbers = lambda document, found: ()  # none the join could set
worker = weasy.Worker()
worker.use(styles)
assert worker.draw(job).numbers is None
"""


def test_a_process_that_prepares_again_does_not_convert_its_chapters_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report watch prepares the book at every save: the chapters the cache gives are those the
    last preparation took (the cache still checks what they depend on), not converted anew."""
    import report.build

    converted: list[str] = []
    real = report.build._parsed_from_plain
    monkeypatch.setattr(
        report.build, "_parsed_from_plain", lambda source, *rest: converted.append(source.id) or real(source, *rest)
    )
    monkeypatch.setattr(report.build, "_KEPT_PARSED", {})
    first, _ = prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    assert len(converted) == 3
    converted.clear()
    again, _ = prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    assert converted == [] and again == first
    append(project / "chapters" / "02-method.md", "\n追記された段落でございます。\n")
    edited, _ = prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    assert converted == [] and edited.chapters[0] == first.chapters[0] and edited.chapters[1] != first.chapters[1]
    # A copy of the report (its cache too) has the same keys, and chapters of its own.
    copy = shutil.copytree(project, project.parent / "copy")
    copied, _ = prepare(copy, cache=Cache(copy / CACHE_DIR_NAME))
    paths = [path for chapter in copied.chapters for path in (chapter.source, *chapter.images)]
    assert len(converted) == 3 and paths and all(path.is_relative_to(copy) for path in paths)


def test_the_last_epubs_pages_are_taken_from_memory_without_reading_the_cache(
    project: Path, worker: PdfWorkers
) -> None:
    """A process that builds again (report watch; the build server's children, which find what
    the server read) takes the unchanged chapters' EPUB pages from memory: with their cache
    entries removed, only the edited chapter's page is made, and the EPUB is a build from
    nothing's. The server's reading between builds takes the pages it has kept as they are."""
    import report.build

    run(project, worker)
    entries = project / CACHE_DIR_NAME / "v1" / "entries"
    shutil.rmtree(entries / "epub-page")
    # the chapters, their code's highlighting, the book resolved, assembled and digested, their
    # pages, the navigation and the one its page list was written out from, and the print parts'
    # layouts and drawings (cover, contents, the chapters)
    assert len(list(report.build.keep_last_build(project))) == 3 + 1 + 3 + 3 + 2 + 5
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert result.stats.misses["epub-page"] == 1 and result.stats.hits["epub-page"] == 2
    assert len(list((entries / "epub-page").glob("*.json"))) == 1
    clean_build_matches(project)


def test_the_epub_navigation_is_made_again_only_when_the_contents_or_page_list_change(
    project: Path, worker: PdfWorkers
) -> None:
    """An edit of a sentence leaves the contents, the landmarks and the page list as they were:
    the EPUB's navigation document and NCX are taken as made. Pages added move the page list
    alone: both are written out from those made with one stand-in page, as made (the NCX's from
    ebooklib's NCX of the contents). A new section heading is in both once made again. Each EPUB
    is a build from nothing's."""
    run(project, worker)
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("位置づけは", "位置づけを"), encoding="utf-8")
    result = run(project, worker)
    assert result.stats.misses["epub-page"] == 1
    assert (result.stats.hits["epub-nav"], result.stats.misses["epub-nav"]) == (1, 0)
    assert (result.stats.hits["epub-ncx"], result.stats.misses["epub-ncx"]) == (1, 0)
    clean_build_matches(project)
    method.write_text(method.read_text(encoding="utf-8") + "\n" + "頁を増やす本文。" * 500 + "\n", encoding="utf-8")
    result = run(project, worker)
    assert (result.stats.hits["epub-nav"], result.stats.misses["epub-nav"]) == (1, 1)  # the stand-in's, taken
    assert result.stats.misses["epub-ncx"] == 1
    assert (result.stats.hits["epub-ncx-shell"], result.stats.misses["epub-ncx-shell"]) == (1, 0)
    assert "epub-ncx-contents" not in result.stats.hits | result.stats.misses  # (the stand-in's made of it)
    clean_build_matches(project)
    method.write_text(
        method.read_text(encoding="utf-8") + "\n## 追加の節 {#method-added}\n\n本文。\n", encoding="utf-8"
    )
    result = run(project, worker)
    assert result.stats.misses["epub-nav"] == 2 and result.stats.misses["epub-ncx"] == 1  # (and the stand-in's)
    assert result.stats.misses["epub-ncx-contents"] == 1 and result.stats.misses["epub-ncx-shell"] == 1
    with zipfile.ZipFile(epub(project)) as book:
        assert "追加の節" in book.read("EPUB/nav.xhtml").decode()
        assert "追加の節" in book.read("EPUB/toc.ncx").decode()
    clean_build_matches(project)


def test_an_edit_after_the_book_is_kept_fills_in_and_searches_only_the_edited_chapter(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between builds, the build server also resolves the book it read and makes its print
    parts (keep_last_build): a build it forks after one chapter was edited fills in that chapter
    alone (the others' numbers and references are as they were), renders and searches that
    chapter's print part alone (characters, ids, page numbers), and digests that chapter alone
    for its EPUB page. It fills in and renders it twice: first as the last book would, to lay it
    out before the book is resolved (see report.build._head_start), then in the book; the part
    is the same, and searched once. Its HTML alone is filled in with its stand-ins (to be laid
    out and drawn): the other parts' layout keys are made without it. The last build's page
    numbers are read once, for the head start and the run. Its PDF and EPUB are a build from
    nothing's."""
    run(project, worker)
    for module, attribute in _KEPT_IN_PROCESS:  # as the build server, which builds nothing itself
        monkeypatch.setattr(module, attribute, {})
    list(report.build.keep_last_build(project))
    # Each chapter's digests and ids, which the EPUB keys its page by, made once with it.
    kept = [filled.chapter for filled in report.resolve._FILLED.values()]
    assert len(kept) == 3 and all({"epub_digest", "own_ids", "linked_ids"} <= vars(chapter).keys() for chapter in kept)
    filled: list[str] = []
    searched: list[str] = []
    real_fill, real_code_text = report.resolve._filled_in, report.render.pdf.code_text
    monkeypatch.setattr(
        report.resolve, "_filled_in", lambda chapter, *rest: filled.append(chapter.id) or real_fill(chapter, *rest)
    )
    monkeypatch.setattr(
        report.render.pdf,
        "code_text",
        lambda source: (
            searched.extend(re.findall(r'<section class="chapter [^"]*" id="([^"]+)"', source))
            or real_code_text(source)
        ),
    )
    jobs: list[str] = []
    real_job = report.render.pdf._Part.job

    def job(part: report.render.pdf._Part, cover: bool, key: str) -> Any:
        jobs.append(part.name)
        return real_job(part, cover, key)

    monkeypatch.setattr(report.render.pdf._Part, "job", job)
    rendered = rendered_parts(monkeypatch)
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert filled == rendered == ["method", "method"] and searched == ["method"]
    assert jobs and set(jobs) == {"method"}
    assert result.stats.hits["pdf-numbers"] == 1  # the last build's page numbers, read once
    clean_build_matches(project)


def test_an_edit_that_moves_no_page_reads_the_last_build_s_records_once_and_writes_them_not_again(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build reads what the last one recorded of the PDF (each chapter's digest, every id, the
    subsets; the page numbers) once, for the head start and the run that takes it over, and
    writes the page numbers only when they changed. Its PDF and EPUB are a build from nothing's."""
    run(project, worker)
    key = report.render.pdf._last_build_key(report.load.load_config(project).root, "screen", "pdf-numbers")
    numbers = project / CACHE_DIR_NAME / "v1" / "entries" / "pdf-numbers" / f"{key}.json"
    written = numbers.stat().st_ino, numbers.stat().st_mtime_ns
    read: list[object] = []
    real = report.render.pdf._LastBuild
    monkeypatch.setattr(report.render.pdf, "_LastBuild", lambda **fields: read.append(fields) or real(**fields))
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert len(read) == 1 and result.stats.hits["pdf-numbers"] == 1
    assert (numbers.stat().st_ino, numbers.stat().st_mtime_ns) == written
    clean_build_matches(project)


def test_a_part_drawn_goes_to_the_join_before_its_cache_entry_is_written(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drawing that arrives is sent to the join first; its entry (its numbers made plain and
    written out: thousands in an index) is written after, while the worker joins. Each entry is
    written all the same, and the bytes are a build's from nothing's."""
    run(project, worker)
    events: list[tuple[str, str]] = []
    real_join, real_store = Session.join, report.cache.Cache.store

    def join(session: Any, job: Any, **options: Any) -> None:
        events.extend(("join", part.pdf.name) for part in job.parts)
        real_join(session, job, **options)

    def store(cache: Any, kind: str, key: str, value: dict[str, Any], *args: Any, **options: Any) -> None:
        if kind == "pdf-part" and "pdf" in value:
            events.append(("store", value["pdf"]))
        real_store(cache, kind, key, value, *args, **options)

    monkeypatch.setattr(Session, "join", join)
    monkeypatch.setattr(report.cache.Cache, "store", store)
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    run(project, worker)
    stored = [(at, name) for at, (what, name) in enumerate(events) if what == "store"]
    assert stored  # the edited chapter, drawn
    for at, name in stored:
        assert ("join", name) in events[:at], f"{name} stored before the join was sent it: {events}"
    entries = project / CACHE_DIR_NAME / "v1" / "entries" / "pdf-part"
    written = {json.loads(path.read_text(encoding="utf-8"))["value"].get("pdf") for path in entries.glob("*.json")}
    assert {name for _, name in stored} <= written
    clean_build_matches(project)


def test_the_last_build_s_records_are_written_after_the_epub_while_the_workers_join(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit that moves pages writes what the next build starts from (the page numbers, the
    layout, the head start's record) once the EPUB is written, while the workers join: not
    between the layout and the EPUB, which the build writes then."""
    run(project, worker)
    key = report.render.pdf._last_build_key(report.load.load_config(project).root, "screen", "pdf-numbers")
    numbers = project / CACHE_DIR_NAME / "v1" / "entries" / "pdf-numbers" / f"{key}.json"
    before = numbers.read_text(encoding="utf-8")
    events: list[str] = []
    real_epub = report.build._epub
    monkeypatch.setattr(report.build, "_epub", lambda *a, **k: (real_epub(*a, **k), events.append("epub"))[0])
    for name in ("_remember_numbers", "_remember_layout", "_remember_early"):
        real = getattr(report.render.pdf.PdfRun, name)
        monkeypatch.setattr(
            report.render.pdf.PdfRun, name, lambda self, real=real, name=name: (real(self), events.append(name))[0]
        )
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8") + "\n\n" + "追加の段落。" * 400 + "\n", encoding="utf-8")
    run(project, worker)
    assert events == ["epub", "_remember_numbers", "_remember_layout", "_remember_early"]
    assert numbers.read_text(encoding="utf-8") != before  # the pages moved
    clean_build_matches(project)


def test_the_labels_and_owners_of_a_book_as_the_last_are_compared_not_written_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The EPUB's book digest takes the last book's digest of its labels and ids' owners when
    they are the same (the build server works it out between builds): written out, tens of
    thousands of them took 17 ms of a 586-page edit."""
    monkeypatch.setattr(report.render.epub, "_TABLES_DIGESTS", {})
    labels = {"intro": Label("1", "第1章", "第1章"), "fig-a": Label("1", "図1", "図1")}
    owner = {"intro": "intro", "fig-a": "intro"}
    first = report.render.epub._tables_digest(labels, owner)
    written: list[tuple[str, ...]] = []
    real = report.render.epub.digest
    monkeypatch.setattr(report.render.epub, "digest", lambda *parts: written.append(parts) or real(*parts))
    assert report.render.epub._tables_digest(dict(labels), dict(owner)) == first and written == []
    renumbered = {**labels, "fig-a": Label("2", "図2", "図2")}
    assert report.render.epub._tables_digest(renumbered, owner) not in (first, "") and len(written) == 1
    assert report.render.epub._tables_digest(labels, {**owner, "fig-a": "method"}) != first


def test_the_parts_after_an_edited_chapter_go_to_the_kept_join_before_it_is_drawn(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once every part is laid out, every part drawn (the cache's) is sent to the join kept from
    the last build: the parts after an edited chapter are joined while it is drawn, not once it
    has been. The PDF is a build's from nothing. (The head start does not draw the chapter here:
    its drawing, asked for before the book is resolved, came back on a fast machine before the
    run had sent anything, and the run's order was not what the test saw.)"""
    run(project, worker)
    assert any(worker.joins_kept)  # the book's join, kept for the next build
    monkeypatch.setattr(PdfHeadStart, "_draw", lambda *_: None)
    events: list[tuple[str, frozenset[int]]] = []
    join, drawn = Session.join, PdfRun._drawn
    monkeypatch.setattr(
        Session,
        "join",
        lambda self, job, drawn_last="": (
            events.append(("join", frozenset(part.slot for part in job.parts))) or join(self, job, drawn_last)
        ),
    )
    monkeypatch.setattr(
        PdfRun, "_drawn", lambda self, target, made: events.append(("drawn", frozenset())) or drawn(self, target, made)
    )
    method = project / "chapters" / "02-method.md"  # the appendix after it
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    run(project, worker)
    drawn_at = events.index(("drawn", frozenset()))  # the edited chapter's drawing
    sent_before = frozenset().union(*(slots for kind, slots in events[:drawn_at] if kind == "join"))
    last_slot = max(slot for kind, slots in events if kind == "join" for slot in slots)
    assert last_slot in sent_before
    clean_build_matches(project)


def kept_as_the_build_server_keeps_it(project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``project`` built, and kept between builds as the build server keeps it; returns what the
    next builds do, in order: each chapter sent to be laid out (by id), and "resolved" when the
    book is."""
    run(project, worker)
    for module, attribute in _KEPT_IN_PROCESS:  # as the build server, which builds nothing itself
        monkeypatch.setattr(module, attribute, {})
    list(report.build.keep_last_build(project))
    events: list[str] = []
    lay_out, resolve = Session.lay_out, report.resolve.resolve_book
    chapter = re.compile(r'<section class="chapter [^"]*" id="([^"]+)"')
    monkeypatch.setattr(
        Session,
        "lay_out",
        lambda self, job, first=False: events.extend(chapter.findall(job.html)) or lay_out(self, job, first),
    )
    monkeypatch.setattr(report.resolve, "resolve_book", lambda *args: events.append("resolved") or resolve(*args))
    return events


def test_a_chapter_edited_after_the_book_is_kept_is_laid_out_before_the_book_is_resolved(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sentence edited: the chapter is parsed, filled in as the last book would fill it, and
    sent to be laid out before the book is loaded and resolved (report.build._head_start); the
    book fills it the same, so the run lays it out no more, and the chapter is parsed once. The
    PDF and EPUB are a build from nothing's."""
    events = kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    parsed: list[str] = []
    real_parse = report.build._parse_and_check
    monkeypatch.setattr(
        report.build, "_parse_and_check", lambda source, *rest: parsed.append(source.id) or real_parse(source, *rest)
    )
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    run(project, worker)
    assert events == ["method", "resolved"] and parsed == ["method"]
    clean_build_matches(project)


def test_a_paragraph_that_cites_refers_and_marks_as_the_book_does_gets_a_head_start(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paragraph added to a chapter that cites a source as the book cites it elsewhere, refers
    to a chapter the book has and marks an index term: the last book fills it as the new one
    will (the citation's text taken from where the book printed it), so it is sent ahead and
    laid out no more (the index is laid out again, as it lists one more page). A paragraph citing a source the book did not cite gets no head start (the
    reference list and its numbers change). The PDF and EPUB are a build from nothing's."""
    project = copy_fixture("ja-scholarly", tmp_path)
    events = kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    chapter = project / "chapters" / "02-citations.md"
    added = '\n\n安全保障環境は[@sato2019]に詳しい。[核実験]{.index reading="かくじっけん"}は[](#terms)でも扱う。\n'
    chapter.write_text(chapter.read_text(encoding="utf-8") + added, encoding="utf-8")
    run(project, worker)
    assert events == ["citations", "resolved", "index"]  # (the index lists the term's new page)
    assert "安全保障環境は" in squeeze(pdftotext(project / "dist" / "ja-scholarly.pdf"))
    clean_build_matches(project, "ja-scholarly")
    list(report.build.keep_last_build(project))
    events.clear()
    chapter.write_text(
        chapter.read_text(encoding="utf-8") + "\n\n引かれていなかった文献も引く[@uncited2000]。\n", encoding="utf-8"
    )
    run(project, worker)
    assert events[:2] == ["resolved", "citations"]
    clean_build_matches(project, "ja-scholarly")


def test_the_index_after_a_head_start_come_before_the_run_is_laid_out_once(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pages of text added to the first chapter: every later page moves, so the index's
    pages go from one digit to two. The chapter gets a head start; its layout comes while the
    book is resolved (here: waited for). The run takes it up before it lays the other parts
    out, and lays the index out once, with the pages it lists (before, it was laid out first
    with the last build's, to be laid out again once the chapter's layout was read). The PDF and
    EPUB are a build from nothing's."""
    project = copy_fixture("ja-scholarly", tmp_path)
    events = kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    assert re.search(r"外交官 7\b", pdftotext(project / "dist" / "ja-scholarly.pdf"))  # in the index
    resolve = report.resolve.resolve_book

    def resolve_while_laid_out(*args: Any) -> Any:
        resolved = resolve(*args)
        assert multiprocessing.connection.wait(worker.connections, timeout=60)  # the chapter's layout
        return resolved

    monkeypatch.setattr(report.resolve, "resolve_book", resolve_while_laid_out)
    lay_out = report.render.pdf.PdfRun.layout

    def waits_for_layouts(run: report.render.pdf.PdfRun) -> Any:
        if "waits" not in events:
            events.append("waits")
        return lay_out(run)

    monkeypatch.setattr(report.render.pdf.PdfRun, "layout", waits_for_layouts)
    chapter = project / "chapters" / "01-callouts.md"
    added = "\n\n" + "本文の段落。囲み記事の種類を順に示す。" * 120 + "\n"
    chapter.write_text(chapter.read_text(encoding="utf-8") + added, encoding="utf-8")
    run(project, worker)
    monkeypatch.setattr(report.resolve, "resolve_book", resolve)  # (a build from nothing has no head start)
    assert events == ["callouts", "resolved", "index", "waits"]  # sent before the run waits for any layout
    assert re.search(r"外交官 \d\d\b", pdftotext(project / "dist" / "ja-scholarly.pdf"))
    clean_build_matches(project, "ja-scholarly")


def test_the_layouts_and_drawings_of_the_last_parts_are_read_between_builds(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build server reads the last print document's layouts and drawings between builds
    (report.render.pdf.keep_parts): after a word is edited, the build reads from the cache
    only the edited chapter's, which it had not (as the layout misses: it is made now). Its PDF
    and EPUB are a build from nothing's."""
    kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    read: list[str] = []
    load = Cache.load_with_deps
    monkeypatch.setattr(Cache, "load_with_deps", lambda self, kind, key: read.append(kind) or load(self, kind, key))
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert sorted(kind for kind in read if kind in ("pdf-layout", "pdf-part")) == ["pdf-layout", "pdf-part"]
    assert result.stats.hits["pdf-layout"] == result.stats.hits["pdf-part"] == 4  # the other parts, from memory
    clean_build_matches(project)


def test_a_chapter_the_book_fills_otherwise_than_its_head_start_is_laid_out_again(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two chapters edited: a section added to the method chapter before the one the
    introduction refers to ("2.1節" becomes "2.2節"), and a word of the introduction. The method
    chapter gives the book another section: it gets no head start (the last book had no number
    for it). The introduction gives and asks the same: it is sent ahead, filled in with the last
    book's "2.1節", which the book fills otherwise; the run lays it out again, and the PDF and
    EPUB are a build from nothing's."""
    events = kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    method = project / "chapters" / "02-method.md"
    section = "## 実験\n\n実験の設計を準備する。\n\n## 実験の設計"
    method.write_text(method.read_text(encoding="utf-8").replace("## 実験の設計", section), encoding="utf-8")
    intro = project / "chapters" / "01-intro.md"
    intro.write_text(intro.read_text(encoding="utf-8").replace("詳しい手法は", "詳しい方法は"), encoding="utf-8")
    run(project, worker)
    assert events[:2] == ["intro", "resolved"] and events.count("intro") == 2 and events.count("method") == 1
    clean_build_matches(project)


def test_a_head_start_for_a_book_with_an_error_leaves_the_workers_as_they_were(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word of a chapter edited, and a reference to no id added to another (which only
    resolving the book finds): the first chapter was sent ahead; the build fails with the
    error, its workers are neither stopped nor left busy, no drawing is left behind, and the
    last PDF is untouched. Mended, the next build is a build from nothing's."""
    events = kept_as_the_build_server_keeps_it(project, worker, monkeypatch)
    before = pdf(project).read_bytes()
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    appendix = project / "chapters" / "90-appendix.md"
    text = appendix.read_text(encoding="utf-8")
    appendix.write_text(text + "\n[](#no-such-id)も参照。\n", encoding="utf-8")
    with pytest.raises(ReportError, match="no-such-id"):
        run(project, worker)
    assert events == ["method", "resolved"]
    assert worker.alive and not worker.busy.locked()
    assert not list((project / CACHE_DIR_NAME / "parts").glob(f"*.{os.getpid()}.pdf"))
    assert pdf(project).read_bytes() == before
    appendix.write_text(text, encoding="utf-8")
    run(project, worker)
    clean_build_matches(project)


def rendered_parts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The chapters whose print parts are rendered from the template, in order."""
    rendered: list[str] = []
    real = jinja2.Template.render

    def render(template: jinja2.Template, *args: Any, **values: Any) -> str:
        if template.name == "print.html.j2":
            rendered.extend(chapter.id for chapter in values.get("chapters", ()))
        return real(template, *args, **values)

    monkeypatch.setattr(jinja2.Template, "render", render)
    return rendered


def test_a_reports_own_print_template_renders_every_chapter_again_at_each_build(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builder's own templates read of the book, besides the chapter, only the config: an
    unchanged chapter's print part is kept from the last build. A report's own may read any of
    the book (here, the first chapter's title, in every part): every part is rendered again."""
    (project / "templates").mkdir()
    template = (Path(report.assemble.__file__).parent / "templates" / "print.html.j2").read_text(encoding="utf-8")
    own = template.replace('id="{{ chapter.id }}">', 'id="{{ chapter.id }}" data-first="{{ book.chapters[0].title }}">')
    assert own != template
    (project / "templates" / "print.html.j2").write_text(own, encoding="utf-8")
    run(project, worker)
    rendered = rendered_parts(monkeypatch)
    intro = project / "chapters" / "01-intro.md"
    intro.write_text(intro.read_text(encoding="utf-8").replace("title: 序論", "title: 序説"), encoding="utf-8")
    run(project, worker)
    assert rendered == ["intro", "method", "appendix"]
    book, _ = prepare(project)
    assert 'data-first="序説"' in report.assemble.Assembler(book).print_part(book.chapters[-1])
    clean_build_matches(project)


def test_chapters_read_into_memory_between_builds_are_taken_without_reading_the_cache(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build server reads the chapters of the report it built into memory while no build
    runs (keep_last_build): the builds it forks take them from there, reading none of their cache
    entries, and check only the files they use; a chapter whose image changed is parsed again."""
    import report.build

    monkeypatch.setattr(report.build, "_KEPT_PARSED", {})
    first, _ = prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    monkeypatch.setattr(report.build, "_KEPT_PARSED", {})
    # a step a chapter, their code's highlighting, the book (no EPUB yet)
    assert len(list(report.build.keep_last_build(project))) == 3 + 1 + 3
    shutil.rmtree(project / CACHE_DIR_NAME / "v1" / "entries" / "parsed")
    parsed: list[str] = []
    real = report.build._parse_and_check
    monkeypatch.setattr(
        report.build, "_parse_and_check", lambda source, *rest: parsed.append(source.id) or real(source, *rest)
    )
    cache = Cache(project / CACHE_DIR_NAME)
    again, _ = prepare(project, cache=cache)
    assert parsed == [] and again == first and cache.stats.hits["parsed"] == 3
    assert not (project / CACHE_DIR_NAME / "v1" / "entries" / "parsed").exists()
    Image.new("RGB", (24, 12), "blue").save(project / "assets" / "figures" / "sample.png")
    changed, _ = prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    assert parsed == ["method"] and changed.chapters[0] == first.chapters[0]


def test_the_highlighting_of_the_kept_chapters_languages_is_made_ready_between_builds(project: Path) -> None:
    """The build server makes ready the highlighting of the languages the chapters it keeps use
    (keep_last_build): Pygments compiles a lexer's rules at its first use in a process, which
    the builds it forks then find done. Other languages are left alone."""
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8") + "\n```rust\nfn main() {}\n```\n", encoding="utf-8")
    prepare(project, cache=Cache(project / CACHE_DIR_NAME))
    script = (
        "import sys; from pathlib import Path; import report.build\n"
        "from pygments.lexers.rust import RustLexer; from pygments.lexers.go import GoLexer\n"
        "before = '_tokens' in RustLexer.__dict__\n"
        "list(report.build.keep_last_build(Path(sys.argv[1])))\n"
        "print(before, '_tokens' in RustLexer.__dict__, '_tokens' in GoLexer.__dict__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(project)], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "False"]


def test_the_faces_code_points_read_into_memory_between_builds_are_not_read_by_a_build(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build server reads the faces' code points into memory with the chapters
    (keep_last_build): a build it forks looks characters up in them (the EPUB's fonts, the
    missing characters) without reading them from the cache."""
    import report.build

    run(project, worker)
    monkeypatch.setattr(fonts, "_CMAPS", {})
    list(report.build.keep_last_build(project))
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    result = run(project, worker)
    assert result.stats.hits["cmap"] == result.stats.misses["cmap"] == 0


def test_the_cyclic_collector_is_held_off_while_a_build_runs_and_on_again_after(
    project: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's full collections went over what the build keeps to its end: the collector is
    held off during the build, and on again after it (a process that builds again collects
    between builds); a caller that had it off keeps it off."""
    import gc

    import report.build

    during: list[bool] = []
    real = report.build.prepare
    monkeypatch.setattr(report.build, "prepare", lambda *args: during.append(gc.isenabled()) or real(*args))
    method = project / "chapters" / "02-method.md"
    method.write_text(method.read_text(encoding="utf-8").replace("準備する", "測定する"), encoding="utf-8")
    run(project, worker)
    assert during == [False] and gc.isenabled()
    gc.disable()
    try:
        method.write_text(method.read_text(encoding="utf-8").replace("測定する", "準備する"), encoding="utf-8")
        run(project, worker)
        assert during == [False, False] and not gc.isenabled()
    finally:
        gc.enable()


def test_two_reports_parts_of_one_name_are_kept_apart_by_the_workers(tmp_path: Path) -> None:
    """One pool of workers serves every report of its user: a part's layout is kept to resume
    under its name within its report's folder. Two copies of a report, each built once, keep
    both their indexes (a first build keeps its index's layout), where the one built second
    took the first one's place, under the one name "index", on a worker that kept both."""
    first, second = (copy_fixture("ja-scholarly", tmp_path / name) for name in ("first", "second"))
    with PdfWorkers(count=1) as workers:  # one worker: both indexes kept by the same one
        for root in (first, second):
            build(root, workers=workers)
        assert sorted(workers.resumes[0]) == sorted(f"{root.resolve()}/index" for root in (first, second))
    clean_build_matches(second, "ja-scholarly")


def test_a_first_build_s_layouts_are_not_kept_to_resume_and_an_edit_s_are(
    tmp_path: Path, worker: PdfWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker keeps the last layouts it made, to resume them (report.render.resume), of the
    parts named in their jobs: a report's first build lays out every part, and names none (the
    workers would hold layouts for nothing); an edit's layouts are named."""
    root = copy_fixture("ja-basic", tmp_path)
    names: list[str] = []
    lay_out = Session.lay_out
    monkeypatch.setattr(
        Session, "lay_out", lambda self, job, first=False: names.append(job.name) or lay_out(self, job, first)
    )
    build(root, workers=worker)
    assert names and not any(names)
    names.clear()
    append(root / "chapters" / "02-method.md", "\n追記された段落でございます。\n")
    build(root, workers=worker)
    assert names and all(names)
