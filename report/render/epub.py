"""The EPUB 3, by ebooklib, with the bundled fonts subset to the characters set in each.

What goes in: a cover page showing the printed cover (the PDF's first page as PNG,
manifest property ``cover-image``), one XHTML page per chapter, a navigation
document with the table of contents, landmarks and the print page list (page-break
markers where the PDF's pages begin), an NCX with the same page list for old
readers, and accessibility metadata (EPUB Accessibility 1.1, WCAG 2.2 AA).

Fonts: each face gets only the characters set in it (serif or sans, regular or
bold: :func:`font_usage` reads that from the XHTML by element, following the
rules :mod:`report.assemble` writes into the stylesheet), with the OpenType
features e-readers use and the licence name records.

ebooklib's traps, and how they are avoided here: pages are plain XHTML items
(ebooklib's own HTML round-trip drops ``epub:type`` and inline SVG namespaces);
the cover page is linear (a non-linear cover fails OPF-096); each author gets
its own creator id; fonts get their real media types; every document sits at
the top of the package so that relative links to ``css/`` stay right; the
package's ``xml:lang`` and the NCX page list are added by :class:`_Writer`.

Reproducible: entries in a fixed order with fixed timestamps (``SOURCE_DATE_EPOCH``,
else the report's date), ``mimetype`` first and stored.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ebooklib import epub
from lxml import etree

from report import __version__
from report.assemble import EPUB_BOLD_ELEMENTS, EPUB_MONO_ELEMENTS, EPUB_SANS_ELEMENTS, Assembler, EpubPage, NavEntry
from report.cache import Cache, digest
from report.code import bold_classes
from report.fonts import FACES, Face, cmap, font_stack, subset
from report.i18n import is_cjk, words_for
from report.model import Chapter, Label
from report.render import Output, PageStart
from report.render.pagebreaks import Breaks, insert_page_breaks, parse_xhtml
from report.render.zipped import STORED_FIRST, Zipped, write_zip

XHTML = "application/xhtml+xml"
XHTML_NS = "http://www.w3.org/1999/xhtml"
SVG_NS = "http://www.w3.org/2000/svg"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
NCX_NS = "http://www.daisy.org/z3986/2005/ncx/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
STYLESHEET = "css/book.css"
COVER_IMAGE = "cover.png"
FONT_MEDIA_TYPES = {".otf": "font/otf", ".ttf": "font/ttf"}
IMAGE_MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".webp": "image/webp",
}  # fmt: skip
# OpenType features kept in the subset fonts: what e-reader engines apply by default or
# through CSS (vertical forms, proportional and half-width CJK, ruby forms, language
# forms, kerning, marks, Hangul jamo, Latin figures and small capitals), and what shaping
# Arabic (the joining forms) and Devanagari (conjuncts, half forms, reordered marks) takes:
# without them a subset draws their letters apart. Left out: aalt, jp78/jp83/jp90, nlck,
# hist, dlig and the like, which pull in many glyphs nobody sets.
FONT_FEATURES = (
    "ccmp", "locl", "calt", "liga", "clig", "rlig", "kern", "mark", "mkmk",
    "vert", "vrt2", "vkrn", "palt", "vpal", "halt", "vhal", "ruby", "hwid", "ljmo", "vjmo", "tjmo",
    "case", "frac", "numr", "dnom", "lnum", "onum", "pnum", "tnum", "smcp", "c2sc", "sups", "subs", "zero",
    "ordn", "rtlm",
    "isol", "init", "medi", "fina", "med2", "fin2", "fin3", "curs", "mset", "rclt",
    "nukt", "akhn", "rphf", "rkrf", "pref", "blwf", "half", "abvf", "pstf", "cfar", "vatu", "cjct",
    "pres", "abvs", "blws", "psts", "haln", "dist", "abvm", "blwm",
)  # fmt: skip
CONFORMANCE = "EPUB Accessibility 1.1 - WCAG 2.2 Level AA"
_BOLD_SVG = re.compile(r"^(bold|bolder|[6-9]00)$")
_BOLD_CODE = bold_classes()  # highlighted keywords (report.code)
# The characters set in each (style, weight): see font_usage.
Usage = dict[tuple[str, int], set[str]]
# A chapter's page, its print page-break markers put in at each build (see report.render.pagebreaks).
_PAGE = "epub-page"
_NAV, _NCX = "epub-nav", "epub-ncx"  # the navigation document (kept as a page is), the NCX
_NCX_CONTENTS = "epub-ncx-contents"  # ebooklib's NCX of the contents, without the page list
# A page list's item in the navigation document as the document is written (its template, then
# lxml: see Assembler.epub_nav), for a label and a link made of characters both write as they are;
# a page standing in for them all (its label a digit: the list's numbers set them already).
_PAGE_ITEM = '<li><a href="{}">{}</a></li>\n'
_PLAIN_ITEM = re.compile(r"[\w.#:/%+\-]*")
_STAND_IN_PAGE = ("0", "report-page-list-stand-in.xhtml#page")
_NCX_SHELL = "epub-ncx-shell"  # the NCX with a page list of one stand-in page (see _Writer.ncx_shell)
_NCX_COUNTS_STAND_IN = ("report-total-pages", "report-highest-page")  # its counts of pages
# A page list's target in the NCX, as lxml writes it in the NCX's pretty-printed page list.
_PAGE_TARGET = (
    '    <pageTarget id="pagetarget-{number}" type="normal"{value}>\n'
    "      <navLabel>\n"
    "        <text>{label}</text>\n"
    "      </navLabel>\n"
    '      <content src="{href}"/>\n'
    "    </pageTarget>\n"
)
# The pages of the last EPUB rendered in this process, or read by the build server between builds
# (keep_pages), by kind and key: a build takes them from here without reading the cache. (A key
# names everything the page is made of; the pages are never changed once made.)
_KEPT_PAGES: dict[tuple[str, str], _FinishedPage] = {}
_SUMMARIES = {
    "ja": "本書は章ごとの文書からなり、目次・ランドマーク・印刷版（PDF）のページ番号による"
    "ページリストで移動できます。図には代替テキスト、表には見出しセル、ルビには ruby 要素を用い、"
    "脚注は本文から参照して戻れます。読み上げ順序は印刷版と同じです。",
    "zh": "本书每章为一个文档，可通过目录、地标和与印刷版（PDF）页码对应的页码列表导航。"
    "图片有替代文本，表格有表头，注释可相互链接。阅读顺序与印刷版相同。",
    "zh-hant": "本書每章為一個文件，可透過目錄、地標和與印刷版（PDF）頁碼對應的頁碼列表導覽。"
    "圖片有替代文字，表格有表頭，註釋可相互連結。閱讀順序與印刷版相同。",
    "ko": "이 책은 장마다 하나의 문서로 되어 있으며 목차, 랜드마크, 인쇄판(PDF) 쪽 번호에 따른 "
    "쪽 목록으로 이동할 수 있습니다. 그림에는 대체 텍스트, 표에는 머리글 셀이 있고 주석은 본문과 "
    "서로 연결됩니다. 읽기 순서는 인쇄판과 같습니다.",
    "en": "Each chapter is its own document, reachable from the table of contents, the landmarks "
    "and a page list that follows the page numbers of the print (PDF) edition. Images have text "
    "alternatives, tables have header cells, and notes link to and from the text. The reading "
    "order is that of the print edition.",
}


@dataclass
class MadeInBuild:
    """What one build's EPUB renderers share: the chapters' pages made or read from the cache,
    by key, and what each chapter's key is made of. An EPUB written again in the same build
    (after one written from a layout guessed wrong: an edit moved the printed pages) makes only
    the pages whose printed pages moved, and reads none again."""

    pages: dict[str, _FinishedPage] = field(default_factory=dict)
    chapters: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # see chapter()
    book: str = ""  # see book_digest()

    def chapter(self, assembler: Assembler, chapter: Chapter) -> tuple[str, frozenset[str]]:
        """What the chapter's page is made of, as a digest (its part of the page's key), and its
        ids. (Its HTML and inline SVGs, the bulk of it, are hashed as they are, not written out
        with the rest.)"""
        known = self.chapters.get(chapter.id)
        if known is None:
            made_of = digest(chapter.epub_digest, repr(assembler.epub_link_owners(chapter)))
            known = self.chapters[chapter.id] = (made_of, chapter.own_ids)
        return known

    def book_digest(self, assembler: Assembler) -> str:
        """What every page and the navigation are made of but the layout: the chapters, the
        labels and the ids' owners."""
        if not self.book:
            book = assembler.book
            chapters = (self.chapter(assembler, chapter)[0] for chapter in book.chapters)
            self.book = digest(_tables_digest(book.labels, book.owner), *chapters)
        return self.book


