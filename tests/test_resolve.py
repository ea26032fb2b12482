"""Stage 3, resolve: numbers and labels across the book, cross-references, duplicate ids."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import copy_fixture

import report.resolve
from report.build import prepare
from report.config import Config
from report.errors import Diagnostics
from report.model import Book, Matter, ParsedChapter, SourceChapter
from report.parse import parse_chapter
from report.resolve import resolve_book

ROOT = Path(__file__).resolve().parent / "golden"  # parse needs a folder; these chapters use no files

CH1 = """\
本文は[](#ch2)と[](#sec-2-1)、[](#fig-b)、[](#tbl-a)を参照する。

## 最初の節 {#sec-1-1}

### 小節 {#sec-1-1-1}

### 次の小節 {#sec-1-1-2}

## 二番目の節 {#sec-1-2}

### 小節 {#sec-1-2-1}

![図A](assets/sample.png "図A"){#fig-a}

Table: 表A {#tbl-a}

| a |
|---|
| 1 |
"""
CH2 = """\
## 節 {#sec-2-1}

## 番号なし {.unnumbered #sec-2-x}

![図B](assets/sample.png "図B"){#fig-b}

Table: 表B {#tbl-b}

| b |
|---|
| 2 |

前の章の[](#sec-1-2-1)、番号のない[](#sec-2-x)、付録[](#appendix)、前付け[](#preface)。
"""
PREFACE = "はしがき。[](#ch1)\n\n## 前付けの節 {#preface-sec}\n"
APPENDIX = '## 付録の節 {#appendix-sec}\n\n![図C](assets/sample.png "図C"){#fig-c}\n\n[](#appendix-sec)\n'


def book(language: str, chapters: list[tuple[str, str, Matter, str]]) -> tuple[Book, Diagnostics]:
    config = Config(root=ROOT, title="T", language=language, chapters=(), identifier="urn:x", output="t")
    diagnostics = Diagnostics()
    parsed = tuple(
        parse_chapter(SourceChapter(ROOT / f"{cid}.md", cid, title, matter, (), markdown, 1), ROOT, diagnostics)
        for cid, title, matter, markdown in chapters
    )
    return resolve_book(config, parsed, diagnostics), diagnostics


def sample(language: str) -> tuple[Book, Diagnostics]:
    return book(
        language,
        [
            ("preface", "はしがき", Matter.FRONT, PREFACE),
            ("ch1", "第一の章", Matter.BODY, CH1),
            ("ch2", "第二の章", Matter.BODY, CH2),
            ("appendix", "付録", Matter.BACK, APPENDIX),
        ],
    )


def xref_texts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<a href="#([^"]+)" class="xref[^"]*">([^<]*)</a>', html))


def test_japanese_labels() -> None:
    result, diagnostics = sample("ja")
    assert not diagnostics.errors, [str(d) for d in diagnostics.errors]
    refs = {label_id: label.reference for label_id, label in result.labels.items()}
    assert refs["ch1"] == "第1章" and refs["ch2"] == "第2章"
    assert refs["sec-1-1"] == "1.1節" and refs["sec-1-2"] == "1.2節"
    assert refs["sec-1-1-1"] == "1.1.1節" and refs["sec-1-1-2"] == "1.1.2節" and refs["sec-1-2-1"] == "1.2.1節"
    assert refs["sec-2-1"] == "2.1節"
    assert refs["fig-a"] == "図1" and refs["fig-b"] == "図2" and refs["fig-c"] == "図3"
    assert refs["tbl-a"] == "表1" and refs["tbl-b"] == "表2"
    # Front and back matter, and .unnumbered sections, have no number: they are cited by their text.
    assert refs["preface"] == "はしがき" and refs["appendix"] == "付録"
    assert refs["sec-2-x"] == "番号なし" and refs["appendix-sec"] == "付録の節" and refs["preface-sec"] == "前付けの節"
    assert result.labels["preface"].number is None and result.labels["appendix-sec"].number is None


def test_english_labels() -> None:
    result, diagnostics = sample("en")
    assert not diagnostics.errors
    refs = {label_id: label.reference for label_id, label in result.labels.items()}
    assert refs["ch2"] == "Chapter 2"
    assert refs["sec-2-1"] == "Section 2.1"
    assert refs["sec-1-2-1"] == "Section 1.2.1"
    assert refs["fig-a"] == "Figure 1" and refs["fig-b"] == "Figure 2"
    assert refs["tbl-a"] == "Table 1" and refs["tbl-b"] == "Table 2"


@pytest.mark.parametrize(
    ("language", "chapter", "section", "figure", "table"),
    [
        ("ja", "第2章", "2.1節", "図2", "表2"),
        ("ja-JP", "第2章", "2.1節", "図2", "表2"),
        ("en", "Chapter 2", "Section 2.1", "Figure 2", "Table 2"),
        ("en-GB", "Chapter 2", "Section 2.1", "Figure 2", "Table 2"),
        ("zh-Hans", "第2章", "2.1节", "图2", "表2"),
        ("zh-CN", "第2章", "2.1节", "图2", "表2"),
        ("zh-Hant", "第2章", "2.1節", "圖2", "表2"),
        ("zh-TW", "第2章", "2.1節", "圖2", "表2"),
        ("ko", "제2장", "2.1절", "그림 2", "표 2"),
        ("fr", "Chapter 2", "Section 2.1", "Figure 2", "Table 2"),  # unknown languages fall back to English
    ],
)
def test_labels_by_language(language: str, chapter: str, section: str, figure: str, table: str) -> None:
    result, _ = sample(language)
    assert result.labels["ch2"].reference == chapter
    assert result.labels["sec-2-1"].reference == section
    assert result.labels["fig-b"].reference == figure
    assert result.labels["tbl-b"].reference == table


def test_cross_references_filled_in_the_html() -> None:
    result, _ = sample("ja")
    preface, ch1, ch2, appendix = result.chapters
    assert xref_texts(preface.html) == {"ch1": "第1章"}
    assert xref_texts(ch1.html) == {"ch2": "第2章", "sec-2-1": "2.1節", "fig-b": "図2", "tbl-a": "表1"}
    assert xref_texts(ch2.html) == {
        "sec-1-2-1": "1.2.1節",
        "sec-2-x": "番号なし",
        "appendix": "付録",
        "preface": "はしがき",
    }
    assert xref_texts(appendix.html) == {"appendix-sec": "付録の節"}
    for chapter in result.chapters:
        assert 'class="slot"' not in chapter.html


def test_numbers_in_headings_and_captions() -> None:
    result, _ = sample("ja")
    ch1 = result.chapters[1]
    assert '<span class="number">1.1</span>' in ch1.html
    assert '<span class="number">1.1.1</span>' in ch1.html
    assert '<span class="label">図1</span>' in ch1.html
    assert '<span class="label">表1</span>' in ch1.html
    assert ch1.number == 1 and ch1.label.caption_prefix == "第1章"
    preface, appendix = result.chapters[0], result.chapters[3]
    assert preface.number is None and preface.label.caption_prefix == ""
    assert '<span class="number">' not in appendix.html  # back matter sections are not numbered


def test_owner_maps_ids_to_chapters() -> None:
    result, _ = sample("ja")
    assert result.owner["fig-b"] == "ch2" and result.owner["sec-1-1"] == "ch1" and result.owner["ch2"] == "ch2"
    assert result.chapter_of("tbl-a").id == "ch1"


def test_unknown_reference_is_an_error_with_its_line() -> None:
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, "一行目。\n\n三行目[](#nowhere)。\n")])
    ((error),) = diagnostics.errors
    assert error.location.path.name == "a.md"
    assert error.location.line == 3
    assert '"#nowhere"' in error.message


def test_ids_are_scoped_per_chapter() -> None:
    """The same section id in two chapters is fine: each chapter's [](#id) finds its own, and
    the print document (all chapters in one) still has each id once."""
    first = "## まとめ {#summary}\n\n[](#summary)\n\n![f](assets/sample.png){#fig}\n"
    second = "段落。\n\n## まとめ {#summary}\n\n[](#summary)、[](#fig)、[](#only-a)\n\n## 唯一 {#only-b}\n"
    third = "## A {#only-a}\n\n[](#only-b)\n"
    result, diagnostics = book(
        "ja", [("a", "A", Matter.BODY, first), ("b", "B", Matter.BODY, second), ("c", "C", Matter.BODY, third)]
    )
    assert not diagnostics.errors, diagnostics.errors
    a, b, c = result.chapters
    assert xref_texts(a.html) == {"a--summary": "1.1節"}
    assert xref_texts(b.html) == {"b--summary": "2.1節", "fig": "図1", "only-a": "3.1節"}
    assert xref_texts(c.html) == {"only-b": "2.2節"}  # an id only one chapter has keeps its name
    assert '<h2 id="a--summary">' in a.html and '<h2 id="b--summary">' in b.html
    assert [h.id for h in b.headings] == ["b--summary", "only-b"]
    assert result.owner["a--summary"] == "a" and result.owner["b--summary"] == "b"
    everything = "".join(chapter.html for chapter in result.chapters)
    all_ids = re.findall(r'\sid="([^"]+)"', everything)
    assert len(all_ids) == len(set(all_ids))


def test_an_ambiguous_reference_names_the_candidates() -> None:
    chapters = [
        ("a", "A", Matter.BODY, "## X {#same}\n"),
        ("b", "B", Matter.BODY, "段落。\n\n## Y {#same}\n"),
        ("c", "C", Matter.BODY, "段落。\n\n[](#same)\n"),
    ]
    _, diagnostics = book("ja", chapters)
    ((error),) = diagnostics.errors
    assert (error.location.path.name, error.location.line) == ("c.md", 3)
    assert '"#same" is ambiguous' in error.message and "a.md:1" in error.message and "b.md:3" in error.message


def test_a_section_may_share_another_chapters_id() -> None:
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, "## X {#b}\n\n[](#b)\n"), ("b", "B", Matter.BODY, "")])
    assert not diagnostics.errors
    assert xref_texts(result.chapters[0].html) == {"a--b": "1.1節"}  # its own chapter first
    assert result.owner["b"] == "b"


def test_any_element_with_an_id_is_a_target_scoped_per_chapter() -> None:
    """A span, a block, a fenced div or raw HTML (mdBook books write <a id="x"></a>) with an id:
    links reach it, from its chapter and from others, and two chapters may each have it."""
    first = (
        '[用語]{#term}と[要点]{#sec}。\n\n<a id="raw"></a>段落。\n\n::: {#box}\n囲み。\n:::\n\n'
        "{#para}\n段落。[^1]\n\n[^1]: 注の[語]{#in-note}。\n"
    )
    second = "## 節 {#sec}\n\n[](#term)、[生](#raw)、[箱](#box)、[段落](#para)、[注](#in-note)、[](#sec)\n"
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, first), ("b", "B", Matter.BODY, second)])
    assert not diagnostics.errors, diagnostics.errors
    a, b = result.chapters
    assert '<span id="a--sec">要点</span>' in a.html and '<h2 id="b--sec">' in b.html
    assert xref_texts(b.html) == {"term": "用語", "b--sec": "2.1節"}  # an empty link prints a span's text
    for html_id in ("raw", "box", "para", "in-note"):
        assert f'<a href="#{html_id}">' in b.html and result.owner[html_id] == "a"
    all_ids = re.findall(r'\sid="([^"]+)"', "".join(c.html + "".join(n.html for n in c.footnotes) for c in (a, b)))
    assert len(all_ids) == len(set(all_ids))


def test_an_empty_link_to_an_anchor_without_text_is_an_error() -> None:
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, '<a id="raw"></a>段落。\n\n見よ[](#raw)。\n')])
    ((error),) = diagnostics.errors
    assert error.location.line == 3 and "[text](#raw)" in error.message


def test_an_anchor_twice_in_a_chapter_is_an_error() -> None:
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, "## X {#s}\n\n段落[語]{#s}。\n")])
    ((error),) = diagnostics.errors
    assert error.location.line == 3 and "a.md:1" in error.message


def test_links_to_chapter_files() -> None:
    """A link to another chapter's file, with or without #anchor, leads to that chapter or section
    (also by the address of its page on a site a book tool makes: b.html or b for b.md)."""
    first = "[](b.md) と [その節](./b#sec) と [](b.html#same)。[](./index.html)\n\n## 同じ {#same}\n"
    second = "## 節 {#sec}\n\n## 同じ {#same}\n\n[戻る](a.md)\n"
    chapters = [("a", "A", Matter.BODY, first), ("b", "B", Matter.BODY, second), ("README", "R", Matter.BODY, "")]
    result, diagnostics = book("ja", chapters)
    assert not diagnostics.errors and not diagnostics.warnings, diagnostics.errors
    a, b, _ = result.chapters
    assert xref_texts(a.html) == {"b": "第2章", "b--same": "2.2節", "README": "第3章"}
    assert '<a href="#sec">その節</a>' in a.html
    assert '<a href="#a">戻る</a>' in b.html


@pytest.mark.parametrize(
    ("markdown", "words", "leads_to"),
    [
        ("[図](assets/sample.png) を見る。\n", ['"assets/sample.png"', "not a chapter"], None),
        ("[x](nowhere.md#a)\n", ['"nowhere.md#a"', "does not exist"], None),
        ("[x](b.md#nope)\n", ['"b.md#nope"', 'no id "nope"', "b.md", "leads to the chapter"], "b"),
    ],
)
def test_links_to_other_files_that_lead_nowhere_are_warnings(
    markdown: str, words: list[str], leads_to: str | None
) -> None:
    """Books written for other tools link to pages of their web site: they must still build."""
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, "段落。\n\n" + markdown), ("b", "B", Matter.BODY, "")])
    assert not diagnostics.errors
    ((problem),) = diagnostics.warnings
    assert (problem.location.path.name, problem.location.line) == ("a.md", 3)
    for word in words:
        assert word in problem.message
    after = result.chapters[0].html.split("段落。")[1]
    if leads_to is None:
        assert "<a" not in after and ("x" in after or "図" in after)
    else:
        assert f'<a href="#{leads_to}">x</a>' in after


def test_links_find_headings_by_the_ids_other_tools_give_them() -> None:
    """Written for GitHub or mdBook: README.md#let-bindings finds "## Let bindings" (no {#id})."""
    first = "[束縛](b.md#let-bindings)、[二つ目](b.md#まとめ-1)、[ここ](#use-it)\n\n## Use it!\n"
    second = "## Let bindings\n\n## まとめ\n\n## まとめ\n\n## Explicit {#mine}\n"
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, first), ("b", "B", Matter.BODY, second)])
    assert not diagnostics.errors, diagnostics.errors
    a, b = result.chapters
    ids = [h.id for h in b.headings]
    assert f'<a href="#{ids[0]}">束縛</a>' in a.html and f'<a href="#{ids[2]}">二つ目</a>' in a.html
    assert f'<a href="#{a.headings[0].id}">ここ</a>' in a.html
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, "[x](b.md#explicit)\n"), ("b", "B", Matter.BODY, second)])
    assert 'no id "explicit"' in diagnostics.warnings[0].message  # an {#id} is the heading's only id


