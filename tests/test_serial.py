"""report.render.serial: the joined PDF written from its objects, part by part, and written
again from what the last file kept."""

from __future__ import annotations

import io
import subprocess
from decimal import Decimal
from pathlib import Path

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pikepdf import Array, Dictionary, Name, Object, Pdf, String

from report.render import serial
from report.render.serial import PartObjects, PdfWriter


def _book(values: list[object], chapters: int = 2) -> tuple[Pdf, list[list[Object]]]:
    """Pages, a content stream each, in chapters; ``values`` named by the catalog, and by the
    first page (their part's objects as much as the document's)."""
    pdf = Pdf.new()
    pages: list[list[Object]] = []
    for chapter in range(chapters):
        pages.append([])
        for number in range(2):
            page = pdf.add_blank_page(page_size=(200, 200))
            page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf (chapter %d page %d) Tj ET" % (chapter, number))
            pages[-1].append(page.obj)
    pdf.Root.Extra = Array([pdf.make_indirect(value) for value in values])
    return pdf, pages


def _parts(pages: list[list[Object]], owners: list[object] | None = None) -> list[PartObjects]:
    owners = owners or [object() for _ in pages]
    return [
        PartObjects(owner, tuple(page.objgen for page in chapter)) for owner, chapter in zip(owners, pages, strict=True)
    ]


def _plain(obj: object, depth: int = 0) -> object:
    """The object as Python values, references followed (the file's numbers left out)."""
    assert depth < 50
    if isinstance(obj, pikepdf.Stream):
        return ("stream", _plain(obj.stream_dict, depth + 1), obj.read_raw_bytes())
    if isinstance(obj, Dictionary):
        return {
            str(key): _plain(value, depth + 1)
            for key, value in obj.items()
            if key not in ("/Parent", "/Length", "/Next")  # a page's parent, a value's next: back up
        }
    if isinstance(obj, Array):
        return [_plain(item, depth + 1) for item in obj]
    if isinstance(obj, String):
        return bytes(obj)
    if isinstance(obj, int | Decimal) and not isinstance(obj, bool):
        return float(obj)  # a real written without its fraction reads back an integer
    return repr(obj)


