"""A part laid out again from the first page its edit can change, not from its first page.

WeasyPrint lays a document out page by page, each page from a state it keeps for it
(``context.page_maker``: where in the box tree the page begins, the page counters, the
page's side): that is how it remakes only the pages a page-based counter changed. An
author writing on at the end of a chapter changes its last page; the pages before it are
laid out as they were. So a worker keeps the last layout of each part it laid out
(:class:`LaidOut`), and a part laid out again is compared with it: the pages before the
first element that differs are taken as they were, and WeasyPrint goes on from the state
it kept for the next. A page is taken only if making it looked at nothing from the first
element that differs on: a page break looks ahead at the boxes after it (the one that did
not fit, those a ``break-after: avoid`` keeps with it, the next one's ``break-before``), and
a paragraph's lines at all of its lines (widows). So the layout records, for each page,
the last element it looked at (see ``_look_at``): the element itself for a box of blocks,
its last descendant for any other box (a paragraph, a table, an image).

A page is only taken when nothing later in the part can change it:

- every element before the change has the same tag, attributes and text, and the
  stylesheets' selectors match it as they did (a selector such as ``:nth-last-child()`` or
  ``:has()`` may restyle an element before the change);
- the elements around the change are laid out in the flow, one line after another:
  a table's columns, a float's size, a box kept whole (``break-inside: avoid``) and a
  reversed list's numbers depend on what follows. So does the size of a multi-column box on
  the page it ends on (its columns balanced), but not on the pages before: columns filled to
  the page's bottom (an index whose entry gets a line more takes the pages before it). A change
  inside an element that holds text or an inline element before it (a sentence added to a
  paragraph after its first link) counts as a change of that element: its lines are laid out
  again from its first (a block added to it would put what comes before in an anonymous block
  of its own: another box tree);
- the page before it left no footnote or out-of-flow box for the next;
- the part has no running elements, no page total in its flow and no ``target-counter()``
  (their values come from pages laid out after the ones that show them).

The pages after the change are laid out anew until the layout catches up with the last one:
when a page made anew leaves WeasyPrint in the state the last layout's next page began from
(WeasyPrint compares them, and keeps its entry when they are the same), and that page and all
after it hold only what is the same in both documents (see ``_caught_up``), they are taken as
they were too: a sentence added to a paragraph fills the room a page had to spare before a
heading kept with what follows or a code block kept whole, and the rest of the chapter is not
laid out again. So for a paragraph added or taken out: the state then differs from the last
layout's only in which of a box's blocks the page begins at, one further or one back (the
states of the pages taken are moved as it is).

The pages taken, before the change or once caught up with it, keep the layout's boxes, their
elements mapped to the new document's, and their margin boxes (running heads, folios: made
from the page's counters and strings) and backgrounds as they were laid out, unless a named
string they show changed (a heading before them rewritten: see _as_laid_out); the rest of the
document is WeasyPrint's own. The pages taken are not drawn again either (see :mod:`report.render.redraw`).
Whether or not a page is taken, an element whose style is made of what it was made of in the
last layout (its parent's style, its own declarations, the selectors that match it) takes
that layout's computed style (see _style_key).

An edit that only changes inline elements' text or attributes — a page number's stand-in
with a digit more, an index entry's page list with a range more ("0–0" → "0–0, 0") and an
id more — takes every page when each paragraph holding one keeps its lines: its lines alone
are laid out again (from the new document's boxes), and if as many come, each where it was
and as high, nothing after them moves (not even in columns, whose breaks WeasyPrint decides
by heights). An index's entries change all through it, so resuming it from the first change
would take nothing; this way it takes all its pages when no entry got a line more.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

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
    # Where the last page's flow ended (WeasyPrint's ``context.page_bottom``), which the margin
    # boxes are laid out with: a layout that takes every page makes none to set it.
    page_bottom: float | None = None
    margins: list[tuple[Any, ...]] = field(default_factory=list)  # by page: its margin boxes
    # By page: the index (in ``elements``) of the last element making it looked at (see _look_at).
    looked: list[float] = field(default_factory=list)
    styled: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # see _style_key
    # By id of an element: the counters' values as its box was built (see _counted).
    counters: dict[int, Any] = field(default_factory=dict)
    begins: list[int] = field(default_factory=list)  # by page: the element it begins in (see _begins_in)
    places: dict[int, int] = field(default_factory=dict)  # id of an element → its index in ``elements``
    strings: list[tuple[Any, ...]] = field(default_factory=list)  # by page (see _strings_by_page)


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
    # id of a block of the last layout → its lines laid out again (see _relaid_lines)
    lines: dict[int, list[Any]] = field(default_factory=dict)
    holders: set[int] = field(default_factory=set)  # ids of the boxes that hold those blocks
    # By page taken: the page, if it holds no lines laid out again (its margin boxes and
    # backgrounds are then the last layout's), else None.
    whole: list[Any] = field(default_factory=list)
    places: dict[int, int] = field(default_factory=dict)  # id of an element → its index
    ends: list[int] = field(default_factory=list)  # by element: the index of its last descendant
    looked: list[float] = field(default_factory=list)  # by page (see LaidOut.looked)
    looking: float = -1  # the last element the page being made looked at so far
    styled: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # see _style_key
    counters: dict[int, Any] = field(default_factory=dict)  # see LaidOut.counters
    begins: list[int] = field(default_factory=list)  # see LaidOut.begins
    root_box: Any = None
    # Where the pages after the change may be the last layout's again (see _caught_up): the
    # element the layout is made anew from, the pages passed to WeasyPrint (those taken, then a
    # place for each page of the last layout, filled once caught up), and the last layout's
    # states those pages begin from, which WeasyPrint compares with its own.
    anew_from: int = 0
    following: list[Any] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    unchanged_from: int | None = None  # see _unchanged_from (None: not worked out yet)
    not_before: int = 0  # no page before it may be caught up with (one after it holds a change)
    caught_up: int = 0  # pages after the change taken from the last layout
    strings: list[tuple[Any, ...]] | None = None  # by page (see _strings_by_page)
    as_laid_out: set[int] = field(default_factory=set)  # ids of the pages whose margin boxes were taken
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
    """Wraps WeasyPrint's layout of a document, of its pages and of one page, the matching of
    selectors (WeasyPrint keeps the computed styles only, which it computes as it goes), and
    the computing of an element's style (taken from the last layout: see _style_key)."""
    import cssselect2
    import weasyprint.css
    import weasyprint.document
    import weasyprint.formatting_structure.build
    import weasyprint.layout
    import weasyprint.layout.page
    from weasyprint.formatting_structure import boxes

    match = cssselect2.Matcher.match

    def match_recorded(matcher: Any, element: Any) -> Any:
        found = match(matcher, element)
        if _RENDER is not None:  # each match holds its declarations: the same parsed sheets, the same objects
            _RENDER.matched.setdefault(id(element.etree_element), []).append(found)
        return found

    cssselect2.Matcher.match = match_recorded
    set_computed_styles = weasyprint.css.StyleFor.set_computed_styles

    def styles_taken(
        style_for: Any,
        element: Any,
        parent: Any,
        root: Any = None,
        pseudo_type: Any = None,
        base_url: Any = None,
        target_collector: Any = None,
    ) -> None:
        render = _RENDER
        if render is None or pseudo_type is not None or not isinstance(element, ElementTree.Element):
            # (A pseudo-element's, or a page's: computed as WeasyPrint does.)
            set_computed_styles(style_for, element, parent, root, pseudo_type, base_url, target_collector)
            return
        computed = style_for.get_computed_styles()
        key = _style_key(render, element, None if parent is None else computed[parent, None], base_url)
        found = render.last.styled.get(key) if render.last is not None else None
        if found is None:
            set_computed_styles(style_for, element, parent, root, pseudo_type, base_url, target_collector)
            found = computed[element, None]
        else:
            computed[element, None] = found
            if target_collector and found["anchor"]:  # as WeasyPrint's own does
                target_collector.collect_anchor(found["anchor"])
        render.styled[key] = found

    weasyprint.css.StyleFor.set_computed_styles = styles_taken

    layout_document = weasyprint.document.layout_document
    make_all_pages = weasyprint.layout.make_all_pages
    remake_page = weasyprint.layout.page.remake_page

    def layout_resumed(html: Any, root_box: Any, context: Any, *rest: Any) -> Iterator[Any]:
        render = _RENDER
        if render is not None:
            _begin(render, html, root_box, context)
        margins = []
        for page in layout_document(html, root_box, context, *rest):
            margins.append(tuple(child for child in page.children if isinstance(child, boxes.MarginBox)))
            yield page
        if render is not None:
            render.kept = _kept(render, context, margins)

    def pages_resumed(context: Any, root_box: Any, html: Any, pages: list[Any]) -> Iterator[Any]:
        render = _RENDER
        if render is not None and (render.taken or render.anew_from) and not pages:  # the first pass
            pages = _restore(render, context)
            render.first_pass = True
        paginated = []
        for page in make_all_pages(context, root_box, html, pages):
            paginated.append((page, tuple(page.children), list(page.children[0].children)))
            yield page
        if render is not None:
            render.pages = paginated
            render.first_pass = False
            if render.caught_up:  # (the margin boxes are laid out from the last page's bottom)
                assert render.last is not None
                context.page_bottom = render.last.page_bottom

    def page_recorded(index: int, context: Any, *rest: Any) -> Any:
        if _RENDER is not None:
            _RENDER.looking = -1
        made = remake_page(index, context, *rest)
        render = _RENDER
        if render is not None:
            starts = render.starts  # a later pass may remake one page of many
            starts.extend([None] * (index + 2 - len(starts)))
            starts[index + 1] = _start(render, context)
            looked = render.looked
            looked.extend([-1] * (index + 1 - len(looked)))
            # The last page looked at the end of the document: anything added after it is its.
            looked[index] = render.looking if made[1] is not None else math.inf
            begins = render.begins
            begins.extend([-1] * (index + 2 - len(begins)))
            begins[index + 1] = _begins_in(render, context.page_maker[index + 1][0])
        if (
            render is not None
            and render.first_pass
            and (made[1] is not None or context.reported_footnotes)
            and not _caught_up(render, context, index + 1)
        ):
            # WeasyPrint's first pass makes every page (it has none yet), even one that only
            # holds the footnotes the page before had no room for: so does a resumed one, but
            # where its pages caught up with the last layout's.
            context.page_maker[index + 1][-1]["content_changed"] = True
        return made

    element_to_box = weasyprint.formatting_structure.build.element_to_box

    def element_to_box_counted(
        element: Any,
        style_for: Any,
        get_image_from_uri: Any,
        base_url: Any,
        target_collector: Any,
        counter_style: Any,
        footnotes: Any,
        state: Any = None,
    ) -> Any:
        render = _RENDER
        if render is not None and state is not None:
            render.counters[id(element)] = _counted(state)
        return element_to_box(
            element, style_for, get_image_from_uri, base_url, target_collector, counter_style, footnotes, state
        )

    make_margin_boxes = weasyprint.layout.make_margin_boxes
    layout_backgrounds = weasyprint.layout.layout_backgrounds

    def margin_boxes_taken(context: Any, page: Any, state: Any) -> Iterator[Any]:
        render = _RENDER
        index = context.current_page - 1  # (WeasyPrint sets it before it makes a page's margin boxes)
        if render is not None and _as_laid_out(render, context, index, page):
            assert render.last is not None
            render.as_laid_out.add(id(page))
            return iter(render.last.margins[index])
        return iter(make_margin_boxes(context, page, state))

    def backgrounds_taken(page: Any, get_image_from_uri: Any) -> None:
        render = _RENDER  # (WeasyPrint lays out a page's backgrounds right after its margin boxes)
        if render is None or id(page) not in render.as_laid_out:
            layout_backgrounds(page, get_image_from_uri)

    _look_at_what_layout_does(boxes)
    weasyprint.formatting_structure.build.element_to_box = element_to_box_counted
    weasyprint.document.layout_document = layout_resumed
    weasyprint.layout.make_all_pages = pages_resumed
    weasyprint.layout.page.remake_page = page_recorded
    weasyprint.layout.make_margin_boxes = margin_boxes_taken
    weasyprint.layout.layout_backgrounds = backgrounds_taken


