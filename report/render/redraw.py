"""A part's pages drawn as they were drawn last, where a resumed layout took them as they were.

A resumed layout (:mod:`report.render.resume`) takes the pages before an edit from the last
layout: the same boxes. WeasyPrint still drew every page of the part again, and drawing is
most of a part's time after its layout (a chapter grown at its end: its twelve pages drawn
for the one or two laid out anew). So a worker keeps, for each part it drew, what drawing
each page did (:class:`PageDrawing`):

- the operators it added to the page's content stream;
- the fonts it added to the document, and the glyphs it noted in each (widths, Unicode);
- what it named in the resources: transparency states, groups (an SVG drawing's, for its
  opacity and its centred labels), patterns, gradients, images;
- the marked-content sequences it tagged (the box and its MCID, for the structure tree);
- the page numbers it recorded for the join (see :func:`report.render.weasy._record_page_numbers`).

A page whose boxes are those of the page recorded is not drawn again: its record is played
back. The page box, the root's fragment and the margin boxes (running heads, folios) are made
anew for every page taken: they must match the recorded ones in kind, place, size and text,
and the boxes under the root's fragment (and the footnote area) must be the very same.

A record is what drawing its page did to the fonts and resources after the pages before it
(WeasyPrint names a group by how many the resources have, and writes a font's glyphs in the
order they were noted), and it holds only where those pages left them as before: each was
played back, or drawn again with the same effects (a page whose lines were laid out again in
place, say an index entry's page list: the same glyphs noted, the same resources named, the
same images). Where they did not (a page laid out anew before the layout caught up with the
last one: see :mod:`report.render.resume`), a record still holds if the resources are as
before and every glyph the last drawing had noted before its page is noted now, with the same
width: playing it back then notes what drawing the page would (its glyphs not noted yet, in
its order). A page whose drawing logged a warning is not recorded (a missing glyph changes
the font's notes in other ways).

A page drawn again because some of its lines were laid out again (an index entry with a page
more) still has the other lines' text boxes of the last layout: each of those is played back
from what drawing it did last (:func:`text_drawn`), rather than shaped again by Pango (most of
an index page's drawing). A text box's drawing depends on the stream's state as well as on the
box: the colour, opacity and font the stream set last (WeasyPrint writes them only when they
change), whether the last operator ended a text object (it goes on with that one), the opacity
states named, and the glyphs noted in each font, in their order (their widths make the kerning
written; a glyph noted already is not noted again). A box is played back only where that state
is the one its record began from: the glyphs noted are compared by a digest of each font's
notes, chained glyph by glyph (:class:`_Notes`), which does not depend on when it is taken.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

_RESOURCES = ("ExtGState", "XObject", "Pattern", "Shading")


@dataclass(frozen=True)
class PageDrawing:
    """What drawing one page did (see the module)."""

    page_box: Any  # the page drawn: another page must have its boxes to be drawn so
    before: tuple[Any, ...]  # the fonts' and resources' state the drawing began from (see _state)
    operators: tuple[Any, ...]
    fonts: tuple[tuple[Any, Any], ...]  # each font added: its Pango font (and our hold on it)
    notes: tuple[tuple[int, tuple[tuple[int, int], ...], tuple[tuple[int, str], ...]], ...]  # font key → glyphs noted
    # What it added to each kind of resources (see _RESOURCES), by name, as drawn (see _copied).
    resources: tuple[tuple[tuple[str, Any], ...], ...]
    images: tuple[tuple[Any, bool, float], ...]  # each image it drew: the image, interpolated, its ratio
    tags: tuple[tuple[Any, dict[str, Any]], ...]  # each box tagged, and its tag and MCID
    numbers: tuple[tuple[Any, ...], ...]  # the page numbers recorded, but their page and stream


@dataclass
class Drawing:
    """One part's drawing under way: the records of its last drawing it may play back, and
    those it makes for the next."""

    last: list[PageDrawing | None]
    warnings: Callable[[], int]  # how many warnings the drawing logged so far
    pages: list[PageDrawing | None] = field(default_factory=list)
    played: int = 0  # pages played back
    # Whether every page so far left the fonts and resources as its record says (see the module).
    alike: bool = True
    # The glyphs the last drawing had noted in each font before the page being drawn (widths,
    # and those mapped to text), from its records; None where one is missing.
    noted: dict[Any, tuple[dict[int, int], set[int]]] | None = None
    fonts: list[tuple[Any, Any]] = field(default_factory=list)  # added while a page is recorded
    images: list[tuple[Any, bool, float]] = field(default_factory=list)
    resources: Any = None  # the page's resources, while it is recorded
    notes: _Notes = field(default_factory=lambda: _Notes())  # the fonts' notes, digested (see text_drawn)
    texts_played: int = 0  # text boxes played back (see text_drawn)


_DRAWING: Drawing | None = None


@contextmanager
def drawing(last: list[PageDrawing | None], warnings: Callable[[], int]) -> Iterator[Drawing]:
    """The pages painted in the block are played back from ``last`` where they can be, and
    recorded (``drawing.pages``, by page: None for a page that could not be)."""
    global _DRAWING
    first = last[0] if last else None
    _DRAWING = Drawing(last, warnings)
    if first is not None and not any(widths or unicode for _, widths, unicode in first.before[0]):
        _DRAWING.noted = {key: ({}, set()) for key, _, _ in first.before[0]}
    try:
        yield _DRAWING
    finally:
        _DRAWING = None


def install() -> None:
    """Records the fonts and images a page's drawing adds (see :class:`Drawing`)."""
    from weasyprint.pdf.stream import Stream
    from weasyprint.text.ffi import ffi, gobject

    if not hasattr(gobject, "g_object_ref"):
        ffi.cdef("gpointer g_object_ref (gpointer object);")
    add_font, add_image = Stream.add_font, Stream.add_image

    def add_font_recorded(stream: Any, pango_font: Any) -> Any:
        count = len(stream._fonts)
        added = add_font(stream, pango_font)
        if _DRAWING is not None and _DRAWING.resources is not None and len(stream._fonts) > count:
            # Held: the font is made again from it when the page is played back.
            held = ffi.gc(gobject.g_object_ref(pango_font), gobject.g_object_unref)
            _DRAWING.fonts.append((ffi.cast("PangoFont *", held), held))
        return added

    def add_image_recorded(stream: Any, image: Any, interpolate: bool, ratio: float) -> Any:
        if _DRAWING is not None and _DRAWING.resources is not None:
            _DRAWING.images.append((image, interpolate, ratio))
        return add_image(stream, image, interpolate, ratio)

    Stream.add_font = add_font_recorded
    Stream.add_image = add_image_recorded


