"""The pipeline, top to bottom: load → parse → resolve → assemble → render → write.

Outputs are rendered to temporary files and renamed into place only when every
requested format has succeeded, so a failed build leaves the previous PDF and
EPUB as they were. A lock keeps two builds of one folder from interleaving.

Rebuilds are incremental (:mod:`report.cache`, in ``<report>/.report-cache/``):

- a build whose inputs (config, chapters, the files they use, templates, styles,
  fonts, the builder's code, the options) all hash as the last build into the same
  folder recorded, and whose outputs are still there as written, returns at once
  and writes nothing;
- otherwise each chapter is parsed only when it (or an image it uses) changed;
  fonts are subset once per character set; the PDF is laid out in parts (the
  cover, the contents, each chapter), and a part is laid out only when its HTML,
  the stylesheets or the fonts changed, and drawn only when that or its page
  numbers changed (:mod:`report.render.pdf`); the EPUB is written only when what
  it is made of (including the PDF's page starts and cover) changed.

The PDF's parts are laid out by worker processes that an earlier build (of this report or
another) left running (WeasyPrint loaded), or else started at the
beginning of the build, so that WeasyPrint loads while the chapters are parsed. The EPUB
is written as soon as the layout is known, while the parts are drawn and joined (an EPUB
built alone is written while the PDF is laid out, from the layout the last build found:
kept if the layout comes out the same). So that the workers start as early as they can, this module imports
the stages themselves (Markdown, Jinja, ebooklib…: a third of a second) only once they
are started, in :func:`prepare` and :func:`_render`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import gc
import json
import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from report import fonts
from report.cache import (
    CACHE_DIR_NAME,
    Cache,
    Stats,
    bytes_digest,
    code_fingerprint,
    digest,
    field_types,
    from_plain,
    json_digest,
    read_json,
    to_plain,
    write_atomic,
)
from report.config import Config, PdfSettings, load_config
from report.daemon.pool import KeptWorkers
from report.daemon.settings import ended, keep_seconds
from report.errors import Diagnostic, Diagnostics, Location, RenderError, ReportError
from report.faults import fault_point, injected
from report.model import Book, ParsedChapter, SourceChapter
from report.render import Output, in_background
from report.render.workers import PdfWorkers, RenderTimeout, worker_count
from report.render.zipped import Zipped

if TYPE_CHECKING:
    import jinja2

    from report.assemble import Assembler
    from report.render.epub import MadeInBuild
    from report.render.pdf import PdfHeadStart, PdfLayout, PdfRun
    from report.resolve import BookTables

FORMATS = ("pdf", "epub")
PROFILES = ("screen", "print")
# Templates and styles a report may override that only the print layout reads.
PRINT_ONLY = ("print.html.j2", "cover.html.j2", "title-page.html.j2", "print.css")

Progress = Callable[[str], None]


class Timings(dict[str, float]):
    """When each stage of a build ended, in seconds since it started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.perf_counter()

    def mark(self, stage: str) -> None:
        self[stage] = time.perf_counter() - self.started


@dataclass(frozen=True)
class BuildResult:
    outputs: tuple[Output, ...]
    warnings: tuple[Diagnostic, ...]
    up_to_date: bool = False  # nothing had changed since the last build: nothing was written
    rendered: tuple[str, ...] = ()  # formats rendered afresh; the others came from the cache
    stats: Stats = dataclasses.field(default_factory=Stats)  # cache hits and misses by kind
    timings: Timings = dataclasses.field(default_factory=Timings)


