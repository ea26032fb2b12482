"""The PDF worker processes' side: WeasyPrint lays out one part of the print document,
the page numbers the part could not know are filled in, and the part is written.

A part (the cover, the contents, or one chapter) is laid out on its own, so the page
numbers that point into other parts — the folios, the contents' page numbers,
「14ページの図1」 — are not known while it is laid out. Its folios are laid out as if the
part were alone (from 1), and every other page number as a stand-in of zeros, as many as
the number has digits (as it had in the last build, when there was one). A stand-in with
the wrong number of digits is laid out again (see :mod:`report.render.pdf`).

The part is drawn with its stand-ins, and where each is drawn is recorded
(:class:`DrawnNumber`): the join writes the real numbers in their place (see
:mod:`report.render.join`), centred where the stand-in was (or flush right, if it is set
so): nothing else on the line moves. A part's drawing thus never depends on where it
lands in the book: when a chapter before it grows by a page, it is neither laid out nor
drawn again. A number drawn where the join cannot reach it (in a transparency group, say)
is filled in before the part is drawn instead, as its text.

This module imports WeasyPrint lazily: it runs in spawned processes whose fontconfig
knows only the job's fonts (set before WeasyPrint loads Pango).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import importlib
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback
import types
import warnings
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from report.daemon.settings import ended
from report.faults import fault_point
from report.render import redraw, resume

if TYPE_CHECKING:
    from report.render.join import Joiner

COVER_HEIGHT = 1600  # pixels: the first page as the EPUB's cover image
LAYOUTS_RESUMABLE = 6  # parts a worker keeps the last layout and drawing of (see report.render.resume, .redraw)
PAGE_NUMBER_CLASS = "page-number"
PAGE_LIST_CLASS = "page-list"  # several ids' pages, the index's "3, 5–7" (see report.render.pdf)
_NUMBER_TAGS = ("span", "a")  # a page number's element (the index's are links: see report.index)
_PAGE_LIST_TEXT = re.compile(r"[0-9, \u2013]*[0-9][0-9, \u2013]*")
# The inline boxes whose margin is the quarter-em gap between Japanese and a Latin word
# (四分アキ, see report.assemble.space_latin_words): a gap in the text, not a word break.
GAP_CLASSES = frozenset({"aki-before", "aki-after"})
_NOTDEF = re.compile(r"\.notdef glyph rendered for Unicode string unsupported by fonts: .*\(U\+([0-9A-Fa-f]+)\)")


STAND_IN = b"report-font-sha256:"


def font_stand_in(font_file: bytes, face: str) -> bytes:
    """What a part embeds instead of a font file: its first four bytes (they tell OpenType from
    TrueType) and the face it is cut from (see :func:`face_name`). The report's subsets keep
    the face's glyph ids, so :func:`report.render.join.join_pdfs` cuts the face itself."""
    return font_file[:4] + STAND_IN + face.encode()


def face_name(family: str, weight: int) -> str:
    """How a part names a bundled face (as its @font-face rule does: family and weight)."""
    return f"{family}|{weight}"


@dataclass(frozen=True)
class Styles:
    """What every part of one PDF shares."""

    stylesheets: tuple[str, ...]
    base_url: str
    allowed_roots: tuple[Path, ...]
    fontconfig: Path
    variant: str | None
    key: str  # all the above but the subsets' files: the faces they are cut from, by hash
    fonts: tuple[tuple[str, Path], ...]  # each bundled face by name (see face_name) and its file


@dataclass(frozen=True)
class PartJob:
    key: str  # the part's layout key: its HTML and the styles
    html: str  # page numbers of other parts as stand-ins (span.page-number with digits)
    cover: bool = False  # also return the first page as PNG
    name: str = ""  # the part's name, whose last layout the worker may resume ("": none)
    lists_pages: bool = False  # the part lists pages (the index): see Session._send_layouts


@dataclass(frozen=True)
class PartLayout:
    """What laying out a part tells, before it is drawn."""

    pages: int
    anchors: tuple[tuple[str, int], ...]  # every id, with the part's page (from 1) it begins on
    starts: tuple[tuple[int, str], ...]  # the part's pages (from 1) and the id that begins each
    cover: bytes  # the first page as PNG, if asked for
    warnings: tuple[str, ...]
    fetched: tuple[Path, ...]  # every local file WeasyPrint read (fonts, images, stylesheets)


@dataclass(frozen=True)
class DrawJob:
    part: PartJob
    # Each page number's box (by the name its data-page-of holds: see report.render.pdf._Part.for_workers)
    # → its number, and the part's first page's folio (it is laid out as 1: a part alone): filled
    # in only where the join could not set them
    numbers: tuple[tuple[str, str], ...]
    first_folio: int
    target: Path


@dataclass(frozen=True)
class DrawnNumber:
    """A page number drawn as its stand-in, for the join to set: where its text matrix and its
    glyphs are in its page's content stream (byte ranges of the decoded stream), and what it
    takes to draw another number in their place."""

    page: int  # the part's page, from 0
    ref: str  # its box's name (its data-page-of), whose number it shows; "" for the page's folio
    matrix_at: tuple[int, int]  # the range of its "a b c d e f Tm"
    glyphs_at: tuple[int, int]  # the range of its "[<…>] TJ"
    matrix: tuple[float, float, float, float, float, float]  # a b c d e f as drawn
    width: float  # of the stand-in's text, in the matrix's units
    digit_widths: tuple[float, ...]  # of each of 0–9 (in some fonts, of different widths)
    align: float  # how far the text moves when its width changes: 0.5 centred, 1 flush right
    digits: tuple[str, ...]  # the glyph id of each of 0–9 in its font, as the TJ writes it (hex)
    # A piece of a page list (a line's, should the list be broken): which of the list's digits
    # its first stand-in zero stands for (the join sets each zero's digit, the rest as drawn).
    # -1: a page number.
    list_offset: int = -1


def packed_numbers(numbers: Iterable[DrawnNumber]) -> str:
    """A drawing's page numbers as the build passes them on, untouched, from the worker that drew
    them to the cache and to the join: JSON (the cache holds no pickle), each font's digits and
    widths once, a row a number. Only a join that does not keep the drawing already reads them
    back (:func:`unpacked_numbers`). As models, every part's were sent with every join: the
    first join of an edit of a 615-page report was 260 kB, pickled in 5 ms and read back in
    6–10 ms while the join waited, and the numbers of a page added in the middle's chapter and
    index, made plain for the cache, took the build 27 ms."""
    fonts: dict[tuple[tuple[float, ...], tuple[str, ...]], int] = {}
    rows = []
    for number in numbers:
        font = fonts.setdefault((number.digit_widths, number.digits), len(fonts))
        rows.append(
            [
                number.page,
                number.ref,
                *number.matrix_at,
                *number.glyphs_at,
                *number.matrix,
                number.width,
                font,
                number.align,
                number.list_offset,
            ]
        )
    return json.dumps({"fonts": list(fonts), "numbers": rows}, ensure_ascii=False, separators=(",", ":"))


