"""End to end, PDF: the CLI build of each project, checked with qpdf, poppler and pypdf."""

from __future__ import annotations

import re
import subprocess

import pdfplumber
import pypdf
import pytest
from conftest import BuiltProject
from helpers import BUNDLED_PDF_FAMILIES, epub_names, epub_read, pdffonts, pdftotext, squeeze

# What the fixtures' text must show once built: filled cross-reference labels, ruby bases,
# footnote texts, SVG labels (inline SVG text is real text), and the script that must be gone.
EXPECTED = {
    "ja-basic": {
        "labels": ["第1章", "第2章", "1.1節", "2.1節", "図1", "図2", "表1"],
        "text": [
            "露朝関係",
            "漢字の読み",
            "背景についての脚注本文。",
            "流れ図の脚注。",
            "入力段階",
            "出力段階",
            "残るスパン",
            "見本の画像",
            "測定の結果",
        ],
        "absent": ["悪意のあるスクリプト", "document.write", "[](#", "[^"],
        "warnings": ["chapters/01-intro.md:21: warning: raw HTML <script> is removed with its content"],
    },
    "en-basic": {
        "labels": ["Chapter 1", "Chapter 2", "Section 1.1", "Section 2.1", "Figure 1", "Figure 2", "Table 1"],
        "text": [
            "Footnote text about the background.",
            "Footnote on the flow chart",
            "Inline note text.",
            "Input stage",
            "a kept span",
            "The sample image",
            "Measured results",
        ],
        "absent": ["malicious script", "document.write", "[](#", "[^"],
        "warnings": ["chapters/01-intro.md:21: warning: raw HTML <script> is removed with its content"],
    },
    "cjk-mixed": {
        "labels": ["第1章", "第2章", "1.1", "2.1"],
        "text": [
            "한국어 문장입니다",
            "这是一个测试段落",
            "這是一個測試段落",
            "𠮷野家",
            "髙橋",
            "山﨑",
            "αβγδ",
            "Жизнь",
            "Москва",
            "café",
            "naïve",
            "Ångström",
            "Łódź",
            "Œuvre",
            "≒",
            "⦅引用⦆",
            "⅓",
            "대한민국의 수도는 서울입니다",
        ],
        "absent": [],
    },
    # Charts' axis labels are text; formulas are paths (tests/test_math.py), their numbers text.
    "ja-figures": {
        "labels": ["第1章", "第2章", "式1", "式2", "図1", "図2", "図3"],
        "text": ["(1)", "(2)", "派遣地域", "推定人数", "報道件数", "貿易額（百万ドル）"],
        "absent": ["[](#", "$$", "\\frac"],
    },
    "en-figures": {
        "labels": ["Chapter 1", "Chapter 2", "Equation 1", "Figure 1", "Figure 2", "Figure 3"],
        "text": ["(1)", "Region deployed", "Estimated troops", "Press reports", "Trade (million USD)"],
        "absent": ["[](#", "$$", "\\frac"],
    },
    "repository": {"labels": [], "text": [], "absent": ["[](#", "<script"]},
}


@pytest.fixture
def reader(built: BuiltProject) -> pypdf.PdfReader:
    return pypdf.PdfReader(built.pdf)


def test_cli_summary_names_the_files(built: BuiltProject) -> None:
    lines = built.run.stdout.strip().splitlines()
    assert len(lines) == 1, built.run.stdout
    summary = lines[0]
    assert summary.startswith("wrote ")
    assert f"{built.output_name}.pdf" in summary
    assert f"{built.output_name}.epub" in summary
    assert built.pdf.is_file() and built.epub.is_file()
    # Only the warnings the fixture asks for: the sanitiser names the script it drops.
    warnings = built.run.stderr.strip().splitlines()
    expected = EXPECTED[built.name].get("warnings", [])
    assert len(warnings) == len(expected), built.run.stderr
    assert all(line.endswith(f"/{built.name}/{tail}") for line, tail in zip(warnings, expected, strict=True))