def paint(page: Any, stream: Any, paint_page: Callable[[], None], numbers: list[tuple[Any, ...]]) -> None:
    """The page painted into its stream by ``paint_page``, or played back; ``numbers``: the
    page numbers recorded so far (each: its page, its stream, and what it says of itself)."""
    drawing = _DRAWING
    if drawing is None:
        paint_page()
        return
    index = len(drawing.pages)
    last = drawing.last[index] if index < len(drawing.last) else None
    before = _state(stream)
    matched = _matched(last.page_box, page._page_box, top=True) if last is not None else None
    if last is not None and matched is not None and _playable(drawing, last, before, stream):
        drawing.pages.append(_played(last, matched, page, stream, numbers))
        drawing.played += 1
    else:
        recorded = _recorded(drawing, before, page, stream, paint_page, numbers)
        drawing.pages.append(recorded)
        drawing.alike = (
            drawing.alike and recorded is not None and last is not None and _effects(recorded) == _effects(last)
        )
    _note(drawing, last)


def _playable(drawing: Drawing, last: PageDrawing, before: tuple[Any, ...], stream: Any) -> bool:
    """Whether the page's record draws it as drawing it would: it begins from the state its
    record did (every page before it did what its record says), or — the pages before it drawn
    otherwise (a page laid out anew before the layout caught up with the last one) — from the
    same resources, and every glyph the last drawing had noted before it noted now with the same
    width (the page's drawing writes widths it finds noted; it notes the glyphs it uses that are
    not, which its record notes those of that are not noted now, and only those)."""
    if drawing.alike and last.before == before:
        return True
    noted = drawing.noted
    if noted is None or before[1:] != last.before[1:]:
        return False
    fonts = stream._fonts
    for key, (known, mapped) in noted.items():
        font = fonts.get(key)
        if font is None or not mapped <= font.to_unicode.keys():
            return False
        if any(font.widths.get(glyph) != width for glyph, width in known.items()):
            return False
    for key, widths, _ in last.notes:
        font = fonts.get(key)
        if font is not None and any(font.widths.get(glyph, width) != width for glyph, width in widths):
            return False
    return True