# The last book's labels and ids' owners, by their digest (see _tables_digest).
_TABLES_DIGESTS: dict[str, tuple[Mapping[str, Label], Mapping[str, str]]] = {}


def _tables_digest(labels: Mapping[str, Label], owner: Mapping[str, str]) -> str:
    """A digest of the book's labels and ids' owners: the last book's, if they are the same.
    Written out, tens of thousands at 586 pages, they took 17 ms of every build; the build
    server works theirs out between builds (see report.build.keep_last_build), and a build it
    forks compares its own with them."""
    for made, (last_labels, last_owner) in _TABLES_DIGESTS.items():
        if labels == last_labels and owner == last_owner:
            return made
    made = digest(repr(sorted(labels.items())), repr(sorted(owner.items())))
    _TABLES_DIGESTS.clear()  # the last book's only
    _TABLES_DIGESTS[made] = (labels, owner)
    return made


class EpubRenderer:
    format = "epub"

    def __init__(
        self,
        print_pages: tuple[PageStart, ...] = (),
        cover: bytes | None = None,
        cache: Cache | None = None,
        key: str = "",
        earlier: Zipped | None = None,
        made: MadeInBuild | None = None,
    ) -> None:
        """``print_pages``: the PDF's page starts, for the page list; ``cover``: its first page
        as PNG (else laid out now). With a ``cache`` and a ``key`` (a digest of everything the
        book is made of but its chapters and the PDF's layout), each chapter's page is kept in
        the cache and made again only when the chapter or its printed pages changed. ``earlier``:
        the last EPUB of the report, whose compressed members are taken where they are the same
        (:attr:`written` is the one :meth:`render` writes, for the next build);
        ``made``: what an earlier renderer of the same build made."""
        self.print_pages = print_pages
        self.cover = cover
        self.cache = cache
        self.key = key
        self.earlier = earlier
        self.written: Zipped | None = None
        self.made = made or MadeInBuild()
        self.pages_used: dict[tuple[str, str], _FinishedPage] = {}  # by kind and key: this EPUB's pages

    def render(self, assembler: Assembler, target: Path) -> Output:
        from report.render.pdf import PdfRenderer

        book = assembler.book
        config = book.config
        images = sorted(
            {image for chapter in book.chapters for image in chapter.images if image.suffix.lower() != ".svg"}
        )  # SVG figures are inline
        image_names = [image.relative_to(config.root).as_posix() for image in images]
        cover_name = next(n for n in (COVER_IMAGE, *(f"cover-{i}.png" for i in range(1, 99))) if n not in image_names)
        cover = self.cover if self.cover is not None else PdfRenderer().cover_png(assembler)

        pages, page_list, usage, features = self._pages(assembler, cover_name)
        toc = assembler.epub_toc()
        nav_key = digest(self.key, repr(toc), repr(_landmark_inputs(assembler)), repr(page_list))
        nav = self._nav(assembler, nav_key, toc, page_list)
        fonts = _font_subsets(_merged([usage, nav.usage]), config.language)
        stylesheet = assembler.epub_stylesheet({face.file: f"../fonts/{face.file}" for face in fonts})

        ebook = epub.EpubBook()
        ebook.set_identifier(config.identifier)
        ebook.set_title(config.title)
        ebook.set_language(config.language)
        for index, author in enumerate(config.authors, start=1):
            ebook.add_author(author, uid=f"creator{index}")
        if config.publisher:
            ebook.add_metadata("DC", "publisher", config.publisher)
        if config.date:
            ebook.add_metadata("DC", "date", config.date.isoformat())
        if config.subtitle:
            ebook.add_metadata("DC", "description", config.subtitle)
        if page_list:
            # The print edition the page list comes from.
            ebook.add_metadata("DC", "source", print_source(config.identifier), {"id": "print-source"})
            _meta(ebook, "source-of", "pagination", refines="#print-source")
            _meta(ebook, "pageBreakSource", print_source(config.identifier))
        for prop, value in accessibility_metadata([*features, nav.features], bool(page_list), config.language):
            _meta(ebook, prop, value)
        # Who stands behind the conformance claim (checked by EPUBCheck and Ace on every build in CI).
        certifier = config.publisher or ("、" if is_cjk(config.language) else ", ").join(config.authors)
        _meta(ebook, "a11y:certifiedBy", certifier or f"report {__version__}")
        ebook.add_metadata(None, "meta", "", {"name": "generator", "content": f"report {__version__}"})
        ebook.add_metadata(None, "meta", "", {"name": "cover", "content": "cover-image"})
        if config.epub.writing_mode == "vertical-rl":
            ebook.add_metadata(None, "meta", "", {"name": "primary-writing-mode", "content": "vertical-rl"})
            ebook.set_direction("rtl")

        ebook.add_item(
            epub.EpubItem(uid="stylesheet", file_name=STYLESHEET, media_type="text/css", content=stylesheet.encode())
        )
        for index, (face, data) in enumerate(fonts.items(), start=1):
            media_type = FONT_MEDIA_TYPES[Path(face.file).suffix]
            ebook.add_item(
                epub.EpubItem(uid=f"font{index}", file_name=f"fonts/{face.file}", media_type=media_type, content=data)
            )
        cover_item = epub.EpubItem(uid="cover-image", file_name=cover_name, media_type="image/png", content=cover)
        cover_item.properties = ["cover-image"]
        ebook.add_item(cover_item)
        for index, (image, name) in enumerate(zip(images, image_names, strict=True), start=1):
            ebook.add_item(
                epub.EpubItem(
                    uid=f"image{index}",
                    file_name=name,
                    media_type=IMAGE_MEDIA_TYPES[image.suffix.lower()],
                    content=image.read_bytes(),
                )
            )
        spine_items = []
        for page in pages:
            item = epub.EpubItem(
                uid=f"page-{Path(page.file_name).stem}",
                file_name=page.file_name,
                media_type=XHTML,
                content=page.xhtml.encode(),
            )
            item.properties = list(page.properties)
            ebook.add_item(item)
            spine_items.append(item)
        nav_item = epub.EpubItem(
            uid="nav", file_name=nav.page.file_name, media_type=XHTML, content=nav.page.xhtml.encode()
        )
        nav_item.properties = ["nav"]
        ebook.add_item(nav_item)
        ebook.add_item(epub.EpubNcx())
        ebook.toc = [_ncx_entry(entry, index) for index, entry in enumerate(toc)]
        ebook.spine = [spine_items[0], nav_item, *spine_items[1:]]

        modified = build_time(config.date)
        options = {"mtime": modified, "epub3_pages": False, "epub2_guide": False, "epub3_landmark": False}
        writer = _Writer("", ebook, options)
        writer.language = config.language
        writer.page_list = page_list
        writer.page_list_title = words_for(config.language).page_list
        writer.process()
        writer.ncx = self._ncx(nav_key, toc, writer)
        self.written = _normalised_zip(writer.members(), modified, self.earlier)
        target.write_bytes(self.written.data)
        if self.cache is not None and self.key:
            _keep_pages(self.pages_used)
        return Output(self.format, target, target.stat().st_size, len(pages))

    def _pages(
        self, assembler: Assembler, cover_image: str
    ) -> tuple[list[EpubPage], list[tuple[str, str]], Usage, list[Features]]:
        """The cover and one page per chapter, each with its print page-break markers, the page
        list, the characters the pages set and what they hold (a chapter's page from the cache,
        if it was kept)."""
        chapters = assembler.book.chapters
        owners: dict[str, list[int]] = defaultdict(list)  # an id → the chapters that have it
        for index, chapter in enumerate(chapters):
            for name in self.made.chapter(assembler, chapter)[1]:
                owners[name].append(index)
        starts_in: list[list[PageStart]] = [[] for _ in chapters]
        cover_starts = []
        for start in self.print_pages:
            for index in owners.get(start.anchor, ()):
                starts_in[index].append(start)
            if start.anchor not in owners:
                cover_starts.append(start)
        body_font = assembler.book.config.epub.font
        cover = assembler.epub_cover_page(STYLESHEET, cover_image)
        made = [_finished(cover, body_font, hidden=True)]
        for chapter in chapters:
            made_of = self.made.chapter(assembler, chapter)[0]
            key = digest(self.key, made_of)
            made.append(
                self._page_kept(
                    _PAGE,
                    key,
                    lambda: _finished(assembler.epub_chapter_page(chapter, STYLESHEET), body_font),  # noqa: B023 (made at once)
                )
            )
        # (A marker sets no character and holds nothing: usage and features are the page's.)
        marked = [page.marked(starts) for page, starts in zip(made, [cover_starts, *starts_in], strict=True)]
        usage = _merged([page.usage for page in made])
        page_list = [entry for _, entries in marked for entry in entries]
        return [page for page, _ in marked], page_list, usage, [page.features for page in made]

    def _nav(
        self, assembler: Assembler, key: str, toc: list[NavEntry], page_list: list[tuple[str, str]]
    ) -> _FinishedPage:
        """The navigation document with every character it sets, its hidden lists too (reading
        systems show them), and what it holds: kept as a page is, under ``key`` (its contents,
        landmarks and page list), so that an edit that changes none of them makes none of it."""
        return self._page_kept(
            _NAV,
            key,
            lambda: self._nav_with_pages(assembler, toc, page_list) or self._nav_made(assembler, toc, page_list),
        )

    def _page_kept(self, kind: str, key: str, make: Callable[[], _FinishedPage]) -> _FinishedPage:
        """The page of ``kind`` under ``key``: as this build made it, kept in this process or in
        the cache, else ``make()``'s, stored; noted as this EPUB's."""
        page = self.made.pages.get(key) or self._cached_page(key, kind)
        if page is None:
            page = make()
            self._store_page(key, page, kind)
        self.pages_used[kind, key] = page = self.made.pages.setdefault(key, page)
        return page

    def _nav_made(
        self, assembler: Assembler, toc: list[NavEntry], page_list: Sequence[tuple[str, str]]
    ) -> _FinishedPage:
        nav = assembler.epub_nav(STYLESHEET, page_list, toc)
        nav_page = EpubPage("nav.xhtml", "", nav, ("nav",))
        return _finished(nav_page, assembler.book.config.epub.font, hidden=True, markable=False)

    def _nav_with_pages(
        self, assembler: Assembler, toc: list[NavEntry], page_list: list[tuple[str, str]]
    ) -> _FinishedPage | None:
        """The navigation document made from one with a page list of one stand-in page (kept as
        a page is, under its contents and landmarks), its stand-in's item written out for each
        page: an edit that moves the printed pages changes the page list alone (made and read
        whole, 600 pages' took 15 ms). None where its items would not be written as they are
        (see _PAGE_ITEM): the document is then made whole."""
        if not page_list or assembler.book.config.epub.writing_mode == "vertical-rl":
            return None  # (short numbers are set upright across the line: see Assembler._epub_finish)
        if not _written_as_they_are(page_list):
            return None
        key = digest(_NAV, self.key, repr(toc), repr(_landmark_inputs(assembler)), "one page")
        shell = self._page_kept(_NAV, key, lambda: self._nav_made(assembler, toc, [_STAND_IN_PAGE]))
        stand_in = _PAGE_ITEM.format(*reversed(_STAND_IN_PAGE))
        if shell.page.xhtml.count(stand_in) != 1:
            return None
        items = "".join(_PAGE_ITEM.format(href, label) for label, href in page_list)
        usage = {style: set(found) for style, found in shell.usage.items()}
        usage.setdefault(("sans", 400), set()).update(*(label for label, _ in page_list))  # (the nav's style)
        page = replace(shell.page, xhtml=shell.page.xhtml.replace(stand_in, items))
        return _FinishedPage(page, usage, shell.features, None)

    def _ncx(self, nav_key: str, toc: list[NavEntry], writer: _Writer) -> bytes:
        """The NCX, from the cache if it was made from the same contents and page list; else
        written out from the NCX of the same contents with one stand-in page (see
        _Writer.ncx_from_shell), itself made from ebooklib's NCX of the contents, each from the
        cache if made before (a page added moves the page list alone: ebooklib's NCX of a
        183-chapter book's contents took 10–15 ms of the 25–40 ms of making it again)."""
        cache = self.cache
        if cache is None or not self.key:
            return writer.made_ncx(writer.contents_ncx())

        def made() -> str:
            contents_key = digest(_NCX_CONTENTS, self.key, repr(toc))

            def contents() -> bytes:
                return cache.text(_NCX_CONTENTS, contents_key, lambda: writer.contents_ncx().decode()).encode()

            shell_key = digest(_NCX_SHELL, contents_key, writer.language, writer.page_list_title)
            shell = cache.text(_NCX_SHELL, shell_key, lambda: writer.ncx_shell(contents()).decode())
            return writer.ncx_from_shell(shell) or writer.made_ncx(contents()).decode()

        return cache.text(_NCX, digest(_NCX, nav_key), made).encode()

    def _cached_page(self, key: str, kind: str = _PAGE) -> _FinishedPage | None:
        if self.cache is None or not self.key:
            return None
        kept = _KEPT_PAGES.get((kind, key))
        if kept is not None and self.cache.read:
            self.cache.kept(kind, key)
            return kept
        return _page_from_value(self.cache.load(kind, key))

    def _store_page(self, key: str, made: _FinishedPage, kind: str = _PAGE) -> None:
        if self.cache is None or not self.key:
            return
        page, features = made.page, made.features
        value = {
            "file": page.file_name,
            "title": page.title,
            "xhtml": page.xhtml,
            "properties": list(page.properties),
            "usage": [[style, weight, "".join(sorted(found))] for (style, weight), found in sorted(made.usage.items())],
            "features": [features.images, features.described, features.ruby, features.mathml],
            "breaks": made.breaks.value() if made.breaks is not None else None,
        }
        self.cache.store(kind, key, value)