# The attributes WeasyPrint reads an element's own declarations from (see its
# find_style_attributes: the style attribute, its language, its anchor, an SVG's size), with
# presentational hints off, as the workers render (WeasyPrint's default; with them on, an
# element's width, align, bgcolor... would make its style too).
_STYLED_BY = ("style", "lang", "id", "name", "width", "height")


def _style_key(render: _Render, element: Any, parent_style: Any, base_url: Any) -> tuple[Any, ...]:
    """What an element's computed style is made of: its parent's style (the very object: one
    taken from the last layout, if its own was), its own declarations, and the declarations of
    the selectors that matched it (the stylesheets' parsed rules, the same objects from one
    layout to the next). An element of the last layout with the same key is given its style:
    the new document's is the same, and computing it again (then each of its properties as
    layout asks for them) took a tenth of a chapter's resumed layout."""
    matched = render.matched.get(id(element), ())
    return (
        id(parent_style),
        base_url,
        element.tag,
        tuple(element.get(name) for name in _STYLED_BY),
        tuple((match[0], match[1], match[2], id(match[3][0])) for found in matched for match in found),
    )


def _look_at_what_layout_does(boxes: Any) -> None:
    """Every box WeasyPrint lays out (it resolves its percentages first, in every layout module),
    and each box whose ``break-before`` or page name a page break looks at, is looked at."""
    import weasyprint.layout.block
    import weasyprint.layout.percent

    resolve_percentages = weasyprint.layout.percent.resolve_percentages

    def resolve_looked_at(box: Any, *rest: Any, **named: Any) -> Any:
        if _RENDER is not None:
            _look_at(_RENDER, box, boxes)
        return resolve_percentages(box, *rest, **named)

    for name, module in list(sys.modules.items()):
        if (
            name.startswith("weasyprint.layout.")
            and getattr(module, "resolve_percentages", None) is resolve_percentages
        ):
            module.resolve_percentages = resolve_looked_at  # type: ignore[attr-defined]
    weasyprint.layout.percent.resolve_percentages = resolve_looked_at
    for between in ("block_level_page_break", "block_level_page_name"):
        looked_between = getattr(weasyprint.layout.block, between)

        def both_looked_at(before: Any, after: Any, _between: Any = looked_between) -> Any:
            if _RENDER is not None:
                _look_at(_RENDER, before, boxes)
                _look_at(_RENDER, after, boxes)
            return _between(before, after)

        setattr(weasyprint.layout.block, between, both_looked_at)


