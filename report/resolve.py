"""Stage 3 — resolve: number chapters, sections, figures and tables across the whole
book, check every cross-reference and link between chapter files, and fill the slots
the parse stage left.

Ids are scoped per chapter: two chapters may each have a section ``{#summary}``. In
the HTML (one print document) such an id is qualified by its chapter, ``ch--summary``;
an id that only one chapter defines keeps its name. ``[](#id)`` looks in its own
chapter first, then in the whole book."""

from __future__ import annotations

import functools
import html
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from report.cache import Cache
from report.cite import FILLED_SLOT, Cited, Entry, cite
from report.config import Config
from report.errors import Diagnostics
from report.i18n import Words, words_for
from report.index import index_html
from report.model import (
    ELEMENT_ID,
    FILE_LINK_PATTERN,
    LOCAL_HREF,
    Book,
    Chapter,
    Citation,
    CrossReference,
    FileLink,
    Footnote,
    Heading,
    Label,
    Matter,
    ParsedChapter,
    Target,
    TargetKind,
)

_SLOT = re.compile(r'<span class="slot" title="([^"]+)"></span>')
_WORD_SLOT = re.compile(r'<span class="word-slot" title="(callout-[a-z]+|chart-data)"></span>')
_EMPTY_XREF = re.compile(r'(<a href="#([^"]+)" class="xref[^"]*">)(</a>)')
# A Markdown link [text](#id): no other attribute (notes' and citations' links have them).
_ID_LINK_WITH_TEXT = re.compile(r'<a href="#([^"]+)">(.*?)</a>', re.DOTALL)
_T = TypeVar("_T")
_Lined = TypeVar("_Lined", Target, CrossReference, Citation, FileLink)  # a chapter's items that know their line
_FOLDER_PAGES = ("README.md", "readme.md", "index.md", "_index.md")


@dataclass(frozen=True)
class _Definition:
    chapter: ParsedChapter
    target: Target
    html_id: str


@dataclass
class _Ids:
    """Every target of the book: by chapter (``local``, and ``aliases``: the ids other tools give
    headings without ``{#id}``) and by the id as written (``book``)."""

    root: Path
    local: dict[str, dict[str, _Definition]] = field(default_factory=dict)  # chapter id → written id → …
    aliases: dict[str, dict[str, _Definition]] = field(default_factory=dict)  # chapter id → alias → …
    book: dict[str, list[_Definition]] = field(default_factory=dict)  # written id → its definitions

    def in_chapter(self, chapter_id: str, written: str) -> _Definition | None:
        """A chapter's target by its id, else by the id other tools give a heading (its alias)."""
        return self.local[chapter_id].get(written) or self.aliases[chapter_id].get(written)

    def find(self, chapter: ParsedChapter, written: str) -> list[_Definition]:
        """Where ``[](#written)`` in ``chapter`` leads: its own chapter's target, else every
        chapter's (one, none, or more: ambiguous)."""
        own = self.in_chapter(chapter.id, written)
        return [own] if own is not None else self.book.get(written, [])

    def where(self, definition: _Definition) -> str:
        return f"{_relative(definition.chapter.source.path, self.root)}:{definition.target.line}"


