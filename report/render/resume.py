"""A part laid out again from the first page its edit can change, not from its first page.

WeasyPrint lays a document out page by page, each page from a state it keeps for it
(``context.page_maker``: where in the box tree the page begins, the page counters, the
page's side): that is how it remakes only the pages a page-based counter changed. An
author writing on at the end of a chapter changes its last page; the pages before it are
laid out as they were. So a worker keeps the last layout of each part it laid out
(:class:`LaidOut`), and a part laid out again is compared with it: the pages before the
first element that differs — with a page to spare, which a page break may look ahead
into (widows, ``break-after: avoid``) — are taken as they were, and WeasyPrint goes on
from the state it kept for the next.

A page is only taken when nothing later in the part can change it:

- every element before the change has the same tag, attributes and text, and the
  stylesheets' selectors match it as they did (a selector such as ``:nth-last-child()`` or
  ``:has()`` may restyle an element before the change);
- the elements around the change are laid out in the flow, one line after another:
  a table's columns, a float's or a multi-column box's size, a box kept whole
  (``break-inside: avoid``) and a reversed list's numbers depend on what follows;
- the page before it left no footnote or out-of-flow box for the next;
- the part has no running elements, no page total in its flow and no ``target-counter()``
  (their values come from pages laid out after the ones that show them).

The pages taken keep the layout's boxes, their elements mapped to the new document's;
the rest of the document is WeasyPrint's own: the margin boxes (running heads, folios)
of every page are made again, and the part is drawn whole.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# The elements around a change may only be laid out as blocks or inline boxes in the flow.
_FLOWING = frozenset({("block", "flow"), ("inline", "flow")})


@dataclass
class LaidOut:
    """What resuming needs of a part's layout, kept by the worker that made it."""

    # The styles it was laid out with: a layout is only resumed with equal ones. Their key is not
    # enough: a character new to the book cuts the fonts anew under the same key, and the pages
    # taken would draw with the fonts of the last cut.
    styles: object
    elements: list[Any]  # the HTML's elements, in document order
    matched: dict[int, list[Any]]  # id of an element → the selectors that matched it (see install)
    # Each page as WeasyPrint paginated it, before its margin boxes were added: the page box,
    # its children (the root's fragment, the footnote and note areas) and the fragment's children.
    pages: list[tuple[Any, tuple[Any, ...], list[Any]]]
    page_maker: list[Any]  # WeasyPrint's state at the start of each page, and one past the last
    # By page: how many footnotes the pages before it had laid out, in document order, and
    # None if they left it anything else (a footnote reported, a float broken).
    starts: list[int | None]
    # By page: each box broken over lines or pages, and the sides it was laid out without
    # (WeasyPrint's drawing clears them, and a page taken lays out its corners from them).
    broken: list[list[tuple[Any, frozenset[str]]]]


@dataclass
class _Render:
    """One layout under way: what it may take of the last, and what it keeps for the next."""

    styles: object
    last: LaidOut | None
    html: Any = None  # WeasyPrint's HTML being laid out
    elements: list[Any] = field(default_factory=list)  # its elements, in document order
    taken: int = 0  # pages taken from the last layout
    first_pass: bool = False  # WeasyPrint's first pass over the pages, resumed
    mapped: dict[int, Any] = field(default_factory=dict)  # id of an old element → the new one
    matched: dict[int, list[Any]] = field(default_factory=dict)
    footnotes: list[Any] = field(default_factory=list)  # all of the document's, in order
    starts: list[int | None] = field(default_factory=list)
    pages: list[tuple[Any, tuple[Any, ...], list[Any]]] = field(default_factory=list)
    kept: LaidOut | None = None


_RENDER: _Render | None = None


@contextmanager
def resuming(styles: object, last: LaidOut | None) -> Iterator[_Render]:
    """WeasyPrint's layouts in the block resume ``last`` where they can (see the module), and
    keep what the next needs (``render.kept``; None if it could not be resumed)."""
    global _RENDER
    _RENDER = _Render(styles, last if last is not None and last.styles == styles else None)
    try:
        yield _RENDER
    finally:
        _RENDER = None