def _note(drawing: Drawing, last: PageDrawing | None) -> None:
    """The glyphs the last drawing noted on a page (its record's), added to those it had noted."""
    if drawing.noted is None:
        return
    if last is None:
        drawing.noted = None
        return
    for key, widths, unicode in last.notes:
        known_widths, known_unicode = drawing.noted.setdefault(key, ({}, set()))
        for glyph, width in widths:
            known_widths.setdefault(glyph, width)
        known_unicode.update(glyph for glyph, _ in unicode)


def _noted_since(fonts: dict[Any, Any], counted: dict[Any, tuple[int, int]]) -> tuple[Any, ...]:
    """What each font noted after it had noted ``counted`` (how many widths and Unicode
    mappings, by its key: none for a font added since): its widths and mappings added, in order."""
    notes = []
    for key, font in fonts.items():
        widths, unicode = counted.get(key, (0, 0))
        if len(font.widths) > widths or len(font.to_unicode) > unicode:
            added = tuple(itertools.islice(font.widths.items(), widths, None))
            notes.append((key, added, tuple(itertools.islice(font.to_unicode.items(), unicode, None))))
    return tuple(notes)


def _effects(drawn: PageDrawing) -> tuple[Any, ...]:
    """What drawing a page left for the pages after it: the glyphs it noted, the resources it
    named, the images it drew (the fonts it added: the next page's state tells)."""
    named = tuple(tuple(name for name, _ in added) for added in drawn.resources)
    return drawn.notes, named, drawn.images


def _state(stream: Any) -> tuple[Any, ...]:
    """The fonts (and how many glyphs each has noted) and resources a page is drawn after."""
    fonts = tuple((key, len(font.widths), len(font.to_unicode)) for key, font in stream._fonts.items())
    resources = stream._resources
    named = tuple(len(resources[kind]) for kind in _RESOURCES)
    return fonts, named, resources["ColorSpace"], len(stream._images)


def _recorded(
    drawing: Drawing,
    before: tuple[Any, ...],
    page: Any,
    stream: Any,
    paint_page: Callable[[], None],
    numbers: list[tuple[Any, ...]],
) -> PageDrawing | None:
    """The page painted, and what painting it did (``before``: the state it began from, see
    _state); None if it cannot be played back."""
    fonts, named, *_ = before
    counted = {key: (widths, unicode) for key, widths, unicode in fonts}
    resources = stream._resources
    first, numbered, warned = len(stream.stream), len(numbers), drawing.warnings()
    drawing.fonts, drawing.images, drawing.resources = [], [], resources
    try:
        paint_page()
    finally:
        drawing.resources = None
    if drawing.warnings() != warned:
        return None
    notes = _noted_since(stream._fonts, counted)
    memo: dict[int, Any] = {}
    return PageDrawing(
        page._page_box,
        before,
        tuple(stream.stream[first:]),
        tuple(drawing.fonts),
        notes,
        tuple(
            tuple(
                (name, _copied(value, memo)) for name, value in itertools.islice(resources[kind].items(), count, None)
            )
            for kind, count in zip(_RESOURCES, named, strict=True)
        ),
        tuple(drawing.images),
        tuple((box, dict(tag)) for box, tag in stream._tags.items()) if stream._tags is not None else (),
        tuple(number[2:] for number in numbers[numbered:]),
    )


def _copied(value: Any, memo: dict[int, Any]) -> Any:
    """A resource as drawn, apart from the one the write will change: the write numbers a group
    (an XObject), a pattern or a gradient, and replaces in place what their resources name by
    references. What two of them share (a soft mask's group, also an XObject) stays shared."""
    import pydyf

    if id(value) in memo:
        return memo[id(value)]
    copied: Any
    if isinstance(value, pydyf.Stream):
        copied = copy.copy(value)
        copied.stream = list(value.stream)
        memo[id(value)] = copied
        copied.extra = _copied(value.extra, memo)
    elif isinstance(value, pydyf.Dictionary):
        copied = memo[id(value)] = pydyf.Dictionary()
        copied.update((key, _copied(item, memo)) for key, item in value.items())
    elif isinstance(value, pydyf.Array):
        copied = memo[id(value)] = pydyf.Array()
        copied.extend(_copied(item, memo) for item in value)
    else:
        return value  # a name, a number, a reference, a string: not changed by the write
    return copied


