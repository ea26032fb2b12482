"""The print PDF, by WeasyPrint, in a spawned process.

WeasyPrint is not fork- or thread-safe, and fontconfig must be pointed at the
bundled fonts before Pango starts: a fresh process does both cleanly.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report.assemble import Assembler
from report.fonts import FACES, fontconfig_file, fonts_dir
from report.render import Output, PageStart

CACHE_DIR_NAME = ".report-cache"
COVER_HEIGHT = 1600  # pixels: the first page as the EPUB's cover image
_COVERS: dict[str, bytes] = {}  # digest of a print document → its first page as PNG


@dataclass(frozen=True)
class PdfJob:
    html: str
    stylesheets: tuple[str, ...]
    base_url: str
    allowed_roots: tuple[Path, ...]
    target: Path | None  # None: lay out only (to learn where pages begin), write nothing
    fontconfig: Path
    variant: str | None


class PdfRenderer:
    format = "pdf"

    def render(self, assembler: Assembler, target: Path) -> Output:
        pages, page_starts, warnings = self._run(assembler, target)
        return Output(self.format, target, target.stat().st_size, pages, tuple(warnings), page_starts)

    def page_starts(self, assembler: Assembler) -> tuple[PageStart, ...]:
        """Where each printed page begins, without writing a PDF (for an EPUB built alone)."""
        return self._run(assembler, None)[1]

    def cover_png(self, assembler: Assembler) -> bytes:
        """The first printed page as a PNG (the EPUB's cover image): kept from this
        process's layout of the same document, else laid out now."""
        key = _cover_key(self._job(assembler, None))
        if key not in _COVERS:
            self._run(assembler, None)
        return _COVERS[key]

    def _run(self, assembler: Assembler, target: Path | None) -> tuple[int, tuple[PageStart, ...], list[str]]:
        job = self._job(assembler, target)
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pages, starts, warnings, cover = pool.submit(render_pdf, job).result()
        _COVERS.clear()  # one document per build: keep the latest only
        _COVERS[_cover_key(job)] = cover
        return pages, starts, warnings

    def _job(self, assembler: Assembler, target: Path | None) -> PdfJob:
        config = assembler.book.config
        font_urls = {face.file: (fonts_dir() / face.file).as_uri() for face in FACES}
        return PdfJob(
            html=assembler.print_document(),
            stylesheets=tuple(assembler.print_stylesheets(font_urls)),
            base_url=config.root.as_uri() + "/",
            allowed_roots=(config.root, fonts_dir()),
            target=target,
            fontconfig=fontconfig_file(config.root / CACHE_DIR_NAME),
            variant=None if config.pdf.variant == "none" else config.pdf.variant,
        )


def _cover_key(job: PdfJob) -> str:
    return hashlib.sha256("\0".join((job.html, *job.stylesheets)).encode()).hexdigest()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def render_pdf(job: PdfJob) -> tuple[int, tuple[PageStart, ...], list[str], bytes]:
    """Runs in the worker process: returns the page count, where each page begins,
    WeasyPrint's warnings and the first page as PNG."""
    os.environ["FONTCONFIG_FILE"] = str(job.fontconfig)
    import weasyprint

    from report.sandbox import SandboxedFetcher

    collector = _Collect()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(collector)
    logger.propagate = False
    fetcher = SandboxedFetcher(job.allowed_roots)
    font_config = weasyprint.text.fonts.FontConfiguration()
    stylesheets = [
        weasyprint.CSS(string=css, base_url=job.base_url, url_fetcher=fetcher, font_config=font_config)
        for css in job.stylesheets
    ]
    document = weasyprint.HTML(string=job.html, base_url=job.base_url, url_fetcher=fetcher).render(
        stylesheets=stylesheets, font_config=font_config, pdf_variant=job.variant, pdf_tags=True
    )
    if job.target is not None:
        document.write_pdf(job.target, pdf_variant=job.variant, pdf_tags=True, attachments=[])
    starts = []
    seen: set[str] = set()
    for number, page in enumerate(document.pages, start=1):
        # A box continued from the page before keeps its element's id: only elements not
        # seen on an earlier page begin here.
        beginning = {name: area for name, area in page.anchors.items() if name not in seen}
        seen.update(page.anchors)
        if beginning:
            # The anchor nearest the top of the page (then the left) is where the page begins.
            first = min(beginning.items(), key=lambda item: (round(item[1][1]), item[1][0]))
            starts.append(PageStart(str(number), first[0]))
    return len(document.pages), tuple(starts), collector.messages, _first_page_png(document)


def _first_page_png(document: Any) -> bytes:
    import io

    import pypdfium2

    pdf = pypdfium2.PdfDocument(document.copy(document.pages[:1]).write_pdf())
    page = pdf[0]
    buffer = io.BytesIO()
    page.render(scale=COVER_HEIGHT / page.get_height()).to_pil().convert("RGB").save(buffer, "PNG")
    pdf.close()
    return buffer.getvalue()
