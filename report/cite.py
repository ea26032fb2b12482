"""Citations and the bibliography: Pandoc's ``[@key, p. 12]``, ``[see @a; @b]`` and ``@key``.

The parse stage finds citations (:func:`citations_plugin`) and leaves a slot for each; the
resolve stage reads the report's bibliography (CSL-JSON, CSL-YAML or BibTeX), has citeproc-py
format every citation and the reference list with a CSL style (the report's ``csl``, else the
builder's own for the language, ``report/styles/csl/``), and fills the slots with links to the
entries.

Two things citeproc-py does not do are done here: names in Chinese characters or kana are
written family name first with no space (``山田太郎``; it writes every name given name first),
and, when the style does not sort its bibliography, the entries are ordered as Japanese
publishers order them: Japanese entries by their ``reading``, then the others by author.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from citeproc import Citation as CslCitation
from citeproc import CitationItem as CslItem
from citeproc import CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source import Locator, Name, Reference
from citeproc.source.bibtex import BibTeX
from citeproc.source.bibtex.bibparse import BibTeXParser
from citeproc.source.json import CiteProcJSON
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from report.config import Config
from report.errors import Diagnostics
from report.i18n import is_cjk, is_traditional_chinese
from report.index import sort_key
from report.model import Citation, CiteItem

CSL = "{http://purl.org/net/xbiblio/csl}"
CSL_DIR = Path(__file__).resolve().parent / "styles" / "csl"
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
_CJK_CHARACTER = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_NAME_FIELDS = ("author", "editor", "translator", "container_author", "collection_editor")


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
    """``@key`` in the sentence (not in an e-mail address), with an optional ``[p. 3]`` after."""
    if state.src[state.pos] != "@" or (state.pos > 0 and state.src[state.pos - 1].isalnum()) or state.linkLevel:
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


@dataclass(frozen=True)
class _Source:
    """The bibliography read twice over for citeproc-py: names for citations (family names of
    CJK names) and for the reference list (CJK names whole), and each entry's sort reading."""

    for_citations: dict[str, Reference]
    for_list: dict[str, Reference]
    keys: Mapping[str, str]  # citeproc's lower-cased key → the key as written
    readings: Mapping[str, str]


def cite(config: Config, citations: Iterable[tuple[str, Path, Citation, int]], diagnostics: Diagnostics) -> Cited:
    """Format ``(chapter id, chapter file, citation, slot)`` in reading order; unknown keys
    are errors at the citation's line."""
    citations = list(citations)
    if config.bibliography is None:
        for _, path, citation, _ in citations:
            if not citation.narrative:
                diagnostics.error(
                    path, citation.line, f"citation {citation.text} needs a bibliography: name it in report.toml"
                )
        return Cited({(chapter, slot): html.escape(c.text) for chapter, _, c, slot in citations if c.narrative}, ())
    source = _read_source(config.bibliography, diagnostics)
    if source is None:
        return Cited({}, ())
    known = []
    for _, path, citation, _ in citations:
        unknown = [item.key for item in citation.items if item.key.lower() not in source.keys]
        for key in unknown:
            name = config.bibliography.relative_to(config.root).as_posix()
            diagnostics.error(path, citation.line, f'citation key "@{key}" is not in the bibliography {name}')
        if not unknown:
            known.append(citation)
    return _format(config, source, citations, known)


def _format(
    config: Config, source: _Source, citations: list[tuple[str, Path, Citation, int]], known: list[Citation]
) -> Cited:
    style = _style(config)
    layout = style.root.citation.find(f"{CSL}layout")
    # Each work is its own link: the style formats one work at a time, and its layout's
    # affixes and delimiter join them here, around and between the links.
    affixes = {name: layout.attrib.pop(name, "") for name in ("prefix", "suffix")}
    delimiter = layout.get("delimiter", "; ")
    narrative_style = CitationStylesStyle(
        str(CSL_DIR / ("narrative-ja.csl" if is_cjk(config.language) else "narrative-en.csl")), validate=False
    )
    in_text = _CslBibliography(style, source.for_citations)
    narrative = _CslBibliography(narrative_style, source.for_citations)
    listed = _CslBibliography(_style(config), source.for_list)
    sorts = listed.style.root.bibliography.find(f"{CSL}sort") is not None
    numeric = style.root.find(f"{CSL}info/{CSL}category[@citation-format='numeric']") is not None
    order = _order(source, known, sorted_by_style=sorts or numeric)
    for bibliography in (in_text, narrative, listed):
        bibliography.register(CslCitation([CslItem(key) for key in order]))
    if sorts:
        listed.sort()
    ids = {key: _entry_id(source.keys[key]) for key in source.keys}
    formatted: dict[tuple[str, int], str] = {}
    known_ids = {id(c) for c in known}
    for chapter, _, citation, slot in citations:
        if id(citation) not in known_ids:
            continue
        if citation.narrative:
            (item,) = citation.items
            link = _link(ids[item.key.lower()], narrative.cite_one(item))
            formatted[(chapter, slot)] = link
            continue
        links = [_link(ids[item.key.lower()], in_text.cite_one(item)) for item in citation.items]
        formatted[(chapter, slot)] = (
            html.escape(affixes["prefix"]) + html.escape(delimiter).join(links) + html.escape(affixes["suffix"])
        )
    entries = tuple(
        Entry(source.keys[item.key], ids[item.key], str(text))
        for item, text in zip(listed.items, listed.bibliography(), strict=True)
    )
    return Cited(formatted, entries)