def unpacked_numbers(text: str) -> tuple[DrawnNumber, ...]:
    """The page numbers :func:`packed_numbers` packed (those of one font share its tuples)."""
    data = json.loads(text)
    fonts = [(tuple(widths), tuple(digits)) for widths, digits in data["fonts"]]
    return tuple(
        DrawnNumber(
            page, ref, (m0, m1), (g0, g1), (a, b, c, d, e, f), width, fonts[font][0], align, fonts[font][1], offset
        )
        for page, ref, m0, m1, g0, g1, a, b, c, d, e, f, width, font, align, offset in data["numbers"]
    )


def numbers_packed_well(text: str) -> bool:
    """Whether ``text`` is page numbers as :func:`packed_numbers` packs them, every value of its
    type (text read from the cache: what other code wrote there, or a damaged file, is not
    passed on to a join)."""
    try:
        numbers = unpacked_numbers(text)
    except (ValueError, TypeError, KeyError, IndexError):
        return False
    return all(
        _whole(number.page)
        and isinstance(number.ref, str)
        and all(map(_whole, (*number.matrix_at, *number.glyphs_at, number.list_offset)))
        and all(map(_real, (*number.matrix, number.width, number.align, *number.digit_widths)))
        and all(isinstance(digit, str) for digit in number.digits)
        for number in numbers
    )


def _whole(value: object) -> bool:
    return type(value) is int  # (not a truth value either)


def _real(value: object) -> bool:
    return type(value) in (int, float)


NO_NUMBERS = packed_numbers(())


@dataclass(frozen=True)
class Drawn:
    """A part drawn: WeasyPrint's warnings, and its page numbers for the join to set, packed
    (see :func:`packed_numbers`; None: they are drawn in as text, see :class:`DrawJob`)."""

    warnings: tuple[str, ...]
    numbers: str | None


@dataclass(frozen=True)
class JoinedPart:
    slot: int  # its place in the book
    pdf: Path
    stubs: frozenset[str]  # its stand-in anchors
    blank_before: bool
    numbers: str  # to set (packed, see packed_numbers): the page of each id, and the folios
    pages: tuple[tuple[str, str], ...]  # a box's name (see DrawnNumber.ref) → its page number
    first_folio: int


@dataclass(frozen=True)
class JoinJob:
    parts: tuple[JoinedPart, ...]
    fonts: tuple[tuple[str, Path], ...]  # the bundled faces the parts name
    target: Path | None  # None: more parts follow
    marked_blanks: bool = False  # blank pages as the stylesheets draw them (printer's marks): print profile
    fresh: bool = False  # a join begun is dropped first (parts it has were drawn again)


def serve(connection: Connection, fontconfig: Path | None) -> None:
    """A spawned worker: load WeasyPrint at once, then :func:`answer` the build. Ctrl-C is the
    build's to handle (it stops its workers): a worker interrupted while still loading printed
    a traceback over the build's own message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answer(connection, become_worker(fontconfig))


def become_worker(fontconfig: Path | None) -> Worker:
    """This process becomes a worker (spawned for a build, or kept between builds): a temporary
    folder of its own, WeasyPrint loaded, and what it loaded (some 40,000 objects, which live as
    long as the process) frozen: the garbage collector's full collections no longer go over it.
    Its collector is off until a build's jobs have made many objects (see
    _collector_back_if_many). Left on, it went over each box a layout made once or twice while
    the layout ran: 30–40 ms of the workers' time in an edit that adds a page."""
    _own_temporary_folder()
    worker = start_worker(fontconfig)
    gc.freeze()
    gc.disable()
    return worker


_WORKER_FOLDER_PREFIX = "report-worker-"


def _own_temporary_folder() -> None:
    """Give this worker process a temporary folder of its own (``report-worker-PID-*``),
    removed when it ends. WeasyPrint copies each stylesheet's fonts into a folder (8 MB with the
    bundled faces) that only its font configuration's finalizer removes, and that never runs
    in a worker, which ends by SIGTERM: every worker used to leave its copies in /tmp. The
    folder of a worker killed outright (SIGKILL) is removed by the next worker to start."""
    system_folder = Path(tempfile.gettempdir())
    for left in system_folder.glob(f"{_WORKER_FOLDER_PREFIX}*"):
        pid = left.name.removeprefix(_WORKER_FOLDER_PREFIX).split("-")[0]
        with contextlib.suppress(OSError):  # (another worker starting may be removing it too)
            if pid.isdigit() and ended(int(pid)) and left.stat().st_uid == os.getuid():
                shutil.rmtree(left, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_WORKER_FOLDER_PREFIX}{os.getpid()}-", dir=system_folder))
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)

    def end(number: int, _frame: object) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)  # ended by the signal still, as the build and `report stop` expect

    signal.signal(signal.SIGTERM, end)


def start_worker(fontconfig: Path | None) -> Worker:
    if fontconfig is not None:
        os.environ["FONTCONFIG_FILE"] = str(fontconfig)
    load_weasyprint()
    return Worker()


def answer(connection: Connection, worker: Worker) -> None:
    """Answer each message in order, until the build hangs up: ``("styles", Styles)``,
    ``("layout", PartJob)`` → ``("laid-out", key, PartLayout)``, ``("draw", DrawJob)`` →
    ``("drawn", target, Drawn)``, ``("join", JoinJob)`` → ``("joined", target)`` (None while
    more parts are to come).
    A failure answers ``("error", text)``."""
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        kind, payload = message
        reply: tuple[Any, ...] | None = None
        try:
            if kind == "styles":
                worker.use(payload)
            elif kind == "layout":
                reply = ("laid-out", payload.key, worker.layout(payload))
            elif kind == "draw":
                reply = ("drawn", payload.target, worker.draw(payload))
            elif kind == "join":
                reply = ("joined", worker.join(payload))
        except Exception:
            reply = ("error", traceback.format_exc())
        if reply is not None:
            try:
                connection.send(reply)
            except OSError:  # the build went away
                return
        _collector_back_if_many()


# Objects the collector tracks that a worker's jobs may make with the collector off.
_UNCOLLECTED_AT_MOST = 200_000


def _collector_back_if_many() -> None:
    """The collector on again, once the build's jobs have made :data:`_UNCOLLECTED_AT_MOST`
    objects (a worker's collector is off: see become_worker): a cold build's are collected as
    it goes, as before, its memory bounded. An edit's jobs make far fewer (5,000–50,000), which
    the kept worker's collection after the build goes over once (see report.daemon.pool)."""
    if not gc.isenabled() and gc.get_count()[0] > _UNCOLLECTED_AT_MOST:
        gc.enable()


