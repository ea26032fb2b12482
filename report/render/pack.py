"""Object streams for a PDF that qpdf wrote without them: the joined PDF's own last step.

qpdf writes object streams (``object_stream_mode=generate``) numbering the objects of each by
their numbers in memory, so the bytes it writes depend on the order the objects were made in:
a join that kept most parts from the last build and added one again would not give the bytes of
a join from nothing. Written without object streams, the file is numbered in the order its
objects are reached from the trailer, whatever their numbers in memory; this module then puts
its objects that may be in an object stream (all but streams) into compressed object streams,
as qpdf would, and ends the file with a cross-reference stream. Nothing is parsed but the
cross-reference table: each object is the bytes between its offset and the next one's.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

_PER_STREAM = 100  # objects in an object stream at most, as qpdf puts them
_TABLE_ENTRY = 20  # bytes of an entry of a classic cross-reference table: "0000000015 00000 n \n"
_SIZE = re.compile(rb"/Size \d+\s*")
_ID = re.compile(rb"/ID\s*\[\s*<[0-9a-fA-F]*>\s*<[0-9a-fA-F]*>\s*\]\s*")
_CLOSING = b"\nendobj\n"
_STREAM_END = re.compile(rb"\nendstream" + re.escape(_CLOSING))


def pack_object_streams(pdf: bytes) -> bytes:
    """``pdf`` (written by qpdf without object streams, a classic cross-reference table and
    objects numbered 1 to N in the order written) with its objects but streams in object
    streams, and a cross-reference stream; the trailer's entries (``/Root``, ``/Info``, ``/ID``)
    are kept."""
    return Packer().pack(pdf)


class Packer:
    """:func:`pack_object_streams` for successive versions of one file (the join kept from
    build to build): an object stream whose objects are written as in the last version,
    numbered alike (an edit that leaves the objects before them as many), is taken as it was,
    neither read object by object nor compressed again."""

    def __init__(self) -> None:
        # the digest of the bytes an object stream's objects span (with the streams among them)
        # → the object stream compressed, and the length of its header
        self._groups: dict[bytes, tuple[bytes, int]] = {}

    def pack(self, pdf: bytes, identify: bool = False) -> bytes:
        """With ``identify``, the file's ``/ID`` is made here, from the objects written (the same
        objects, the same ID): qpdf's own deterministic ID costs it a second pass over the file,
        a third of the time it takes to write it."""
        offsets, table, trailer = _cross_references(pdf)
        ends = [*offsets[1:], table]
        out = bytearray(pdf[: offsets[0]])  # the header and its binary comment
        if out.startswith(b"%PDF-1.") and out[7:8] in b"01234":  # object streams are PDF 1.5
            out[5:8] = b"1.5"
        # The streams stay as they are: the objects that end with their data's end (found in one
        # search of the file: a tenth of the time of asking each object).
        stream_ends = {found.end() for found in _STREAM_END.finditer(pdf, offsets[0], table)}
        streams = [number for number, end in enumerate(ends, start=1) if end in stream_ends]
        packable = [number for number, end in enumerate(ends, start=1) if end not in stream_ends]
        # Each object's row of the cross-reference stream: (type << 56) | (field 2 << 16) | field 3.
        rows = [0xFFFF] * (len(offsets) + 1)  # object 0: free
        for number in streams:
            rows[number] = (1 << 56) | (len(out) << 16)
            out += pdf[offsets[number - 1] : ends[number - 1]]
        next_number = len(offsets) + 1
        groups: dict[bytes, tuple[bytes, int]] = {}
        for first in range(0, len(packable), _PER_STREAM):
            members = packable[first : first + _PER_STREAM]
            spanned = pdf[offsets[members[0] - 1] : ends[members[-1] - 1]]  # their numbers are in it
            name = hashlib.blake2b(spanned, digest_size=16).digest()
            data, head_length = groups[name] = self._groups.get(name) or _object_stream(pdf, offsets, ends, members)
            stream_row = (2 << 56) | (next_number << 16)
            for place, number in enumerate(members):
                rows[number] = stream_row | place
            rows.append((1 << 56) | (len(out) << 16))
            out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
                next_number,
                len(members),
                head_length,
                len(data),
            )
            out += data + b"\nendstream\nendobj\n"
            next_number += 1
        self._groups = groups  # the last version's only

        xref_number, xref_at = next_number, len(out)
        rows.append((1 << 56) | (xref_at << 16))
        # Rows of 8 bytes (type, a 5-byte field 2, field 3), written in one call: a file is never
        # a terabyte, and the zeros a narrower field would save compress to nothing.
        packed_rows = struct.pack(f">{len(rows)}Q", *rows)
        # Level 1: the rows (numbers that grow steadily) compress as well as at 6, ten times as fast.
        data = zlib.compress(packed_rows, 1)
        entries_kept = _SIZE.sub(b"", trailer[2:-2]).strip()
        if identify:
            identifier = hashlib.md5(out, usedforsecurity=False).hexdigest().encode()
            entries_kept = _ID.sub(b"", entries_kept).strip() + b" /ID [<%s><%s>]" % (identifier, identifier)
        out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [ 1 5 2 ] /Filter /FlateDecode /Length %d %s >>\nstream\n" % (
            xref_number,
            xref_number + 1,
            len(data),
            entries_kept,
        )
        out += data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
        return bytes(out)


def _object_stream(pdf: bytes, offsets: list[int], ends: list[int], members: list[int]) -> tuple[bytes, int]:
    """The object stream of objects ``members`` (numbers), compressed, and its header's length."""
    bodies = [_body(pdf, offsets[number - 1], ends[number - 1], number) for number in members]
    header, at = [], 0
    for number, body in zip(members, bodies, strict=True):
        header.append(b"%d %d" % (number, at))
        at += len(body) + 1
    head = b" ".join(header) + b"\n"
    return zlib.compress(head + b"\n".join(bodies)), len(head)