class _CslBibliography(CitationStylesBibliography):  # type: ignore[misc]
    def __init__(self, style: CitationStylesStyle, source: Mapping[str, Reference]) -> None:
        super().__init__(style, source, formatter.html)

    def cite_one(self, item: CiteItem) -> str:
        options: dict[str, Any] = {}
        if item.prefix:
            options["prefix"] = item.prefix + " "
        if item.suffix:
            options["suffix"] = ", " + item.suffix
        if item.locator:
            options["locator"] = Locator(item.label, item.locator)
        citation = CslCitation([CslItem(item.key, **options)])
        self.register(citation)  # the work is registered already: this only ties the citation to it
        return str(self.cite(citation, lambda _: None))


def _link(entry_id: str, text: str) -> str:
    return f'<a class="citation" href="#{entry_id}" role="doc-biblioref">{text}</a>'


def _entry_id(key: str) -> str:
    return "ref-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)


def _style(config: Config) -> CitationStylesStyle:
    path = config.csl or CSL_DIR / ("ja.csl" if config.language.lower().startswith("ja") else "en.csl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # citeproc-py warns of every CSL feature it does not know
        return CitationStylesStyle(str(path), locale=_csl_locale(config.language), validate=False)


def _csl_locale(language: str) -> str:
    """The CSL locale (terms such as "and", "p.") of the report's language: those citeproc-py has."""
    tag = language.lower()
    if tag.startswith("zh"):
        return "zh-TW" if is_traditional_chinese(tag) else "zh-CN"
    return {"ja": "ja-JP", "ko": "ko-KR"}.get(tag.split("-")[0], "en-US")


def _order(source: _Source, citations: Sequence[Citation], sorted_by_style: bool) -> list[str]:
    """The cited keys (citeproc's lower case), first cited first (numbered styles number them
    so); when the style does not sort its bibliography, Japanese entries by reading (in kana
    order), then the others by author."""
    keys = list(dict.fromkeys(item.key.lower() for citation in citations for item in citation.items))
    if sorted_by_style:
        return keys
    return sorted(keys, key=lambda key: _sort_key(source, key))


def _sort_key(source: _Source, key: str) -> tuple[int, str]:
    """Japanese entries (a reading, or a name or title in CJK characters) first, as the index
    sorts its terms."""
    reference = source.for_list[key]
    reading = source.readings.get(key)
    text = _plain(reference.get("author") or reference.get("editor") or reference.get("title") or "")
    _, order, _ = sort_key(reading or text, text)
    return (0 if reading or _CJK_CHARACTER.search(text) else 1), order


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_plain(name) for name in value)
    if isinstance(value, Name):
        return " ".join(str(part) for part in (value.get("literal"), value.get("family"), value.get("given")) if part)
    return str(value)


# --- reading the bibliography file ----------------------------------------------------------


def _read_source(path: Path, diagnostics: Diagnostics) -> _Source | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # citeproc-py warns of every field it does not use
        if path.suffix.lower() == ".bib":
            return _read_bibtex(path, diagnostics)
        return _read_csl(path, diagnostics)


def _read_csl(path: Path, diagnostics: Diagnostics) -> _Source | None:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        diagnostics.error(path, error.lineno, f"invalid JSON: {error.msg}")
        return None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        diagnostics.error(path, mark.line + 1 if mark else 1, f"invalid YAML: {getattr(error, 'problem', error)}")
        return None
    if isinstance(data, dict) and "references" in data:  # Pandoc's YAML: references: [...]
        data = data["references"]
    if not isinstance(data, list) or not all(isinstance(e, dict) and "id" in e and "type" in e for e in data):
        diagnostics.error(path, 1, "a CSL bibliography is a list of entries, each with an id and a type")
        return None
    readings = {str(entry["id"]).lower(): str(entry.pop("reading")) for entry in data if "reading" in entry}
    keys = {str(entry["id"]).lower(): str(entry["id"]) for entry in data}
    try:
        references = dict(CiteProcJSON(data))
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        diagnostics.error(path, 1, f"a bibliography entry could not be read: {error}")
        return None
    return _source(references, keys, readings)


def _read_bibtex(path: Path, diagnostics: Diagnostics) -> _Source | None:
    try:
        raw = BibTeXParser(str(path), encoding="utf-8")
        references = dict(BibTeX(str(path), encoding="utf-8"))
    except Exception as error:  # citeproc-py's BibTeX parser raises what it meets; the line is lost
        diagnostics.error(path, 1, f"invalid BibTeX: {error}")
        return None
    # BibTeX has no reading field; Japanese BibTeX (jBibTeX) calls it "yomi".
    readings = {
        key.lower(): str(entry.get("reading") or entry.get("yomi"))
        for key, entry in raw.items()
        if entry.get("reading") or entry.get("yomi")
    }
    return _source(references, {key.lower(): key for key in raw}, readings)


def _source(references: dict[str, Reference], keys: Mapping[str, str], readings: Mapping[str, str]) -> _Source:
    def with_names(reference: Reference, whole: bool) -> Reference:
        fields = {name: value for name, value in reference.items() if name not in ("key", "type")}
        for field in _NAME_FIELDS:
            if isinstance(fields.get(field), list):
                fields[field] = [_cjk_name(name, whole) for name in fields[field]]
        return Reference(reference.key, reference.type, **fields)

    return _Source(
        for_citations={key: with_names(ref, whole=False) for key, ref in references.items()},
        for_list={key: with_names(ref, whole=True) for key, ref in references.items()},
        keys=keys,
        readings=readings,
    )


def _cjk_name(name: Name, whole: bool) -> Name:
    """山田 太郎 → ``山田太郎`` (whole) or ``山田`` (the family name alone, for citations)."""
    family, given = str(name.get("family") or ""), str(name.get("given") or "")
    if "literal" in name or not _CJK_CHARACTER.search(family + given):
        return name
    return Name(literal=family + given if whole else family)
