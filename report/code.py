"""Code blocks: what a fence's attributes ask for, code included from files of the report,
and syntax highlighting with Pygments.

A fence takes attributes after its language, ```` ```python {#lst-setup caption="…"} ````, or
in Pandoc's form ```` ```{.python #lst-setup caption="…"} ````. Code kept in a file of the
report is included with ``include="path" lines="10-20"``, as in mdBook with a
``{{#include path:10:20}}`` line in the block, or as GitBook's include-codeblock plugin does
with a paragraph that is only ``[import, title](path)`` (``[import:10-20](path)``). Highlighted code is HTML spans with Pygments'
short class names, one ``<span class="line">`` per source line; :func:`highlight_css` colours
them, in colours that pass WCAG AA on the box and keep their contrast in grey print
(keywords are bold as well, so they still stand out without colour). A token it leaves in the
text's colour (a name, punctuation, an operator, white space) is its text alone, in no span.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.attrs.parse import ParseError
from mdit_py_plugins.attrs.parse import parse as parse_attrs

from report.limits import MAX_CHAPTER_BYTES
from report.load import RESERVED_CHARACTERS

# mdBook's forms: {{#include f}} all, f:5 line 5, f:5: from 5, f::9 to 9, f:5:9 from 5 to 9, f:name
# the lines between "ANCHOR: name" and "ANCHOR_END: name"; {{#rustdoc_include …}} alike (the lines
# it hides on the web, outside those asked for, a printed page does not show).
INCLUDE_LINE = re.compile(
    r"^[ \t]*\{\{#(?:rustdoc_)?include[ \t]+([^\s:}]+)(?::(\d*)(?::(\d*))?|:([\w-]+))?[ \t]*\}\}[ \t]*$", re.MULTILINE
)
ANY_INCLUDE = re.compile(r"^[ \t]*\{\{#(?:rustdoc_)?include\b.*$", re.MULTILINE)
ANCHOR_START = re.compile(r"ANCHOR:\s*([\w-]+)")
ANCHOR_END = re.compile(r"ANCHOR_END:\s*([\w-]+)")
Selection = tuple[int, int | None] | str | None  # lines (1-based, inclusive), an anchor's name, or all
# GitBook's include-codeblock: [import](f), [import, title](f), [import title](f), [import:5-9, title](f).
GITBOOK_IMPORT = re.compile(r"^\[import(?::(\d*-\d*|\d+))?(?:[,\s]\s*([^\]]*?))?\s*\]\(([^()\s]+)\)$")
_RUSTDOC_HIDDEN = re.compile(r"^(\s*)#(.?)(.*)$")
_TOKEN = re.compile(r'<span class="([\w-]+)">([^<]*)</span>')  # one of Pygments' (its text escaped)
_LANGUAGE = re.compile(r'<code class="language-([^"]+)">')  # a highlighted block's, as written below
LINE_RANGE = re.compile(r"^\s*(\d*)\s*(-?)\s*(\d*)\s*$")
BACKGROUND = "#f4f6f9"  # the code box, in print and EPUB
TEXT = "#1a1a1a"
# Pygments token type → colour and weight. Every colour has a contrast of at least 4.5:1 on
# BACKGROUND (tests/test_code.py checks it), so each reads as a dark grey in grey print too.
TOKEN_STYLES = {
    "Comment": "#4d5a66",
    "Comment.Preproc": "#6b3fa0",
    "Keyword": "bold #1c4f9c",
    "Keyword.Type": "bold #005f6b",
    "Operator.Word": "bold #1c4f9c",
    "Name.Builtin": "#005f6b",
    "Name.Function": "#6b3fa0",
    "Name.Class": "bold #6b3fa0",
    "Name.Decorator": "#8a4b00",
    "Name.Tag": "#1c4f9c",
    "Name.Attribute": "#8a4b00",
    "String": "#2b6a12",
    "String.Escape": "#8a4b00",
    "Number": "#a0301c",
    "Literal": "#a0301c",
    "Generic.Deleted": "#a0301c",
    "Generic.Inserted": "#2b6a12",
    "Generic.Heading": "bold #1c4f9c",
    "Error": "#b00020",
}


class CodeError(ValueError):
    """A code block that cannot be built; the message says why."""


@dataclass(frozen=True)
class Fence:
    """What a fenced code block's info string and attributes ask for."""

    language: str
    id: str | None = None
    caption: str | None = None
    classes: tuple[str, ...] = ()
    include: str | None = None
    lines: str | None = None
    alt: str | None = None  # a chart's text alternative (``vega-lite`` blocks)


