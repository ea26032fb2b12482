"""Stage 2, parse: golden HTML for small inputs, and what each chapter defines.

Regenerate the golden files after an intended change with::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_parse.py

and review the diff of tests/golden/*.html before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import html as lxml_html

from report.errors import Diagnostics
from report.model import Matter, ParsedChapter, SourceChapter, TargetKind
from report.parse import parse_chapter

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(path.stem for path in GOLDEN.glob("*.md"))


def parse_text(
    markdown: str,
    *,
    root: Path = GOLDEN,
    name: str = "chapter.md",
    title: str | None = "章",
    chapter_id: str = "ch",
    matter: Matter = Matter.BODY,
) -> tuple[ParsedChapter, Diagnostics]:
    source = SourceChapter(
        path=root / name,
        id=chapter_id,
        title=title,
        matter=matter,
        classes=(),
        markdown=markdown,
        first_line=1,
    )
    diagnostics = Diagnostics()
    return parse_chapter(source, root, diagnostics), diagnostics


def golden_compare(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; with UPDATE_GOLDEN=1 (re)write it instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", CASES)
def test_golden_html(case: str) -> None:
    markdown = (GOLDEN / f"{case}.md").read_text(encoding="utf-8")
    chapter, diagnostics = parse_text(markdown, name=f"{case}.md", chapter_id=case)
    assert not diagnostics.errors, [str(d) for d in diagnostics.errors]
    notes = "".join(f"\n<!-- footnote {n.number} {n.id} -->\n{n.html}" for n in chapter.footnotes)
    golden_compare(f"{case}.html", chapter.html + notes + ("\n" if notes else ""))
    lxml_html.fragments_fromstring(chapter.html)  # parses


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 5
    for case in CASES:
        assert (GOLDEN / f"{case}.html").exists() or os.environ.get("UPDATE_GOLDEN") == "1", case


# --- what a chapter defines -----------------------------------------------------------------


def test_title_from_first_heading() -> None:
    chapter, diagnostics = parse_text("# 最初の *題*\n\n本文。\n", title=None)
    assert not diagnostics.errors
    assert chapter.title == "最初の 題"
    assert chapter.title_html == "最初の <em>題</em>"
    assert "<h1" not in chapter.html


def test_title_missing_is_an_error() -> None:
    chapter, diagnostics = parse_text("本文だけ。\n", title=None)
    ((error),) = diagnostics.errors
    assert error.location.line == 1 and "no title" in error.message
    assert chapter.title == "ch"


@pytest.mark.parametrize(
    ("markdown", "front_title", "warned"),
    [
        ("# 題 {#t}\n\n本文。\n", "題", False),  # front matter and # title agree
        ("\n# 題\n\n本文。\n", "別の題", True),  # the # title wins, with a warning on its line
        ("<!-- markdownlint-disable MD041 -->\n# 題\n\n本文。\n", None, False),
        ("<!-- a -->\n\n<!--\nb\n-->\n[ref]: https://example.org\n\n# 題\n\n本文。\n", None, False),
    ],
)
def test_title_after_what_prints_nothing(markdown: str, front_title: str | None, warned: bool) -> None:
    chapter, diagnostics = parse_text(markdown, title=front_title)
    assert not diagnostics.errors, diagnostics.errors
    assert chapter.title == "題" and "<h1" not in chapter.html and "本文" in chapter.html
    if warned:
        ((warning),) = diagnostics.warnings
        assert warning.location.line == 2 and '"別の題"' in warning.message and '"# 題"' in warning.message
    else:
        assert not diagnostics.warnings


def test_text_before_the_title_leaves_it_a_second_title() -> None:
    _, diagnostics = parse_text("本文。\n\n# 題\n", title=None)
    assert [error.location.line for error in diagnostics.errors] == [1, 3]  # no title; then a second one


def test_links_to_files_are_kept_for_the_resolve_stage() -> None:
    markdown = "[変数](../basic/variables/README.md#let) と [](intro.md) と [%E6%97%A5](%E6%97%A5%E6%9C%AC.md)\n"
    chapter, diagnostics = parse_text(markdown, name="part/chapter.md")
    assert not diagnostics.errors
    assert [(link.path, link.fragment, link.line) for link in chapter.links] == [
        (GOLDEN / "basic/variables/README.md", "let", 1),
        (GOLDEN / "part/intro.md", "", 1),
        (GOLDEN / "part/日本.md", "", 1),
    ]
    assert chapter.links[0].href == "../basic/variables/README.md#let"
    assert chapter.html.count('href="\ue000file-link') == 3
    assert 'class="xref"' in chapter.html  # an empty link is filled with the chapter's label


def test_a_link_to_a_sites_own_address_is_a_warning_and_prints_as_text() -> None:
    chapter, diagnostics = parse_text("段落。\n\n[参照](/reference/types#a)を見る。\n")
    assert not diagnostics.errors and not chapter.links
    ((warning),) = diagnostics.warnings
    assert warning.location.line == 3 and '"/reference/types#a"' in warning.message
    assert "href" not in chapter.html and "参照" in chapter.html


def test_headings_with_the_same_text_get_distinct_ids() -> None:
    chapter, diagnostics = parse_text("## Example\n\n### Example\n\n## Example\n")
    assert not diagnostics.errors
    ids = [heading.id for heading in chapter.headings]
    assert ids[0] == "ch-example" and len(set(ids)) == 3


def test_a_paragraph_added_leaves_the_ids_of_the_paragraphs_of_other_sections() -> None:
    """Paragraph ids are numbered within their section: a paragraph added or taken out renames
    only the later paragraphs of its own section (a page of a resumed layout keeps the ids its
    boxes were laid out with, so the pages after the section are taken from the last layout)."""
    sections = ["前置き。", "## 一\n\n一の一。\n\n一の二。", "## 二\n\n二の一。\n\n> 二の引用。\n\n二の二。"]

    def ids(markdown: str) -> dict[str, str]:
        chapter, diagnostics = parse_text(markdown)
        assert not diagnostics.errors
        return {p.text_content(): p.get("id") for p in lxml_html.fragment_fromstring(chapter.html, "div").iter("p")}

    before = ids("\n\n".join(sections))
    assert before == {
        "前置き。": "ch-p1",
        "一の一。": "ch-s1-p1",
        "一の二。": "ch-s1-p2",
        "二の一。": "ch-s2-p1",
        "二の引用。": "ch-s2-p2",
        "二の二。": "ch-s2-p3",
    }
    after = ids("\n\n".join([sections[0], "## 一\n\n足した段落。\n\n一の一。\n\n一の二。", sections[2]]))
    assert after == {
        **before,  # the preamble's and the second section's as they were
        "足した段落。": "ch-s1-p1",
        "一の一。": "ch-s1-p2",
        "一の二。": "ch-s1-p3",
    }


def test_web_links_are_neither_files_nor_cross_references() -> None:
    chapter, diagnostics = parse_text("[web](https://example.org/a#b) [](mailto:a@example.org)\n")
    assert not diagnostics.errors and not chapter.links and not chapter.references
    assert '<a href="https://example.org/a#b">web</a>' in chapter.html


@pytest.mark.parametrize("href", ["http:golang.org/doc/effective_go.html", "ftp://example.org/a", "https:///a"])
def test_a_link_that_is_no_web_address_prints_its_text_with_a_warning(href: str) -> None:
    """rust-lang-ja/book-ja links to "http:golang.org/…": EPUBCheck rejects such an address."""
    chapter, diagnostics = parse_text(f"一行目。\n\n[Go]({href})の標語。\n")
    ((warning),) = diagnostics.warnings
    assert warning.location.line == 3 and href in warning.message and not diagnostics.errors
    assert "<a>Go</a>の標語" in chapter.html


def test_second_h1_is_an_error_with_its_line() -> None:
    _, diagnostics = parse_text("# 題\n\n本文。\n\n# 二つ目\n", title=None)
    ((error),) = diagnostics.errors
    assert error.location.line == 5


def test_targets_and_headings() -> None:
    chapter, diagnostics = parse_text((GOLDEN / "figures-tables.md").read_text(encoding="utf-8"), chapter_id="ft")
    assert not diagnostics.errors
    kinds = [(t.id, t.kind, t.text) for t in chapter.targets]
    assert kinds == [
        ("ft", TargetKind.CHAPTER, "章"),
        ("fig-sample", TargetKind.FIGURE, "見本の図"),
        ("ft-fig2", TargetKind.FIGURE, "ラベル付きの図"),
        ("tbl-result", TargetKind.TABLE, "結果の表"),
    ]
    assert [path.name for path in chapter.images] == ["sample.png", "label.svg", "sample.png"]
    assert len(chapter.svgs) == 1 and "ラベル" in chapter.svgs[0]


def test_heading_ids_levels_and_numbering_flags() -> None:
    chapter, _ = parse_text((GOLDEN / "blocks.md").read_text(encoding="utf-8"), chapter_id="bl")
    assert [(h.id, h.level, h.numbered) for h in chapter.headings] == [
        ("sec-one", 2, True),
        ("bl-s2", 3, True),
        ("bl-fourth-level-heading", 4, False),
        ("bl-s4", 2, False),
    ]
    back, _ = parse_text("## 付録の節\n", matter=Matter.BACK)
    assert [h.numbered for h in back.headings] == [False]


def test_line_numbers_of_targets_and_references() -> None:
    text = "段落。\n\n## 節 {#s}\n\n[](#s)\nと[](#t)\n\n![図](assets/sample.png){#f}\n"
    chapter, _ = parse_text(text)
    lines = {t.id: t.line for t in chapter.targets}
    assert lines["s"] == 3 and lines["f"] == 8
    assert [(r.target, r.line) for r in chapter.references] == [("s", 5), ("t", 6)]


def test_first_line_offsets_messages() -> None:
    source = SourceChapter(GOLDEN / "x.md", "x", "T", Matter.BODY, (), "本文。\n\n![](assets/none.png)\n", 10)
    diagnostics = Diagnostics()
    parse_chapter(source, GOLDEN, diagnostics)
    ((error),) = diagnostics.errors
    assert error.location.line == 12


@pytest.mark.parametrize(
    ("markdown", "words"),
    [
        ("![x](assets/none.png)\n", ["does not exist"]),
        ("![x](https://example.com/a.png)\n", ["remote"]),
        ("![x](/etc/hostname)\n", ["absolute"]),
        ("![x](../../../../../etc/hostname)\n", ["outside the report folder"]),
        ("![x](blocks.md)\n", ["unsupported format"]),
        ("text[^nope]\n", ['"[^nope]"', "not defined"]),
        ("## 節 {#1bad}\n", ['id "1bad"']),
        ("{漢字|か|ん|じ}\n", ["3 readings for 2 characters"]),
    ],
)
def test_parse_errors(markdown: str, words: list[str]) -> None:
    _, diagnostics = parse_text(markdown)
    ((error),) = diagnostics.errors
    assert error.location.line == 1
    for word in words:
        assert word in error.message


@pytest.mark.parametrize("markdown", ["注記 \\[^x] の書き方\n", "注記 [\\^x] の書き方\n", "注記 \\[^x\\] の書き方\n"])
def test_an_escaped_footnote_reference_is_text(markdown: str) -> None:
    """An author who escapes a bracket or the caret means the characters themselves."""
    parsed, diagnostics = parse_text(markdown)
    assert not diagnostics.errors
    assert "注記 [^x] の書き方" in parsed.html


def test_an_undefined_footnote_is_reported_on_its_own_line() -> None:
    _, diagnostics = parse_text("一行目の文。\n二行目の文[^nope]。\n")
    ((error),) = diagnostics.errors
    assert error.location.line == 2 and '"[^nope]"' in error.message


def test_script_never_survives() -> None:
    chapter, _ = parse_text("<script>alert(1)</script>\n\n段落<script>x()</script>。\n\n<SCRIPT>y()</SCRIPT>\n")
    assert "script" not in chapter.html.lower()
    assert "alert" not in chapter.html and "x()" not in chapter.html


def test_raw_html_cannot_fake_internal_slots() -> None:
    """An author's <span class="slot"> or "svg-slot" must not be taken for the parser's own placeholders."""
    chapter, _ = parse_text('<span class="svg-slot" title="7"></span><span class="slot" title="ch"></span>\n')
    assert 'class="svg-slot"' not in chapter.html
    assert 'class="slot"' not in chapter.html


def test_same_svg_twice_has_distinct_ids(tmp_path: Path) -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow"><path d="M0 0"/></marker></defs>'
        '<path d="M0 0" marker-end="url(#arrow)"/></svg>'
    )
    (tmp_path / "f.svg").write_text(svg, encoding="utf-8")
    chapter, diagnostics = parse_text("![a](f.svg)\n\n![b](f.svg)\n", root=tmp_path)
    assert not diagnostics.errors
    first, second = chapter.svgs
    assert 'id="ch-svg1-arrow"' in first and "url(#ch-svg1-arrow)" in first
    assert 'id="ch-svg2-arrow"' in second and "url(#ch-svg2-arrow)" in second


def test_characters_xml_forbids_are_dropped() -> None:
    """Typed or as entities, C0 controls would make the EPUB's XHTML malformed (they crashed the build)."""
    markdown = "# 題\x07名&#7;\n\n本文\x1b&#x1b;です。\n\n<!-- c -->&#x1b;\x0b\n\n`\x07`\n"
    chapter, diagnostics = parse_text(markdown, title=None)
    assert not diagnostics.errors
    assert chapter.title.replace("\ufffd", "") == "題名"  # markdown-it makes &#7; a U+FFFD
    for fragment in (chapter.html, chapter.title_html):
        assert not any(ord(c) < 0x20 and c not in "\t\n\r" for c in fragment), repr(fragment)
    assert "本文" in chapter.html and "です。" in chapter.html