def _cross_references(pdf: bytes) -> tuple[list[int], int, bytes]:
    """The offsets of objects 1 to N, where the table starts, and the trailer dictionary."""
    start = pdf.rindex(b"startxref")
    table = int(pdf[start + len(b"startxref") :].split(None, 1)[0])
    if not pdf.startswith(b"xref", table):
        raise ValueError("not a PDF with a cross-reference table")
    subsection_end = pdf.index(b"\n", table + len(b"xref\n"))
    first, count = (int(field) for field in pdf[table + len(b"xref\n") : subsection_end].split())
    entries = subsection_end + 1
    if first != 0 or pdf[entries + _TABLE_ENTRY * count : entries + _TABLE_ENTRY * count + 7] != b"trailer":
        raise ValueError("not a cross-reference table of one subsection")
    fields = pdf[entries + _TABLE_ENTRY : entries + _TABLE_ENTRY * count].split()  # offset, generation, kind
    if len(fields) != 3 * (count - 1) or set(fields[2::3]) - {b"n"}:
        raise ValueError("a cross-reference table with free objects")
    offsets = list(map(int, fields[::3]))
    trailer = pdf[entries + _TABLE_ENTRY * count + len(b"trailer") : start].strip()
    if not (trailer.startswith(b"<<") and trailer.endswith(b">>")):
        raise ValueError("a trailer that is not a dictionary")
    return offsets, table, trailer


def _body(pdf: bytes, begin: int, end: int, number: int) -> bytes:
    """Object ``number``'s value: between its ``N 0 obj`` line and its ``endobj`` line (qpdf
    writes each on a line of its own)."""
    opening = b"%d 0 obj\n" % number
    if not pdf.startswith(opening, begin):
        raise ValueError(f"object {number} is not where the cross-reference table says")
    if not pdf.endswith(_CLOSING, begin, end):
        raise ValueError(f"object {number} does not end with an endobj line")
    return pdf[begin + len(opening) : end - len(_CLOSING)]