def install() -> None:
    """Wraps WeasyPrint's layout of a document, of its pages and of one page, and the matching
    of selectors (WeasyPrint keeps the computed styles only, which it computes as it goes)."""
    import cssselect2
    import weasyprint.document
    import weasyprint.layout
    import weasyprint.layout.page

    match = cssselect2.Matcher.match

    def match_recorded(matcher: Any, element: Any) -> Any:
        found = match(matcher, element)
        if _RENDER is not None:  # each match holds its declarations: the same parsed sheets, the same objects
            _RENDER.matched.setdefault(id(element.etree_element), []).append(found)
        return found

    cssselect2.Matcher.match = match_recorded

    layout_document = weasyprint.document.layout_document
    make_all_pages = weasyprint.layout.make_all_pages
    remake_page = weasyprint.layout.page.remake_page

    def layout_resumed(html: Any, root_box: Any, context: Any, *rest: Any) -> Iterator[Any]:
        render = _RENDER
        if render is not None:
            _begin(render, html, context)
        yield from layout_document(html, root_box, context, *rest)
        if render is not None:
            render.kept = _kept(render, context)

    def pages_resumed(context: Any, root_box: Any, html: Any, pages: list[Any]) -> Iterator[Any]:
        render = _RENDER
        if render is not None and render.taken and not pages:  # the first pass
            pages = _restore(render, context)
            render.first_pass = True
        paginated = []
        for page in make_all_pages(context, root_box, html, pages):
            paginated.append((page, tuple(page.children), list(page.children[0].children)))
            yield page
        if render is not None:
            render.pages = paginated
            render.first_pass = False

    def page_recorded(index: int, context: Any, *rest: Any) -> Any:
        made = remake_page(index, context, *rest)
        render = _RENDER
        if render is not None and render.first_pass and (made[1] is not None or context.reported_footnotes):
            # WeasyPrint's first pass makes every page (it has none yet), even one that only
            # holds the footnotes the page before had no room for: so does a resumed one.
            context.page_maker[index + 1][-1]["content_changed"] = True
        if render is not None:
            starts = render.starts  # a later pass may remake one page of many
            starts.extend([None] * (index + 2 - len(starts)))
            starts[index + 1] = _start(render, context)
        return made

    weasyprint.document.layout_document = layout_resumed
    weasyprint.layout.make_all_pages = pages_resumed
    weasyprint.layout.page.remake_page = page_recorded


def _begin(render: _Render, html: Any, context: Any) -> None:
    render.html = html
    render.elements = elements = list(html.etree_element.iter())
    render.footnotes = list(context.footnotes)
    render.starts = [0]
    last = render.last
    if last is None:
        return
    changed = _first_change(last, elements, render.matched)
    if context.target_collector.counter_lookup_items or not _flowing_around(last, elements, changed, context):
        return
    taken = min(_first_page_showing(last, changed), len(last.pages)) - 1  # a page to spare
    while taken > 0 and last.starts[taken] is None:
        taken -= 1
    if taken > 0:
        render.taken = taken
        render.mapped = {id(old): new for old, new in zip(last.elements[:changed], elements, strict=False)}


def _first_change(last: LaidOut, elements: list[Any], matched: dict[int, list[Any]]) -> int:
    """The index of the first element that differs from the last layout's, in itself or in the
    selectors that match it (or of the first element one of them lacks)."""
    for index, (old, new) in enumerate(zip(last.elements, elements, strict=False)):
        if (
            old.tag != new.tag
            or old.attrib != new.attrib
            or old.text != new.text
            or old.tail != new.tail
            or last.matched.get(id(old)) != matched.get(id(new))
        ):
            return index
    return min(len(elements), len(last.elements))


