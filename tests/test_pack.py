"""report.render.pack: the object streams put into a PDF that qpdf wrote without them."""

from __future__ import annotations

import io
import subprocess
import zlib
from pathlib import Path

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pikepdf import Array, Dictionary, Name, Pdf, String

from report.render.pack import Packer, pack_object_streams


def _written(pdf: Pdf, mode: pikepdf.ObjectStreamMode = pikepdf.ObjectStreamMode.disable) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, object_stream_mode=mode, deterministic_id=True)
    return buffer.getvalue()


def _qdf(data: bytes, tmp_path: Path, name: str) -> bytes:
    """The file as qpdf rewrites it for reading: numbered as reached, no object streams."""
    source, target = tmp_path / f"{name}.pdf", tmp_path / f"{name}.qdf"
    source.write_bytes(data)
    subprocess.run(["qpdf", "--qdf", "--object-streams=disable", str(source), str(target)], check=True)
    # Not compared: the version (object streams need 1.5), the /ID's second half (qpdf makes it anew)
    noted = (b"%PDF-", b"%% Original object ID", b"  /ID")
    return b"\n".join(line for line in target.read_bytes().split(b"\n") if not line.startswith(noted))


def _check(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "packed.pdf"
    path.write_bytes(data)
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr


def _document(values: list[object], pages: int = 2) -> Pdf:
    """Pages with a content stream each, and ``values`` as indirect objects the catalog names."""
    pdf = Pdf.new()
    for number in range(pages):
        page = pdf.add_blank_page(page_size=(200, 200))
        page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf (page %d) Tj ET" % number)
    pdf.Root.Extra = Array([pdf.make_indirect(value) for value in values])
    return pdf


def test_the_packed_file_holds_the_same_objects_in_object_streams(tmp_path: Path) -> None:
    values = [Dictionary(Index=index, Label=String(f"item {index}")) for index in range(250)]
    plain = _written(_document(values))
    packed = pack_object_streams(plain)
    _check(packed, tmp_path)
    assert _qdf(packed, tmp_path, "packed") == _qdf(plain, tmp_path, "plain")
    with Pdf.open(io.BytesIO(packed)) as reopened:
        assert [int(item.Index) for item in reopened.Root.Extra] == list(range(250))
        assert reopened.trailer.ID == Pdf.open(io.BytesIO(plain)).trailer.ID
    # 250 dictionaries and the catalog, pages and page tree: three streams of 100 at most
    assert packed.count(b"/Type /ObjStm") == 3
    assert plain.startswith(b"%PDF-1.3") and packed.startswith(b"%PDF-1.5")  # object streams are PDF 1.5
    assert len(packed) < len(plain)


def test_an_identified_file_has_an_id_made_from_its_objects(tmp_path: Path) -> None:
    """The joiner has qpdf write a static /ID (a deterministic one costs qpdf a second pass) and
    the packer make it: the same objects give the same ID, other objects another."""

    def written_with_static_id(values: list[object]) -> bytes:
        buffer = io.BytesIO()
        _document(values).save(buffer, object_stream_mode=pikepdf.ObjectStreamMode.disable, static_id=True)
        return buffer.getvalue()

    one, again, other = (
        Packer().pack(written_with_static_id([Dictionary(A=value)]), identify=True) for value in (1, 1, 2)
    )
    _check(one, tmp_path)
    identifiers = []
    for packed in (one, again, other):
        with Pdf.open(io.BytesIO(packed)) as reopened:
            first, second = (bytes(half) for half in reopened.trailer.ID)
            assert first == second and len(first) == 16
            identifiers.append(first)
    assert one == again and identifiers[0] == identifiers[1] != identifiers[2]
    assert identifiers[0] != bytes.fromhex("31415926535897932384626433832795")  # qpdf's static ID


def test_streams_stay_outside_the_object_streams(tmp_path: Path) -> None:
    packed = pack_object_streams(_written(_document([Dictionary(A=1)])))
    with Pdf.open(io.BytesIO(packed)) as reopened:
        assert [page.Contents.read_bytes() for page in reopened.pages] == [
            b"BT /F1 12 Tf (page 0) Tj ET",
            b"BT /F1 12 Tf (page 1) Tj ET",
        ]
    _check(packed, tmp_path)


def test_a_file_that_has_object_streams_already_is_refused() -> None:
    with pytest.raises(ValueError, match="cross-reference table"):
        pack_object_streams(_written(_document([Dictionary(A=1)]), pikepdf.ObjectStreamMode.generate))


# Values as Python (hypothesis prints them), made PDF objects by _pdf; strings and names that
# look like the words the packer finds objects by.
_TRICKY = st.sampled_from(["endobj", "endstream", "\nendstream", "stream\n", "1 0 obj", "xref", "trailer", "%%EOF"])
_LEAVES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.floats(-1000, 1000, allow_nan=False).map(lambda value: round(value, 3)),
    _TRICKY,
    st.text(max_size=12),
    st.binary(max_size=12),
    st.tuples(st.sampled_from(["endobj", "endstream", "stream", "X"])),  # a name
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["A", "B", "endobj", "stream"]), inner, max_size=3),
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
@given(
    st.lists(st.one_of(st.lists(_VALUES, max_size=4), st.dictionaries(st.just("A"), _VALUES)), min_size=1, max_size=130)
)
def test_any_objects_come_back_the_same(values: list[object]) -> None:
    plain = _written(_document([_pdf(value) for value in values], pages=1))
    packed = pack_object_streams(plain)
    with Pdf.open(io.BytesIO(plain)) as before, Pdf.open(io.BytesIO(packed)) as after:
        assert [item.unparse(resolved=True) for item in after.Root.Extra] == [
            item.unparse(resolved=True) for item in before.Root.Extra
        ]
        assert after.check_pdf_syntax() == []


def test_a_packer_kept_from_the_last_version_gives_the_bytes_of_a_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the join kept from build to build remembers: the object streams of the last version
    only, taken again only where their objects are the same and numbered alike."""
    first = list(range(250))
    edited = [*first[:150], -1, *first[151:]]  # in the second object stream
    grown = [-2, *first]  # every object renumbered
    versions = [
        _written(_document([Dictionary(Index=i) for i in indices])) for indices in (first, edited, grown, first)
    ]
    calls: list[int] = []
    real = zlib.compress
    monkeypatch.setattr(zlib, "compress", lambda data, *level: calls.append(len(data)) or real(data, *level))
    packer, counts = Packer(), []
    for version in versions:
        calls.clear()
        packed = packer.pack(version)
        counts.append(len(calls))
        assert packed == pack_object_streams(version)
    # first: its 3 object streams and its cross-reference stream; edited: the object stream
    # that changed and the cross-reference stream; grown, then first again: everything.
    assert counts == [4, 2, 4, 4]
