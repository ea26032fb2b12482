"""Stage 2 — parse: one chapter's Markdown into an HTML fragment and what it defines.

The dialect is CommonMark plus GFM tables and strikethrough, footnotes,
``{#id .class}`` attributes, definition lists, ruby ``{漢字|かんじ}``, numbered
figures (an image alone in its paragraph) and numbered tables (a ``Table:``
paragraph before a table). Numbers and cross-reference labels need the whole
book, so this stage leaves empty slots that :mod:`report.resolve` fills.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.attrs import attrs_block_plugin, attrs_plugin
from mdit_py_plugins.attrs.parse import ParseError
from mdit_py_plugins.attrs.parse import parse as parse_attrs
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin

from report.callouts import WORD_SLOT, callouts_plugin
from report.charts import ChartError, chart
from report.cite import citations_plugin, parsed_citations
from report.code import (
    CodeError,
    Fence,
    Selection,
    expand_includes,
    gitbook_import_rule,
    highlight,
    included_text,
    line_range,
    read_fence,
    rustdoc_shown,
)
from report.errors import Diagnostics
from report.index import index_plugin, parsed_marks
from report.limits import MAX_NESTING, MAX_TABLE_CELLS, image_problem
from report.load import ID_PATTERN
from report.math import MathError, formula, math_plugin
from report.model import (
    ELEMENT_ID,
    FILE_LINK,
    CrossReference,
    FileLink,
    Footnote,
    Heading,
    Matter,
    ParsedChapter,
    SourceChapter,
    Target,
    TargetKind,
)
from report.remote import RemoteImageError, is_remote, remote_image
from report.svg import SvgError, sanitize_svg

CHART_SUFFIX = ".vl.json"  # a Vega-Lite spec referenced like an image: a chart
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
TABLE_CAPTION = re.compile(r"^Table:\s*(.+?)\s*$", re.DOTALL)
TRAILING_ATTRIBUTES = re.compile(r"\s*(\{[^{}\n]*\})\s*$")
RUBY = re.compile(r"\{([^{}|\n]+)\|([^{}\n]+)\}")
UNDEFINED_FOOTNOTE = re.compile(r"\[\^([^\]\s]+)\]")

# What raw HTML in a chapter may keep: structure and phrasing, never scripts,
# frames, forms, styles or event handlers.
ALLOWED_TAGS = {
    "a", "abbr", "aside", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var", "wbr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"id", "class", "lang", "dir", "title", "role", "aria-label"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan", "rowspan", "style", "scope"},
    "td": {"colspan", "rowspan", "style"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
# Dropped with their content: fallback text of frames and objects is not the author's prose.
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template", "textarea"}
_STYLE_PROPERTY = re.compile(r"([\w-]+)\s*:")
_RAW_IMAGE = re.compile(r"""<img\b(?:"[^"]*"|'[^']*'|[^'">])*>""", re.IGNORECASE)
# The parser's own placeholders (number slots, inline SVG slots) are Private Use Area tokens
# until the fragment is sanitized: load.py refuses those characters in chapters, so raw HTML
# can never forge a slot (a forged svg-slot used to crash the EPUB and PDF assembly).
SLOT = "\ue000slot\ue001{}\ue002"
SVG_SLOT = "\ue000svg-slot\ue001{}\ue002"
_PLACEHOLDER = re.compile("\ue000(slot|svg-slot|word-slot|cite-slot)\ue001([^\ue000-\ue00f]*)\ue002")
_FORGED_SLOT = re.compile(r'<span class="(?:svg-|word-|cite-)?slot"')
_FILE_LINK_START = FILE_LINK.partition("{")[0]  # how a file link's placeholder href begins
_HTML_COMMENTS = re.compile(r"(?:\s*<!--.*?-->)+\s*", re.DOTALL)
# A web address with its host, or a mail address: "http:golang.org/…" (a typo books carry) is
# not one, and EPUBCheck rejects it.
_WEB_ADDRESS = re.compile(r"^(?:https?://[^/?#\s]+|mailto:\S+)", re.IGNORECASE)
_IMAGE_WITHOUT_SOURCE = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")
# Characters XML 1.0 forbids (C0 controls but tab and line breaks, U+FFFE, U+FFFF), typed or as
# entities such as &#7;: they would make the EPUB's XHTML malformed, and they draw nothing.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def markdown_parser() -> MarkdownIt:
    # markdown-it drops, without a word, what is nested deeper than maxNesting token levels (a list
    # is two: the list and its item): deep enough for one container more than the limit, so that
    # _check_limits sees it and says so.
    nesting = 2 * (MAX_NESTING + 1) + 4
    md = MarkdownIt("commonmark", {"html": True, "typographer": False, "maxNesting": nesting})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin).use(deflist_plugin).use(attrs_plugin, spans=True).use(attrs_block_plugin)
    md.use(callouts_plugin, report=_block_error).use(citations_plugin).use(index_plugin).use(math_plugin)
    md.inline.ruler.before("text", "ruby", _ruby_rule)
    md.core.ruler.before("inline", "trailing_attributes", _trailing_attributes_rule)
    md.core.ruler.before("inline", "gitbook_import", gitbook_import_rule)
    md.core.ruler.before("inline", "heading_levels", _heading_levels_rule)
    md.core.ruler.after("inline", "drop_non_xml_characters", _drop_non_xml_characters)
    md.core.ruler.before("text_join", "line_numbers", _line_numbers_rule)
    md.core.ruler.before("text_join", "undefined_footnotes", _undefined_footnotes_rule)
    md.core.ruler.before("text_join", "east_asian_line_breaks", _east_asian_line_breaks_rule)
    md.core.ruler.before("text_join", "anchors", _anchors_rule)
    for name, rule in _RENDER_RULES.items():
        md.add_render_rule(name, rule)
    return md


@dataclass
class _Context:
    """Mutable state of one chapter's parse; frozen into a ParsedChapter at the end."""

    source: SourceChapter
    root: Path
    diagnostics: Diagnostics
    fetch_allow: tuple[str, ...] = ()  # report.toml's [fetch] allow
    headings: list[Heading] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    references: list[CrossReference] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    svgs: list[str] = field(default_factory=list)
    links: list[FileLink] = field(default_factory=list)
    tool_anchors: dict[str, int] = field(default_factory=dict)  # heading ids other tools give, how often
    heading_ids: set[str] = field(default_factory=set)
    anchors: list[Target] = field(default_factory=list)  # ids the author gives other elements
    figure_count: int = 0
    equation_count: int = 0
    table_count: int = 0
    listing_count: int = 0
    includes: list[Path] = field(default_factory=list)  # files whose code the chapter includes
    section_count: int = 0
    paragraph_count: int = 0

    def file_line(self, token_line: int | None) -> int:
        return self.source.first_line + (token_line or 0)

    def error(self, line: int | None, message: str) -> None:
        self.diagnostics.error(self.source.path, line, message)

    def warn(self, line: int | None, message: str) -> None:
        self.diagnostics.warn(self.source.path, line, message)


