"""The bibliography, read and formatted by citeproc-py (loaded only for reports that cite).

The report's bibliography (CSL-JSON, CSL-YAML or BibTeX) is read, citeproc-py formats every
citation and the reference list with a CSL style (the report's ``csl``, else the builder's own
for the language, ``report/styles/csl/``), and each cited work becomes a link to its entry.

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
from collections.abc import Mapping, Sequence
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

from report.cache import Cache, code_fingerprint, json_digest
from report.cite import Cited, Entry
from report.config import Config
from report.errors import Diagnostics
from report.i18n import is_cjk, is_traditional_chinese
from report.index import sort_key
from report.load import YAML_LOADER
from report.model import Citation, CiteItem

CSL = "{http://purl.org/net/xbiblio/csl}"
CSL_DIR = Path(__file__).resolve().parent / "styles" / "csl"
_CJK_CHARACTER = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_NAME_FIELDS = ("author", "editor", "translator", "container_author", "collection_editor")


@dataclass(frozen=True)
class _Source:
    """The bibliography read twice over for citeproc-py: names for citations (family names of
    CJK names) and for the reference list (CJK names whole), and each entry's sort reading."""

    for_citations: dict[str, Reference]
    for_list: dict[str, Reference]
    keys: Mapping[str, str]  # citeproc's lower-cased key → the key as written
    readings: Mapping[str, str]


def format_citations(
    config: Config,
    path: Path,
    citations: list[tuple[str, Path, Citation, int]],
    diagnostics: Diagnostics,
    cache: Cache | None = None,
) -> Cited:
    """Every citation formatted, and the works cited listed, from the bibliography at ``path``;
    with a ``cache``, each citation formatted once for the same bibliography, style and works
    cited (citeproc-py took 2 ms a citation: 3 s of every build of a 500-page report)."""
    source = _read_source(path, diagnostics)
    if source is None:
        return Cited({}, ())
    known = []
    for _, chapter_path, citation, _ in citations:
        unknown = [item.key for item in citation.items if item.key.lower() not in source.keys]
        for key in unknown:
            name = path.relative_to(config.root).as_posix()
            diagnostics.error(chapter_path, citation.line, f'citation key "@{key}" is not in the bibliography {name}')
        if not unknown:
            known.append(citation)
    return _format(config, source, citations, known, _Formatted(cache, config, path))


def _format(
    config: Config,
    source: _Source,
    citations: list[tuple[str, Path, Citation, int]],
    known: list[Citation],
    formatted_before: _Formatted,
) -> Cited:
    """The citations and the reference list as an earlier build formatted them, when it
    formatted every one of them (the styles are then not even read); else by citeproc-py."""
    cited_keys = list(dict.fromkeys(item.key.lower() for citation in known for item in citation.items))
    memo, entries = formatted_before.load(cited_keys)
    signatures = {id(citation): _signature(citation) for citation in known}
    if entries is None or any(signature not in memo for signature in signatures.values()):
        memo, entries, by_position = _format_with_citeproc(config, source, known, memo, signatures)
        if not by_position:
            formatted_before.store(memo, entries)
    formatted = {
        (chapter, slot): memo[signatures[id(citation)]]
        for chapter, _, citation, slot in citations
        if id(citation) in signatures
    }
    return Cited(formatted, entries)


def _format_with_citeproc(
    config: Config, source: _Source, known: list[Citation], memo: dict[str, str], signatures: dict[int, str]
) -> tuple[dict[str, str], tuple[Entry, ...], bool]:
    """Each citation not in ``memo`` (by its signature in ``signatures``) formatted, and the works cited listed; and whether the
    style formats a citation by its position (``ibid.``, a first citation in full: its text
    then depends on the citations before it, and is never taken from an earlier build)."""
    style = _style(config)
    by_position = any("position" in element.attrib for element in style.root.iter())
    memo = {} if by_position else dict(memo)
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
    if style.root.citation.get("disambiguate-add-year-suffix") == "true":
        _add_year_suffixes(style, source, [item.key for item in listed.items])
    ids = {key: _entry_id(source.keys[key]) for key in source.keys}

    def format_one(citation: Citation) -> str:
        if citation.narrative:
            (item,) = citation.items
            return _link(ids[item.key.lower()], narrative.cite_one(item))
        links = [_link(ids[item.key.lower()], in_text.cite_one(item)) for item in citation.items]
        return html.escape(affixes["prefix"]) + html.escape(delimiter).join(links) + html.escape(affixes["suffix"])

    for citation in known:
        signature = signatures[id(citation)]
        if signature not in memo:
            memo[signature] = format_one(citation)
    entries = tuple(
        Entry(source.keys[item.key], ids[item.key], str(text))
        for item, text in zip(listed.items, listed.bibliography(), strict=True)
    )
    return memo, entries, by_position