def _look_at(render: _Render, box: Any, boxes: Any) -> None:
    """The page being made looked at ``box``: at its element, if it is a box of blocks (each
    looked at as it is laid out), else at all of the element's descendants."""
    at = render.places.get(id(box.element)) if box is not None else None
    if at is None:
        return
    looked = at if _of_blocks(box, boxes) else render.ends[at]
    if looked > render.looking:
        render.looking = looked


def _as_laid_out(render: _Render, context: Any, index: int, page: Any) -> bool:
    """Whether ``page`` is the ``index``-th page taken (from ``render.last``: before the change,
    or once caught up with it), with no lines laid out again, and shows the named strings it
    showed (a running head's: a heading changed on a page before it changes those it carries).
    Its margin boxes and backgrounds are then the last layout's: made again for the pages caught
    up, they took a third of a real book's resumed chapter (rust-lang-ja/book-ja's
    ch08-02-strings, edited in its first paragraph: 160 ms of processor time, 106 taken)."""
    if not (index < len(render.whole) and page is render.whole[index]):
        return False
    assert render.last is not None
    if render.strings is None:  # (WeasyPrint has collected them once every page is made)
        render.strings = _strings_by_page(context.string_set, len(render.pages))
    return render.strings[index] == render.last.strings[index]


def _strings_by_page(string_set: Any, pages: int) -> list[tuple[Any, ...]]:
    """By page: the named strings its margin boxes may show (see WeasyPrint's
    get_string_set_for): of each name, those set on the page and the last one set before it."""
    carried: dict[str, Any] = {}
    by_page = []
    for number in range(1, pages + 1):
        on_page = {name: tuple(values[number]) for name, values in string_set.items() if values.get(number)}
        by_page.append((tuple(sorted(carried.items())), tuple(sorted(on_page.items()))))
        carried.update((name, values[-1]) for name, values in on_page.items())
    return by_page


