"""A zlib stream written in pieces (report/render/deflate.py), and the join's page numbers set in
content streams cut before the first of them (report.render.join._CutPage): the stream inflates to the data
with its numbers set, and one written from kept pieces is the one written from nothing."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from report.render import deflate
from report.render.join import _CutPage, _edits, _list_digits
from report.render.weasy import DrawnNumber

_DATA = st.binary(max_size=3000) | st.text(alphabet="q Q 0123456789 Tm TJ BT ET\n", max_size=3000).map(str.encode)


@given(st.lists(_DATA, min_size=1, max_size=6), st.lists(st.integers(0, 4000), min_size=6, max_size=6))
def test_pieces_inflate_to_their_data_one_after_the_other(pieces: list[bytes], referred: list[int]) -> None:
    """Each piece may refer to the end of what comes before it (as much as ``referred`` says)."""
    stream = deflate.joined(
        [
            deflate.piece(
                data, last=at == len(pieces) - 1, before=b"".join(pieces[:at])[-referred[at] :][: referred[at]]
            )
            for at, data in enumerate(pieces)
        ]
    )
    inflate = zlib.decompressobj()
    assert inflate.decompress(stream) == b"".join(pieces)
    assert inflate.eof and not inflate.unused_data


@given(st.binary(max_size=200), st.binary(max_size=200), st.integers(0, 200_000))
def test_adler32_of_two_pieces_combined_is_that_of_both(first: bytes, second: bytes, zeros: int) -> None:
    second += bytes(zeros)  # longer than Adler-32's modulus, too
    combined = deflate.adler32_combined(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(first + second)


# A content stream with page numbers drawn in it as WeasyPrint draws them: a text matrix, then
# the glyphs of the stand-in's digits (here the digit glyphs are 0010–0019).
_DIGITS = tuple(f"{0x10 + digit:04x}" for digit in range(10))


def _drawn(filler: list[bytes], kinds: list[str]) -> tuple[bytes, list[DrawnNumber]]:
    """The stream, and its numbers: a folio ("") or a reference (an id's page) or a page list
    piece, each between two stretches of ``filler``."""
    data = bytearray(filler[0])
    numbers = []
    for at, kind in enumerate(kinds):
        matrix = b"1 0 0 -1 100 200 Tm"
        matrix_at = (len(data), len(data) + len(matrix))
        data += matrix + b"\n/f1 8 Tf\n"
        glyphs = b"[<00100010>] TJ" if kind != "list" else b"[<00100010> 250 <0010>] TJ"
        glyphs_at = (len(data), len(data) + len(glyphs))
        data += glyphs + b"\n" + filler[(at + 1) % len(filler)]
        ref = "" if kind == "folio" else f"id{at}" if kind == "ref" else f"id{at} other{at}"
        numbers.append(
            DrawnNumber(
                page=0,
                ref=ref,
                matrix_at=matrix_at,
                glyphs_at=glyphs_at,
                matrix=(1.0, 0.0, 0.0, -1.0, 100.0, 200.0),
                width=12.0,
                digit_widths=tuple(6.0 + digit % 3 for digit in range(10)),
                align=0.5 if kind != "list" else 0.0,
                digits=_DIGITS,
                list_offset=-1 if kind != "list" else 0,
            )
        )
    return bytes(data), numbers


def _set_whole(data: bytes, numbers: list[DrawnNumber], of: dict[str, str], first: int) -> bytes:
    """The stream with its numbers set, edited whole."""
    edited = bytearray(data)
    for (start, end), replacement in sorted(_edits(numbers, of, first, data, 0), reverse=True):
        edited[start:end] = replacement
    return bytes(edited)


_PAGES = st.integers(1, 999).map(str)
_LISTS = st.lists(st.integers(1, 999), min_size=1, max_size=4).map(lambda pages: ", ".join(map(str, pages)))


@settings(max_examples=60, deadline=None)
@given(
    filler=st.lists(_DATA, min_size=1, max_size=4),
    kinds=st.lists(st.sampled_from(["folio", "ref", "list"]), min_size=1, max_size=4),
    before=st.tuples(st.integers(1, 2000), st.lists(_PAGES, min_size=4, max_size=4), st.lists(_LISTS, min_size=4)),
    after=st.tuples(st.integers(1, 2000), st.lists(_PAGES, min_size=4, max_size=4), st.lists(_LISTS, min_size=4)),
)
def test_a_page_cut_before_its_numbers_inflates_to_the_page_edited_whole_and_kept_writes_as_anew(
    filler: list[bytes],
    kinds: list[str],
    before: tuple[int, list[str], list[str]],
    after: tuple[int, list[str], list[str]],
) -> None:
    data, numbers = _drawn(filler, kinds)
    kept = _CutPage.of(data, numbers)
    for first, pages, lists in (before, after):
        of = {f"id{at}": pages[at] for at in range(len(kinds))} | {
            f"id{at} other{at}": lists[at] for at in range(len(kinds))
        }
        written = kept.with_numbers(numbers, of, first)
        whole = _set_whole(data, numbers, of, first)
        assert zlib.decompress(written) == whole
        # What follows the cut refers to what comes before it: about as small as compressed whole.
        assert len(written) <= len(zlib.compress(whole)) + 24
        assert written == _CutPage.of(data, numbers).with_numbers(numbers, of, first)


def test_what_follows_the_cut_refers_to_what_comes_before_it() -> None:
    """A page's text, its folio, then text much like it (what a page draws after its folio
    closes what it opened): compressed in two pieces, about as small as whole."""
    text = b"".join(
        b"q 0.75 0 0 0.75 %d %d cm\n/Artifact BMC\n0.9 g\n%d 0 12 8 re f\nEMC\nQ\n" % (i, 7 * i, i % 13)
        for i in range(300)
    )
    data, numbers = _drawn([text, text[-600:]], ["folio"])
    whole = _set_whole(data, numbers, {}, 12)
    written = _CutPage.of(data, numbers).with_numbers(numbers, {}, 12)
    assert zlib.decompress(written) == whole
    assert len(written) <= len(zlib.compress(whole)) + 24


_GLYPHS = st.sampled_from(["0010", "0011", "001A", "001a", "00ff", "0003"])


@given(
    groups=st.lists(st.tuples(st.lists(_GLYPHS, max_size=5), st.sampled_from(["", "0", " -250 ", "12"])), max_size=8),
    listed=st.lists(st.integers(0, 9), max_size=12),
)
def test_a_page_list_s_stand_in_zeros_take_its_digits_in_order(
    groups: list[tuple[list[str], str]], listed: list[int]
) -> None:
    """Each glyph 0010 (the stand-in's zero, here) in the TJ's glyph strings takes the next
    digit listed, as long as there is one; every other glyph, and the kerning between the
    strings, stay as drawn."""
    shown, expected, zeros = "[", "[", 0
    for glyphs, kerning in groups:
        shown += "<" + "".join(glyphs) + ">" + kerning
        expected += "<"
        for glyph in glyphs:
            if glyph == "0010":
                expected += _DIGITS[listed[zeros]] if zeros < len(listed) else glyph
                zeros += 1
            else:
                expected += glyph
        expected += ">" + kerning
    for _ in range(2):  # the second time, as kept from the first
        assert _list_digits(shown + "] TJ", _DIGITS, listed) == (expected + "] TJ", min(zeros, len(listed)))