def resolve_book(
    config: Config, parsed: tuple[ParsedChapter, ...], diagnostics: Diagnostics, cache: Cache | None = None
) -> Book:
    """The chapters numbered, their references and citations filled in (the citations formatted
    by earlier builds taken from ``cache``)."""
    ids = _collect_ids(config.root, parsed, diagnostics)
    owner = {d.html_id: chapter_id for chapter_id, scope in ids.local.items() for d in scope.values()}
    labels = _number(config, parsed, ids)
    for chapter in parsed:
        for reference in chapter.references:
            found = ids.find(chapter, reference.target)
            if not found and reference.has_text:
                # Books made with other tools link to anchors their plugins make (GitBook's code
                # includes): the text stays, the link goes (see _fill).
                diagnostics.warn(
                    chapter.source.path,
                    reference.line,
                    f'link "#{reference.target}" leads to no id of the book: printed as its text',
                )
            elif not found:
                diagnostics.error(
                    chapter.source.path, reference.line, f'cross-reference to unknown id "#{reference.target}"'
                )
            elif len(found) > 1:
                candidates = " and ".join(ids.where(d) for d in found)
                diagnostics.error(
                    chapter.source.path,
                    reference.line,
                    f'cross-reference "#{reference.target}" is ambiguous: it is defined at {candidates}; '
                    "link to the chapter's file with the id (file.md#id)",
                )
            elif not reference.has_text and not labels[found[0].html_id].reference:
                diagnostics.error(
                    chapter.source.path,
                    reference.line,
                    f'cross-reference "#{reference.target}" has nothing to print: give the link a text, '
                    f"[text](#{reference.target})",
                )
    chapter_of_file = {c.source.path: c for c in parsed}  # resolved already by the config
    words = words_for(config.language)
    cited = cite(config, _citations(parsed), diagnostics, cache)
    filled: dict[int, _Filled] = {}
    chapters = tuple(
        _fill(
            chapter, labels, owner, ids, _link_targets(chapter, chapter_of_file, ids, diagnostics), words, cited, filled
        )
        for chapter in parsed
    )
    _FILLED.clear()  # the last book's only
    _FILLED.update(filled)
    _LAST_TABLES.clear()  # the last book's only
    _LAST_TABLES[config.root] = BookTables(labels, owner, ids, words, cited, chapter_of_file)
    if cited.entries:
        chapters = _with_bibliography(config, chapters, cited.entries, labels, owner)
    if index := index_html(config.language, parsed, labels, diagnostics):
        index_chapter = replace(
            generated_chapter(config, "index", words.index, chapters), html=index, classes=("index",)
        )
        chapters = _at_the_end(chapters, index_chapter)
        labels[index_chapter.id] = index_chapter.label
        owner[index_chapter.id] = index_chapter.id
    for parsed_chapter in parsed:
        owner.update((mark.id, parsed_chapter.id) for mark in parsed_chapter.index_marks)
    return Book(
        config=config,
        chapters=chapters,
        labels=MappingProxyType(labels),
        owner=MappingProxyType(owner),
    )


def _collect_ids(root: Path, parsed: tuple[ParsedChapter, ...], diagnostics: Diagnostics) -> _Ids:
    """Each chapter's targets (an id twice in one chapter is an error), and the id each has in
    the HTML: its own, unless another chapter defines it too (chapter ids are unique)."""
    ids = _Ids(root)
    kept: list[tuple[ParsedChapter, Target]] = []
    for chapter in parsed:
        scope = ids.local.setdefault(chapter.id, {})
        ids.aliases[chapter.id] = {}
        for target in chapter.targets:
            if target.id in scope:
                where = ids.where(scope[target.id])
                diagnostics.error(chapter.source.path, target.line, f'id "{target.id}" is already defined at {where}')
                continue
            scope[target.id] = _Definition(chapter, target, target.id)  # its HTML id is settled below
            kept.append((chapter, target))
    definitions = Counter(target.id for _, target in kept)
    taken = set(definitions)
    for chapter, target in kept:
        html_id = target.id
        if definitions[target.id] > 1 and target.kind is not TargetKind.CHAPTER:
            html_id = f"{chapter.id}--{target.id}"
            while html_id in taken:
                html_id += "-"
            taken.add(html_id)
        definition = _Definition(chapter, target, html_id)
        ids.local[chapter.id][target.id] = definition
        ids.book.setdefault(target.id, []).append(definition)
        if target.alias:
            ids.aliases[chapter.id].setdefault(target.alias, definition)
    return ids


def _link_targets(
    chapter: ParsedChapter, chapter_of_file: Mapping[Path, ParsedChapter], ids: _Ids, diagnostics: Diagnostics
) -> list[str | None]:
    """The HTML id each link of ``chapter`` to a file leads to: a chapter, or a target in it;
    ``None`` for a file that is not a chapter, or none at all: the link prints as its text.

    A link that leads nowhere is a warning, not an error (``--strict`` makes it one), as in
    MkDocs: books written for other tools link to pages of their web site that are not in
    the book (``../std/index.html``), and they must still build."""
    found: list[str | None] = []
    for link in chapter.links:
        target = _chapter_file(link.path, chapter_of_file)
        html_id = None
        if target is None:
            problem = "is to a file that is not a chapter" if link.path.exists() else "is to a file that does not exist"
            diagnostics.warn(chapter.source.path, link.line, f'link "{link.href}" {problem}: printed as its text')
        elif not link.fragment:
            html_id = target.id
        elif (definition := ids.in_chapter(target.id, link.fragment)) is not None:
            html_id = definition.html_id
        else:
            html_id = target.id
            diagnostics.warn(
                chapter.source.path,
                link.line,
                f'link "{link.href}": no id "{link.fragment}" in {_relative(target.source.path, ids.root)}; '
                "it leads to the chapter",
            )
        found.append(html_id)
    return found


