"""The joined PDF's bytes, written from its objects part by part: what a join kept from the last
build writes again follows the parts that changed, not the book.

qpdf writes every object of the file at every join (0.08 s of a 586-page book's, 0.18 s of a
595-page one's), and its numbering follows the order objects were made in, not the book. This
module writes the file itself, numbering objects in the order they are reached, so that a join
kept from the last build gives the bytes of a join from nothing:

- first the document-wide objects: what the trailer reaches but the parts' own objects (the
  catalog, the page tree, the structure tree's root and ``/Document``, its ParentTree, the
  named destinations, the outline's root, the metadata), then the objects the parts share
  (fonts, images, colour profiles: see :meth:`PdfWriter.write`), reached in the order the parts
  first name them;
- then each part's own objects, part after part, as a block: those reached from the part's
  roots (its pages, structure elements, outline items...), breadth first. A block takes a span
  of numbers with room to grow (see :func:`span` and :meth:`_Block.taken`), the rest left free.

Streams are written as they are (their raw data); the other objects go into compressed object
streams (see ``_PER_STREAM``), each within one block; a cross-reference stream ends the file (a
file before PDF 1.5, PDF/A-1, has neither: every object stands alone, and a cross-reference
table ends it). A block whose part is the one written last, whose objects did not change (the
caller says which did), which begins at the same number and names the same numbers outside
itself, is taken as it was written: its bytes, its compressed object streams, its
cross-reference rows; if only streams of it changed (page numbers set anew), those alone are
written again. Nothing is parsed back:
each object's text is qpdf's own (``unparse``), cut at its references, which are written with
the file's numbers.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import struct
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import deflate as libdeflate
import pikepdf
from pikepdf import Object, Pdf

ObjGen = tuple[int, int]

# Objects in an object stream at most: most parts' objects in one. Each part's are compressed
# apart from the others' (so that a part kept is not compressed again), and so compress worse
# than qpdf's streams of 100 objects of the whole book: at 100 and zlib's level 6 the 92-page
# bench report's PDF was 4.0% larger than qpdf's file, at 1000 and level 9 2.3% larger (the
# level is now 6: see _LEVEL).
_PER_STREAM = 1000
# With zlib at level 9 the 586-page report's object streams (5.0 MB) took 1.59 s to compress, at
# level 6 0.41 s, for 2% more (873 against 856 kB of a 3.4 MB file): a join that renumbers the
# parts after a chapter that outgrew its span compresses them all again. libdeflate at its level
# 6 compressed the 615-page report's (4.7 MB) in 32 ms against zlib's 67 ms, to 802 kB against 840.
_LEVEL = 6
_HEADER = b"%%PDF-%s\n%%\xbf\xf7\xa2\xfe\n"  # the binary comment qpdf writes
_REFERENCE = re.compile(rb"(\d+) (\d+) R")
# A literal string as qpdf writes it (its parentheses and backslashes escaped), or a reference;
# a literal string with something in it that looks like a reference.
_STRING_OR_REFERENCE = re.compile(rb"\((?:[^\\()]|\\.)*\)|(\d+) (\d+) R", re.DOTALL)
_LIKE_A_REFERENCE = re.compile(rb"\((?:[^\\()]|\\.)*?\d+ \d+ R(?:[^\\()]|\\.)*\)", re.DOTALL)
_LENGTH = re.compile(rb"/Length (?:\d+ \d+ R|\d+)")
# Cross-reference rows: (type << 56) | (field 2 << 16) | field 3, in 8 bytes (``/W [ 1 5 2 ]``: a
# file is never a terabyte, and the zeros a narrower field would save compress to nothing). Type 1:
# an object at an offset; type 2: in an object stream.
_ROW = struct.Struct(">Q")
_TYPE_1, _TYPE_2 = 1 << 56, 2 << 56


@dataclass
class _Unparsed:
    """An object's text cut at its references (``pieces`` has one more item than ``refs``),
    and a stream's raw data."""

    pieces: list[bytes]
    refs: list[ObjGen]
    data: bytes | None = None