def load_weasyprint() -> None:
    """Import WeasyPrint quickly, with parts naming their fonts instead of embedding them
    (see ``stand_in``), and leaders laid out as one box (see ``_join_dots``)."""
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
        # WeasyPrint calls fontTools' subsetter and instancer only for fonts a report has none
        # of (variable fonts, faces HarfBuzz cannot cut); importing them was a third of its
        # import time, in every worker.
        with _loaded_when_called("fontTools.subset", "fontTools.varLib.instancer"):
            import weasyprint.pdf.fonts
    finally:
        ctypes.util.find_library = find_library

    original_subset = weasyprint.pdf.fonts.Font.subset

    def stand_in(font: Any, to_unicode: Any, hinting: Any) -> None:
        """A part embeds, instead of its font file, a few bytes naming it (its hash), with
        widths and Unicode mappings for the glyphs it uses: the join puts the font file in
        once, cut to the glyphs of all parts (no part's own cut could be shared, and
        compressing whole files into every part costs more than laying it out)."""
        if _EMBEDDING.fonts == "named":
            font.file_content = font_stand_in(font.file_content, face_name(font.family, font.weight))
        elif _EMBEDDING.fonts == "cut":
            original_subset(font, to_unicode, hinting)

    weasyprint.pdf.fonts.Font.subset = stand_in

    import weasyprint.layout.inline
    from weasyprint.layout.leader import leader_index

    handle_leader = weasyprint.layout.inline.handle_leader

    def handle_leader_joined(context: Any, line: Any, containing_block: Any) -> None:
        handle_leader(context, line, containing_block)
        _join_dots(leader_index(line)[1])  # the leader it filled: a line's first

    weasyprint.layout.inline.handle_leader = handle_leader_joined
    _cache_tokenizer_patterns()
    _no_empty_backgrounds()
    resume.install()
    redraw.install()
    _tag_for_pdf_ua()
    _record_page_numbers()
    _write_parts_for_the_join()


class _TokenizerPatterns(dict[tuple[Any, bool], re.Pattern[str]]):
    """tinyhtml5's cache of the pattern that reads up to (or, ``opposite``, over) a set of
    characters, each pattern made the first time its set is asked for."""

    def __missing__(self, key: tuple[Any, bool]) -> re.Pattern[str]:
        characters, opposite = key
        escaped = "".join(f"\\x{ord(character):02x}" for character in characters)
        self[key] = pattern = re.compile(f"[{escaped}]+" if opposite else f"[^{escaped}]+")
        return pattern


def _cache_tokenizer_patterns() -> None:
    """WeasyPrint parses HTML with tinyhtml5, whose tokenizer reads text up to the next
    character of a set by a pattern it caches by the set; but it stores each pattern under
    the pattern, not the set (``characters = cache[(characters, opposite)] = pattern`` binds
    the name first), so it never finds one and makes it again at every call: 2,573 times for
    a 30 kB chapter, half of its parsing time (tinyhtml5 2.1.0). The cache given here makes
    each pattern once; the patterns, and so the trees parsed, are the same."""
    from tinyhtml5 import inputstream

    inputstream.characters_until_regex = _TokenizerPatterns()


# A painting area narrower or lower than this (in points) paints nothing: the PDF writes it as
# 0 or 0.000001 (a box of no height, give or take the float arithmetic of its edges).
_NO_AREA = 1e-6


def _no_empty_backgrounds() -> None:
    """A background image whose painting area has no height or no width is not drawn: it
    paints nothing, yet WeasyPrint drew it, a repeated image as a pattern and a group (each a
    PDF object with the page's resources). Every line of a code block has one, the continuation
    arrows (print.css: ``pre.code .line::before``), of no height but where the line wraps:
    book-ja's 596-page PDF held 8,525 such patterns, under the page's own resources, in every
    part the join took in."""
    import weasyprint.draw

    draw_background_image = weasyprint.draw.draw_background_image

    def drawn_if_seen(stream: Any, layer: Any, style: Any) -> None:
        _, _, width, height = layer.painting_area
        if layer.unbounded or (width >= _NO_AREA and height >= _NO_AREA):
            draw_background_image(stream, layer, style)

    weasyprint.draw.draw_background_image = drawn_if_seen


# libdeflate's levels for a part's streams. Its object and cross-reference streams the join reads
# and never copies (see report.render.serial): with zlib at level 9 they took three quarters of the
# zlib time of drawing a chapter, at level 1 a tenth of that, a quarter larger (in the cache, not
# the book). Its other streams (its pages' content above all) the join copies, or cuts and
# compresses again where it sets page numbers (report.render.deflate): libdeflate at its level 6
# made the 615-page report's content streams (8.5 MB) 1.4% smaller than zlib at 9, in 44% of the
# time.
_JOIN_READS_LEVEL = 1
_JOIN_READS = frozenset({"/ObjStm", "/XRef"})
_COPIED_LEVEL = 6


def _write_parts_for_the_join() -> None:
    """pydyf, as WeasyPrint writes a part with it, made quicker, with the same objects written:

    - its streams are compressed by libdeflate, not zlib at level 9: the object and
      cross-reference streams, which the join unpacks to write each object anew, at
      :data:`_JOIN_READS_LEVEL`, the others at :data:`_COPIED_LEVEL`;
    - ``PDF.page_references``, the references of all pages, which WeasyPrint's tagging asks for
      once for each marked box (3,000 times for a 37-page chapter), is made once for each
      number of pages, not at each call: making it at each call grew with the chapter's
      pages times its boxes."""
    import deflate as libdeflate
    import pydyf

    stream_data = pydyf.Stream.data.fget

    def data(stream: Any) -> bytes:
        if not stream.compress:
            return bytes(stream_data(stream))
        level = _JOIN_READS_LEVEL if stream.extra.get("Type") in _JOIN_READS else _COPIED_LEVEL
        packed = libdeflate.zlib_compress(b"\n".join(pydyf._to_bytes(item) for item in stream.stream), level)
        extra = pydyf.Dictionary({**stream.extra, "Filter": "/FlateDecode", "Length": len(packed)})
        return b"\n".join((extra.data, b"stream", packed, b"endstream"))

    pydyf.Stream.data = property(data)
    page_references = pydyf.PDF.page_references.fget
    made: weakref.WeakKeyDictionary[Any, tuple[int, tuple[bytes, ...]]] = weakref.WeakKeyDictionary()

    def references_kept(pdf: Any) -> tuple[bytes, ...]:
        pages = len(pdf.pages["Kids"])  # pydyf adds pages, never takes one away
        kept = made.get(pdf)
        if kept is None or kept[0] != pages:
            made[pdf] = kept = (pages, page_references(pdf))
        return kept[1]

    pydyf.PDF.page_references = property(references_kept)