def _chapter_file(path: Path, chapter_of_file: Mapping[Path, ParsedChapter]) -> ParsedChapter | None:
    """The chapter a link's path names: its file, a folder whose README or index page it is, or
    its page's address on a site a book tool makes (``ch02.html`` or ``ch02`` for ``ch02.md``,
    ``cli/index.html`` for ``cli/README.md``)."""
    if path.is_dir():
        candidates = [path / name for name in _FOLDER_PAGES]
    elif path.exists() or path.suffix not in (".html", ""):
        candidates = [path]
    else:  # a page's address: "ch02.html", "./hello-sui" (Docusaurus), "cli/index.html"
        folder_pages = [path.parent / name for name in _FOLDER_PAGES] if path.stem == "index" else []
        candidates = [path.with_name(f"{path.stem}.md"), *folder_pages]
    return next((chapter_of_file[c.resolve()] for c in candidates if c.resolve() in chapter_of_file), None)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def _number(config: Config, parsed: tuple[ParsedChapter, ...], ids: _Ids) -> dict[str, Label]:
    """Labels by HTML id (a target defined twice in a chapter, an error, is numbered once)."""
    words = words_for(config.language)
    labels: dict[str, Label] = {}
    chapter_number = figure_number = table_number = listing_number = equation_number = 0
    for chapter in parsed:
        counters = [0, 0]  # sections (##) and subsections (###) within the chapter
        if chapter.source.matter is Matter.BODY:
            chapter_number += 1
        for definition in ids.local[chapter.id].values():
            target = definition.target
            if target.kind is TargetKind.FIGURE:
                figure_number += 1
                label = _counted(words.figure, figure_number)
            elif target.kind is TargetKind.TABLE:
                table_number += 1
                label = _counted(words.table, table_number)
            elif target.kind is TargetKind.LISTING:
                listing_number += 1
                label = _counted(words.listing, listing_number)
            elif target.kind is TargetKind.EQUATION:
                equation_number += 1  # printed "(1)" beside the equation, referred to as 式1
                label = Label(str(equation_number), f"({equation_number})", words.equation.format(n=equation_number))
            else:
                label = _label(target, chapter, chapter_number, counters, words)
            labels[definition.html_id] = label
    return labels


def _counted(pattern: str, number: int) -> Label:
    """Chapters, figures, tables and listings print and are referred to by the same label: 第2章, 図1."""
    text = pattern.format(n=number)
    return Label(str(number), text, text)


def _label(target: Target, chapter: ParsedChapter, chapter_number: int, counters: list[int], words: Words) -> Label:
    if target.kind is TargetKind.CHAPTER:
        return _counted(words.chapter, chapter_number) if target.numbered else Label(None, "", target.text)
    if target.kind is TargetKind.SECTION and target.numbered and chapter.source.matter is Matter.BODY:
        depth = min(target.level, 3) - 2
        counters[depth] += 1
        counters[depth + 1 :] = [0] * (len(counters) - depth - 1)
        number = ".".join(str(n) for n in [chapter_number, *counters[: depth + 1]])
        return Label(number, number, words.section.format(n=number))
    return Label(None, "", target.text)


def _citations(parsed: tuple[ParsedChapter, ...]) -> list[tuple[str, Path, Citation, int]]:
    return [(c.id, c.source.path, citation, n) for c in parsed for n, citation in enumerate(c.citations)]


