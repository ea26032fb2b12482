"""Citations: Pandoc's ``[@key, p. 12]``, ``[see @a; @b]`` and ``@key``.

The parse stage finds citations (:func:`citations_plugin`) and leaves a slot for each; the
resolve stage has them formatted (:func:`cite`, with :mod:`report.bibliography` when the report
names a bibliography) and fills the slots with links to the entries.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from report.cache import Cache
from report.config import Config
from report.errors import Diagnostics
from report.model import Citation, CiteItem

# A parse-stage placeholder (Private Use Area, like the parser's other slots): the n-th citation.
CITE_SLOT = "\ue000cite-slot\ue001{}\ue002"
FILLED_SLOT = re.compile(r'<span class="cite-slot" title="(\d+)"></span>')
# Pandoc's citation keys: a letter, digit or _, then also :.#$%&-+?<>~/ inside. ASCII only,
# unlike Pandoc's: Japanese text runs on after a key with no space (@yamada2020によれば).
_KEY = r"[A-Za-z0-9_](?:[A-Za-z0-9_:.#$%&+?<>~/-]*[A-Za-z0-9_])?"
_ITEM = re.compile(rf"^(?P<prefix>(?:.*\s)?)(?P<minus>-?)@(?P<key>{_KEY})(?P<suffix>.*)$", re.DOTALL)
_NARRATIVE = re.compile(rf"@(?P<key>{_KEY})(?:[ \t]\[(?P<suffix>[^\[\]@]*)\])?")
# ``, p. 12`` → page 12: Pandoc's locator abbreviations (and a bare number means a page).
_LOCATOR = re.compile(r"^,?\s*(?:(?P<term>[A-Za-z§¶]+)\.?\s*)?(?P<value>[0-9IVXLCivxlc][\w–-]*)(?P<rest>.*)$")
_LOCATOR_TERMS = {
    "p": "page", "pp": "page", "page": "page", "pages": "page", "chap": "chapter", "ch": "chapter",
    "chapter": "chapter", "sec": "section", "section": "section", "§": "section", "para": "paragraph",
    "¶": "paragraph", "fig": "figure", "figure": "figure", "vol": "volume", "vols": "volume", "no": "issue",
    "n": "note", "note": "note", "l": "line", "line": "line", "col": "column", "pt": "part", "part": "part",
}  # fmt: skip


# --- parse: finding citations ---------------------------------------------------------------


def citations_plugin(md: MarkdownIt) -> None:
    md.inline.ruler.before("link", "citation", _bracketed_rule)
    md.inline.ruler.before("text", "narrative_citation", _narrative_rule)
    md.add_render_rule("citation", _render_citation)


def parsed_citations(env: EnvType) -> tuple[Citation, ...]:
    """The citations a chapter's render met, in the order of their slots."""
    return tuple(env.get("citations", ()))


def _bracketed_rule(state: StateInline, silent: bool) -> bool:
    """``[@a]``, ``[see @a, p. 3; @b]``, ``[-@a]`` (the year alone)."""
    if state.src[state.pos] != "[" or state.linkLevel:
        return False
    end = state.src.find("]", state.pos + 1)
    if end == -1 or "[" in state.src[state.pos + 1 : end] or state.src[end + 1 : end + 2] in ("(", "["):
        return False
    parts = state.src[state.pos + 1 : end].split(";")
    matches = [_ITEM.match(part.strip()) for part in parts]
    if not all(matches):
        return False
    if not silent:
        items = tuple(_item(m["key"], m["prefix"].strip(), m["suffix"]) for m in matches if m is not None)
        _push(state, Citation(items, narrative=False, line=0, text=state.src[state.pos : end + 1]))
    state.pos = end + 1
    return True


def _narrative_rule(state: StateInline, silent: bool) -> bool:
    """``@key`` in the sentence (not in an e-mail address), with an optional ``[p. 3]`` after.
    Japanese writes no space before it (「は@key」): only an ASCII letter or digit before the
    ``@`` makes an address."""
    before = state.src[state.pos - 1] if state.pos > 0 else " "
    if state.src[state.pos] != "@" or (before.isascii() and before.isalnum()) or state.linkLevel:
        return False  # an e-mail address, or a link's text (a link may not hold another)
    match = _NARRATIVE.match(state.src, state.pos)
    if not match:
        return False
    if not silent:
        item = _item(match["key"], "", match["suffix"] or "")
        _push(state, Citation((item,), narrative=True, line=0, text=match.group(0)))
    state.pos = match.end()
    return True


def _item(key: str, prefix: str, suffix: str) -> CiteItem:
    suffix = suffix.strip()
    if (match := _LOCATOR.match(suffix)) is not None:
        term = match["term"]
        label = "page" if term is None else _LOCATOR_TERMS.get(term.lower())
        if label is not None:
            return CiteItem(key, prefix, match["rest"].strip().removeprefix(",").strip(), label, match["value"])
    return CiteItem(key, prefix, suffix.removeprefix(",").strip())


def _push(state: StateInline, citation: Citation) -> None:
    token = state.push("citation", "", 0)
    token.meta["citation"] = citation
    token.content = citation.text


def _render_citation(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    found: list[Citation] = env.setdefault("citations", [])
    citation = token.meta["citation"]
    found.append(Citation(citation.items, citation.narrative, token.meta.get("line", 0), citation.text))
    return CITE_SLOT.format(len(found) - 1)


# --- resolve: the bibliography and the formatted citations ----------------------------------


@dataclass(frozen=True)
class Entry:
    key: str  # as written in the bibliography
    id: str  # the HTML id of its entry in the reference list
    html: str


@dataclass(frozen=True)
class Cited:
    """What the resolve stage puts in the book: each citation's HTML by (chapter id, slot
    number), and the reference list."""

    citations: Mapping[tuple[str, int], str]
    entries: tuple[Entry, ...]


def cite(
    config: Config,
    citations: Iterable[tuple[str, Path, Citation, int]],
    diagnostics: Diagnostics,
    cache: Cache | None = None,
) -> Cited:
    """Format ``(chapter id, chapter file, citation, slot)`` in reading order (with a ``cache``,
    what earlier builds formatted is taken from it); unknown keys are errors at the citation's
    line. citeproc-py is loaded only for a report with a bibliography."""
    citations = list(citations)
    if config.bibliography is None:
        for _, path, citation, _ in citations:
            if not citation.narrative:
                diagnostics.error(
                    path, citation.line, f"citation {citation.text} needs a bibliography: name it in report.toml"
                )
        return Cited({(chapter, slot): html.escape(c.text) for chapter, _, c, slot in citations if c.narrative}, ())
    from report.bibliography import format_citations

    return format_citations(config, config.bibliography, citations, diagnostics, cache)
