"""report.render.zipped: the EPUB's container, as zipfile writes it (its members deflated by
libdeflate), with the compressed members of the last EPUB taken again where they are the same."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zlib
from unittest import mock

import deflate as libdeflate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report.render.zipped import _LEVEL, Zipped, write_zip

MODIFIED = dt.datetime(2024, 12, 20, 9, 30, 15)
MEMBERS = [
    ("mimetype", b"application/epub+zip"),
    ("META-INF/container.xml", b"<container/>" * 40),
    ("EPUB/本文.xhtml", "<p>北朝鮮とロシア</p>".encode() * 200),
    ("EPUB/fonts/a.otf", bytes(range(256)) * 30),
]


class _Libdeflate:
    """zipfile's compressor, deflating as the module does (libdeflate, at its level)."""

    def __init__(self) -> None:
        self.data = b""

    def compress(self, data: bytes) -> bytes:
        self.data += data
        return b""

    def flush(self) -> bytes:
        return bytes(libdeflate.deflate_compress(self.data, _LEVEL))


def _by_zipfile(members: list[tuple[str, bytes]]) -> bytes:
    """The container as the standard library writes it (what the EPUB was before), its members
    deflated as the module deflates them."""
    stamp = (MODIFIED.year, MODIFIED.month, MODIFIED.day, MODIFIED.hour, MODIFIED.minute, MODIFIED.second)
    out = io.BytesIO()
    deflating = mock.patch.object(zipfile, "_get_compressor", lambda kind, level=None: kind and _Libdeflate())
    with deflating, zipfile.ZipFile(out, "w") as target:
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3
            entry.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            target.writestr(entry, data, compresslevel=9)
    return out.getvalue()


def test_the_bytes_are_those_zipfile_writes() -> None:
    written = write_zip(MEMBERS, MODIFIED)
    assert written.data == _by_zipfile(MEMBERS)
    with zipfile.ZipFile(io.BytesIO(written.data)) as archive:  # zlib inflates them
        assert archive.testzip() is None
        assert [(info.filename, archive.read(info)) for info in archive.infolist()] == MEMBERS
        assert archive.infolist()[0].compress_type == zipfile.ZIP_STORED
    assert set(written.digests) == {name for name, _ in MEMBERS[1:]}  # the deflated members'


def test_members_of_the_earlier_file_are_taken_where_they_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = write_zip(MEMBERS, MODIFIED)
    edited = [*MEMBERS[:2], ("EPUB/本文.xhtml", "<p>北朝鮮と露国</p>".encode() * 200), MEMBERS[3]]
    expected = _by_zipfile(edited)
    compressed: list[int] = []
    real = libdeflate.deflate_compress
    monkeypatch.setattr(libdeflate, "deflate_compress", lambda *args: compressed.append(1) or real(*args))
    monkeypatch.setattr(zlib, "decompress", None)  # the digests decide: nothing is inflated to be compared
    assert write_zip(edited, MODIFIED, earlier).data == expected
    assert len(compressed) == 1  # the edited page
    compressed.clear()
    assert write_zip(MEMBERS, MODIFIED, Zipped(b"not a zip", earlier.digests)).data == earlier.data
    assert len(compressed) == 3


def test_a_member_is_taken_only_by_its_recorded_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same name, size and CRC, as two different texts may have, take nothing; nor do the
    same bytes whose digest was not recorded (an EPUB cached by an earlier version)."""
    before, after = b"A" * 500 + b"B" * 500, b"B" * 500 + b"A" * 500
    members = [("mimetype", b"x"), ("page.xhtml", after)]
    fresh = write_zip(members, MODIFIED)
    assert write_zip(members, MODIFIED, write_zip([("mimetype", b"x"), ("page.xhtml", before)], MODIFIED)) == fresh
    compressed: list[int] = []
    real = libdeflate.deflate_compress
    monkeypatch.setattr(libdeflate, "deflate_compress", lambda *args: compressed.append(1) or real(*args))
    assert write_zip(members, MODIFIED, Zipped(fresh.data, {})) == fresh
    assert len(compressed) == 1


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
    assert write_zip(unique, MODIFIED, earlier).data == _by_zipfile(unique)