def _page_from_value(value: dict[str, Any] | None) -> _FinishedPage | None:
    """A page as :meth:`EpubRenderer._store_page` stored it (None if it was not, or by other code)."""
    if value is None:
        return None
    try:
        page = EpubPage(str(value["file"]), str(value["title"]), str(value["xhtml"]), tuple(value["properties"]))
        usage = {(str(style), int(weight)): set(str(found)) for style, weight, found in value["usage"]}
        images, described, ruby, mathml = value["features"]
        features = Features(int(images), int(described), bool(ruby), bool(mathml))
        breaks = Breaks.from_value(value["breaks"]) if value["breaks"] is not None else None
    except (KeyError, TypeError, ValueError):
        return None
    return _FinishedPage(page, usage, features, breaks)


def keep_pages(cache: Cache, keys: Iterable[tuple[str, str]]) -> Generator[None, None, None]:
    """The pages of ``keys`` (kind and key, as :attr:`EpubRenderer.pages_used` names them) read
    from the cache into this process (those it has already kept, taken as they are), a step a
    page: the build server reads the last EPUB's between builds, so that the builds it forks read
    none of them (see report.build.keep_last_build)."""
    kept: dict[tuple[str, str], _FinishedPage] = {}
    for kind, key in keys:
        if kind not in (_PAGE, _NAV):
            continue
        if (page := _KEPT_PAGES.get((kind, key)) or _page_from_value(cache.load(kind, key))) is not None:
            kept[kind, key] = page
        yield
    _keep_pages(kept)


