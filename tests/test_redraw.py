"""Text boxes played back from their last drawing (report/render/redraw.py, ``text_drawn``): a
page drawn with some boxes played back is the page drawn whole, whatever was drawn before it.

The boxes here are drawn by a stand-in for WeasyPrint's ``draw_text`` that depends on the stream
as it does: it writes the colour only when it changes, goes on with a text object just ended,
and writes each glyph with the width its font noted first (so the order glyphs were noted in
shows in what it writes). The pages drawn in the browser are checked byte for byte in
test_resume.py and test_cache.py."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from report.render import redraw


@dataclass
class _Font:
    widths: dict[int, int] = field(default_factory=dict)
    to_unicode: dict[int, str] = field(default_factory=dict)


class _Stream:
    """What of WeasyPrint's stream the drawing reads and writes."""

    def __init__(self) -> None:
        self.stream: list[Any] = []
        self._fonts = {"serif": _Font(), "sans": _Font()}
        self._resources: dict[str, dict[str, Any]] = {
            kind: {} for kind in ("ExtGState", "XObject", "Pattern", "Shading")
        }
        self._images: dict[str, Any] = {}
        self._ctm_stack = [None]
        self._current_color = self._current_color_stroke = None
        self._current_alpha = self._current_alpha_stroke = None
        self._current_font = self._old_font = None

    def drawn(self) -> tuple[Any, ...]:
        fonts = {key: (list(font.widths.items()), list(font.to_unicode.items())) for key, font in self._fonts.items()}
        return self.stream, fonts, self._current_color, self._current_font, self._old_font


@dataclass(eq=False)
class _Box:
    font: str
    color: str
    glyphs: tuple[int, ...]
    text: str = ""


def _draw(stream: _Stream, box: _Box) -> None:
    if box.color != stream._current_color:
        stream._current_color = box.color
        stream.stream.append(f"{box.color} rg".encode())
    if stream.stream and stream.stream[-1] == b"ET":  # as WeasyPrint's begin_text
        stream.stream.pop()
        stream._current_font = stream._old_font
    else:
        stream.stream.append(b"BT")
    if stream._current_font != box.font:
        stream._current_font = box.font
        stream.stream.append(f"/{box.font} Tf".encode())
    font = stream._fonts[box.font]
    shown = []
    for glyph in box.glyphs:
        font.to_unicode.setdefault(glyph, chr(0x3042 + glyph))
        width = font.widths.setdefault(glyph, 500 + 7 * len(font.widths))  # the first noting wins
        shown.append(f"{glyph}:{width}")
    stream.stream.append(" ".join(shown).encode())
    stream._old_font, stream._current_font = stream._current_font, None  # as its end_text
    stream.stream.append(b"ET")


def _page(boxes: list[_Box], played: bool) -> tuple[tuple[Any, ...], int]:
    """The boxes drawn on a page, in a drawing that plays back what it can (else none): what the
    stream holds then, and how many boxes were played back."""
    stream = _Stream()
    with redraw.drawing([], lambda: 0) as drawing:
        drawing.resources = stream._resources  # (a page being recorded)
        for box in boxes:
            if played:
                redraw.text_drawn(stream, box, (0.0,), lambda box=box: _draw(stream, box))
            else:
                _draw(stream, box)
    return stream.drawn(), drawing.texts_played


_boxes = st.lists(
    st.builds(
        _Box,
        font=st.sampled_from(["serif", "sans"]),
        color=st.sampled_from(["0 0 0", "1 0 0"]),
        glyphs=st.lists(st.integers(0, 12), max_size=4).map(tuple),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(first=_boxes, new=_boxes, kept=st.lists(st.booleans(), min_size=12, max_size=12), seed=st.randoms())
def test_a_page_with_text_boxes_played_back_is_the_page_drawn_whole(
    first: list[_Box], new: list[_Box], kept: list[bool], seed: Any
) -> None:
    """Boxes drawn once are drawn again among others (some of the last boxes kept, others new,
    in another order): where one is played back, the stream, the fonts' notes (in their order)
    and the state left are what drawing every box gives."""
    _page(first, played=True)  # recorded
    again = [box for box, keep in zip(first, itertools.cycle(kept)) if keep] + new
    seed.shuffle(again)
    assert _page(again, played=True)[0] == _page(again, played=False)[0]


def test_boxes_drawn_again_as_they_were_are_played_back() -> None:
    """The same boxes drawn again from the same state are all played back, and so are those
    before a box changed; a box changed before them, noting other glyphs first, leaves the
    fonts' notes another: they are drawn again."""
    boxes = [_Box("serif", "0 0 0", (1, 2)), _Box("sans", "1 0 0", (3,)), _Box("serif", "1 0 0", (2, 4))]
    _page(boxes, played=True)
    assert _page(boxes, played=True)[1] == 3
    for changed, played in (
        ([*boxes[:2], _Box("serif", "1 0 0", (2, 5))], 2),
        ([_Box("serif", "0 0 0", (4, 1)), *boxes[1:]], 0),  # glyph 4 noted first now: its width moves
    ):
        drawn = _page(changed, played=True)
        assert drawn == (_page(changed, played=False)[0], played)


def test_the_fonts_notes_digest_does_not_depend_on_when_it_is_taken() -> None:
    """The digest of glyphs noted one by one is the digest of them noted at once; another order
    of the same glyphs gives another."""
    one_by_one, at_once, reversed_order = redraw._Notes(), redraw._Notes(), redraw._Notes()
    font = _Font()
    for glyph in (5, 3, 9):
        font.widths[glyph] = glyph * 10
        font.to_unicode[glyph] = str(glyph)
        stepwise = one_by_one.of({"f": font})
    assert stepwise == at_once.of({"f": font})
    other = _Font(dict(reversed(font.widths.items())), dict(reversed(font.to_unicode.items())))
    assert reversed_order.of({"f": other}) != stepwise