def _begin(render: _Render, html: Any, root_box: Any, context: Any) -> None:
    render.html = html
    render.elements = elements = list(html.etree_element.iter())
    render.places = {id(element): index for index, element in enumerate(elements)}
    render.ends = _ends(html.etree_element)
    render.footnotes = list(context.footnotes)
    render.starts = [0]
    render.begins = [0]
    render.root_box = root_box
    last = render.last
    if last is None or context.target_collector.counter_lookup_items:
        return
    changed = _first_change(last, elements, render.matched)
    texts = _texts_changed(last, elements, render.matched, changed) if changed < len(elements) else None
    relaid = _relaid_lines(last, elements, texts, root_box, context) if texts else None
    if (
        relaid is not None
        and last.page_maker[len(last.pages)][0] is None
        and last.starts[len(last.pages)] is not None
        and not _notes_alone_from(last, 1)
    ):
        render.taken = len(last.pages)
        render.lines, render.holders = relaid
        render.mapped = {id(old): new for old, new in zip(last.elements, elements, strict=True)}
        return
    anew_from = _laid_out_anew_from(last, elements, changed, context)
    render.anew_from = changed if anew_from is None else anew_from
    if anew_from is None:
        return
    changed = anew_from
    showing = min(_first_page_showing(last, changed), len(last.pages))
    taken = next((number for number, looked in enumerate(last.looked[:showing]) if looked >= changed), showing)
    while taken > 0 and last.starts[taken] is None:
        taken -= 1
    if taken > 0:
        render.taken = taken
        render.mapped = {id(old): new for old, new in zip(last.elements[:changed], elements, strict=False)}


def _ends(root: Any) -> list[int]:
    """By element, in document order (as ``root.iter()`` gives them): the index of its last
    descendant (its own if it has none)."""
    ends = [0]
    stack = [(0, iter(root))]
    while stack:
        start, children = stack[-1]
        child = next(children, None)
        if child is None:
            ends[start] = len(ends) - 1
            stack.pop()
        else:
            stack.append((len(ends), iter(child)))
            ends.append(0)
    return ends


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


def _texts_changed(last: LaidOut, elements: list[Any], matched: dict[int, list[Any]], first: int) -> list[int] | None:
    """The indices of the elements whose own text or attributes differ from the last layout's
    (an index entry's page list: its stand-in, and the ids it lists), if nothing else does: no
    element added, no text after an element, no selector's match. Those before ``first``, the
    first change (see _first_change), are the same in every way."""
    if len(elements) != len(last.elements):
        return None
    changed = []
    for index in range(first, len(elements)):
        old, new = last.elements[index], elements[index]
        if old.tag != new.tag or old.tail != new.tail or last.matched.get(id(old)) != matched.get(id(new)):
            return None
        if old.text != new.text or old.attrib != new.attrib:
            changed.append(index)
    return changed