def test_inline_footnote() -> None:
    """Pandoc's inline note ^[…] (the footnote plugin parses it) used to crash the build (KeyError 'subId')."""
    chapter, diagnostics = parse_text("本文^[インラインの**注**]と[^a]。\n\n[^a]: 普通の注。\n")
    assert not diagnostics.errors
    assert [(n.number, n.html) for n in chapter.footnotes] == [
        (1, "インラインの<strong>注</strong>"),
        (2, "普通の注。"),
    ]
    assert chapter.html.count('role="doc-noteref"') == 2


def test_a_percent_encoded_reference_is_read_decoded() -> None:
    """mdBook books link to a Japanese heading with its id percent-encoded."""
    for written in ("#%E3%81%BE%E3%81%A8%E3%82%81", "#まとめ"):
        parsed, _ = parse_text(f"[節]({written})\n")
        assert [r.target for r in parsed.references] == ["まとめ"]
        assert 'href="#まとめ"' in parsed.html


def test_headings_skip_no_level() -> None:
    """Written for looks (``####`` under the title), a heading takes the level below the one before it."""
    chapter, _ = parse_text("## A\n\n#### B\n\n###### C\n\n## D\n\n#### E\n")
    assert [(h.text, h.level) for h in chapter.headings] == [("A", 2), ("B", 3), ("C", 4), ("D", 2), ("E", 3)]
    assert "<h3" in chapter.html and "<h6" not in chapter.html and "</h4>" in chapter.html
