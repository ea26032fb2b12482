"""report.render.pagebreaks: the EPUB's print page-break markers, spliced into a page where its
breaks were worked out when it was made, give byte for byte what parsing the page, putting the
markers in and writing it out again gives."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from report.assemble import EpubPage
from report.render import PageStart
from report.render.pagebreaks import Breaks, insert_page_breaks, parse_xhtml

XHTML_NS = "http://www.w3.org/1999/xhtml"
SVG_NS = "http://www.w3.org/2000/svg"
HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="ja">'
    "<head><title>章</title></head><body>"
)
# Elements whose place decides where a marker goes: containers a span may not stand in, those
# that may not come first, notes, SVG; and plain ones.
CONTAINERS = ("div", "section", "table", "tbody", "tr", "td", "ul", "li", "dl", "figure", "ruby", "aside", "svg")
LEAVES = ("p", "span", "caption", "figcaption", "dt", "rt", "h2", "img")
# A tree: (tag, has an id, text, children).
trees = st.recursive(
    st.tuples(st.sampled_from(LEAVES), st.booleans(), st.text("本文 &<>", max_size=3), st.just(())),
    lambda children: st.tuples(
        st.sampled_from(CONTAINERS), st.booleans(), st.text("表 ", max_size=2), st.lists(children, max_size=4)
    ),
    max_leaves=25,
)
# Page labels: numbers as the PDF gives them, and characters an attribute escapes, just in case.
labels = st.one_of(
    st.integers(1, 12).map(str), st.integers(1, 999).map(str), st.text("ivx12&<>\"'\t\n\r -/", min_size=1, max_size=4)
)


def _written(tree: tuple[Any, ...]) -> str:
    """The page of ``tree``, as lxml writes it once parsed (as report.assemble does)."""
    root = etree.fromstring(f"{HEAD}</body></html>".encode())
    body = root.find(f"{{{XHTML_NS}}}body")
    numbers = itertools.count(1)

    def add(parent: etree._Element, node: tuple[Any, ...], namespace: str) -> None:
        tag, has_id, text, children = node
        if tag == "svg":
            namespace = SVG_NS
        element = etree.SubElement(parent, f"{{{namespace}}}{'g' if namespace == SVG_NS and tag != 'svg' else tag}")
        if tag == "aside":
            element.set("class", "footnotes")
        if has_id:  # (some as a marker would name itself: it then takes another)
            number = next(numbers)
            element.set("id", f"page-{number}" if number % 3 == 0 else f"n{number}")
        element.text = text
        for child in children:
            add(element, child, namespace)
        element.tail = "。"

    add(body, tree, XHTML_NS)
    return _serialised(parse_xhtml(_serialised(root)))


def _serialised(root: etree._Element) -> str:
    return bytes(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)).decode()


@given(trees, st.data())
def test_markers_spliced_in_are_those_put_in_by_parsing_the_page(tree: tuple[Any, ...], data: st.DataObject) -> None:
    xhtml = _written(tree)
    page = EpubPage("chapter.xhtml", "章", xhtml)
    ids = [element.get("id") for element in parse_xhtml(xhtml).iter() if element.get("id")]
    anchors = st.sampled_from([*ids, "missing", "page-1"])  # an id no element has; a marker's
    starts = data.draw(st.lists(st.builds(PageStart, labels, anchors), max_size=8))
    root = parse_xhtml(xhtml)
    breaks = Breaks.of(root, xhtml)
    assert breaks is not None and _serialised(root) == xhtml  # (the page parsed left as it was)
    assert breaks.marked(page, starts) == _reference(page, starts)
    assert Breaks.from_value(breaks.value()) == breaks  # as the cache keeps them


def _reference(page: EpubPage, starts: list[PageStart]) -> tuple[EpubPage, list[tuple[str, str]]]:
    pages, page_list = insert_page_breaks([page], starts)
    return pages[0], page_list


@pytest.mark.parametrize(
    "xhtml",
    [
        # not as lxml writes it: marked, the page is written out anew
        f"{HEAD}<p id='a'>一</p></body></html>",
        # the EPUB namespace not declared on the page
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body><p id="a">一</p></body></html>',
    ],
)
def test_a_page_whose_breaks_cannot_be_spliced_is_marked_by_parsing_it(xhtml: str) -> None:
    from report.render.epub import _finished

    assert Breaks.of(parse_xhtml(xhtml), xhtml) is None
    page = EpubPage("chapter.xhtml", "章", xhtml)
    starts = [PageStart("7", "a")]
    marked = _finished(page, "serif").marked(starts)
    assert marked == _reference(page, starts) and 'aria-label="7"' in marked[0].xhtml