def _played(
    last: PageDrawing, matched: dict[int, Any], page: Any, stream: Any, numbers: list[tuple[Any, ...]]
) -> PageDrawing:
    """The page drawn from its record; the record, of the page's boxes (for the next drawing)."""
    from types import SimpleNamespace

    from weasyprint.pdf.stream import Stream

    _fonts_again(stream, last.fonts, last.notes)
    memo: dict[int, Any] = {}
    for kind, added in zip(_RESOURCES, last.resources, strict=True):
        stream._resources[kind].update((name, _copied(value, memo)) for name, value in added)
    # The document's images, which its resources (the page's or a group's) name: already named.
    images = SimpleNamespace(_resources={"XObject": {}}, _images=stream._images)
    for image, interpolate, ratio in last.images:
        Stream.add_image(images, image, interpolate, ratio)
    stream.stream.extend(last.operators)
    tags = tuple((matched.get(id(box), box), tag) for box, tag in last.tags)
    if stream._tags is not None:
        stream._tags.update((box, dict(tag)) for box, tag in tags)
    drawn = tuple((*number[:2], matched.get(id(number[2]), number[2]), *number[3:]) for number in last.numbers)
    numbers.extend((page, stream, *number) for number in drawn)
    return replace(last, page_box=page._page_box, tags=tags, numbers=drawn)


def _fonts_again(stream: Any, fonts: tuple[tuple[Any, Any], ...], notes: tuple[Any, ...]) -> None:
    """What a recorded drawing did to the stream's fonts, done again: the fonts it added, added,
    and the glyphs it noted in each, noted (those noted already are not noted again)."""
    for pango_font, _ in fonts:
        stream.add_font(pango_font)
    for key, widths, unicode in notes:
        font = stream._fonts[key]
        for glyph, width in widths:
            font.widths.setdefault(glyph, width)
        for glyph, text in unicode:
            font.to_unicode.setdefault(glyph, text)


def _matched(old: Any, new: Any, top: bool = False, margin: bool = False) -> dict[int, Any] | None:
    """The boxes of ``old`` made anew in ``new`` (by id of the old box), if ``new`` is ``old``
    as the next layout takes it (see the module): None if it is not."""
    from weasyprint.formatting_structure import boxes

    if old is new:
        return {}
    if not (top or margin) or type(old) is not type(new) or _placed(old) != _placed(new):
        return None
    if isinstance(old, boxes.TextBox) and old.text != new.text:
        return None
    old_children, new_children = getattr(old, "children", ()), getattr(new, "children", ())
    if len(old_children) != len(new_children):
        return None
    matched = {id(old): new}
    for number, (old_child, new_child) in enumerate(zip(old_children, new_children, strict=True)):
        # Under the page box: the root's fragment (its children the same), the margin boxes.
        root = top and isinstance(old, boxes.PageBox) and number == 0
        found = _matched(old_child, new_child, root, margin or isinstance(old_child, boxes.MarginBox))
        if found is None:
            return None
        matched.update(found)
    return matched


def _placed(box: Any) -> tuple[float, ...]:
    return (box.position_x, box.position_y, box.width, box.height)


# What a text box's drawing reads of the stream and leaves in it, besides the glyphs noted and
# the opacity states named: the colour, opacity and font WeasyPrint's stream set last, and the
# font of the text object ended last (the next one may go on with it).
_TEXT_STATE = (
    "_current_color",
    "_current_color_stroke",
    "_current_alpha",
    "_current_alpha_stroke",
    "_current_font",
    "_old_font",
)


@dataclass(frozen=True)
class _TextDrawing:
    """What drawing one text box did (see :func:`text_drawn`)."""

    args: tuple[Any, ...]  # what it was drawn with but the box
    before: tuple[Any, ...]  # the stream's state it began from (see _text_state)
    took_end: bool  # whether it went on with the text object the operator before it ended
    operators: tuple[Any, ...]
    fonts: tuple[tuple[Any, Any], ...]  # as PageDrawing's
    after: tuple[Any, ...]  # the _TEXT_STATE it left
    notes: tuple[tuple[Any, tuple[tuple[int, int], ...], tuple[tuple[int, str], ...]], ...]  # as PageDrawing's
    kept: Any  # what the caller made of the drawing


