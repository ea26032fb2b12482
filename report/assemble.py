"""Stage 4 — assemble: the resolved book through Jinja2 templates into the documents
each renderer needs (one HTML document for print; XHTML pages for the EPUB).

Templates are autoescaped. A report overrides any built-in template by putting
a file of the same name in its ``templates/`` folder.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2
from lxml import etree
from lxml import html as lxml_html
from markupsafe import Markup

from report import __version__
from report.cache import Cache, code_fingerprint, digest
from report.code import highlight_css
from report.config import PAGE_SIZES, Config
from report.css import report_stylesheet
from report.fonts import css_family_list, font_face_css
from report.i18n import is_cjk, words_for
from report.index import for_print
from report.model import EPUB_ONLY_SLOT, LOCAL_HREF, Book, Chapter, Matter

PACKAGE_DIR = Path(__file__).resolve().parent
_NOTE_CALL = re.compile(r'<a class="fnref" id="([\w-]+)-fnref(\d+)" href="#[\w-]+" role="doc-noteref">\d+</a>')
_RUBY = re.compile(r"<ruby>([^<]*)<rp>\(</rp><rt>([^<]*)</rt><rp>\)</rp></ruby>")
_PHRASE_BREAK = re.compile(r"(?=[「『（【〔])|(?<=[」』）】〕、・])")
_TEXT_NODE = re.compile(r">([^<>]+)<")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN_WORD = re.compile(r"[0-9]*[A-Za-z][A-Za-z0-9.-]*")
_FAR_XREF = re.compile(r'(<a href="#([^"]+)" class="xref xref-far">)(.*?)</a>')
_NOTE_REF = 'role="doc-noteref"'
XHTML_NS = "http://www.w3.org/1999/xhtml"
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
# Where the EPUB sets text in the sans face and in bold. The stylesheet and the font
# subsetting (render/epub.py) both follow these, so each face holds the characters set in it.
EPUB_SANS_ELEMENTS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "caption", "figcaption", "th", "nav", "svg"})
EPUB_SANS_SELECTORS = ("h1", "h2", "h3", "h4", "h5", "h6", "caption", "figcaption", "th", "nav", "svg")
# Code, in the monospace face (print and EPUB).
MONO_SELECTORS = ("code", "kbd", "samp", "pre")
EPUB_MONO_ELEMENTS = frozenset(MONO_SELECTORS)
EPUB_BOLD_ELEMENTS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "caption", "figcaption", "th", "dt", "strong", "b"})
# 縦中横: one or two digits standing alone (not part of 3.1, 2024, 10% or A4).
_TATE_CHU_YOKO = re.compile(r"(?<![0-9A-Za-z.,:/%+\-])([0-9]{1,2})(?![0-9A-Za-z.,:/%+\-])")
_NO_TATE_CHU_YOKO = frozenset({"rt", "rp", "code", "pre", "kbd", "samp", "title", "head"})
_LANDMARKS_TITLE = {"ja": "ランドマーク", "zh": "导航", "ko": "랜드마크", "en": "Landmarks"}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True)
class EpubPage:
    file_name: str
    title: str
    xhtml: str
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class NavEntry:
    href: str
    title: str
    children: tuple[NavEntry, ...] = ()


def long_date(date: dt.date, language: str) -> str:
    tag = language.lower()
    if tag.startswith(("ja", "zh")):
        return f"{date.year}年{date.month}月{date.day}日"
    if tag.startswith("ko"):
        return f"{date.year}년 {date.month}월 {date.day}일"
    return f"{date.day} {_MONTHS[date.month - 1]} {date.year}"


def to_xhtml(fragment: str) -> str:
    """An HTML fragment re-serialized as well-formed XHTML (void elements closed,
    HTML entities replaced by characters)."""
    if not fragment.strip():
        return fragment
    parts = lxml_html.fragments_fromstring(fragment)
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(Markup.escape(part))
        else:
            out.append(etree.tostring(part, method="xml", encoding="unicode"))
    return "".join(out)


@dataclass
class _KeptParts:
    """The print parts of the chapters of the last print document made in this process."""

    config: Config | None = None  # what the builder's templates read of the book besides the chapter
    parts: dict[int, tuple[Chapter, str]] = field(default_factory=dict)  # id() of the chapter → it, its part


# An unchanged chapter is the same object from build to build (see report.resolve._FILLED): its
# part is not rendered again while the config is the same. Only with the builder's own templates:
# a report's may read any of the book.
_KEPT_PARTS = _KeptParts()


class Assembler:
    def __init__(self, book: Book, profile: str = "screen", cache: Cache | None = None) -> None:
        self.book = book
        self.profile = profile
        self.cache = cache  # where the chapters' print bodies are kept (see _print_body)
        self._print_parts_made: dict[str, tuple[Chapter, str]] = {}  # chapter id → its part (see print_part)
        config = book.config
        self._own_templates = (config.root / "templates").is_dir()
        loaders: list[jinja2.BaseLoader] = []
        if self._own_templates:
            loaders.append(jinja2.FileSystemLoader(config.root / "templates"))
        loaders.append(jinja2.FileSystemLoader(PACKAGE_DIR / "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["long_date"] = lambda date: long_date(date, config.language)
        self.env.filters["print_body"] = self._print_body
        self.env.filters["xhtml"] = lambda fragment: Markup(to_xhtml(fragment))
        self.env.filters["phrases"] = phrases if is_cjk(config.language) else Markup.escape
        self.env.globals.update(
            config=config,
            book=book,
            words=words_for(config.language),
            cjk=is_cjk(config.language),
            version=__version__,
        )

    # --- print ------------------------------------------------------------------

    def print_document(self) -> str:
        """The whole print document in one (the preview shows it)."""
        return self.env.get_template("print.html.j2").render(cover=True, contents=True, chapters=self.book.chapters)

    @functools.cached_property
    def print_parts(self) -> tuple[tuple[str, str], ...]:
        """The print document as parts laid out one by one, each a whole HTML document: the
        cover and title page (``cover``), the table of contents (``contents``), then one part
        per chapter (its id). Made once (the PDF's fonts are cut to their characters, then
        they are laid out)."""
        template = self.env.get_template("print.html.j2")
        parts = [
            ("cover", template.render(cover=True, contents=False, chapters=())),
            ("contents", template.render(cover=False, contents=True, chapters=())),
        ]
        parts += [(chapter.id, self.print_part(chapter)) for chapter in self.book.chapters]
        if not self._own_templates:
            _KEPT_PARTS.config = self.book.config
            _KEPT_PARTS.parts = {id(c): self._print_parts_made[c.id] for c in self.book.chapters}
        return tuple(parts)

    def print_part(self, chapter: Chapter) -> str:
        """One chapter's part of :attr:`print_parts`, made alone (once: the PDF asks for an
        edited chapter's before the others'), or kept from the last document (see _KEPT_PARTS).
        (Of this chapter: a head start asks the last document's assembler for the part of a
        chapter edited since, see report.build.)"""
        made = self._print_parts_made.get(chapter.id)
        if made is None or made[0] is not chapter:
            kept = _KEPT_PARTS.parts.get(id(chapter))
            if kept is not None and kept[0] is chapter and self._kept_parts_apply:
                made = kept
            else:
                template = self.env.get_template("print.html.j2")
                made = (chapter, template.render(cover=False, contents=False, chapters=(chapter,)))
            self._print_parts_made[chapter.id] = made
        return made[1]

    @functools.cached_property
    def _kept_parts_apply(self) -> bool:
        return not self._own_templates and _KEPT_PARTS.config == self.book.config

    def print_stylesheets(self, font_urls: dict[str, str]) -> list[str]:
        config = self.book.config
        settings = config.pdf
        theme = (
            f"@page {{ size: {PAGE_SIZES[settings.page_size]}; margin: {settings.margin}; @top-left {{ content: {css_string(config.title)}; }} }}\n"
            f"html {{ font-family: {css_family_list(settings.font, config.language)}; font-size: {settings.font_size}; }}\n"
            f"h1, h2, h3, h4, caption, figcaption, th, nav.toc, .cover, .callout-title {{ font-family: {css_family_list('sans', config.language)}; }}\n"
            f"{', '.join(MONO_SELECTORS)} {{ font-family: {css_family_list('mono', config.language)}; }}\n"
        )
        if self.profile == "print":
            # For a print shop: 3 mm bleed, crop and registration marks, chapters on right-hand pages.
            theme += "@page { bleed: 3mm; marks: crop cross; }\nsection.chapter { break-before: right; }\n"
        return [
            font_face_css(font_urls),
            (PACKAGE_DIR / "styles" / "print.css").read_text(encoding="utf-8"),
            theme,
            highlight_css(),
            *_report_stylesheet(config.root, "print.css"),
        ]

    def _print_body(self, chapter: Chapter) -> Markup:
        """Each note floats to the foot of its page right after its call; call and note
        link to each other (WeasyPrint's own ::footnote-call is not a link)."""
        language = self.book.config.language
        key = ""
        if self.cache is not None:  # the same chapter, the same body: kept (a millisecond a chapter)
            footnotes = [[note.number, note.id, note.html] for note in chapter.footnotes]
            key = digest(code_fingerprint("report.assemble"), language, chapter.html_digest, json.dumps(footnotes))
            kept = self.cache.load("print-body", key)
            if kept is not None and isinstance(body := kept.get("html"), str):
                return Markup(chapter.html_with_svgs(body))
        notes = {note.number: note for note in chapter.footnotes}
        name = words_for(language).note

        def float_note(match: re.Match[str]) -> str:
            note = notes[int(match.group(2))]
            label = f' aria-label="{name.format(n=note.number)}"'  # what the PDF's link says: 「注1」
            call = match.group(0).replace(' role="doc-noteref"', f' role="doc-noteref"{label}')
            back = f'<a class="fnback" href="#{match.group(1)}-fnref{note.number}"{label}>{note.number}</a>'
            return f'{call}<span class="footnote" id="{note.id}">{back}{note.html}</span>'

        body = EPUB_ONLY_SLOT.sub("", for_print(chapter.html))
        body = _RUBY.sub(_ruby_with_room, _NOTE_CALL.sub(float_note, body))
        body = _FAR_XREF.sub(self._with_page_number, body)
        if is_cjk(language):
            body = _TEXT_NODE.sub(lambda m: f">{space_latin_words(m.group(1))}<", body)
        if self.cache is not None:
            self.cache.store("print-body", key, {"html": body})
        return Markup(chapter.html_with_svgs(body))

    def _with_page_number(self, xref: re.Match[str]) -> str:
        """A figure or table in another chapter: its page number (an empty span the PDF
        renderer fills) in the language's words, e.g. 「14ページの図1」."""
        number = f'<span class="page-number" data-page-of="{xref.group(2)}"></span>'
        words = words_for(self.book.config.language).page_reference
        text = "".join(
            {"{page}": number, "{label}": xref.group(3)}.get(piece, str(Markup.escape(piece)))
            for piece in re.split(r"(\{page\}|\{label\})", words)
        )
        # What the PDF's link says is the label alone: its text has the page number as a stand-in.
        label = html.escape(html.unescape(re.sub(r"<[^>]*>", "", xref.group(3))))
        return f'{xref.group(1)[:-1]} aria-label="{label}">{text}</a>'

    # --- EPUB -------------------------------------------------------------------

    def epub_stylesheet(self, font_urls: dict[str, str]) -> str:
        config = self.book.config
        theme = (
            f"html {{ font-family: {css_family_list(config.epub.font, config.language)}; }}\n"
            f"{', '.join(EPUB_SANS_SELECTORS)} {{ font-family: {css_family_list('sans', config.language)}; }}\n"
            f"{', '.join(MONO_SELECTORS)} {{ font-family: {css_family_list('mono', config.language)}; }}\n"
        )
        styles = [
            font_face_css(font_urls),
            (PACKAGE_DIR / "styles" / "epub.css").read_text(encoding="utf-8"),
            theme,
            highlight_css(),
        ]
        if config.epub.writing_mode == "vertical-rl":
            styles.append((PACKAGE_DIR / "styles" / "epub-vertical.css").read_text(encoding="utf-8"))
        return "".join([*styles, *_report_stylesheet(config.root, "epub.css")])

    def epub_cover_page(self, stylesheet: str, cover_image: str | None = None) -> EpubPage:
        """The cover: the printed cover as an image, when there is one."""
        words = words_for(self.book.config.language)
        cover = self.env.get_template("epub/cover.xhtml.j2").render(
            title=words.cover,
            stylesheet=stylesheet,
            body_type="frontmatter",
            cover_image=cover_image,
            cover_alt=self.epub_cover_text(),
        )
        return EpubPage("cover.xhtml", words.cover, self._epub_finish(cover))

    def epub_chapter_page(self, chapter: Chapter, stylesheet: str) -> EpubPage:
        body = self._epub_fragment(chapter, chapter.epub_html()).replace(_NOTE_REF, f'{_NOTE_REF} epub:type="noteref"')
        notes = [(note, Markup(self._epub_fragment(chapter, note.html))) for note in chapter.footnotes]
        section_type, section_role = _epub_semantics(chapter)
        xhtml = self.env.get_template("epub/chapter.xhtml.j2").render(
            chapter=chapter,
            body=Markup(chapter.html_with_svgs(body)),
            notes=notes,
            title=chapter.title,
            stylesheet=stylesheet,
            body_type=f"{chapter.matter.value}matter",
            section_type=section_type,
            section_role=section_role,
        )
        page = self._epub_finish(xhtml)
        properties = tuple(name for name, tag in (("mathml", "<math"), ("svg", "<svg")) if tag in page)
        return EpubPage(self.epub_file(chapter.id), chapter.title, page, properties)

    def epub_cover_text(self) -> str:
        """What the printed cover says, as one line: the cover image's text alternative."""
        config = self.book.config
        cjk = is_cjk(config.language)
        parts = [config.title, config.subtitle or "", ("、" if cjk else ", ").join(config.authors)]
        parts += [config.publisher or "", long_date(config.date, config.language) if config.date else ""]
        return ("　" if cjk else ". ").join(part for part in parts if part)

    def epub_toc(self) -> list[NavEntry]:
        """Chapters with their sections; the chapters of a part of the book under the part's
        title, which leads to its first chapter."""
        config = self.book.config
        entries: list[NavEntry] = []
        part_of = {path: part for part in config.parts for path in part.chapters}
        for chapter in self.book.chapters:
            children = tuple(
                NavEntry(f"{self.epub_file(chapter.id)}#{h.id}", _numbered(self.book.labels[h.id].number, h.text))
                for h in chapter.headings
                if h.level == 2
            )
            title = _numbered(chapter.label.caption_prefix or None, chapter.title)
            entry = NavEntry(self.epub_file(chapter.id), title, children)
            if (part := config.part_starting_at(chapter.source)) is not None:
                entries.append(NavEntry(entry.href, part.title, (entry,)))
            elif chapter.source in part_of:
                entries[-1] = replace(entries[-1], children=(*entries[-1].children, entry))
            else:
                entries.append(entry)
        return entries

    def epub_nav(
        self, stylesheet: str, page_list: Sequence[tuple[str, str]] = (), toc: list[NavEntry] | None = None
    ) -> str:
        """The navigation document: table of contents (``toc``, if made already), landmarks
        and, given (label, href) pairs of the printed pages, the page list."""
        language = self.book.config.language
        words = words_for(language)
        chapters = self.book.chapters
        first_body = next((c for c in chapters if c.matter is Matter.BODY), chapters[0])
        landmarks = [
            {"type": "cover", "href": "cover.xhtml", "title": words.cover},
            {"type": "toc", "href": "nav.xhtml#toc", "title": words.contents},
            {"type": "bodymatter", "href": self.epub_file(first_body.id), "title": words.start},
        ]
        first_back = next((c for c in chapters if c.matter is Matter.BACK), None)
        if first_back is not None:
            landmarks.append({"type": "backmatter", "href": self.epub_file(first_back.id), "title": first_back.title})
        glossary = next((c for c in chapters if "glossary" in c.classes), None)
        if glossary is not None:
            landmarks.append({"type": "glossary", "href": self.epub_file(glossary.id), "title": glossary.title})
        nav = self.env.get_template("epub/nav.xhtml.j2").render(
            title=words.contents,
            stylesheet=stylesheet,
            body_type="",
            toc=self.epub_toc() if toc is None else toc,
            landmarks=landmarks,
            landmarks_title=_LANDMARKS_TITLE.get(language.split("-")[0].lower(), "Landmarks"),
            page_list=page_list,
        )
        return self._epub_finish(nav)

    @staticmethod
    def epub_file(chapter_id: str) -> str:
        return f"{chapter_id}.xhtml"

    def epub_link_owners(self, chapter: Chapter) -> tuple[tuple[str, str | None], ...]:
        """The ids the chapter links to, each with the chapter that owns it: all that its EPUB
        page takes of the rest of the book (see :meth:`_epub_fragment`)."""
        return tuple(sorted((target, self.book.owner.get(target)) for target in chapter.linked_ids))

    def _epub_fragment(self, chapter: Chapter, fragment: str) -> str:
        """XHTML for the EPUB, with links to other chapters pointing at their files."""

        def link(match: re.Match[str]) -> str:
            target = match.group(1)
            owner = self.book.owner.get(target)
            if owner is None or owner == chapter.id:
                return match.group(0)
            return f'href="{self.epub_file(owner)}#{target}"'

        return LOCAL_HREF.sub(link, to_xhtml(fragment))

    def _epub_finish(self, xhtml: str) -> str:
        """Table headers get their scope; in vertical writing, short numbers are set
        upright across the line (縦中横)."""
        root = etree.fromstring(xhtml.encode(), _XML_PARSER)
        for th in root.iter(f"{{{XHTML_NS}}}th"):
            if th.get("scope") is None:
                th.set("scope", _header_scope(th))
        _drop_dangling_references(root)
        if self.book.config.epub.writing_mode == "vertical-rl":
            body = root.find(f"{{{XHTML_NS}}}body")
            if body is not None:
                _tate_chu_yoko(body)
        return bytes(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)).decode()