def _with_bibliography(
    config: Config,
    chapters: tuple[Chapter, ...],
    entries: tuple[Entry, ...],
    labels: dict[str, Label],
    owner: dict[str, str],
) -> tuple[Chapter, ...]:
    """The reference list at the end of the chapter whose front matter says ``bibliography:
    true``, else in a chapter of its own at the end of the book."""
    items = "".join(f'<li id="{entry.id}" class="reference">{entry.html}</li>\n' for entry in entries)
    listing = f'<ul class="references">\n{items}</ul>\n'
    place = next((c for c in chapters if c.bibliography), None)
    if place is None:
        place = generated_chapter(config, "references", words_for(config.language).bibliography, chapters)
        labels[place.id] = place.label
        owner[place.id] = place.id
        chapters = _at_the_end(chapters, place)
    for entry in entries:
        owner[entry.id] = place.id
    filled = replace(place, html=place.html + listing, classes=tuple(dict.fromkeys((*place.classes, "bibliography"))))
    return tuple(filled if c is place else c for c in chapters)


def _at_the_end(chapters: tuple[Chapter, ...], generated: Chapter) -> tuple[Chapter, ...]:
    """A generated chapter goes at the end of the book, but before a closing colophon (奥付),
    which a Japanese book ends with."""
    end = len(chapters)
    while end and "colophon" in chapters[end - 1].classes:
        end -= 1
    return (*chapters[:end], generated, *chapters[end:])


def generated_chapter(config: Config, base_id: str, title: str, chapters: tuple[Chapter, ...]) -> Chapter:
    """A back-matter chapter the builder writes (the references, the index), with an id no
    chapter of the report uses."""
    taken = {c.id for c in chapters}
    chapter_id = next(i for i in (base_id, *(f"{base_id}-{n}" for n in range(2, len(taken) + 3))) if i not in taken)
    return Chapter(
        id=chapter_id,
        source=config.path,
        matter=Matter.BACK,
        classes=(),
        number=None,
        label=Label(None, "", title),
        title=title,
        title_html=html.escape(title),
        html="",
        headings=(),
        footnotes=(),
        images=(),
        svgs=(),
    )


@dataclass(frozen=True)
class _Filled:
    """A chapter filled in, and what its fill read of the rest of the book (see :class:`_Reads`)."""

    parsed: ParsedChapter  # held, so that its id() names no other chapter while this is kept
    link_targets: tuple[str | None, ...]
    words: Words
    reads: Mapping[tuple[str, object], object]
    chapter: Chapter


# The chapters the last book resolved in this process filled in, by id() of the parsed chapter:
# a chapter kept parsed (report watch, or a build the build server forks after reading the
# book: see report.build.keep_last_build) whose reads answer as they did is not filled again.
_FILLED: dict[int, _Filled] = {}


class _Reads:
    """What filling in a chapter reads of the book (labels, owners, ids, citations, files),
    each answer noted: a fill whose reads answer the same in another book gives the same chapter."""

    def __init__(
        self, chapter: ParsedChapter, labels: Mapping[str, Label], owner: Mapping[str, str], ids: _Ids, cited: Cited
    ) -> None:
        self.chapter = chapter
        self.labels = labels
        self.owner = owner
        self.ids = ids
        self.cited = cited
        self.noted: dict[tuple[str, object], object] = {}

    def answer(self, question: str, argument: object) -> object:
        """What ``question`` asked of ``argument`` answers in this book."""
        return getattr(self, question)(argument)

    def _noted(self, question: str, argument: object, value: _T) -> _T:
        self.noted[(question, argument)] = value
        return value

    def label(self, html_id: str | None) -> Label | None:
        return self._noted("label", html_id, self.labels.get(html_id) if html_id is not None else None)

    def owner_of(self, html_id: str) -> str | None:
        return self._noted("owner_of", html_id, self.owner.get(html_id))

    def is_chapter(self, html_id: str) -> bool:
        return self._noted("is_chapter", html_id, html_id in self.ids.local)

    def in_scope(self, written: str) -> str | None:
        """The HTML id of the chapter's own target ``written``, if it has one."""
        definition = self.ids.local[self.chapter.id].get(written)
        return self._noted("in_scope", written, definition.html_id if definition is not None else None)

    def found(self, written: str) -> tuple[str, ...]:
        """The HTML ids ``[](#written)`` may lead to (see _Ids.find)."""
        return self._noted("found", written, tuple(d.html_id for d in self.ids.find(self.chapter, written)))

    def citation(self, number: int) -> str:
        return self._noted("citation", number, self.cited.citations.get((self.chapter.id, number), ""))

    def is_file(self, path: Path) -> bool:
        return self._noted("is_file", path, path.is_file())


