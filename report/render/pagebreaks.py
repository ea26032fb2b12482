"""The EPUB's print page-break markers: a ``doc-pagebreak`` span before the element each printed
page begins with, and the page list that points at them.

A page is marked at every build whose printed pages moved, so its marking is worked out once,
when the page is made (:class:`Breaks`): where in its XHTML each marker would go. Marking is then
a splice of strings, not a parse and a serialisation of the page (after an edit that moves the
pages of 80 chapters, that was most of the EPUB's work). :func:`insert_page_breaks` is the
reference it must equal, byte for byte, and what marks a page whose breaks could not be worked
out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lxml import etree

from report.assemble import EpubPage
from report.render import PageStart

XHTML_NS = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
# Where a page-break marker may not stand as a sibling: it then goes before the container.
_NO_PHRASING_CHILD = frozenset(
    {"table", "thead", "tbody", "tfoot", "tr", "colgroup", "ul", "ol", "dl", "ruby", "hgroup"}
)
_NOT_FIRST = frozenset({"caption", "figcaption", "legend", "summary"})
# How libxml2 writes these characters in an attribute value (UTF-8 output: others as they are).
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
_PageList = list[tuple[str, str]]  # (label, href)


def parse_xhtml(document: str) -> etree._Element:
    """A page, parsed (no entities, no network)."""
    return etree.fromstring(document.encode(), etree.XMLParser(resolve_entities=False, no_network=True))


def insert_page_breaks(pages: Sequence[EpubPage], starts: Iterable[PageStart]) -> tuple[list[EpubPage], _PageList]:
    """Put a page-break marker before the element each printed page begins with; return
    the pages and the page list as (label, href). Pages whose first element is not in
    the EPUB (title page, printed table of contents) or is a note are left out."""
    roots = {page.file_name: parse_xhtml(page.xhtml) for page in pages}
    where: dict[str, tuple[str, etree._Element]] = {}
    for file_name, root in roots.items():
        for name, element in _by_id(root).items():
            where.setdefault(name, (file_name, element))
    used_ids = set(where)
    page_list: _PageList = []
    changed: set[str] = set()
    for start in starts:
        if start.anchor not in where:
            continue
        file_name, element = where[start.anchor]
        point = _break_point(element)
        if point is None:
            continue
        marker_id = _marker_id(start.label, used_ids)
        point.addprevious(_marker(marker_id, start.label))
        changed.add(file_name)
        page_list.append((start.label, f"{file_name}#{marker_id}"))
    out = [
        replace(page, xhtml=_serialise(roots[page.file_name])) if page.file_name in changed else page for page in pages
    ]
    return out, page_list


@dataclass(frozen=True)
class Breaks:
    """Where a page's markers go: ``offsets``, in its XHTML, of the elements a marker can stand
    before (see :func:`_break_point`); ``points``, the offset's index for each id such an element
    begins the page at; ``ids``, every id of the page's body (a marker takes none of them)."""

    offsets: tuple[int, ...]
    points: Mapping[str, int]
    ids: frozenset[str]
    prefix: str  # of the EPUB namespace, where the markers stand

    @classmethod
    def of(cls, root: etree._Element, xhtml: str) -> Breaks | None:
        """The breaks of the page ``xhtml``, parsed as ``root`` (which is left as it was). Worked
        out by putting a marker before every element one can stand before and writing the page
        out once: None unless that is the page with markers where this class puts them (the page
        is not as lxml writes it, or the markers' namespace is not declared as usual)."""
        prefix = next((p for p, uri in root.nsmap.items() if uri == EPUB_NS and p), None)
        if prefix is None or root.nsmap.get(None) != XHTML_NS:
            return None
        where = _by_id(root)
        point_of = {name: point for name, element in where.items() if (point := _break_point(element)) is not None}
        # In the order they are written, not always the ids' (a paragraph in a table's cell is
        # its own point; a later row's id puts its marker before the whole table).
        elements = sorted(set(point_of.values()), key={e: n for n, e in enumerate(root.iter())}.__getitem__)
        index = {element: n for n, element in enumerate(elements)}
        points = {name: index[point] for name, point in point_of.items()}
        label = "0"
        marker_id = _marker_id(label, set(where))
        markers = [_marker(marker_id, label) for _ in elements]
        for point, marker in zip(elements, markers, strict=True):
            point.addprevious(marker)
        try:
            written = _serialise(root)
        finally:
            for marker in markers:
                marker.getparent().remove(marker)
        pieces = written.split(_marker_text(prefix, marker_id, label))
        if len(pieces) != len(elements) + 1 or "".join(pieces) != xhtml:
            return None
        offsets = [len(pieces[0])]
        for piece in pieces[1:-1]:
            offsets.append(offsets[-1] + len(piece))
        return cls(tuple(offsets), points, frozenset(where), prefix)

    def marked(self, page: EpubPage, starts: Iterable[PageStart]) -> tuple[EpubPage, _PageList]:
        """The page with a marker before each element a printed page of ``starts`` begins with,
        and its page list: what :func:`insert_page_breaks` gives."""
        used_ids = set(self.ids)
        markers: dict[int, list[str]] = defaultdict(list)
        page_list: _PageList = []
        for start in starts:
            point = self.points.get(start.anchor)
            if point is None:
                continue
            marker_id = _marker_id(start.label, used_ids)
            markers[point].append(_marker_text(self.prefix, marker_id, start.label))
            page_list.append((start.label, f"{page.file_name}#{marker_id}"))
        if not markers:
            return page, page_list
        pieces: list[str] = []
        done = 0
        for point in sorted(markers):
            offset = self.offsets[point]
            pieces += [page.xhtml[done:offset], *markers[point]]
            done = offset
        pieces.append(page.xhtml[done:])
        return replace(page, xhtml="".join(pieces)), page_list

    def value(self) -> dict[str, Any]:
        """As the cache keeps it (see :meth:`from_value`)."""
        return {
            "offsets": list(self.offsets),
            "ids": sorted(self.ids),
            "points": sorted(self.points.items()),
            "prefix": self.prefix,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Breaks:
        """Raises KeyError, TypeError or ValueError for a value :meth:`value` did not give."""
        points = {str(name): int(index) for name, index in value["points"]}
        return cls(tuple(map(int, value["offsets"])), points, frozenset(map(str, value["ids"])), str(value["prefix"]))


def _by_id(root: etree._Element) -> dict[str, etree._Element]:
    """The elements of the page's body that have ids, by id (the first, should two share one)."""
    found: dict[str, etree._Element] = {}
    for element in root.iterfind(f".//{{{XHTML_NS}}}body//*[@id]"):
        found.setdefault(element.get("id"), element)
    return found


def _marker_id(label: str, used_ids: set[str]) -> str:
    """A marker's id, from its page's label: one no element and no other marker has (taken)."""
    marker_id = base = "page-" + re.sub(r"[^\w.-]", "-", label)
    suffix = 1
    while marker_id in used_ids:
        suffix += 1
        marker_id = f"{base}-{suffix}"
    used_ids.add(marker_id)
    return marker_id


def _marker(marker_id: str, label: str) -> etree._Element:
    return etree.Element(
        f"{{{XHTML_NS}}}span",
        {f"{{{EPUB_NS}}}type": "pagebreak", "role": "doc-pagebreak", "id": marker_id, "aria-label": label},
    )


def _marker_text(prefix: str, marker_id: str, label: str) -> str:
    """The marker as lxml writes it within a page that declares the EPUB namespace as ``prefix``."""
    escaped = label.translate(_ATTRIBUTE_ESCAPES)
    return f'<span {prefix}:type="pagebreak" role="doc-pagebreak" id="{marker_id}" aria-label="{escaped}"/>'


def _break_point(element: etree._Element) -> etree._Element | None:
    """The element a marker can stand right before: ``element`` or the container that
    holds it where a ``span`` may not stand (a table row, a list item, SVG…)."""
    for ancestor in element.iterancestors():
        if ancestor.get(f"{{{EPUB_NS}}}type") == "footnote" or "footnotes" in (ancestor.get("class") or "").split():
            return None  # notes sit at the end of the chapter, not where the page begins
    point = element
    while True:
        parent = point.getparent()
        if parent is None or parent.tag in (f"{{{XHTML_NS}}}body", f"{{{XHTML_NS}}}html"):
            break
        namespace, _, name = str(point.tag).partition("}")
        parent_name = etree.QName(parent).localname
        if namespace == "{" + XHTML_NS and name not in _NOT_FIRST and parent_name not in _NO_PHRASING_CHILD:
            break
        point = parent
    return point if point.getparent() is not None else None


def _serialise(root: etree._Element) -> str:
    return bytes(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)).decode()