def read_fence(info: str, block_attributes: dict[str, object]) -> Fence:
    """``python {#id caption="…"}``, ``{.python #id}`` or ``python``; attributes given on the
    line before the block (``{#id caption="…"}``) count as well. The language is the first word
    before a comma: mdBook's ``rust,ignore`` is Rust (the rest says how rustdoc tests it)."""
    info = info.strip()
    head, brace, rest = info.partition("{")
    attributes: dict[str, object] = dict(block_attributes)
    if brace:
        try:
            end, found = parse_attrs(brace + rest)
        except ParseError as error:
            raise CodeError(f'code block attributes "{brace + rest}" cannot be read: {error}') from None
        if trailing := (brace + rest)[end + 1 :].strip():  # ``end`` is the closing brace's index
            raise CodeError(f'unexpected text after the code block attributes: "{trailing}"')
        attributes.update(found)
    classes = str(attributes.get("class") or "").split()
    language = (head.split()[0] if head.split() else (classes.pop(0) if classes else "")).split(",")[0]

    def text(name: str) -> str | None:
        value = attributes.get(name)
        return str(value) if value is not None else None

    return Fence(language, text("id"), text("caption"), tuple(classes), text("include"), text("lines"), text("alt"))


def gitbook_import_rule(state: StateCore) -> None:
    """A paragraph that is only GitBook's ``[import, title](path)`` becomes a code block that
    includes the file (a listing captioned with the title, if there is one)."""
    tokens = state.tokens
    for index in range(len(tokens) - 2, 0, -1):
        opening, inline = tokens[index - 1], tokens[index]
        if opening.type != "paragraph_open" or inline.type != "inline":
            continue
        if not (found := GITBOOK_IMPORT.match(inline.content.strip())):
            continue
        lines, title, path = found.groups()
        fence = Token("fence", "code", 0, map=opening.map, block=True, info="")
        fence.attrs = {"include": unquote(path), **({"lines": lines} if lines else {})}
        if title:
            fence.attrs["caption"] = title
            fence.meta["alias"] = title  # the plugin's anchor: [title](#title) finds the listing
        tokens[index - 1 : index + 2] = [fence]


def line_range(spec: str) -> tuple[int, int | None]:
    """``lines="10-20"`` → (10, 20); ``"10-"`` to the end; ``"-20"`` from the start; ``"7"`` one line."""
    match = LINE_RANGE.match(spec)
    if not match or not (match.group(1) or match.group(3)):
        raise CodeError(f'lines="{spec}" is not a line range (write lines="10-20", "10-", "-20" or "7")')
    start = int(match.group(1) or 1)
    end = int(match.group(3)) if match.group(3) else (None if match.group(2) else start)
    if start < 1 or (end is not None and end < start):
        raise CodeError(f'lines="{spec}" is not a line range: lines count from 1 and the end is not before the start')
    return start, end


def included_text(path: Path, shown_as: str, lines: Selection) -> str:
    """The file's text (UTF-8), cut to ``lines`` (1-based, inclusive) or to an mdBook anchor
    when given (see :func:`anchored_lines`)."""
    if (size := path.stat().st_size) > MAX_CHAPTER_BYTES:
        raise CodeError(f'included file "{shown_as}" is {size / 1024 / 1024:.1f} MB; it may be at most 4 MB')
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise CodeError(f'included file "{shown_as}" is not valid UTF-8') from None
    if reserved := RESERVED_CHARACTERS.search(text):
        raise CodeError(f'included file "{shown_as}" uses the reserved character U+{ord(reserved.group()):04X}')
    if lines is None:
        return text
    if isinstance(lines, str):
        return anchored_lines(text, lines, shown_as)
    all_lines = text.splitlines(keepends=True)
    start, end = lines
    if start > len(all_lines):
        raise CodeError(f'included file "{shown_as}" has {len(all_lines)} lines; line {start} does not exist')
    chosen = "".join(all_lines[start - 1 : end])
    return chosen if chosen.endswith("\n") else chosen + "\n"


def anchored_lines(text: str, anchor: str, shown_as: str) -> str:
    """The lines between ``ANCHOR: anchor`` and ``ANCHOR_END: anchor`` (to the end if it has
    none), without the lines that mark anchors, as mdBook takes them."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if not inside:
            inside = any(found.group(1) == anchor for found in ANCHOR_START.finditer(line))
        elif any(found.group(1) == anchor for found in ANCHOR_END.finditer(line)):
            break
        elif not ANCHOR_START.search(line) and not ANCHOR_END.search(line):
            kept.append(line)
    if not inside:
        raise CodeError(f'included file "{shown_as}" has no anchor "{anchor}" (a line with ANCHOR: {anchor})')
    chosen = "".join(kept)
    return chosen if chosen.endswith("\n") or not chosen else chosen + "\n"


def expand_includes(code: str, read: Callable[[str, Selection], str]) -> str:
    """mdBook's ``{{#include path}}`` lines replaced by what ``read(path, lines)`` gives."""
    for line in ANY_INCLUDE.finditer(code):
        if not INCLUDE_LINE.fullmatch(line.group(0)):  # a typo …
            raise CodeError(
                f'"{line.group(0).strip()}" is not an include this builder reads: write {{{{#include path}}}}, '
                "{{#include path:10:20}} (line numbers) or {{#include path:name}} (an anchor)"
            )

    def include(match: re.Match[str]) -> str:
        start, end, anchor = match.group(2), match.group(3), match.group(4)
        lines: Selection
        if anchor is not None:
            lines = anchor
        elif start is None:
            lines = None
        elif end is None:  # path:5 is line 5 alone
            lines = (int(start), int(start)) if start else None
        else:
            lines = (int(start) if start else 1, int(end) if end else None)
        if isinstance(lines, tuple) and (lines[0] < 1 or (lines[1] is not None and lines[1] < lines[0])):
            raise CodeError(f'"{match.group(0).strip()}" is not a line range: lines count from 1')
        return read(match.group(1), lines).removesuffix("\n")

    return INCLUDE_LINE.sub(include, code)


