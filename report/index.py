"""The index (索引): terms marked in the text, gathered into a chapter at the end of the book.

A mark is a Pandoc bracketed span of class ``index``::

    [条約]{.index}                              the printed text is the entry
    [金正恩]{.index reading="きむじょんうん"}    its reading sorts it (五十音順)
    [署名]{.index term="条約"}                   an entry other than the printed text
    [新条約]{.index term="条約" sub="新条約"}    a sub-entry under 条約

The parse stage gives each mark an id (and notes the section it is in); the resolve stage
writes the index chapter: entries in gojūon order under kana headings (あ行 … わ行), then
Latin entries under their initial letter. In the PDF each entry lists the pages of its marks,
merged into ranges (the text of a link of class ``page-list``, which :mod:`report.render.pdf`
fills once every part is laid out); in the EPUB each entry links to the sections of its marks
(EPUB Indexes).
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from report.errors import Diagnostics
from report.i18n import words_for
from report.model import IndexMark, Label, ParsedChapter

# Where the EPUB and the print differ: the print lists pages, the EPUB links to sections.
PRINT_ONLY = re.compile(r'<a class="index-pages[ "][^>]*>.*?</a>')
EPUB_ONLY = re.compile(r'<span class="index-places">.*?</span>')
# A term's span, for the EPUB's semantics (EPUB Indexes); the print has its text alone.
_TERM = re.compile(r'<span class="index-term" epub:type="index-term">([^<]*)</span>')
_KANA_ROWS = "あかさたなはまやらわ"  # each row's first kana: あ行 is あ–お, か行 か–ご …
_MARK_ATTRIBUTES = ("reading", "sub", "term")
_HIRAGANA = re.compile("[\u3041-\u3096]")


def index_plugin(md: MarkdownIt) -> None:
    """Marks are attrs' bracketed spans (``attrs_plugin(spans=True)``) of class ``index``."""
    md.core.ruler.after("inline", "index_marks", _index_rule)
    md.add_render_rule("span_open", _render_span_open)


def parsed_marks(env: EnvType) -> tuple[IndexMark, ...]:
    return tuple(env.get("index_marks", ()))


def for_print(chapter_html: str) -> str:
    """A chapter's HTML as printed: the index without its links to sections, and its terms
    without their spans. Each inline element is a box more to lay out: with three in each line,
    the index (laid out again whenever an edit moves the pages it lists) took a third longer."""
    return _TERM.sub(r"\1", EPUB_ONLY.sub("", chapter_html))


def for_epub(chapter_html: str) -> str:
    """A chapter's HTML as in the EPUB: the index without its page lists."""
    return PRINT_ONLY.sub("", chapter_html)


def _index_rule(state: StateCore) -> None:
    for block in state.tokens:
        children = block.children or []
        for position, token in enumerate(children):
            classes = str(token.attrGet("class") or "").split()
            if token.type != "span_open" or "index" not in classes:
                continue
            text = "".join(
                child.content
                for child in itertools.takewhile(lambda t: t.type != "span_close", children[position + 1 :])
            )
            token.meta["index"] = {name: str(token.attrs.pop(name, "") or "") for name in _MARK_ATTRIBUTES}
            token.meta["index"]["text"] = text.strip()
            classes.remove("index")
            token.attrs["class"] = " ".join(["index-mark", *classes])


def _render_span_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    mark = token.meta.get("index")
    if mark is not None:
        marks: list[IndexMark] = env.setdefault("index_marks", [])
        mark_id = f"{env['context'].source.id}-idx{len(marks) + 1}"
        token.attrSet("id", mark_id)
        term = mark["term"] or mark["text"]
        marks.append(
            IndexMark(mark_id, term, mark["reading"], mark["sub"], env.get("section"), token.meta.get("line", 0))
        )
    return str(self.renderToken(tokens, idx, options, env))


# --- resolve: the index chapter -------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    term: str
    sort_key: tuple[int, str, str]
    group: str
    marks: tuple[IndexMark, ...]  # of the term itself
    subs: tuple[tuple[str, tuple[IndexMark, ...]], ...]  # sub-entries, sorted


def index_html(
    language: str,
    parsed: Sequence[ParsedChapter],
    labels: Mapping[str, Label],
    diagnostics: Diagnostics,
) -> str:
    """The index chapter's body, or "" when no term is marked."""
    marks = [(chapter, mark) for chapter in parsed for mark in chapter.index_marks]
    if not marks:
        return ""
    places = {mark.id: _place(chapter, mark, labels) for chapter, mark in marks}
    readings: dict[str, str] = {}
    for _, mark in marks:
        if mark.reading:
            readings.setdefault(mark.term, mark.reading)
    for chapter, mark in marks:
        if mark.term not in readings and not _sortable(mark.term):
            diagnostics.warn(
                chapter.source.path,
                mark.line,
                f'index term "{mark.term}" has no reading: give one, [{mark.term}]{{.index reading="…"}}',
            )
            readings[mark.term] = mark.term
    entries = _entries([mark for _, mark in marks], readings)
    other = words_for(language).index_other
    groups = itertools.groupby(entries, key=lambda entry: entry.group or other)
    return "".join(_group_html(number, name, list(group), places) for number, (name, group) in enumerate(groups, 1))