def test_a_file_link_in_a_heading_keeps_its_text() -> None:
    """The contents keep the heading's text; in the chapter, the heading links (a heading is
    rendered twice: its link to a file is taken once)."""
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, "## [B](b.md) を読む\n"), ("b", "B", Matter.BODY, "")])
    assert not diagnostics.errors and not diagnostics.warnings, diagnostics.errors + diagnostics.warnings
    assert result.chapters[0].headings[0].html == "B を読む"
    assert '<a href="#b">B</a> を読む</h2>' in result.chapters[0].html


def test_duplicate_within_a_chapter() -> None:
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, "## X {#s}\n\n## Y {#s}\n")])
    ((error),) = diagnostics.errors
    assert error.location.line == 3 and "a.md:1" in error.message


def test_footnote_cross_references_are_filled() -> None:
    result, diagnostics = book(
        "en",
        [
            ("a", "A", Matter.BODY, "Text[^n].\n\n[^n]: See [](#b).\n"),
            ("b", "B", Matter.BODY, "Body.\n"),
        ],
    )
    assert not diagnostics.errors
    (note,) = result.chapters[0].footnotes
    assert xref_texts(note.html) == {"b": "Chapter 2"}


def test_a_link_with_text_to_no_id_is_a_warning_and_prints_its_text() -> None:
    """Books made with other tools link to anchors their plugins make; an empty [](#id) still
    prints nothing, so it stays an error."""
    result, diagnostics = book("ja", [("a", "A", Matter.BODY, "[この図](#nowhere)を見る。\n")])
    assert not diagnostics.errors
    ((warning),) = diagnostics.warnings
    assert '"#nowhere"' in warning.message and warning.location.line == 1
    assert "<a" not in result.chapters[0].html and "この図を見る。" in result.chapters[0].html
    _, diagnostics = book("ja", [("a", "A", Matter.BODY, "[](#nowhere)を見る。\n")])
    assert 'unknown id "#nowhere"' in diagnostics.errors[0].message


