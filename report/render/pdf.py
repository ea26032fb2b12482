"""The print PDF, by WeasyPrint, in a spawned process.

WeasyPrint is not fork- or thread-safe, and fontconfig must be pointed at the
bundled fonts before Pango starts: a fresh process does both cleanly. The
process (:class:`PdfWorker`) is started ahead of need, so that it imports
WeasyPrint while the main process parses, and reports the page layout as soon as
it has it, so that the EPUB is written while the PDF is still being drawn.

WeasyPrint never sees the 16–25 MB bundled faces: each job's ``@font-face``
rules point at subsets of them, cut to the characters the document can draw and
kept in the report's cache, and its fontconfig knows no other font file.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from report.assemble import Assembler
from report.cache import Cache, code_fingerprint, digest
from report.fonts import FACES, bundled_coverage, fontconfig_file, print_characters, subset_file
from report.render import Output, PageStart

CACHE_DIR_NAME = ".report-cache"
COVER_HEIGHT = 1600  # pixels: the first page as the EPUB's cover image
_COVERS: dict[str, bytes] = {}  # digest of a print document → its first page as PNG
_JOBS: weakref.WeakKeyDictionary[Assembler, PdfJob] = weakref.WeakKeyDictionary()
_NOTDEF = re.compile(r"\.notdef glyph rendered for Unicode string unsupported by fonts: .*\(U\+([0-9A-Fa-f]+)\)")


@dataclass(frozen=True)
class PdfJob:
    html: str
    stylesheets: tuple[str, ...]
    base_url: str
    allowed_roots: tuple[Path, ...]
    target: Path | None  # None: lay out only (to learn where pages begin), write nothing
    fontconfig: Path
    variant: str | None


@dataclass(frozen=True)
class PdfLayout:
    """What the layout tells before the PDF is drawn: enough for the EPUB."""

    pages: int
    page_starts: tuple[PageStart, ...]
    cover: bytes  # the first page as PNG


LayoutCallback = Callable[[PdfLayout], None]


@dataclass(frozen=True)
class PdfResult:
    layout: PdfLayout
    warnings: tuple[str, ...]
    fetched: tuple[Path, ...] = ()  # every local file WeasyPrint read (fonts, images, stylesheets)
    notdef: tuple[int, ...] = ()  # code points drawn as .notdef: no face of the job has them


class PdfRenderer:
    format = "pdf"

    def __init__(self, cache: Cache | None = None, worker: PdfWorker | None = None) -> None:
        self.cache = cache
        self.worker = worker

    def render(self, assembler: Assembler, target: Path) -> Output:
        return self.start(assembler, target).finish()

    def page_starts(self, assembler: Assembler) -> tuple[PageStart, ...]:
        """Where each printed page begins, without writing a PDF (for an EPUB built alone)."""
        return self.start(assembler, None).finish().page_starts

    def cover_png(self, assembler: Assembler) -> bytes:
        """The first printed page as a PNG (the EPUB's cover image): kept from this
        process's layout of the same document, else laid out now."""
        key = _cover_key(self._job(assembler, None))
        if key not in _COVERS:
            self.start(assembler, None).finish()
        return _COVERS[key]

    def start(self, assembler: Assembler, target: Path | None) -> PdfRun:
        """Lay out (and with a ``target``, write) the PDF: from the cache when the same job
        was done before, else in the worker. Returns at once; the run reports its layout
        first and its PDF later."""
        return PdfRun(self, assembler, target)

    def _cache_for(self, assembler: Assembler) -> Cache:
        return self.cache or Cache(assembler.book.config.root / CACHE_DIR_NAME)

    def _job(self, assembler: Assembler, target: Path | None, again: bool = False) -> PdfJob:
        """The job for the assembler's document: made once per assembler (the EPUB asks for the
        cover with the same document), unless ``again`` (the characters to subset changed)."""
        known = _JOBS.get(assembler)
        if known is not None and not again:
            return replace(known, target=target)
        config = assembler.book.config
        cache = self._cache_for(assembler)
        document = assembler.print_document()
        characters = print_characters(document, assembler.print_stylesheets({})) | _extra_characters(cache)
        font_urls = {face.file: subset_file(face, characters, cache).as_uri() for face in FACES}
        _JOBS[assembler] = job = PdfJob(
            html=document,
            stylesheets=tuple(assembler.print_stylesheets(font_urls)),
            base_url=config.root.as_uri() + "/",
            allowed_roots=(config.root, cache.directory / "objects"),
            target=target,
            fontconfig=fontconfig_file(cache.root, bundled_dir=False),
            variant=None if config.pdf.variant == "none" else config.pdf.variant,
        )
        return job


class PdfRun:
    """One PDF (or layout only) in progress."""

    def __init__(self, renderer: PdfRenderer, assembler: Assembler, target: Path | None) -> None:
        self.renderer = renderer
        self.assembler = assembler
        self.target = target
        self.cache = renderer._cache_for(assembler)
        self.rendered = False  # laid out afresh (not taken from the cache)
        self.fetched: tuple[Path, ...] = ()
        self._job = renderer._job(assembler, target)
        self._key = job_key(self._job)
        self._result: PdfResult | None = None
        self._pdf: bytes | None = None
        self._task: PdfTask | None = None
        self._own_worker: PdfWorker | None = None
        if not self._from_cache():
            self._submit()

    def layout(self) -> PdfLayout:
        if self._result is not None:
            return self._result.layout
        assert self._task is not None
        return self._task.layout()

    def finish(self) -> Output:
        """Wait for the PDF; returns it as an :class:`Output` (written to the target, if any)."""
        try:
            while self._result is None:
                assert self._task is not None
                result = self._task.result()
                missing = set(result.notdef) & bundled_coverage()
                if missing and self._retry(missing):
                    continue
                self._store(result)
        finally:
            self.close()
        result = self._result
        assert result is not None
        if self.target is not None and self._pdf is not None:
            self.target.write_bytes(self._pdf)
        size = self.target.stat().st_size if self.target is not None else 0
        path = self.target or Path()
        return Output("pdf", path, size, result.layout.pages, result.warnings, result.layout.page_starts)

    def close(self) -> None:
        """Stop waiting: an unfinished job is abandoned (its worker stopped)."""
        if self._task is not None and not self._task.done:
            self._task.abandon()
        if self._own_worker is not None:
            self._own_worker.close()
            self._own_worker = None

    def _from_cache(self) -> bool:
        value = self.cache.load("pdf", self._key)
        if value is None:
            return False
        try:
            layout = PdfLayout(
                pages=int(value["pages"]),
                page_starts=tuple(PageStart(str(label), str(anchor)) for label, anchor in value["page_starts"]),
                cover=self.cache.object_bytes(str(value["cover"])) or b"",
            )
            pdf = self.cache.object_bytes(str(value["pdf"])) if value.get("pdf") else None
            fetched = tuple(Path(path) for path in value["fetched"])
            warnings_ = tuple(str(message) for message in value["warnings"])
        except (KeyError, TypeError, ValueError):
            return False
        if not layout.cover or (self.target is not None and pdf is None):
            return False  # laid out before, but the PDF itself was not kept: render it
        self._result = PdfResult(layout, warnings_, fetched)
        self._pdf = pdf
        self.fetched = fetched
        self._remember_cover(layout)
        return True

    def _submit(self) -> None:
        worker = self.renderer.worker
        if worker is None or not worker.alive:
            worker = self._own_worker = PdfWorker(self._job.fontconfig)
        self._task = worker.submit(self._job, on_layout=self._remember_cover)
        self.rendered = True

    def _remember_cover(self, layout: PdfLayout) -> None:
        _COVERS.clear()  # one document per build: keep the latest only
        _COVERS[_cover_key(self._job)] = layout.cover

    def _retry(self, missing: set[int]) -> bool:
        """A character was drawn as .notdef that a bundled face has (generated by CSS in a way
        :func:`print_characters` did not foresee): add it to the subsets and lay out again.
        The additions are kept for the report, so its next builds ask for them from the start."""
        before = _extra_characters(self.cache)
        added = before | {chr(code) for code in missing}
        if added == before:
            return False  # already tried with these: the warning stays
        self.cache.store("pdf-extra", _EXTRA_KEY, {"characters": "".join(sorted(added))})
        self._job = self.renderer._job(self.assembler, self.target, again=True)
        self._key = job_key(self._job)
        self._submit()
        return True

    def _store(self, result: PdfResult) -> None:
        self._result = result
        objects = {"cover": self.cache.put_object(result.layout.cover, ".png")}
        if self.target is not None:
            self._pdf = self.target.read_bytes()
            objects["pdf"] = self.cache.put_object(self._pdf, ".pdf")
        own = self.cache.directory / "objects"
        fetched = tuple(path for path in result.fetched if not path.is_relative_to(own))
        self.fetched = fetched
        deps = {f"file:{path}": self.cache.file_digest(path) for path in fetched}
        value = {
            "pages": result.layout.pages,
            "page_starts": [[start.label, start.anchor] for start in result.layout.page_starts],
            "warnings": list(result.warnings),
            "fetched": [str(path) for path in fetched],
            **objects,
        }
        self.cache.store("pdf", self._key, value, deps=deps, objects=objects.values())
        self._pdf = None  # already at the target


def job_key(job: PdfJob) -> str:
    """Everything a PDF is made from but the files WeasyPrint fetches (the cache checks those
    separately): the document, its stylesheets (their font URLs name the subsets by hash),
    the PDF variant, and the renderer's code."""
    return digest(
        code_fingerprint("report.render.pdf", "report.sandbox"),
        job.html,
        *job.stylesheets,
        job.base_url,
        job.variant or "",
    )


_EXTRA_KEY = digest("pdf-extra")


def _extra_characters(cache: Cache) -> frozenset[str]:
    """Characters earlier layouts of the report found they needed beyond :func:`print_characters`."""
    value = cache.load("pdf-extra", _EXTRA_KEY)
    return frozenset(str(value.get("characters", ""))) if value is not None else frozenset()


def _cover_key(job: PdfJob) -> str:
    return hashlib.sha256("\0".join((job.html, *job.stylesheets)).encode()).hexdigest()


# --- the worker process ---------------------------------------------------------------------


class RenderTimeout(Exception):
    """WeasyPrint did not finish in time (a pathological document); the worker was stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def render_timeout() -> float:
    """Seconds one PDF may take; ``REPORT_RENDER_TIMEOUT`` overrides the default of 15 minutes."""
    try:
        return float(os.environ.get("REPORT_RENDER_TIMEOUT", "900"))
    except ValueError:
        return 900.0


class PdfWorker:
    """A spawned process that renders PDFs one at a time. It imports WeasyPrint as soon as
    it starts, and stays warm between jobs (``report watch`` keeps one for the session)."""

    def __init__(self, fontconfig: Path | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, fontconfig), name="report-pdf", daemon=True)
        self._process.start()
        child.close()
        self._busy = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._process.is_alive() and not self._connection.closed

    def submit(self, job: PdfJob, on_layout: LayoutCallback | None = None) -> PdfTask:
        self._busy.acquire()
        try:
            self._connection.send(job)
        except BaseException:
            self._busy.release()
            raise
        return PdfTask(self, on_layout)

    def close(self) -> None:
        """Stop the process (it keeps nothing worth waiting for, and may still be importing)."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        if not self._connection.closed:
            self._connection.close()

    terminate = close

    def __enter__(self) -> PdfWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class PdfTask:
    """A job in the worker: its layout arrives first, then its result."""

    worker: PdfWorker
    on_layout: LayoutCallback | None = None
    done: bool = False
    _layout: PdfLayout | None = None
    _result: PdfResult | None = field(default=None, repr=False)

    def layout(self) -> PdfLayout:
        while self._layout is None:
            self._receive()
        return self._layout

    def result(self) -> PdfResult:
        while self._result is None:
            self._receive()
        return self._result

    def abandon(self) -> None:
        self.done = True
        self.worker.terminate()
        self._release()

    def _receive(self) -> None:
        if self.done:
            raise RuntimeError("the PDF job was abandoned")
        if not self.worker._connection.poll(render_timeout()):
            self.abandon()
            raise RenderTimeout(render_timeout())
        try:
            kind, payload = self.worker._connection.recv()
        except (EOFError, OSError):
            self.abandon()
            code = self.worker._process.exitcode
            raise RuntimeError(f"the PDF worker stopped unexpectedly (exit code {code})") from None
        if kind == "layout":
            self._layout = payload
            if self.on_layout is not None:
                self.on_layout(payload)
        elif kind == "done":
            self._result = payload
            self.done = True
            self._release()
        else:
            self.done = True
            self._release()
            raise RuntimeError(f"the PDF could not be rendered:\n{payload}")

    def _release(self) -> None:
        if self.worker._busy.locked():
            self.worker._busy.release()


def _serve(connection: Connection, fontconfig: Path | None) -> None:
    """The worker's loop: import WeasyPrint at once, then render each job sent."""
    if fontconfig is not None:
        os.environ["FONTCONFIG_FILE"] = str(fontconfig)
    # Our fontconfig knows no font file: every face comes from the job's @font-face rules.
    warnings.filterwarnings("ignore", message="No fonts configured in FontConfig")
    # WeasyPrint tries several names for each library it loads; for each name that is not
    # found, ctypes' find_library runs ldconfig, gcc and ld (half a second in all). Every
    # list of names ends with the plain soname, which the dynamic loader finds by itself.
    import ctypes.util

    def not_searched(name: str) -> str | None:
        return None

    find_library = ctypes.util.find_library
    ctypes.util.find_library = not_searched
    try:
        import weasyprint  # noqa: F401
    finally:
        ctypes.util.find_library = find_library

    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            result = render_pdf(job, on_layout=lambda layout: connection.send(("layout", layout)))
            connection.send(("done", result))
        except Exception:
            connection.send(("error", traceback.format_exc()))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def render_pdf(job: PdfJob, on_layout: LayoutCallback | None = None) -> PdfResult:
    """Runs in the worker process: lays out, reports the layout (page count, where each page
    begins, the first page as PNG) to ``on_layout``, then writes the PDF if the job has a
    target. Returns the layout with WeasyPrint's warnings and the files it read."""
    os.environ["FONTCONFIG_FILE"] = str(job.fontconfig)
    import weasyprint

    from report.sandbox import SandboxedFetcher

    class RecordingFetcher(SandboxedFetcher):
        def __init__(self, allowed_roots: tuple[Path, ...]) -> None:
            super().__init__(allowed_roots)
            self.fetched: list[Path] = []

        def fetch(self, url: str, headers: object = None) -> Any:
            response = super().fetch(url, headers)
            if urlsplit(url).scheme.lower() == "file":
                self.fetched.append(Path(unquote(urlsplit(url).path)).resolve())
            return response

    collector = _Collect()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(collector)
    logger.propagate = False
    try:
        fetcher = RecordingFetcher(job.allowed_roots)
        font_config = weasyprint.text.fonts.FontConfiguration()
        stylesheets = [
            weasyprint.CSS(string=css, base_url=job.base_url, url_fetcher=fetcher, font_config=font_config)
            for css in job.stylesheets
        ]
        document = weasyprint.HTML(string=job.html, base_url=job.base_url, url_fetcher=fetcher).render(
            stylesheets=stylesheets, font_config=font_config, pdf_variant=job.variant, pdf_tags=True
        )
        layout = PdfLayout(len(document.pages), _page_starts(document), _first_page_png(document))
        if on_layout is not None:
            on_layout(layout)
        if job.target is not None:
            document.write_pdf(job.target, pdf_variant=job.variant, pdf_tags=True, attachments=[])
    finally:
        logger.removeHandler(collector)
    notdef = sorted({int(m.group(1), 16) for message in collector.messages if (m := _NOTDEF.search(message))})
    return PdfResult(layout, tuple(collector.messages), tuple(dict.fromkeys(fetcher.fetched)), tuple(notdef))


def _page_starts(document: Any) -> tuple[PageStart, ...]:
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
    return tuple(starts)


def _first_page_png(document: Any) -> bytes:
    import io

    import pypdfium2

    pdf = pypdfium2.PdfDocument(document.copy(document.pages[:1]).write_pdf())
    page = pdf[0]
    buffer = io.BytesIO()
    page.render(scale=COVER_HEIGHT / page.get_height()).to_pil().convert("RGB").save(buffer, "PNG")
    pdf.close()
    return buffer.getvalue()
