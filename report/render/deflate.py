"""A zlib stream written in pieces compressed apart, so that a piece that stays the same from one
file to the next is not compressed again.

The join sets a book's page numbers in its pages' content streams (report.render.join): when a
chapter grows a page, every later page's folio changes, and each of those streams was compressed
again whole (0.06 s of zlib at 600 pages, on the critical path of the edit). Cut before its first
number, a stream is compressed as two pieces: the first ends on a full flush (its compressed
bytes end on a byte, and what follows need not refer to it), and is kept compressed; the second,
which holds the numbers, is compressed again each time, referring to the end of the first (a
preset dictionary: a stream's window is its last 32 kB, whatever pieces they came in), and ends
the stream. The stream's check value (Adler-32) is combined from the pieces' own.

The bytes depend on the data and where it is cut only: a stream written from kept pieces is the
one written from nothing.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

_LEVEL = 6
_HEADER = b"\x78\x9c"  # deflate, a 32 kB window, level 6 (zlib's default)
_BASE = 65521  # Adler-32's modulus
_WINDOW = 32768  # how far back a zlib stream refers


@dataclass(frozen=True)
class Piece:
    """Data compressed as a piece of a zlib stream: raw deflate, ending on a full flush (or,
    ``last``, ending the stream); with its Adler-32 and length."""

    deflated: bytes
    checksum: int
    length: int


def piece(data: bytes, last: bool = False, before: bytes = b"") -> Piece:
    """``data`` as a piece; ``before``: what the stream holds just before it, which it may refer
    to (a page's numbers, referring to the text before them, compress as well as in the whole
    stream)."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=before[-_WINDOW:])
    deflated = compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)
    return Piece(deflated, zlib.adler32(data), len(data))


def joined(pieces: Sequence[Piece]) -> bytes:
    """The zlib stream of the pieces' data, one after the other (the last one made ``last``)."""
    checksum = 1
    for part in pieces:
        checksum = adler32_combined(checksum, part.checksum, part.length)
    return _HEADER + b"".join(part.deflated for part in pieces) + struct.pack(">I", checksum)


def adler32_combined(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two pieces of data one after the other, from each one's and the second's
    length. Adler-32 is two sums modulo 65521: A, 1 plus the bytes; B, the sum of A after each
    byte. Appending n bytes adds their own A (less its 1) to A, and to B their own B (less the n
    times its 1) plus n times the first A."""
    rest = second_length % _BASE
    a_first, b_first = first & 0xFFFF, first >> 16
    a_second, b_second = second & 0xFFFF, second >> 16
    a = (a_first + a_second - 1) % _BASE
    b = (b_first + b_second + rest * a_first - rest) % _BASE
    return b << 16 | a