def _check(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "written.pdf"
    path.write_bytes(data)
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr


def test_the_file_holds_the_objects_in_object_streams_and_the_streams_outside(tmp_path: Path) -> None:
    values = [Dictionary(Index=index, Label=String(f"item {index}")) for index in range(250)]
    pdf, pages = _book(values)
    data = PdfWriter().write(pdf, _parts(pages), [], "1.7")
    _check(data, tmp_path)
    assert data.startswith(b"%PDF-1.7\n")
    with Pdf.open(io.BytesIO(data)) as reopened:
        assert [int(item.Index) for item in reopened.Root.Extra] == list(range(250))
        assert [_plain(page.obj) for page in reopened.pages] == [_plain(page.obj) for page in pdf.pages]
        assert reopened.trailer.ID[0] == reopened.trailer.ID[1]
    # Each page's content stream stands at its own offset, in no object stream.
    assert data.count(b" 0 obj\n<< /Length ") == 4
    # The document's 252 objects (the catalog, the page tree, the values) in one; each part's pages in one.
    assert data.count(b"/Type /ObjStm") == 3


def test_a_file_before_pdf_1_5_has_a_cross_reference_table_and_no_object_streams(tmp_path: Path) -> None:
    """PDF/A-1 (PDF 1.4) may hold neither object streams nor a cross-reference stream: every
    object stands alone, and a classic table (its free entries linked) and trailer end the
    file; a kept writer still writes a new one's bytes."""
    values = [Dictionary(Index=index, Label=String(f"item {index}")) for index in range(150)]
    pdf, pages = _book(values)
    kept = PdfWriter()
    data = kept.write(pdf, _parts(pages), [], "1.4")
    _check(data, tmp_path)
    assert data.startswith(b"%PDF-1.4\n")
    assert b"/ObjStm" not in data and b"/XRef" not in data
    assert b"\nxref\n0 " in data and b"\ntrailer\n<< /Size " in data
    with Pdf.open(io.BytesIO(data)) as reopened:
        assert [int(item.Index) for item in reopened.Root.Extra] == list(range(150))
        assert reopened.pdf_version == "1.4"
    owners = [object(), object()]
    first = kept.write(pdf, _parts(pages, owners), [], "1.4")
    pages[1][0].Rotate = 90
    parts = [PartObjects(owners[0], tuple(page.objgen for page in pages[0]))]
    parts.append(PartObjects(owners[1], tuple(page.objgen for page in pages[1]), {pages[1][0].objgen}))
    again = kept.write(pdf, parts, [], "1.4")
    assert again != first and again == PdfWriter().write(pdf, parts, [], "1.4")
    _check(again, tmp_path)


def test_objects_are_numbered_as_reached_document_first_then_part_by_part() -> None:
    """The catalog's objects first; then each part's, from its roots; an object two parts name is
    the first one's; what the parts share is the document's, after what the trailer reaches."""
    pdf, pages = _book([Dictionary(A=1)])
    shared = pdf.make_indirect(Dictionary(Shared=True))
    both = pdf.make_indirect(Dictionary(Both=True))
    for chapter in pages:
        chapter[0].Resources = Dictionary(Properties=Dictionary(S=shared, B=both))
    with Pdf.open(io.BytesIO(PdfWriter().write(pdf, _parts(pages), [shared.objgen], "1.7"))) as reopened:
        first, third = reopened.pages[0].obj, reopened.pages[2].obj
        numbers = {
            "catalog": reopened.Root.objgen[0],
            "extra": reopened.Root.Extra[0].objgen[0],
            "shared": first.Resources.Properties.S.objgen[0],
            "page 1": first.objgen[0],
            "both": first.Resources.Properties.B.objgen[0],
            "page 3": third.objgen[0],
        }
        assert list(numbers.values()) == sorted(numbers.values()), numbers
        assert third.Resources.Properties.B.objgen == first.Resources.Properties.B.objgen


# Values as Python (hypothesis prints them), made PDF objects by _pdf; strings and names that
# look like what the writer cuts objects at.
_TRICKY = st.sampled_from(
    ["1 0 R", "(12 0 R)", "a) 3 0 R (b", "a 0 R", "x R", "7 1 R", "\\", "(", ")", "endobj", "stream\n", "/Length 3"]
)
_LEAVES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.floats(-1000, 1000, allow_nan=False).map(lambda value: round(value, 3)),
    _TRICKY,
    st.text(max_size=12),
    st.binary(max_size=12),
    st.tuples(st.sampled_from(["R", "Length", "0", "X"])),  # a name
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["A", "B", "R", "Length"]), inner, max_size=3),
    ),
    max_leaves=8,
)


def _pdf(value: object) -> object:
    if isinstance(value, list):
        return Array([_pdf(item) for item in value])
    if isinstance(value, dict):
        return Dictionary({"/" + key: _pdf(item) for key, item in value.items()})
    if isinstance(value, tuple):
        return Name("/" + value[0])
    if isinstance(value, str | bytes):
        return String(value)
    return value


@settings(max_examples=40, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=130), st.data())
def test_any_objects_come_back_the_same(values: list[object], data: st.DataObject) -> None:
    pdf, pages = _book([Dictionary(V=_pdf(value)) for value in values])
    # Some values named by a page too, and some that name each other.
    extra = list(pdf.Root.Extra)
    for index in data.draw(st.lists(st.integers(0, len(extra) - 1), max_size=5)):
        pages[1][0].Resources = Dictionary(Named=extra[index])
        extra[index].Next = extra[(index + 1) % len(extra)]
    written = PdfWriter().write(pdf, _parts(pages), [], "1.7")
    with Pdf.open(io.BytesIO(written)) as reopened:
        assert reopened.check_pdf_syntax() == []
        assert [_plain(item) for item in reopened.Root.Extra] == [_plain(item) for item in pdf.Root.Extra]
        assert [_plain(item.Next.V) if "/Next" in item else None for item in reopened.Root.Extra] == [
            _plain(item.Next.V) if "/Next" in item else None for item in pdf.Root.Extra
        ]
        assert [_plain(page.obj.get("/Resources")) for page in reopened.pages] == [
            _plain(page.obj.get("/Resources")) for page in pdf.pages
        ]