@dataclass
class _Notes:
    """A digest of what each font of a drawing has noted (widths, then Unicode mappings), each
    chained glyph by glyph from the first: two drawings whose fonts noted the same glyphs in the
    same order have the same digests, wherever they were taken."""

    digests: dict[Any, tuple[int, int, bytes, bytes]] = field(default_factory=dict)

    def of(self, fonts: dict[Any, Any]) -> tuple[tuple[Any, bytes, bytes], ...]:
        found = []
        for key, font in fonts.items():
            widths, unicode, by_width, by_text = self.digests.get(key, (0, 0, b"", b""))
            if (widths, unicode) != (len(font.widths), len(font.to_unicode)):
                by_width = _chained(by_width, itertools.islice(font.widths.items(), widths, None))
                by_text = _chained(by_text, itertools.islice(font.to_unicode.items(), unicode, None))
                self.digests[key] = (len(font.widths), len(font.to_unicode), by_width, by_text)
            found.append((key, by_width, by_text))
        return tuple(found)


def _chained(digest: bytes, items: Iterator[tuple[int, Any]]) -> bytes:
    for item in items:
        digest = hashlib.blake2b(digest + repr(item).encode(), digest_size=16).digest()
    return digest


# By id of a text box: the box (weakly held) and its last drawing. A box dies with the layout
# that holds it, and its record with it.
_TEXTS: dict[int, tuple[weakref.ref[Any], _TextDrawing]] = {}


def text_drawn(stream: Any, box: Any, args: tuple[Any, ...], draw: Callable[[], Any]) -> Any:
    """The text box ``box`` drawn into ``stream`` by ``draw`` (with ``args``), or played back
    from its last drawing where that draws it the same (see the module); what ``draw``
    returned, or returned then. Not in a drawing that logged a warning (a missing glyph notes
    its stand-in's width anew)."""
    drawing = _DRAWING
    if drawing is None or drawing.resources is None or drawing.warnings():  # not in a page recorded
        return draw()
    before = _text_state(stream, drawing)
    found = _TEXTS.get(id(box))
    last = found[1] if found is not None and found[0]() is box else None
    if last is not None and last.args == args and last.before == before:
        _play_text(stream, last)
        drawing.texts_played += 1
        return last.kept
    operators = stream.stream
    length, fonts = len(operators), len(drawing.fonts)
    ended = operators[-1] if operators else None
    counted = {key: (len(font.widths), len(font.to_unicode)) for key, font in stream._fonts.items()}
    kept = draw()
    # (WeasyPrint's begin_text takes back an ET just written: the operator there is another now.)
    took_end = bool(length) and (len(operators) < length or operators[length - 1] is not ended)
    # Recorded if it added no resource or image, and warned of nothing.
    if not drawing.warnings() and _named(stream) == before[3]:
        notes = _noted_since(stream._fonts, counted)
        after = _text_settings(stream)
        drawn = _TextDrawing(
            args,
            before,
            took_end,
            tuple(operators[length - took_end :]),
            tuple(drawing.fonts[fonts:]),
            after,
            notes,
            kept,
        )
        _TEXTS[id(box)] = (weakref.ref(box, functools.partial(_forget_text, id(box))), drawn)
    return kept


def _text_state(stream: Any, drawing: Drawing) -> tuple[Any, ...]:
    """What a text box's drawing depends on in the stream (see the module)."""
    operators = stream.stream
    ended = bool(operators) and operators[-1] == b"ET"
    return _text_settings(stream), ended, drawing.notes.of(stream._fonts), _named(stream)


def _text_settings(stream: Any) -> tuple[Any, ...]:
    """The stream's _TEXT_STATE."""
    return tuple(getattr(stream, name) for name in _TEXT_STATE)


def _named(stream: Any) -> tuple[Any, ...]:
    """The opacity states the stream names, how many other resources and images, and how deep
    its graphics states are stacked."""
    resources = stream._resources
    counts = tuple(len(resources[kind]) for kind in _RESOURCES)
    return tuple(resources["ExtGState"]), counts, len(stream._images), len(stream._ctm_stack)


def _play_text(stream: Any, drawn: _TextDrawing) -> None:
    _fonts_again(stream, drawn.fonts, drawn.notes)
    operators = stream.stream
    if drawn.took_end:
        operators.pop()
    operators.extend(drawn.operators)
    for name, value in zip(_TEXT_STATE, drawn.after, strict=True):
        setattr(stream, name, value)


def _forget_text(box_id: int, _: object) -> None:
    _TEXTS.pop(box_id, None)


def forget_texts() -> None:
    """Forget every text box's drawing (their boxes' text is about to change)."""
    _TEXTS.clear()