def _keep_pages(pages: dict[tuple[str, str], _FinishedPage]) -> None:
    _KEPT_PAGES.clear()
    _KEPT_PAGES.update(pages)


@dataclass(frozen=True)
class Features:
    """What a page holds that the book's accessibility metadata tells of."""

    images: int  # images and SVG drawings
    described: int  # of them, those with text alternatives
    ruby: bool
    mathml: bool


@dataclass(frozen=True)
class _FinishedPage:
    """A page as made, without print page-break markers: the characters it sets, what it holds,
    and where its markers go (None: worked out at each marking, as for a page never marked)."""

    page: EpubPage
    usage: Usage
    features: Features
    breaks: Breaks | None

    def marked(self, starts: Sequence[PageStart]) -> tuple[EpubPage, list[tuple[str, str]]]:
        """The page with the markers of the printed pages that begin in it, and its page list."""
        if self.breaks is not None:
            return self.breaks.marked(self.page, starts)
        pages, page_list = insert_page_breaks([self.page], starts)
        return pages[0], page_list


def _merged(usages: Iterable[Usage]) -> Usage:
    merged: Usage = {}
    for usage in usages:
        for style, characters in usage.items():
            merged.setdefault(style, set()).update(characters)
    return merged


def _finished(page: EpubPage, body_font: str, hidden: bool = False, markable: bool = True) -> _FinishedPage:
    """The page, the characters it sets (``hidden``: its hidden text too), what it holds and,
    if it is ``markable``, where its print page-break markers go."""
    root = parse_xhtml(page.xhtml)
    breaks = Breaks.of(root, page.xhtml) if markable else None
    return _FinishedPage(page, font_usage(root, body_font, hidden), _features(root), breaks)


