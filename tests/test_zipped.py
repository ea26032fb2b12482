"""report.render.zipped: the EPUB's container, as zipfile writes it, with the compressed members
of the last EPUB taken again where they are the same."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report.render.zipped import write_zip

MODIFIED = dt.datetime(2024, 12, 20, 9, 30, 15)
MEMBERS = [
    ("mimetype", b"application/epub+zip"),
    ("META-INF/container.xml", b"<container/>" * 40),
    ("EPUB/本文.xhtml", "<p>北朝鮮とロシア</p>".encode() * 200),
    ("EPUB/fonts/a.otf", bytes(range(256)) * 30),
]


def _by_zipfile(members: list[tuple[str, bytes]]) -> bytes:
    """The container as the standard library writes it (what the EPUB was before)."""
    stamp = (MODIFIED.year, MODIFIED.month, MODIFIED.day, MODIFIED.hour, MODIFIED.minute, MODIFIED.second)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3
            entry.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            target.writestr(entry, data, compresslevel=9)
    return out.getvalue()


def test_the_bytes_are_those_zipfile_writes() -> None:
    assert write_zip(MEMBERS, MODIFIED) == _by_zipfile(MEMBERS)
    with zipfile.ZipFile(io.BytesIO(write_zip(MEMBERS, MODIFIED))) as archive:
        assert archive.testzip() is None
        assert [(info.filename, archive.read(info)) for info in archive.infolist()] == MEMBERS
        assert archive.infolist()[0].compress_type == zipfile.ZIP_STORED


def test_members_of_the_earlier_file_are_taken_where_they_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = write_zip(MEMBERS, MODIFIED)
    edited = [*MEMBERS[:2], ("EPUB/本文.xhtml", "<p>北朝鮮と露国</p>".encode() * 200), MEMBERS[3]]
    expected = _by_zipfile(edited)
    compressed: list[int] = []
    real = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj", lambda *args: compressed.append(1) or real(*args))
    assert write_zip(edited, MODIFIED, earlier) == expected
    assert len(compressed) == 1  # the edited page
    compressed.clear()
    assert write_zip(MEMBERS, MODIFIED, b"not a zip") == earlier and len(compressed) == 3


def test_a_member_with_the_same_crc_and_size_but_other_bytes_is_compressed_anew() -> None:
    """CRC and size match, as two different texts may: the bytes decide."""
    before, after = b"A" * 500 + b"B" * 500, b"B" * 500 + b"A" * 500
    earlier = bytearray(write_zip([("mimetype", b"x"), ("page.xhtml", before)], MODIFIED))
    for signature, header, offset in ((b"PK\x03\x04", 30, 14), (b"PK\x01\x02", 46, 16)):  # both CRC fields
        at = next(
            at
            for at in range(len(earlier))
            if earlier.startswith(signature, at) and earlier.startswith(b"page.xhtml", at + header)
        )
        struct.pack_into("<L", earlier, at + offset, zlib.crc32(after))
    members = [("mimetype", b"x"), ("page.xhtml", after)]
    assert write_zip(members, MODIFIED, bytes(earlier)) == write_zip(members, MODIFIED)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a.xhtml", "b.css", "c/d.xhtml", "図.png"]), st.binary(max_size=600)), max_size=4
    ),
    st.lists(st.binary(max_size=600), max_size=4),
)
def test_any_members_give_the_bytes_of_a_fresh_file(members: list[tuple[str, bytes]], others: list[bytes]) -> None:
    unique = [("mimetype", b"application/epub+zip"), *dict(members).items()]
    earlier = write_zip(
        [(name, others[i % len(others)] if others else data) for i, (name, data) in enumerate(unique)], MODIFIED
    )
    assert write_zip(unique, MODIFIED, earlier) == _by_zipfile(unique)