def test_a_kept_writer_writes_the_bytes_of_a_new_one_compressing_only_what_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A part whose objects did not change is taken as it was written (numbered alike, naming the
    same numbers); a changed object (as the caller says) is written again; a part given anew
    (another owner) is reached anew."""
    pdf, pages = _book([Dictionary(A=1)], chapters=3)
    owners = [object(), object(), object()]
    calls: list[int] = []
    real = serial.libdeflate.zlib_compress
    monkeypatch.setattr(
        serial.libdeflate, "zlib_compress", lambda data, *level: calls.append(len(data)) or real(data, *level)
    )
    kept = PdfWriter()

    def written(changed: dict[int, set[tuple[int, int]]] | None = None) -> int:
        """Writes with the kept writer and a new one; the bytes must agree. Returns how many
        object streams the kept writer compressed."""
        parts = [
            PartObjects(owner, tuple(page.objgen for page in chapter), (changed or {}).get(index, set()))
            for index, (owner, chapter) in enumerate(zip(owners, pages, strict=True))
        ]
        calls.clear()
        data = kept.write(pdf, parts, [], "1.7")
        count = len(calls)
        assert data == PdfWriter().write(pdf, parts, [], "1.7")
        return count

    assert written() == 4  # the document's, and each part's
    assert written() == 0  # nothing changed: every object stream taken as it was
    pages[1][0].Rotate = 90
    assert written({1: {pages[1][0].objgen}}) == 1  # the part's (its page) alone
    pages[1][1].Contents.write(b"BT (a longer stream, drawn again) Tj ET")
    assert written({1: {pages[1][1].Contents.objgen}}) == 0  # a stream is not in an object stream
    pages[2][0].Extra = pdf.make_indirect(Dictionary(New=True))  # one more object, in the last part
    assert written({2: {pages[2][0].objgen}}) == 1
    owners[0] = object()  # the first part given anew, the same objects: written the same
    assert written() == 0
    pages[0][0].Extra = pdf.make_indirect(Dictionary(Before=True))  # within the part's span of numbers:
    assert written({0: {pages[0][0].objgen}}) == 1  # no later number moves
    pages[0][0].More = Array([pdf.make_indirect(Dictionary(Index=index)) for index in range(10)])  # past it:
    assert written({0: {pages[0][0].objgen}}) == 4  # every later number moves, and the document names the pages
    with Pdf.open(io.BytesIO(kept.write(pdf, _parts(pages, owners), [], "1.7"))) as reopened:
        assert [int(item.Index) for item in reopened.pages[0].obj.More] == list(range(10))
        assert reopened.check_pdf_syntax() == []


@pytest.mark.parametrize(("version", "moves"), [("1.7", False), ("1.4", True)])
def test_a_part_grown_past_a_power_of_two_moves_no_later_number_in_a_file_with_object_streams(
    version: str, moves: bool
) -> None:
    """With object streams, a block's numbers go up to a power of four (the free rows of a
    cross-reference stream compress to nothing): a part grown past a power of two within it
    moves no later part's numbers, whose objects are then not written and compressed again. A
    file before PDF 1.5 (a cross-reference table: 20 bytes a row) keeps powers of two, and the
    later numbers move. The bytes are a new writer's either way."""
    pdf, pages = _book([Dictionary(A=1)])
    owners = [object(), object()]
    writer = PdfWriter()

    def second_part_s_page() -> int:
        parts = _parts(pages, owners)
        parts[0] = PartObjects(owners[0], parts[0].roots, {pages[0][0].objgen})
        data = writer.write(pdf, parts, [], version)
        assert data == PdfWriter().write(pdf, parts, [], version)
        with Pdf.open(io.BytesIO(data)) as reopened:
            return reopened.pages[2].objgen[0]

    before = second_part_s_page()
    needed = writer.blocks[0].needed
    pages[0][0].Extra = Array([pdf.make_indirect(Dictionary(Index=index)) for index in range(2)])
    after = second_part_s_page()
    assert serial.span(writer.blocks[0].needed) > serial.span(needed)  # past a power of two
    assert (after != before) is moves


