"""TeX mathematics as Pandoc writes it: ``$…$`` inline, ``$$…$$`` on lines of its own, and
numbered display equations ``$$…$$ {#eq-growth}`` (式1 / Equation 1).

Each formula is made twice: MathML for the EPUB (latex2mathml), and, since WeasyPrint lays out
no MathML, an SVG for the PDF drawn by ziamath with the bundled Noto Sans Math (whose OpenType
MATH table places fractions, scripts and radicals), its glyphs as paths (so no font is embedded
for it), sized in em and lowered by its depth below the baseline so that it sits on the line of
the text around it.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from mdit_py_plugins.attrs.parse import ParseError
from mdit_py_plugins.attrs.parse import parse as parse_attrs
from mdit_py_plugins.dollarmath import dollarmath_plugin

from report.cache import code_fingerprint, digest
from report.fonts import FACES, active_cache, font_digest, fonts_dir

# The face the PDF's formulas are drawn in (its MATH table is what ziamath lays them out by).
MATH_FACE = next(face for face in FACES if face.family == "Noto Sans Math")
# Units per em the SVG is drawn at: its sizes are written in em, so the number only sets precision.
_DRAWN_AT = 20.0
# The closing line of display math: ``$$``, or ``$$ {#eq-id}`` for a numbered equation.
_DISPLAY_END = re.compile(r"\$\$[ \t]*(\{[^{}\n]*\})?[ \t]*$")
# latex2mathml keeps a command it does not know as an identifier's text.
_UNKNOWN_COMMAND = re.compile(r">(\\[A-Za-z]+)<")
_VIEW_BOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"')


class MathError(ValueError):
    """TeX that cannot be set; the message says why."""


@dataclass(frozen=True)
class Formula:
    """One formula, for each format: SVG markup (print) and MathML (EPUB)."""

    svg: str
    mathml: str


def math_plugin(md: MarkdownIt) -> None:
    """``$…$`` by Pandoc's rules (no space inside the dollars, no digit right after the closing
    one: ``$5 and $10`` is text), ``$$…$$`` within a paragraph as display math, and display
    math blocks that may end with attributes (``$$ {#eq-growth}``)."""
    md.use(dollarmath_plugin, allow_labels=False, allow_space=False, allow_digits=False, double_inline=True)
    md.block.ruler.at("math_block", _display_math_rule)


def _display_math_rule(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    begin = state.bMarks[start_line] + state.tShift[start_line]
    first = state.src[begin : state.eMarks[start_line]]
    if not first.startswith("$$"):
        return False
    lines = [first[2:]]
    if "$$" in lines[0] and not _DISPLAY_END.search(lines[0]):
        return False  # "$$a$$ and more": display math in a paragraph, not a block
    line = start_line
    while True:
        if end := _DISPLAY_END.search(lines[-1]):
            break
        line += 1
        if line >= end_line or state.isEmpty(line):
            return False
        lines.append(state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]])
    attributes: dict[str, str] = {}
    if end.group(1):
        try:
            attributes = {key: str(value) for key, value in parse_attrs(end.group(1))[1].items()}
        except ParseError:
            return False
    lines[-1] = lines[-1][: end.start()]
    if silent:
        return True
    state.line = line + 1
    token = state.push("math_block", "math", 0)
    token.block = True
    token.content = "\n".join(lines).strip()
    token.markup = "$$"
    token.map = [start_line, state.line]
    for key, value in attributes.items():
        token.attrSet(key, value)
    return True


def formula(tex: str, display: bool) -> Formula:
    """``tex`` as SVG and MathML; :class:`MathError` when it is not TeX that can be set."""
    import latex2mathml.converter
    import latex2mathml.exceptions

    if not tex.strip():
        raise MathError("the formula is empty")
    try:
        mathml = latex2mathml.converter.convert(tex, display="block" if display else "inline")
    except (latex2mathml.exceptions.NoAvailableTokensError, ValueError, IndexError, KeyError) as error:
        raise MathError(f'"{tex}" is not TeX that can be set ({type(error).__name__})') from None
    if unknown := _UNKNOWN_COMMAND.search(mathml):
        raise MathError(f'"{tex}": unknown TeX command {unknown.group(1)}')
    alt = html.escape(tex, quote=True)
    mathml = mathml.replace("<math ", f'<math alttext="{alt}" ', 1)
    return Formula(_cached_svg(tex, display), mathml)


def _cached_svg(tex: str, display: bool) -> str:
    """:func:`_svg`, kept in the build's cache: a chapter parsed again after an edit of its text
    draws none of its formulas again (ziamath reads the math face's layout tables first: a
    second, whatever the formula)."""
    cache = active_cache()
    if cache is None:
        return _svg(tex, display)
    key = digest(_code(), font_digest(MATH_FACE.file, cache), tex, str(display))
    return cache.text("formula", key, lambda: _svg(tex, display))


@functools.cache
def _code() -> str:
    return code_fingerprint("report.math")


def _svg(tex: str, display: bool) -> str:
    from ziamath.config import config
    from ziamath.zmath import Latex

    config.svg2 = False  # xlink:href, which every SVG reader follows
    try:
        drawn = Latex(tex, size=_DRAWN_AT, font=str(fonts_dir() / MATH_FACE.file), inline=not display, margin=0).svg()
    except Exception as error:  # ziamath raises whatever its parser meets: any of it is bad TeX
        raise MathError(f'"{tex}" is not TeX that can be set ({error})') from None
    box = _VIEW_BOX.search(drawn)
    if box is None:
        raise MathError(f'"{tex}" drew nothing')
    _, top, width, height = (float(n) for n in box.groups())
    depth = top + height  # below the baseline (y = 0), in the units it is drawn at
    size = (
        f"width: {width / _DRAWN_AT:.3f}em; height: {height / _DRAWN_AT:.3f}em; "
        f"vertical-align: {-depth / _DRAWN_AT:.3f}em"
    )
    return drawn.replace("<svg ", f'<svg style="{size}" ', 1)
