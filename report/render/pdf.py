"""The print PDF: laid out in parts, in parallel, and joined.

WeasyPrint has no incremental layout, and one process lays out one document at a time.
So the print document is cut into parts — the cover, title page and contents, then each
chapter, which starts a page anyway — and the parts are laid out by worker processes
(:mod:`report.render.workers`), as many as the machine has cores (up to four). Each
part's layout and its drawn PDF are kept in the report's cache, so after an edit only the
edited chapter is laid out and drawn again, unless its page count changed (then the parts
after it get new folios).
:mod:`report.render.join` joins the parts into one tagged PDF.

What a part cannot know alone — its folios, the contents' page numbers, the page of a
figure in another chapter — is set as a stand-in of zeros and filled in once every part
is laid out. A stand-in has as many digits as the number had in the last build (in a
first build, as the page estimated from the length of the text before it), or as its
box holds: the contents' numbers are set in boxes three digits wide, so that the
contents is laid out once. A part whose stand-in turns out to have the wrong number of
digits is laid out again as soon as that is known (at most :data:`ROUNDS` times). A part is
drawn with its stand-ins, and the join writes the numbers in their place (see
:mod:`report.render.weasy`): a part that moves, because a chapter before it grew, is
neither laid out nor drawn again. A link to another part points at a stand-in anchor that
the join replaces by the real one.

WeasyPrint never sees the 16–25 MB bundled faces: each job's ``@font-face`` rules point
at subsets of them, cut to the characters the document can draw and kept in the
report's cache, and its fontconfig knows no other font file. Parts do not embed them:
they name the bundled face, and the join cuts each face once, to the glyphs all parts draw.
"""

from __future__ import annotations

import functools
import html
import itertools
import os
import re
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from report.assemble import Assembler
from report.cache import CACHE_DIR_NAME, Cache, code_fingerprint, digest, json_digest
from report.config import PAGE_MILLIMETRES, PdfSettings
from report.fonts import (
    FACES,
    bundled,
    code_text,
    font_digest,
    fontconfig_file,
    fonts_dir,
    print_characters,
    standard_characters,
    subset_file,
)
from report.model import ID_ATTRIBUTE, Chapter
from report.render import Output, PageStart, in_background
from report.render.weasy import (
    NO_NUMBERS,
    DrawJob,
    Drawn,
    JoinedPart,
    JoinJob,
    PartJob,
    PartLayout,
    Styles,
    face_name,
    notdef_codes,
    numbers_packed_well,
)
from report.render.workers import LAYOUTS_AHEAD, PdfWorkers, Session

# A part listing pages is laid out with the last build's shapes of its lists, rather than once its
# pages are known, when at most one in this many of the ids they list is new.
_NEW_IN_LISTS = 10
# A new id's page is guessed at the density of this many pages before it (see _page_after_known).
_PAGES_MEASURED = 3
ROUNDS = 3  # layouts of a part whose page-number stand-ins had the wrong number of digits
_STYLES: weakref.WeakKeyDictionary[Assembler, _Subsets] = weakref.WeakKeyDictionary()
# A page number: an empty span, filled here. With data-digits, the stylesheet sets it in a box
# that many digits wide (the contents' numbers), so up to that many its length changes nothing.
# A page list (.page-list, the index's "3, 5–7") names several ids: it is laid out with the
# shape of its text as the last numbers known make it ("0, 0–0"), the join sets its digits, and
# it is laid out again if the real one has another shape (a range more, a number of more digits).
# (The index's are the text of its links: see report.index.)
_PAGE_NUMBER = re.compile(
    r'<(span|a) class="(?:index-pages )?page-(?:number|list)" data-page-of="([^"]+)"(?: data-digits="(\d+)")?[^>]*></\1>'
)
_DIGIT = re.compile(r"[0-9]")
_LOCAL_LINK = re.compile(r'\shref="#([^"]+)"')
_BODY_END = "</body>"


@dataclass(frozen=True)
class _Facts:
    """What a run reads of a part's HTML, found once for each HTML (see _FACTS)."""

    characters: frozenset[str]  # print_characters of the part alone
    code: frozenset[str]  # of the text of its code alone
    ids: frozenset[str]
    order: tuple[str, ...]  # its ids in the order they come
    boxes: tuple[tuple[str, str], ...]  # each page number it shows: the id, the digits of its box
    linked: frozenset[str]  # the ids its links lead to
    # Of the HTML with each box named by its place (see _Part.job): what a layout key names the
    # part's HTML by, which an index entry's ids change, not its boxes (see _Part.for_workers).
    named_digest: str


# The facts of the parts of the last print document made in this process, by their HTML: an
# unchanged part's are not found again (the build server finds them between builds, for the
# builds it forks: see report.build.keep_last_build).
_FACTS: dict[str, _Facts] = {}


def _facts(source: str, cache: Cache) -> _Facts:
    """The part's facts: kept in this process, else stored in the cache by the build that found
    them, else found now (and stored). A build server started anew (the kept processes had
    stopped) found those of the 602-page bench report's parts in 0.31 s, which the join of its
    first edit waited for."""
    known = _FACTS.get(source)
    if known is None:
        key = digest(_code(), source)
        known = _stored_facts(cache.load(_FACTS_KIND, key))
        if known is None:
            known = _found_facts(source)
            cache.store(_FACTS_KIND, key, _plain_facts(known))
        _FACTS[source] = known
    return known


_FACTS_KIND = "pdf-facts"


def _found_facts(source: str) -> _Facts:
    order = tuple(dict.fromkeys(ID_ATTRIBUTE.findall(source)))
    boxes = tuple((ref, digits) for _, ref, digits in _PAGE_NUMBER.findall(source))
    names = _box_names(ref for ref, _ in boxes)
    return _Facts(
        characters=print_characters(source, ()),
        code=print_characters(code_text(source), ()),
        ids=frozenset(order),
        order=order,
        boxes=boxes,
        linked=frozenset(html.unescape(target) for target in _LOCAL_LINK.findall(source)),
        named_digest=digest(_PAGE_NUMBER.sub(lambda box: _box_named(box, names), source)),
    )


def _plain_facts(facts: _Facts) -> dict[str, Any]:
    """The facts as a cache entry's value (each set of characters as one string)."""
    return {
        "characters": "".join(sorted(facts.characters)),
        "code": "".join(sorted(facts.code)),
        "order": list(facts.order),
        "boxes": [list(box) for box in facts.boxes],
        "linked": sorted(facts.linked),
        "named_digest": facts.named_digest,
    }


def _stored_facts(value: dict[str, Any] | None) -> _Facts | None:
    """The facts of :func:`_plain_facts`'s value (None: none, or not as it writes them)."""
    if value is None:
        return None
    try:
        order = tuple(_strings(value["order"]))
        boxes = tuple(_pair(box) for box in value["boxes"])
        characters, code, named_digest = (value[name] for name in ("characters", "code", "named_digest"))
        if not all(isinstance(text, str) for text in (characters, code, named_digest)):
            return None
        linked = frozenset(_strings(value["linked"]))
    except (KeyError, TypeError, ValueError):
        return None
    return _Facts(
        characters=frozenset(characters),
        code=frozenset(code),
        ids=frozenset(order),
        order=order,
        boxes=boxes,
        linked=linked,
        named_digest=named_digest,
    )


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(value)
    return value


def _pair(value: Any) -> tuple[str, str]:
    ref, digits = _strings(value)
    return ref, digits


def _box_names(refs: Iterable[str]) -> dict[str, str]:
    """The name of each part's box (by the ids it shows the page of) in the HTML the workers
    get: its place among the part's boxes."""
    return {ref: f"p{place}" for place, ref in enumerate(dict.fromkeys(refs))}


def _box_named(box: re.Match[str], names: Mapping[str, str]) -> str:
    ref = box.group(2)
    return box.group(0).replace(f'data-page-of="{ref}"', f'data-page-of="{names[ref]}"', 1)


def document_facts(assembler: Assembler, cache: Cache) -> list[_Facts]:
    """The facts of each part of the assembler's print document (see :func:`_facts`), kept for
    the next document."""
    facts = {source: _facts(source, cache) for _, source in assembler.print_parts}
    _FACTS.clear()  # the last document's only
    _FACTS.update(facts)
    return [facts[source] for _, source in assembler.print_parts]


@dataclass(frozen=True)
class _Subsets:
    """The styles every part shares, and what their font subsets were cut to."""

    styles: Styles
    characters: frozenset[str]  # the text faces'
    code: frozenset[str]  # the monospace faces'
    extra: frozenset[str]  # of those, the characters earlier layouts found missing (see PdfRun._retry)
    objects: dict[str, str]  # each face's file → its subset's object in the cache