def _ruby_with_room(match: re.Match[str]) -> str:
    """Give a reading wider than its base (readings are set at half size) equal margins."""
    base, reading = match.group(1), match.group(2)
    overhang = (len(reading) / 2 - len(base)) / 2
    if overhang <= 0:
        return match.group(0)
    return match.group(0).replace("<ruby>", f'<ruby style="margin: 0 {overhang:.2f}em">', 1)


def space_latin_words(text: str) -> str:
    """A quarter-em gap (四分アキ, as JIS X 4051 sets it) between kana or kanji and a Latin word
    such as "MSMT" or "G7": the word is wrapped in a span that the stylesheet gives a margin on
    its Japanese side, so that the text itself stays as written (「watch中」 is found in the PDF
    and copied without a space). Plain numbers such as 2024年 stay tight."""

    def spaced(match: re.Match[str]) -> str:
        start, end = match.span()
        sides = [
            side
            for side, neighbour in (("aki-before", text[start - 1 : start]), ("aki-after", text[end : end + 1]))
            if neighbour and re.match(f"[{_CJK}]", neighbour)
        ]
        return f'<span class="{" ".join(sides)}">{match.group(0)}</span>' if sides else match.group(0)

    return _LATIN_WORD.sub(spaced, text)


def phrases(text: str) -> Markup:
    """Display text cut into phrases that a line never breaks inside: before an opening
    bracket, after a closing one or a list comma, so that a cover title breaks as
    「北朝鮮・ロシア／「包括的…条約」／の発効とその影響」, not inside a word."""
    parts = [part for part in _PHRASE_BREAK.split(text) if part]
    return Markup("").join(Markup('<span class="phrase">{}</span>').format(part) for part in parts)


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string: quotes, backslashes and line breaks escaped."""
    escaped = "".join(f"\\{ord(c):x} " if c in '"\\\n\r' or ord(c) < 0x20 else c for c in text)
    return f'"{escaped}"'


def _numbered(number: str | None, title: str) -> str:
    return f"{number}　{title}" if number else title


def _epub_semantics(chapter: Chapter) -> tuple[str, str]:
    if "colophon" in chapter.classes:
        return "colophon", "doc-colophon"
    if "glossary" in chapter.classes:
        return "glossary", "doc-glossary"
    if "bibliography" in chapter.classes:
        return "bibliography", "doc-bibliography"
    if "index" in chapter.classes:
        return "index", "doc-index"
    if chapter.matter is Matter.FRONT:
        return "preface", "doc-preface"
    if chapter.matter is Matter.BACK:
        return "appendix", "doc-appendix"
    return "chapter", "doc-chapter"


def _header_scope(th: etree._Element) -> str:
    """``col`` for a header row (in ``thead``, or a row of headers only), else ``row``."""
    row = th.getparent()
    group = row.getparent() if row is not None else None
    if group is not None and group.tag == f"{{{XHTML_NS}}}thead":
        return "col"
    if row is not None and all(cell.tag == f"{{{XHTML_NS}}}th" for cell in row):
        return "col"
    return "row"


def _drop_dangling_references(root: etree._Element) -> None:
    """``aria-labelledby`` and ``aria-describedby`` keep only ids the document has (a
    reference to a missing id is an EPUBCheck error and names nothing)."""
    ids = {element.get("id") for element in root.iter() if isinstance(element.tag, str)}
    for element in root.iter():
        for attribute in ("aria-labelledby", "aria-describedby"):
            value = element.get(attribute) if isinstance(element.tag, str) else None
            if value is None:
                continue
            kept = [ref for ref in value.split() if ref in ids]
            if kept:
                element.set(attribute, " ".join(kept))
            else:
                del element.attrib[attribute]


def _tate_chu_yoko(element: etree._Element) -> None:
    """Wrap short numbers in the text of ``element`` and its descendants in ``span.tcy``."""
    namespace, _, name = str(element.tag).partition("}")
    if namespace != "{" + XHTML_NS or name in _NO_TATE_CHU_YOKO or "tcy" in (element.get("class") or "").split():
        return
    children = list(element)
    element.text, spans = _tcy_spans(element.text)
    for index, span in enumerate(spans):
        element.insert(index, span)
    for child in children:
        if isinstance(child.tag, str):
            _tate_chu_yoko(child)
        child.tail, spans = _tcy_spans(child.tail)
        previous = child
        for span in spans:
            previous.addnext(span)
            previous = span


def _tcy_spans(text: str | None) -> tuple[str | None, list[etree._Element]]:
    """``text`` cut at its short numbers: the part before the first, and the numbers as
    spans whose tails hold the text after them."""
    parts = _TATE_CHU_YOKO.split(text or "")
    if len(parts) == 1:
        return text, []
    spans = []
    for number, after in zip(parts[1::2], parts[2::2], strict=True):
        span = etree.Element(f"{{{XHTML_NS}}}span", {"class": "tcy"})
        span.text = number
        span.tail = after or None
        spans.append(span)
    return parts[0] or None, spans


def _report_stylesheet(root: Path, name: str) -> list[str]:
    text = report_stylesheet(root, name)
    return [text] if text is not None else []
