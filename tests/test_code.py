"""Code: the monospace face, highlighted blocks in a box, numbered listings and their
cross-references, code included from files of the report, long lines wrapped, never cut off."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pikepdf
import pytest
from conftest import BuiltProject
from helpers import (
    BUNDLED_PDF_FAMILIES,
    FIXTURES,
    copy_fixture,
    diagnostics_of,
    epub_names,
    epub_read,
    pdffonts,
    run_report,
    squeeze,
)
from hypothesis import given
from hypothesis import strategies as st
from test_resolve import book

from report.cache import Cache
from report.code import (
    BACKGROUND,
    TOKEN_STYLES,
    CodeError,
    bold_classes,
    highlight,
    highlight_css,
    line_range,
    read_fence,
    styled_classes,
)
from report.errors import Diagnostics
from report.fonts import code_text, print_characters
from report.model import Matter, SourceChapter
from report.parse import parse_chapter

PACKAGE = Path(__file__).resolve().parent.parent / "report"
MONO = "Noto-Sans-Mono-CJK-JP"


# --- fence attributes, ranges, highlighting -------------------------------------------------


@pytest.mark.parametrize(
    ("info", "block", "language", "listing_id", "caption"),
    [
        ('python {#lst-setup caption="設定を読む"}', {}, "python", "lst-setup", "設定を読む"),
        ('{.python #lst-x caption="Pandoc form"}', {}, "python", "lst-x", "Pandoc form"),
        ("sh", {}, "sh", None, None),
        ("", {}, "", None, None),
        ("rust", {"id": "lst-before", "caption": "the line before"}, "rust", "lst-before", "the line before"),
    ],
)
def test_fence_attributes(info: str, block: dict, language: str, listing_id: str | None, caption: str | None) -> None:
    fence = read_fence(info, block)
    assert (fence.language, fence.id, fence.caption) == (language, listing_id, caption)


@pytest.mark.parametrize("info", ['python {#x caption="unclosed}', "python {#x} trailing"])
def test_unreadable_fence_attributes_are_errors(info: str) -> None:
    with pytest.raises(CodeError):
        read_fence(info, {})


@pytest.mark.parametrize(
    ("spec", "expected"), [("10-20", (10, 20)), ("7", (7, 7)), ("-3", (1, 3)), ("4-", (4, None)), (" 2 - 5 ", (2, 5))]
)
def test_line_ranges(spec: str, expected: tuple[int, int | None]) -> None:
    assert line_range(spec) == expected


@pytest.mark.parametrize("spec", ["", "-", "a-b", "5-2", "0-3", "1-2-3"])
def test_bad_line_ranges(spec: str) -> None:
    with pytest.raises(CodeError):
        line_range(spec)


def _text_of(line_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", line_html))


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=30), min_size=1, max_size=6), st.sampled_from(["python", "javascript", "sh", "", "no-such-language"]))  # fmt: skip
def test_highlighting_keeps_every_character_of_every_line(lines: list[str], language: str) -> None:
    """Whatever the code and language, the highlighted HTML holds the code as written, line for line."""
    highlighted = highlight("\n".join(lines) + "\n", language)
    assert [_text_of(line) for line in highlighted] == lines


def test_a_known_language_is_highlighted_and_an_unknown_one_is_escaped() -> None:
    assert highlight('def f():\n    return "<x>"\n', "python")[0].startswith('<span class="k">def</span>')
    assert highlight("<b>\n", "no-such-language") == ["&lt;b&gt;"]


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_highlight_colours_pass_wcag_aa_on_the_code_box() -> None:
    """Every colour the highlighting uses has a contrast of 4.5:1 or more on the box: WCAG AA,
    and, since the contrast is one of luminance, the same greys in grey print."""
    colours = set(re.findall(r"color: (#[0-9a-f]{6})", highlight_css()))
    assert len(colours) >= 6
    for colour in colours:
        assert _contrast(colour, BACKGROUND) >= 4.5, colour
    # The stylesheets draw the box in that colour.
    print_css = (PACKAGE / "styles" / "print.css").read_text(encoding="utf-8")
    epub_css = (PACKAGE / "styles" / "epub.css").read_text(encoding="utf-8")
    assert f"--code-background: {BACKGROUND};" in print_css
    assert re.search(rf"pre\.code \{{[^}}]*background-color: {BACKGROUND};", epub_css)


def test_highlight_css_follows_the_token_hierarchy() -> None:
    css = highlight_css()
    keyword = TOKEN_STYLES["Keyword"].split()[-1]
    assert f"pre.code .kd {{ color: {keyword}; font-weight: bold; }}" in css  # Keyword.Declaration inherits
    assert "pre.code .w " not in css  # white space is not styled
    assert {"k", "kd", "kn"} <= bold_classes() and "s2" not in bold_classes()


# --- parse and resolve ------------------------------------------------------------------------


def parse_in(root: Path, markdown: str, name: str = "chapters/ch.md") -> tuple[str, Diagnostics, list[Path]]:
    source = SourceChapter(root / name, "ch", "章", Matter.BODY, (), markdown, 1)
    diagnostics = Diagnostics()
    parsed = parse_chapter(source, root, diagnostics)
    return parsed.html, diagnostics, list(parsed.includes)


@pytest.mark.parametrize("info", ["rust", "rust,ignore", "rust,no_run"])
def test_rust_blocks_hide_rustdocs_hidden_lines_as_mdbook_does(tmp_path: Path, info: str) -> None:
    code = "# fn main() {\n#\n    let x = 1;\n    ## not hidden\n#[derive(Debug)]\n#![allow(unused)]\n# }"
    body, diagnostics, _ = parse_in(tmp_path, f"```{info}\n{code}\n```\n")
    assert not diagnostics.errors
    shown = [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', body)]
    assert shown == ["    let x = 1;", "    # not hidden", "#[derive(Debug)]", "#![allow(unused)]"]
    assert 'class="language-rust"' in body and '<span class="kd">let</span>' in body  # Rust, highlighted


def test_other_blocks_keep_lines_that_start_with_a_hash(tmp_path: Path) -> None:
    body, _, _ = parse_in(tmp_path, "```python\n# a comment\nx = 1\n```\n")
    assert [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', body)] == [
        "# a comment",
        "x = 1",
    ]


def test_listing_markup_and_target() -> None:
    chapter, diagnostics = book("ja", [("ch", "章", Matter.BODY, '```python {#lst-a caption="設定"}\nx = 1\n```\n')])
    assert not diagnostics.errors
    body = chapter.chapters[0].html
    assert '<figure id="lst-a" class="listing"><figcaption><span class="label">リスト1</span> 設定</figcaption>' in body
    assert '<pre class="code"><code class="language-python"><span class="line">' in body


LISTINGS = [
    ("a", "一", Matter.BODY, '[](#lst-c)と[](#lst-b)\n\n```python {#lst-a caption="A"}\na\n```\n\n```{.sh #lst-b}\nb\n```\n'),
    ("b", "二", Matter.BODY, '```text {caption="no id"}\nc\n```\n\n```\nnot numbered\n```\n\n```js {#lst-c caption="C"}\nd\n```\n'),
]  # fmt: skip


@pytest.mark.parametrize(("language", "prefix"), [("ja", "リスト"), ("en", "Listing ")])
def test_listings_are_numbered_across_the_book_and_cross_referenced(language: str, prefix: str) -> None:
    result, diagnostics = book(language, LISTINGS)
    assert not diagnostics.errors
    labels = {key: label.reference for key, label in result.labels.items() if key.startswith(("lst", "b-lst"))}
    assert labels == {"lst-a": f"{prefix}1", "lst-b": f"{prefix}2", "b-lst1": f"{prefix}3", "lst-c": f"{prefix}4"}
    first = result.chapters[0].html
    # lst-c is in the other chapter: print adds its page (xref-far), as for figures and tables.
    assert f'<a href="#lst-c" class="xref xref-far">{prefix}4</a>' in first
    assert f'<a href="#lst-b" class="xref">{prefix}2</a>' in first
    second = result.chapters[1].html
    assert second.count("<figure") == 2 and "not numbered" in second


def test_a_listing_id_must_be_an_id_and_unique() -> None:
    _, diagnostics = book(
        "ja", [("ch", "章", Matter.BODY, "```python {#1bad}\nx\n```\n\n```sh {#dup}\n```\n\n```sh {#dup}\n```\n")]
    )
    messages = [d.message for d in diagnostics.errors]
    assert any('id "1bad" must start with a letter' in m for m in messages)
    assert any('id "dup" is already defined' in m for m in messages)


@pytest.fixture
def report_with_code(tmp_path: Path) -> Path:
    root = tmp_path / "report"
    (root / "chapters").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "tool.py").write_text("".join(f"line{n} = {n}\n" for n in range(1, 11)), encoding="utf-8")
    (tmp_path / "secret.py").write_text("password = 1\n", encoding="utf-8")
    (root / "src" / "latin1.py").write_bytes("café = 1\n".encode("latin-1"))
    (root / "src" / "slot.py").write_text("x = '\ue000slot\ue001x\ue002'\n", encoding="utf-8")
    anchored = ["line1 = 1", "# ANCHOR: all", "# ANCHOR: setup", "line2 = 2", "line3 = 3", "# ANCHOR_END: setup"]
    anchored += ["line4 = 4", "# ANCHOR: rest", "line5 = 5", "# ANCHOR_END: all", "line6 = 6"]
    (root / "src" / "anchored.py").write_text("\n".join(anchored) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("block", "lines"),
    [
        ("```python\n{{#include ../src/tool.py}}\n```", list(range(1, 11))),
        ("```python\n{{#include ../src/tool.py:3}}\n```", [3]),
        ("```python\n{{#include ../src/tool.py:3:5}}\n```", [3, 4, 5]),
        ("```python\n{{#include ../src/tool.py::2}}\n```", [1, 2]),
        ("```python\n{{#include ../src/tool.py:9:}}\n```", [9, 10]),
        ('```python {include="../src/tool.py" lines="4-6"}\n```', [4, 5, 6]),
        ('```{.python include="../src/tool.py" lines="8-"}\n```', [8, 9, 10]),
        ('```{include="../src/tool.py" lines="2"}\n```', [2]),  # the language from the file name
    ],
)
def test_include_with_line_ranges(report_with_code: Path, block: str, lines: list[int]) -> None:
    body, diagnostics, includes = parse_in(report_with_code, f"前文。\n\n{block}\n")
    assert not diagnostics.errors, diagnostics.errors
    shown = [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', body)]
    assert shown == [f"line{n} = {n}" for n in lines]
    assert (
        '<span class="mi">' in body and '<span class="n">' not in body
    )  # highlighted as Python, names in the text's colour
    assert includes == [report_with_code / "src" / "tool.py"]


@pytest.mark.parametrize(
    ("block", "lines"),
    [
        ("```python\n{{#include ../src/anchored.py:setup}}\n```", [2, 3]),
        # the lines that mark other anchors are left out; an anchor with no end runs to the end
        ("```python\n{{#include ../src/anchored.py:all}}\n```", [2, 3, 4, 5]),
        ("```python\n{{#rustdoc_include ../src/anchored.py:rest}}\n```", [5, 6]),
        ("```python\n{{#rustdoc_include ../src/anchored.py:4:5}}\n```", [2, 3]),  # lines as they are
    ],
)
def test_include_an_mdbook_anchor(report_with_code: Path, block: str, lines: list[int]) -> None:
    body, diagnostics, includes = parse_in(report_with_code, f"前文。\n\n{block}\n")
    assert not diagnostics.errors, diagnostics.errors
    shown = [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', body)]
    assert shown == [f"line{n} = {n}" for n in lines]
    assert includes == [report_with_code / "src" / "anchored.py"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("```python\n{{#include ../src/missing.py}}\n```", 'included file "../src/missing.py" does not exist'),
        ('```python {include="../../secret.py"}\n```', 'included file "../../secret.py" is outside the report folder'),
        ('```python {include="/etc/passwd"}\n```', 'included file "/etc/passwd" is an absolute path'),
        ("```python\n{{#include ../src/tool.py:20:30}}\n```", 'included file "../src/tool.py" has 10 lines'),
        ('```python {include="../src/tool.py" lines="b"}\n```', 'lines="b" is not a line range'),
        ('```python {lines="1-2"}\nx\n```', 'lines="1-2" needs include="path"'),
        ('```python {include="../src/tool.py"}\nx\n```', "and code of its own"),
        ("```rust\n{{#include ../src/tool.py:main}}\n```", 'included file "../src/tool.py" has no anchor "main"'),
        ("```rust\n{{#include ../src/tool.py:a b}}\n```", "is not an include this builder reads"),
        ('```python {include="../src/latin1.py"}\n```', 'included file "../src/latin1.py" is not valid UTF-8'),
        ('```python {include="../src/slot.py"}\n```', "uses the reserved character U+E000"),
    ],
)
def test_include_errors_name_the_chapter_line(report_with_code: Path, block: str, message: str) -> None:
    body, diagnostics, _ = parse_in(report_with_code, f"前文。\n\n{block}\n")
    errors = [(d.location.path, d.location.line, d.message) for d in diagnostics.errors]
    assert len(errors) == 1, errors
    path, line, text = errors[0]
    assert path == report_with_code / "chapters" / "ch.md" and line == 3 and message in text, errors[0]
    assert "password" not in body


@given(st.integers(1, 12), st.integers(0, 12))
def test_a_line_range_includes_those_lines(start: int, length: int) -> None:
    root = FIXTURES / "code"
    lines = (root / "src" / "settings.py").read_text(encoding="utf-8").splitlines()
    end = start + length
    body, diagnostics, _ = parse_in(root, f'```{{include="../src/settings.py" lines="{start}-{end}"}}\n```\n')
    assert not diagnostics.errors
    assert [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', body)] == lines[start - 1 : end]


def test_a_changed_included_file_is_parsed_again(report_with_code: Path) -> None:
    from report.build import prepare

    (report_with_code / "report.toml").write_text(
        'title = "T"\nlanguage = "ja"\nchapters = ["chapters/ch.md"]\n', encoding="utf-8"
    )
    (report_with_code / "chapters" / "ch.md").write_text(
        '# 章\n\n```{include="../src/tool.py" lines="1"}\n```\n', encoding="utf-8"
    )
    cache = Cache(report_with_code / ".report-cache")
    first, _ = prepare(report_with_code, cache=cache)
    (report_with_code / "src" / "tool.py").write_text("changed = 2\n", encoding="utf-8")
    second, _ = prepare(report_with_code, cache=Cache(report_with_code / ".report-cache"))
    assert "line1" in first.chapters[0].html and "changed" in second.chapters[0].html


def test_epub_sets_code_in_the_monospace_faces() -> None:
    from report.render.epub import font_usage, parse_xhtml

    document = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>本文<code>式</code></p>'
        '<pre class="code"><code><span class="line"><span class="k">def</span> 関数</span></code></pre></body></html>'
    )
    usage = font_usage(parse_xhtml(document), "serif")
    assert set("式関数 ") <= usage[("mono", 400)] and set("def") <= usage[("mono", 700)]
    assert "式" not in usage[("serif", 400)]


# --- the built PDF and EPUB -----------------------------------------------------------------


@pytest.fixture(scope="module")
def code_book(build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    project = build_project("code")
    assert project.run.returncode == 0, project.run.stdout + project.run.stderr
    return project


@pytest.fixture(scope="module")
def pdf_chars(code_book: BuiltProject) -> list[list[dict]]:
    with pdfplumber.open(code_book.pdf) as pdf:
        return [list(page.chars) for page in pdf.pages]


def _runs(chars: list[dict], text: str) -> list[list[dict]]:
    """The runs of characters (white space left out) that spell ``text``."""
    visible = [c for c in chars if not c["text"].isspace()]
    flat = "".join(c["text"] for c in visible)
    wanted = squeeze(text)
    return [visible[m.start() : m.start() + len(wanted)] for m in re.finditer(re.escape(wanted), flat)]


def test_code_is_set_in_the_monospace_face(pdf_chars: list[list[dict]]) -> None:
    chars = [c for page in pdf_chars for c in page]
    for code in ['load_settings("設定.toml")', "# バイナリで開く", "report build . --format pdf,epub"]:
        runs = _runs(chars, code)
        assert runs, code
        assert all(MONO in c["fontname"] for run in runs for c in run), {c["fontname"] for c in runs[0]}
    prose = _runs(chars, "は等幅で組まれる")
    assert prose and not any(MONO in c["fontname"] for c in prose[0])


def test_a_highlighted_block_has_several_colours(pdf_chars: list[list[dict]]) -> None:
    (run,) = _runs([c for page in pdf_chars for c in page], 'def load(path): """設定を読む。""" with open(path, "rb")')
    colours = {tuple(c["non_stroking_color"] or ()) for c in run}
    assert len(colours) >= 3, colours
    assert any(c["fontname"].endswith("Bold") for c in run)  # keywords in bold: they show in grey print too


def test_listings_numbered_and_referenced_in_the_pdf(pdf_chars: list[list[dict]]) -> None:
    chars = [c for page in pdf_chars for c in page]
    for caption in [
        "リスト1 設定を読み込む",
        "リスト2 Pandoc形式の属性",
        "リスト3 ページをまたぐ長いリスト",
        "リスト4 settings.pyの関数",
    ]:
        assert _runs(chars, caption), caption
    assert _runs(chars, "リスト1は設定の読み込み、リスト2はPandocの書き方、リスト3は長いリストである。")
    flat = "".join(c["text"] for c in chars if not c["text"].isspace())
    assert re.search(r"第1章の\d+ページのリスト1を参照", flat)  # a listing in another chapter: its page


def test_a_long_line_wraps_and_nothing_is_cut_off(code_book: BuiltProject, pdf_chars: list[list[dict]]) -> None:
    source = (FIXTURES / "code" / "chapters" / "01-code.md").read_text(encoding="utf-8")
    long_line = re.search(r"^LONGLINE-START.*LONGLINE-END$", source, re.MULTILINE)
    assert long_line
    with pdfplumber.open(code_book.pdf) as pdf:
        width = pdf.pages[0].width
    found = [(page, run) for page in pdf_chars for run in _runs(page, long_line.group(0))]
    assert len(found) == 1, "the whole line, every character, is in the PDF once"
    page, run = found[0]
    assert len({round(c["top"]) for c in run}) >= 2, "the line is wrapped"
    measure = max(c["x1"] for c in page if MONO not in c["fontname"])  # the right edge of the justified prose
    assert all(c["x0"] > 0 and c["x1"] < measure < width for c in run), "every character is inside the text block"


def test_a_listing_across_a_page_break_keeps_three_lines_each_side(pdf_chars: list[list[dict]]) -> None:
    pages = []
    for page in pdf_chars:
        tops = {round(c["top"]) for c in page if MONO in c["fontname"] and c["text"] == "順"}  # 手順N, once a line
        if tops:
            pages.append(len(tops))
    assert len(pages) == 2, pages  # the 60-step listing crosses one page break
    assert min(pages) >= 3 and sum(pages) == 60


def test_pdf_embeds_the_bundled_monospace_face(code_book: BuiltProject) -> None:
    families = {row["family"] for row in pdffonts(code_book.pdf)}
    assert MONO in families and families <= BUNDLED_PDF_FAMILIES
    check = subprocess.run(["qpdf", "--check", str(code_book.pdf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_epub_code_is_highlighted_in_the_monospace_face_and_valid(code_book: BuiltProject) -> None:
    names = epub_names(code_book.epub)
    chapters = [epub_read(code_book.epub, n).decode() for n in names if n.endswith(".xhtml") and "code" in n]
    joined = "".join(chapters)
    assert '<pre class="code"><code class="language-python"><span class="line"><span class="kn">import</span>' in joined
    assert '<figcaption><span class="label">リスト1</span> 設定を読み込む</figcaption>' in joined
    css = "".join(epub_read(code_book.epub, n).decode() for n in names if n.endswith(".css"))
    assert 'font-family: "Noto Sans Mono CJK JP"' in css and "pre.code .k { color:" in css
    assert any("NotoSansMonoCJKjp-Regular" in n for n in names) and any("NotoSansMonoCJKjp-Bold" in n for n in names)
    assert code_book.epubcheck is not None
    problems = [m for m in code_book.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert problems == [], problems


def test_epub_has_no_accessibility_violations(code_book: BuiltProject, tmp_path: Path) -> None:
    from test_epub_quality import AceRun, ace_available

    if not ace_available():
        pytest.skip("Ace is not installed (./run test installs it)")
    violations = AceRun(code_book.epub, tmp_path / "ace").start().violations(("serious", "critical", "moderate"))
    assert violations == [], violations


def test_a_missing_include_fails_the_build_with_its_line(tmp_path: Path) -> None:
    root = copy_fixture("code", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "code.pdf").write_bytes(b"previous")
    chapter = root / "chapters" / "02-include.md"
    chapter.write_text(chapter.read_text(encoding="utf-8").replace("../src/settings.py:13:14", "../src/gone.py"))
    run = run_report("build", root, "-o", out)
    assert run.returncode == 1, run.stdout + run.stderr
    found = [(Path(m["path"]).name, int(m["line"]), m["message"]) for m in diagnostics_of(run.stderr)]
    line = chapter.read_text(encoding="utf-8").splitlines().index("```python", 10) + 1
    assert found == [("02-include.md", line, 'included file "../src/gone.py" does not exist')]
    assert "Traceback" not in run.stderr and (out / "code.pdf").read_bytes() == b"previous"
    shutil.rmtree(root)


def test_the_monospace_faces_are_cut_to_the_code_alone() -> None:
    document = (
        '<p>本文の漢字<code>x&lt;1</code></p><pre class="code"><code><span class="k">def</span> 関数\n</code></pre>'
    )
    assert code_text(document) == "x&lt;1def 関数\n"
    assert "漢" not in print_characters(code_text(document), ()) and "<" in print_characters(code_text(document), ())


def _pages_of_lines(pdf: bytes) -> list[int]:
    """How many lines of the block (each a ``L`` followed by digits) each page holds."""
    import io

    with pdfplumber.open(io.BytesIO(pdf)) as document:
        return [len(re.findall(r"L\d\d", page.extract_text() or "")) for page in document.pages]


def test_no_page_break_leaves_one_or_two_lines_of_a_block_alone(tmp_path: Path) -> None:
    """Wherever a twelve-line block starts near the foot of a page, a break leaves three lines
    or more on either side of it (the print stylesheet's rules, laid out by WeasyPrint)."""
    from weasyprint import CSS, HTML

    from report.fonts import FACES, font_face_css, subset

    urls = {}
    for face in FACES:
        if face.style == "mono":
            (tmp_path / face.file).write_bytes(subset(face, "L0123456789= "))
            urls[face.file] = (tmp_path / face.file).as_uri()
    stylesheets = [
        CSS(string=font_face_css(urls)),
        CSS(string=(PACKAGE / "styles" / "print.css").read_text(encoding="utf-8")),
        CSS(string='@page { size: 100mm 100mm; margin: 10mm; } html { font-family: "Noto Sans Mono CJK JP"; }'),
    ]
    block = "".join(f'<span class="line">L{n:02} = {n}\n</span>' for n in range(1, 13))
    splits = []
    for filler in range(50, 66, 2):  # the block's first line from mid-page to the very foot
        page = f'<div style="height: {filler}mm"></div><pre class="code"><code>{block}</code></pre>'
        counts = [count for count in _pages_of_lines(HTML(string=page).write_pdf(stylesheets=stylesheets)) if count]
        assert sum(counts) == 12 and all(count >= 3 for count in counts), (filler, counts)
        splits.append(len(counts) > 1)
    assert any(splits) and not all(splits)  # the sweep did cross page breaks, at several places


@pytest.mark.parametrize(
    ("paragraph", "lines", "caption"),
    [
        ("[import](../src/tool.py)", list(range(1, 11)), None),
        ("[import, tool.py](../src/tool.py)", list(range(1, 11)), "tool.py"),
        ("[import tool.py](../src/tool.py)", list(range(1, 11)), "tool.py"),
        ("[import:3-5, tool.py](../src/tool.py)", [3, 4, 5], "tool.py"),
    ],
)
def test_gitbook_imports_include_code(
    report_with_code: Path, paragraph: str, lines: list[int], caption: str | None
) -> None:
    """GitBook's include-codeblock plugin: a paragraph that is only [import, title](path)."""
    source = SourceChapter(
        report_with_code / "chapters/ch.md", "ch", "章", Matter.BODY, (), f"前文。\n\n{paragraph}\n", 1
    )
    diagnostics = Diagnostics()
    parsed = parse_chapter(source, report_with_code, diagnostics)
    assert not diagnostics.errors and not diagnostics.warnings, diagnostics.errors + diagnostics.warnings
    shown = [_text_of(line) for line in re.findall(r'<span class="line">(.*?)\n</span>', parsed.html)]
    assert shown == [f"line{n} = {n}" for n in lines]
    assert "<a " not in parsed.html and "import" not in parsed.html
    listings = [t for t in parsed.targets if t.kind.value == "listing"]
    if caption is None:
        assert not listings
    else:  # the plugin's anchor is the title: [tool.py](#tool.py) finds the listing
        ((listing),) = listings
        assert (listing.text, listing.alias) == (caption, caption)


def test_a_gitbook_import_keeps_to_the_report_folder(report_with_code: Path) -> None:
    body, diagnostics, includes = parse_in(report_with_code, "[import](../../secret.py)\n")
    ((error),) = diagnostics.errors
    assert "outside the report folder" in error.message and error.location.line == 1
    assert "password" not in body and not includes


@given(
    st.text(alphabet=st.sampled_from(list("abc xyz_019()[]{}<>&\"'#/*+-=.,;:\n\t漢字かな")), max_size=120),
    st.sampled_from(["python", "rust", "c", "javascript", "toml", "html", "bash"]),
)
def test_highlighting_keeps_every_character_and_spans_only_the_tokens_it_colours(code: str, language: str) -> None:
    """Whatever the code, its highlighted lines say it all, and a span is a token a rule
    colours: one in the text's colour is its text alone (each span costs its box's layout)."""
    lines = highlight(code, language)
    assert html.unescape(re.sub(r"<[^>]+>", "", "\n".join(lines))) == code.removesuffix("\n")
    assert set(re.findall(r'<span class="([^"]+)"', "\n".join(lines))) <= styled_classes()


def test_a_continuation_arrow_is_drawn_only_where_a_line_wraps(tmp_path: Path) -> None:
    """The arrow in the indent of a wrapped line is the background of a box that every line of
    a code block has (print.css: ``pre.code .line::before``), of no height where the line does
    not wrap. Drawn there too, it painted nothing, but as a pattern and a group each (under
    the page's resources), which every part and the joined PDF held: 8,525 of them in book-ja's
    596 pages, a PDF of 10.0 MB (4.7 MB without). Forty short lines draw none; a line that
    wraps draws its arrows, as one pattern."""
    root = copy_fixture("ja-basic", tmp_path / "src")
    chapter = next((root / "chapters").glob("01-*.md"))
    short = "\n".join(f"value_{n} = {n}" for n in range(40))
    long = "LONG-START " + " ".join(f"word{n}" for n in range(40)) + " LONG-END"
    blocks = f"\n\n```python\n{short}\n```\n\n```text\n{long}\n```\n"
    chapter.write_text(chapter.read_text(encoding="utf-8") + blocks, encoding="utf-8")
    run = run_report("build", root, "--format", "pdf", "-o", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    (pdf,) = (tmp_path / "out").glob("*.pdf")
    with pikepdf.open(pdf) as document:
        patterns = [o for o in document.objects if isinstance(o, pikepdf.Stream) and o.get("/Type") == "/Pattern"]
        filled = [number for number, page in enumerate(document.pages) if b"/Pattern cs" in _content(page)]
    assert len(patterns) == 1 and len(filled) == 1
    with pdfplumber.open(pdf) as document:
        text = squeeze(document.pages[filled[0]].extract_text())
    assert "LONG-START" in text and "LONG-END" in text and "value_0" not in text  # (the short lines: a page before)


def _content(page: pikepdf.Page) -> bytes:
    contents = page.obj.get("/Contents")
    streams = contents if isinstance(contents, pikepdf.Array) else [contents]
    return b"".join(stream.read_bytes() for stream in streams if stream is not None)


def test_warming_the_highlighting_compiles_the_lexers_of_the_languages_and_included_files_named() -> None:
    """warm_highlighting makes the lexer of each language a chapter's code blocks name (as the
    parse writes them) and of each included file's name: Pygments compiles their rules then,
    once in a process. A fresh process, as the build server is before it reads a report."""
    script = (
        "from pathlib import Path\n"
        "from pygments.lexers.rust import RustLexer; from pygments.lexers.configs import TOMLLexer\n"
        "from pygments.lexers.go import GoLexer\n"
        "from report.code import warm_highlighting\n"
        "lexers = (RustLexer, TOMLLexer, GoLexer)\n"
        "before = [('_tokens' in lexer.__dict__) for lexer in lexers]\n"
        "warm_highlighting(['<pre class=\"code\"><code class=\"language-rust\">x</code></pre>'], [Path('a/Cargo.toml')])\n"
        "print(*before, *[('_tokens' in lexer.__dict__) for lexer in lexers])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"] * 3 + ["True", "True", "False"]