def _tag_for_pdf_ua() -> None:
    """WeasyPrint's tagged PDF, where it falls short of PDF/UA-1:

    - every box inside a link is given an annotation of its own (the link is inherited), whose
      struct parent is a Span, not the Link: a contents page had 181 annotations for 70
      entries. Only the outermost box of a link keeps one: its area covers what is inside;
    - a link's /Contents is its target's id (an English slug): it is what the link says (its
      ``aria-label``, else its text, the page numbers it prints left out);
    - a link of ``line-height: 0`` (a note call set as a superscript) had a rectangle of no
      height: the height of its glyphs;
    - running heads and folios were marked content that no element lists: pagination
      artifacts (``/Artifact <</Type /Pagination>>``), out of the structure tree;
    - footnotes were Spans: Notes, with their id as /ID;
    - a table whose caption is on the page before its rows was two Tables, one of a caption
      alone: that one is a Div;
    - what is inside a link (its ``::after``) was a Link of its own, with no annotation: a Span;
    - an SVG drawing had no /Alt unless it had a <title>: its ``aria-label``, which the
      builder gives each drawing (see :mod:`report.svg`);
    - the quarter-em gap beside a Latin word (a margin), and the padding of inline code, read
      as a space: text extraction (poppler, viewers' search) starts a word at any gap over a
      tenth of an em. The gap is drawn inside the word's marked content, whose /ActualText is
      the word (see :func:`_draw_gap`): 「使えばwatch中」 reads as written."""
    import pydyf
    import weasyprint.document
    import weasyprint.draw
    import weasyprint.pdf
    import weasyprint.pdf.stream
    import weasyprint.pdf.tags
    from weasyprint.formatting_structure import boxes

    gather_anchors = weasyprint.document.gather_anchors

    def gather_outermost_links(box: Any, anchors: Any, links: list[Any], *rest: Any) -> None:
        gather_anchors(box, anchors, links, *rest)
        linked = {id(link[3]) for link in links}
        inner: set[int] = set()
        for *_, outer in links:
            stack = [] if id(outer) in inner else list(outer.all_children())
            while stack:
                child = stack.pop()
                if id(child) in linked:
                    inner.add(id(child))
                stack.extend(child.all_children())
        links[:] = [link for link in links if id(link[3]) not in inner]

    weasyprint.document.gather_anchors = gather_outermost_links

    inline_hit_area = boxes.InlineBox.hit_area

    def hit_area_of_glyphs(box: Any) -> tuple[float, float, float, float]:
        x, y, width, height = inline_hit_area(box)
        if height < 1:  # line-height: 0; the glyphs are centred on the line
            size = box.style["font_size"]
            return x, y - 0.6 * size, width, 1.2 * size
        return x, y, width, height

    boxes.InlineBox.hit_area = hit_area_of_glyphs

    add_links = weasyprint.pdf.add_links

    def add_described_links(links_and_anchors: Any, matrix: Any, pdf: Any, page: Any, names: Any, tags: Any) -> None:
        add_links(links_and_anchors, matrix, pdf, page, names, tags)
        for *_, box in links_and_anchors[0] if tags is not None else ():
            if box.link_annotation is not None and box.element is not None:
                box.link_annotation["Contents"] = pydyf.String(_link_description(box.element))

    weasyprint.pdf.add_links = add_described_links

    draw_stacking_context = weasyprint.draw.draw_stacking_context

    def draw_margins_as_artifacts(stream: Any, stacking_context: Any) -> None:
        if stream._tags is None or not isinstance(stacking_context.box, boxes.MarginBox):
            draw_stacking_context(stream, stacking_context)
            return
        tags, stream._tags = stream._tags, None  # nothing in it is tagged
        stream.begin_marked_content("Artifact", pydyf.Dictionary({"Type": "/Pagination"}))
        try:
            draw_stacking_context(stream, stacking_context)
        finally:
            stream.end_marked_content()
            stream._tags = tags

    weasyprint.draw.draw_stacking_context = draw_margins_as_artifacts

    build_box_tree = weasyprint.pdf.tags._build_box_tree

    def build_accessible_box_tree(box: Any, parent: Any, pdf: Any, *rest: Any) -> Iterator[Any]:
        if isinstance(box, boxes.MarginBox):
            return  # drawn as an artifact
        if isinstance(box, boxes.FootnoteAreaBox):  # its children are the notes (floated no longer)
            for child in box.children:
                child.report_note = True
        element = box.element
        for tagged in build_box_tree(box, parent, pdf, *rest):
            if element is not None and getattr(box, "report_note", False):
                tagged["S"] = "/Note"
                tagged["ID"] = pydyf.String(element.get("id") or f"note-{tagged.number}")
            elif tagged["S"] == "/Link" and box.link_annotation is None:  # in a link, or no link
                tagged["S"] = "/Span"
            elif element is not None and tagged["S"] == "/Figure" and "Alt" not in tagged:
                tagged["Alt"] = pydyf.String(element.get("aria-label") or element.get("alt") or "")
            elif tagged["S"] == "/Table" and all(_kind(pdf, kid) == "/Caption" for kid in tagged["K"]):
                tagged["S"] = "/Div"  # the caption, on the page before its table's rows
            _simplify_kids(tagged, pdf, rest[1])
            yield tagged

    weasyprint.pdf.tags._build_box_tree = build_accessible_box_tree

    from weasyprint.text.ffi import ffi, harfbuzz

    if not hasattr(harfbuzz, "hb_font_get_nominal_glyph"):  # a font's glyph for a character (see _draw_gap)
        ffi.cdef(
            "hb_bool_t hb_font_get_nominal_glyph (hb_font_t *font, hb_codepoint_t unicode, hb_codepoint_t *glyph);"
        )
    marked = weasyprint.pdf.stream.Stream.marked

    @contextmanager
    def marked_with_gaps(stream: Any, box: Any, tag: str) -> Iterator[None]:
        gaps = getattr(box, "report_gaps", None)
        with marked(stream, box, tag):
            if gaps is None or stream._tags is None:
                yield
                return
            stream.stream[-2]["ActualText"] = pydyf.String(box.text)  # the sequence's property list
            before, after = gaps
            _draw_gap(stream, box, before, first=True)
            yield
            _draw_gap(stream, box, after, first=False)

    weasyprint.pdf.stream.Stream.marked = marked_with_gaps


def _draw_gap(stream: Any, textbox: Any, gap: float, first: bool) -> None:
    """The ``gap`` before (``first``) or after a text box, drawn as a space of the box's font
    scaled to the gap's width: the box's marked content then spans the gap, and its
    /ActualText, the box's text, is read over all of it (ISO 32000-1 14.9.4), with no break
    between the word and the Japanese beside it. A reader that ignores /ActualText reads a
    space there, as it read the gap. Nothing is drawn if the font has no space."""
    if gap <= 0:
        return
    found = _glyphs_in_box_font(stream, textbox, " ", last_run=not first)
    if found is None:
        return
    font, font_size, ((glyph, advance),) = found
    x = textbox.position_x - gap if first else textbox.position_x + textbox.width
    stream.begin_text()
    stream.set_font_size(font.hash, font_size)
    stream.set_text_matrix(gap / advance, 0, 0, -1, x, textbox.position_y + textbox.baseline)
    stream.show_text(f"<{glyph:04x}>")
    stream.end_text()


_Recorded = tuple[Any, Any, int, int, Any, tuple[str, ...], tuple[float, ...]]  # see _record_page_numbers


class _Recording:
    """The page being drawn, and each page number drawn so far (see :func:`_record_page_numbers`)."""

    def __init__(self) -> None:
        self.page: Any = None
        self.stream: Any = None
        self.found: list[_Recorded] = []
        # By the face (Pango's key for it) and size: the glyphs and advances of 0–9, None if it
        # lacks one; for the fonts being drawn with (see Worker._write).
        self.digits: dict[tuple[int, float], list[tuple[int, float]] | None] = {}


# The digits found in each font configuration's faces (a worker keeps a few: see Worker.use).
_DIGITS: weakref.WeakKeyDictionary[Any, dict[tuple[int, float], list[tuple[int, float]] | None]] = (
    weakref.WeakKeyDictionary()
)


_RECORDING = _Recording()