@dataclass(frozen=True)
class BookTables:
    """What filling in a chapter reads of its book (see :func:`fill_ahead`)."""

    labels: Mapping[str, Label]
    owner: Mapping[str, str]
    ids: _Ids
    words: Words
    cited: Cited
    chapter_of_file: Mapping[Path, ParsedChapter]

    @functools.cached_property
    def citations_as_written(self) -> dict[Citation, str | None]:
        """The HTML of each citation of the book, by what it cites and how (not where): None for
        one printed otherwise in two places (a style's "ibid.", say)."""
        printed: dict[Citation, str | None] = {}
        for chapter in self.chapter_of_file.values():
            for number, citation in enumerate(chapter.citations):
                made = self.cited.citations.get((chapter.id, number))
                written = replace(citation, line=0)
                printed[written] = made if printed.get(written, made) == made else None
        return printed


# Of the last book resolved in this process, by its report's folder (see last_book_tables).
_LAST_TABLES: dict[Path, BookTables] = {}


def last_book_tables(root: Path) -> BookTables | None:
    """What filling in a chapter read of the last book this process resolved, if it was of the
    report at ``root`` (the build server keeps it between builds: see report.build)."""
    return _LAST_TABLES.get(root)


def fill_ahead(tables: BookTables, chapter: ParsedChapter, last: ParsedChapter) -> Chapter | None:
    """The chapter (``last`` as the book of ``tables`` had it) filled in as that book would fill
    it: for its print layout to begin before the book it is now of is resolved. None when the
    book it is now of is likely to fill it otherwise (what was made of it would not be used, and
    would keep a worker from the layout the run needs): it gives the book other targets (the
    numbers that follow move) or links to files otherwise, refers to an id the last book had not
    (or had twice), or cites what the last book did not cite so. Index marks added or gone, a
    reference or a citation as the book has elsewhere, change nothing it reads."""
    if _unlined(chapter.targets) != _unlined(last.targets) or _unlined(chapter.links) != _unlined(last.links):
        return None
    referred = set(_unlined(last.references))
    if any(
        len(tables.ids.find(chapter, ref.target)) != 1 for ref in _unlined(chapter.references) if ref not in referred
    ):
        return None
    cited = _cited_ahead(tables, chapter, last)
    if cited is None:
        return None
    files = {**tables.chapter_of_file, chapter.source.path: chapter}
    targets = _link_targets(chapter, files, tables.ids, Diagnostics())
    reads = _Reads(chapter, tables.labels, tables.owner, tables.ids, cited)
    return _filled_in(chapter, reads, targets, tables.words)


def _cited_ahead(tables: BookTables, chapter: ParsedChapter, last: ParsedChapter) -> Cited | None:
    """The chapter's citations as the last book printed them: each where it was, else as the
    book printed the same citation elsewhere (None if it did not, or not alike everywhere)."""
    before = _unlined(last.citations)
    printed = {}
    for number, citation in enumerate(_unlined(chapter.citations)):
        if number < len(before) and before[number] == citation:
            made: str | None = tables.cited.citations.get((chapter.id, number), "")
        else:
            made = tables.citations_as_written.get(citation)
        if made is None:
            return None
        printed[chapter.id, number] = made
    return Cited(printed, tables.cited.entries)


def _unlined(items: tuple[_Lined, ...]) -> tuple[_Lined, ...]:
    """Items of a chapter as they are, wherever in it they are."""
    return tuple(replace(item, line=0) for item in items)


def _fill(
    chapter: ParsedChapter,
    labels: Mapping[str, Label],
    owner: Mapping[str, str],
    ids: _Ids,
    link_targets: list[str | None],
    words: Words,
    cited: Cited,
    filled: dict[int, _Filled],
) -> Chapter:
    """The chapter with its numbers, references, citations and links filled in: as this process
    filled it last (see _FILLED) when what that fill read answers the same now. Noted in
    ``filled``."""
    targets = tuple(link_targets)
    last = _FILLED.get(id(chapter))
    if last is not None and last.parsed is chapter and (last.link_targets, last.words) == (targets, words):
        now = _Reads(chapter, labels, owner, ids, cited)
        if all(now.answer(question, argument) == value for (question, argument), value in last.reads.items()):
            filled[id(chapter)] = last
            return last.chapter
    reads = _Reads(chapter, labels, owner, ids, cited)
    made = _filled_in(chapter, reads, link_targets, words)
    filled[id(chapter)] = _Filled(chapter, targets, words, MappingProxyType(reads.noted), made)
    return made