def _features(root: etree._Element) -> Features:
    images = list(root.iter(f"{{{XHTML_NS}}}img", f"{{{SVG_NS}}}svg"))
    described = sum(1 for e in images if (e.get("alt") or e.get("aria-label") or "").strip())
    ruby = any(True for _ in root.iter(f"{{{XHTML_NS}}}ruby"))
    mathml = any(True for _ in root.iter(f"{{{MATHML_NS}}}math"))
    return Features(len(images), described, ruby, mathml)


def print_source(identifier: str) -> str:
    """The print edition's identifier, as ``dc:source`` and ``pageBreakSource`` name it."""
    return f"{identifier} (PDF)"


def build_time(date: dt.date | None) -> dt.datetime:
    """``SOURCE_DATE_EPOCH`` if set, else the report's date: never the clock, so builds repeat."""
    if epoch := os.environ.get("SOURCE_DATE_EPOCH"):
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).replace(tzinfo=None)
    if date is not None:
        return dt.datetime(date.year, date.month, date.day)
    return dt.datetime(2000, 1, 1)


# --- metadata -----------------------------------------------------------------------------


def _meta(ebook: Any, prop: str, value: str, refines: str | None = None) -> None:
    attributes = {"property": prop}
    if refines:
        attributes["refines"] = refines
    ebook.add_metadata(None, "meta", value, attributes)