def _add_year_suffixes(style: CitationStylesStyle, source: _Source, listed_keys: list[str]) -> None:
    """Works whose citations read alike ("Brown 2017" for two books of 2017) get a year suffix
    each, 2017a, 2017b, in the order of the reference list, as the style's
    ``disambiguate-add-year-suffix`` asks (citeproc-py leaves it undone)."""
    same_year: dict[str, list[str]] = {}  # works that may read alike: same first author, same year
    for key in listed_keys:
        same_year.setdefault(_first_author_and_year(source.for_citations[key]), []).append(key)
    candidates = [key for keys in same_year.values() if len(keys) > 1 for key in keys]
    if not candidates:
        return
    probe = _CslBibliography(style, source.for_citations)
    probe.register(CslCitation([CslItem(key) for key in candidates]))
    alike: dict[str, list[str]] = {}
    for key in candidates:
        alike.setdefault(probe.cite_one(CiteItem(key)), []).append(key)
    for keys in (keys for keys in alike.values() if len(keys) > 1):
        for index, key in enumerate(keys):
            suffix = _letters(index)
            source.for_citations[key]["year_suffix"] = suffix
            source.for_list[key]["year_suffix"] = suffix


def _first_author_and_year(reference: Reference) -> str:
    """What works that read alike share (with "et al.", only the first author is printed)."""
    names = reference.get("author") or reference.get("editor") or [{}]
    first = str(names[0].get("family") or names[0].get("literal") or "")
    issued = reference.get("issued")
    return repr((first, issued.get("year") if issued is not None else None))


def _letters(index: int) -> str:
    """a, b, …, z, aa, ab, …: the year suffix of the work ``index`` (from 0) of its group."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return letters


class _Formatted:
    """The citations a report's earlier builds formatted, by what they cite (see
    :func:`_signature`), and the reference list, kept in one cache entry for the bibliography,
    the style and the works cited in their order (a numeric style numbers them by it)."""

    def __init__(self, cache: Cache | None, config: Config, path: Path) -> None:
        self.cache = cache
        self.config = config
        self.path = path
        self.key = ""
        self.before: dict[str, Any] | None = None

    def load(self, cited_keys: Sequence[str]) -> tuple[dict[str, str], tuple[Entry, ...] | None]:
        """The citations formatted before, and the reference list (None if not known)."""
        if self.cache is None:
            return {}, None
        csl = self.config.csl or CSL_DIR
        self.key = json_digest(
            [
                code_fingerprint("report.bibliography"),
                self.config.language,
                str(self.cache.file_digest(self.path)),
                str(self.cache.tree_digest(csl) if csl.is_dir() else self.cache.file_digest(csl)),
                list(cited_keys),
            ]
        )
        self.before = self.cache.load("citations", self.key)
        if self.before is None:
            return {}, None
        try:
            formatted = {str(k): str(v) for k, v in self.before["formatted"].items()}
            entries = tuple(Entry(str(key), str(id_), str(text)) for key, id_, text in self.before["entries"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return {}, None
        return formatted, entries

    def store(self, memo: dict[str, str], entries: tuple[Entry, ...]) -> None:
        value = {"formatted": memo, "entries": [[entry.key, entry.id, entry.html] for entry in entries]}
        if self.cache is not None and self.key and value != self.before:
            self.cache.store("citations", self.key, value)


def _signature(citation: Citation) -> str:
    """What a citation's text is made from (not where it is)."""
    items = tuple((item.key, item.prefix, item.suffix, item.label, item.locator) for item in citation.items)
    return repr((citation.narrative, items))  # (strings and a bool: the same text in every run)


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
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, Loader=YAML_LOADER)
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