def _entries(marks: Iterable[IndexMark], readings: Mapping[str, str]) -> list[_Entry]:
    by_term: dict[str, list[IndexMark]] = {}
    for mark in marks:
        by_term.setdefault(mark.term, []).append(mark)
    entries = []
    for term, own in by_term.items():
        reading = readings.get(term, term)
        subs: dict[str, list[IndexMark]] = {}
        for mark in own:
            if mark.sub:
                subs.setdefault(mark.sub, []).append(mark)
        entries.append(
            _Entry(
                term,
                sort_key(reading, term),
                _group(reading),
                tuple(mark for mark in own if not mark.sub),
                tuple(sorted(((s, tuple(m)) for s, m in subs.items()), key=lambda item: sort_key(item[0], item[0]))),
            )
        )
    return sorted(entries, key=lambda entry: entry.sort_key)


def _sortable(term: str) -> bool:
    """A term sorts without a reading when it is kana or Latin."""
    return all(
        _HIRAGANA.match(c) or "\u30a1" <= c <= "\u30fc" or unicodedata.normalize("NFKD", c)[0].isascii() for c in term
    )


def _hiragana(text: str) -> str:
    """Katakana as hiragana, so that both sort together in gojūon order."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def sort_key(reading: str, term: str) -> tuple[int, str, str]:
    """Kana first, in gojūon order (voiced kana with their plain ones: が after か), then
    Latin and the rest by their letters (accented ones with their plain ones: É with E)."""
    kana = _hiragana(reading)
    plain = "".join(c for c in unicodedata.normalize("NFKD", kana) if not unicodedata.combining(c))
    return (0 if _HIRAGANA.match(kana[:1]) else 1), plain.casefold() + "\0" + kana, term


def _group(reading: str) -> str:
    """あ行 … わ行 for kana; the initial letter for Latin; "" (other) for the rest."""
    kana = _hiragana(reading)[:1]
    if _HIRAGANA.match(kana):
        plain = unicodedata.normalize("NFD", kana)[0]
        plain = {"ぁ": "あ", "ぃ": "い", "ぅ": "う", "ぇ": "え", "ぉ": "お", "っ": "つ", "ゃ": "や", "ゅ": "ゆ", "ょ": "よ",
                 "ゎ": "わ", "ゐ": "い", "ゑ": "え", "を": "わ", "ん": "わ", "ゔ": "う"}.get(plain, plain)  # fmt: skip
        row = max(r for r in _KANA_ROWS if r <= plain)
        return f"{row}行"
    initial = unicodedata.normalize("NFKD", reading)[:1].upper()
    return initial if initial.isascii() and initial.isalpha() else ""


def _place(chapter: ParsedChapter, mark: IndexMark, labels: Mapping[str, Label]) -> str:
    """What an EPUB link to a mark says: its section's label (2.1節), else the section's or the
    chapter's title."""
    target = mark.section or chapter.id
    label = labels.get(target)
    if label is not None and label.number:
        return label.reference
    heading = next((h.text for h in chapter.headings if h.id == mark.section), None)
    return heading or chapter.title


def _group_html(number: int, name: str, entries: list[_Entry], places: Mapping[str, str]) -> str:
    heading_id = f"index-group-{number}"
    items = "".join(_entry_html(entry.term, entry.marks, entry.subs, places) for entry in entries)
    return (
        f'<section class="index-group" epub:type="index-group" aria-labelledby="{heading_id}">\n'
        f'<h2 id="{heading_id}" class="index-heading">{html.escape(name)}</h2>\n'
        f'<ul class="index-entries" epub:type="index-entry-list">\n{items}</ul>\n</section>\n'
    )


def _entry_html(
    term: str,
    marks: Sequence[IndexMark],
    subs: Sequence[tuple[str, Sequence[IndexMark]]],
    places: Mapping[str, str],
) -> str:
    locators = ""
    if marks:
        ids = " ".join(mark.id for mark in marks)
        kind = "page-list" if len(marks) > 1 else "page-number"
        # One link per place: a section marked twice is listed once, at its first mark.
        first = {places[mark.id]: mark.id for mark in reversed(marks)}
        links = ", ".join(
            f'<a href="#{mark_id}" epub:type="index-locator">{html.escape(place)}</a>'
            for place, mark_id in sorted(first.items(), key=lambda item: [m.id for m in marks].index(item[1]))
        )
        # The page numbers are filled in when drawn, as the link's own text (not a span in it: see
        # for_print); the link says the term (PDF/UA's /Contents).
        locators = (
            f'<a class="index-pages {kind}" data-page-of="{ids}" href="#{marks[0].id}"'
            f' aria-label="{html.escape(term)}"></a><span class="index-places">{links}</span>'
        )
    children = ""
    if subs:
        inner = "".join(_entry_html(sub, sub_marks, (), places) for sub, sub_marks in subs)
        children = f'\n<ul class="index-entries" epub:type="index-entry-list">\n{inner}</ul>\n'
    return (
        f'<li class="index-entry" epub:type="index-entry"><span class="index-term" epub:type="index-term">'
        f"{html.escape(term)}</span>{locators}{children}</li>\n"
    )