def _record_page_numbers() -> None:
    """Each text box marked as a page number (``report_number``, see :func:`_mark_numbers`),
    when drawn straight into its page's content stream, is recorded: its page and stream, the
    stream's operators it drew, and the glyphs of the ten digits in its font (added to the
    font's widths and Unicode map, for the join to draw any number with)."""
    import weasyprint.document
    import weasyprint.draw

    paint = weasyprint.document.Page.paint

    def paint_recorded(page: Any, stream: Any, scale: float = 1) -> None:
        _RECORDING.page, _RECORDING.stream = page, stream
        try:
            redraw.paint(page, stream, functools.partial(paint, page, stream, scale), _RECORDING.found)
        finally:
            _RECORDING.page = _RECORDING.stream = None

    weasyprint.document.Page.paint = paint_recorded
    draw_text = weasyprint.draw.draw_text

    def draw_text_recorded(stream: Any, textbox: Any, *rest: Any) -> None:
        if getattr(textbox, "report_number", None) is None or stream is not _RECORDING.stream:
            redraw.text_drawn(stream, textbox, rest, lambda: draw_text(stream, textbox, *rest))
            return
        first = len(stream.stream)

        def drawn() -> list[_Measured]:
            with _digits_of_first_font(stream) as measured:
                draw_text(stream, textbox, *rest)
            return measured

        measured = redraw.text_drawn(stream, textbox, rest, drawn)
        # Noted in the font after the box's own glyphs, as when the box is shaped again.
        digits, widths = _noted_digits(stream, *measured[0]) if measured else _digit_glyphs(stream, textbox)
        _RECORDING.found.append((_RECORDING.page, stream, first, len(stream.stream), textbox, digits, widths))

    weasyprint.draw.draw_text = draw_text_recorded


_Digits = tuple[tuple[str, ...], tuple[float, ...]]  # the glyphs of 0–9 (hex, as a TJ writes them), their widths


# A font (the stream's key for it: a text box played back draws in the next document's font of
# that key, see report.render.redraw.text_drawn), its size, the glyphs of 0–9 in it.
_Measured = tuple[Any, float, list[tuple[int, float]] | None]


@contextmanager
def _digits_of_first_font(stream: Any) -> Iterator[list[_Measured]]:
    """While a text box is drawn: the font its first run is drawn in, as the drawing adds it to
    the stream, with the glyphs and advances of 0–9 in it; measured once a face and size (the
    index's page lists are hundreds of text boxes in one font: shaping each again to find its
    font was a fifth of the index's drawing). Nothing if no run was drawn."""
    from weasyprint.text.fonts import get_pango_font_key

    measured: list[_Measured] = []
    add_font = stream.add_font

    def add_font_measured(pango_font: Any) -> tuple[Any, float]:
        font, font_size = add_font(pango_font)
        if not measured:
            key = (get_pango_font_key(pango_font)[0], font_size)
            if key not in _RECORDING.digits:
                _RECORDING.digits[key] = _measured(pango_font, "0123456789")
            measured.append((key[0], font_size, _RECORDING.digits[key]))
        return font, font_size

    stream.add_font = add_font_measured
    try:
        yield measured
    finally:
        del stream.add_font


def _digit_glyphs(stream: Any, textbox: Any) -> _Digits:
    """The glyphs of 0–9 in the font the box is drawn in (hex, as a TJ writes them), and their
    widths: none if the font has not all ten."""
    found = _glyphs_in_box_font(stream, textbox, "0123456789")
    return _as_digits(found[2]) if found is not None else ((), ())


def _noted_digits(stream: Any, key: Any, font_size: float, glyphs: list[tuple[int, float]] | None) -> _Digits:
    """:func:`_digit_glyphs`, from the glyphs measured in the stream's font of ``key``: noted in
    its widths and Unicode mapping, as :func:`_glyphs_in_box_font` notes them."""
    font = stream._fonts[key]
    if glyphs is None or not _usable(font, glyphs):
        return (), ()
    _note(font, font_size, glyphs, "0123456789")
    return _as_digits(glyphs)


def _as_digits(glyphs: list[tuple[int, float]]) -> _Digits:
    return tuple(f"{glyph:04x}" for glyph, _ in glyphs), tuple(width for _, width in glyphs)


def _glyphs_in_box_font(
    stream: Any, textbox: Any, characters: str, last_run: bool = False
) -> tuple[Any, float, list[tuple[int, float]]] | None:
    """The font of the box's first (or last) run as the stream embeds it, its size, and the
    glyph and advance of each of ``characters`` there, noted in the font's widths and Unicode
    mapping (the stream writes a glyph only where they name it): None for a bitmap font, or
    one that lacks a character or has a glyph of no width."""
    from weasyprint.text.ffi import ffi

    layout = textbox.pango_layout
    layout.reactivate(textbox.style)
    try:
        line, _ = layout.get_first_line()
        run = line.runs[0]
        while last_run and run.next != ffi.NULL:
            run = run.next
        pango_font = run.data.item.analysis.font
        found = _measured(pango_font, characters)
        if found is None:
            return None
        font, font_size = stream.add_font(pango_font)
    finally:
        layout.deactivate()
    if not _usable(font, found):
        return None
    _note(font, font_size, found, characters)
    return font, font_size, found


def _measured(pango_font: Any, characters: str) -> list[tuple[int, float]] | None:
    """The glyph and advance of each of ``characters`` in the font: None if it lacks one."""
    from weasyprint.text.ffi import FROM_UNITS, ffi, harfbuzz, pango

    hb_font = pango.pango_font_get_hb_font(pango_font)
    glyph = ffi.new("hb_codepoint_t *")
    glyphs: list[int] = []
    for character in characters:
        if not harfbuzz.hb_font_get_nominal_glyph(hb_font, ord(character), glyph):
            return None
        glyphs.append(glyph[0])
    ink, logical = ffi.new("PangoRectangle *"), ffi.new("PangoRectangle *")
    found: list[tuple[int, float]] = []
    for glyph_id in glyphs:
        pango.pango_font_get_glyph_extents(pango_font, glyph_id, ink, logical)
        found.append((glyph_id, logical.width * FROM_UNITS))
    return found


def _usable(font: Any, found: list[tuple[int, float]]) -> bool:
    """Whether glyphs found in the font can be drawn in place of others: not a bitmap font's,
    and none without width."""
    return not font.bitmap and all(width > 0 for _, width in found)


def _note(font: Any, font_size: float, found: list[tuple[int, float]], characters: str) -> None:
    """The glyphs added to the font's widths and Unicode mapping (the stream writes a glyph
    only where they name it)."""
    for (glyph_id, width), character in zip(found, characters, strict=True):
        font.widths.setdefault(glyph_id, round(width * 1000 / font_size))
        font.to_unicode.setdefault(glyph_id, character)