def _flowing_around(last: LaidOut, elements: list[Any], changed: int, context: Any) -> bool:
    """Whether every element that holds the changed one is laid out in the flow, line after
    line, so that what comes before the change is laid out as if nothing followed it."""
    if changed == 0:
        return False
    tree = elements if changed < len(elements) else last.elements
    if changed >= len(tree):  # nothing differs
        return True
    # Its holders come before it, as they are in the new document (their own attributes and
    # text are the same).
    parents = {id(child): number for number, parent in enumerate(tree[:changed]) for child in parent}
    holder = parents.get(id(tree[changed]))
    while holder is not None:
        style = context.style_for(elements[holder])
        if (
            tuple(style["display"][:2]) not in _FLOWING
            or style["float"] != "none"
            or style["position"] not in ("static", "relative")
            or style["column_width"] != "auto"
            or style["column_count"] != "auto"
            or style["break_inside"] != "auto"
            or elements[holder].get("reversed") is not None
        ):
            return False
        holder = parents.get(id(tree[holder]))
    return True


def _first_page_showing(last: LaidOut, changed: int) -> int:
    """The first page of the last layout with a box of the changed element or of one after it."""
    first_changed = {id(element) for element in last.elements[changed:]}
    for number, (_, children, _) in enumerate(last.pages):
        if any(id(box.element) in first_changed for child in children for box in child.descendants(placeholders=True)):
            return number
    return len(last.pages)


def _restore(render: _Render, context: Any) -> list[Any]:
    """The pages taken, and WeasyPrint's state as it was at the start of the next."""
    from weasyprint.layout.page import set_page_type_computed_styles

    last = render.last
    assert last is not None
    taken = render.taken
    page_maker = copy.deepcopy(last.page_maker[: taken + 1])
    for number, (_, _, _, page_state, remake_state) in enumerate(page_maker):
        page_state[1]["pages"] = [0]  # a first pass does not know the page total yet
        remake_state.update(content_changed=number == taken, pages_wanted=False)
    context.page_maker = page_maker
    laid_notes = last.starts[taken]
    assert laid_notes is not None
    context.footnotes = render.footnotes[laid_notes:]
    render.starts = last.starts[: taken + 1]
    pages = []
    for (page, children, root_children), broken in zip(last.pages[:taken], last.broken, strict=False):
        for box, sides in broken:
            box.remove_decoration_sides = set(sides)
        root = children[0].copy()
        root.children = list(root_children)
        taken_page = page.copy()
        taken_page.children = (root, *children[1:])
        for box in taken_page.descendants(placeholders=True):
            box.element = render.mapped.get(id(box.element), box.element)
        # The styles of its margin boxes, which WeasyPrint sets as it makes a page.
        set_page_type_computed_styles(page.page_type, render.html, context.style_for)
        pages.append(taken_page)
    return pages


def _start(render: _Render, context: Any) -> int | None:
    """How many footnotes the pages laid out so far took, in document order; None if they left
    the next page more than the footnotes after them."""
    laid = len(render.footnotes) - len(context.footnotes)
    in_order = context.footnotes == render.footnotes[laid:]
    return laid if in_order and not context.reported_footnotes and not context.broken_out_of_flow else None


def _kept(render: _Render, context: Any) -> LaidOut | None:
    """What the next layout of the part may resume; None if no page of it may be taken."""
    running = any(boxes for pages in context.running_elements.values() for boxes in pages.values())
    wanted = any(state["pages_wanted"] or state["content_lookups"] for *_, state in context.page_maker)
    if running or wanted or context.target_collector.counter_lookup_items:
        return None
    broken = [
        [
            (box, frozenset(box.remove_decoration_sides))
            for child in children
            for box in child.descendants(placeholders=True)
            if box.remove_decoration_sides
        ]
        for _, children, _ in render.pages
    ]
    return LaidOut(
        render.styles,
        render.elements,
        render.matched,
        render.pages,
        context.page_maker,
        render.starts,
        broken,
    )
