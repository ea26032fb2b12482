"""TeX mathematics: MathML in the EPUB, SVG drawn as paths in the PDF (on the text's baseline),
numbered display equations referred to as 式1 / Equation 1, bad TeX an error at its line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import BuiltProject
from helpers import BUNDLED_PDF_FAMILIES, epub_names, epub_read, pdffonts, pdftotext, squeeze
from test_resolve import book

from report.errors import Diagnostics
from report.fonts import fonts_dir
from report.math import MATH_FACE, MathError, formula
from report.model import Matter, SourceChapter
from report.parse import parse_chapter


def parse(markdown: str, root: Path) -> tuple[str, tuple[str, ...], Diagnostics]:
    diagnostics = Diagnostics()
    source = SourceChapter(root / "chapters" / "ch.md", "ch", "章", Matter.BODY, (), markdown, 3)
    parsed = parse_chapter(source, root, diagnostics)
    return parsed.html, parsed.svgs, diagnostics


def test_inline_math_has_svg_for_print_and_mathml_for_epub(tmp_path: Path) -> None:
    body, svgs, diagnostics = parse("# 章\n\n成長率は$g = \\frac{a}{b}$である。\n", tmp_path)
    assert not diagnostics.errors
    assert '<span class="math inline"><span class="print-only">' in body
    svg, mathml = svgs
    assert svg.startswith("<svg") and "<path" in svg and "<text" not in svg  # glyphs are paths
    assert re.search(r"vertical-align: -0\.\d+em", svg)  # lowered by the fraction's depth
    assert 'aria-label="g = \\frac{a}{b}"' in svg
    assert mathml.startswith("<math ") and 'alttext="g = \\frac{a}{b}"' in mathml
    assert "<mfrac>" in mathml


@pytest.mark.parametrize("text", ["$5 and $10", "a $ b $ c", "costs $3$4"])
def test_dollars_that_are_not_math(tmp_path: Path, text: str) -> None:
    body, svgs, diagnostics = parse(f"# 章\n\n{text}\n", tmp_path)
    assert not svgs and not diagnostics.errors
    assert "math" not in body


def test_display_math_block_and_numbered_equation(tmp_path: Path) -> None:
    body, svgs, diagnostics = parse("# 章\n\n$$\nx^2\n$$\n\n$$y = 1$$ {#eq-y}\n", tmp_path)
    assert not diagnostics.errors
    assert body.count('<div class="math display">') == 2
    assert '<div id="eq-y" class="equation">' in body
    assert 'display="block"' in svgs[1] and 'display="block"' in svgs[3]


def test_display_math_inside_a_paragraph_does_not_swallow_what_follows(tmp_path: Path) -> None:
    body, svgs, diagnostics = parse("# 章\n\n$$a$$ と続く\n$$b$$\n", tmp_path)
    assert not diagnostics.errors
    assert body.count('<span class="math display">') == 2 and '<div class="math' not in body
    assert "と続く" in body and len(svgs) == 4


def test_equations_are_numbered_and_referred_to() -> None:
    markdown = "# 章\n\n$$a$$ {#eq-a}\n\n$$b$$ {#eq-b}\n\n[](#eq-b)と[](#eq-a)\n"
    for language, words in (("ja", ("式2", "式1")), ("en", ("Equation 2", "Equation 1"))):
        built, diagnostics = book(language, [("ch", "章", Matter.BODY, markdown)])
        assert not diagnostics.errors
        body = built.chapters[0].html
        assert '<span class="label">(1)</span>' in body and '<span class="label">(2)</span>' in body
        assert f'<a href="#eq-b" class="xref">{words[0]}</a>' in body
        assert f'<a href="#eq-a" class="xref">{words[1]}</a>' in body


@pytest.mark.parametrize(
    ("markdown", "line", "message"),
    [
        ("# 章\n\n本文\n\n式は$\\frac{a}{$です。\n", 7, "math"),
        ("# 章\n\n$$\n\\foo{x}\n$$\n", 5, "unknown TeX command \\foo"),
        ("# 章\n\n$$x$$ {#1bad}\n", 5, 'id "1bad"'),
    ],
)
def test_bad_tex_is_an_error_at_its_line(tmp_path: Path, markdown: str, line: int, message: str) -> None:
    _, _, diagnostics = parse(markdown, tmp_path)
    assert [(d.location.line, message in d.message) for d in diagnostics.errors] == [(line, True)]


@pytest.mark.parametrize("tex", ["\\frac{a+b}{c}", "\\sum_{i=1}^{n} x_i^2", "\\sqrt{x^2+y^2}"])
def test_formulas_are_drawn_with_the_bundled_noto_sans_math(tex: str) -> None:
    """The PDF's formulas are Noto Sans Math's glyphs, laid out by its MATH table, not the STIX
    Two Math that ziamath falls back on."""
    from ziamath.zmath import Latex

    def glyphs(svg: str) -> list[str]:
        return re.findall(r'<path d="([^"]+)"', svg)

    drawn = glyphs(formula(tex, display=True).svg)
    assert drawn == glyphs(Latex(tex, size=20, font=str(fonts_dir() / MATH_FACE.file), margin=0).svg())
    assert drawn != glyphs(Latex(tex, size=20, margin=0).svg())


def test_a_formula_drawn_once_is_taken_from_the_builds_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within a build (the cache the fonts use), a formula drawn before is not drawn again: the
    same SVG, and ziamath not called; another formula, or the same one as display math, is."""
    from report import fonts, math
    from report.cache import Cache

    drawn: list[str] = []
    draw = math._svg

    def counted(tex: str, display: bool) -> str:
        drawn.append(tex)
        return draw(tex, display)

    monkeypatch.setattr(math, "_svg", counted)
    with fonts.cached(Cache(tmp_path / "cache")):
        first = formula(r"\frac{a}{b}", False)
        assert formula(r"\frac{a}{b}", False) == first and drawn == [r"\frac{a}{b}"]
    with fonts.cached(Cache(tmp_path / "cache")):  # the next build
        assert formula(r"\frac{a}{b}", False) == first and len(drawn) == 1
        assert formula(r"\frac{a}{b}", True).svg != first.svg and len(drawn) == 2
        formula(r"\sqrt{x}", False)
        assert drawn[-1] == r"\sqrt{x}"
    formula(r"\frac{a}{b}", False)  # no build: drawn
    assert len(drawn) == 4


def test_formula_refuses_empty_tex() -> None:
    with pytest.raises(MathError):
        formula("  ", display=False)


def test_built_math_in_pdf_and_epub(figures: BuiltProject) -> None:
    text = squeeze(pdftotext(figures.pdf))
    reference = "式1を式2と比べる" if figures.name == "ja-figures" else "SeeEquation1:itcompounds"
    assert reference in text and "(1)" in text
    assert "$5" in text  # dollars that are prices stay text
    # The formulas are paths: the PDF embeds the bundled text fonts only.
    assert {row["family"] for row in pdffonts(figures.pdf)} <= BUNDLED_PDF_FAMILIES
    chapter = next(n for n in epub_names(figures.epub) if n.endswith("math.xhtml"))
    xhtml = epub_read(figures.epub, chapter).decode()
    assert "<svg" not in xhtml and xhtml.count("<math ") >= 3
    opf = epub_read(figures.epub, "EPUB/content.opf").decode()
    assert re.search(r'<item [^>]*href="math.xhtml"[^>]*properties="mathml"', opf)
    assert '<meta property="schema:accessibilityFeature">MathML</meta>' in opf
    assert figures.epubcheck is not None
    problems = [m for m in figures.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert problems == []