def _relaid_lines(
    last: LaidOut, elements: list[Any], changed: list[int], root_box: Any, context: Any
) -> tuple[dict[int, list[Any]], set[int]] | None:
    """For each block of the last layout whose lines hold a changed element, its lines laid
    out again with the new text — if every such block gets as many lines, each where it was
    and as high (a block broken over pages or columns gets all of its lines, more than the
    piece had) — and the ids of the boxes that hold those blocks. None if one does not, or if
    a block's lines may depend on more than its text (see _lines_alone), a float may narrow
    them, or they hold a box out of the flow."""
    from weasyprint.formatting_structure import boxes
    from weasyprint.layout.inline import iter_line_boxes

    if any(tuple(context.style_for(elements[index])["display"][:2]) != ("inline", "flow") for index in changed):
        return None  # a paragraph's own text: told before walking the boxes
    old = _Tree([child for _, children, _ in last.pages for child in children], {id(last.elements[i]) for i in changed})
    new = _Tree([root_box], {id(elements[i]) for i in changed})
    relaid: dict[int, list[Any]] = {}
    holders: set[int] = set()
    for index in changed:
        block, new_block = old.lines_block(last.elements[index], boxes), new.lines_block(elements[index], boxes)
        if block is None or new_block is None or len(new_block.children) != 1:
            return None
        if id(block) in relaid:
            continue
        held = old.holders(block)
        # Laid out with the block, or out of the lines: an absolute or running box, a float, a note.
        out_of_flow = not all(box.is_in_normal_flow() for box in new_block.descendants())
        if out_of_flow or not all(_lines_alone(box, boxes) for box in held):
            return None
        lines = []
        context.create_block_formatting_context()  # of its own: no float narrows it (see _Tree)
        # No page is made yet; the lines, and the inline blocks in them, are laid out with no
        # page bottom (-inf below it), but WeasyPrint subtracts that from the page's.
        context.page_bottom = last.page_bottom
        try:
            first = block.children[0].position_y
            for line, resume_at in iter_line_boxes(
                context, new_block.children[0], first, -float("inf"), None, block, [], [], None, None
            ):
                line.resume_at = resume_at  # as WeasyPrint's own block layout sets it
                lines.append(line)
        finally:
            context.finish_block_formatting_context()
        if _heights(lines) != _heights(block.children):
            return None
        relaid[id(block)] = lines
        holders.update(id(box) for box in held[1:])
    return relaid, holders


def _heights(lines: list[Any]) -> list[tuple[float, float]]:
    return [(line.position_y, line.height) for line in lines]


class _Tree:
    """Boxes under the given tops: each one's parent, the boxes of the wanted elements, and
    the boxes that share a top (a page's flow, a document) with a float."""

    def __init__(self, tops: list[Any], wanted: set[int]) -> None:
        self.parents: dict[int, Any] = {}
        self.boxes: dict[int, list[Any]] = {}
        self.floated: set[int] = set()
        for top in tops:
            under = list(top.descendants(placeholders=True))
            for box in under:
                if id(box.element) in wanted:
                    self.boxes.setdefault(id(box.element), []).append(box)
                for child in getattr(box, "children", ()):
                    self.parents[id(child)] = box
            if any(box.is_floated() for box in under if hasattr(box, "is_floated")):
                self.floated.update(id(box) for box in under)

    def lines_block(self, element: Any, boxes: Any) -> Any:
        """The one box whose lines hold all of the element's boxes through inline boxes only,
        with nothing else than lines, and no float beside it; None if there is no such box."""
        found = None
        for box in self.boxes.get(id(element), ()):
            holder = box
            while isinstance(holder, (boxes.InlineBox, boxes.TextBox, boxes.LineBox)):
                holder = self.parents.get(id(holder))
            if holder is None or (found is not None and holder is not found):
                return None
            found = holder
        if found is None or id(found) in self.floated:
            return None
        return found if all(isinstance(child, boxes.LineBox) for child in found.children) else None

    def holders(self, block: Any) -> list[Any]:
        """The block and the boxes that hold it, up to its top."""
        held = [block]
        while (parent := self.parents.get(id(held[-1]))) is not None:
            held.append(parent)
        return held


def _lines_alone(box: Any, boxes: Any) -> bool:
    """Whether a block holding relaid lines is laid out from its width alone, as one more
    block in the flow (not a table cell, nor shrunk to fit as an inline block or a positioned
    box is), styles no first line or letter, and names nothing from its text that the layout
    collects (a running head's string, a bookmark's label)."""
    style = box.style
    return (
        type(box) is boxes.BlockBox
        and box.first_line_style is None
        and box.first_letter_style is None
        and style["position"] in ("static", "relative")
        and style["string_set"] == "none"
        and style["bookmark_level"] == "none"
    )


def _laid_out_anew_from(last: LaidOut, elements: list[Any], changed: int, context: Any) -> int | None:
    """The element the layout is made anew from: the changed one, or the outermost of the
    elements holding it that hold text or an inline element before it (a sentence added to a
    paragraph after its first link or code: the paragraph's lines are all laid out again, and
    a block added to it would put what comes before in an anonymous block of its own). None
    unless every element holding that one is laid out in the flow, line after line, so that
    what comes before it is laid out as if nothing followed it."""
    if changed == 0:
        return None
    tree = elements if changed < len(elements) else last.elements
    if changed >= len(tree):  # nothing differs
        return changed
    # Its holders come before it, as they are in the new document (their own attributes and
    # text are the same).
    parents = {id(child): number for number, parent in enumerate(tree[:changed]) for child in parent}
    holder = parents.get(id(tree[changed]))
    while holder is not None and _inline_before(tree, holder, changed, elements, context):
        changed, holder = holder, parents.get(id(tree[holder]))
    if changed == 0:
        return None
    while holder is not None:
        if not _in_flow(context.style_for(elements[holder]), elements[holder], columns=True):
            return None
        holder = parents.get(id(tree[holder]))
    return changed