@dataclass(frozen=True)
class PdfLayout:
    """What the layout tells before the PDF is drawn: enough for the EPUB."""

    pages: int
    page_starts: tuple[PageStart, ...]
    cover: bytes  # the first page as PNG


class PdfRenderer:
    format = "pdf"

    def __init__(self, cache: Cache | None = None, workers: PdfWorkers | None = None) -> None:
        self.cache = cache
        self.workers = workers

    def render(self, assembler: Assembler, target: Path) -> Output:
        return self.start(assembler, target).finish()

    def cover_png(self, assembler: Assembler) -> bytes:
        """The first printed page as a PNG (the EPUB's cover image): from the cache (the build
        has just laid the document out), else laid out now."""
        run = self.start(assembler, None)
        try:
            return run.layout().cover
        finally:
            run.close()

    def start(self, assembler: Assembler, target: Path | None, ahead: PdfHeadStart | None = None) -> PdfRun:
        """Lay out (and with a ``target``, write) the PDF: each part from the cache when it
        was done before, else in the workers. Returns at once; the run reports its layout
        first and its PDF later. ``ahead``: what was sent before the book was resolved."""
        return PdfRun(self, assembler, target, ahead)

    def _cache_for(self, assembler: Assembler) -> Cache:
        return self.cache or Cache(assembler.book.config.root / CACHE_DIR_NAME)

    def _styles(self, assembler: Assembler, again: bool = False, last: _LastBuild | None = None) -> Styles:
        return self._subsets(assembler, again, last).styles

    def _subsets(self, assembler: Assembler, again: bool = False, last: _LastBuild | None = None) -> _Subsets:
        """The stylesheets and settings every part shares, the faces cut to the characters of
        the whole print document: made once per assembler (the EPUB asks for the cover with the
        same document), unless ``again`` (the characters to subset changed).

        After an edit (``last``: the last build's record), the last build's subsets serve while
        they have every character: a part is laid out the same with any subset that has its
        characters (see report.fonts.subset_file). A character they lack has them cut again,
        to the document's characters and the language's standard set as well, so that the next
        new characters are there already. New subsets are new styles: the faces are cut, the
        workers read them, and the edited chapter is laid out and drawn whole (a layout made with
        other styles is not resumed). At 615 pages, an edit that brought a character new to the
        report took 1.07–1.20 s, against 0.62–0.69 s without one; now 0.57–0.67 s, but for the
        one that cuts the standard set in (2.0 s)."""
        known = _STYLES.get(assembler)
        if known is not None and not again:
            return known
        cache = self._cache_for(assembler)
        facts = document_facts(assembler, cache)  # of its parts, each alone: an entity or element never spans two
        extra = _extra_characters(cache)
        characters = print_characters("", assembler.print_stylesheets({})).union(*(f.characters for f in facts)) | extra
        code = frozenset().union(*(f.code for f in facts)) | extra
        if last is not None and _subsets_serve(last, characters, code, extra, cache):
            characters, code, objects = last.characters, last.code, last.objects
        else:
            if last is not None:
                standard = standard_characters(assembler.book.config.language)
                characters, code = characters | standard, code | standard
            objects = {
                face.file: subset_file(face, code if face.style == "mono" else characters, cache).name for face in FACES
            }
        styles = self._styles_with(assembler, objects, extra)
        _STYLES[assembler] = subsets = _Subsets(styles, characters, code, extra, objects)
        return subsets

    def _styles_with(self, assembler: Assembler, objects: dict[str, str], extra: frozenset[str]) -> Styles:
        """The styles with each face cut to its subset in ``objects``."""
        config = assembler.book.config
        cache = self._cache_for(assembler)
        font_urls = {face: (cache.directory / "objects" / name).as_uri() for face, name in objects.items()}
        base_url = config.root.as_uri() + "/"
        variant = None if config.pdf.variant == "none" else config.pdf.variant
        # A part laid out with one subset is laid out the same with any other that has its
        # characters (they keep the faces' glyph ids): the key names the faces instead, and the
        # characters found missing (see _retry): what was laid out and drawn without them
        # (with .notdef glyphs) is not that.
        by_face = assembler.print_stylesheets({face.file: face.file for face in FACES})
        return Styles(
            stylesheets=tuple(assembler.print_stylesheets(font_urls)),
            base_url=base_url,
            allowed_roots=(config.root, cache.directory / "objects"),
            fontconfig=fontconfig_file(cache.root, bundled_dir=False),
            variant=variant,
            key=digest(*by_face, base_url, variant or "", _faces(cache), "".join(sorted(extra))),
            fonts=tuple((face_name(face.family, face.weight), fonts_dir() / face.file) for face in FACES),
        )


@dataclass(frozen=True)
class _LastBuild:
    """What a head start reads of the last build's record (see PdfRun._remember_early)."""

    digests: dict[str, str]  # each chapter's (see _chapter_digest)
    everywhere: frozenset[str]  # every id of every part
    objects: dict[str, str]  # each face's subset, in the cache
    characters: frozenset[str]  # those the subsets were cut to
    code: frozenset[str]
    extra: frozenset[str]


@dataclass
class _EarlyDrawing:
    """A part drawn ahead of the run's asking (see PdfHeadStart._draw, PdfRun._draw_ahead)."""

    target: Path  # where the worker draws it
    asked: str  # the numbers it was asked to show (see _asked)
    drawn: Drawn | None = None  # what drawing it told, once it has come


@dataclass(frozen=True)
class _KeptDrawing:
    """A part's drawing kept in the cache's objects, its entry not yet written (see
    PdfRun._store_drawings)."""

    key: str  # the part's layout key
    drawn_in: str  # the numbers drawn in, if the drawing serves those only
    pdf: str  # the object's name
    numbers: str  # packed (see report.render.weasy.packed_numbers)
    deps: dict[str, str | None]


@dataclass(frozen=True)
class _CachedDrawing:
    """A part's drawing as the cache keeps it: where, and its page numbers for the join to set;
    or, ``drawn_in``, that the drawing of this layout has its numbers drawn in (and is kept by
    them too)."""

    pdf: Path | None = None
    numbers: str = NO_NUMBERS  # packed (see report.render.weasy.packed_numbers)
    drawn_in: bool = False