def _filled_in(chapter: ParsedChapter, reads: _Reads, link_targets: list[str | None], words: Words) -> Chapter:
    def slot(match: re.Match[str]) -> str:
        label = reads.label(reads.in_scope(match.group(1)))
        if label is None or not label.caption_prefix:
            return ""
        css = "number" if label.caption_prefix == label.number else "label"
        # The space keeps number and text apart wherever text is extracted (bookmarks, search, copy).
        return f'<span class="{css}">{html.escape(label.caption_prefix)}</span> '

    def xref(match: re.Match[str]) -> str:
        target = match.group(2)
        label = reads.label(target)
        opening = match.group(1)
        is_figure_or_table = (
            label is not None and label.caption_prefix == label.reference and not reads.is_chapter(target)
        )
        if is_figure_or_table and reads.owner_of(target) != chapter.id:
            # A figure or table in another chapter: print adds its page number.
            opening = opening.replace('class="xref', 'class="xref xref-far', 1)
        return opening + (html.escape(label.reference) if label else "") + match.group(3)

    def word(match: re.Match[str]) -> str:
        name = match.group(1)
        return html.escape(words.chart_data if name == "chart-data" else words.callouts[name.removeprefix("callout-")])

    def citation(match: re.Match[str]) -> str:
        return reads.citation(int(match.group(1)))

    def link_or_text(match: re.Match[str]) -> str:
        """A link written ``[text](#id)`` to an id no chapter has (a warning) keeps its text only."""
        return match.group(0) if reads.found(match.group(1)) else match.group(2)

    def scoped_href(match: re.Match[str]) -> str:
        found = reads.found(match.group(1))
        return f'href="#{found[0]}"' if len(found) == 1 else match.group(0)

    def html_id(match: re.Match[str]) -> str:
        written = match.group(2)
        return match.group(1) + (reads.in_scope(written) or written) + match.group(3)

    def file_link(match: re.Match[str]) -> str:
        target = link_targets[int(match.group(1))]
        return f'<a href="#{target}"{match.group(2)}>{match.group(3)}</a>' if target else match.group(3)

    def links(fragment: str) -> str:
        """Citations, references to ids and links to chapter files, leading to the targets' ids."""
        fragment = _ID_LINK_WITH_TEXT.sub(link_or_text, FILLED_SLOT.sub(citation, fragment))
        return _EMPTY_XREF.sub(xref, FILE_LINK_PATTERN.sub(file_link, LOCAL_HREF.sub(scoped_href, fragment)))

    body = links(ELEMENT_ID.sub(html_id, _WORD_SLOT.sub(word, _SLOT.sub(slot, chapter.html))))
    label = reads.label(chapter.id)
    assert label is not None  # every chapter is numbered (see _number)
    return Chapter(
        id=chapter.id,
        source=chapter.source.path,
        matter=chapter.source.matter,
        classes=chapter.source.classes,
        number=int(label.number) if label.number else None,
        label=label,
        title=chapter.title,
        title_html=_link_texts(chapter.title_html),
        html=body,
        headings=tuple(
            Heading(reads.in_scope(h.id) or h.id, h.level, _link_texts(h.html), h.text, h.numbered)
            for h in chapter.headings
        ),
        footnotes=tuple(Footnote(f.id, f.number, links(ELEMENT_ID.sub(html_id, f.html))) for f in chapter.footnotes),
        bibliography=chapter.source.bibliography,
        images=chapter.images,
        svgs=chapter.svgs,
        meta=chapter.source.meta,
        linked_files=tuple(
            link.path
            for link, target in zip(chapter.links, link_targets, strict=True)
            if not target and reads.is_file(link.path)
        ),
        includes=chapter.includes,
    )


def _link_texts(fragment: str) -> str:
    """A title or heading (also printed in the contents, itself a link) keeps a file link's text only."""
    return FILE_LINK_PATTERN.sub(lambda match: match.group(3), fragment)