@dataclass(frozen=True)
class _Written:
    """A block as written: its top-level objects (its streams, then its object streams), what it
    was numbered from, and its cross-reference rows (a row for each number it takes, those of
    type 1 at offsets from the block's start)."""

    first: int
    outside: tuple[int, ...]  # the numbers of the objects outside it that it names
    pieces: tuple[bytes, ...]
    placed: tuple[int, ...]  # each piece's row, by index
    kinds: tuple[int, ...]  # each number's row, but the offsets of the pieces (set from them)
    groups: dict[bytes, bytes]  # its object streams compressed, by the digest of their content
    streams: dict[ObjGen, tuple[int, int]]  # a stream → its piece and its number
    packed: bool  # whether its objects but streams are in object streams
    rows: list[int] = field(init=False)
    table: bytes = field(init=False)  # the rows packed as the cross-reference stream holds them
    data: bytes = field(init=False)
    digest: bytes = field(init=False)

    def __post_init__(self) -> None:
        rows, at = list(self.kinds), 0
        for piece, index in zip(self.pieces, self.placed, strict=True):
            rows[index] = _TYPE_1 | at << 16
            at += len(piece)
        data = b"".join(self.pieces)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "table", struct.pack(f">{len(rows)}Q", *rows))
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "digest", hashlib.blake2b(data, digest_size=16).digest())

    def table_at(self, at: int) -> bytes:
        """The rows, the block starting at offset ``at`` of the file."""
        if not at or not self.placed:
            return self.table
        table = bytearray(self.table)
        for index in self.placed:
            _ROW.pack_into(table, 8 * index, self.rows[index] + (at << 16))
        return bytes(table)