def test_qpdf_check(built: BuiltProject) -> None:
    check = subprocess.run(["qpdf", "--check", str(built.pdf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_only_bundled_fonts_embedded_and_subset(built: BuiltProject) -> None:
    rows = pdffonts(built.pdf)
    assert rows, "no fonts in the PDF"
    for row in rows:
        assert row["family"] in BUNDLED_PDF_FAMILIES, row
        assert row["emb"] == "yes", row
        assert row["sub"] == "yes", row
        assert re.match(r"^[A-Z]{6}\+", row["name"]), row


def test_cjk_mixed_uses_the_latin_math_and_other_scripts_faces(all_built: dict[str, BuiltProject]) -> None:
    """Characters the CJK faces lack (Ł, ⅓, ≒, ⦅⦆) come from Noto Serif/Sans and Noto Sans Math;
    the Hebrew, Arabic and Devanagari a chapter quotes (in text, in bold, in code) from their
    own faces, with no warning of a glyph missing."""
    built = all_built["cjk-mixed"]
    families = {row["family"] for row in pdffonts(built.pdf)}
    assert {"Noto-Serif-CJK-JP", "Noto-Sans-CJK-JP", "Noto-Serif", "Noto-Sans-Math"} <= families
    assert {"Noto-Sans-Hebrew", "Noto-Sans-Arabic", "Noto-Sans-Devanagari"} <= families
    assert not [line for line in built.run.stderr.splitlines() if "font" in line or "glyph" in line]


def test_metadata_title_and_language(built: BuiltProject, reader: pypdf.PdfReader) -> None:
    assert reader.metadata is not None
    assert reader.metadata.title == built.config["title"]
    catalog = reader.trailer["/Root"]
    assert catalog.get("/Lang") == built.config["language"]
    if built.config.get("authors"):
        assert all(author in (reader.metadata.author or "") for author in built.config["authors"])


def _top_level_outline(reader: pypdf.PdfReader) -> list[tuple[str, int]]:
    return [
        (entry.title, reader.get_destination_page_number(entry))
        for entry in reader.outline
        if not isinstance(entry, list)
    ]


def test_outline_has_one_entry_per_chapter(built: BuiltProject, reader: pypdf.PdfReader) -> None:
    contents = {"ja": "目次", "en": "Contents"}[built.config["language"][:2]]
    entries = [(title, page) for title, page in _top_level_outline(reader) if title != contents]
    assert len(entries) == len(built.chapter_titles), entries
    for (title, page), expected in zip(entries, built.chapter_titles, strict=True):
        assert squeeze(title).endswith(squeeze(expected)), (title, expected)
        # The bookmark leads to the page where the chapter starts.
        assert squeeze(expected) in squeeze(reader.pages[page].extract_text()), (expected, page)


def test_outline_separates_chapter_label_and_title(all_built: dict[str, BuiltProject]) -> None:
    """Bookmarks read 'Chapter 1 Introduction', not 'Chapter 1Introduction'."""
    reader = pypdf.PdfReader(all_built["en-basic"].pdf)
    titles = [title for title, _ in _top_level_outline(reader)]
    assert "Chapter 1 Introduction" in titles, titles


def test_text_has_titles_labels_ruby_and_footnotes(built: BuiltProject) -> None:
    text = pdftotext(built.pdf)
    flat = squeeze(text)
    for title in built.chapter_titles:
        assert squeeze(title) in flat, title
    expected = EXPECTED[built.name]
    for label in expected["labels"]:
        assert squeeze(label) in flat, label
    for snippet in expected["text"]:
        assert squeeze(snippet) in flat, snippet
    for snippet in expected["absent"]:
        assert squeeze(snippet) not in flat, snippet


def _reading_text(pdf) -> str:  # type: ignore[no-untyped-def]
    """The text in reading order (pdfplumber keeps justified lines together), white space and
    line-end hyphens removed."""
    with pdfplumber.open(pdf) as document:
        text = "\n".join(page.extract_text() or "" for page in document.pages)
    return squeeze(re.sub(r"-\n", "", text))


def _in_order(text: str, *parts: str) -> bool:
    """``parts`` appear in ``text`` in this order, a few characters (a page reference such as
    '6ページの' or 'on page 6') allowed between them."""
    return re.search(".{0,16}?".join(re.escape(squeeze(part)) for part in parts), text) is not None


def test_cross_reference_labels_in_running_text(all_built: dict[str, BuiltProject]) -> None:
    """The empty links were filled where they stand, not only somewhere in the document."""
    ja = _reading_text(all_built["ja-basic"].pdf)
    for parts in (
        ("詳しい手法は", "第2章で述べる"),
        ("結果は", "表1にまとめ、見本の画像は", "図1、流れ図は", "図2に示す"),
        ("設計の詳細は", "2.1節を参照"),
        ("この章の位置づけは", "1.1節で述べた"),
        ("付録では", "第1章と", "表1を振り返る"),
        ("流れ図の脚注。", "第1章も参照"),
    ):
        assert _in_order(ja, *parts), parts
    en = _reading_text(all_built["en-basic"].pdf)
    for parts in (
        ("The method is described in", "Chapter 2."),
        ("summarised in", "Table 1", "; the sample image is", "Figure 1", "and the flow chart is", "Figure 2"),
        ("See", "Section 2.1", "for the design"),
        ("This chapter builds on", "Section 1.1."),
        ("The appendix looks back at", "Chapter 1", "and", "Table 1"),
    ):
        assert _in_order(en, *parts), parts


def _toc_pages(reader: pypdf.PdfReader, built: BuiltProject) -> range:
    outline = _top_level_outline(reader)
    contents = {"ja": "目次", "en": "Contents"}[built.config["language"][:2]]
    toc_page = next(page for title, page in outline if title == contents)
    first_chapter = min(page for title, page in outline if title != contents)
    return range(toc_page, first_chapter)


def _title_pattern(title: str) -> str:
    """``title`` in squeezed text, allowing a line break anywhere (long titles wrap)."""
    return r"\n?".join(re.escape(c) for c in squeeze(title))


def test_toc_page_numbers_are_the_folios(built: BuiltProject, reader: pypdf.PdfReader) -> None:
    """Each chapter is in the table of contents with a page number, and on that page (whose
    printed folio is that number) the chapter's title really stands."""
    pages = _toc_pages(reader, built)
    text = pdftotext(built.pdf, first=pages.start + 1, last=pages.stop)
    toc = "\n".join(squeeze(line) for line in text.splitlines() if line.strip())
    position = 0
    previous_number = 0
    for title in built.chapter_titles:
        match = re.compile(_title_pattern(title) + r"\.{3,}(\d+)$", re.MULTILINE).search(toc, position)
        assert match, f"{title!r} not in the table of contents:\n{toc}"
        position = match.end()
        number = int(match.group(1))
        assert number >= previous_number
        previous_number = number
        assert pages.stop < number <= len(reader.pages)
        page_text = pdftotext(built.pdf, first=number, last=number)
        assert squeeze(title) in squeeze(page_text), f"{title!r} is not on page {number}"
        folio = [line.strip() for line in page_text.splitlines() if line.strip()][-1]
        assert folio == str(number), f"page {number} prints folio {folio!r}"


def test_figures_are_in_the_pdf(all_built: dict[str, BuiltProject]) -> None:
    """The PNG figure is embedded as an image; the SVG figure is drawn as vectors with real text."""
    reader = pypdf.PdfReader(all_built["ja-basic"].pdf)
    images = [image for page in reader.pages for image in page.images]
    assert images, "the PNG figure is not in the PDF"


def test_numbered_headings_in_text(all_built: dict[str, BuiltProject]) -> None:
    ja = squeeze(pdftotext(all_built["ja-basic"].pdf))
    assert "1.1研究の背景" in ja
    assert "1.1.1細目の検討" in ja
    assert "2.1.1手順" in ja
    # Unnumbered: the .unnumbered section and back matter sections carry no number.
    assert "補足" in ja and "1.2補足" not in ja
    assert "用語の一覧" in ja and not re.search(r"\d\.\d用語の一覧", ja)


def test_cutoff_date_on_the_title_page_and_in_the_colophon(all_built: dict[str, BuiltProject]) -> None:
    """report.toml's cutoff-date (the briefing has one) is printed by the built-in title page and
    heads the colophon, with the other particulars, in the PDF and in the EPUB."""
    briefing = all_built["repository"]
    cutoff = briefing.config["cutoff-date"]
    line = f"情報基準日{cutoff.year}年{cutoff.month}月{cutoff.day}日"
    pages = [squeeze(page) for page in pdftotext(briefing.pdf).split("\f") if page.strip()]
    assert line in pages[1], pages[1]  # the title page, after the cover
    colophon = pages[-1]
    assert line in colophon and briefing.config["publisher"] in colophon and briefing.config["edition"] in colophon
    assert sum(line in page for page in pages) == 2
    documents = [name for name in epub_names(briefing.epub) if name.endswith(".xhtml")]
    assert [name for name in documents if line in squeeze(epub_read(briefing.epub, name).decode())] == [
        next(name for name in documents if "colophon" in name)
    ]