_PARSER: MarkdownIt | None = None


def parse_chapter(
    source: SourceChapter, root: Path, diagnostics: Diagnostics, fetch_allow: tuple[str, ...] = ()
) -> ParsedChapter:
    global _PARSER
    if _PARSER is None:
        _PARSER = markdown_parser()
    md = _PARSER
    context = _Context(source=source, root=root, diagnostics=diagnostics, fetch_allow=fetch_allow)
    env: dict[str, Any] = {"context": context}
    tokens = md.parse(source.markdown, env)
    _check_limits(tokens, context)
    title, title_html, tokens = _take_title(tokens, md, context, env)
    tokens, note_tokens = _split_footnotes(tokens)
    _mark_figures_and_tables(tokens)
    _check_headings(tokens, context)
    body = md.renderer.render(tokens, md.options, env)
    footnotes = _render_footnotes(note_tokens, md, env, context)
    body = _sanitize(body, context)
    context.targets.insert(0, Target(source.id, TargetKind.CHAPTER, title, 1, numbered=source.matter is Matter.BODY))
    context.targets.extend(_kept_anchors(context, body, footnotes))
    return ParsedChapter(
        source=source,
        title=title,
        title_html=title_html,
        html=body,
        headings=tuple(context.headings),
        footnotes=footnotes,
        targets=tuple(context.targets),
        references=tuple(context.references),
        images=tuple(context.images),
        svgs=tuple(context.svgs),
        links=tuple(context.links),
        citations=parsed_citations(env),
        index_marks=parsed_marks(env),
        includes=tuple(context.includes),
    )


def _sanitize(fragment: str, context: _Context) -> str:
    """Keep the allow-listed HTML only. Images may show only the chapter's checked image
    files, and links may go to ids or to the web: never to local files."""
    checked_images = {path.relative_to(context.root).as_posix() for path in context.images}

    def keep(element: str, attribute: str, value: str) -> str | None:
        if element == "img" and attribute == "src":
            return value if value in checked_images else None
        if element == "a" and attribute == "href":
            return value if _is_kept_href(value) else None
        return value

    cleaned = nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        clean_content_tags=DROPPED_WITH_CONTENT,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        filter_style_properties={"text-align"},
    )
    cleaned = _IMAGE_WITHOUT_SOURCE.sub("", cleaned)  # an image whose source was refused is dropped
    cleaned = _FORGED_SLOT.sub("<span", _NOT_XML.sub("", cleaned))  # an author's span is never a slot
    return _PLACEHOLDER.sub(lambda m: f'<span class="{m.group(1)}" title="{m.group(2)}"></span>', cleaned)


def _is_kept_href(href: str) -> bool:
    """An id, a link to a chapter file as the parser writes it, or a web or mail address."""
    return href.startswith(("#", _FILE_LINK_START)) or bool(_WEB_ADDRESS.match(href))


