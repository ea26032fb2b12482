"""Callouts: GitHub alerts (``> [!NOTE]``) and Pandoc fenced divs (``::: {.note title="…"}``).

Both become ``<aside class="callout callout-KIND" role="note">`` with a title: the author's
``title="…"``, else the kind's word in the report's language, which only the resolve stage
knows (the parse stage leaves a word slot, :data:`WORD_SLOT`). A fenced div of any other
class is a plain ``<div>`` with its id and classes, as in Pandoc.

markdown-it-py parses the alerts itself (the ``alerts`` option) and mdit-py-plugins' container
plugin the fenced divs; a core rule turns both into the same ``callout`` tokens.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.attrs.parse import ParseError
from mdit_py_plugins.attrs.parse import parse as parse_attrs
from mdit_py_plugins.container import container_plugin

CALLOUT_KINDS = ("note", "tip", "important", "warning", "caution")
# Filled by report.resolve with the kind's word in the report's language (the parse is cached
# without the language). A Private Use Area token, like the parser's other slots.
WORD_SLOT = "\ue000word-slot\ue001{}\ue002"
_BARE_CLASSES = re.compile(r"^[A-Za-z][\w-]*(\s+[A-Za-z][\w-]*)*$")
_DIV = "container_div"

Report = Callable[[EnvType, Token, str], None]  # an error at a token's line


def callouts_plugin(md: MarkdownIt, report: Report) -> None:
    """Alerts and fenced divs; ``report`` is told of a fenced div whose attributes do not parse."""
    md.options["alerts"] = True
    container_plugin(md, "div", validate=lambda params, *_: bool(params.strip()))

    def callouts_rule(state: StateCore) -> None:
        _to_callouts(state.tokens, lambda token, message: report(state.env, token, message))

    md.core.ruler.after("block", "callouts", callouts_rule)
    md.add_render_rule("callout_open", _render_callout_open)
    md.add_render_rule("callout_close", lambda *_: "</aside>\n")
    md.add_render_rule(f"{_DIV}_open", _render_div_open)
    md.add_render_rule(f"{_DIV}_close", lambda *_: "</div>\n")


def _to_callouts(tokens: list[Token], report: Callable[[Token, str], None]) -> None:
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "alert_open":
            # markdown-it's own English title (three tokens) gives way to ours.
            del tokens[index + 1 : index + 4]
            token.type, token.tag = "callout_open", "aside"
            token.meta = {"kind": token.info.lower(), "title": None}
        elif token.type == "alert_close":
            token.type, token.tag = "callout_close", "aside"
        elif token.type == f"{_DIV}_open":
            attributes = _div_attributes(token, report)
            classes = str(attributes.pop("class", "")).split()
            kind = next((c for c in classes if c in CALLOUT_KINDS), None)
            token.attrs = {key: value for key, value in attributes.items() if key == "id"}
            if kind is not None:
                _closing(tokens, index).type = "callout_close"
                token.type, token.tag = "callout_open", "aside"
                token.meta = {"kind": kind, "title": attributes.get("title")}
            elif classes:
                token.attrs["class"] = " ".join(classes)
        index += 1


def _div_attributes(token: Token, report: Callable[[Token, str], None]) -> dict[str, str]:
    """``::: {#id .class key="value"}`` or ``::: class``."""
    params = token.info.strip()
    if _BARE_CLASSES.match(params):
        return {"class": params}
    try:
        end, attributes = parse_attrs(params)
    except ParseError as error:
        report(token, f'fenced div "::: {params}": {error}')
        return {}
    if params[end + 1 :].strip():  # parse gives the index of the closing brace
        report(token, f'fenced div "::: {params}": write its attributes as {{#id .class key="value"}}')
    return {key: str(value) for key, value in attributes.items()}


def _closing(tokens: list[Token], index: int) -> Token:
    depth = 0
    for token in tokens[index:]:
        if token.type == f"{_DIV}_open":
            depth += 1
        elif token.type == f"{_DIV}_close":
            depth -= 1
            if depth == 0:
                return token
    raise AssertionError("the container plugin closes every fenced div")


def _render_callout_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    kind, title = token.meta["kind"], token.meta["title"]
    identifier = f' id="{html.escape(str(token.attrGet("id")))}"' if token.attrGet("id") else ""
    heading = html.escape(title) if title else WORD_SLOT.format(f"callout-{kind}")
    # role="note" is one ARIA allows on <aside>; the title is strong so that the EPUB's bold
    # face holds its characters (the EPUB's fonts are subset by element).
    return (
        f'<aside{identifier} class="callout callout-{kind}" role="note">\n'
        f'<p class="callout-title"><strong>{heading}</strong></p>\n'
    )


def _render_div_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return f"<div{self.renderAttrs(tokens[idx])}>\n"
