"""The EPUB's page list, in the navigation document and the NCX, written out from a document
made with one stand-in page (report.render.epub: EpubRenderer._nav_with_pages,
_Writer.ncx_from_shell): byte for byte the documents made whole, for any page list; where an
item would not be written as it is, the document is made whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import copy_fixture
from hypothesis import given
from hypothesis import strategies as st

from report.assemble import Assembler
from report.build import prepare
from report.cache import Cache
from report.render.epub import EpubRenderer, MadeInBuild, _Writer

# Labels as CSS page counters make them (and more), links as page-break markers' ids are made.
_LABELS = st.one_of(
    st.integers(min_value=1, max_value=2000).map(str),
    st.sampled_from(["i", "ii", "xiv", "A-1", "付録1"]),
    st.text(alphabet="0123456789ivx-&<>\"' 頁", min_size=1, max_size=6),
)
_HREFS = st.builds(
    lambda chapter, page: f"{chapter}.xhtml#page-{page}",
    st.sampled_from(["intro", "method", "第2章", "a&b"]),
    st.integers(min_value=1, max_value=2000),
)
_PAGE_LISTS = st.lists(st.tuples(_LABELS, _HREFS), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def assembler(tmp_path_factory: pytest.TempPathFactory) -> Assembler:
    root = copy_fixture("ja-basic", tmp_path_factory.mktemp("nav"))
    return Assembler(prepare(root)[0])


@given(page_list=_PAGE_LISTS)
def test_the_navigation_document_with_its_page_list_written_out_is_the_one_made_whole(
    assembler: Assembler, tmp_path_factory: pytest.TempPathFactory, page_list: list[tuple[str, str]]
) -> None:
    renderer = EpubRenderer((), b"", Cache(tmp_path_factory.mktemp("cache")), "key", None, MadeInBuild())
    toc = assembler.epub_toc()
    made = renderer._nav_made(assembler, toc, page_list)
    written = renderer._nav_with_pages(assembler, toc, page_list)
    assert (written is None) == _escaped(page_list)
    if written is not None:
        assert written.page == made.page
        assert written.usage == made.usage and written.features == made.features
        again = renderer._nav_with_pages(assembler, toc, page_list)  # its stand-in's, taken as made
        assert again is not None and again.page == made.page


@given(page_list=_PAGE_LISTS)
def test_the_ncx_with_its_page_list_written_out_is_the_one_made_whole(page_list: list[tuple[str, str]]) -> None:
    writer = _Writer.__new__(_Writer)
    writer.language, writer.page_list, writer.page_list_title = "ja", page_list, "ページ"
    made = writer.made_ncx(_CONTENTS).decode()
    written = writer.ncx_from_shell(writer.ncx_shell(_CONTENTS).decode())
    assert (written is None) == _escaped(page_list)
    assert written in (None, made)


def _escaped(page_list: list[tuple[str, str]]) -> bool:
    """Whether a label or a link of the list has a character XML writes escaped (or a space)."""
    return any(set(label + href) & set("&<>\"' ") for label, href in page_list)


def test_a_page_move_builds_the_same_epub_as_a_build_from_nothing(tmp_path: Path) -> None:
    """End to end, with the cache: a page added early moves every later page; the EPUB's
    navigation document and NCX are made from their stand-ins' and equal a build's from
    nothing."""
    from report.build import build

    root = copy_fixture("ja-basic", tmp_path / "edited")
    build(root, formats=("epub",))
    chapter = root / "chapters" / "01-intro.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n\n" + "追加の段落。" * 600 + "\n", encoding="utf-8")
    build(root, formats=("epub",))
    fresh = copy_fixture("ja-basic", tmp_path / "fresh")
    (fresh / "chapters" / "01-intro.md").write_text(chapter.read_text(encoding="utf-8"), encoding="utf-8")
    build(fresh, formats=("epub",))
    assert (root / "dist" / "ja-basic.epub").read_bytes() == (fresh / "dist" / "ja-basic.epub").read_bytes()


_CONTENTS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
    '<head><meta content="urn:uuid:1" name="dtb:uid"/><meta content="0" name="dtb:depth"/>'
    '<meta content="0" name="dtb:totalPageCount"/><meta content="0" name="dtb:maxPageNumber"/></head>'
    "<docTitle><text>報告書</text></docTitle><navMap>"
    '<navPoint id="nav-0"><navLabel><text>序論</text></navLabel><content src="intro.xhtml"/></navPoint>'
    "</navMap></ncx>"
).encode()