def _in_flow(style: Any, element: Any, columns: bool = False) -> bool:
    """Whether an element is laid out in the flow, line after line, whatever follows it: not a
    table (its columns), a float, a positioned or multi-column box (their size), a box kept
    whole (``break-inside: avoid``), or a reversed list (its numbers count down to the last).

    With ``columns``, a multi-column box is, up to the page the change is on (an index whose
    entry gets a line more): on each page before it, its columns are filled to the page's
    bottom, whatever follows (WeasyPrint balances them only on the page where all that is left
    of them fits, which holds the change or what comes after it). Its pages from the change
    on are laid out anew to its end: they are not taken again (see _caught_up)."""
    return (
        tuple(style["display"][:2]) in _FLOWING
        and style["float"] == "none"
        and style["position"] in ("static", "relative")
        and (columns or (style["column_width"] == "auto" and style["column_count"] == "auto"))
        and style["break_inside"] == "auto"
        and element.get("reversed") is None
    )


def _inline_before(tree: list[Any], holder: int, changed: int, elements: list[Any], context: Any) -> bool:
    """Whether the element holding the changed one holds text or an inline element before it."""
    element = tree[holder]
    if (element.text or "").strip():
        return True
    places = {id(child): index for index, child in enumerate(tree[holder:changed], start=holder)}
    for child in element:
        if child is tree[changed]:
            break
        if (child.tail or "").strip():
            return True
        if isinstance(child.tag, str) and context.style_for(elements[places[id(child)]])["display"][0] == "inline":
            return True
    return False


def _first_page_showing(last: LaidOut, changed: int) -> int:
    """The first page of the last layout with a box of the changed element or of one after it."""
    first_changed = {id(element) for element in last.elements[changed:]}
    for number, (_, children, _) in enumerate(last.pages):
        if any(id(box.element) in first_changed for child in children for box in child.descendants(placeholders=True)):
            return number
    return len(last.pages)


def _restore(render: _Render, context: Any) -> list[Any]:
    """The pages taken, and WeasyPrint's state as it was at the start of the next."""

    last = render.last
    assert last is not None
    taken = render.taken
    # The states of the pages after those taken are the last layout's, each page made anew
    # unless WeasyPrint's own state for it is the same (see _caught_up). With no page taken,
    # the first state is WeasyPrint's.
    page_maker = (context.page_maker[:1] if not taken else []) + copy.deepcopy(
        last.page_maker[1 if not taken else 0 : len(last.pages) + 1]
    )
    for number, (_, _, _, page_state, remake_state) in enumerate(page_maker):
        page_state[1]["pages"] = [0]  # a first pass does not know the page total yet
        # Each page after those taken, not the state after the last page (no page begins there,
        # and WeasyPrint leaves it unmarked): marked, it had WeasyPrint lay the pages out again,
        # and that pass, finding the last page but one unchanged, dropped a last page that held
        # only the footnotes the page before had no room for.
        remake_state.update(content_changed=taken <= number < len(last.pages), pages_wanted=False)
    context.page_maker = page_maker
    render.states = list(page_maker)
    context.page_bottom = last.page_bottom
    laid_notes = last.starts[taken]
    assert laid_notes is not None
    context.footnotes = render.footnotes[laid_notes:]
    render.starts = last.starts[: taken + 1]
    render.looked = last.looked[:taken]
    render.begins = last.begins[: taken + 1]
    pages = [_page_again(render, context, number, render.mapped) for number in range(taken)]
    for number, page in enumerate(pages):
        _note_whole(render, number, page)
    render.following = pages + [None] * (len(last.pages) - taken)
    return render.following


def _note_whole(render: _Render, number: int, page: Any) -> None:
    """Notes the last layout's ``number``-th page, taken as ``page``, as whole if no lines were
    laid out again under it (see _page_again): its margin boxes and backgrounds may then be the
    last layout's (see _as_laid_out)."""
    assert render.last is not None
    _, children, root_children = render.last.pages[number]
    root = page.children[0]
    relaid = any(
        a is not b for a, b in zip((*root.children, *page.children[1:]), (*root_children, *children[1:]), strict=True)
    )
    render.whole.extend([None] * (number + 1 - len(render.whole)))
    render.whole[number] = None if relaid else page


def _page_again(render: _Render, context: Any, number: int, mapped: dict[int, Any]) -> Any:
    """The last layout's ``number``-th page for the new document: the boxes broken on it given
    back the sides they were laid out without, the lines laid out again under its boxes (see
    _with_lines), its boxes taken (see _take_boxes), and the styles of its margin boxes set
    (WeasyPrint sets them as it makes a page)."""
    from weasyprint.layout.page import set_page_type_computed_styles

    last = render.last
    assert last is not None
    page, children, root_children = last.pages[number]
    for box, sides in last.broken[number]:
        box.remove_decoration_sides = set(sides)
    root = children[0].copy()
    root.children = [_with_lines(render, child) for child in root_children]
    again = page.copy()
    again.children = (root, *(_with_lines(render, child) for child in children[1:]))
    _take_boxes(again, mapped)
    set_page_type_computed_styles(page.page_type, render.html, context.style_for)
    return again


