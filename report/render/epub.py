"""The EPUB 3, by ebooklib, with the bundled fonts subset to the book's characters.

ebooklib's traps, and how they are avoided here: pages are plain XHTML items
(ebooklib's own HTML round-trip drops ``epub:type`` and inline SVG namespaces);
the cover page is linear (a non-linear cover fails OPF-096); each author gets
its own creator id; fonts get their real media types; every document sits at
the top of the package so that relative links to ``css/`` stay right.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections import defaultdict
from pathlib import Path

from ebooklib import epub
from lxml import etree

from report import __version__
from report.assemble import Assembler, NavEntry
from report.fonts import FACES, Face, cmap, font_stack, subset
from report.render import Output, PageStart

XHTML = "application/xhtml+xml"
STYLESHEET = "css/book.css"
FONT_MEDIA_TYPES = {".otf": "font/otf", ".ttf": "font/ttf"}
IMAGE_MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".webp": "image/webp",
}  # fmt: skip


class EpubRenderer:
    format = "epub"

    def __init__(self, print_pages: tuple[PageStart, ...] = ()) -> None:
        self.print_pages = print_pages

    def render(self, assembler: Assembler, target: Path) -> Output:
        book = assembler.book
        config = book.config
        # The stylesheet is written twice: first to learn the characters, then with the fonts.
        pages = assembler.epub_pages(STYLESHEET)
        nav = assembler.epub_nav(STYLESHEET)
        characters = _characters([page.xhtml for page in pages] + [nav])
        fonts = _font_subsets(characters, config.language)
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
        ebook.add_metadata(None, "meta", "", {"name": "generator", "content": f"report {__version__}"})

        ebook.add_item(
            epub.EpubItem(uid="stylesheet", file_name=STYLESHEET, media_type="text/css", content=stylesheet.encode())
        )
        for index, (face, data) in enumerate(fonts.items(), start=1):
            media_type = FONT_MEDIA_TYPES[Path(face.file).suffix]
            ebook.add_item(
                epub.EpubItem(uid=f"font{index}", file_name=f"fonts/{face.file}", media_type=media_type, content=data)
            )
        seen_images: set[Path] = set()
        for chapter in book.chapters:
            for image in chapter.images:
                if image.suffix.lower() == ".svg" or image in seen_images:
                    continue  # SVG figures are inline
                seen_images.add(image)
                ebook.add_item(
                    epub.EpubItem(
                        uid=f"image{len(seen_images)}",
                        file_name=image.relative_to(config.root).as_posix(),
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
        nav_item = epub.EpubItem(uid="nav", file_name="nav.xhtml", media_type=XHTML, content=nav.encode())
        nav_item.properties = ["nav"]
        ebook.add_item(nav_item)
        ebook.add_item(epub.EpubNcx())
        ebook.toc = [_ncx_entry(entry, index) for index, entry in enumerate(assembler.epub_toc())]
        ebook.spine = [spine_items[0], nav_item, *spine_items[1:]]

        modified = build_time(config.date)
        buffer = io.BytesIO()
        epub.write_epub(
            buffer, ebook, {"mtime": modified, "epub3_pages": False, "epub2_guide": False, "epub3_landmark": False}
        )
        target.write_bytes(_normalised_zip(buffer.getvalue(), modified))
        return Output(self.format, target, target.stat().st_size, len(pages))


def build_time(date: dt.date | None) -> dt.datetime:
    """``SOURCE_DATE_EPOCH`` if set, else the report's date: never the clock, so builds repeat."""
    if epoch := os.environ.get("SOURCE_DATE_EPOCH"):
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).replace(tzinfo=None)
    if date is not None:
        return dt.datetime(date.year, date.month, date.day)
    return dt.datetime(2000, 1, 1)


def _normalised_zip(data: bytes, modified: dt.datetime) -> bytes:
    """Same entries, fixed timestamps: ``mimetype`` first and stored, the rest deflated."""
    stamp = (max(modified.year, 1980), modified.month, modified.day, modified.hour, modified.minute, modified.second)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            target.writestr(entry, source.read(info.filename), compresslevel=9)
    return out.getvalue()


def _characters(documents: list[str]) -> set[str]:
    characters: set[str] = set()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for document in documents:
        root = etree.fromstring(document.encode(), parser)
        for text in root.itertext():
            characters.update(text)
        for element in root.iter():
            for name in ("alt", "aria-label", "title"):
                if value := element.get(name):
                    characters.update(value)
    return {c for c in characters if c.isprintable() or c == "\u3000"}


def _font_subsets(characters: set[str], language: str) -> dict[Face, bytes]:
    """Each character goes to the first face of each stack (serif and sans, regular and
    bold) that has it; faces that get no character are left out of the book."""
    wanted: dict[Face, set[str]] = defaultdict(set)
    for style in ("serif", "sans"):
        for weight in (400, 700):
            stack = [
                face
                for family in font_stack(style, language)
                for face in FACES
                if face.family == family and (face.weight == weight or face.style == "symbols")
            ]
            for character in characters:
                for face in stack:
                    if ord(character) in cmap(face.file):
                        wanted[face].add(character)
                        break
    return {face: subset(face, chars) for face, chars in sorted(wanted.items(), key=lambda kv: FACES.index(kv[0]))}


def _ncx_entry(entry: NavEntry, index: int) -> object:
    link = epub.Link(entry.href, entry.title, f"nav-{index}")
    if entry.children:
        return (
            link,
            [epub.Link(child.href, child.title, f"nav-{index}-{n}") for n, child in enumerate(entry.children)],
        )
    return link