def test_a_chapter_kept_parsed_is_filled_in_again_only_when_what_its_fill_reads_changed(tmp_path: Path) -> None:
    """A process that resolves its book again with the chapters it kept parsed (report watch, a
    build the build server forks) takes a chapter's last fill when everything it read of the book
    answers the same: figure and section numbers, owners, ids, citations, files. Each resolve
    equals one from nothing."""
    config = Config(root=tmp_path, title="T", language="ja", chapters=(), identifier="urn:x", output="t")

    def parsed(cid: str, matter: Matter, markdown: str) -> ParsedChapter:
        source = SourceChapter(tmp_path / f"{cid}.md", cid, cid, matter, (), markdown, 1)
        return parse_chapter(source, tmp_path, Diagnostics())

    def resolved(chapters: tuple[ParsedChapter, ...]) -> Book:
        return resolve_book(config, chapters, Diagnostics())

    def from_nothing(chapters: tuple[ParsedChapter, ...]) -> Book:
        kept = dict(report.resolve._FILLED)
        report.resolve._FILLED.clear()
        try:
            return resolved(chapters)
        finally:
            report.resolve._FILLED.update(kept)

    preface = parsed("preface", Matter.FRONT, PREFACE + "\n[メモ](memo.txt)\n")
    ch2, appendix = parsed("ch2", Matter.BODY, CH2), parsed("appendix", Matter.BACK, APPENDIX)
    book = (preface, parsed("ch1", Matter.BODY, CH1), ch2, appendix)
    first = resolved(book)
    again = resolved(book)
    assert all(a is b for a, b in zip(first.chapters, again.chapters, strict=True))

    # A figure added before 図A: ch2's 図B becomes 図3 (and ch1's reference to it), the appendix's
    # 図C 図4; the preface, which refers to ch1 only, stays as it was filled.
    book = (preface, parsed("ch1", Matter.BODY, '![図0](assets/sample.png "図0"){#fig-0}\n\n' + CH1), ch2, appendix)
    edited = resolved(book)
    assert edited == from_nothing(book)
    assert "図3" in edited.chapters[2].html and "図3" in xref_texts(edited.chapters[1].html).values()
    assert "図4" in edited.chapters[3].html
    assert edited.chapters[0] is again.chapters[0]

    # A file the preface links to comes into being: it is a file of the report it links to.
    assert edited.chapters[0].linked_files == ()
    (tmp_path / "memo.txt").write_text("メモ", encoding="utf-8")
    with_file = resolved(book)
    assert with_file.chapters[0].linked_files == (tmp_path / "memo.txt",)
    assert with_file == from_nothing(book)


def test_a_chapter_filled_ahead_keeps_its_citations_where_they_were(tmp_path: Path) -> None:
    """Filled in ahead (report.build._head_start), an edited chapter's citations that stand where
    they stood take the text the last book printed there, even when the book printed the same
    citation otherwise elsewhere (a style's "ibid."): only a citation added or moved is looked
    up by what it cites, and one printed otherwise elsewhere gives no head start."""
    root = copy_fixture("ja-scholarly", tmp_path)
    book, _ = prepare(root)
    tables = report.resolve.last_book_tables(root.resolve())
    assert tables is not None
    chapter = next(parsed for parsed in tables.chapter_of_file.values() if parsed.id == "citations")
    tables.__dict__["citations_as_written"] = dict.fromkeys(tables.citations_as_written)  # all: None
    filled = report.resolve.fill_ahead(tables, chapter, chapter)
    assert filled == next(made for made in book.chapters if made.id == "citations")  # as the book filled it
    moved = replace(chapter, citations=chapter.citations[1:])  # each now where another stood
    assert report.resolve.fill_ahead(tables, moved, chapter) is None