def accessibility_metadata(pages: Sequence[Features], page_list: bool, language: str) -> list[tuple[str, str]]:
    """schema.org accessibility properties and the conformance claim, from what the book's
    pages hold (each found once, when the page was made)."""
    images = sum(page.images for page in pages)
    described = sum(page.described for page in pages) == images
    ruby = any(page.ruby for page in pages)
    mathml = any(page.mathml for page in pages)
    features = ["structuralNavigation", "tableOfContents", "readingOrder", "displayTransformability"]
    if page_list:
        features += ["pageBreakMarkers", "pageNavigation", "printPageNumbers"]
    if images and described:
        features.append("alternativeText")
    if ruby:
        features.append("rubyAnnotations")
    if mathml:
        features.append("MathML")
    metadata = [("schema:accessMode", "textual")]
    if images:
        metadata.append(("schema:accessMode", "visual"))
    if not images or described:
        metadata.append(("schema:accessModeSufficient", "textual"))
    if images:
        metadata.append(("schema:accessModeSufficient", "textual,visual"))
    metadata += [("schema:accessibilityFeature", feature) for feature in features]
    metadata += [
        ("schema:accessibilityHazard", "none"),
        ("schema:accessibilitySummary", _summary(language)),
        ("dcterms:conformsTo", CONFORMANCE),
    ]
    return metadata


def _summary(language: str) -> str:
    tag = language.lower()
    if tag.startswith("zh") and any(part in tag for part in ("hant", "-tw", "-hk", "-mo")):
        return _SUMMARIES["zh-hant"]
    return _SUMMARIES.get(tag.split("-")[0], _SUMMARIES["en"])


# --- fonts --------------------------------------------------------------------------------


def font_usage(root: etree._Element, body_style: str, hidden: bool = False) -> Usage:
    """The characters set in each (style, weight) of a page (see :func:`parse_xhtml`): body
    text in ``body_style``; headings, captions, table headers, the table of contents and
    figure drawings in sans; code in mono; headings, captions, headers, terms, strong text
    and highlighted keywords bold.
    Text that is never shown (``head``, SVG titles, hidden elements) is left out; with
    ``hidden``, what a reading system may show of the navigation and the cover is kept too:
    hidden lists, the document's title, images' alternative text."""
    texts: dict[tuple[str, int], list[str]] = defaultdict(list)  # (one set made of them: not a set a text)
    if (body := root.find(f"{{{XHTML_NS}}}body")) is not None:
        _collect(body, body_style, 400, texts, hidden)
    if hidden:
        texts[(body_style, 400)] += [root.findtext(f".//{{{XHTML_NS}}}title") or "", *root.xpath("//@alt")]
    return {key: {c for c in set("".join(found)) if c.isprintable() or c == "\u3000"} for key, found in texts.items()}