@dataclass
class _Block:
    """Objects written together, in order, and the objects outside the block they name."""

    owner: object
    objects: list[ObjGen]
    outside: list[ObjGen]
    unparsed: dict[ObjGen, _Unparsed]
    written: _Written | None = None
    changed: set[ObjGen] = field(default_factory=set)  # since it was written
    mine: set[ObjGen] = field(init=False)
    needed: int = field(init=False)  # how many numbers its objects and object streams need (see taken)
    numbered: tuple[int, dict[ObjGen, int]] = (0, {})  # see numbers_from

    def __post_init__(self) -> None:
        self.mine = set(self.objects)
        self.counted()

    def numbers_from(self, first: int) -> dict[ObjGen, int]:
        """Its objects' numbers, numbered from ``first``: kept while that stays, for the file's
        table of every number to be updated from (taking the hashes this one has: hashing the
        586-page report's 30,000 pairs again took 6 ms of every join)."""
        if self.numbered[0] != first:
            self.numbered = (first, dict(zip(self.objects, range(first, first + len(self.objects)), strict=True)))
        return self.numbered[1]

    def counted(self) -> None:
        packed = sum(1 for objgen in self.objects if self.unparsed[objgen].data is None)
        self.needed = len(self.objects) + -(-packed // _PER_STREAM)

    def taken(self, packed: bool) -> int:
        """How many numbers it takes (``packed``: in a file with object streams): its span (see
        :func:`span`), the rest unused. With object streams, the span rounded up to a power of
        four: a block that outgrows its span moves the numbers of every block after it, whose
        objects are then written and compressed again (60–70 ms of the join of a page added in
        the middle of the 615-page bench report, in two or three of its five rounds); a chapter
        that grows a page at a time outgrows a power of four half as often as a power of two.
        The numbers left unused are zeros in the cross-reference stream, which compress to
        nothing (not so in a file before PDF 1.5: 20 bytes each in its table)."""
        taken = span(self.needed)
        if packed and taken.bit_length() % 2 == 0:  # (1 << 2k has 2k + 1 bits)
            taken <<= 1
        return taken


def flate(data: bytes) -> bytes:
    """``data`` as a FlateDecode stream's: a zlib stream, by libdeflate at :data:`_LEVEL`."""
    return bytes(libdeflate.zlib_compress(data, _LEVEL))


def span(count: int) -> int:
    """How many numbers ``count`` things numbered one after the other take (a block's objects;
    a part's structure keys): the power of two above ``count`` and a quarter more, the rest
    unused. A part that grows (a page added to a chapter) mostly keeps its span, and the parts
    after it their numbers, so that they are not written again (their object streams compressed
    again). The span follows the count alone, as a file written from nothing has it."""
    return 1 << (count + count // 4).bit_length() if count else 0


@dataclass(frozen=True)
class PartObjects:
    """One part as the writer takes it: ``owner`` stands for the part's objects as they are
    (another owner: another part); ``roots``, its objects the document-wide ones name (pages
    first); ``changed``, those of its objects changed since they were last written."""

    owner: object
    roots: tuple[ObjGen, ...]
    changed: Collection[ObjGen] = ()


@dataclass
class PdfWriter:
    """Writes successive versions of one joined PDF (see the module), keeping each part's block
    for the next."""

    blocks: dict[int, _Block] = field(default_factory=dict)  # by the part's place in the last file
    groups: dict[bytes, bytes] = field(default_factory=dict)  # the last file's object streams
    # The document-wide objects of the last file, cut at their references, by their text (an
    # object made again as it was is not cut again) and by their number (see write's unchanged).
    texts: dict[bytes, _Unparsed] = field(default_factory=dict)
    document: dict[ObjGen, _Unparsed] = field(default_factory=dict)

    def write(
        self,
        pdf: Pdf,
        parts: Sequence[PartObjects],
        shared: Iterable[ObjGen],
        version: str,
        unchanged: Collection[ObjGen] = (),
        last: Collection[ObjGen] = (),
    ) -> bytes:
        """The file of ``pdf``'s trailer (``/Root``, ``/Info``), whose pages are the parts'.
        ``shared``: the objects the parts may name in common (and what they name): they are
        document-wide, written once. ``unchanged``: document-wide objects the caller kept as
        they were since the last write (a name tree's leaves, 85 of 3.5 kB each at 586 pages:
        8 ms of a join to unparse again), taken as they were cut then. ``last``: document-wide
        objects that name only the parts' (a name tree's leaves), numbered after the others:
        a leaf more or less then moves no number the parts name (the structure tree's
        /Document, the fonts), and no part is written again for it."""
        every_root = {objgen for part in parts for objgen in part.roots}
        trailer = pdf.trailer
        starts = [trailer[key].objgen for key in ("/Root", "/Info") if key in trailer]
        texts: dict[bytes, _Unparsed] = {}
        kept = {objgen: self.document[objgen] for objgen in unchanged if objgen in self.document}
        late = set(last)
        head = _reach(pdf, starts, (every_root | late).__contains__, texts=(self.texts, texts), kept=kept)
        leaves = [objgen for objgen in head.outside if objgen in late]
        # (Sets' own tests, not a function of ours: the leaves name tens of thousands of objects.)
        tail = _reach(pdf, leaves, (every_root | head.mine).__contains__, texts=(self.texts, texts), kept=kept)
        self.texts, self.document = texts, head.unparsed | tail.unparsed
        claims = _Claims(head.mine | tail.mine, set(shared), every_root)
        blocks: list[_Block] = []
        for index, part in enumerate(parts):
            block = self._block(pdf, index, part, claims)
            blocks.append(block)
            claims.owned |= block.mine
        self.blocks = dict(enumerate(blocks))
        # The objects the parts share, in the order the parts first name them.
        taken = claims.taken
        named = [
            objgen for block in blocks for objgen in block.outside if objgen in claims.shared and objgen not in taken
        ]
        rest = _reach(pdf, named, lambda objgen: objgen in every_root or objgen in taken or objgen in claims.owned)
        document = _Block(
            None, head.objects + rest.objects + tail.objects, [], head.unparsed | rest.unparsed | tail.unparsed
        )

        numbers: dict[ObjGen, int] = {}
        firsts = []
        first = 1
        packed = not _before_object_streams(version)
        for block in (document, *blocks):
            firsts.append(first)
            numbers.update(block.numbers_from(first))
            first += block.taken(packed)
        for block, block_first in zip((document, *blocks), firsts, strict=True):
            block.written = self._written(block, block_first, numbers, packed)
        self.groups = {
            name: data for block in (document, *blocks) if block.written for name, data in block.written.groups.items()
        }
        return self._file(pdf, [document, *blocks], first, numbers, version, packed)

    def _block(self, pdf: Pdf, index: int, part: PartObjects, claims: _Claims) -> _Block:
        """The part's block: the last one, if its part is the same and its objects are still its
        own (with the changed ones unparsed again), else reached anew."""
        own_roots = set(part.roots)

        def anew() -> _Block:
            return _reach(pdf, part.roots, functools.partial(claims.claimed, own_roots=own_roots), part.owner)

        kept = self.blocks.get(index)
        if kept is None or kept.owner is not part.owner or not claims.leave(kept.mine, own_roots):
            return anew()
        mine = kept.mine
        changed = [objgen for objgen in part.changed if objgen in mine]
        renamed = False  # whether a changed object names other objects, or is a stream no more or now
        for objgen in changed:
            before = kept.unparsed[objgen]
            after = kept.unparsed[objgen] = _unparse(pdf.get_object(objgen))
            if [ref for ref in before.refs if ref in mine] != [ref for ref in after.refs if ref in mine]:
                return anew()  # its own objects may be reached in another order
            renamed = renamed or before.refs != after.refs or (before.data is None) != (after.data is None)
        kept.changed.update(changed)
        if renamed:  # (a page's numbers drawn again name what they did: 77 blocks of a page added)
            kept.counted()
            kept.outside = list(
                dict.fromkeys(ref for objgen in kept.objects for ref in kept.unparsed[objgen].refs if ref not in mine)
            )
        if not all(claims.claimed(objgen, own_roots) for objgen in kept.outside):
            return anew()  # an object it names is no longer another's: its own now
        return kept

    def _written(self, block: _Block, first: int, numbers: dict[ObjGen, int], packed: bool) -> _Written:
        """The block written from number ``first`` (``packed``: its objects but streams in object
        streams): as last time if nothing it depends on changed, its changed streams alone written
        again if only streams changed."""
        outside = tuple(numbers[objgen] for objgen in block.outside)
        last, changed = block.written, block.changed
        block.changed = set()
        if last is not None and (last.first, last.outside, last.packed) == (first, outside, packed):
            if not changed:
                return last
            if changed <= last.streams.keys():
                rewritten = list(last.pieces)
                for objgen in changed:
                    piece, number = last.streams[objgen]
                    rewritten[piece] = _stream(number, block.unparsed[objgen], numbers)
                return replace(last, pieces=tuple(rewritten))
        pieces: list[bytes] = []
        placed: list[int] = []
        kinds: list[int] = []
        members: list[tuple[int, bytes]] = []
        streams: dict[ObjGen, tuple[int, int]] = {}
        next_stream = first + len(block.objects)
        for number, objgen in enumerate(block.objects, start=first):
            unparsed = block.unparsed[objgen]
            if unparsed.data is None and not packed:  # (a file before PDF 1.5)
                placed.append(len(kinds))
                kinds.append(0)
                pieces.append(b"%d 0 obj\n%s\nendobj\n" % (number, _text(unparsed, numbers)))
            elif unparsed.data is None:
                stream_number = next_stream + len(members) // _PER_STREAM
                kinds.append(_TYPE_2 | stream_number << 16 | len(members) % _PER_STREAM)
                members.append((number, _text(unparsed, numbers)))
            else:
                streams[objgen] = (len(pieces), number)
                placed.append(len(kinds))
                kinds.append(0)
                pieces.append(_stream(number, unparsed, numbers))
        groups: dict[bytes, bytes] = {}
        for at in range(0, len(members), _PER_STREAM):
            group = members[at : at + _PER_STREAM]
            header, offset = [], 0
            for number, text in group:
                header.append(b"%d %d" % (number, offset))
                offset += len(text) + 1
            head = b" ".join(header) + b"\n"
            content = head + b"\n".join(text for _, text in group)
            name = hashlib.blake2b(content, digest_size=16).digest()
            compressed = groups[name] = self.groups.get(name) or flate(content)
            placed.append(len(kinds))
            kinds.append(0)
            pieces.append(
                b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n%s"
                b"\nendstream\nendobj\n"
                % (next_stream + at // _PER_STREAM, len(group), len(head), len(compressed), compressed)
            )
        kinds += [0] * (block.taken(packed) - len(kinds))  # free (see taken)
        return _Written(first, outside, tuple(pieces), tuple(placed), tuple(kinds), groups, streams, packed)

    def _file(
        self, pdf: Pdf, blocks: list[_Block], size: int, numbers: dict[ObjGen, int], version: str, packed: bool
    ) -> bytes:
        """The header, the blocks, and the cross-reference stream with the trailer's entries (a
        cross-reference table and a trailer if not ``packed``: before PDF 1.5)."""
        out = [_HEADER % version.encode()]
        at = len(out[0])
        tables = [_ROW.pack(0xFFFF)]  # object 0: free
        identifier = hashlib.md5(usedforsecurity=False)  # of the objects written: same objects, same /ID
        for block in blocks:
            written = block.written
            assert written is not None
            tables.append(written.table_at(at))
            out.append(written.data)
            identifier.update(written.digest)
            at += len(written.data)
        trailer = pdf.trailer
        entries = b"".join(
            b" %s %d 0 R" % (key.encode(), numbers[trailer[key].objgen]) for key in ("/Info", "/Root") if key in trailer
        )
        name = identifier.hexdigest().encode()
        if not packed:
            out.append(_classic_table(b"".join(tables), size))
            out.append(
                b"trailer\n<< /Size %d%s /ID [<%s><%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (size, entries, name, name, at)
            )
            return b"".join(out)
        tables.append(_ROW.pack(_TYPE_1 | at << 16))  # the cross-reference stream itself
        # Level 1: the rows (numbers that grow steadily) compress as well as at 6, ten times as fast.
        table = zlib.compress(b"".join(tables), 1)
        out.append(
            b"%d 0 obj\n<< /Type /XRef /Size %d /W [ 1 5 2 ] /Filter /FlateDecode /Length %d%s /ID [<%s><%s>] >>\n"
            b"stream\n" % (size, size + 1, len(table), entries, name, name)
        )
        out.append(table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at)
        return b"".join(out)


def _before_object_streams(version: str) -> bool:
    """Whether a PDF of ``version`` is older than object and cross-reference streams (1.5): a
    PDF/A-1 file, which may hold neither."""
    return tuple(map(int, version.split(".")[:2])) < (1, 5)


def _classic_table(rows: bytes, size: int) -> bytes:
    """The cross-reference table of the packed ``rows`` (all of type 1, or free: see _file),
    its free entries linked one to the next, as a table's are."""
    values = struct.unpack(f">{size}Q", rows)
    free = [number for number, row in enumerate(values) if row >> 56 == 0]
    following = dict(zip(free, [*free[1:], 0], strict=True))
    entries = [
        b"%010d %05d f \n" % (following[number], 65535 if number == 0 else 0)
        if row >> 56 == 0
        else b"%010d 00000 n \n" % (row >> 16 & 0xFFFFFFFFFF)
        for number, row in enumerate(values)
    ]
    return b"xref\n0 %d\n" % size + b"".join(entries)


@dataclass
class _Claims:
    """Whose objects are whose, as a file's blocks are made: the document-wide ones (reached
    from the trailer, or shared), every part's roots, and the objects of the parts made so far."""

    taken: set[ObjGen]  # reached from the trailer
    shared: set[ObjGen]
    roots: set[ObjGen]
    owned: set[ObjGen] = field(default_factory=set)

    def claimed(self, objgen: ObjGen, own_roots: set[ObjGen]) -> bool:
        """Whether the object is another's than the part's whose roots are ``own_roots``."""
        return (
            objgen in self.taken
            or objgen in self.shared
            or objgen in self.owned
            or (objgen in self.roots and objgen not in own_roots)
        )

    def leave(self, objects: set[ObjGen], own_roots: set[ObjGen]) -> bool:
        """Whether none of ``objects`` is another's (a set operation each: no call an object)."""
        return (
            objects.isdisjoint(self.taken)
            and objects.isdisjoint(self.shared)
            and objects.isdisjoint(self.owned)
            and (objects & self.roots) <= own_roots
        )


def _reach(
    pdf: Pdf,
    starts: Iterable[ObjGen],
    outside: Callable[[ObjGen], bool],
    owner: object = None,
    texts: tuple[dict[bytes, _Unparsed], dict[bytes, _Unparsed]] | None = None,
    kept: Mapping[ObjGen, _Unparsed] | None = None,
) -> _Block:
    """The objects reached from ``starts``, breadth first, but those ``outside`` (named, not
    followed): the order qpdf writes them in. ``texts``: objects cut before, by their text,
    and where to note those cut now (see :func:`_unparse`); ``kept``: objects as they were cut
    before, unchanged since."""
    kept = kept or {}
    order: list[ObjGen] = []
    unparsed: dict[ObjGen, _Unparsed] = {}
    named: dict[ObjGen, None] = {}
    queue = deque(objgen for objgen in dict.fromkeys(starts) if not outside(objgen))
    seen = set(queue)
    while queue:
        objgen = queue.popleft()
        order.append(objgen)
        found = unparsed[objgen] = kept.get(objgen) or _unparse(pdf.get_object(objgen), texts)
        for ref in found.refs:
            if ref in seen:
                continue
            if outside(ref):
                named[ref] = None
            else:
                seen.add(ref)
                queue.append(ref)
    return _Block(owner, order, list(named), unparsed)


def _unparse(obj: Object, texts: tuple[dict[bytes, _Unparsed], dict[bytes, _Unparsed]] | None = None) -> _Unparsed:
    """The object's text cut at its references; a stream's dictionary with its data's length.
    ``texts``: objects but streams cut before, by their text, and where to note this one."""
    if isinstance(obj, pikepdf.Stream):
        data = obj.read_raw_bytes()
        text = obj.stream_dict.unparse(resolved=True)
        length = b"/Length %d" % len(data)
        text, replaced = _LENGTH.subn(length, text, count=1)
        if not replaced:
            text = text[:-2] + length + b" >>"
    else:
        data = None
        text = obj.unparse(resolved=True)
        if texts is not None:
            before, now = texts
            found = now[text] = before.get(text) or _unparsed(text, data)
            return found
    return _unparsed(text, data)


def _unparsed(text: bytes, data: bytes | None) -> _Unparsed:
    """``text`` cut at its references."""
    if b"(" not in text or not _LIKE_A_REFERENCE.search(text):  # a reference is all that looks like one
        return _cut(text, data)
    pieces, refs, at = [], [], 0
    for match in _STRING_OR_REFERENCE.finditer(text):
        if match.group(1) is not None:
            pieces.append(text[at : match.start()])
            refs.append((int(match.group(1)), int(match.group(2))))
            at = match.end()
    pieces.append(text[at:])
    return _Unparsed(pieces, refs, data)


def _cut(text: bytes, data: bytes | None) -> _Unparsed:
    """The text of an object whose strings hold nothing like a reference, cut at its references.
    Cut at " 0 R" (every object a PDF made anew holds is of generation 0), each piece then ends
    with a reference's number: a third of the time a regular expression takes, whose attempts at
    every digit of the numbers a page's coordinates are made of cost 7 ms of the 10 a
    595-page book's named destinations took."""
    parts = text.split(b" 0 R")
    if len(parts) - 1 == text.count(b" R"):  # else a reference of another generation
        pieces, refs = [], []
        try:
            for part in parts[:-1]:
                head, space, number = part.rpartition(b" ")
                refs.append((int(number), 0))
                pieces.append(head + space)
        except ValueError:  # not a number: not a reference
            pass
        else:
            pieces.append(parts[-1])
            return _Unparsed(pieces, refs, data)
    parts = _REFERENCE.split(text)
    return _Unparsed(parts[::3], list(zip(map(int, parts[1::3]), map(int, parts[2::3]), strict=True)), data)


def _stream(number: int, unparsed: _Unparsed, numbers: dict[ObjGen, int]) -> bytes:
    """A stream object as written: its dictionary (with the file's numbers) and its raw data."""
    assert unparsed.data is not None
    return b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (number, _text(unparsed, numbers), unparsed.data)


def _text(unparsed: _Unparsed, numbers: dict[ObjGen, int]) -> bytes:
    """The object's text with the file's numbers."""
    pieces = unparsed.pieces
    if not unparsed.refs:
        return pieces[0]
    references = map(b"%d 0 R".__mod__, map(numbers.__getitem__, unparsed.refs))
    return pieces[0] + b"".join(itertools.chain.from_iterable(zip(references, pieces[1:], strict=True)))