def _cached_layout(value: dict[str, Any] | None, cache: Cache) -> PartLayout | None:
    """The layout a ``pdf-layout`` entry tells of; None if there is none, or it is damaged."""
    if value is None:
        return None
    try:
        cover = cache.object_bytes(str(value["cover"])) if value["cover"] else b""
        if cover is None:
            return None
        return PartLayout(
            pages=int(value["pages"]),
            anchors=tuple((str(name), int(page)) for name, page in value["anchors"]),
            starts=tuple((int(page), str(name)) for page, name in value["starts"]),
            cover=cover,
            warnings=tuple(str(message) for message in value["warnings"]),
            fetched=tuple(Path(path) for path in value["fetched"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


# The layouts and drawings of the last print document's parts, by layout key, read from the
# cache by the build server between builds (see keep_parts): a build it forks reads none of them
# (two files a part: 40 ms of a 600-page edit).
_KEPT_LAYOUTS: dict[str, PartLayout] = {}
_KEPT_DRAWINGS: dict[str, _CachedDrawing] = {}


def keep_parts(cache: Cache, root: Path, profile: str) -> Generator[None, None, None]:
    """The layouts and drawings of the parts of the last print document of the report at
    ``root`` (in ``profile``) read from the cache into this process (those it kept already, taken
    as they are), a step a part."""
    value = cache.load("pdf-last-layout", _last_build_key(root, profile, "pdf-last-layout"))
    keys = value.get("parts") if value is not None else None
    layouts: dict[str, PartLayout] = {}
    drawings: dict[str, _CachedDrawing] = {}
    for key in keys if isinstance(keys, list) else ():
        key = str(key)
        if (layout := _KEPT_LAYOUTS.get(key) or _cached_layout(cache.load("pdf-layout", key), cache)) is not None:
            layouts[key] = layout
        if (drawing := _KEPT_DRAWINGS.get(key) or _cached_drawing(cache.load("pdf-part", key), cache)) is not None:
            drawings[key] = drawing
        yield
    _KEPT_LAYOUTS.clear()
    _KEPT_LAYOUTS.update(layouts)
    _KEPT_DRAWINGS.clear()
    _KEPT_DRAWINGS.update(drawings)


def _last_build_key(root: Path, profile: str, kind: str) -> str:
    """What the last build of the report at ``root`` (in ``profile``) left under ``kind``."""
    return digest(kind, str(root), profile)


def _cached_drawing(value: dict[str, Any] | None, cache: Cache) -> _CachedDrawing | None:
    """The drawing a ``pdf-part`` entry tells of; None if there is none, or it is damaged, or its
    file is gone."""
    if value is None:
        return None
    if value.get("drawn-in"):
        return _CachedDrawing(drawn_in=True)
    numbers, name = value.get("numbers"), value.get("pdf")
    if not isinstance(numbers, str) or not isinstance(name, str) or not numbers_packed_well(numbers):
        return None
    pdf = cache.object_path(name)
    return _CachedDrawing(pdf, numbers) if pdf is not None else None


@dataclass
class _Part:
    """One part of the print document as this run knows it."""

    name: str  # "cover", "contents" or the chapter's id
    # The report's folder: the workers keep a part's layout and drawing by name within its report
    # (see kept_as).
    report: str
    source: str  # its HTML, page numbers as empty spans
    named_digest: str  # see _Facts
    stubs: frozenset[str]  # ids it links to that other parts have
    boxes: dict[str, int]  # ids whose page numbers it prints → the digits their box holds (0: no box)
    numbers: dict[str, str]  # the stand-ins it is laid out with: zeros, as many as the number has digits
    # The last part to be laid out before it can be drawn: itself, or the furthest part it prints
    # a page of (for the contents, the last part).
    drawn_after: int
    layout: PartLayout | None = None
    key: str = ""  # its layout key
    start: int = 1  # its first page in the whole PDF
    blank_before: bool = False
    drawing: str = ""  # the layout key of the drawing asked for (the final one, or one gone stale)
    pdf: Path | None = None  # the part drawn, in the cache
    drawn_numbers: str = NO_NUMBERS  # its page numbers, for the join to set (packed)
    # The numbers (see _numbered) a drawing asked for was to show, and those the drawing shows
    # drawn in as text: "" when the join sets them (see report.render.weasy.Drawn).
    asked_numbers: str = ""
    drawn_in: str = ""
    target: Path | None = None  # where a worker draws it
    # Its page lists stand in for the last build's pages (all but a few of the ids they list had
    # one): laid out at once, not once the parts before it are (see PdfRun._lists_pages_unknown).
    lists_guessed: bool = False
    # Each id (or ids) whose page a box shows → the box's name in the HTML the workers get (see
    # for_workers).
    box_names: dict[str, str] = field(default_factory=dict)
    drawn_warnings: tuple[str, ...] = ()  # WeasyPrint's, when it drew the part in this run
    # Whether the worker that lays it out keeps its layout, to resume (see report.render.resume):
    # not in a report's first build, which lays out every part (the workers would hold six
    # layouts each for nothing, and every garbage collection there would walk them), but for
    # the index (see _make_parts).
    resumed: bool = True

    @classmethod
    def made(
        cls,
        name: str,
        report: Path,
        source: str,
        facts: _Facts,
        everywhere: frozenset[str],
        page_of: Callable[[str], str],
    ) -> _Part:
        """The part of HTML ``source`` (of ``facts``), of the report in the folder ``report``: its
        links to the ids of other parts (``everywhere``) stubbed, its page numbers standing in for
        those ``page_of`` gives."""
        boxes: dict[str, int] = {}
        for ref, digits in facts.boxes:
            boxes[ref] = min(boxes.get(ref, int(digits or 0)), int(digits or 0))
        stubs = (facts.linked - facts.ids) & everywhere
        part = cls(name, str(report), source, facts.named_digest, stubs=stubs, boxes=boxes, numbers={}, drawn_after=0)
        part.box_names = _box_names(boxes)
        part.numbers = {ref: part.stand_in(ref, page_text(ref, page_of)) for ref in boxes}
        return part

    @property
    def refs(self) -> frozenset[str]:
        return frozenset(self.boxes)

    @property
    def kept_as(self) -> str:
        """The name a worker keeps its last layout and drawing under, and a build sends it back
        to that worker by (see report.render.workers.Session): its own name within its report's
        folder. One pool of workers serves every report of its user: two reports' indexes, both
        named "index", took each other's place, and the index of one was sent to the worker that
        kept the other's, to wait there behind the edited chapter."""
        return f"{self.report}/{self.name}"

    def stand_in(self, ref: str, number: str) -> str:
        """Zeros, as many as the number has digits or its box holds; for a page list, the list
        with each digit a zero ("0, 0–0"): a list of that shape takes its place."""
        return _DIGIT.sub("0", number) if " " in ref else "0" * max(len(number), self.boxes[ref])

    def fits(self, ref: str, number: str) -> bool:
        """Whether the number takes the place its stand-in was laid out with."""
        return self.stand_in(ref, number) == self.numbers[ref]

    def job(self, cover: bool, key: str) -> PartJob:
        """What a worker lays it out from (``key``: its layout key, see _layout_key)."""
        filled = _PAGE_NUMBER.sub(self._box_laid_out, self.source)
        if self.stubs:
            # Stand-ins for the targets of links into other parts, out of the flow: WeasyPrint
            # drops a link whose target it cannot find; the join points it at the real one.
            anchors = "".join(f'<span id="{html.escape(name)}"></span>' for name in sorted(self.stubs))
            stand_ins = f'<div class="report-link-targets" style="position: absolute">{anchors}</div>'
            head, _, tail = filled.rpartition(_BODY_END)
            filled = f"{head}{stand_ins}{_BODY_END}{tail}"
        return PartJob(key, filled, cover, self.kept_as if self.resumed else "")

    def _box_laid_out(self, box: re.Match[str]) -> str:
        """A page number's box as the part is laid out: its stand-in for its text, and for the ids
        it shows the page of, its name among the part's boxes (see :meth:`for_workers`)."""
        return _box_named(box, self.box_names).replace("></", f">{self.numbers[box.group(2)]}</")

    def for_workers(self, numbers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """The numbers its boxes show (by the ids they show the page of), as the workers know the
        boxes: by their names. Named by their place, not their ids, the boxes leave the layout
        as it was when only their ids change (an index entry gains a mark on a page it lists),
        and the part is neither laid out nor drawn again: the join sets the numbers."""
        return tuple(sorted((self.box_names[ref], number) for ref, number in numbers.items()))


def page_text(ref: str, page_of: Callable[[str], str]) -> str:
    """The page of one id, or of several ids (space-separated) as a list: each page once, runs
    of pages as ranges, "3, 5–7"."""
    names = ref.split()
    if len(names) == 1:  # most are
        return str(int(page_of(names[0])))
    pages = sorted({int(page_of(name)) for name in names})
    runs = [[page for _, page in run] for _, run in itertools.groupby(enumerate(pages), lambda item: item[1] - item[0])]
    return ", ".join(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def join_order(parts: list[_Part]) -> list[int]:
    """The order the parts are drawn and joined in, whatever order they are drawn in (the same
    parts give the same bytes): the parts in order, but one that prints the page of a part after
    it comes after that part (the contents after all): it is drawn once that part is laid out,
    and the join goes on with the others meanwhile."""
    return sorted(range(len(parts)), key=lambda index: (parts[index].drawn_after, parts[index].drawn_after > index))


@dataclass
class _Joined:
    """The parts sent to the join so far, in the order sent, each with the key of its drawing."""

    sent: list[tuple[int, str]] = field(default_factory=list)

    def stale(self, sent_as: Callable[[int], str]) -> bool:
        """Whether a part sent is no longer as it was sent (see :meth:`next_parts`)."""
        return any(sent_as(index) != sent for index, sent in self.sent)

    def next_parts(
        self, parts: list[_Part], order: list[int], sent_as: Callable[[int], str], ahead: bool = False
    ) -> tuple[list[int], bool]:
        """The parts to send next: in ``order``, after those sent, up to the first not yet drawn
        (``ahead``: every one drawn); and whether the join is to begin anew, with them from the
        first: a part sent is no longer as it was sent (``sent_as``: its drawing and numbers; a
        part before it was laid out again and moved it)."""
        fresh = self.stale(sent_as)
        if fresh:
            self.sent = []
        sent = {index for index, _ in self.sent}
        waiting = [index for index in order if index not in sent]
        drawn = (index for index in waiting if parts[index].pdf is not None)
        chosen = list(drawn if ahead else itertools.takewhile(lambda index: parts[index].pdf is not None, waiting))
        self.sent += [(index, sent_as(index)) for index in chosen]
        return chosen, fresh


class _OfReport:
    """What a run, and a head start before it, read of the report's cache."""

    assembler: Assembler
    cache: Cache

    def _last_build_key(self, kind: str) -> str:
        return _last_build_key(self.assembler.book.config.root, self.assembler.profile, kind)

    def _cached_layout(self, key: str) -> PartLayout | None:
        kept = _KEPT_LAYOUTS.get(key)
        if kept is not None and self.cache.read:
            self.cache.kept("pdf-layout", key)
            return kept
        return _cached_layout(self.cache.load("pdf-layout", key), self.cache)

    def _drawing_target(self, key: str) -> Path:
        """Where a worker draws the part of layout key ``key`` (moved into the cache once drawn)."""
        target = self.cache.directory / "parts" / f"{key}.{os.getpid()}.pdf"
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _drawn_early(
        self, part: _Part, job: PartJob, numbers: Mapping[str, str], start: int
    ) -> tuple[DrawJob, _EarlyDrawing]:
        """A drawing of the part asked for before the run asks (see PdfRun._draw): the job for
        its worker, and the drawing as the run takes it up."""
        target = self._drawing_target(job.key)
        return DrawJob(job, part.for_workers(numbers), start, target), _EarlyDrawing(target, _asked(numbers, start))


class PdfHeadStart(_OfReport):
    """The chapters edited since the last build, sent to be laid out before the run that needs
    them has the whole print document (every part rendered, its characters gathered for the
    subsets: a third of a second at 600 pages, while the workers wait), or before the book is
    even resolved (see report.build): each made alone, as the last build would have made it,
    with that build's styles. The run takes over what was sent (see :class:`PdfRun`); should
    its own part differ (a link target, a stand-in or the styles changed elsewhere), its key
    differs: the layout is kept in the cache but not used."""

    def __init__(
        self, renderer: PdfRenderer, assembler: Assembler, draw: bool, session: Callable[[Styles], Session]
    ) -> None:
        """``assembler``: of the book the run will have, or of the last one; ``draw``: the parts
        laid out are drawn too (for a PDF); ``session``: begun with the styles given, if none is."""
        self.renderer = renderer
        self.assembler = assembler
        self.cache = renderer._cache_for(assembler)
        self.draw = draw
        self.begin = session
        self.session: Session | None = None
        self.record = self.cache.load("pdf-early", self._last_build_key("pdf-early"))
        self.layouts: dict[str, PartLayout | None] = {}  # layout key → as the cache had it or as it came, or None: sent
        self.drawings: dict[str, _EarlyDrawing] = {}  # layout key → its drawing, see _draw
        self.taken = False  # by a run, which answers for what was sent

    @functools.cached_property
    def known_numbers(self) -> dict[str, str]:
        """The last build's page numbers and first folios: the stand-ins most likely right. Read
        once for the head start and the run that takes it over (an edit's build read them three
        times: for the head start, and twice for the run)."""
        value = self.cache.load("pdf-numbers", self._last_build_key("pdf-numbers"))
        numbers = value.get("numbers") if value is not None else None
        return {str(k): str(v) for k, v in numbers.items()} if isinstance(numbers, dict) else {}

    @functools.cached_property
    def last(self) -> _LastBuild | None:
        """The last build's record, read once for the head start and the run that takes it over
        (a 600-page report's parts have some 5,500 ids)."""
        value = self.record
        if value is None:
            return None
        try:
            if value["faces"] != _faces(self.cache):
                return None  # its subsets were cut from other faces: the bundled ones changed
            return _LastBuild(
                digests={str(name): str(known) for name, known in value["chapters"].items()},
                everywhere=frozenset(str(name) for name in value["ids"]),
                objects={str(face): str(name) for face, name in value["objects"].items()},
                characters=frozenset(str(value["characters"])),
                code=frozenset(str(value["code"])),
                extra=frozenset(str(value["extra"])),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def send(self, chapters: Iterable[Chapter]) -> None:
        """Those of ``chapters`` that changed since the last build, laid out (from the cache, or
        sent to the workers) unless sent already."""
        last = self.last
        if last is None:
            return
        changed = [c for c in chapters if c.id in last.digests and last.digests[c.id] != _chapter_digest(c)]
        if not changed or len(changed) > LAYOUTS_AHEAD:  # more: the run's own order is as good
            return
        styles = self.renderer._styles_with(self.assembler, last.objects, last.extra)
        known = self.known_numbers
        styled = print_characters("", self.assembler.print_stylesheets({}))  # the stylesheets' own
        root = self.assembler.book.config.root
        for chapter in changed:
            source = self.assembler.print_part(chapter)
            facts = _facts(source, self.cache)
            if not facts.characters | styled <= last.characters or not facts.code <= last.code:
                continue  # the last subsets lack a character: laid out with them, it would differ
            try:
                part = _Part.made(chapter.id, root, source, facts, last.everywhere, known.__getitem__)
            except KeyError:  # a page number the last build did not know
                continue
            if any(" " in ref for ref in part.refs):
                continue  # it lists pages: see PdfRun._lists_pages_unknown
            job = part.job(cover=False, key=_layout_key(styles, part, cover=False))
            if job.key in self.layouts:
                continue
            self.layouts[job.key] = self._cached_layout(job.key)
            if self.layouts[job.key] is None:
                self.session = self.session or self.begin(styles)
                self.session.lay_out(job)
                self._draw(chapter, part, job, known)

    def _draw(self, chapter: Chapter, part: _Part, job: PartJob, known: dict[str, str]) -> None:
        """The chapter laid out early is drawn at once by the same worker, with the numbers and
        the first page it had in the last build: the run takes the drawing if its part has that
        key (see PdfRun._draw). A drawing's numbers are set by the join; should they have been
        drawn in, and be wrong, PdfRun._redraw_moved draws it again."""
        session = self.session
        if not self.draw or session is None or job.key not in session.holder or chapter.id not in known:
            return
        numbers = {ref: page_text(ref, known.__getitem__) for ref in part.refs}
        drawing, self.drawings[job.key] = self._drawn_early(part, job, numbers, int(known[chapter.id]))
        session.draw(drawing)

    def abandon(self) -> None:
        """The run will not come (the book has an error): the workers' answers awaited, so that
        they are left as they were, and the drawings removed. (Nothing, once a run took it.)"""
        if self.taken:
            return
        if self.session is not None:
            self.session.wait_until(lambda: False)
            self.session.close()
        for drawing in self.drawings.values():
            drawing.target.unlink(missing_ok=True)


class PdfRun(_OfReport):
    """One PDF (or layout only) in progress."""

    def __init__(
        self, renderer: PdfRenderer, assembler: Assembler, target: Path | None, ahead: PdfHeadStart | None = None
    ) -> None:
        """``ahead``: what was sent before the book was resolved (see PdfHeadStart)."""
        self.renderer = renderer
        self.assembler = assembler
        self.target = target
        self.cache = renderer._cache_for(assembler)
        self.rendered = False  # some part was laid out or drawn afresh (not taken from the cache)
        self.fetched: tuple[Path, ...] = ()
        self._workers = renderer.workers
        self._own_workers: PdfWorkers | None = None
        self._session: Session | None = None
        self._layout: PdfLayout | None = None
        self._chapter_digests = {chapter.id: _chapter_digest(chapter) for chapter in assembler.book.chapters}
        self._cached_drawings: dict[str, _CachedDrawing | None] = {}  # layout key → as the cache has it
        self._ahead = ahead or PdfHeadStart(renderer, assembler, target is not None, self._session_now)
        self._ahead.taken = True
        if self._ahead.session is not None:  # its answers are this run's
            self._session = self._ahead.session
            self._session.on_layout, self._session.on_drawn = self._laid_out, self._drawn
        self._ahead.begin, self._ahead.assembler = self._session_now, assembler
        self._ahead.send(assembler.book.chapters)  # those it did not guess as the book has them
        self._early, self._early_drawings = self._ahead.layouts, self._ahead.drawings
        self._styles = renderer._styles(assembler, last=self._ahead.last)
        if self._session is not None and self._session.styles != self._styles:
            self._session.use(self._styles)  # the workers drop what they laid out with the last build's
        self._everywhere: frozenset[str] = frozenset()  # every id of every part
        self._parts = self._make_parts()
        later = (part for index, part in enumerate(self._parts) if part.drawn_after > index)
        self._drawn_last = max(later, key=lambda part: len(part.source), default=None)  # the contents
        self._joining: Future[set[int]] | None = None  # drawing and joining, behind the EPUB
        self._anchor_pages: dict[str, int] = {}  # id → its page in the whole PDF (see _place)
        self._owners: dict[str, int] = {}  # id → the part it is in
        self._numbered_now: dict[tuple[str, str], str] = {}  # since the last _place (see _numbered)
        self._page_texts: dict[str, str] = {}  # ref → its page text, since the last _place (see _numbers_for)
        self._numbers_now: dict[tuple[str, str], Mapping[str, str]] = {}  # since the last _place (see _numbers_for)
        self._placed_starts: list[int] = []  # each part's first page, as _place last set it
        self._settled = -1  # how many parts from the start were laid out when last drawn from
        self._joined = _Joined()
        self._joining_ahead: bool | None = None  # see _join_ahead
        self._unstored: list[_KeptDrawing] = []  # see _store_drawings
        if self._session is not None:
            # The head start's layouts made while the book was prepared: the parts after them (the
            # index) are then laid out once, with the pages they show, not first with a guess.
            self._session.receive_ready()
        self._lay_out_missing()
        if target is not None:  # the parts the cache has up to the first to lay out: joined meanwhile
            self._place()
            self._draw_settled()

    # --- the run's three steps: lay out, fill in, draw ----------------------------------------

    def layout(self) -> PdfLayout:
        """Every part laid out and placed; the parts to draw are sent to the workers."""
        if self._layout is not None:
            return self._layout
        if self.target is not None:
            self._find_cached_drawings()
        for _ in range(ROUNDS):
            self._receive_layouts()
            warned = (message for part in self._parts if part.layout for message in part.layout.warnings)
            if self._retry(notdef_codes(warned)):  # the cover, drawn as the EPUB's image
                continue
            self._place()
            wrong = [part for part in self._parts if self._wrong_digits(part)]
            if not wrong:
                break
            for part in wrong:
                self._stand_in_right(part)
            self._lay_out_missing()
        self._receive_layouts()
        self._place()
        layouts = [part.layout for part in self._parts if part.layout is not None]
        self.fetched = self._own_files(tuple(path for layout in layouts for path in layout.fetched))
        self._layout = PdfLayout(
            self._parts[-1].start + self._pages(self._parts[-1]) - 1, self._starts(), self._cover()
        )
        if self.target is not None:
            self._draw_missing()
            self._joining = in_background("report-pdf-join", self._draw_and_join, self.target)
        return self._layout

    def guess(self) -> PdfLayout | None:
        """While parts are still being laid out: the layout the last build of the report found
        (most edits leave it as it was), for the EPUB to be written from meanwhile. None when
        every part is laid out already, or there was no last build."""
        if self._layout is not None or all(part.layout is not None for part in self._parts):
            return None
        value = self.cache.load("pdf-last-layout", self._last_build_key("pdf-last-layout"))
        try:
            cover = self.cache.object_bytes(str(value["cover"])) if value is not None else None
            if value is None or cover is None:
                return None
            starts = tuple(PageStart(str(label), str(anchor)) for label, anchor in value["starts"])
            return PdfLayout(int(value["pages"]), starts, cover)
        except (KeyError, TypeError, ValueError):
            return None

    def _remember(self) -> None:
        """What the next build starts from, written while the workers join: not between the
        layout and the EPUB, which the build writes first (a page added in the middle of a
        615-page report changes 5,500 page numbers: 15–25 ms to write)."""
        self._remember_numbers()
        self._remember_layout()
        self._remember_early()

    def _remember_layout(self) -> None:
        assert self._layout is not None
        cover = self.cache.put_object(self._layout.cover, ".png")
        starts = [[start.label, start.anchor] for start in self._layout.page_starts]
        parts = [part.key for part in self._parts]  # for keep_parts
        value = {"pages": self._layout.pages, "starts": starts, "cover": cover, "parts": parts}
        self.cache.store("pdf-last-layout", self._last_build_key("pdf-last-layout"), value, objects=[cover])

    def finish(self) -> Output:
        """Wait for the parts; join them into the target (if any) and return it as an :class:`Output`."""
        try:
            layout = self.layout()
            self._remember()
            while self._joining is not None and self.target is not None:
                missing, self._joining = self._joining.result(), None
                if self._retry(missing):
                    self._layout = None
                    layout = self.layout()
                    self._remember()
                elif missing:
                    self._join(self.target)  # the warning stays
        finally:
            self.close()
        size = self.target.stat().st_size if self.target is not None else 0
        path = self.target or Path()
        return Output("pdf", path, size, layout.pages, self._all_warnings(), layout.page_starts)

    def close(self) -> None:
        """Stop waiting: unfinished work is abandoned (the workers stopped)."""
        if self._session is not None:
            self._session.close()  # the workers stopped, if they had work left
        for part in self._parts:  # drawings asked for and never received: part-written files
            if part.pdf is None and part.target is not None:
                part.target.unlink(missing_ok=True)
        for early in self._early_drawings.values():  # drawn early for no part of the run
            early.target.unlink(missing_ok=True)
        if self._joining is not None:
            self._joining.exception()  # the thread has stopped (the workers it waited for are gone)
            self._joining = None
        self._store_drawings()
        self._session = None
        if self._own_workers is not None:
            self._own_workers.close()
            self._own_workers = None

    # --- parts ---------------------------------------------------------------------------------

    def _make_parts(self) -> list[_Part]:
        sources = self.assembler.print_parts
        facts = document_facts(self.assembler, self.cache)
        ids = [own.ids for own in facts]
        owners = {name: index for index, own in reversed(list(enumerate(ids))) for name in own}
        # Each part's first page, for numbers the last build did not know: estimated from the
        # length of the text before it (a wrong estimate costs the part a second layout), once
        # a number is not known (it reads the whole text).
        first_pages: list[int] = []
        capacity = _characters_per_page(self.assembler.book.config.pdf)

        def first_page(name: str) -> str:
            if not first_pages:
                estimates = [max(1, round(_text_length(source) / capacity)) for _, source in sources]
                first_pages.extend(itertools.accumulate([1, *estimates]))
            return str(first_pages[owners.get(name, 0)])

        def page_before(name: str) -> str | None:
            index = owners.get(name)
            if not known or index is None:
                return None
            return _page_after_known(name, sources[index][1], facts[index].order, known, capacity)

        self._everywhere = everywhere = frozenset().union(*ids)
        known = self._ahead.known_numbers
        parts: list[_Part] = []
        for (name, source), own in zip(sources, facts, strict=True):
            part = _Part.made(
                name,
                self.assembler.book.config.root,
                source,
                own,
                everywhere,
                lambda name: known.get(name) or page_before(name) or first_page(name),
            )
            part.drawn_after = max([len(parts), *(owners.get(name, -1) for ref in part.refs for name in ref.split())])
            listed = [name for ref in part.refs if " " in ref for name in ref.split()]
            new = sum(name not in known for name in listed)
            part.lists_guessed = bool(listed) and new * _NEW_IN_LISTS <= len(listed)
            # A first build's layouts are not kept, but for a part that lists pages (the index):
            # the first page of text added after it changes its lists, and the index laid out
            # anew then took 0.25–0.4 s of that edit's 0.7–0.8 (615 pages), against 0.05 resumed.
            part.resumed = bool(known) or self._lists_pages(len(parts), part)
            parts.append(part)
        return parts

    def _remember_early(self) -> None:
        """What a :class:`PdfHeadStart` needs of this build (written when it changed)."""
        subsets = self.renderer._subsets(self.assembler)
        value = {
            "chapters": self._chapter_digests,
            "ids": sorted(self._everywhere),
            "objects": subsets.objects,
            "characters": "".join(sorted(subsets.characters)),
            "code": "".join(sorted(subsets.code)),
            "extra": "".join(sorted(subsets.extra)),
            "faces": _faces(self.cache),
        }
        if value != self._ahead.record:
            objects = list(subsets.objects.values())
            self.cache.store("pdf-early", self._last_build_key("pdf-early"), value, objects=objects)

    def _lay_out_missing(self) -> None:
        """Each part not laid out with its current stand-ins: from the cache, else sent to a worker.
        The parts that list pages (the index) come last: should every part before one be laid
        out by then (from the cache, or ahead: see __init__), it is laid out with the pages it
        lists, not first with a guess at them."""
        listing = [index for index, part in enumerate(self._parts) if self._lists_pages(index, part)]
        for index, part in enumerate(self._parts):
            if index not in listing:
                self._lay_out(index, part)
        if listing:
            self._place()
        laid = self._laid_from_start()
        for index in listing:
            part = self._parts[index]
            if self._numbers_known(part, laid) and self._wrong_digits(part):
                self._stand_in_right(part)
            self._lay_out(index, part)

    def _lay_out(self, index: int, part: _Part, first: bool = False) -> None:
        key = _layout_key(self._styles, part, cover=index == 0)
        if key == part.key and part.layout is not None:
            return
        early = key in self._early  # sent ahead, or found in the cache then
        part.key, part.layout = key, self._early[key] if early else self._cached_layout(key)
        if part.layout is None and self._lists_pages_unknown(index, part):
            part.key = ""  # laid out once they are known (see _lay_out_wrong_again)
        elif part.layout is None:
            if not early:
                job = replace(part.job(cover=index == 0, key=key), lists_pages=self._lists_pages(index, part))
                self._session_now().lay_out(job, first)
                if self.target is not None:
                    self._draw_ahead(index, part, job)
            self.rendered = True

    def _lists_pages_unknown(self, index: int, part: _Part) -> bool:
        """Whether the part lists pages (the index: "3, 5–7") of parts before it only, one of
        which is being laid out. The shapes of its lists (how many digits each number has,
        which pages run into ranges) are then not guessed: pages that moved change them often
        enough, and the part — laid out at length, as an index of a long book is — would be
        laid out twice. Unless the last build knew the pages of nearly all the ids they list
        (see _Part.lists_guessed): after an edit, its shapes seldom change, and a worker would
        otherwise wait for the edited chapter with nothing to do: guessed, they are laid out at
        once, if the worker it goes to is free (else it would wait there all the same, and a
        wrong guess, found once the chapter is laid out, would cost it a layout and a drawing)."""
        if not self._lists_pages(index, part) or not any(other.layout is None for other in self._parts[:index]):
            return False
        return not part.lists_guessed or not self._session_now().free_for(part.kept_as, len(part.source), True)

    def _lists_pages(self, index: int, part: _Part) -> bool:
        """Whether the part lists pages ("3, 5–7"), of parts before it only."""
        return part.drawn_after == index and any(" " in ref for ref in part.refs)

    def _lay_out_wrong_again(self) -> None:
        """Each part laid out with a stand-in of the wrong length, known to be wrong (every part
        up to the page it refers to is laid out), is laid out again at once, first in line:
        while the other parts are still being laid out, not at the end, and without waiting for
        the layout it has under way. So is, once its pages are known, a part that waited for them
        (see :meth:`_lists_pages_unknown`)."""
        laid = self._laid_from_start()
        for index, part in enumerate(self._parts):
            waiting = not part.key  # for the pages it lists (see _lists_pages_unknown)
            if self._numbers_known(part, laid) and (waiting or self._wrong_digits(part)):
                self._stand_in_right(part)
                self._lay_out(index, part, first=True)

    def _laid_from_start(self) -> int:
        """How many parts from the first one are laid out."""
        return next((i for i, part in enumerate(self._parts) if part.layout is None), len(self._parts))

    def _numbers_known(self, part: _Part, laid: int) -> bool:
        """Whether the page of every id the part refers to is known (after :meth:`_place`)."""
        return all(self._owners.get(name, laid) < laid for ref in part.refs for name in ref.split())

    def _stand_in_right(self, part: _Part) -> None:
        part.numbers = {ref: part.stand_in(ref, number) for ref, number in self._numbers_for(part).items()}

    def _receive_layouts(self) -> None:
        if self._session is not None:
            self._session.wait_for_layouts()

    def _laid_out(self, key: str, layout: PartLayout) -> None:
        """A worker's layout of a part, as it arrives: the parts it settles are drawn at once."""
        owners = [(index, part) for index, part in enumerate(self._parts) if part.key == key]
        for _, part in owners:
            part.layout = layout
        self._store_layout(key, layout)
        if not owners and key in self._early:  # sent ahead, come before a part took it up
            self._early[key] = layout
            self.rendered = True
            return
        self._early.pop(key, None)
        self._place()
        self._lay_out_wrong_again()
        if self.target is not None:
            self._draw_settled()
            for index, part in owners:
                self._draw_ahead(index, part)

    def _draw_ahead(self, index: int, part: _Part, sent: PartJob | None = None) -> None:
        """A part that lists pages (the index), laid out before the pages it lists were known
        (see _lists_pages_unknown), drawn at once by the worker that laid it out, if that one has
        no layout or drawing to do first: it would wait for the edited chapter's layout, then
        draw while the join waited. Or, the job ``sent`` just now to be laid out, drawn by its
        worker right behind it: the worker then waits for no round trip through this process
        (22 ms on a timeline of a page added in the middle of the 615-page bench report, when
        the index was laid out by the worker that joins, whose joins and write end the build).
        The drawing is the run's should the pages it lists keep the stand-ins' shapes (most
        edits: see _draw), as the head start's is; else the part is laid out again, behind it
        (a guess found wrong then costs that drawing too: 0.05 s, in about one of seven such
        edits of the bench). The numbers are the join's to set (the drawing shows stand-ins)."""
        session = self._session
        if (
            session is None
            or part.drawing
            or part.key in self._early_drawings
            or not self._lists_pages(index, part)
            or self._cached_drawing(part.key) is not None
        ):
            return
        job = sent or part.job(index == 0, part.key)
        drawing, early = self._drawn_early(part, job, self._numbers_for(part), part.start)
        if session.draw_if_free(drawing, behind=sent is not None):
            self._early_drawings[part.key] = early

    def _draw_settled(self) -> None:
        """Draw, while the other parts are still being laid out, each part whose page numbers
        are known: every part before it and before each page it refers to is laid out, and its
        stand-ins have the right number of digits. (Should a part before it be laid out again
        and change length, the part is drawn again at the end.)"""
        laid = self._laid_from_start()
        if laid == self._settled:
            return  # no part more is laid out from the start
        self._settled = laid
        for index in join_order(self._parts[:laid]):
            part = self._parts[index]
            if not part.drawing and self._numbers_known(part, laid) and not self._wrong_digits(part):
                self._draw(index, part)
        if self._join_ahead():
            for index, part in enumerate(self._parts):
                cached = self._cached_drawing(part.key) if part.layout is not None and not part.drawing else None
                if cached is not None and not cached.drawn_in:  # its page numbers are the join's to set
                    self._draw(index, part)  # from the cache: no worker is asked
        self._join_drawn()

    def _join_ahead(self) -> bool:
        """Whether the join is sent every part drawn, not only those up to the first still to be
        drawn: when no worker keeps this book's join from an earlier build (the kept processes had
        gone), so that the join of the parts the cache has, begun from nothing, goes on while
        the edited chapters are laid out and drawn (before, the parts after them waited for
        them). The parts whose page numbers then move are sent again, and keep what was joined of
        them (see report.render.join.Joiner)."""
        if self._joining_ahead is None:
            workers = self._session_now().workers
            self._joining_ahead = self._styles.key not in workers.joins_kept
        return self._joining_ahead

    def _place(self) -> None:
        """Each part's first page in the whole PDF (with the print profile, chapters start on
        a right-hand, odd, page, after a blank page if need be), and the page and part each id
        is on (a part not yet laid out counts no pages). The page numbers worked out since the
        last placing are kept where the pages are the same (a layout as long as its stand-in's)."""
        page = 1
        anchor_pages: dict[str, int] = {}
        owners: dict[str, int] = {}
        for index, part in enumerate(self._parts):
            part.blank_before = self.assembler.profile == "print" and index > 0 and page % 2 == 0
            page += part.blank_before
            part.start = page
            page += self._pages(part)
            for name, at in part.layout.anchors if part.layout is not None else ():
                if name not in part.stubs and name not in owners:
                    anchor_pages[name] = part.start + at - 1
                    owners[name] = index
        starts = [part.start for part in self._parts]
        if anchor_pages != self._anchor_pages:
            self._page_texts, self._numbers_now, self._numbered_now = {}, {}, {}
        elif starts != self._placed_starts:
            self._numbered_now = {}  # (its folios)
        self._anchor_pages, self._owners, self._placed_starts = anchor_pages, owners, starts

    def _pages(self, part: _Part) -> int:
        return part.layout.pages if part.layout is not None else 0

    def _numbers_for(self, part: _Part) -> Mapping[str, str]:
        """The page numbers the part shows where they are known, else its stand-ins' (worked
        out once per placing: every arriving layout asks it of every part laid out, and the
        join of every part sent; the index's are thousands)."""
        known = (part.name, part.key)
        numbers = self._numbers_now.get(known)
        if numbers is None:
            pages, texts = self._anchor_pages, self._page_texts
            for ref in part.refs:
                if ref not in texts and all(name in pages for name in ref.split()):
                    texts[ref] = page_text(ref, lambda name: str(pages[name]))
            numbers = self._numbers_now[known] = {ref: texts.get(ref) or part.numbers[ref] for ref in part.refs}
        return numbers

    def _wrong_digits(self, part: _Part) -> bool:
        return not all(part.fits(ref, number) for ref, number in self._numbers_for(part).items())

    def _starts(self) -> tuple[PageStart, ...]:
        return tuple(
            PageStart(str(part.start + page - 1), name)
            for part in self._parts
            if part.layout is not None
            for page, name in part.layout.starts
            if name not in part.stubs
        )

    def _cover(self) -> bytes:
        first = self._parts[0]
        return first.layout.cover if first.layout is not None else b""

    def _draw_missing(self) -> None:
        """Every part drawn with its final page numbers: from the cache, drawn already, or now."""
        for index in join_order(self._parts):
            self._draw(index, self._parts[index])

    def _draw(self, index: int, part: _Part) -> None:
        """The part's drawing: from the cache, or asked of a worker (once per layout). A drawing
        with its numbers drawn in serves only where they are the same (see :meth:`_redraw_moved`)."""
        if part.drawing == part.key:
            return
        part.drawing, part.drawn_warnings = part.key, ()
        part.pdf, part.drawn_numbers, part.drawn_in = None, NO_NUMBERS, ""
        cached = self._cached_drawing(part.key)
        if cached is not None and cached.drawn_in:  # kept by its numbers too
            part.drawn_in = self._numbered(part)
            cached = _cached_drawing(self.cache.load("pdf-part", digest(part.key, part.drawn_in)), self.cache)
        if cached is not None and not cached.drawn_in:
            part.drawn_numbers, part.pdf = cached.numbers, cached.pdf
            return
        self.rendered = True
        early = self._early_drawings.pop(part.key, None)
        if early is not None:  # drawn early: the drawing is this part's (or will be, once it comes)
            part.target, part.asked_numbers = early.target, early.asked
            if early.drawn is not None:
                self._keep_drawing(part, early.drawn)
            return
        part.target = self._drawing_target(part.key)
        part.asked_numbers = self._numbered(part)
        numbers = part.for_workers(self._numbers_for(part))
        self._session_now().draw(DrawJob(part.job(index == 0, part.key), numbers, part.start, part.target))

    def _find_cached_drawings(self) -> None:
        """While the workers lay out: the drawings the cache has of the parts laid out already.
        After an edit, the parts after the edited chapter are drawn from the cache as soon as it
        is laid out; looked up only then, they kept the join waiting (80 ms at 590 pages)."""
        for part in self._parts:
            if part.layout is not None and not part.drawing:
                self._cached_drawing(part.key)

    def _cached_drawing(self, key: str) -> _CachedDrawing | None:
        """The drawing of layout key ``key`` the cache has (looked up once a run)."""
        if key not in self._cached_drawings:
            kept = _KEPT_DRAWINGS.get(key)
            if kept is not None and self.cache.read and (kept.pdf is None or self.cache.kept_object(kept.pdf)):
                self.cache.kept("pdf-part", key)
                self._cached_drawings[key] = kept
            else:
                self._cached_drawings[key] = _cached_drawing(self.cache.load("pdf-part", key), self.cache)
        return self._cached_drawings[key]

    def _numbered(self, part: _Part) -> str:
        """The page numbers the part shows, as they are now known: its ids' and its folios'
        (worked out once per placing: every join message asks it of every part sent)."""
        known = (part.name, part.key)  # its layout key names its stand-ins
        if known not in self._numbered_now:
            self._numbered_now[known] = _asked(self._numbers_for(part), part.start)
        return self._numbered_now[known]

    def _redraw_moved(self) -> None:
        """Each part drawn with its numbers drawn in, which have changed since (it was drawn
        early, and a part before it grew), is drawn again."""
        for index, part in enumerate(self._parts):
            if part.pdf is not None and part.drawn_in and part.drawn_in != self._numbered(part):
                part.drawing = ""
                self._draw(index, part)

    def _drawn(self, target: Path, drawn: Drawn) -> None:
        """A worker's drawing of a part, as it arrives: kept, and sent to the join when its turn
        comes. A drawing made early for a part the run has not yet asked for waits for it."""
        owner = next((part for part in self._parts if part.pdf is None and part.target == target), None)
        if owner is not None:
            self._keep_drawing(owner, drawn)
        elif (early := next((e for e in self._early_drawings.values() if e.target == target), None)) is not None:
            early.drawn = drawn
            return
        else:  # a drawing gone stale
            target.unlink(missing_ok=True)
        self._join_drawn()

    def _keep_drawing(self, owner: _Part, drawn: Drawn) -> None:
        """The part's drawing moved into the cache (its target is removed); its entry is written
        once the join has been sent it (see :meth:`_store_drawings`)."""
        assert owner.target is not None
        name = self.cache.put_object(owner.target.read_bytes(), ".pdf")
        owner.target.unlink(missing_ok=True)
        owner.pdf, owner.drawn_warnings = self.cache.object_path(name), drawn.warnings
        owner.drawn_numbers = drawn.numbers if drawn.numbers is not None else NO_NUMBERS
        owner.drawn_in = owner.asked_numbers if drawn.numbers is None else ""
        self._cached_drawings.pop(owner.key, None)  # looked up before it was drawn
        self._unstored.append(_KeptDrawing(owner.key, owner.drawn_in, name, owner.drawn_numbers, self._deps(owner)))

    def _store_drawings(self) -> None:
        """Writes the cache entries of the drawings kept since it last did: after the join was
        sent them, not before (written out, the entries of a page added in the middle's chapter
        and of the index took 20 ms the worker joining waited for, when their numbers were
        made plain for JSON one by one: see report.render.weasy.packed_numbers)."""
        unstored, self._unstored = self._unstored, []
        for kept in unstored:
            key = kept.key
            if kept.drawn_in:  # this drawing serves these numbers only
                self.cache.store("pdf-part", key, {"drawn-in": True})
                key = digest(key, kept.drawn_in)
            value = {"pdf": kept.pdf, "numbers": kept.numbers}
            self.cache.store("pdf-part", key, value, deps=kept.deps, objects=[kept.pdf])

    def _draw_and_join(self, target: Path) -> set[int]:
        """In a thread, while the main one writes the EPUB: wait for the parts still being drawn
        (each is joined as it comes), then have the join written. Returns, without joining, the
        characters drawn as .notdef that a bundled face has (then the PDF is laid out again
        with them)."""
        self._join_drawn()
        if self._session is not None:
            self._session.wait_until(lambda: all(part.pdf is not None for part in self._parts))
        missing = bundled(notdef_codes(self._all_warnings()))
        if not missing:
            self._join(target)
        return missing

    def _join_drawn(self) -> None:
        """While parts are still laid out and drawn: the join is sent those drawn so far, unless
        a character is missing (every part is then laid out again, see :meth:`_retry`)."""
        if self.target is not None and not bundled(notdef_codes(self._all_warnings())):
            self._join(None)
        self._store_drawings()

    def _join(self, target: Path | None) -> None:
        """Sends to the join the parts it has not yet been sent, in :func:`join_order` up to the
        first not yet drawn, or every one drawn (see :meth:`_join_ahead`; a worker puts each in
        its place, whatever the order); with the target, the join is then written there. Should
        a part it has been sent have been drawn again since (a part before it was laid out again,
        and moved it), it begins anew."""
        self._redraw_moved()
        parts = self._parts

        def sent_as(index: int) -> str:
            return digest(parts[index].key, self._numbered(parts[index]))

        # Every part drawn is sent once every part is laid out (their pages known): a join kept
        # from the last build takes the unchanged parts after an edited chapter while it is drawn.
        ahead = self._join_ahead() or self._laid_from_start() == len(parts)
        if ahead and self._layout is None and self._joined.stale(sent_as):
            # Parts sent ahead moved: they are sent again once every part is laid out, not now,
            # behind the join begun (a message now would wait for it, and the layouts to send).
            return
        indices, fresh = self._joined.next_parts(parts, join_order(parts), sent_as, ahead=ahead)
        assert target is None or len(self._joined.sent) == len(self._parts), "the PDF joined without a part"
        joined = [
            JoinedPart(
                index,
                part.pdf,
                part.stubs,
                part.blank_before,
                part.drawn_numbers,
                part.for_workers(self._numbers_for(part)),
                part.start,
            )
            for index, part in ((index, parts[index]) for index in indices)
            if part.pdf is not None
        ]
        if joined or fresh or target is not None:
            marked_blanks = self.assembler.profile == "print"
            job = JoinJob(tuple(joined), self._styles.fonts, target, marked_blanks, fresh)
            last = self._drawn_last.key if self._drawn_last is not None else ""
            self._session_now().join(job, drawn_last=last)

    def _all_warnings(self) -> tuple[str, ...]:
        """WeasyPrint's warnings: when it laid the parts out, then when it drew them."""
        laid = (message for part in self._parts if part.layout for message in part.layout.warnings)
        drawn = (message for part in self._parts for message in part.drawn_warnings)
        return tuple(dict.fromkeys(itertools.chain(laid, drawn)))

    # --- the cache -----------------------------------------------------------------------------

    def _store_layout(self, key: str, layout: PartLayout) -> None:
        fetched = self._own_files(layout.fetched)
        objects = [self.cache.put_object(layout.cover, ".png")] if layout.cover else []
        value = {
            "pages": layout.pages,
            "anchors": [list(anchor) for anchor in layout.anchors],
            "starts": [list(start) for start in layout.starts],
            "cover": objects[0] if objects else "",
            "warnings": list(layout.warnings),
            "fetched": [str(path) for path in fetched],
        }
        deps = {f"file:{path}": self.cache.file_digest(path) for path in fetched}
        self.cache.store("pdf-layout", key, value, deps=deps, objects=objects)

    def _own_files(self, fetched: tuple[Path, ...]) -> tuple[Path, ...]:
        """The files WeasyPrint read but the font subsets (the cache checks those itself)."""
        own = self.cache.directory / "objects"
        return tuple(dict.fromkeys(path for path in fetched if not path.is_relative_to(own)))

    def _deps(self, part: _Part) -> dict[str, str | None]:
        """A drawn part depends on the files its layout read (images above all)."""
        fetched = self._own_files(part.layout.fetched) if part.layout is not None else ()
        return {f"file:{path}": self.cache.file_digest(path) for path in fetched}

    def _remember_numbers(self) -> None:
        """The page numbers for the next build (see PdfHeadStart.known_numbers), written when they
        changed: an edit that moves no page leaves a 600-page report's 5,500 as they were."""
        numbers = {name: str(page) for name, page in self._anchor_pages.items()}
        if numbers != self._ahead.known_numbers:
            self.cache.store("pdf-numbers", self._last_build_key("pdf-numbers"), {"numbers": numbers})

    def _retry(self, notdef: set[int]) -> bool:
        """A character was drawn as .notdef that a bundled face has (generated by CSS in a way
        :func:`print_characters` did not foresee): add it to the subsets and lay out again.
        The additions are kept for the report, so its next builds ask for them from the start."""
        missing = bundled(notdef)
        if not missing:
            return False
        before = _extra_characters(self.cache)
        added = before | {chr(code) for code in missing}
        if added == before:
            return False  # already tried with these: the warning stays
        self.cache.store("pdf-extra", _EXTRA_KEY, {"characters": "".join(sorted(added))})
        self._styles = self.renderer._styles(self.assembler, again=True, last=self._ahead.last)
        if self._session is not None:
            self._session.use(self._styles)
        for part in self._parts:
            part.key, part.layout, part.pdf, part.drawing, part.drawn_warnings = "", None, None, "", ()
        self._settled = -1
        self._joined = _Joined()  # the workers drop the join begun when given the new styles
        self._lay_out_missing()
        return True

    def _session_now(self, styles: Styles | None = None) -> Session:
        """The run's session with the workers; begun with ``styles`` (else the run's) if none is."""
        if self._session is None:
            styles = styles or self._styles
            workers = self._workers
            if workers is None or not workers.alive:
                workers = self._own_workers = PdfWorkers(styles.fontconfig)
            self._session = Session(workers, styles, self._laid_out, self._drawn)
        return self._session


def _faces(cache: Cache) -> str:
    """The bundled faces, by their contents (what the subsets are cut from)."""
    return digest(*(f"{face.file}={font_digest(face.file, cache)}" for face in FACES))


def _subsets_serve(
    last: _LastBuild, characters: frozenset[str], code: frozenset[str], extra: frozenset[str], cache: Cache
) -> bool:
    """Whether the last build's subsets have the characters (and were cut with the same ones
    found missing), and the cache has them still."""
    if last.extra != extra or not characters <= last.characters or not code <= last.code:
        return False
    return {face.file for face in FACES} <= last.objects.keys() and all(
        cache.object_path(name) is not None for name in last.objects.values()
    )


def _asked(numbers: Mapping[str, str], start: int) -> str:
    """The page numbers a drawing is asked to show, as one digest: its ids' and its first folio."""
    return json_digest([sorted(numbers.items()), start])


def _chapter_digest(chapter: Chapter) -> str:
    """What tells that a chapter's part of the print document may have changed."""
    return digest(chapter.html_digest, chapter.title_html)


def _layout_key(styles: Styles, part: _Part, cover: bool) -> str:
    """What a part's layout is made of: the builder's code, the styles and the HTML of its job
    (see _Part.job), named by what that is made of: the part's HTML with its boxes named (by
    its digest), the stand-ins of its boxes in their order, and the anchors it stubs. Filling in
    and hashing every part's HTML at every build, for the few parts laid out again, was a
    twentieth of an edit's processor time in the build at 600 pages."""
    stand_ins = [part.numbers[ref] for ref in part.boxes]  # in the order of their names
    return json_digest([_code(), styles.key, part.named_digest, stand_ins, sorted(part.stubs), cover])


def _code() -> str:
    return code_fingerprint("report.render.pdf", "report.render.weasy", "report.render.resume", "report.sandbox")


_EXTRA_KEY = digest("pdf-extra")
_TAG = re.compile(r"<[^>]*>")
_BODY_LINE_HEIGHT = 1.75  # print.css
_TEXT_FILL = 0.5  # of a page's text area, what the characters of running text fill (the rest:
# headings, spacing, ends of paragraphs, tables, figures); about so in the briefing


def _page_after_known(
    name: str, source: str, order: tuple[str, ...], known: dict[str, str], capacity: float
) -> str | None:
    """The page of an id of ``source`` that the last build did not have (a mark added, say):
    that build's page of the nearest id before it (``known``), and a page more for each whole
    page of text from where that page began (its first known id) to the new id. A page holds as
    many characters as that build set on the pages just before it (the last _PAGES_MEASURED with
    a known id, from the first known id of each; or, on the part's first such page, ``capacity``:
    about what a page of running text holds), but not fewer than a quarter of ``capacity``:
    pages broken early (a section a page) tell little of where text added runs to. (Counted from
    the known id itself at the density of all the part's pages, a mark in text added at the end
    of a chapter with tables was guessed a page too far in most builds, and the index laid out
    twice.)"""
    before = None  # the last known id before it
    starts: dict[int, str] = {}  # a page → the first known id on it
    for other in order[: order.index(name)]:
        if other in known:
            before = other
            starts.setdefault(int(known[other]), other)
    if before is None:
        return None
    page = int(known[before])
    measured = sorted(number for number in starts if number < page)[-_PAGES_MEASURED:]

    def at(other: str) -> int:
        return source.find(f' id="{other}"')

    began = at(starts[page])  # where the known id's page began
    per_page = capacity
    if measured:
        first = measured[0]
        per_page = _text_length(source[at(starts[first]) : began]) / (page - first)
    return str(page + int(_text_length(source[began : at(name)]) / max(per_page, capacity / 4)))


def _characters_per_page(settings: PdfSettings) -> float:
    """About how many characters of text a page holds: its text area over the body's font size
    squared (a CJK character is as wide as the font is large) at its line height, part filled."""
    width, height = (millimetres * 72 / 25.4 for millimetres in PAGE_MILLIMETRES[settings.page_size])
    margin, size = settings.points(settings.margin), settings.points(settings.font_size)
    lines = max(1.0, (height - 2 * margin) / (size * _BODY_LINE_HEIGHT))
    return max(1.0, _TEXT_FILL * lines * max(1.0, (width - 2 * margin) / size))


def _text_length(source: str) -> int:
    """The characters of text in HTML, but spaces."""
    return sum(len(word) for word in html.unescape(_TAG.sub(" ", source)).split())


def _extra_characters(cache: Cache) -> frozenset[str]:
    """Characters earlier layouts of the report found they needed beyond :func:`print_characters`."""
    value = cache.load("pdf-extra", _EXTRA_KEY)
    return frozenset(str(value.get("characters", ""))) if value is not None else frozenset()