def _take_boxes(page: Any, mapped: dict[int, Any]) -> None:
    """The boxes of a page of the last layout, for the new document: their elements its own,
    and the annotations its drawing gave them taken off (drawn again, a link whose target is
    gone would keep its own; WeasyPrint sets them as it writes the PDF)."""
    for box in page.descendants(placeholders=True):
        box.element = mapped.get(id(box.element), box.element)
        box.link_annotation = box.widget_annotation = None


def _with_lines(render: _Render, box: Any) -> Any:
    """The box, or a copy of it with the lines laid out again under it (the last layout's
    boxes are left as they were: one not yet drawn may be)."""
    lines = render.lines.get(id(box))
    if lines is None and id(box) not in render.holders:
        return box
    copied = box.copy()
    copied.children = lines if lines is not None else [_with_lines(render, child) for child in box.children]
    return copied


def _caught_up(render: _Render, context: Any, number: int) -> bool:
    """Whether the pages from the ``number``-th on are taken from the last layout, as they were
    (their boxes' elements the new document's): made after the change, the page before it
    left WeasyPrint in the state the last layout's page began from (the same place in the box
    tree, counters and side: WeasyPrint keeps an entry it finds the same), with the footnotes
    before it laid out, and what the page and every page after it hold is the same in both
    documents — a sentence added to a paragraph, whose lines then fill a page's room to spare
    (before a heading kept with what follows, a code block kept whole, a figure). The same:
    every element from the first on those pages to the end (see _unchanged_from), with the
    same counters as its box was built (footnotes', lists'...), under elements before the change
    laid out as boxes of blocks in the flow."""
    last = render.last
    if (
        last is None
        or not max(render.taken + 1, render.not_before) <= number < len(last.pages)
        or number >= len(render.states)
        or render.starts[number] is None
        or render.starts[number] != last.starts[number]
        or _notes_alone_from(last, number + 1)
    ):
        return False
    # WeasyPrint's own state, the same as the last layout's, or the same but for where the page
    # begins among the children of one box (as many blocks more or fewer before it).
    state, last_state = context.page_maker[number], render.states[number]
    moved = ((), 0) if state is last_state else _moved_by(state[0], last_state[0])
    if moved is None or state[1:4] != last_state[1:4] or (moved[1] and not _among_blocks(render, moved[0])):
        return False
    unchanged = _unchanged_from(render)
    shift = len(render.elements) - len(last.elements)
    if (
        unchanged >= len(last.elements)
        or number >= len(last.begins)
        or not unchanged <= last.begins[number] == render.begins[number] - shift
        or render.counters.get(id(render.elements[unchanged + shift]))
        != last.counters.get(id(last.elements[unchanged]), False)
    ):
        return False
    places = last.places
    from weasyprint.formatting_structure import boxes

    def new_place(index: float) -> float | None:
        return index + shift if index >= unchanged else index if index < render.anew_from else None

    mapped: dict[int, Any] = {}
    for page_number, (_, children, _) in enumerate(last.pages[number:], start=number):
        for box in (box for child in children for box in child.descendants(placeholders=True)):
            element = box.element
            if element is None or id(element) in mapped:
                continue
            index = places.get(id(element))
            # An element before the change may hold what these pages hold if it holds blocks in
            # the flow: they are laid out from where a page begins in it, whatever came before.
            if index is None or (
                index < unchanged
                and not (index < render.anew_from and _of_blocks(box, boxes) and _in_flow(box.style, element))
            ):
                render.not_before = page_number + 1
                return False
            mapped[id(element)] = render.elements[index + shift if index >= unchanged else index]
    looked = [new_place(index) for index in last.looked[number : len(last.pages)]]
    begins = [new_place(index) for index in last.begins[number + 1 : len(last.pages) + 1]]
    if None in looked or None in begins:
        return False
    for page_number in range(number, len(last.pages)):
        render.following[page_number] = again = _page_again(render, context, page_number, mapped)
        _note_whole(render, page_number, again)
        if page_number > number and moved[1]:
            resume_at, *rest = context.page_maker[page_number]
            context.page_maker[page_number] = (_moved(resume_at, *moved), *rest)
        context.page_maker[page_number][-1]["content_changed"] = False
    render.looked[number:] = looked  # type: ignore[assignment]
    render.begins[number + 1 :] = begins  # type: ignore[assignment]
    render.starts[number + 1 :] = last.starts[number + 1 : len(last.pages) + 1]
    render.caught_up = len(last.pages) - number
    return True


def _notes_alone_from(last: LaidOut, first: int) -> bool:
    """Whether a page of ``last`` from the ``first``-th on holds only footnotes the page before
    had no room for (the flow had ended before it). WeasyPrint, taking the page before it as it
    was, ends the layout there: that page would be lost."""
    return any(state[0] is None for state in last.page_maker[first : len(last.pages)])