class _StartTags(HTMLParser):
    """The start tags of a piece of raw HTML: name, attributes and line (1 = the first)."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]], int]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs, self.getpos()[0]))


def _warn_about_dropped_html(fragment: str, context: _Context, line: int) -> None:
    """Say what :func:`_sanitize` will drop from this raw HTML, at the line it stands on."""
    for tag, attributes, offset in _StartTags(fragment).tags:
        where = line + offset - 1
        if tag not in ALLOWED_TAGS:
            content = " with its content" if tag in DROPPED_WITH_CONTENT else ""
            context.warn(where, f"raw HTML <{tag}> is removed{content}")
            continue
        allowed = ALLOWED_ATTRIBUTES["*"] | ALLOWED_ATTRIBUTES.get(tag, set())
        for name, value in attributes:
            if name not in allowed:
                context.warn(where, f'attribute "{name}" of raw HTML <{tag}> is removed')
            elif tag == "a" and name == "href" and not _is_kept_href(value or ""):
                context.warn(where, f'link "{value}" of raw HTML <a> is removed: link to an id (#id) or a web address')
            elif name == "style" and any(p.lower() != "text-align" for p in _STYLE_PROPERTY.findall(value or "")):
                context.warn(where, f'style "{value}" of raw HTML <{tag}> keeps only text-align')


# --- token passes -------------------------------------------------------------------------


def _line_numbers_rule(state: StateCore) -> None:
    """Give every token the file line it stands on, for messages (before escapes are joined
    into the text around them: a joined token keeps the line of its first part)."""
    context = _context(state.env)
    for token in state.tokens:
        if token.map is not None:
            token.meta["line"] = context.file_line(token.map[0])
        if token.type == "inline" and token.children:
            line = token.meta.get("line", context.source.first_line)
            for child in token.children:
                child.meta["line"] = line
                if child.type in ("softbreak", "hardbreak"):
                    line += 1


def _anchors_rule(state: StateCore) -> None:
    """Note every id the author gives an element that is not a heading, figure, table, listing
    or equation (those are targets of their own): a span ``[text]{#id}``, a block ``{#id}``, a
    fenced div, raw HTML ``<a id="id"></a>`` as mdBook and Pandoc books use. Each becomes a
    target, so that links reach it and its id is scoped per chapter as any other."""
    context = _context(state.env)
    for block in state.tokens:
        for index, token in enumerate([block, *(block.children or [])]):
            line = token.meta.get("line")
            if token.type in ("html_block", "html_inline"):
                for _, attributes, offset in _StartTags(token.content).tags:
                    for name, value in attributes:
                        if name == "id" and value:
                            context.anchors.append(Target(value, TargetKind.ANCHOR, "", (line or 0) + offset - 1))
            elif isinstance(anchor_id := token.attrGet("id"), str) and token.nesting >= 0:
                text = _span_text(block.children or [], index) if token.type == "span_open" else ""
                context.anchors.append(Target(anchor_id, TargetKind.ANCHOR, text, line or 0))


def _span_text(children: Sequence[Token], start: int) -> str:
    """The plain text of the span opened by ``children[start - 1]``, up to its closing."""
    depth, parts = 0, []
    for child in children[start:]:
        depth += child.nesting
        if depth < 0:
            break
        if child.type in _TEXT_TOKENS:
            parts.append(child.content)
    return "".join(parts)


def _kept_anchors(context: _Context, body: str, footnotes: tuple[Footnote, ...]) -> list[Target]:
    """The anchors the sanitizer kept that are not targets already: as many of each id as the
    HTML has beyond its targets (an id twice in a chapter is then reported as any other)."""
    written = Counter(found[1] for found in ELEMENT_ID.findall(body + "".join(note.html for note in footnotes)))
    targets = {(target.id, target.line) for target in context.targets}
    written.subtract(target.id for target in context.targets)
    kept = []
    for anchor in context.anchors:
        if (anchor.id, anchor.line) not in targets and written[anchor.id] > 0:
            written[anchor.id] -= 1
            kept.append(anchor)
    return kept


def _block_error(env: EnvType, token: Token, message: str) -> None:
    """An error at a block token's line, before the line numbers pass has run."""
    context = _context(env)
    context.error(context.file_line(token.map[0] if token.map else None), message)


def _undefined_footnotes_rule(state: StateCore) -> None:
    """``[^label]`` left as text is a reference to a footnote that is not defined. Looked for
    before escapes are joined into the text around them: ``\\[^label]`` is what an author
    writes to mean the characters themselves."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        run: list[Token] = []  # text tokens side by side
        for child in [*block.children, None]:
            if child is not None and child.type == "text":
                run.append(child)
            elif run:
                if undefined := UNDEFINED_FOOTNOTE.search("".join(token.content for token in run)):
                    message = f'footnote "[^{undefined.group(1)}]" is not defined'
                    _context(state.env).error(run[0].meta.get("line"), message)
                run = []


# Inline tokens a line break looks through for the character it stands next to.
_MARKUP_AROUND_TEXT = {
    "em_open", "em_close", "strong_open", "strong_close", "s_open", "s_close",
    "link_open", "link_close", "footnote_ref", "html_inline",
}  # fmt: skip
_TEXT_TOKENS = {"text", "text_special", "code_inline", "ruby"}
_ZERO_WIDTH_SPACE = "\u200b"


def _east_asian_line_breaks_rule(state: StateCore) -> None:
    """A line break inside a paragraph between two East Asian wide characters is removed, as
    CSS Text 3 removes such a segment break (Pandoc's ``east_asian_line_breaks``): Japanese is
    commonly written one sentence per line, and a space there would print. Elsewhere it stays
    a space, Hangul included (Korean separates words with spaces)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children = block.children
        block.children = [
            child
            for index, child in enumerate(children)
            if child.type != "softbreak"
            or not _joined_across_line_break(
                _edge_character(reversed(children[:index]), -1), _edge_character(children[index + 1 :], 0)
            )
        ]


def _edge_character(tokens: Iterable[Token], end: int) -> str:
    """The first (``end`` 0) or last (-1) character of text in ``tokens``, looking through
    emphasis, links and note calls; "" when something else (an image, a break) comes first."""
    for token in tokens:
        if token.type in _TEXT_TOKENS and token.content:
            return token.content[end]
        if token.type not in _MARKUP_AROUND_TEXT and token.type not in _TEXT_TOKENS:
            return ""
    return ""


def _joined_across_line_break(before: str, after: str) -> bool:
    if _ZERO_WIDTH_SPACE in (before, after):
        return True
    return bool(before and after) and all(
        unicodedata.east_asian_width(c) in ("W", "F", "H") and "HANGUL" not in unicodedata.name(c, "")
        for c in (before, after)
    )


_CONTAINERS = {
    f"{kind}_{end}" for kind in ("blockquote", "bullet_list", "ordered_list", "dl") for end in ("open", "close")
}


def _check_limits(tokens: Sequence[Token], context: _Context) -> None:
    """Deep nesting and enormous tables are refused before they reach the layout engine. A
    level is a container: a block quote, a list or a definition list."""
    cells = depth = 0
    for token in tokens:
        if token.type in _CONTAINERS:
            depth += token.nesting
            if depth > MAX_NESTING:
                context.error(token.meta.get("line"), f"blocks are nested more than {MAX_NESTING} levels deep")
                return
        if token.type == "table_open":
            cells, line = 0, token.meta.get("line")
        elif token.type in ("th_open", "td_open"):
            cells += 1
            if cells == MAX_TABLE_CELLS + 1:
                context.error(line, f"table has more than {MAX_TABLE_CELLS:,} cells; split it")


def _drop_non_xml_characters(state: StateCore) -> None:
    """Text, code and attributes (entities already decoded) lose the characters XML forbids."""
    for token in state.tokens:
        for item in (token, *(token.children or [])):
            item.content = _NOT_XML.sub("", item.content)
            for key, value in (item.attrs or {}).items():
                if isinstance(value, str):
                    item.attrs[key] = _NOT_XML.sub("", value)


def _trailing_attributes_rule(state: StateCore) -> None:
    """``## Heading {#id .class}`` and ``Table: caption {#id}`` carry attributes at the end."""
    tokens = state.tokens
    for index, token in enumerate(tokens[:-1]):
        inline = tokens[index + 1]
        if inline.type != "inline":
            continue
        is_caption = token.type == "paragraph_open" and inline.content.startswith("Table:")
        if token.type != "heading_open" and not is_caption:
            continue
        match = TRAILING_ATTRIBUTES.search(inline.content)
        if not match or RUBY.fullmatch(match.group(1)):
            continue
        try:
            _, attributes = parse_attrs(match.group(1))
        except ParseError:
            continue
        inline.content = inline.content[: match.start()]
        for key, value in attributes.items():
            if key == "class" and token.attrGet("class"):
                value = f"{token.attrGet('class')} {value}"
            token.attrSet(key, value)


def _ruby_rule(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] != "{":
        return False
    match = RUBY.match(state.src, state.pos)
    if not match:
        return False
    if not silent:
        base, readings = match.group(1), match.group(2).split("|")
        token = state.push("ruby", "ruby", 0)
        if len(readings) == 1:
            token.meta["pairs"] = [(base, readings[0])]
        elif len(readings) == len(base):
            token.meta["pairs"] = list(zip(base, readings, strict=True))
        else:
            token.meta["pairs"] = [(base, "".join(readings))]
            token.meta["mismatch"] = len(readings)
        token.content = base
    state.pos = match.end()
    return True


def _take_title(
    tokens: list[Token], md: MarkdownIt, context: _Context, env: dict[str, Any]
) -> tuple[str, str, list[Token]]:
    """The chapter's first ``#`` heading (then removed from the body), else the front matter's title."""
    source = context.source
    start = _title_index(tokens)
    if start is not None:
        inline = tokens[start + 1]
        title, title_html = _plain_text(inline), md.renderer.render(inline.children or [], md.options, env)
        if source.title is not None and source.title != title:
            context.diagnostics.warn(
                source.path,
                tokens[start].meta.get("line"),
                f'the "# {title}" title is used; the front matter\'s title "{source.title}" differs',
            )
        return title, _sanitize(title_html, context), tokens[:start] + tokens[start + 3 :]
    if source.title is None:
        context.error(1, 'chapter has no title: add "title:" to its front matter or start it with a "# Title" line')
        return source.id, html.escape(source.id), tokens
    return source.title, html.escape(source.title), tokens


def _title_index(tokens: Sequence[Token]) -> int | None:
    """Where the chapter's ``#`` title opens, if the chapter starts with it: only what prints
    nothing (HTML comments; blank lines and link definitions leave no tokens) may come before."""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            return index
        if token.type != "html_block" or not _HTML_COMMENTS.fullmatch(token.content):
            return None
    return None


def _split_footnotes(tokens: list[Token]) -> tuple[list[Token], list[Token]]:
    try:
        start = next(i for i, t in enumerate(tokens) if t.type == "footnote_block_open")
    except StopIteration:
        return tokens, []
    end = max(i for i, t in enumerate(tokens) if t.type == "footnote_block_close")
    return tokens[:start] + tokens[end + 1 :], tokens[start + 1 : end]


def _lone_image(inline: Token) -> Token | None:
    children = [c for c in inline.children or [] if not (c.type == "text" and not c.content.strip())]
    if len(children) == 1 and children[0].type == "image":
        return children[0]
    return None


def _mark_figures_and_tables(tokens: list[Token]) -> None:
    index = 0
    while index < len(tokens) - 2:
        opening, inline, closing = tokens[index : index + 3]
        if opening.type == "paragraph_open" and inline.type == "inline":
            if (image := _lone_image(inline)) is not None:
                opening.meta["figure"] = image
                closing.meta["figure"] = image
            elif (
                index + 3 < len(tokens)
                and tokens[index + 3].type == "table_open"
                and (caption := TABLE_CAPTION.match(inline.content))
            ):
                table = tokens[index + 3]
                table.meta["caption"] = inline
                table.meta["caption_text"] = caption.group(1)
                for key, value in (opening.attrs or {}).items():
                    table.attrSet(key, value)
                del tokens[index : index + 3]
                continue
        index += 1


def _check_headings(tokens: Sequence[Token], context: _Context) -> None:
    for token in tokens:
        if token.type == "heading_open" and token.tag == "h1":
            context.error(
                token.meta.get("line"),
                "a chapter has one title; use ## for its sections (the title comes from front matter or the first # heading)",
            )


def _render_footnotes(
    note_tokens: list[Token], md: MarkdownIt, env: dict[str, Any], context: _Context
) -> tuple[Footnote, ...]:
    notes: list[Footnote] = []
    current: list[Token] = []
    number = 0
    for token in note_tokens:
        if token.type == "footnote_open":
            current = []
            number = token.meta["id"] + 1
        elif token.type == "footnote_close":
            paragraphs = [t for t in current if t.type == "inline"]
            inner = "<br/>".join(md.renderer.render(p.children or [], md.options, env) for p in paragraphs)
            notes.append(Footnote(id=f"{context.source.id}-fn{number}", number=number, html=_sanitize(inner, context)))
        elif token.type != "footnote_anchor":
            current.append(token)
    return tuple(notes)


def _plain_text(inline: Token) -> str:
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline") or child.type == "ruby":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


# --- render rules -------------------------------------------------------------------------


def _context(env: EnvType) -> _Context:
    context = env["context"]
    assert isinstance(context, _Context)
    return context


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _tool_anchor(text: str, context: _Context) -> str:
    """The id GitHub, mdBook and most Markdown tools give a heading (``## Let bindings`` →
    ``let-bindings``, ``## まとめ`` → ``まとめ``; ``-1``, ``-2`` … for repeats in a file), so
    that links written for them (``README.md#let-bindings``) find it."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    repeats = context.tool_anchors.get(slug, 0)
    context.tool_anchors[slug] = repeats + 1
    return f"{slug}-{repeats}" if repeats else slug


def _heading_levels_rule(state: StateCore) -> None:
    """A heading is at most one level below the heading before it (the chapter's title is level
    1): ``####`` straight after the title is a section, ``##``. Books written for other tools skip
    levels for the size of the type, which leaves a tagged PDF's structure with holes (PDF/UA-1,
    Matterhorn 14-003) and the contents with entries under nothing."""
    previous, tag = 1, "h1"
    for token in state.tokens:
        if token.type == "heading_open":
            previous = min(int(token.tag[1]), previous + 1)
            tag = token.tag = f"h{previous}"
        elif token.type == "heading_close":
            token.tag = tag


def _render_heading_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token, inline = tokens[idx], tokens[idx + 1]
    context = _context(env)
    level = int(token.tag[1])
    classes = str(token.attrGet("class") or "").split()
    numbered = "unnumbered" not in classes and context.source.matter is Matter.BODY and level <= 3
    context.section_count += 1
    context.paragraph_count = 0
    heading_id = str(token.attrGet("id") or "")
    alias = ""
    if not heading_id:
        slug = _slug(_plain_text(inline))
        heading_id = f"{context.source.id}-{slug or f's{context.section_count}'}"
        if heading_id in context.heading_ids:  # "### Example" twice in a chapter: the second is another id
            heading_id = f"{heading_id}-{context.section_count}"
        token.attrSet("id", heading_id)
        alias = _tool_anchor(_plain_text(inline), context)
    elif not ID_PATTERN.match(heading_id):
        context.error(
            token.meta.get("line"),
            f'id "{heading_id}" must start with a letter and use only letters, digits, "-" or "_"',
        )
    text = _plain_text(inline)
    env["section"] = heading_id  # index marks note the section they are in
    inner = self.renderInline(inline.children or [], options, env)
    context.heading_ids.add(heading_id)
    context.headings.append(Heading(heading_id, level, _sanitize(inner, context), text, numbered))
    context.targets.append(
        Target(heading_id, TargetKind.SECTION, text, token.meta.get("line", 0), level, numbered, alias)
    )
    slot = SLOT.format(heading_id) if numbered else ""
    return f"<{token.tag}{self.renderAttrs(token)}>{slot}"


def _render_paragraph_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    image = token.meta.get("figure")
    context = _context(env)
    if image is None:
        if not token.hidden and not token.attrGet("id"):
            # Every paragraph is an anchor, so printed page starts can be found again in the EPUB.
            # Numbered within its section: a paragraph added or taken out leaves the ids of the
            # later sections' as they were, and their pages are taken from the last layout
            # (see report.render.resume: a page keeps the ids its boxes were laid out with).
            context.paragraph_count += 1
            section = f"-s{context.section_count}" if context.section_count else ""
            token.attrSet("id", f"{context.source.id}{section}-p{context.paragraph_count}")
        return str(self.renderToken(tokens, idx, options, env))
    context.figure_count += 1
    figure_id = str(image.attrGet("id") or f"{context.source.id}-fig{context.figure_count}")
    image.attrs.pop("id", None)
    caption = str(image.attrGet("title") or image.content or "")
    context.targets.append(Target(figure_id, TargetKind.FIGURE, caption, image.meta.get("line", 0)))
    classes = " ".join(filter(None, ["figure", str(token.attrGet("class") or "")]))
    image.meta["caption"] = f"<figcaption>{SLOT.format(figure_id)}{html.escape(caption)}</figcaption>"
    return f'<figure id="{html.escape(figure_id)}" class="{html.escape(classes)}">'


def _render_paragraph_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    image = tokens[idx].meta.get("figure")
    if image is None:
        return str(self.renderToken(tokens, idx, options, env))
    return f"{image.meta['caption']}</figure>\n"


def _render_image(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    context = _context(env)
    line = token.meta.get("line")
    alt = self.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    # A figure's image (the paragraph opened it as one) may bring a block: a chart's data table.
    return _image_html(src, alt, context, lambda message: context.error(line, message), "caption" in token.meta)


def _image_html(src: str, alt: str, context: _Context, problem: Callable[[str], None], figure: bool = False) -> str:
    """An image file of the report (or a remote image's copy in the cache), checked (place,
    format, size) and recorded: an ``<img>``, or a slot for its inlined SVG; a Vega-Lite spec
    (``.vl.json``) is a chart, with its data table when it is a ``figure``. On a problem,
    ``problem`` is told and the image is left out."""
    if is_remote(src):
        path = _remote_image(src, context, problem)
    else:
        path = _resolve_local_path(src, context, None, "image", problem)
    if path is None:
        return ""
    if path.name.lower().endswith(CHART_SUFFIX):
        context.includes.append(path)
        try:
            spec = included_text(path, src, None)
        except CodeError as error:
            problem(str(error).replace("included file", "chart"))
            return ""
        return _chart_html(spec, alt, context, problem, with_data=figure)
    if path.suffix.lower() not in IMAGE_TYPES:
        problem(f'image "{src}" has an unsupported format (use {", ".join(sorted(IMAGE_TYPES))})')
        return ""
    if image_error := image_problem(path):
        problem(f'image "{src}" {image_error}')
        return ""
    context.images.append(path)
    if path.suffix.lower() == ".svg":
        try:
            prefix = f"{context.source.id}-svg{len(context.svgs) + 1}-"
            context.svgs.append(sanitize_svg(path.read_bytes(), alt, id_prefix=prefix))
        except SvgError as error:
            problem(f'image "{src}": {error}')
            return ""
        return SVG_SLOT.format(len(context.svgs) - 1)
    relative = path.relative_to(context.root).as_posix()
    return f'<img src="{html.escape(relative)}" alt="{html.escape(alt)}"/>'


def _remote_image(url: str, context: _Context, problem: Callable[[str], None]) -> Path | None:
    """A remote image's copy in the cache (downloaded if [fetch] allows it), checked as a local
    image is."""
    try:
        return remote_image(url, context.root, context.fetch_allow)
    except RemoteImageError as error:
        problem(str(error))
        return None


def _resolve_local_path(
    src: str, context: _Context, line: int | None, what: str, problem: Callable[[str], None] | None = None
) -> Path | None:
    """The file of the report ``src`` names, else None after an error at ``line`` (or after
    telling ``problem``)."""
    report = problem or (lambda message: context.error(line, message))
    path = _path_in_report(src, context, what, report)
    if path is not None and not path.is_file():
        report(f'{what} "{src}" does not exist')
        return None
    return path


def _path_in_report(src: str, context: _Context, what: str, report: Callable[[str], None]) -> Path | None:
    """Where ``src`` points inside the report folder (the file need not exist), else None after
    telling ``report`` why it may not be used."""
    if re.match(r"^[a-zA-Z][\w+.-]*:", src) or src.startswith("//"):
        report(f'{what} "{src}" is not a file of the report (remote and absolute URLs are not allowed)')
        return None
    if src.startswith("/"):
        report(f'{what} "{src}" is an absolute path; write it relative to the chapter file')
        return None
    path = (context.source.path.parent / src).resolve()
    if not path.is_relative_to(context.root):
        report(f'{what} "{src}" is outside the report folder')
        return None
    return path


def _render_raw_html(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """Raw HTML as written, but an ``<img>`` of a file of the report is checked and kept as a
    Markdown image is (any other is dropped); what the sanitiser drops is named in a warning."""
    token = tokens[idx]
    context = _context(env)
    line = token.meta.get("line", context.source.first_line)
    _warn_about_dropped_html(token.content, context, line)

    def image(match: re.Match[str]) -> str:
        parsed = _StartTags(match.group(0)).tags
        if not parsed:
            return match.group(0)  # not a tag to a browser either: the sanitiser escapes it
        attributes = {name: value or "" for name, value in parsed[0][1]}
        tag_line = line + token.content.count("\n", 0, match.start())
        src, alt = attributes.get("src", ""), attributes.get("alt", "")

        def dropped(message: str) -> None:
            context.warn(tag_line, f"raw HTML <img> is removed: {message}")

        if not src:
            dropped("it has no src")
            return ""
        kept = _image_html(src, alt, context, dropped)
        sizes = "".join(
            f' {name}="{html.escape(attributes[name])}"' for name in ("width", "height") if name in attributes
        )
        return kept.replace("<img ", f"<img{sizes} ", 1)

    return _RAW_IMAGE.sub(image, token.content)


def _render_link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    context = _context(env)
    is_id = href.startswith("#") and len(href) > 1
    # A link in a heading is rendered twice (the heading, the contents): the second time its
    # file link is already taken.
    is_taken = href.startswith(_FILE_LINK_START)
    is_file = not is_taken and not href.startswith("#") and not re.match(r"^[a-zA-Z][\w+.-]*:", href)
    is_empty = idx + 1 < len(tokens) and tokens[idx + 1].type == "link_close"
    if is_file:
        _take_file_link(token, context)
    elif not href.startswith("#") and not is_taken and not _WEB_ADDRESS.match(href):
        context.warn(token.meta.get("line"), f'link "{href}" is not a web or mail address: printed as its text')
    elif is_id:
        # markdown-it percent-encodes what is not ASCII (#まとめ → #%E3%81%BE…): ids are text.
        token.attrSet("href", "#" + unquote(href[1:]))
        context.references.append(CrossReference(unquote(href[1:]), token.meta.get("line", 0), not is_empty))
    if (is_file or is_id) and is_empty:
        token.attrSet("class", " ".join(filter(None, ["xref", str(token.attrGet("class") or "")])))
    return str(self.renderToken(tokens, idx, options, env))


def _take_file_link(token: Token, context: _Context) -> None:
    """A link to a file of the report (``../variables/README.md#let``): kept for the resolve
    stage, which knows which files are chapters, behind a placeholder ``href``."""
    line = token.meta.get("line", 0)
    href = str(token.attrGet("href") or "")
    path, _, fragment = href.partition("#")
    if path.startswith("/") and not path.startswith("//"):
        # A site's own address (Docusaurus, MkDocs: "/reference/…"): nothing of the report's.
        context.diagnostics.warn(
            context.source.path, line, f'link "{unquote(href)}" is an address on a web site: printed as its text'
        )
        token.attrSet("href", "")
        return
    target = _path_in_report(
        unquote(path.partition("?")[0]), context, "link", lambda message: context.error(line, message)
    )
    if target is not None:
        context.links.append(FileLink(target, unquote(fragment), unquote(href), line))
    token.attrSet("href", FILE_LINK.format(len(context.links) - 1) if target is not None else "")


def _render_ruby(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    if count := token.meta.get("mismatch"):
        _context(env).error(
            token.meta.get("line"),
            f'ruby "{{{token.content}|…}}" has {count} readings for {len(token.content)} characters: '
            "give one reading per character, or one reading for the whole word",
        )
    # Per-character readings become adjacent <ruby> elements: the same meaning, and
    # each reading stays over its own character in engines without ruby layout.
    return "".join(
        f"<ruby>{html.escape(base)}<rp>(</rp><rt>{html.escape(reading)}</rt><rp>)</rp></ruby>"
        for base, reading in tokens[idx].meta["pairs"]
    )


def _render_footnote_ref(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    meta = tokens[idx].meta
    context = _context(env)
    number = meta["id"] + 1
    note_id = f"{context.source.id}-fn{number}"
    ref_id = f"{context.source.id}-fnref{number}" + (f"-{meta['subId'] + 1}" if meta.get("subId") else "")
    return f'<a class="fnref" id="{ref_id}" href="#{note_id}" role="doc-noteref">{number}</a>'


def _render_text(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return html.escape(tokens[idx].content, quote=False)


def _render_table_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    caption_inline = token.meta.get("caption")
    opening = str(self.renderToken(tokens, idx, options, env))
    if caption_inline is None:
        return opening
    context = _context(env)
    context.table_count += 1
    table_id = str(token.attrGet("id") or f"{context.source.id}-tbl{context.table_count}")
    if not token.attrGet("id"):
        token.attrSet("id", table_id)
        opening = str(self.renderToken(tokens, idx, options, env))
    caption = self.renderInline(caption_inline.children or [], options, env).removeprefix("Table:").strip()
    context.targets.append(
        Target(table_id, TargetKind.TABLE, token.meta["caption_text"], caption_inline.meta.get("line", 0))
    )
    return f"{opening}<caption>{SLOT.format(table_id)}{caption}</caption>\n"


class _Reported(CodeError):
    """A problem already reported where it was found."""


def _render_code_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """A fenced or indented code block: highlighted lines in a box (see report.code), and a
    numbered listing (リスト1) when it has a caption or an id."""
    token = tokens[idx]
    context = _context(env)
    line = token.meta.get("line")

    def read(src: str, lines: Selection) -> str:
        path = _resolve_local_path(src, context, line, "included file")
        if path is None:
            raise _Reported()
        context.includes.append(path)
        return included_text(path, src, lines)

    try:
        fence = read_fence(token.info, dict(token.attrs))
        if fence.language == "vega-lite":
            return _chart_figure(token.content, fence, line, context)
        code = expand_includes(token.content, read)
        if fence.include is not None:
            if code.strip():
                raise CodeError(f'code block has include="{fence.include}" and code of its own: keep one')
            code = read(fence.include, line_range(fence.lines) if fence.lines else None)
        elif fence.lines is not None:
            raise CodeError(f'lines="{fence.lines}" needs include="path" on the same code block')
        if fence.language == "rust":
            code = rustdoc_shown(code)
    except CodeError as error:
        if not isinstance(error, _Reported):
            context.error(line, str(error))
        return ""
    language = f' class="language-{html.escape(fence.language)}"' if fence.language else ""
    code_html = "".join(
        f'<span class="line">{text}\n</span>' for text in highlight(code, fence.language, fence.include)
    )
    block = f'<pre class="code"><code{language}>{code_html}</code></pre>\n'
    if fence.id is None and fence.caption is None:
        return block
    context.listing_count += 1
    listing_id = fence.id or f"{context.source.id}-lst{context.listing_count}"
    if not ID_PATTERN.match(listing_id):
        context.error(line, f'id "{listing_id}" must start with a letter and use only letters, digits, "-" or "_"')
    caption = fence.caption or ""
    context.targets.append(
        Target(listing_id, TargetKind.LISTING, caption, line or 0, alias=token.meta.get("alias", ""))
    )
    classes = " ".join(["listing", *fence.classes])
    figcaption = f"<figcaption>{SLOT.format(listing_id)}{html.escape(caption)}</figcaption>"
    return f'<figure id="{html.escape(listing_id)}" class="{html.escape(classes)}">{figcaption}\n{block}</figure>\n'


def _chart_figure(spec: str, fence: Fence, line: int | None, context: _Context) -> str:
    """A ``vega-lite`` block: a numbered figure of the chart (see :func:`_chart_html`)."""
    context.figure_count += 1
    figure_id = fence.id or f"{context.source.id}-fig{context.figure_count}"
    caption = fence.caption or ""
    drawn = _chart_html(spec, fence.alt or caption, context, lambda message: context.error(line, message))
    if not drawn:
        return ""
    if not ID_PATTERN.match(figure_id):
        context.error(line, f'id "{figure_id}" must start with a letter and use only letters, digits, "-" or "_"')
    context.targets.append(Target(figure_id, TargetKind.FIGURE, caption, line or 0))
    classes = " ".join(["figure", "chart", *fence.classes])
    figcaption = f"<figcaption>{SLOT.format(figure_id)}{html.escape(caption)}</figcaption>"
    return f'<figure id="{html.escape(figure_id)}" class="{html.escape(classes)}">{drawn}{figcaption}</figure>\n'


def _chart_html(spec: str, alt: str, context: _Context, problem: Callable[[str], None], with_data: bool = True) -> str:
    """A Vega-Lite chart inlined as SVG figures are, with its data as a table the EPUB shows
    behind ``<details>`` (print hides it); data files are paths relative to the chapter, as in
    a web page that embeds the spec. On a problem, ``problem`` is told and "" returned."""

    def read_data(url: str) -> str:
        path = _resolve_local_path(url, context, None, "chart data", problem)
        if path is None:
            raise _ChartReported()
        context.includes.append(path)  # the parse cache and the build record watch it
        try:
            return included_text(path, url, None)
        except CodeError as error:
            raise ChartError(str(error).replace("included file", "chart data")) from None

    try:
        drawn = chart(spec, read_data)
        prefix = f"{context.source.id}-svg{len(context.svgs) + 1}-"
        context.svgs.append(sanitize_svg(drawn.svg.encode(), alt, id_prefix=prefix))
    except (ChartError, SvgError) as error:
        if not isinstance(error, _ChartReported):
            problem(f"chart: {error}")
        return ""
    summary = f"<summary>{WORD_SLOT.format('chart-data')}</summary>"
    table = drawn.table_html()
    data = f'<div class="chart-data"><details>{summary}{table}</details></div>' if drawn.rows and with_data else ""
    return SVG_SLOT.format(len(context.svgs) - 1) + data


class _ChartReported(ChartError):
    """A problem with a chart's data file, already reported where it was found."""


def _alternatives(print_markup: str, epub_markup: str, context: _Context) -> str:
    """Markup made by the builder, one for print and one for the EPUB, behind slots that
    sanitising leaves alone (each format drops the other's: see model.PRINT_ONLY_SLOT)."""
    context.svgs.extend((print_markup, epub_markup))
    count = len(context.svgs)
    return (
        f'<span class="print-only">{SVG_SLOT.format(count - 2)}</span>'
        f'<span class="epub-only">{SVG_SLOT.format(count - 1)}</span>'
    )


def _math_html(tex: str, display: bool, line: int | None, context: _Context) -> str:
    """A formula for both formats, or nothing after an error at ``line``."""
    try:
        made = formula(tex, display)
        prefix = f"{context.source.id}-math{len(context.svgs) + 1}-"
        drawn = sanitize_svg(made.svg.encode(), tex, id_prefix=prefix)
    except (MathError, SvgError) as error:
        context.error(line, f"math {error}")
        return ""
    return _alternatives(drawn, made.mathml, context)


def _render_math_inline(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    display = token.type == "math_inline_double"
    formula_html = _math_html(token.content.strip(), display, token.meta.get("line"), _context(env))
    return f'<span class="math {"display" if display else "inline"}">{formula_html}</span>'


def _render_math_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Display math; with an id (``$$ {#eq-growth}``) a numbered equation, 式1 / Equation 1."""
    token = tokens[idx]
    context = _context(env)
    line = token.meta.get("line")
    formula_html = f'<div class="math display">{_math_html(token.content, True, line, context)}</div>'
    equation_id = str(token.attrGet("id") or "")
    if not equation_id:
        return formula_html + "\n"
    if not ID_PATTERN.match(equation_id):
        context.error(line, f'id "{equation_id}" must start with a letter and use only letters, digits, "-" or "_"')
    context.targets.append(Target(equation_id, TargetKind.EQUATION, token.content, line or 0))
    number = f'<span class="equation-number">{SLOT.format(equation_id)}</span>'
    return f'<div id="{html.escape(equation_id)}" class="equation">{formula_html}{number}</div>\n'


_RENDER_RULES = {
    "math_inline": _render_math_inline,
    "math_inline_double": _render_math_inline,
    "math_block": _render_math_block,
    "fence": _render_code_block,
    "code_block": _render_code_block,
    "heading_open": _render_heading_open,
    "paragraph_open": _render_paragraph_open,
    "paragraph_close": _render_paragraph_close,
    "image": _render_image,
    "link_open": _render_link_open,
    "ruby": _render_ruby,
    "footnote_ref": _render_footnote_ref,
    "text": _render_text,
    "html_block": _render_raw_html,
    "html_inline": _render_raw_html,
    "table_open": _render_table_open,
}