def _simplify_kids(element: Any, pdf: Any, page_marks: dict[int, Any]) -> None:
    """The element's children that say nothing their parent does not, taken out:

    - a bare Span or NonStruct (no attribute; one marked-content sequence of its page, or none;
      WeasyPrint makes a Span for each line's text and each span of the HTML, a NonStruct for
      each anonymous box) is replaced by its sequence, which the page's content map then gives
      to the element;
    - a link's object reference (OBJR) is written in the element, not as an object of its own.

    Half the objects of a tagged PDF were such Spans (37,000 of 75,000 at 586 pages), and a
    sixth of the rest such NonStructs and references, each copied, numbered and written by
    every join."""
    kids = element["K"]
    if not any(isinstance(kid, bytes) for kid in kids):
        return
    kept = []
    for kid in kids:
        child = _written(pdf, kid) if isinstance(kid, bytes) else None
        if child is None:
            kept.append(kid)
            continue
        if child.get("Type") == "/OBJR":
            kept.append(child)
            continue
        marks = child["K"] if child.keys() == _BARE_KEYS and child["S"] in ("/Span", "/NonStruct") else None
        if marks is None or len(marks) > 1 or not all(isinstance(mark, int) for mark in marks):
            kept.append(kid)
            continue
        for mark in marks:
            kept.append(mark)
            page_marks[mark] = element.reference
    element["K"] = type(kids)(kept)


_BARE_KEYS = {"Type", "S", "K", "Pg", "P"}


def _written(pdf: Any, reference: bytes) -> Any:
    """An object WeasyPrint has written, from its reference (b"12 0 R")."""
    return pdf.objects[int(reference.split()[0])]


def _kind(pdf: Any, reference: bytes) -> str:
    """The structure type of an element WeasyPrint has written."""
    return str(_written(pdf, reference)["S"])


_NOT_READ = {"rt", "rp"}  # a ruby's reading is read after its base: once is enough in a description


def _link_description(element: Any) -> str:
    """What a link says: its ``aria-label``, else its text but the page numbers it prints
    (stand-ins when it is drawn) and ruby readings, its white space collapsed."""
    if label := element.get("aria-label"):
        return str(label)

    def text(node: Any) -> str:
        parts = [node.text or ""]
        for child in node:
            tag = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
            if tag not in _NOT_READ and PAGE_NUMBER_CLASS not in (child.get("class") or "").split():
                parts.append(text(child))
            parts.append(child.tail or "")
        return "".join(parts)

    return " ".join(text(element).split())


class _CalledModule(types.ModuleType):
    """Stands in for a module not yet imported: each of its functions, when called, imports it."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)  # the import system's questions: a plain module
        name = self.__name__

        def called(*args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(name), attribute)(*args, **kwargs)

        return called


@contextmanager
def _loaded_when_called(*names: str) -> Iterator[None]:
    """Within the block, importing one of the modules ``names`` (not yet imported) gives a
    :class:`_CalledModule`; after it, the module imports as usual."""
    standing_in = {name: _CalledModule(name) for name in names if name not in sys.modules}
    sys.modules.update(standing_in)
    try:
        yield
    finally:
        for name, module in standing_in.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


class _Embedding:
    fonts = "named"  # or "cut" (as WeasyPrint does) or "whole" (the file as it is)


_EMBEDDING = _Embedding()


@contextmanager
def real_fonts(cut: bool = True) -> Iterator[None]:
    """Within the block, fonts are embedded, not named: for a PDF shown on its own. Cut to the
    glyphs used, as WeasyPrint does; or, not ``cut``, whole — for a PDF drawn as an image at
    once, such as the cover: the faces' files are the report's subsets (half a megabyte), and
    cutting them again cost more than the rest of the cover."""
    _EMBEDDING.fonts = "cut" if cut else "whole"
    try:
        yield
    finally:
        _EMBEDDING.fonts = "named"


def notdef_codes(messages: Iterable[str]) -> set[int]:
    """The code points WeasyPrint drew as .notdef (no face of the job has them), from its
    warnings: they come when text is drawn, not when it is laid out."""
    return {int(m.group(1), 16) for message in messages if (m := _NOTDEF.search(message))}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


STYLES_KEPT = 3  # reports whose parsed stylesheets and fonts a worker keeps (kept workers serve any report)


class Worker:
    """Keeps the parsed stylesheets of the last few PDFs (the least recently used dropped) and
    the parts laid out but not yet drawn."""

    def __init__(self) -> None:
        self.styles: Styles | None = None
        self.css: list[Any] = []
        self.font_config: Any = None
        self.fetcher: Any = None
        self._parsed: dict[Styles, tuple[list[Any], Any, Any, tuple[Path, ...]]] = {}  # oldest use first
        self.laid_out: dict[str, Any] = {}  # part key → WeasyPrint document
        # Part name → its last layout here, to resume (the most recent last): an author edits a
        # chapter or two again and again.
        self.resumable: dict[str, resume.LaidOut] = {}
        # Part name → what drawing each of its pages did, the last time it was drawn here (see
        # report.render.redraw), the most recent last.
        self.drawn: dict[str, list[redraw.PageDrawing | None]] = {}
        self.joiner: Joiner | None = None  # a join begun, waiting for more parts
        # The last join written, and the book it joined (its styles, faces, blank pages): kept
        # for the book's next build, which sends most of its parts again as they were.
        self.kept_join: tuple[tuple[str, tuple[tuple[str, Path], ...], bool], Joiner] | None = None

    @property
    def join_kept_for(self) -> str:
        """The styles key of the book whose join this worker keeps ("": none)."""
        return self.kept_join[0][0] if self.kept_join is not None else ""

    @property
    def resumes(self) -> tuple[str, ...]:
        """The names of the parts whose last layout this worker keeps to resume, the most recent
        last (see report.render.workers.Session)."""
        return tuple(self.resumable)

    def use(self, styles: Styles) -> None:
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

        self.forget()  # a new build: what an earlier one laid out and did not draw is stale
        self.styles = styles
        if (parsed := self._parsed.pop(styles, None)) is None:
            os.environ["FONTCONFIG_FILE"] = str(styles.fontconfig)
            fetcher = RecordingFetcher(styles.allowed_roots)
            font_config = weasyprint.text.fonts.FontConfiguration()
            with _collected():
                css = [
                    weasyprint.CSS(string=css, base_url=styles.base_url, url_fetcher=fetcher, font_config=font_config)
                    for css in styles.stylesheets
                ]
            parsed = (css, font_config, fetcher, tuple(fetcher.fetched))
        self._parsed[styles] = parsed  # the most recently used, last
        while len(self._parsed) > STYLES_KEPT:
            del self._parsed[next(iter(self._parsed))]
        self.css, self.font_config, self.fetcher, self._styles_fetched = parsed

    def layout(self, job: PartJob) -> PartLayout:
        fault_point("pdf-layout")
        assert self.styles is not None
        self.fetcher.fetched = list(self._styles_fetched)
        # A part without a name (a first build's) has nothing to resume and keeps nothing: its
        # layout records nothing for a next one.
        resuming = (
            resume.resuming(self.styles, self.resumable.pop(job.name, None)) if job.name else contextlib.nullcontext()
        )
        with _collected() as collector, resuming as render:
            document = self._render(job)
        if render is not None and render.kept is not None:
            _keep_recent(self.resumable, job.name, render.kept)
        self.laid_out[job.key] = document
        return PartLayout(
            pages=len(document.pages),
            anchors=_anchors(document),
            starts=_page_starts(document),
            cover=_first_page_png(document) if job.cover else b"",
            warnings=tuple(collector.messages),
            fetched=tuple(dict.fromkeys(self.fetcher.fetched)),
        )

    def draw(self, job: DrawJob) -> Drawn:
        """Write the part with its page numbers' stand-ins, and where they are, for the join to
        set; or, should one be out of the join's reach, with the page numbers filled in (laid
        out again if this worker no longer has it: it came from the cache, or was laid out by
        another worker)."""
        assert self.styles is not None
        fault_point("pdf-draw")
        name = job.part.name
        with _collected() as collector:
            document = self.laid_out.pop(job.part.key, None) or self._render(job.part)
            _mark_gaps(document)
            marked = _mark_numbers(document)
            try:
                # A part without a name (a first build's) keeps no record of its drawing.
                recording = (
                    redraw.drawing(self.drawn.pop(name, []), lambda: len(collector.messages))
                    if name
                    else contextlib.nullcontext()
                )
                with recording as drawing:
                    self._write(document, job.target)
                numbers: tuple[DrawnNumber, ...] | None = _drawn_numbers(document, _RECORDING.found)
                if numbers is not None and len(numbers) != marked:
                    numbers = None
                    self.resumable.clear()  # their boxes may be this document's: filled in now
                    self.drawn.clear()
                    redraw.forget_texts()
                    _fill_page_numbers(document, dict(job.numbers), job.first_folio)
                    self._write(document, job.target)
                elif drawing is not None:
                    _keep_recent(self.drawn, name, drawing.pages)
            finally:
                _RECORDING.found = []
        return Drawn(tuple(dict.fromkeys(collector.messages)), packed_numbers(numbers) if numbers is not None else None)

    def _write(self, document: Any, target: Path) -> None:
        assert self.styles is not None
        _RECORDING.digits = _DIGITS.setdefault(document.font_config, {})
        document.write_pdf(target, pdf_variant=self.styles.variant, pdf_tags=True, attachments=[])

    def join(self, job: JoinJob) -> Path | None:
        """The parts added to the join (begun now if none is: the one this worker wrote last for
        the same book, if any, whose parts sent again as they were are kept): with the target,
        the join written there (in a worker, while the main process writes the EPUB), and kept
        for the book's next build."""
        from report.render.join import Joiner, JoinPart

        book = (self.styles.key if self.styles is not None else "", job.fonts, job.marked_blanks)
        if self.joiner is None:
            kept, self.kept_join = self.kept_join, None
            if kept is not None and kept[0] == book:
                self.joiner = kept[1]
                self.joiner.begin()
            else:
                if kept is not None:
                    kept[1].close()
                self.joiner = Joiner(dict(job.fonts), self._blank_page() if job.marked_blanks else None)
        elif job.fresh:
            self.joiner.begin()  # every part is sent again: those drawn again since replace theirs
        try:
            for part in job.parts:
                # A part's file is named by its content: one the join has already is not read again,
                # nor its numbers (where a drawing drew them is told by its bytes).
                joined_before = self.joiner.kept_part(part.slot, part.pdf)
                pdf, numbers = (
                    (joined_before.pdf, joined_before.numbers)
                    if joined_before is not None
                    else (part.pdf.read_bytes(), unpacked_numbers(part.numbers))
                )
                joined = JoinPart(
                    pdf, part.stubs, part.blank_before, numbers, dict(part.pages), part.first_folio, part.pdf
                )
                self.joiner.add(part.slot, joined)
            if job.target is not None:
                fault_point("pdf-join")
                job.target.write_bytes(self.joiner.result())
        except BaseException:
            self._drop_join()
            raise
        if job.target is not None:
            self.kept_join, self.joiner = (book, self.joiner), None
        return job.target

    def forget(self) -> None:
        """Drops what the build laid out and did not draw, and a join it did not finish."""
        self.laid_out.clear()
        self._drop_join()

    def _drop_join(self) -> None:
        if self.joiner is not None:
            self.joiner.close()
            self.joiner = None

    def _blank_page(self) -> bytes:
        """A blank page as WeasyPrint draws one between a page and the next right-hand page
        (``@page :blank``: the printer's marks, no running heads or folio)."""
        blanks = self._render(PartJob("", '<div></div><div style="break-before: right"></div>'))
        with real_fonts():
            return bytes(
                blanks.copy(blanks.pages[1:2]).write_pdf(pdf_variant=self.styles.variant if self.styles else None)
            )

    def _render(self, job: PartJob) -> Any:
        import weasyprint

        assert self.styles is not None
        return weasyprint.HTML(string=job.html, base_url=self.styles.base_url, url_fetcher=self.fetcher).render(
            stylesheets=self.css,
            font_config=self.font_config,
            pdf_variant=self.styles.variant,
            pdf_tags=True,
        )