def _collect(
    element: etree._Element, style: str, weight: int, texts: dict[tuple[str, int], list[str]], hidden: bool
) -> None:
    if element.get("hidden") is not None and not hidden:
        return
    namespace, _, name = str(element.tag).partition("}")
    if namespace == "{" + SVG_NS:
        if name in ("title", "desc"):
            return
        style = "sans"
        font_weight = element.get("font-weight") or ""
        if _BOLD_SVG.match(font_weight) or re.search(r"font-weight\s*:\s*(bold|[6-9]00)", element.get("style") or ""):
            weight = 700
    else:
        if name in EPUB_SANS_ELEMENTS:
            style = "sans"
        elif name in EPUB_MONO_ELEMENTS:
            style = "mono"
        if name in EPUB_BOLD_ELEMENTS or (style == "mono" and set((element.get("class") or "").split()) & _BOLD_CODE):
            weight = 700
        parent = element.getparent()
        if name == "li" and parent is not None and etree.QName(parent).localname == "ol":
            texts[(style, weight)].append("0123456789. ")  # the list's numbers
    found = texts[(style, weight)]
    found.append(element.text or "")
    for child in element:
        if isinstance(child.tag, str):
            _collect(child, style, weight, texts, hidden)
        found.append(child.tail or "")


def _font_subsets(usage: dict[tuple[str, int], set[str]], language: str) -> dict[Face, bytes]:
    """Each character set in a (style, weight) goes to the first face of that stack that
    has it; faces that get no character are left out of the book."""
    wanted: dict[Face, set[str]] = defaultdict(set)
    for (style, weight), characters in sorted(usage.items()):
        stack = [
            face
            for family in font_stack(style, language)
            for face in FACES
            if face.family == family and (face.weight == weight or face.style == "fallback")
        ]
        maps = [(face, cmap(face.file)) for face in stack]
        for character in characters:
            for face, code_points in maps:
                if ord(character) in code_points:
                    wanted[face].add(character)
                    break
    return {face: subset_face(face, chars) for face, chars in sorted(wanted.items(), key=lambda kv: FACES.index(kv[0]))}


def subset_face(face: Face, characters: Iterable[str]) -> bytes:
    """``face`` cut down to ``characters``, with :data:`FONT_FEATURES` and the name
    records (licence and licence URL included). During a build, taken from the report's
    cache when the face and the characters are unchanged (report.fonts.subset)."""
    return subset(face, characters, FONT_FEATURES)


# --- package --------------------------------------------------------------------------------


