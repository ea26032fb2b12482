"""The typed, immutable models that the pipeline stages hand to each other.

load → :class:`Project` · parse → :class:`ParsedChapter` · resolve → :class:`Book`
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from report.config import Config

# The slot survives HTML and XML serialization alike (``<span …></span>`` or ``<span …/>``).
SVG_SLOT = re.compile(r'<span class="svg-slot" title="(\d+)"(?:></span>|\s*/>)')
# Slots whose markup is for one format only (a formula's SVG for print, its MathML for the
# EPUB): each renderer drops the other format's before the slots are filled.
PRINT_ONLY_SLOT = re.compile(r'<span class="print-only"><span class="svg-slot" title="\d+"></span></span>')
EPUB_ONLY_SLOT = re.compile(r'<span class="epub-only"><span class="svg-slot" title="\d+"></span></span>')
# A link to a file of the report, in a parsed chapter's HTML until resolve replaces it: its
# index in ``ParsedChapter.links``, between Private Use Area characters that authors may not use.
FILE_LINK = "\ue000file-link\ue001{}\ue002"
FILE_LINK_PATTERN = re.compile('<a href="\ue000file-link\ue001(\\d+)\ue002"([^>]*)>(.*?)</a>', re.DOTALL)
# An element's id in the HTML the parser writes: what comes before it, the id, its closing quote.
ELEMENT_ID = re.compile(r'(<[a-zA-Z][^>]*?\sid=")([^"]+)(")')
# An element's id in the HTML the assembler writes (its attributes in double quotes), and a link to one.
ID_ATTRIBUTE = re.compile(r'\sid="([^"]+)"')
LOCAL_HREF = re.compile(r'href="#([^"]+)"')


class Matter(StrEnum):
    """Where a chapter stands: only body chapters are numbered."""

    FRONT = "front"
    BODY = "body"
    BACK = "back"


@dataclass(frozen=True)
class SourceChapter:
    """A chapter file as loaded: front matter read, Markdown not yet parsed."""

    path: Path
    id: str
    title: str | None
    matter: Matter
    classes: tuple[str, ...]
    markdown: str
    first_line: int  # line of the file where ``markdown`` starts (after front matter)
    # Front matter keys the builder does not know (author, tags …): for templates, as ``chapter.meta``.
    meta: Mapping[str, Any] = field(default_factory=dict)
    bibliography: bool = False  # front matter ``bibliography: true``: the reference list goes here


@dataclass(frozen=True)
class Project:
    config: Config
    chapters: tuple[SourceChapter, ...]


class TargetKind(StrEnum):
    CHAPTER = "chapter"
    SECTION = "section"
    FIGURE = "figure"
    TABLE = "table"
    LISTING = "listing"
    EQUATION = "equation"
    ANCHOR = "anchor"  # any other element with an id: [text]{#id}, ::: {#id}, <a id="id">


@dataclass(frozen=True)
class Target:
    """Anything a cross-reference may point at: an id defined in a chapter."""

    id: str
    kind: TargetKind
    text: str  # plain text: heading text, caption, an anchor's text
    line: int
    level: int = 1  # heading level for sections; 1 for the chapter itself
    numbered: bool = True
    alias: str = ""  # a section without {#id}: the id other Markdown tools give it (a link may use it)


@dataclass(frozen=True)
class Heading:
    id: str
    level: int
    html: str
    text: str
    numbered: bool


@dataclass(frozen=True)
class Footnote:
    id: str
    number: int
    html: str


@dataclass(frozen=True)
class CrossReference:
    target: str
    line: int
    has_text: bool = False  # [text](#id), not [](#id): the label is not its text


@dataclass(frozen=True)
class FileLink:
    """A link to a file of the report (``../variables/README.md#let``), found by the parse stage.

    The link's ``href`` in the chapter's HTML is a placeholder (:data:`FILE_LINK`) that
    :mod:`report.resolve` turns into a link to a chapter, or into the link's text."""

    path: Path
    fragment: str
    href: str  # as written, for messages
    line: int


@dataclass(frozen=True)
class CiteItem:
    """One work cited: ``[see @key, p. 12]`` → prefix "see", locator "12" labelled "page"."""

    key: str
    prefix: str = ""
    suffix: str = ""
    label: str = ""  # a CSL locator label: page, chapter, section …
    locator: str = ""


@dataclass(frozen=True)
class Citation:
    """``[@a; @b]``, or ``@key`` written in the text (``narrative``): the author's name in the
    sentence, the year after it."""

    items: tuple[CiteItem, ...]
    narrative: bool
    line: int
    text: str  # as written: printed as it is when the report has no bibliography (``@handle``)


@dataclass(frozen=True)
class IndexMark:
    """A term marked for the index: ``[条約]{.index reading="じょうやく" sub="…"}``."""

    id: str  # of the marked text, for page numbers and links
    term: str
    reading: str  # "" when none was given
    sub: str  # the sub-entry under ``term``, or ""
    section: str | None  # the id of the heading it is under
    line: int


@dataclass(frozen=True)
class ParsedChapter:
    """One chapter after the parse stage.

    ``html`` still holds placeholders for numbers and cross-reference labels,
    which only the whole book can fill in (see :mod:`report.resolve`).
    """

    source: SourceChapter
    title: str
    title_html: str
    html: str
    headings: tuple[Heading, ...]
    footnotes: tuple[Footnote, ...]
    targets: tuple[Target, ...]
    references: tuple[CrossReference, ...]
    images: tuple[Path, ...]
    svgs: tuple[str, ...]  # cleaned SVG (or the builder's MathML) markup for the ``svg-slot`` spans in ``html``
    links: tuple[FileLink, ...] = ()  # the ``file-link`` placeholders in ``html`` and the notes, by index
    citations: tuple[Citation, ...] = ()  # in the order of the ``cite-slot`` spans in ``html`` and the notes
    index_marks: tuple[IndexMark, ...] = ()
    includes: tuple[Path, ...] = ()  # files of the report whose code the chapter includes

    @property
    def id(self) -> str:
        return self.source.id


@dataclass(frozen=True)
class Label:
    """What a target is called in the report's language."""

    number: str | None  # "2.1", "3", None when unnumbered
    caption_prefix: str  # printed before a heading or caption: "第2章", "2.1", "図3"
    reference: str  # printed for a cross-reference: "第2章", "2.1節", "図3"


@dataclass(frozen=True)
class Chapter:
    """A chapter of the finished book: numbers and cross-references filled in."""

    id: str
    source: Path
    matter: Matter
    classes: tuple[str, ...]
    number: int | None
    label: Label
    title: str
    title_html: str
    html: str
    headings: tuple[Heading, ...]
    footnotes: tuple[Footnote, ...]
    images: tuple[Path, ...]
    svgs: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)  # the chapter's other front matter keys
    linked_files: tuple[Path, ...] = ()  # files of the report it links to that are not chapters
    bibliography: bool = False  # the reference list is at its end
    includes: tuple[Path, ...] = ()

    @functools.cached_property
    def html_digest(self) -> str:
        """SHA-256 of :attr:`html`: the PDF and the EPUB key what they make of the chapter by
        it, hashing the chapter's HTML (the bulk of the book) once a build."""
        return hashlib.sha256(self.html.encode()).hexdigest()

    def epub_html(self) -> str:
        """Its HTML as the EPUB has it: print-only figures out, and the index without its page
        lists (report.index.for_epub)."""
        from report.index import for_epub  # (which reads this module)

        return PRINT_ONLY_SLOT.sub("", for_epub(self.html))

    @functools.cached_property
    def epub_digest(self) -> str:
        """SHA-256 of the chapter as its EPUB page is made of it: all but its HTML and inline
        SVGs written out, and those (the bulk of it) hashed as they are, its HTML as the EPUB has
        it (:meth:`epub_html`): the index without its page lists, whose ids an index mark added
        changes. A term marked again in a section the index lists it in already leaves the
        index's EPUB page as it was, and it is not made again."""
        html = self.epub_html()
        html_digest = self.html_digest if html == self.html else hashlib.sha256(html.encode()).hexdigest()
        rest = repr(replace(self, html="", svgs=()))  # a repr writes no NUL out as it is
        svgs = (hashlib.sha256(svg.encode()).hexdigest() for svg in self.svgs)
        return hashlib.sha256("\0".join([rest, html_digest, *svgs]).encode()).hexdigest()

    @functools.cached_property
    def own_ids(self) -> frozenset[str]:
        """Its id and every id its HTML and notes define."""
        return frozenset({self.id, *ID_ATTRIBUTE.findall(self.html), *(note.id for note in self.footnotes)})

    @functools.cached_property
    def linked_ids(self) -> frozenset[str]:
        """The ids its HTML and notes link to."""
        return frozenset(
            target for text in (self.html, *(n.html for n in self.footnotes)) for target in LOCAL_HREF.findall(text)
        )

    def html_with_svgs(self, html: str) -> str:
        """Put the inline SVG figures into ``html`` (this chapter's body, serialized by a renderer)."""
        return SVG_SLOT.sub(lambda m: self.svgs[int(m.group(1))], html)


@dataclass(frozen=True)
class Book:
    config: Config
    chapters: tuple[Chapter, ...]
    labels: Mapping[str, Label]
    # Both keyed by a target's id in the HTML: the id as written, or, for an id that more than
    # one chapter defines, the id qualified by its chapter (see report.resolve).
    owner: Mapping[str, str]  # target id → id of the chapter that defines it

    def chapter_of(self, target_id: str) -> Chapter:
        chapter_id = self.owner[target_id]
        return next(c for c in self.chapters if c.id == chapter_id)