def _moved_by(new: Any, old: Any) -> tuple[tuple[int, ...], int] | None:
    """Where and by how much WeasyPrint's skip stack ``new`` is ``old`` moved: the children it
    goes on in at each level above the one that differs, and by how many children it differs
    there (blocks added or taken out before it); None if the two differ otherwise."""
    path: list[int] = []
    while new and old and len(new) == 1 and len(old) == 1:
        ((new_key, new_rest),) = new.items()
        ((old_key, old_rest),) = old.items()
        if new_key != old_key:
            return (tuple(path), new_key - old_key) if new_rest == old_rest else None
        path.append(new_key)
        new, old = new_rest, old_rest
    return ((), 0) if new == old else None


def _among_blocks(render: _Render, path: tuple[int, ...]) -> bool:
    """Whether the box the skip stack's ``path`` leads to (in the new document's box tree) holds
    blocks only: a key under it is a child's place, not a place in a line's text."""
    from weasyprint.formatting_structure import boxes

    box = render.root_box
    for key in path:
        children = getattr(box, "children", None)
        if not children or key >= len(children):
            return False
        box = children[key]
    return _of_blocks(box, boxes)


def _moved(skip: Any, path: tuple[int, ...], by: int) -> Any:
    """The skip stack of a later page of the last layout, moved as the first one caught up with
    was (see _moved_by), if it goes on in the same box."""
    if not skip or len(skip) != 1:
        return skip
    ((key, rest),) = skip.items()
    if not path:
        return {key + by: rest}
    return {key: _moved(rest, path[1:], by)} if key == path[0] else skip


def _begins_in(render: _Render, resume_at: Any) -> int:
    """The element a page beginning at ``resume_at`` (WeasyPrint's skip stack: at each level of
    the box tree, the child it goes on in) begins in, by its index; -1 for the end."""
    box, skip = render.root_box, resume_at
    if skip is None:
        return -1
    while skip:
        if len(skip) != 1:
            break
        ((index, skip),) = skip.items()
        children = getattr(box, "children", None)
        if not children or index >= len(children):
            break
        box = children[index]
    return render.places.get(id(box.element), -1) if box.element is not None else -1


def _of_blocks(box: Any, boxes: Any) -> bool:
    """Whether the box holds blocks, not lines."""
    return isinstance(box, boxes.BlockContainerBox) and not any(
        isinstance(child, boxes.LineBox) for child in box.children
    )


def _unchanged_from(render: _Render) -> int:
    """The first element of the last layout from which every element is the same in the new
    document, counted from the end (tag, attributes, text, the selectors that match it), under
    the same element: one of them, or the same element before the change."""
    if render.unchanged_from is not None:
        return render.unchanged_from
    last = render.last
    assert last is not None
    old, new = last.elements, render.elements
    shift = len(new) - len(old)
    first = max(render.anew_from, render.anew_from - shift)
    at = len(old)
    while at > first:
        before, after = old[at - 1], new[at - 1 + shift]
        if (
            before.tag != after.tag
            or before.attrib != after.attrib
            or before.text != after.text
            or before.tail != after.tail
            or last.matched.get(id(before)) != render.matched.get(id(after))
        ):
            break
        at -= 1
    old_parents, new_parents = _parents(old, last.places), _parents(new, render.places)
    while True:  # each one's parent one of them, or the same element before the change
        misplaced = [
            index
            for index in range(at, len(old))
            if not (
                (old_parents.get(index, -1) >= at and new_parents.get(index + shift) == old_parents[index] + shift)
                or old_parents.get(index, -1) == new_parents.get(index + shift, -2) < render.anew_from
            )
        ]
        if not misplaced:
            break
        at = misplaced[-1] + 1
    render.unchanged_from = at
    return at


def _parents(elements: list[Any], places: dict[int, int]) -> dict[int, int]:
    """By index of an element: the index of its parent (``places``: each element's index)."""
    return {places[id(child)]: index for index, element in enumerate(elements) for child in element}


def _counted(state: Any) -> tuple[Any, ...]:
    """The quotes' depth and the counters' values in WeasyPrint's state as it builds an element's
    boxes (a list's numbers, the footnotes' calls come from them)."""
    quote_depth, counter_values, _, _ = state
    return (quote_depth[0], *((name, *values) for name, values in counter_values.items()))


def _start(render: _Render, context: Any) -> int | None:
    """How many footnotes the pages laid out so far took, in document order; None if they left
    the next page more than the footnotes after them."""
    laid = len(render.footnotes) - len(context.footnotes)
    in_order = context.footnotes == render.footnotes[laid:]
    return laid if in_order and not context.reported_footnotes and not context.broken_out_of_flow else None


def _kept(render: _Render, context: Any, margins: list[tuple[Any, ...]]) -> LaidOut | None:
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
        context.page_bottom,
        margins,
        render.looked,
        render.styled,
        render.counters,
        render.begins,
        render.places,
        _strings_by_page(context.string_set, len(render.pages)) if render.strings is None else render.strings,
    )