def rustdoc_shown(code: str) -> str:
    """Rust code as mdBook shows it, as rustdoc does: a line that is ``#`` and anything but ``!``,
    ``[`` or ``#`` after it (``# fn main() {``, set up for the example to compile) is hidden,
    ``##`` stands for ``#``; attributes (``#[derive]``, ``#![allow]``) stay."""
    shown: list[str] = []
    for line in code.split("\n"):
        found = _RUSTDOC_HIDDEN.match(line)
        if found is None or found.group(2) in ("!", "["):
            shown.append(line)
        elif found.group(2) == "#":
            shown.append(found.group(1) + "#" + found.group(3))
    return "\n".join(shown)


def highlight(code: str, language: str, file_name: str | None = None) -> list[str]:
    """``code`` as HTML, one string per source line: highlighted when Pygments knows the
    language (or, for an included file without one, the file's name), else escaped."""
    lexer = _lexer(language, file_name)
    lines = code.removesuffix("\n").split("\n")
    if lexer is None:
        return [html.escape(line, quote=False) for line in lines]
    from pygments import highlight as pygments_highlight

    # Pygments closes every span at the end of its line, so the output splits into lines.
    formatted: str = pygments_highlight("\n".join(lines) + "\n", lexer, _formatter())
    # A token no rule colours is its text alone: each span is an inline box to lay out and draw,
    # and two thirds of a Rust chapter's were of such tokens (its layout took 1.6 times as long).
    styled = styled_classes()
    formatted = _TOKEN.sub(lambda token: token.group(0) if token.group(1) in styled else token.group(2), formatted)
    return formatted.removesuffix("\n").split("\n")


def warm_highlighting(chapters_html: Iterable[str], included: Iterable[Path] = ()) -> None:
    """Highlight a line in each language the chapters' code blocks name, and in the language of
    each included file's name: Pygments imports a lexer's module and compiles its rules at the
    lexer's first use in a process (15 ms for Rust, then 0.1 ms), and the build server does this
    between builds, for the builds it forks (see report.build.keep_last_build)."""
    languages = {html.unescape(found) for chapter in chapters_html for found in _LANGUAGE.findall(chapter)}
    for language in sorted(languages):
        highlight("x", language)
    for name in sorted({path.name for path in included}):
        highlight("x", "", name)


@cache
def _formatter() -> Any:
    """Pygments' HTML formatter, made once (0.2 ms each: its style sheet is worked out anew)."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


def _lexer(language: str, file_name: str | None) -> Any:
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        if language:
            return get_lexer_by_name(language, stripnl=False, ensurenl=False)
        if file_name:
            return get_lexer_for_filename(file_name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        pass
    return None


@cache
def highlight_css() -> str:
    """The rules that colour highlighted code (inside ``pre.code``), for print and EPUB alike:
    each of Pygments' token classes takes the style of its nearest styled ancestor, as
    Pygments' own style sheets do (made here from its token table alone, which imports in a
    millisecond; its formatter and style machinery take forty)."""
    from pygments.token import STANDARD_TYPES, string_to_tokentype

    styled = {string_to_tokentype(name): value for name, value in TOKEN_STYLES.items()}
    rules = []
    for token, short in sorted(STANDARD_TYPES.items(), key=lambda item: item[1]):
        ancestor = next((t for t in _lineage(token) if t in styled), None)
        if ancestor is None or not short:
            continue
        *bold, colour = styled[ancestor].split()
        weight = " font-weight: bold;" if bold else ""
        rules.append(f"pre.code .{short} {{ color: {colour};{weight} }}\n")
    return "".join(rules)


def _lineage(token: Any) -> list[Any]:
    """The token type, its parent, its parent's parent … (``Keyword.Type``, ``Keyword``, ``Token``)."""
    lineage = []
    while token is not None:
        lineage.append(token)
        token = token.parent
    return lineage


@cache
def styled_classes() -> frozenset[str]:
    """The highlighting classes :func:`highlight_css` has a rule for."""
    return frozenset(re.findall(r"^pre\.code \.([\w-]+) \{", highlight_css(), re.MULTILINE))


def bold_classes() -> frozenset[str]:
    """The highlighting classes set in bold (the EPUB subsets the bold monospace face for them)."""
    return frozenset(re.findall(r"^pre\.code \.([\w-]+) \{[^}]*font-weight: bold", highlight_css(), re.MULTILINE))