_Kept = TypeVar("_Kept")


def _keep_recent(kept: dict[str, _Kept], name: str, value: _Kept) -> None:
    """``value`` kept under ``name`` (taken out before), the most recent last: a worker keeps
    what it needs of the last few parts it laid out and drew (an author edits a chapter or two
    again and again), the least recently used dropped."""
    kept[name] = value
    while len(kept) > LAYOUTS_RESUMABLE:
        del kept[next(iter(kept))]


class _collected:
    """WeasyPrint's warnings while in the block, collected instead of printed."""

    def __enter__(self) -> _Collect:
        self.collector = _Collect()
        self.logger = logging.getLogger("weasyprint")
        self.logger.addHandler(self.collector)
        self.logger.propagate = False
        return self.collector

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self.collector)


def _anchors(document: Any) -> tuple[tuple[str, int], ...]:
    found: dict[str, int] = {}
    for number, page in enumerate(document.pages, start=1):
        for name in page.anchors:
            found.setdefault(name, number)
    return tuple(found.items())


def _page_starts(document: Any) -> tuple[tuple[int, str], ...]:
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
            starts.append((number, first[0]))
    return tuple(starts)


def _first_page_png(document: Any) -> bytes:
    """The first page (the cover) as the EPUB's cover image: cut to a 256-colour palette, a
    tenth of the size with no visible change. By octree, saved at zlib's default level: a
    median cut and PNG's optimiser took 0.11 s more, for a larger file (33 kB, not 23 kB, for
    the briefing's cover)."""
    import pypdfium2
    from PIL import Image

    with real_fonts(cut=False):  # nor compressed: read once, at once
        pdf = pypdfium2.PdfDocument(document.copy(document.pages[:1]).write_pdf(uncompressed_pdf=True))
    page = pdf[0]
    buffer = io.BytesIO()
    image = page.render(scale=COVER_HEIGHT / page.get_height()).to_pil().convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(buffer, "PNG")
    pdf.close()
    return buffer.getvalue()


# --- filling in page numbers --------------------------------------------------------------------


def _fill_page_numbers(document: Any, numbers: dict[str, str], first_folio: int) -> None:
    """Replace, in the laid-out boxes, each page number's stand-in (see :func:`_number_boxes`)
    by the real number; in a page list's pieces, each stand-in zero by the list's digit."""
    for index, box, ref, offset in list(_number_boxes(document)):
        number = str(first_folio + index) if not ref else numbers.get(ref)
        if number is not None and offset >= 0:
            digits = iter([digit for digit in number if digit.isdigit()][offset:])
            number = "".join(next(digits, "0") if character.isdigit() else character for character in box.text)
        if number is not None and box.text != number:
            _set_text(box, number, _alignment(box, offset))