class _Writer(epub.EpubWriter):  # type: ignore[misc]
    """ebooklib's writer, with ``xml:lang`` on the package, without ebooklib's own
    generator tag, and with the print page list in the NCX. It writes the members of the
    container (:meth:`members`), not the ZIP: :func:`report.render.zipped.write_zip` does, which
    takes the compressed members of the last EPUB that are the same (written to a ZIP first and
    read back, they cost 0.035 s of a 586-page book's EPUB)."""

    language = ""
    page_list: Sequence[tuple[str, str]] = ()
    page_list_title = ""
    ncx = b""  # the NCX: EpubRenderer._ncx makes it (see made_ncx) before the members are written

    def members(self) -> list[tuple[str, bytes]]:
        """Each member's name and bytes, in the order ebooklib writes them."""
        self.out = _Members()
        self.out.writestr("mimetype", "application/epub+zip")
        self._write_container()
        self._write_opf()
        self._write_items()
        return self.out.written

    def _write_opf_file(self, root: etree._Element) -> None:
        root.set(XML_LANG, self.language)
        for meta in root.iter("meta", "{http://www.idpf.org/2007/opf}meta"):
            if meta.get("name") == "generator" and (meta.get("content") or "").startswith("Ebook-lib"):
                meta.getparent().remove(meta)
        super()._write_opf_file(root)

    def _get_ncx(self) -> bytes:
        assert self.ncx, "the NCX is made before the members (see EpubRenderer._ncx)"
        return self.ncx

    def contents_ncx(self) -> bytes:
        """ebooklib's NCX of the book's contents (see made_ncx)."""
        return bytes(super()._get_ncx())

    def made_ncx(self, contents: bytes) -> bytes:
        """``contents`` (see contents_ncx) with the language and the print page list."""
        return self._ncx_with(contents, self.page_list, *_page_counts(self.page_list))

    def ncx_shell(self, contents: bytes) -> bytes:
        """``contents`` with the language and a page list of one stand-in page, its counts
        standing in too (see ncx_from_shell)."""
        return self._ncx_with(contents, [_STAND_IN_PAGE], *_NCX_COUNTS_STAND_IN)

    def ncx_from_shell(self, shell: str) -> str | None:
        """The NCX made from ``shell`` (see ncx_shell), its stand-in page's target written out for
        each page of the page list and its counts set: as made_ncx makes it from the contents
        (its page list made and written whole: 620 pages' took 12 ms), but where the targets
        would not be written as they are (see _PAGE_TARGET; None: made_ncx then)."""
        stand_in = _page_target(1, *_STAND_IN_PAGE)
        if not self.page_list or shell.count(stand_in) != 1:
            return None
        if not _written_as_they_are(self.page_list):
            return None
        targets = "".join(_page_target(number, *page) for number, page in enumerate(self.page_list, start=1))
        made = shell.replace(stand_in, targets)
        for stand_in_count, count in zip(_NCX_COUNTS_STAND_IN, _page_counts(self.page_list), strict=True):
            made = made.replace(f'content="{stand_in_count}"', f'content="{count}"')
        return made

    def _ncx_with(self, contents: bytes, pages: Sequence[tuple[str, str]], total: str, maximum: str) -> bytes:
        root = etree.fromstring(contents, etree.XMLParser(remove_blank_text=True))
        root.set(XML_LANG, self.language)
        head = root.find(f"{{{NCX_NS}}}head")
        values = {"dtb:depth": "2", "dtb:totalPageCount": total, "dtb:maxPageNumber": maximum}
        for meta in head if head is not None else ():
            if meta.get("name") in values:
                meta.set("content", values[meta.get("name")])
        if pages:
            page_list = etree.SubElement(root, f"{{{NCX_NS}}}pageList")
            label = etree.SubElement(etree.SubElement(page_list, f"{{{NCX_NS}}}navLabel"), f"{{{NCX_NS}}}text")
            label.text = self.page_list_title
            for number, (page_label, href) in enumerate(pages, start=1):
                attributes = {"id": f"pagetarget-{number}", "type": "normal"}
                if page_label.isdigit():
                    attributes["value"] = page_label
                target = etree.SubElement(page_list, f"{{{NCX_NS}}}pageTarget", attributes)
                text = etree.SubElement(etree.SubElement(target, f"{{{NCX_NS}}}navLabel"), f"{{{NCX_NS}}}text")
                text.text = page_label
                etree.SubElement(target, f"{{{NCX_NS}}}content", {"src": href})
        return bytes(etree.tostring(root, pretty_print=True, encoding="utf-8", xml_declaration=True))


def _written_as_they_are(page_list: Sequence[tuple[str, str]]) -> bool:
    """Whether each label and link of the page list is made of characters XML writes as they are
    (see _PLAIN_ITEM): its items are then written out from a stand-in's."""
    return all(_PLAIN_ITEM.fullmatch(label) and _PLAIN_ITEM.fullmatch(href) for label, href in page_list)


def _page_counts(page_list: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The NCX's count of a page list's pages, and its highest page number."""
    numbers = [int(label) for label, _ in page_list if label.isdigit()]
    return str(len(page_list)), str(max(numbers, default=0))


def _page_target(number: int, label: str, href: str) -> str:
    """A page list's target in the NCX as lxml writes it (see _PAGE_TARGET)."""
    value = f' value="{label}"' if label.isdigit() else ""
    return _PAGE_TARGET.format(number=number, value=value, label=label, href=href)


class _Members:
    """Where ebooklib's writer writes the container's members (as it would into a ZIP)."""

    def __init__(self) -> None:
        self.written: list[tuple[str, bytes]] = []

    def writestr(self, name: str, data: str | bytes, compress_type: int | None = None) -> None:
        self.written.append((name, data.encode() if isinstance(data, str) else data))


def _landmark_inputs(assembler: Assembler) -> list[tuple[str, str, str, bool]]:
    """What the navigation's landmarks are made of (see Assembler.epub_nav)."""
    return [
        (chapter.id, chapter.matter.value, chapter.title, "glossary" in chapter.classes)
        for chapter in assembler.book.chapters
    ]


def _normalised_zip(members: list[tuple[str, bytes]], modified: dt.datetime, earlier: Zipped | None) -> Zipped:
    """The members in a ZIP with fixed timestamps: ``mimetype`` first and stored, the rest
    deflated (as in ``earlier``, the report's last EPUB, where they are the same)."""
    return write_zip(sorted(members, key=lambda member: member[0] != STORED_FIRST), modified, earlier)


def _ncx_entry(entry: NavEntry, index: int | str) -> object:
    """An entry of the NCX (parts hold chapters, chapters hold sections)."""
    link = epub.Link(entry.href, entry.title, f"nav-{index}")
    if entry.children:
        return (link, [_ncx_entry(child, f"{index}-{n}") for n, child in enumerate(entry.children)])
    return link
