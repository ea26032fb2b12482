"""Japanese text as an author writes it: line breaks inside a sentence, Japanese–Latin spacing
by style, raw HTML that keeps the report's own images and names what it drops, symbols and
emoji, and tables kept together across a page break (the ja-text fixture, built end to end)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pikepdf
import pytest
from conftest import BuiltProject
from helpers import epub_names, epub_read, pdffonts, pdftotext
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree
from test_parse import parse_text

from report.assemble import space_latin_words

# The characters of the property below, by how CSS Text 3 treats a line break beside them.
WIDE = "あアカ漢字。、「」（）ＡＢ１ｱｶﾞ👋"  # East Asian Wide, Fullwidth or Halfwidth, not Hangul
NARROW = "abcXYZ0129éΩ"
HANGUL = "한글가ㄱ"
ZERO_WIDTH_SPACE = "\u200b"


def paragraph(markdown: str) -> str:
    chapter, diagnostics = parse_text(markdown)
    assert not diagnostics.errors, [str(d) for d in diagnostics.errors]
    match = re.fullmatch(r'<p id="ch-p1">(.*)</p>\n', chapter.html, re.DOTALL)
    assert match, chapter.html
    return match.group(1)


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("一行目です。\n二行目です。", "一行目です。二行目です。"),
        ("「引用」\n（注記）", "「引用」（注記）"),
        ("English\nwords", "English\nwords"),
        ("日本語\nEnglish", "日本語\nEnglish"),
        ("G7\n首脳", "G7\n首脳"),
        ("한국어\n문장", "한국어\n문장"),
        ("**強調**\n[続き](#x)", '<strong>強調</strong><a href="#x">続き</a>'),
        ("注を付ける[^1]\n次の文。\n\n[^1]: 注。", None),
        ("ﾊﾝｶｸ\nｶﾅ", "ﾊﾝｶｸｶﾅ"),
        ("end\u200b\nnext", "end\u200bnext"),
        ("二つの空白で  \n改行", "二つの空白で<br>\n改行"),
    ],
)
def test_a_line_break_between_east_asian_characters_is_removed(markdown: str, html: str | None) -> None:
    body = paragraph(markdown)
    if html is None:
        assert "\n" not in body and body.endswith("次の文。"), body
    else:
        assert body == html


def test_footnotes_and_titles_join_their_lines_too() -> None:
    chapter, _ = parse_text("本文[^1]。\n\n[^1]: 注の一行目\n  注の二行目。\n")
    assert chapter.footnotes[0].html == "注の一行目注の二行目。"


line_text = st.text(st.sampled_from(WIDE + NARROW + HANGUL + ZERO_WIDTH_SPACE), min_size=1, max_size=6)


@given(first=line_text, second=line_text)
@example(first="カ。", second="漢")
@example(first="한", second="글")
@example(first="漢", second="a")
def test_line_break_rule(first: str, second: str) -> None:
    """A line break disappears exactly when both characters beside it are East Asian wide and
    not Hangul, or one of them is a zero-width space; otherwise it stays (a space in print)."""
    before, after = first[-1], second[0]
    removed = ZERO_WIDTH_SPACE in (before, after) or (
        before in WIDE and after in WIDE and before not in HANGUL and after not in HANGUL
    )
    body = paragraph(f"{first}\n{second}")
    assert body == (first + second if removed else f"{first}\n{second}")


def test_japanese_latin_spacing_is_markup_not_characters() -> None:
    spaced = space_latin_words("watch中はMSMTとG7の2024年")
    assert re.sub(r"<[^>]+>", "", spaced) == "watch中はMSMTとG7の2024年"
    assert spaced == (
        '<span class="aki-after">watch</span>中は<span class="aki-before aki-after">MSMT</span>と'
        '<span class="aki-before aki-after">G7</span>の2024年'
    )
    assert space_latin_words("plain English text") == "plain English text"


def test_raw_images_of_the_report_are_kept_and_what_is_dropped_is_named() -> None:
    markdown = (
        'はじめに<img src="assets/sample.png" alt="生" width="80">。\n\n'
        "<script>alert(1)</script>\n\n"
        '<b onclick="x">太字</b>と<a href="../secret.txt">リンク</a>。\n\n'
        '<img src="/etc/hostname" alt="外">\n'
        '<img src="assets/missing.png">\n\n'
        '<table><tr><td style="text-align: right; color: red">セル</td></tr></table>\n'
    )
    chapter, diagnostics = parse_text(markdown)
    assert not diagnostics.errors
    assert '<img width="80" src="assets/sample.png" alt="生">' in chapter.html
    assert "hostname" not in chapter.html and "missing" not in chapter.html
    warnings = {(d.location.line, d.message) for d in diagnostics.warnings}
    assert warnings == {
        (3, "raw HTML <script> is removed with its content"),
        (5, 'attribute "onclick" of raw HTML <b> is removed'),
        (5, 'link "../secret.txt" of raw HTML <a> is removed: link to an id (#id) or a web address'),
        (
            7,
            'raw HTML <img> is removed: image "/etc/hostname" is an absolute path; write it relative to the chapter file',
        ),
        (8, 'raw HTML <img> is removed: image "assets/missing.png" does not exist'),
        (10, 'style "text-align: right; color: red" of raw HTML <td> keeps only text-align'),
    }
    assert all(d.location.path.name == "chapter.md" for d in diagnostics.warnings)


# --- the ja-text fixture, built ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ja_text(build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    project = build_project("ja-text")
    assert project.run.returncode == 0, project.run.stderr
    assert "warning" not in project.run.stderr
    return project


def pages(pdf_text: str) -> list[str]:
    return pdf_text.split("\f")


def epub_chapter_text(project: BuiltProject, chapter_id: str) -> str:
    document = etree.fromstring(epub_read(project.epub, f"EPUB/{chapter_id}.xhtml"))
    return "".join(document.itertext())


def test_sentences_written_one_per_line_print_without_spaces(ja_text: BuiltProject) -> None:
    text = pdftotext(ja_text.pdf, layout=False)
    japanese = "本書の原稿は一文ごとに改行して書かれている。改行は文の区切りであって、空白ではない。印刷でも"
    assert japanese in text.replace("\n", ""), text
    assert "同じである。（括弧の行）も、全角の句読点、も。" in text.replace("\n", "")
    spaced = re.sub(r"\s+", " ", text)
    assert "English sentences written one per line keep their spaces." in spaced
    assert "한국어 문장은 띄어쓰기를 유지한다." in spaced
    epub = epub_chapter_text(ja_text, "prose")
    assert japanese in epub and re.search(r"English sentences\swritten", epub), epub


def test_japanese_latin_spacing_leaves_the_text_as_written(ja_text: BuiltProject) -> None:
    epub = epub_chapter_text(ja_text, "prose")
    assert "使えばwatch中の変更" in epub and "MSMTとG7は" in epub
    pdf = pdftotext(ja_text.pdf, layout=False)
    assert "\u2005" not in pdf and "\u2005" not in epub
    # poppler reads any gap wider than a tenth of an em as a word break: the quarter-em gaps
    # beside "watch" and "G7", and inline code's padding, are read as no space (see
    # test_the_gap_is_drawn_in_the_words_run).
    assert "report watchを使えばwatch中の変更" in pdf and "とG7は" in pdf, pdf


def word_runs(pdf_path: Path, word: str) -> list[list[tuple[float, float, float]]]:
    """For each marked-content sequence whose /ActualText is ``word``: each text object in it,
    as its x, its horizontal scale and its font size."""
    runs = []
    with pikepdf.open(pdf_path) as pdf:
        for page in pdf.pages:
            run: list[tuple[float, float, float]] | None = None
            size = 0.0
            for operands, operator in pikepdf.parse_content_stream(page):
                name = str(operator)
                if name == "BDC" and isinstance(operands[1], pikepdf.Dictionary):
                    if str(operands[1].get("/ActualText", "")) == word:
                        run = []
                elif name == "EMC" and run is not None:
                    runs.append(run)
                    run = None
                elif name == "Tf":
                    size = float(operands[1])
                elif name == "Tm" and run is not None:
                    run.append((float(operands[4]), float(operands[0]), size))
    return runs


def test_the_gap_is_drawn_in_the_words_run(ja_text: BuiltProject) -> None:
    """The word's marked content begins with a space scaled to the quarter-em gap, before its
    glyphs (the gap is seen, and read as part of the word), and ends with another after them
    (「使えばwatch中」: a gap on both sides)."""
    (run,) = word_runs(ja_text.pdf, "watch")
    (before_x, before_scale, size), (word_x, word_scale, _), (after_x, after_scale, _) = run
    assert word_scale == 1 and before_scale < 1 and after_scale < 1
    assert word_x - before_x == pytest.approx(0.25 * size, rel=0.01)
    assert after_x > word_x
    (msmt,) = word_runs(ja_text.pdf, "MSMT")  # at a line's start: a gap after it only
    assert [scale < 1 for _, scale, _ in msmt] == [False, True]
    # Text extraction that ignores /ActualText (pdfminer's) reads a space in each gap, as it did.
    with pdfplumber.open(ja_text.pdf) as pdf:
        glyphs = "".join(char["text"] for page in pdf.pages for char in page.chars)
    assert "使えば watch 中の変更" in glyphs, glyphs


def test_symbols_and_emoji_are_drawn_with_the_bundled_faces(ja_text: BuiltProject) -> None:
    text = pdftotext(ja_text.pdf, layout=False)
    assert "完了✔、失敗✖、挨拶👋、矢印→と➡。" in text
    families = {row["family"] for row in pdffonts(ja_text.pdf)}
    assert {"Noto-Emoji", "Noto-Sans-Symbols2"} <= families
    fonts = {
        name.rsplit("/", 1)[-1]: len(epub_read(ja_text.epub, name))
        for name in epub_names(ja_text.epub)
        if "/fonts/" in name
    }
    assert fonts["NotoEmoji-Regular.ttf"] < 10_000 and fonts["NotoSansSymbols2-Regular.ttf"] < 10_000, fonts
    assert "NotoSansSymbols-Regular.ttf" not in fonts  # nothing of the report is set in it


def test_tables_keep_header_and_rows_together(ja_text: BuiltProject) -> None:
    """The fixture's spacers put each table at the foot of a page (where it would split)."""
    text = pages(pdftotext(ja_text.pdf, layout=False))
    (short,) = [page for page in text if "短表一" in page]
    assert all(f"短表{n}" in short for n in "一二三四") and "四行の表は分かれない" in short
    (first,) = [page for page in text if "長表一" in page]
    assert "項目" in first and "長表二" in first and "長い表は見出しと二行以上を保つ" in first
    last = next(page for page in text if "長表十" in page)
    assert "長表九" in last


def test_a_raw_image_of_the_report_is_kept(ja_text: BuiltProject) -> None:
    xhtml = epub_read(ja_text.epub, "EPUB/prose.xhtml").decode()
    assert re.search(r'<img width="24" src="assets/sample.png" alt="見本の画像"\s*/>', xhtml), xhtml
    images = subprocess.run(["pdfimages", "-list", str(ja_text.pdf)], capture_output=True, text=True, check=True)
    assert len(images.stdout.splitlines()) > 2  # a header of two lines, then the image


def test_ja_text_epub_passes_epubcheck(ja_text: BuiltProject) -> None:
    assert ja_text.epubcheck is not None
    problems = [m for m in ja_text.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert problems == [], problems