def _number_boxes(document: Any) -> Iterator[tuple[int, Any, str, int]]:
    """Each page number as laid out: its page (from 0), its text box, the name of the box it
    shows (a span.page-number's data-page-of; "" for a folio: a margin box's text that is the
    page counter, the part laid out alone from 1), and -1. A page list's (.page-list) pieces
    too, one a line: with the list's name, and how many of its digits come before the piece."""
    from weasyprint.formatting_structure import boxes

    listed: dict[int, int] = {}  # a page list's element → the digits of its pieces so far
    for index, page in enumerate(document.pages):
        folio = str(1 + index)
        for box, margin in _text_boxes(page._page_box, boxes):
            if margin:
                if box.text == folio:
                    yield index, box, "", -1
                continue
            element = box.element
            if element is None or box.element_tag not in _NUMBER_TAGS:
                continue
            classes = element.get("class", "").split()
            if PAGE_NUMBER_CLASS in classes and box.text.isdigit():
                yield index, box, element.get("data-page-of", ""), -1
            elif PAGE_LIST_CLASS in classes and _PAGE_LIST_TEXT.fullmatch(box.text):
                offset = listed.get(id(element), 0)
                listed[id(element)] = offset + sum(character.isdigit() for character in box.text)
                yield index, box, element.get("data-page-of", ""), offset


def _mark_numbers(document: Any) -> int:
    """Marks each page number's text box for the drawing to record (see
    :func:`_record_page_numbers`); returns how many there are."""
    count = 0
    for index, box, ref, offset in _number_boxes(document):
        box.report_number = (index, ref, offset)
        count += 1
    return count


def _drawn_numbers(document: Any, found: list[_Recorded]) -> tuple[DrawnNumber, ...]:
    """Where each page number recorded while the part was written is in its page's content
    stream, as written (its operators joined by newlines, as pydyf writes them): a number
    drawn as one text matrix and one glyph string, in a font that has the ten digits."""
    from pydyf import _to_bytes

    pages = {id(page): index for index, page in enumerate(document.pages)}
    offsets: dict[int, list[int]] = {}
    numbers = []
    for page, stream, first, last, box, digits, digit_widths in found:
        if id(stream) not in offsets:
            starts = [0]
            for operator in stream.stream:
                starts.append(starts[-1] + len(_to_bytes(operator)) + 1)
            offsets[id(stream)] = starts
        starts = offsets[id(stream)]
        drawn = [(at, _to_bytes(stream.stream[at])) for at in range(first, last)]
        matrices = [(at, operator) for at, operator in drawn if operator.endswith(b" Tm")]
        texts = [(at, operator) for at, operator in drawn if operator.endswith(b" TJ")]
        if len(matrices) != 1 or len(texts) != 1 or not digits or id(page) not in pages:
            continue
        (matrix_at, matrix), (text_at, _) = matrices[0], texts[0]
        values = tuple(float(value) for value in matrix.split()[:6])
        index, ref, offset = box.report_number
        numbers.append(
            DrawnNumber(
                page=index,
                ref=ref,
                matrix_at=(starts[matrix_at], starts[matrix_at + 1] - 1),
                glyphs_at=(starts[text_at], starts[text_at + 1] - 1),
                matrix=values,  # type: ignore[arg-type]
                width=box.width,
                digit_widths=digit_widths,
                align=_alignment(box, offset),
                digits=digits,
                list_offset=offset,
            )
        )
    return tuple(numbers)


def _text_boxes(box: Any, boxes: Any, margin: bool = False) -> Iterator[tuple[Any, bool]]:
    """Every text box under ``box``, and whether it is in a margin box (a running head or folio)."""
    if isinstance(box, boxes.TextBox):
        yield box, margin
        return
    margin = margin or isinstance(box, boxes.MarginBox)
    for child in getattr(box, "children", ()):
        yield from _text_boxes(child, boxes, margin)


def _mark_gaps(document: Any) -> None:
    """Give the text boxes at the edges of an inline box that is set apart by style — a span of
    :data:`GAP_CLASSES` (its margin) or inline code (its padding) — the gap before and after
    them, for the drawing to read them as one with the text beside them (see
    ``marked_with_gaps``): no space is read that the author did not write. A box split over two
    lines has its gaps on each line's piece."""
    from weasyprint.formatting_structure import boxes

    def visit(box: Any) -> None:
        classes = (box.element.get("class") or "").split() if box.element is not None else ()
        spaced = GAP_CLASSES.intersection(classes) or box.element_tag == "code"
        if isinstance(box, boxes.InlineBox) and box.children and spaced:
            first, last = box.children[0], box.children[-1]
            sides = {id(first): [box.margin_left + box.border_left_width + box.padding_left, 0.0]}
            sides.setdefault(id(last), [0.0, 0.0])[1] = box.margin_right + box.border_right_width + box.padding_right
            for text in (first, last) if first is not last else (first,):
                if isinstance(text, boxes.TextBox) and any(sides[id(text)]):
                    text.report_gaps = tuple(sides[id(text)])
        for child in getattr(box, "children", ()):
            visit(child)

    for page in document.pages:
        visit(page._page_box)


def _join_dots(leader: Any) -> None:
    """WeasyPrint fills a leader with one text box per dot, each then laid out, drawn and
    tagged on its own: a contents page of a hundred entries had ten thousand boxes, and the
    contents took as long as five chapters. The dots of a leader are evenly spaced, so one
    box of all of them is drawn the same."""
    from weasyprint.formatting_structure import boxes

    dots = [child for child in leader.children if isinstance(child, boxes.TextBox)] if leader is not None else []
    if len(dots) < 2 or len(dots) != len(leader.children):
        return
    first = min(dots, key=lambda dot: dot.position_x)
    joined = first.copy()
    joined.text = joined.pango_layout.text = first.text * len(dots)
    joined.width = first.width * len(dots)
    leader.children = (joined,)


def _alignment(box: Any, list_offset: int) -> float:
    """How far a page number's text moves when its width changes (see :class:`DrawnNumber`):
    1 flush right if it is set so, 0 for a page list's piece (it starts where it did), else 0.5
    (centred on where the stand-in was)."""
    if box.style["text_align_all"] in ("right", "end"):
        return 1.0
    return 0.0 if list_offset >= 0 else 0.5


def _set_text(box: Any, text: str, align: float) -> None:
    """New text for a laid-out text box, moved by ``align`` of the change in its width (see
    :func:`_alignment`; digits have one width in the page numbers' fonts, so only a number of
    another length moves)."""
    from weasyprint.text.line_break import line_size

    layout = box.pango_layout
    box.text = layout.text = text  # drawn from this: the layout is set up again when drawn
    layout.reactivate(box.style)
    line, _ = layout.get_first_line()
    width = line_size(line, box.style)[0]
    layout.deactivate()
    box.position_x += (box.width - width) * align
    box.width = width