def test_a_changed_object_that_names_what_it_named_leaves_its_blocks_count_and_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A part's page numbers drawn again (a stream changed, naming the same objects: 77 parts of
    the 586-page report after a page added) leave what its block names outside it and how many
    numbers it takes as they were: not worked out again over all its objects. An object that
    names another now has them worked out again. The bytes are a new writer's."""
    pdf, pages = _book([Dictionary(A=1)])
    parts = _parts(pages)
    writer = PdfWriter()
    writer.write(pdf, parts, [], "1.7")
    counted: list[object] = []
    real = serial._Block.counted
    monkeypatch.setattr(serial._Block, "counted", lambda block: counted.append(block.owner) or real(block))

    def written(changed: Object) -> bytes:
        again = [*parts[:1], PartObjects(parts[1].owner, parts[1].roots, {changed.objgen})]
        fresh = PdfWriter().write(pdf, again, [], "1.7")
        counted.clear()
        data = writer.write(pdf, again, [], "1.7")
        assert data == fresh
        return data

    pages[1][0].Contents.write(b"BT (page 12) Tj ET")
    written(pages[1][0].Contents)
    assert parts[1].owner not in counted
    pages[1][0].Extra = pdf.make_indirect(Dictionary(New=True))
    with Pdf.open(io.BytesIO(written(pages[1][0]))) as reopened:
        assert reopened.pages[2].obj.Extra.New
    assert parts[1].owner in counted


def test_a_document_wide_object_kept_unchanged_is_taken_as_it_was_cut_not_unparsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The joiner says which document-wide objects it kept as they were since the last write (a
    name tree's leaves): they are taken as cut then. The bytes are a new writer's."""
    leaf = Dictionary(Limits=Array([String("a"), String("b")]), Names=Array([String("a"), 1, String("b"), 2]))
    pdf, pages = _book([leaf, Dictionary(Other=True)])
    kept_leaf, other = (value.objgen for value in pdf.Root.Extra)
    parts = _parts(pages)
    writer = PdfWriter()
    first = writer.write(pdf, parts, [], "1.7")
    unparsed: list[tuple[int, int]] = []
    real = serial._unparse
    monkeypatch.setattr(serial, "_unparse", lambda obj, *texts: unparsed.append(obj.objgen) or real(obj, *texts))
    again = writer.write(pdf, parts, [], "1.7", unchanged={kept_leaf})
    assert kept_leaf not in unparsed and other in unparsed
    assert again == first == PdfWriter().write(pdf, parts, [], "1.7")


def test_a_leaf_more_numbered_last_moves_no_number_the_parts_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Document-wide objects numbered last (a name tree's leaves: they name only the parts'
    objects): one more of them, even before the others, moves no number a part names (here an
    object they share), so no part's object stream is compressed again. The bytes are a new
    writer's."""
    pdf, pages = _book([Dictionary(A=1)])
    shared = pdf.make_indirect(Dictionary(Shared=True))
    for chapter in pages:
        chapter[0].Resources = Dictionary(Properties=Dictionary(S=shared))
    pdf.Root.Tree = Array(
        [pdf.make_indirect(Dictionary(Names=Array([String(name), pages[1][0]]))) for name in ("b", "c", "d", "e")]
    )  # (the document's span of numbers has room for one more)
    parts = _parts(pages)
    writer = PdfWriter()

    def written() -> tuple[bytes, int]:
        leaves = [leaf.objgen for leaf in pdf.Root.Tree]
        fresh = PdfWriter().write(pdf, parts, [shared.objgen], "1.7", last=leaves)
        compressed.clear()
        data = writer.write(pdf, parts, [shared.objgen], "1.7", last=leaves)
        assert data == fresh
        with Pdf.open(io.BytesIO(data)) as reopened:
            return data, reopened.pages[0].obj.Resources.Properties.S.objgen[0]

    compressed: list[int] = []
    real = serial.libdeflate.zlib_compress
    monkeypatch.setattr(
        serial.libdeflate, "zlib_compress", lambda data, *level: compressed.append(len(data)) or real(data, *level)
    )
    _, number = written()
    pdf.Root.Tree.insert(0, pdf.make_indirect(Dictionary(Names=Array([String("a"), pages[0][0]]))))
    data, number_after = written()
    assert number_after == number
    assert len(compressed) == 1  # the document's object stream
    with Pdf.open(io.BytesIO(data)) as reopened:
        assert [str(leaf.Names[0]) for leaf in reopened.Root.Tree] == ["a", "b", "c", "d", "e"]


def test_a_block_of_more_objects_than_a_stream_holds_takes_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("report.render.serial._PER_STREAM", 7)
    values = [Dictionary(Index=index) for index in range(250)]
    pdf, pages = _book(values)
    data = PdfWriter().write(pdf, _parts(pages), [], "1.7")
    _check(data, tmp_path)
    assert data.count(b"/Type /ObjStm") == -(-252 // 7) + 2
    with Pdf.open(io.BytesIO(data)) as reopened:
        assert [int(item.Index) for item in reopened.Root.Extra] == list(range(250))