def prepare(
    root: Path,
    strict: bool = False,
    progress: Progress = lambda _: None,
    cache: Cache | None = None,
    config: Config | None = None,
) -> tuple[Book, tuple[Diagnostic, ...]]:
    """Everything short of rendering: the checked, numbered book and its warnings (of
    ``config``, if the caller has read it already)."""
    from report.check import check_stylesheets
    from report.load import load_project
    from report.resolve import resolve_book

    progress("reading report.toml and chapters")
    diagnostics = Diagnostics()
    project = load_project(root, diagnostics, config)
    progress(f"parsing {len(project.chapters)} chapters")
    folder = project.config.root  # resolved: what the chapters' paths and their parse keys are relative to
    with fonts.cached(cache):
        settings = _parse_settings(project.config, cache)
        kept: dict[str, _KeptChapter] = {}
        parsed = tuple(_parse(chapter, folder, diagnostics, cache, settings, kept) for chapter in project.chapters)
    _keep(folder, kept)
    book = resolve_book(project.config, parsed, diagnostics, cache)
    check_stylesheets(project, diagnostics)
    diagnostics.raise_if_errors()
    if strict and diagnostics.warnings:
        raise ReportError(diagnostics.warnings)
    return book, diagnostics.warnings


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a build runs. What a build makes it
    keeps to its end, and its full collections went over all of it again and again (a tenth of
    a second of a 586-page edit's 0.9 s); the build's memory goes with its process, or, in one
    that builds again (report watch), is collected between builds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def build(
    root: Path,
    formats: tuple[str, ...] = FORMATS,
    out_dir: Path | None = None,
    profile: str = "screen",
    strict: bool = False,
    progress: Progress = lambda _: None,
    *,
    use_cache: bool = True,
    workers: PdfWorkers | None = None,
) -> BuildResult:
    started, timings = time.time(), Timings()
    config = load_config(root)
    out_dir = (out_dir or config.root / "dist").resolve()
    options = {"formats": list(formats), "profile": profile, "strict": strict, "out_dir": str(out_dir)}
    cache = Cache(config.root / CACHE_DIR_NAME, read=use_cache)

    # 1. Nothing changed since the last build into out_dir: return at once, writing nothing.
    inputs_before = _inputs_before(config, out_dir, cache)
    if use_cache and (unchanged := _up_to_date(config, out_dir, options, inputs_before, cache)) is not None:
        timings.mark("checked")
        on_built(config.root)
        return replace(unchanged, timings=timings)

    # 2. The PDF workers start loading WeasyPrint while the book is read and parsed.
    with (
        _pdf_workers(workers, cache.root, "pdf" in formats) as pdf_workers,
        fonts.cached(cache),
        _started_ahead(config, profile, cache, pdf_workers, "pdf" in formats) as head_start,
    ):
        book, warnings = prepare(root, strict, progress, cache, config)
        assembler = _assembler(book, profile, cache)
        timings.mark("prepared")

        # 3. Render to temporary files; rename them into place only when all have succeeded.
        with _build_lock(cache.root):
            out_dir.mkdir(parents=True, exist_ok=True)
            _remove_left_behind(out_dir, config.output, cache.directory)
            temporary = {fmt: out_dir / f".{config.output}.{fmt}.{os.getpid()}.tmp" for fmt in formats}
            finals = {fmt: out_dir / f"{config.output}.{fmt}" for fmt in formats}
            try:
                rendered, fresh, run = _render(
                    assembler, formats, temporary, progress, cache, pdf_workers, timings, head_start
                )
                _rename_all(temporary, finals)
                outputs = [replace(rendered[fmt], path=finals[fmt]) for fmt in formats]
            finally:
                for path in temporary.values():
                    path.unlink(missing_ok=True)

            # 4. What this build read and wrote, for the next build to compare with.
            _record(config, out_dir, options, book, run, inputs_before, started, outputs, warnings, cache)
            cache.prune()
            cache.save()
    timings.mark("done")
    on_built(config.root)
    return BuildResult(tuple(outputs), warnings, rendered=fresh, stats=cache.stats, timings=timings)


def _assembler(book: Book, profile: str, cache: Cache) -> Assembler:
    from report.assemble import Assembler

    assembler = Assembler(book, profile=profile, cache=cache)
    if cache.read:  # the templates' compiled code (0.1 s a build), keyed by their source
        assembler.env.bytecode_cache = _compiled_templates(cache)
    return assembler


def _tell_nobody(root: Path) -> None:
    pass


# Told the report's folder after each build that succeeded: the build server's child tells the
# server (see report.daemon.server), which then reads the report's chapters and EPUB pages
# (keep_last_build).
on_built: Callable[[Path], None] = _tell_nobody


def _remove_left_behind(out_dir: Path, output: str, cache_dir: Path) -> None:
    """The temporary files of builds killed outright (SIGKILL, a power cut): the outputs'
    (``.NAME.FORMAT.PID.tmp``, ``.NAME.FORMAT.PID.old``) and the parts' (``parts/KEY.PID.pdf``),
    each named by its build's process, which has ended."""
    left = [*out_dir.glob(f".{output}.*.tmp"), *out_dir.glob(f".{output}.*.old"), *(cache_dir / "parts").glob("*.pdf")]
    for path in left:
        pid = path.name.split(".")[-2]
        if pid.isdigit() and ended(int(pid)):
            path.unlink(missing_ok=True)


def _rename_all(temporary: dict[str, Path], finals: dict[str, Path]) -> None:
    """Each temporary file renamed into place. One rename is atomic, two are not: should a
    rename fail (or the build be interrupted between two), the outputs already renamed are put
    back as they were (kept meanwhile as hard links), so that the PDF and the EPUB stay of one
    build. Only a build killed outright between two renames leaves one old and one new."""
    previous: dict[str, Path] = {}
    renamed: list[str] = []
    try:
        for fmt, final in finals.items():
            if final.exists():
                previous[fmt] = final.with_name(f".{final.name}.{os.getpid()}.old")
                previous[fmt].unlink(missing_ok=True)
                os.link(final, previous[fmt])
        for fmt, final in finals.items():
            if renamed:
                fault_point("rename")
            os.replace(temporary[fmt], final)
            renamed.append(fmt)
    except BaseException:
        for fmt in renamed:
            if fmt in previous:
                os.replace(previous[fmt], finals[fmt])
            else:
                finals[fmt].unlink(missing_ok=True)
        raise
    finally:
        for path in previous.values():
            path.unlink(missing_ok=True)


def _render(
    assembler: Assembler,
    formats: tuple[str, ...],
    temporary: dict[str, Path],
    progress: Progress,
    cache: Cache,
    workers: PdfWorkers | None,
    timings: Timings,
    head_start: PdfHeadStart | None = None,
) -> tuple[dict[str, Output], tuple[str, ...], PdfRun]:
    """The PDF's layout comes first: it gives the EPUB its print page list and its cover.
    The EPUB is then written while the PDF is still being drawn and joined (by the workers):
    written meanwhile, it took the processor from the worker laying out the edited chapter,
    which every later step waits for. Alone, the EPUB is written while the layout runs, from
    the layout the last build found (most edits leave it as it was)."""
    from report.render.epub import MadeInBuild
    from report.render.pdf import PdfRenderer

    progress("laying out the PDF")
    run = PdfRenderer(cache, workers).start(assembler, temporary.get("pdf"), head_start)
    rendered: dict[str, Output] = {}
    fresh: set[str] = set()
    try:
        # While the PDF is laid out: what the EPUB needs that does not depend on the layout
        # (and, the EPUB alone, the EPUB itself from the last build's layout).
        epub_inputs = _epub_inputs(assembler, cache) if "epub" in formats else ""
        guess = run.guess() if formats == ("epub",) else None
        made = MadeInBuild()
        ahead = (
            in_background("report-epub", _epub, assembler, epub_inputs, guess, temporary["epub"], cache, fresh, made)
            if guess
            else None
        )
        try:
            layout = run.layout()
        finally:
            if ahead is not None:
                wait([ahead])  # it writes the EPUB's temporary file: never two at once
        timings.mark("laid out")
        if "epub" in formats:
            progress("writing the EPUB")
            if ahead is not None and guess == layout:
                rendered["epub"] = ahead.result()
            else:  # a guess found wrong is written again, whatever became of it
                rendered["epub"] = _epub(assembler, epub_inputs, layout, temporary["epub"], cache, fresh, made)
            timings.mark("epub")
        if "pdf" in formats:
            progress("drawing the PDF")
        pdf = run.finish()
        timings.mark("pdf" if "pdf" in formats else "layout finished")
        if "epub" in formats and run.layout() != layout:  # laid out again: a glyph was missing
            rendered["epub"] = _epub(assembler, epub_inputs, run.layout(), temporary["epub"], cache, fresh, made)
        if "pdf" in formats:
            rendered["pdf"] = pdf
            if run.rendered:
                fresh.add("pdf")
    except RenderTimeout as timeout:
        message = (
            f"the PDF took longer than {timeout.seconds:g} s to lay out and was stopped; is a chapter unusually large?"
        )
        raise RenderError([Diagnostic(Location(assembler.book.config.path), message)]) from None
    finally:
        run.close()
    return {fmt: rendered[fmt] for fmt in formats}, tuple(f for f in formats if f in fresh), run


# --- caching hooks -----------------------------------------------------------------------------


# The chapters the last preparations in this process parsed or took from the cache, by report
# folder and parse key (a key names paths relative to the folder: a copy of the report has the
# same keys). A process that prepares a book again and again (report watch, at every save)
# neither reads them again nor converts them, only checks the files they depend on; the build
# server reads them in between builds (see keep_last_build), for the builds it forks.
_KEPT_PARSED: dict[Path, dict[str, _KeptChapter]] = {}
_T = TypeVar("_T")
_KEPT_REPORTS = 4  # the folders whose chapters are kept, the last prepared


@dataclass(frozen=True)
class _KeptChapter:
    parsed: ParsedChapter
    warnings: tuple[Diagnostic, ...]  # what its parse warned of
    deps: dict[str, str | None]  # the files it uses (images, included code), as they hashed


# Where a chapter's parse key differs: the addresses images may come from, the fonts' digests.
_ParseSettings = tuple[tuple[str, ...], tuple[str, ...]]


def _parse_settings(config: Config, cache: Cache | None) -> _ParseSettings:
    return config.fetch_allow, tuple(fonts.font_digest(face.file, cache) for face in fonts.FACES)


def _keep(root: Path, kept: dict[str, _KeptChapter]) -> None:
    _keep_latest(_KEPT_PARSED, root, kept)


def _keep_latest(reports: dict[Path, _T], root: Path, value: _T) -> None:
    """``value`` kept for the report at ``root``, and for the others last kept only: the
    ``_KEPT_REPORTS`` most recent."""
    reports.pop(root, None)  # (last in the order: the most recent)
    reports[root] = value
    for older in list(reports)[:-_KEPT_REPORTS]:
        del reports[older]


def keep_last_build(root: Path) -> Generator[None, None, None]:
    """Takes into this process what the next build of the report at ``root`` would read of the
    last build from the cache, a step at a time (that the caller may pause between): the
    faces' code points (see report.fonts.cmap), the chapters the cache has parsed, converted
    already (and the highlighting of their code's languages made ready: see
    report.code.warm_highlighting), and, all of them there, the book they resolve into (each
    chapter's fill kept: see report.resolve._FILLED), its print parts (what the PDF reads of
    each: see report.render.pdf._FACTS) and each chapter's digests and ids (cached on it: see
    report.model.Chapter); then the last EPUB's pages (see
    :func:`report.render.epub.keep_pages`). The build server does so between builds: an
    unchanged chapter then costs a build it forks no read of the cache, no fill, and no search
    of its print part. What the cache does not have is left to the build."""
    config = load_config(root)
    cache = Cache(config.root / CACHE_DIR_NAME)
    yield from _keep_parsed(config, cache)
    from report.render.epub import keep_pages
    from report.render.pdf import keep_parts

    yield from keep_pages(cache, _last_epub_pages(config, cache))
    yield from keep_parts(cache, config.root, PROFILES[0])


def _keep_parsed(config: Config, cache: Cache) -> Generator[None, None, None]:
    from report.load import load_project

    stamps = {path: _file_stamp(path) for path in config.chapters}  # before they are read: see _head_start
    project = load_project(config.root, Diagnostics(), config)
    with fonts.cached(cache):
        settings = _parse_settings(project.config, cache)
        for face in fonts.FACES:  # the code points a build looks characters up in (0.02 s a build)
            fonts.cmap(face.file)
    kept: dict[str, _KeptChapter] = {}
    for chapter in project.chapters:
        key = _parse_key(chapter, config.root, settings)
        if (found := _known_parse(chapter, config.root, cache, key)) is not None:
            kept[key] = found
        yield
    _keep(config.root, kept)
    from report.code import warm_highlighting

    parsed = [found.parsed for found in kept.values()]
    warm_highlighting((chapter.html for chapter in parsed), (path for chapter in parsed for path in chapter.includes))
    yield
    if len(kept) == len(project.chapters):  # resolved and assembled as the next build will
        from report.render.epub import MadeInBuild
        from report.render.pdf import document_facts
        from report.resolve import last_book_tables, resolve_book

        book = resolve_book(project.config, tuple(parsed), Diagnostics(), cache)
        yield
        assembler = _assembler(book, PROFILES[0], cache)
        document_facts(assembler, cache)
        files = {
            found.parsed.source.path: (stamps.get(found.parsed.source.path), found.parsed) for found in kept.values()
        }
        tables = last_book_tables(config.root)
        if tables is not None:
            tables.citations_as_written  # noqa: B018 (worked out here: a head start reads it)
            _keep_latest(_HEAD_START_BASES, config.root, _HeadStartBase(assembler, tables, files))
        yield
        MadeInBuild().book_digest(assembler)  # each chapter's digests and ids, kept with it
        yield


_Stamp = tuple[int, int] | None  # a file's size and modification time (None: no such file)


@dataclass(frozen=True)
class _HeadStartBase:
    """Of the last build, kept between builds (see keep_last_build): what a head start lays the
    chapters edited since out with."""

    assembler: Assembler  # of the last book
    tables: BookTables  # what filling in its chapters read of it
    files: dict[Path, tuple[_Stamp, ParsedChapter]]  # each chapter's file → its stamp when read, its parse


_HEAD_START_BASES: dict[Path, _HeadStartBase] = {}
# The chapters a head start parsed, by parse key, with what parsing them found (see _parse).
_PARSED_AHEAD: dict[str, tuple[ParsedChapter, Diagnostics]] = {}


def _file_stamp(path: Path) -> _Stamp:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _head_start(
    config: Config, profile: str, cache: Cache, workers: PdfWorkers | None, draw: bool
) -> PdfHeadStart | None:
    """The chapters edited since the last build was kept (see keep_last_build), parsed, filled
    in as the last book would fill them, and sent to be laid out (and drawn) before the book is
    loaded and resolved (0.05 s sooner at 586 pages, while the workers waited). Their
    parses are the build's (see _parse). Should the book fill a chapter otherwise (an edit that
    adds a figure, say), what was sent for it is not used (see report.render.pdf.PdfHeadStart)."""
    from report.load import load_chapter
    from report.render.pdf import PdfHeadStart, PdfRenderer
    from report.render.workers import LAYOUTS_AHEAD, Session
    from report.resolve import fill_ahead

    base = _HEAD_START_BASES.get(config.root)
    if base is None or workers is None or not cache.read:
        return None
    if base.assembler.profile != profile or base.assembler.book.config != config:
        return None
    edited = [(path, last) for path, (stamp, last) in base.files.items() if _file_stamp(path) != stamp]
    if not edited or len(edited) > LAYOUTS_AHEAD:
        return None
    settings = _parse_settings(config, cache)
    chapters = []
    for path, last in edited:
        try:
            source = load_chapter(path, config)
        except OSError:  # gone since the config was read: the build says so
            continue
        if source is None or source.id != last.id:
            continue
        parsed, own = _parsed_now(source, config.root, settings[0])
        if own.errors:
            continue
        _PARSED_AHEAD[_parse_key(source, config.root, settings)] = (parsed, own)
        if (filled := fill_ahead(base.tables, parsed, last)) is not None:
            chapters.append(filled)
    if not chapters:
        return None
    ahead = PdfHeadStart(
        PdfRenderer(cache, workers), base.assembler, draw, lambda styles: Session(workers, styles, _ignored, _ignored)
    )
    ahead.send(chapters)
    return ahead


@contextmanager
def _started_ahead(
    config: Config, profile: str, cache: Cache, workers: PdfWorkers | None, draw: bool
) -> Iterator[PdfHeadStart | None]:
    """A head start (see :func:`_head_start`), abandoned should the build fail before its run
    took it over."""
    ahead = _head_start(config, profile, cache, workers, draw)
    try:
        yield ahead
    except BaseException:
        if ahead is not None:
            ahead.abandon()
        raise
    finally:
        _PARSED_AHEAD.clear()


def _ignored(*_: object) -> None:
    """What answers a head start's session until its run takes it over (or it is abandoned)."""


def _parse_key(source: SourceChapter, root: Path, settings: _ParseSettings) -> str:
    """Keyed by the chapter (its bytes as loaded and its place in the report), the addresses
    images may come from and the fonts' digests, and the parser's code."""
    place = json.dumps(to_plain(replace(source, markdown=""), root), sort_keys=True, ensure_ascii=False)
    return _parse_key_of(source.markdown, place, settings)


@functools.lru_cache(maxsize=1024)
def _parse_key_of(markdown: str, place: str, settings: _ParseSettings) -> str:
    """Worked out once in a process for each chapter as loaded (its Markdown, the bulk of it,
    is hashed to be looked up, not written out as JSON: a build of 180 chapters did so for 5 MB)."""
    fetch_allow, faces = settings
    code = code_fingerprint("report.parse", "report.check")
    return json_digest([code, json.loads(place) | {"markdown": markdown}, list(fetch_allow), list(faces)])


def _known_parse(source: SourceChapter, root: Path, cache: Cache, key: str) -> _KeptChapter | None:
    """The chapter as parsed before: kept in this process, else read from the cache (the files
    it uses unchanged either way)."""
    kept = _KEPT_PARSED.get(root, {}).get(key)
    if kept is not None and cache.read and cache.unchanged(kept.deps):
        cache.kept("parsed", key)
        return kept
    found = cache.load_with_deps("parsed", key)
    if found is None:
        return None
    value, deps = found
    try:
        parsed = _parsed_from_plain(source, value["chapter"], root)
        warnings = tuple(Diagnostic(Location(root / p, line), message, True) for p, line, message in value["warnings"])
    except (KeyError, TypeError, ValueError):
        return None  # written by other code: parse again
    return _KeptChapter(parsed, warnings, deps)


def _parse(
    source: SourceChapter,
    root: Path,
    diagnostics: Diagnostics,
    cache: Cache | None,
    settings: _ParseSettings,
    kept: dict[str, _KeptChapter],
) -> ParsedChapter:
    """A chapter parsed, and its characters no bundled font has warned of; or both taken from
    this process's memory or the cache (see :func:`_parse_key`); the images it uses are checked
    by hash."""
    fetch_allow, _ = settings
    if cache is None or not source.path.is_relative_to(root):
        return _parse_and_check(source, root, diagnostics, fetch_allow)
    key = _parse_key(source, root, settings)
    known = _known_parse(source, root, cache, key)
    if known is not None:
        diagnostics.extend(known.warnings)
        kept[key] = known
        return known.parsed
    parsed, own = _PARSED_AHEAD.pop(key) if key in _PARSED_AHEAD else _parsed_now(source, root, fetch_allow)
    diagnostics.extend(own.errors + own.warnings)
    if not own.errors:
        chapter = {name: plain for name, plain in to_plain(parsed, root).items() if name != "source"}
        notes = [[d.location.path.relative_to(root).as_posix(), d.location.line, d.message] for d in own.warnings]
        deps = {f"file:{path}": cache.file_digest(path) for path in (*parsed.images, *parsed.includes)}
        cache.store("parsed", key, {"chapter": chapter, "warnings": notes}, deps=deps)
        kept[key] = _KeptChapter(parsed, tuple(own.warnings), deps)
    return parsed


def _parsed_now(source: SourceChapter, root: Path, fetch_allow: tuple[str, ...]) -> tuple[ParsedChapter, Diagnostics]:
    own = Diagnostics()
    return _parse_and_check(source, root, own, fetch_allow), own


def _parse_and_check(
    source: SourceChapter, root: Path, diagnostics: Diagnostics, fetch_allow: tuple[str, ...]
) -> ParsedChapter:
    from report.check import check_glyphs
    from report.parse import parse_chapter

    parsed = parse_chapter(source, root, diagnostics, fetch_allow)
    check_glyphs(source, diagnostics)
    return parsed


def _parsed_from_plain(source: SourceChapter, data: dict[str, Any], root: Path) -> ParsedChapter:
    hints = {name: kind for name, kind in field_types(ParsedChapter).items() if name != "source"}
    if data.keys() != hints.keys():
        raise ValueError("the parsed chapter's fields changed")
    return ParsedChapter(source=source, **{name: from_plain(kind, data[name], root) for name, kind in hints.items()})


def _epub(
    assembler: Assembler,
    inputs: str,
    layout: PdfLayout,
    target: Path,
    cache: Cache,
    fresh: set[str],
    made: MadeInBuild,
) -> Output:
    """The EPUB, written afresh or copied from the cache (``made``: what the build's EPUBs made)."""
    from report.render.epub import EpubRenderer

    fault_point("epub")

    book = assembler.book
    everything = made.book_digest(assembler)  # the nav's too
    key = digest(inputs, everything, repr(layout.page_starts), str(layout.pages), bytes_digest(layout.cover))
    value = cache.load("epub", key)
    data = cache.object_bytes(str(value.get("epub"))) if value is not None else None
    if value is not None and data is not None:
        target.write_bytes(data)
        return Output("epub", target, len(data), int(value.get("documents", 0)))
    # Everything handed to the renderer must be part of the key (the page starts and cover are;
    # the renderer keys each chapter's page by ``inputs``, the chapter and its page starts; the
    # last EPUB only spares compressing again what is the same).
    last_key = _last_epub_key(book.config, assembler.profile)
    renderer = EpubRenderer(layout.page_starts, layout.cover, cache, inputs, _last_epub(cache, last_key), made)
    output = renderer.render(assembler, target)
    assert renderer.written is not None
    name = cache.put_object(renderer.written.data, ".epub")
    cache.store("epub", key, {"epub": name, "documents": output.pages or 0}, objects=[name])
    pages = [list(kind_and_key) for kind_and_key in renderer.pages_used]  # for the build server (keep_last_build)
    last = {"epub": name, "digests": dict(renderer.written.digests), "pages": pages}
    cache.store("epub-last", last_key, last, objects=[name])
    fresh.add("epub")
    return output


def _last_epub_key(config: Config, profile: str) -> str:
    return digest("epub-last", str(config.root), profile)


def _last_epub_pages(config: Config, cache: Cache) -> list[tuple[str, str]]:
    """The chapter pages the report's last EPUBs (of each profile) used, by kind and key."""
    pages: list[tuple[str, str]] = []
    for profile in PROFILES:
        last = cache.load("epub-last", _last_epub_key(config, profile)) or {}
        with contextlib.suppress(TypeError, ValueError):  # written by other code
            pages += [(str(kind), str(key)) for kind, key in last.get("pages", ())]
    return pages


def _last_epub(cache: Cache, key: str) -> Zipped | None:
    """The report's last EPUB, with the digests of its members."""
    last = cache.load("epub-last", key)
    if last is None or not isinstance(digests := last.get("digests"), dict):
        return None
    data = cache.object_bytes(str(last.get("epub")))
    return Zipped(data, {str(name): str(digest) for name, digest in digests.items()}) if data is not None else None


def _epub_inputs(assembler: Assembler, cache: Cache) -> str:
    """What each page of an EPUB is made of, but its chapter and what the chapter takes of the
    others (the owners of the ids it links to: see report.render.epub) and the PDF's layout
    (its page starts and cover; :func:`_epub` adds the book's labels and chapters for the
    whole): report.toml but its [pdf] table, the report's templates and styles but the
    print-only ones, the images, the fonts, SOURCE_DATE_EPOCH, and the builder's code,
    templates and styles. An edit that adds an id (an index term) changes no other page."""
    book = assembler.book
    config = book.config
    images = sorted({image for chapter in book.chapters for image in chapter.images})
    return digest(
        code_fingerprint("report.render.epub", "report.render.pdf", data=True),
        repr(replace(config, pdf=PdfSettings())),
        *(f"{image}={cache.file_digest(image)}" for image in images),
        cache.tree_digest(config.root / "templates", exclude=PRINT_ONLY) or "",
        cache.tree_digest(config.root / "styles", exclude=PRINT_ONLY) or "",
        *(f"{face.file}={fonts.font_digest(face.file, cache)}" for face in fonts.FACES),
        os.environ.get("SOURCE_DATE_EPOCH", ""),
    )


def _compiled_templates(cache: Cache) -> jinja2.BytecodeCache:
    import jinja2

    folder = cache.directory / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    return jinja2.FileSystemBytecodeCache(str(folder))


# --- the build record: what the last build read and wrote --------------------------------------


def _record_path(config: Config, out_dir: Path, cache: Cache) -> Path:
    """Kept in the cache (not among the outputs), one per output folder and name."""
    return cache.directory / "builds" / f"{digest(str(out_dir), config.output)}.json"


def _inputs_before(config: Config, out_dir: Path, cache: Cache) -> dict[str, str | None]:
    """The digests, taken before anything is read, of every input known in advance: the last
    build's inputs, report.toml, the chapters, the templates and styles folders, the fonts."""
    previous = read_json(_record_path(config, out_dir, cache))
    names = set(previous.get("inputs", {})) if isinstance(previous, dict) else set()
    # (Remembered by their stat signatures: an unchanged chapter is not read again. 181 of them,
    # hashed twice a build, took 10 ms of an edit of the 586-page report.)
    return {name: cache.input_digest(name) for name in sorted(names | _known_inputs(config))}


def _known_inputs(config: Config) -> set[str]:
    """report.toml, the chapters, the bibliography and CSL style, the report's templates and
    styles folders, the fonts."""
    names = {f"file:{config.path}", *(f"file:{chapter}" for chapter in config.chapters)}
    names |= {f"file:{path}" for path in (config.bibliography, config.csl) if path is not None}
    names |= {f"tree:{config.root / 'templates'}", f"tree:{config.root / 'styles'}"}
    return names | {f"file:{fonts.fonts_dir() / face.file}" for face in fonts.FACES}


def _record_key(options: dict[str, Any], inputs: dict[str, str | None], known: set[str]) -> str:
    """The options, the code, the inputs read with their digests, and which inputs a build
    knows of in advance (another chapter list or another set of fonts is another build)."""
    code = code_fingerprint("report.build", data=True)
    return json_digest([code, options, os.environ.get("SOURCE_DATE_EPOCH", ""), inputs, sorted(known)])


def _up_to_date(
    config: Config, out_dir: Path, options: dict[str, Any], inputs_before: dict[str, str | None], cache: Cache
) -> BuildResult | None:
    """The last build's result, if it was made from exactly these inputs with these options and
    its outputs are still there as it wrote them."""
    record = read_json(_record_path(config, out_dir, cache))
    try:
        inputs = {name: inputs_before[name] for name in record["inputs"]}
        if _record_key(options, inputs, _known_inputs(config)) != record["key"]:
            return None
        outputs = []
        for output in record["outputs"]:
            path = out_dir / output["file"]
            if cache.file_digest(path) != output["sha256"]:
                return None
            outputs.append(
                Output(output["format"], path, path.stat().st_size, output["pages"], tuple(output["warnings"]))
            )
        warnings = tuple(Diagnostic(Location(Path(p), line), message, True) for p, line, message in record["warnings"])
    except (KeyError, TypeError, ValueError, OSError):
        return None
    return BuildResult(tuple(outputs), warnings, up_to_date=True, stats=cache.stats)


def _record(
    config: Config,
    out_dir: Path,
    options: dict[str, Any],
    book: Book,
    run: PdfRun,
    inputs_before: dict[str, str | None],
    started: float,
    outputs: list[Output],
    warnings: tuple[Diagnostic, ...],
    cache: Cache,
) -> None:
    """Write the build record, unless an input changed while the build ran (then the next
    build must not take these outputs as up to date)."""
    known = _known_inputs(config)
    used = set(known)
    used |= {
        f"file:{path}"
        for chapter in book.chapters
        for path in (*chapter.images, *chapter.linked_files, *chapter.includes)
    }
    used |= {f"file:{path}" for path in run.fetched}
    inputs: dict[str, str | None] = {}
    for name in sorted(used):
        if name in inputs_before:  # hashed before it was read: still the same?
            inputs[name] = inputs_before[name]
            if cache.input_digest(name) != inputs[name]:
                return
            continue
        path = Path(name.partition(":")[2])  # found while building: older than the build?
        try:
            if path.stat().st_mtime > started - 0.1:
                return
        except OSError:
            return
        inputs[name] = cache.input_digest(name)
    record = {
        "key": _record_key(options, inputs, known),
        "inputs": inputs,
        "outputs": [
            {
                "format": output.format,
                "file": output.path.name,
                "sha256": cache.file_digest(output.path),
                "pages": output.pages,
                "warnings": list(output.warnings),
            }
            for output in outputs
        ],
        "warnings": [[str(w.location.path), w.location.line, w.message] for w in warnings],
    }
    write_atomic(_record_path(config, out_dir, cache), json.dumps(record, ensure_ascii=False, indent=1).encode())


# --- processes and locks -----------------------------------------------------------------------


@contextmanager
def _pdf_workers(given: PdfWorkers | None, cache_dir: Path, pdf: bool) -> Iterator[PdfWorkers | None]:
    """The caller's workers (``report watch`` keeps them warm), else the ones an earlier build
    left running (see :mod:`report.daemon.pool`), else ones started now, before they are
    known to be needed, so that WeasyPrint loads while the chapters are parsed. An EPUB built
    alone needs a layout only of what changed: one worker."""
    if given is not None:
        yield given
        return
    fontconfig = fonts.fontconfig_file(cache_dir, bundled_dir=False)
    count = worker_count() if pdf else 1
    # A fault injected (see report.faults) must not outlive the build in the workers it would keep.
    keep = 0.0 if injected() else keep_seconds()
    kept = KeptWorkers.reach(fontconfig, count, keep) if keep else None
    with kept or PdfWorkers(fontconfig, count) as workers:
        yield workers


@contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
