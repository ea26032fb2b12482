"""One PDF from several laid out apart: the book's parts joined as WeasyPrint would have written the whole.

The print PDF is laid out part by part (cover and contents, then one chapter per part), so that a
changed chapter is laid out again alone. Each part is a complete tagged PDF of its own; joining
them is more than putting the pages one after the other, because each part also holds a
document-wide structure that a reader needs as one:

- the structure tree (what screen readers and PDF/UA checkers read): one ``/Document`` element
  and one ``/ParentTree``, whose keys (named by the pages' ``/StructParents`` and the
  annotations' ``/StructParent``) WeasyPrint numbers from 0 in every part;
- the named destinations that internal links go to: a part that links into another part holds a
  stand-in element for the target (so that WeasyPrint keeps the link), whose destination must
  give way to the real one;
- the outline (bookmarks), and the catalog's and the information dictionary's metadata;
- the embedded fonts: every part embeds the same font files, which the joined PDF keeps once;
- the page numbers: a part is drawn with stand-ins for them (it is laid out alone, and drawn
  once wherever it lands in the book), whose places in its content streams it records: the
  join writes each number there (see :func:`set_numbers`).

Everything is copied with one object copier per part (``Pdf.copy_foreign`` and page inserts share
it), so references to a part's pages in struct elements, outlines and destinations land on the
copies. The output depends on the input bytes only.
"""

from __future__ import annotations

import functools
import io
import itertools
import operator
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name, NameTree, NumberTree, Object, Pdf, String

from report.render import deflate
from report.render.serial import ObjGen, PartObjects, PdfWriter, flate, span
from report.render.weasy import STAND_IN, DrawnNumber

_FONT_FILES = (Name.FontFile, Name.FontFile2, Name.FontFile3)
_FONT_STREAMS = (Name.ToUnicode, Name.Encoding, Name.CIDToGIDMap)  # in a font dictionary
_DESCRIPTOR_STREAMS = (*_FONT_FILES, Name.CIDSet)  # in a font descriptor
# A page's content stream is cut before its first page number when at least this much comes
# before it (see _CutPage); the end of what comes before, as much as _BEFORE, is kept for what
# follows to refer to, compressed.
_KEPT_AT_LEAST = 256
_BEFORE = 8192
_LEAF_ENTRIES = 64  # a name tree's leaf holds this many entries on average (see Joiner._name_tree)
_BLANK_BOXES = (Name.MediaBox, Name.CropBox, Name.BleedBox, Name.TrimBox, Name.ArtBox)
_FROM_FIRST = (Name.Lang, Name.MarkInfo, Name.ViewerPreferences, Name.Metadata, Name.OutputIntents, Name.PageLayout)
# Keys read once per struct element: ``Name.X`` makes a new object at each use (a microsecond).
_A, _HEADERS, _ID, _K, _P, _S, _TABLE = Name.A, Name.Headers, Name.ID, Name.K, Name.P, Name.S, Name.Table


@dataclass(frozen=True)
class JoinPart:
    """One part of the book: a PDF written by WeasyPrint with ``pdf_tags=True`` (and
    ``full_fonts=True``, so that the parts' font files are identical and stored once)."""

    pdf: bytes
    # Named destinations that are only stand-ins for anchors of other parts: the joined PDF
    # takes each name from the part that owns it.
    stubs: frozenset[str] = frozenset()
    # One blank page (the size of the part's first page) before the part, e.g. so that a
    # chapter starts on a right-hand page.
    blank_before: bool = False
    numbers: tuple[DrawnNumber, ...] = ()  # the page numbers drawn as stand-ins
    pages: Mapping[str, str] = field(default_factory=dict)  # id → its page number, for them
    first_folio: int = 1
    file: Path | None = None  # where its bytes were read, if a file named by its content


def join_pdfs(parts: Sequence[JoinPart], fonts: Mapping[str, Path] = {}, blank: bytes | None = None) -> bytes:
    """The parts' pages in order, with one structure tree, one set of named destinations,
    one outline, and the first part's metadata; identical font and image streams once, each
    font file cut to the glyphs all parts draw: as embedded, or for a stand-in
    (:func:`report.render.weasy.font_stand_in`) the file of ``fonts`` it names. A blank page
    asked for is the first page of ``blank`` (a page with only the printer's marks, say), or
    an empty page the size of the next."""
    if not parts:
        raise ValueError("nothing to join")
    joiner = Joiner(fonts, blank)
    try:
        for slot, part in enumerate(parts):
            joiner.add(slot, part)
        return joiner.result()
    finally:
        joiner.close()


@dataclass
class _Slot:
    """What one part brought to the join, kept so that a later join can take the part out again
    (the chapter was edited) or keep it, and the document-wide structures be made anew from the
    parts there are."""

    part: JoinPart
    source: Pdf  # open while joined: stream data is read lazily
    drawn: list[Object]  # its pages as drawn (their page numbers stand-ins)
    pages: list[Object]  # its pages in the joined PDF, a blank one first if asked for
    copies: list[Object]  # the copies of the part's own pages
    has_tree: bool = False
    # Its pages' /StructParents and annotations' /StructParent as the part numbers them, its
    # ParentTree under those keys, and how many keys it takes (see Joiner._number_structure).
    keys: list[tuple[Object, Name, int, ObjGen]] = field(default_factory=list)  # and the object holding it
    nums: list[tuple[int, Object]] = field(default_factory=list)
    # Its keys' leaf of the joined ParentTree (a number tree whose kids are the parts' leaves):
    # set again when its keys are shifted, and written with the part's own objects.
    leaf: Object | None = None
    key_count: int = 0
    # What its keys are shifted by now (None: not yet placed): they are set again only when it
    # changes, and its leaf then filled.
    key_offset: int | None = None
    next_key_used: bool = False
    kids: list[Object] = field(default_factory=list)  # its Document's kids
    role_map: list[tuple[str, Object]] = field(default_factory=list)
    class_map: list[tuple[str, Object]] = field(default_factory=list)
    ids: list[tuple[str, Object]] = field(default_factory=list)
    dests: dict[str, Object] = field(default_factory=dict)  # every destination it owns (but stand-ins)
    outline: list[Object] = field(default_factory=list)  # its top-level outline items
    outline_count: int = 0
    fonts: dict[tuple[int, int], Object] = field(default_factory=dict)  # the fonts kept that it names
    # Each font its pages' resources name (a direct one stays as it is): the resources, the key,
    # the font kept and its object id; and by use, the id of the font last written there (see
    # Joiner._merge_fonts).
    font_uses: list[tuple[Dictionary, Name, Object, tuple[int, int], ObjGen]] = field(default_factory=list)
    fonts_written: list[tuple[int, int]] = field(default_factory=list)
    uses_pointed: bool = False  # every use names the font a join last merged it into
    glyphs: dict[tuple[int, int], set[int]] = field(default_factory=dict)  # font file kept → the glyphs it draws
    # Its objects the document-wide ones name (see report.render.serial.PartObjects), and those
    # of its objects changed since the file was last written.
    roots: tuple[ObjGen, ...] = ()
    changed: set[ObjGen] = field(default_factory=set)
    cut: dict[int, _CutPage] = field(default_factory=dict)  # its pages cut before their numbers (see set_numbers)

    def note_roots(self) -> None:
        """Its roots, once it is added: pages, structure elements, destinations, outline items."""
        leaf = [self.leaf] if self.leaf is not None else []
        found = [*self.pages, *leaf, *self.kids, *self.dests.values(), *self.outline, *(value for _, value in self.ids)]
        self.roots = tuple(dict.fromkeys(obj.objgen for obj in found if isinstance(obj, Object) and obj.is_indirect))


class Joiner:
    """The joined PDF as it grows part by part, each part put in its place (its slot: its
    index in the book) whatever the order they come in, so that the join can begin before the
    last part is drawn (the contents, drawn once every page is known). The same parts in the
    same slots give the same bytes, in whatever order they are added.

    A joiner can be kept for the next build of the book (see :meth:`begin`). A part sent again
    as it was is kept as it is (its page numbers set anew if they moved); one that changed
    replaces the slot's, and a slot not sent again is taken out. The file is written by
    :class:`report.render.serial.PdfWriter`, kept with the joiner, which writes again only the
    objects of the parts that changed (each slot says which of its objects a join changed: its
    page numbers, structure keys, fonts named, outline links); it numbers the objects in the
    order they are reached, not made, so that the bytes are those of a new joiner. What is
    document-wide (structure tree, destinations, outline, fonts) is made from the parts in
    :meth:`result`; the streams and dictionaries the parts share are kept once for the
    joiner's life (a part added again finds those it brought before)."""

    def __init__(self, fonts: Mapping[str, Path], blank: bytes | None = None) -> None:
        self.faces = fonts
        self.out = Pdf.new()
        out = self.out
        self.slots: dict[int, _Slot] = {}
        self.sent: set[int] = set()  # the slots the join in progress has been sent
        self.blank = Pdf.open(io.BytesIO(blank)) if blank is not None else None
        self.blank_model = (
            _marked_blank_page(out, self.blank) if self.blank is not None and len(self.blank.pages) else None
        )
        self.tree_root = out.make_indirect(Dictionary(Type=Name.StructTreeRoot))
        self.document = out.make_indirect(
            Dictionary(Type=Name.StructElem, S=Name.Document, K=Array(), P=self.tree_root)
        )
        self.tree_root.K = Array([self.document])
        self.namespaces_taken = False
        self.streams: dict[tuple[bytes, int], list[tuple[bytes, Object]]] = {}
        self.dictionaries: dict[bytes, Object] = {}
        self.shared: dict[ObjGen, None] = {}  # every font, stream and dictionary kept (see _shared)
        self.fonts: dict[tuple[int, int], Object] = {}  # font copied → font kept
        # font file kept → its bytes as the parts embed them (the join writes cut ones) and the
        # descriptors naming it
        self.font_files: dict[tuple[int, int], tuple[pikepdf.Stream, bytes, list[Dictionary]]] = {}
        self.cuts: dict[tuple[int, int], frozenset[int]] = {}  # font file kept → the glyphs it was last cut to
        # font file kept → how many of the parts joined draw each glyph with it (see _count_glyphs),
        # and the files whose counts changed since the last cut
        self.glyph_uses: dict[tuple[int, int], Counter[int]] = {}
        self.uses_changed: set[tuple[int, int]] = set()
        self.widths: dict[tuple[int, int], dict[int, float]] = {}  # CID font → its /W, read once
        self.texts: dict[tuple[int, int], dict[int, bytes] | None] = {}  # Type 0 font → its ToUnicode, read once
        # (font name, font file) → the fonts last merged into the first of them (see _merge_fonts)
        self.merged: dict[tuple[str, tuple[int, int]], tuple[tuple[int, int], ...]] = {}
        # The last join's fonts merged into another: font kept → the font it was merged into.
        self.merged_targets: dict[tuple[int, int], tuple[int, int]] = {}
        # font kept → its (font name, font file), None if it is no CID font: read once
        self.font_groups: dict[tuple[int, int], tuple[str, tuple[int, int]] | None] = {}
        self.seen_resources: set[tuple[int, int]] = set()
        self.adding: _Slot | None = None
        self.writer = PdfWriter()  # kept with the joiner: what did not change is not written again
        self.outline_root = out.make_indirect(Dictionary())
        self.names: dict[str, tuple[bytes, String, bool]] = {}  # see _name
        # The last join's leaves of each name tree, by their first key (see _name_tree)
        self.leaves: dict[Name, dict[str, tuple[list[tuple[str, Object, _Slot]], Object]]] = {}
        self.kept_leaves: set[tuple[int, int]] = set()  # those this join took as they were

    def begin(self) -> None:
        """A new join of the same book: every part is to be sent again (the same, or changed)."""
        self.sent = set()

    def kept_part(self, slot: int, file: Path) -> JoinPart | None:
        """The part in ``slot``, if its bytes were read from ``file`` (named by its content)."""
        kept = self.slots.get(slot)
        return kept.part if kept is not None and kept.part.file == file else None

    def add(self, slot: int, part: JoinPart) -> None:
        """The part's pages put after those of the parts of lower slots (and before those of
        higher ones); then what refers to them: the part's copier maps its page references
        onto the copies. A part sent again as it was in an earlier join is kept."""
        if slot in self.sent:
            raise ValueError(f"a part is already joined in slot {slot}")
        self.sent.add(slot)
        kept = self.slots.get(slot)
        if kept is not None:
            if (kept.part.pdf, kept.part.stubs, kept.part.blank_before) == (part.pdf, part.stubs, part.blank_before):
                # Where a drawing drew its numbers is told by its bytes: the same bytes, the same
                # places (compared, thousands of them took 9 ms of every join at 586 pages).
                if (dict(part.pages), part.first_folio) != (dict(kept.part.pages), kept.part.first_folio):
                    kept.changed.update(
                        set_numbers(kept.copies, kept.drawn, part.numbers, part.pages, part.first_folio, kept.cut)
                    )
                kept.part = part
                return
            self._take_out(slot)
        source = Pdf.open(io.BytesIO(part.pdf))
        if not self.namespaces_taken:
            self._take_namespaces(source)
            self.namespaces_taken = True
        out = self.out
        position = self._pages_before(slot)
        pages: list[Object] = []  # a blank one first, if asked for
        if part.blank_before and len(source.pages):
            if self.blank_model is None:
                blank_page = _blank_page(out, source.pages[0].obj)
            else:  # a page of its own, drawn by the model's content stream
                blank_page = out.make_indirect(Dictionary({str(key): value for key, value in self.blank_model.items()}))
            out.pages.insert(position, pikepdf.Page(blank_page))
            pages.append(out.pages[position].obj)
            position += 1
        for offset, page in enumerate(source.pages):
            out.pages.insert(position + offset, page)  # one by one: extend warns about forms we have none of
        copies: list[Object] = [out.pages[index].obj for index in range(position, position + len(source.pages))]
        drawn: list[Object] = [page.obj for page in source.pages]
        added = self.adding = self.slots[slot] = _Slot(part, source, drawn, pages + copies, copies)
        try:
            set_numbers(copies, drawn, part.numbers, part.pages, part.first_folio, added.cut)
            self._share_streams(copies)
            self._count_glyphs(added, 1)
            self._add_structure(added, slot)
            self._add_dests(added)
            self._add_outline(added)
            added.note_roots()
        finally:
            self.adding = None

    def result(self) -> bytes:
        """The joined PDF, of the parts added (the catalog's metadata from the lowest slot's);
        the parts of an earlier join not sent again are taken out first."""
        for index in [index for index in self.slots if index not in self.sent]:
            self._take_out(index)
        if not self.slots:
            raise ValueError("nothing to join")
        slots = [self.slots[index] for index in sorted(self.slots)]
        out = self.out
        self.document.K = Array([kid for slot in slots for kid in slot.kids])
        self._merge_fonts(slots)
        self._cut_fonts()
        # The catalog's metadata and the information dictionary: the first part's. A copy made
        # by a join kept from the last build is taken again as it is (the file is numbered as its
        # objects are reached, not made).
        first = slots[0].source
        self.kept_leaves.clear()
        self._finish_catalog(first, slots)
        if Name.Info in first.trailer:
            out.trailer.Info = _copy(out, first, first.trailer.Info)
        elif Name.Info in out.trailer:
            del out.trailer.Info
        version = max((slot.source.pdf_version for slot in slots), key=_version_key)
        parts = [PartObjects(slot, slot.roots, slot.changed) for slot in slots]
        leaves = [leaf.objgen for made in self.leaves.values() for _, leaf in made.values()]
        joined = self.writer.write(out, parts, self._shared(), version, unchanged=self.kept_leaves, last=leaves)
        for slot in slots:
            slot.changed.clear()
        return joined

    def close(self) -> None:
        self.out.close()
        for source in [*(slot.source for slot in self.slots.values()), *([self.blank] if self.blank else [])]:
            source.close()

    def _shared(self) -> list[ObjGen]:
        """What the parts may name in common: the fonts, streams and dictionaries kept once, and
        the blank pages' drawing."""
        model = self.blank_model.values() if self.blank_model is not None else []
        return [*self.shared, *(value.objgen for value in model if value.is_indirect)]

    def _pages_before(self, index: int) -> int:
        """How many pages the joined PDF has before the pages of slot ``index``."""
        return sum(len(other.pages) for other_index, other in self.slots.items() if other_index < index)

    def _take_out(self, index: int) -> None:
        """The slot's part taken out: its pages (what only they refer to is not written). What
        it was the first to bring stays kept, for the parts that share it."""
        slot = self.slots.pop(index)
        self._count_glyphs(slot, -1)
        position = self._pages_before(index)
        for _ in slot.pages:
            del self.out.pages[position]
        slot.source.close()

    def _take_namespaces(self, first: Pdf) -> None:
        """PDF 2.0: the namespace of the standard structure types, as the parts name it."""
        first_root = first.Root.get(Name.StructTreeRoot)
        if isinstance(first_root, Dictionary):
            if Name.Namespaces in first_root:
                self.tree_root.Namespaces = _copy(self.out, first, first_root.Namespaces)
            first_document = _struct_document(first_root)
            if first_document is not None and Name.NS in first_document:
                self.document.NS = _copy(self.out, first, first_document.NS)

    # --- the structure tree -----------------------------------------------------------------

    def _add_structure(self, added: _Slot, index: int) -> None:
        """Takes the part's Document kids for the joined Document, and its ParentTree with the
        keys the pages and annotations have (shifted past the parts before in :meth:`result`)."""
        source = added.source
        root = source.Root.get(Name.StructTreeRoot)
        if not isinstance(root, Dictionary):
            return
        added.has_tree = True
        out = self.out
        copied = _copy(out, source, root)  # with the same copier as the pages: /Pg lands on the copies
        old_document = _struct_document(copied)
        highest = -1
        tree = copied.get(Name.ParentTree)
        values: list[Object] = []
        if isinstance(tree, Dictionary):
            for key, value in NumberTree(tree).items():
                added.nums.append((int(key), value))
                values.append(value)
                highest = max(highest, key)
            if added.nums:
                added.leaf = out.make_indirect(Dictionary())  # filled once its keys are placed
        next_key = copied.get(Name.ParentTreeNextKey)
        if next_key is not None:
            added.next_key_used = True
            highest = max(highest, int(next_key) - 1)
        added.key_count = highest + 1
        for page in added.copies:
            _note_key(added.keys, page, Name.StructParents, page)
            annotations = page.get(Name.Annots, Array())
            for annotation in annotations:
                holder = annotation if annotation.is_indirect else annotations if annotations.is_indirect else page
                _note_key(added.keys, annotation, Name.StructParent, holder)
        for source_map, joined in ((Name.RoleMap, added.role_map), (Name.ClassMap, added.class_map)):
            mapping = copied.get(source_map)
            if isinstance(mapping, Dictionary):
                joined += [(str(role), value) for role, value in mapping.items()]
        ids = copied.get(Name.IDTree)
        if isinstance(ids, Dictionary):
            added.ids += [(str(key), value) for key, value in NameTree(ids).items()]
        if old_document is None:
            return
        kids = old_document.get(Name.K)
        added.kids = list(kids) if isinstance(kids, Array) else [kids] if kids is not None else []
        self._adopt(old_document, added.kids, values, prefix=f"{index}." if index else "")

    def _number_structure(self, slots: Sequence[_Slot]) -> tuple[list[Object], int, bool]:
        """The parts' ParentTree keys one after the other, in the order of their slots, each
        part's from a multiple of the same stride (the span of the part with the most keys, the
        rest unused): the pages' and annotations' keys shifted alike. Returns the ParentTree's
        leaves, the next key, and whether a part had /ParentTreeNextKey.

        A part that gains a page and its links leaves the other parts' keys as they were (their
        pages and links are not written again), unless it becomes the part with the most keys
        and outgrows the stride. (With each part's keys right after the span of the part before,
        a chapter grown past its span moved the keys of every later part: 77 parts written again,
        0.15 s of a join at 600 pages.)"""
        stride = max(span(slot.key_count) for slot in slots)
        for position, slot in enumerate(slots):
            offset = position * stride
            if slot.key_offset != offset:
                for obj, name, number, holder in slot.keys:
                    obj[name] = number + offset
                    slot.changed.add(holder)
                slot.key_offset = offset
                if slot.leaf is not None:
                    _fill_leaf(slot.leaf, slot.nums, offset)
                    slot.changed.add(slot.leaf.objgen)
        leaves = [slot.leaf for slot in slots if slot.leaf is not None]
        return leaves, len(slots) * stride, any(slot.next_key_used for slot in slots)

    def _adopt(self, old_document: Object, kids: list[Object], values: list[Object], prefix: str) -> None:
        """Points at the joined Document every element that pointed at the part's own: its kids,
        and the elements WeasyPrint leaves out of ``/K`` but lists in the ParentTree (the
        contents of page margin boxes). Table header IDs (named after object numbers of their
        part) and the cells' /Headers get the part's ``prefix``, so that they stay unique.

        Walks up from the ParentTree rather than down from the Document: each element is
        met once either way, and the way up reads fewer keys (a key read costs a microsecond)."""
        old = old_document.objgen
        for kid in kids:
            if _is_struct_elem(kid):
                kid[_P] = self.document
        seen: set[tuple[int, int]] = {old}
        for value in values:
            for leaf in value if isinstance(value, Array) else [value]:
                element = leaf
                while isinstance(element, Dictionary) and (key := element.objgen) not in seen:
                    seen.add(key)
                    if prefix and element.get(_S) == _TABLE:
                        _prefix_ids(element, prefix)
                    if _P not in element:
                        break
                    parent = element[_P]
                    if parent.objgen == old:
                        element[_P] = self.document
                        break
                    element = parent

    # --- named destinations and outline ------------------------------------------------------

    def _add_dests(self, added: _Slot) -> None:
        """Takes the part's destinations but its stand-ins (a name two parts own leads where the
        first one's does, as WeasyPrint keeps the first of two elements with the same id: see
        :meth:`_finish_catalog`)."""
        source = added.source
        names = source.Root.get(Name.Names)
        dests = names.get(Name.Dests) if isinstance(names, Dictionary) else None
        if not isinstance(dests, Dictionary):
            return
        wanted = [(key, value) for key, value in NameTree(dests).items() if key not in added.part.stubs]
        if not wanted:
            return
        copied = _copy(self.out, source, Array([value for _, value in wanted]))
        added.dests = {key: value for (key, _), value in zip(wanted, copied, strict=True)}

    def _add_outline(self, added: _Slot) -> None:
        outlines = added.source.Root.get(Name.Outlines)
        if not isinstance(outlines, Dictionary) or Name.First not in outlines:
            return
        copied = _copy(self.out, added.source, outlines)
        item: Object | None = copied.First
        while isinstance(item, Dictionary):
            added.outline.append(item)
            item.Parent = self.outline_root
            item = item.get(Name.Next)
        count = copied.get(Name.Count)
        added.outline_count = abs(int(count)) if count is not None else 0

    # --- catalog ---------------------------------------------------------------------------------

    def _finish_catalog(self, first: Pdf, slots: Sequence[_Slot]) -> None:
        out = self.out
        catalog = out.Root
        for key in _FROM_FIRST:
            if key in first.Root:
                catalog[key] = _copy(out, first, first.Root[key])
            elif key in catalog:
                del catalog[key]
        for intent in catalog.get(Name.OutputIntents, Array()):  # its profile, kept already with the pages'
            if isinstance(intent, Dictionary) and isinstance(
                profile := intent.get(Name.DestOutputProfile), pikepdf.Stream
            ):
                intent.DestOutputProfile = self._kept(profile, remember=False)
        for key in (Name.StructTreeRoot, Name.Names, Name.Outlines, Name.PageMode):
            if key in catalog:
                del catalog[key]
        if any(slot.has_tree for slot in slots):
            tree = self.tree_root
            leaves, next_key, next_key_used = self._number_structure(slots)
            tree.ParentTree = out.make_indirect(Dictionary(Kids=Array(leaves)))
            for key in (Name.ParentTreeNextKey, Name.RoleMap, Name.ClassMap, Name.IDTree):
                if key in tree:
                    del tree[key]
            if next_key_used:
                tree.ParentTreeNextKey = next_key
            for key, mappings in (
                (Name.RoleMap, [s.role_map for s in slots]),
                (Name.ClassMap, [s.class_map for s in slots]),
            ):
                joined = Dictionary()
                for role, value in (item for mapping in mappings for item in mapping):
                    if role not in joined:
                        joined[role] = value
                if len(joined):
                    tree[key] = joined
            # By key, then part (a stable sort of entries in the parts' order).
            ids = [(name, element, slot) for slot in slots for name, element in slot.ids]
            ids.sort(key=self._sort_key)
            if ids:
                tree.IDTree = self._name_tree(Name.IDTree, ids)
            catalog.StructTreeRoot = tree
        dests: dict[str, tuple[Object, _Slot]] = {}
        for slot in slots:
            for name, dest in slot.dests.items():
                dests.setdefault(name, (dest, slot))
        if dests:
            entries = [(name, dest, slot) for name, (dest, slot) in dests.items()]
            entries.sort(key=self._sort_key)
            catalog.Names = Dictionary(Dests=self._name_tree(Name.Dests, entries))
        outlined = [slot for slot in slots if slot.outline]
        if outlined:
            # Each part's items are linked as it linked them: the parts' first and last ones are
            # linked to their neighbours' (and written again only when those changed).
            root = self.outline_root
            root.First, root.Last = outlined[0].outline[0], outlined[-1].outline[-1]
            root.Count = sum(slot.outline_count for slot in slots)
            for before, after in itertools.pairwise([None, *outlined, None]):
                if after is not None:
                    _link(after, after.outline[0], Name.Prev, before.outline[-1] if before else None)
                if before is not None:
                    _link(before, before.outline[-1], Name.Next, after.outline[0] if after else None)
            catalog.Outlines = root
        if Name.PageMode in first.Root:
            catalog.PageMode = first.Root.PageMode

    def _sort_key(self, entry: tuple[str, Object, _Slot]) -> bytes:
        """A name tree entry's place: its key's bytes (see _name)."""
        return self._name(entry[0])[0]

    def _name(self, name: str) -> tuple[bytes, String, bool]:
        """A name tree's key: its bytes as written (PDFDocEncoding or UTF-16BE with BOM), by which
        the tree is sorted, the string, and whether a leaf of the tree ends with it (see
        _name_tree). Made once for the joiner's life: every join lists every id and destination
        of the book, tens of thousands."""
        known = self.names.get(name)
        if known is None:
            string = String(name)
            key = bytes(string)
            known = self.names[name] = (key, string, zlib.crc32(key) % _LEAF_ENTRIES == 0)
        return known

    def _name_tree(self, kind: Name, items: list[tuple[str, Object, _Slot]]) -> Object:
        """A name tree of ``items`` (key, value and the part it is of), in order. Its leaves end
        with the keys chosen by their own digest, so that an entry added or taken out changes
        its own leaf only; a leaf whose entries are those the last join wrote (the same keys,
        the values of the same parts) is kept as it was, and written as it was (see
        report.render.serial): an edit writes the leaves of its part's names, not the tree."""
        last, made = self.leaves.get(kind, {}), {}
        leaves: list[Object] = []
        start = 0
        for end, (name, _, _) in enumerate(items, start=1):
            if end == len(items) or self._name(name)[2]:
                entries = items[start:end]
                kept = last.get(entries[0][0])
                if (
                    kept is not None
                    and [key for key, _, _ in kept[0]] == [key for key, _, _ in entries]
                    and all(a[2] is b[2] for a, b in zip(kept[0], entries, strict=True))
                ):
                    leaf = kept[1]
                    self.kept_leaves.add(leaf.objgen)
                else:
                    limits = Array([self._name(entries[0][0])[1], self._name(entries[-1][0])[1]])
                    flat = [entry for key, value, _ in entries for entry in (self._name(key)[1], value)]
                    leaf = self.out.make_indirect(Dictionary(Limits=limits, Names=Array(flat)))
                made[entries[0][0]] = (entries, leaf)
                leaves.append(leaf)
                start = end
        self.leaves[kind] = made
        return self.out.make_indirect(Dictionary(Kids=Array(leaves)))

    # --- shared streams --------------------------------------------------------------------------

    def _share_streams(self, pages: Sequence[Object]) -> None:
        """Stores each font file, image and ICC profile once: a stream whose dictionary and raw
        (still compressed) data equal one already kept is replaced by it where referenced."""
        for page in pages:
            resources = page.get(Name.Resources)
            if isinstance(resources, Dictionary):
                self._share_in(resources, page)

    def _share_in(self, resources: Dictionary, holder: Object) -> None:
        """``holder``: the indirect object ``resources`` are in (or are)."""
        added = self.adding
        assert added is not None
        if resources.is_indirect:
            if resources.objgen in self.seen_resources:
                return
            self.seen_resources.add(resources.objgen)
            holder = resources
        fonts = resources.get(Name.Font)
        if isinstance(fonts, Dictionary):
            fonts_holder = (fonts if fonts.is_indirect else holder).objgen
            for key, font in list(fonts.items()):
                kept = fonts[key] = self._kept_font(font)
                if kept.is_indirect:
                    added.font_uses.append((fonts, Name(key), kept, kept.objgen, fonts_holder))
                    added.fonts_written.append(kept.objgen)
                    added.fonts[kept.objgen] = kept
        xobjects = resources.get(Name.XObject)
        if isinstance(xobjects, Dictionary):
            for key, xobject in list(xobjects.items()):
                if not isinstance(xobject, pikepdf.Stream):
                    continue
                if xobject.get(Name.Subtype) == Name.Image:
                    xobjects[key] = self._kept_image(xobject)
                elif isinstance(inner := xobject.get(Name.Resources), Dictionary):
                    self._share_in(inner, xobject)
        patterns = resources.get(Name.Pattern)
        if isinstance(patterns, Dictionary):
            for _, pattern in patterns.items():
                inner = pattern.get(Name.Resources)
                if isinstance(inner, Dictionary):
                    self._share_in(inner, pattern if pattern.is_indirect else holder)
        spaces = resources.get(Name.ColorSpace)
        if isinstance(spaces, Dictionary):
            for _, space in spaces.items():
                if isinstance(space, Array) and len(space) == 2 and space[0] == Name.ICCBased:
                    profile = space[1]
                    if isinstance(profile, pikepdf.Stream):
                        space[1] = self._kept(profile)

    def _kept_font(self, font: Object) -> Object:
        """The font, or an equal one kept before. With full fonts, WeasyPrint writes a font's
        whole tree (font file, descriptor, widths, ToUnicode) the same in every part; the
        streams are shared first, then the dictionaries that name them."""
        if not isinstance(font, Dictionary) or not font.is_indirect:
            return font
        if font.objgen in self.fonts:
            return self.fonts[font.objgen]
        if Name.Subtype in font and font.Subtype == Name.Type3:
            kept: Object = font  # its glyphs are content streams with resources: left as they are
        else:
            for key in _FONT_STREAMS:
                if key in font and isinstance(stream := font[key], pikepdf.Stream):
                    font[key] = self._kept(stream)
            if Name.FontDescriptor in font and isinstance(descriptor := font.FontDescriptor, Dictionary):
                for key in _DESCRIPTOR_STREAMS:
                    if key in descriptor and isinstance(stream := descriptor[key], pikepdf.Stream):
                        descriptor[key] = self._kept(stream)
                font.FontDescriptor = self._kept_dictionary(descriptor)
            if Name.DescendantFonts in font:
                font.DescendantFonts = Array([self._kept_font(descendant) for descendant in font.DescendantFonts])
            self._note_glyphs(font)
            kept = self._kept_dictionary(font)
            self._texts_of(kept)  # read before any join writes a merged one into it
        self.fonts[font.objgen] = kept
        self.shared[kept.objgen] = None
        return kept

    def _widths_of(self, cid_font: Object) -> dict[int, float]:
        if cid_font.objgen not in self.widths:
            self.widths[cid_font.objgen] = _widths(cid_font.W)
        return self.widths[cid_font.objgen]

    def _texts_of(self, font: Object) -> dict[int, bytes] | None:
        if font.objgen not in self.texts:
            self.texts[font.objgen] = _to_unicode(font.get(Name.ToUnicode))
        return self.texts[font.objgen]

    def _note_glyphs(self, font: Dictionary) -> None:
        """The glyphs a CID font draws (those it gives widths for) with its font file, for the
        part being added."""
        added = self.adding
        widths = font.get(Name.W)
        descriptor = font.get(Name.FontDescriptor)
        if added is None or not isinstance(widths, Array) or not isinstance(descriptor, Dictionary):
            return
        for key in _FONT_FILES:
            if key in descriptor and isinstance(stream := descriptor[key], pikepdf.Stream):
                if stream.objgen not in self.font_files:
                    self.font_files[stream.objgen] = (stream, stream.read_bytes(), [])
                descriptors = self.font_files[stream.objgen][2]
                if not any(descriptor.objgen == known.objgen for known in descriptors):
                    descriptors.append(descriptor)
                added.glyphs.setdefault(stream.objgen, set()).update(self._widths_of(font))

    def _merge_fonts(self, slots: Sequence[_Slot]) -> None:
        """One font dictionary per font file and name: each part's gives widths and Unicode
        mappings for its own glyphs only, the merged one for the glyphs of all parts."""
        groups: dict[tuple[str, tuple[int, int]], list[tuple[tuple[int, int], Dictionary]]] = {}
        for objgen, font in {objgen: kept for slot in slots for objgen, kept in slot.fonts.items()}.items():
            if not isinstance(font, Dictionary):
                continue
            if objgen not in self.font_groups:
                file = _cid_font_file(font)
                self.font_groups[objgen] = (str(font.BaseFont), file.objgen) if file is not None else None
            if (group := self.font_groups[objgen]) is not None:
                groups.setdefault(group, []).append((objgen, font))
        merged_into: dict[tuple[int, int], Dictionary] = {}
        for group, named in groups.items():
            members = tuple(objgen for objgen, _ in named)
            fonts = [font for _, font in named]
            if self.merged.get(group) == members:  # merged so by the last join: its widths and map stand
                merged_into |= dict.fromkeys(members, fonts[0])
                continue
            widths: dict[int, float] = {}
            texts: dict[int, bytes] = {}
            for font in fonts:
                mapping = self._texts_of(font)
                if mapping is None:
                    break  # not as WeasyPrint writes it: the fonts stay apart
                texts |= mapping
                widths |= self._widths_of(font.DescendantFonts[0])
            else:
                merged = fonts[0]
                merged.DescendantFonts[0].W = _widths_array(widths)
                merged.ToUnicode = _compressed(self.out.make_stream(b""), _to_unicode_cmap(texts))
                merged_into |= dict.fromkeys(members, merged)
                self.merged[group] = members
        # Each use names the merged font, written only where it changed since the last join
        # (written at every join, it took 85 ms of a 595-page book's); looked at only in the
        # parts added since, and in those that name a font merged into another one now (going
        # over every use at every join took 30 ms of each of a 595-page book's, 70,000 uses).
        targets = {member: merged.objgen for member, merged in merged_into.items()}
        moved = {
            font
            for font in targets.keys() | self.merged_targets.keys()
            if targets.get(font, font) != self.merged_targets.get(font, font)
        }
        self.merged_targets = targets
        for slot in slots:
            if slot.uses_pointed and slot.fonts.keys().isdisjoint(moved):
                continue
            slot.uses_pointed = True
            written = slot.fonts_written
            for index, (resources, key, font, objgen, holder) in enumerate(slot.font_uses):
                target = targets.get(objgen, objgen)
                if target != written[index]:
                    resources[key] = merged_into.get(objgen, font)
                    written[index] = target
                    slot.changed.add(holder)

    def _count_glyphs(self, slot: _Slot, step: int) -> None:
        """The glyphs the slot's part draws, counted in (``step`` 1) or out (-1) of those all
        parts draw: a join counts the parts that changed, not every part (at 600 pages, the
        union of every part's glyphs took 40 ms a join)."""
        for objgen, glyphs in slot.glyphs.items():
            self.glyph_uses.setdefault(objgen, Counter()).update(dict.fromkeys(glyphs, step))
            self.uses_changed.add(objgen)

    def _cut_fonts(self) -> None:
        """Each font file cut to the glyphs all parts draw with it (see :func:`_cut_font`): the
        file a part embedded, or the face a part named instead (see report.render.weasy); cut
        again only when those glyphs changed. A descriptor's CID set (PDF/A-1) is written each
        time: a part added again may bring a descriptor of its own."""
        for objgen in self.uses_changed:
            # The glyphs no part draws any more dropped: what is left is the union (empty: the
            # file is not used).
            uses = self.glyph_uses[objgen] = +self.glyph_uses[objgen]
            if uses and self.cuts.get(objgen) != (glyphs := frozenset(uses)):
                self.cuts[objgen] = glyphs
                stream, data, _ = self.font_files[objgen]
                self._cut_file(stream, data, set(glyphs))
        self.uses_changed.clear()
        for objgen in (objgen for objgen, uses in self.glyph_uses.items() if uses):
            for descriptor in self.font_files[objgen][2]:
                if Name.CIDSet in descriptor:  # PDF/A-1: the CIDs the font file has
                    descriptor.CIDSet = self.out.make_stream(_bit_set(set(self.cuts[objgen]) | {0}))

    def _cut_file(self, stream: pikepdf.Stream, data: bytes, glyphs: set[int]) -> None:
        if data[4 : 4 + len(STAND_IN)] == STAND_IN:
            named = data[4 + len(STAND_IN) :].decode()
            if named not in self.faces:
                raise ValueError(f"a part names a font file not given: {named}")
            face: bytes | Path = self.faces[named]
        else:
            face = data
        cut, bare_cff = _cut_font(face, glyphs)
        if cut is None:  # HarfBuzz could not cut it: kept whole
            cut = face.read_bytes() if isinstance(face, Path) else face
        elif bare_cff:
            stream.Subtype = Name.CIDFontType0C
        _compressed(stream, cut)
        if Name.Length1 in stream:
            stream.Length1 = len(cut)

    def _kept_dictionary(self, dictionary: Object) -> Object:
        """The first kept indirect dictionary written the same (references included)."""
        if not dictionary.is_indirect:
            return dictionary
        key = dictionary.unparse(resolved=True)
        if key not in self.dictionaries:
            self.dictionaries[key] = dictionary
            self.shared[dictionary.objgen] = None
        return self.dictionaries[key]

    def _kept_image(self, image: pikepdf.Stream) -> Object:
        mask = image.get(Name.SMask)
        if isinstance(mask, pikepdf.Stream):
            image.SMask = self._kept(mask)  # first, so that equal images name the same mask
        return self._kept(image)

    def _kept(self, stream: pikepdf.Stream, remember: bool = True) -> Object:
        """The first kept stream equal to ``stream``, else ``stream`` (now kept, if to ``remember``)."""
        data = stream.read_raw_bytes()
        header = stream.stream_dict.unparse(resolved=False)
        candidates = self.streams.setdefault((header, len(data)), [])
        for kept_data, kept in candidates:
            if kept_data == data:
                return kept
        if not remember:
            return stream
        candidates.append((data, stream))
        self.shared[stream.objgen] = None
        return stream


# --- page numbers ------------------------------------------------------------------------------


def set_numbers(
    pages: Sequence[Object],
    drawn: Sequence[Object],
    numbers: Sequence[DrawnNumber],
    of: Mapping[str, str],
    first: int,
    cut: dict[int, _CutPage],
) -> list[ObjGen]:
    """Writes each page number where its stand-in was drawn: the page of its id in ``of``, or
    the folio (``first`` on the first page), into the content streams of ``pages`` from those
    of the pages as drawn (``drawn``). Its glyphs are the digits' of the stand-in's font; its
    text matrix moves it as far as its alignment says (a folio of another length is centred
    again). In a piece of a page list, each stand-in zero becomes the list's digit. Returns the
    content streams written.

    Each page's stream is compressed in two pieces, cut before its first number (see
    :class:`_CutPage`), kept in ``cut`` (by page) for the next time the same drawing's numbers
    are set: then only the second piece is compressed again."""
    by_page: dict[int, list[DrawnNumber]] = {}
    for number in numbers:
        by_page.setdefault(number.page, []).append(number)
    written = []
    for index, on_page in by_page.items():
        contents, original = pages[index].get(Name.Contents), drawn[index].get(Name.Contents)
        if not isinstance(contents, pikepdf.Stream) or not isinstance(original, pikepdf.Stream):
            raise ValueError(f"page {index + 1} of a part has not one content stream: its page numbers cannot be set")
        page = cut.get(index)
        if page is None:
            page = cut[index] = _CutPage.of(original.read_bytes(), on_page)
        contents.write(page.with_numbers(on_page, of, first), filter=Name.FlateDecode)
        written.append(contents.objgen)
    return written


def _edits(
    on_page: Sequence[DrawnNumber], of: Mapping[str, str], first: int, drawn: bytes, at: int
) -> list[tuple[tuple[int, int], bytes]]:
    """Each number's text matrix and glyphs, with where in the content stream they go (``drawn``:
    the stream as drawn from offset ``at`` on, where a page list's stand-in zeros are read)."""
    edits = []
    for number in on_page:
        text = str(first + number.page) if not number.ref else of[number.ref]
        a, b, c, d, e, f = number.matrix
        if number.list_offset < 0:
            e += (number.width - sum(number.digit_widths[int(digit)] for digit in text)) * number.align
            glyphs = "[<" + "".join(number.digits[int(digit)] for digit in text) + ">] TJ"
        else:
            start, end = number.glyphs_at
            listed = _digits_listed(text)[number.list_offset :]
            glyphs, count = _list_digits(drawn[start - at : end - at].decode("latin-1"), number.digits, listed)
            e += sum(number.digit_widths[0] - number.digit_widths[digit] for digit in listed[:count]) * number.align
        matrix = " ".join(_number_text(value) for value in (a, b, c, d, e, f)) + " Tm"
        edits += [(number.matrix_at, matrix.encode()), (number.glyphs_at, glyphs.encode())]
    return edits


@dataclass(frozen=True)
class _CutPage:
    """A page's content stream as drawn, cut before its first page number: what comes before,
    compressed once as the first piece of the zlib stream (report.render.deflate); what comes
    from there on, as drawn. The folio is drawn last (margin boxes are drawn after the page's
    content), so that most pages have only it after the cut. Numbers set anew: only what comes
    after the cut is compressed again, referring to the end of what comes before, as the
    stream compressed whole would (a page grows by 15 bytes, against 50 to 400 for pieces
    compressed apart).

    Every page's stream is cut alike, whether kept or made now (a build from nothing's too):
    the bytes are the same."""

    start: int  # where the cut is
    kept: deflate.Piece | None  # what comes before it, compressed (None: too little to keep)
    before: bytes  # the end of it, for what follows to refer to
    rest: bytes  # what comes after, as drawn

    @staticmethod
    def of(data: bytes, on_page: Sequence[DrawnNumber]) -> _CutPage:
        start = min(place[0] for number in on_page for place in (number.matrix_at, number.glyphs_at))
        if start < _KEPT_AT_LEAST:
            return _CutPage(0, None, b"", data)
        return _CutPage(start, deflate.piece(data[:start]), data[max(0, start - _BEFORE) : start], data[start:])

    def with_numbers(self, on_page: Sequence[DrawnNumber], of: Mapping[str, str], first: int) -> bytes:
        """The stream, compressed, with the page's numbers set (see :func:`set_numbers`)."""
        rest = bytearray(self.rest)
        for (start, end), replacement in sorted(_edits(on_page, of, first, self.rest, self.start), reverse=True):
            rest[start - self.start : end - self.start] = replacement
        last = deflate.piece(bytes(rest), last=True, before=self.before)
        return deflate.joined([self.kept, last] if self.kept is not None else [last])


_GLYPH_STRING = re.compile(r"<([0-9A-Fa-f]*)>")


def _list_digits(shown: str, digits: Sequence[str], listed: Sequence[int]) -> tuple[str, int]:
    """A piece of a page list's "[<…> …] TJ" as drawn (stand-in zeros), with its zeros, in order,
    the glyphs of the digits ``listed``; and how many it took."""
    around = _around_zeros(shown, digits[0])  # text, a zero as drawn, text, …, text
    taken = min(len(listed), len(around) // 2)
    pieces = list(around)
    pieces[1 : 2 * taken : 2] = [digits[digit] for digit in listed[:taken]]
    return "".join(pieces), taken


@functools.lru_cache(maxsize=8192)
def _around_zeros(shown: str, zero: str) -> tuple[str, ...]:
    """The glyph strings' text cut around each glyph ``zero`` in them: text, the zero as drawn,
    text, and so on. (Kept: a page list drawn again keeps most of its pieces, and finding the
    zeros glyph by glyph took 70 µs a piece, 13 ms of the join of a page added in the middle.)"""
    pieces, last = [], 0
    for match in _GLYPH_STRING.finditer(shown):
        glyphs, start = match.group(1), match.start(1)
        for at in range(0, len(glyphs) - 3, 4):
            if glyphs[at : at + 4].lower() == zero:
                pieces += [shown[last : start + at], glyphs[at : at + 4]]
                last = start + at + 4
    pieces.append(shown[last:])
    return tuple(pieces)


@functools.lru_cache(maxsize=4096)
def _digits_listed(text: str) -> tuple[int, ...]:
    """A page list's digits, in order ("3, 5–7": 3, 5, 7). (Kept: a list drawn as many pieces
    is read once, not once a piece: an index of long lists is hundreds of pieces.)"""
    return tuple(int(digit) for digit in text if digit.isdigit())


@functools.lru_cache(maxsize=4096)
def _number_text(value: float) -> str:
    """A number as a content stream writes it (as pydyf does: no exponent). (Kept: a book's
    numbers are drawn at few places, 1, 0 and -1 make most of their matrices.)"""
    return str(int(value)) if value == int(value) else f"{value:f}".rstrip("0")


# --- helpers -----------------------------------------------------------------------------------


# Tables a PDF viewer never reads (layout is done), dropped as WeasyPrint drops them.
_UNUSED_TABLES = (b"BASE", b"DSIG", b"EBDT", b"EBLC", b"EBSC", b"GPOS", b"GSUB", b"JSTF", b"LTSH", b"PCLT", b"SVG ")


def _cut_font(font: bytes | Path, glyphs: set[int]) -> tuple[bytes | None, bool]:
    """The font cut to ``glyphs``, the ids the parts' text shows (CIDs, with Identity-H), and
    whether it is a bare CFF font.

    A CID-keyed CFF font (the CJK faces) keeps only those glyphs, as a bare CFF font (as
    Acrobat and InDesign embed CJK fonts): its charset maps each CID to the glyph's new place,
    so the text stays as it is. (Viewers read the charset of a bare CFF font only, not of one
    in an OpenType wrapper. The faces' CIDs run to 65,000: kept in place, the empty glyphs
    would cost 150 kB a face.) Any other font keeps its glyph ids, the glyphs it does not keep
    left empty: a TrueType font's text selects glyphs by id."""
    import uharfbuzz as hb

    blob = hb.Blob.from_file_path(str(font)) if isinstance(font, Path) else hb.Blob(font)
    wanted = glyphs | {0}
    if bytes(blob.data[:4]) == b"OTTO":
        compact = _subset(blob, wanted, hb.SubsetFlags.DEFAULT)
        if compact is not None and _cids(bytes(compact.blob.data)) == sorted(wanted):
            return bytes(compact.reference_table("CFF ").data), True
    in_place = _subset(blob, wanted, hb.SubsetFlags.RETAIN_GIDS)
    return (bytes(in_place.blob.data) if in_place is not None else None), False


def _subset(blob: Any, glyphs: set[int], flags: Any) -> Any:
    import uharfbuzz as hb

    request = hb.SubsetInput()
    request.glyph_set.update(glyphs)
    request.flags = flags | hb.SubsetFlags.PASSTHROUGH_UNRECOGNIZED | hb.SubsetFlags.DESUBROUTINIZE
    request.flags |= hb.SubsetFlags.NO_HINTING
    request.drop_table_tag_set.update(int.from_bytes(tag, "big") for tag in _UNUSED_TABLES)
    return hb.subset(hb.Face(blob), request)


def _cids(font: bytes) -> list[int] | None:
    """The CIDs of a CID-keyed CFF font's glyphs in glyph order (else None)."""
    if font[:4] != b"OTTO":
        return None
    from fontTools.ttLib import TTFont

    top = TTFont(io.BytesIO(font))["CFF "].cff.topDictIndex[0]
    if not hasattr(top, "ROS"):
        return None
    return [0, *(int(name.removeprefix("cid")) for name in top.charset[1:])]


# The tokens of a /W array's PDF syntax: brackets and numbers (it holds nothing else).
_W_TOKEN = re.compile(rb"[\[\]]|[-+]?(?:\d+\.?\d*|\.\d+)")
_W_RUN = re.compile(rb"(\d+)\s*\[([^\[\]]*)\]")  # c [w1 w2 …]


def _widths(widths: Object) -> dict[int, float]:
    """A CID font's /W array (``c [w1 w2 …]`` and ``c_first c_last w`` runs) as glyph id → width,
    read from its PDF syntax: item by item through pikepdf took twice as long (a tenth of the join).
    An array of ``c [w1 w2 …]`` runs only, as WeasyPrint writes them (a run a glyph, mostly), is
    read run by run in C (the loop below took a fifth of a join from nothing)."""
    syntax = widths.unparse(resolved=True)
    inside = syntax[syntax.find(b"[") + 1 : syntax.rfind(b"]")]
    if not _W_RUN.sub(b"", inside).strip():
        runs = _W_RUN.findall(inside)
        firsts = [int(first) for first, _ in runs]
        values = [run.split() for _, run in runs]
        glyphs = itertools.chain.from_iterable(map(range, firsts, map(operator.add, firsts, map(len, values))))
        return dict(zip(glyphs, map(float, itertools.chain.from_iterable(values)), strict=True))
    tokens = _W_TOKEN.findall(syntax)[1:-1]  # inside the outer brackets
    found: dict[int, float] = {}
    index = 0
    while index + 1 < len(tokens):
        first = int(tokens[index])
        if tokens[index + 1] == b"[":
            end = tokens.index(b"]", index + 2)
            found.update((first + offset, float(width)) for offset, width in enumerate(tokens[index + 2 : end]))
            index = end + 1
        else:
            found.update((glyph, float(tokens[index + 2])) for glyph in range(first, int(tokens[index + 1]) + 1))
            index += 3
    return found


def _widths_array(widths: dict[int, float]) -> Array:
    """``c [w1 w2 …]`` for each run of consecutive glyph ids, as WeasyPrint writes it."""
    runs: list[list[int]] = []
    for glyph in sorted(widths):
        if runs and runs[-1][-1] == glyph - 1:
            runs[-1].append(glyph)
        else:
            runs.append([glyph])
    items: list[object] = []
    for run in runs:
        items += [run[0], Array([_number(widths[glyph]) for glyph in run])]
    return Array(items)


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


_BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>")


def _to_unicode(stream: Object | None) -> dict[int, bytes] | None:
    """Glyph id → UTF-16BE text of a ToUnicode CMap made of ``bfchar`` entries (as WeasyPrint
    writes them); None for any other."""
    if not isinstance(stream, pikepdf.Stream):
        return None
    data = stream.read_bytes()
    if b"bfrange" in data:
        return None
    return {int(glyph, 16): bytes.fromhex(text.decode()) for glyph, text in _BFCHAR.findall(data)}


def _to_unicode_cmap(texts: dict[int, bytes]) -> bytes:
    lines = [
        b"/CIDInit /ProcSet findresource begin",
        b"12 dict begin",
        b"begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Adobe-Identity-UCS def",
        b"/CMapType 2 def",
        b"1 begincodespacerange",
        b"<0000> <ffff>",
        b"endcodespacerange",
    ]
    entries = sorted(texts.items())
    for start in range(0, len(entries), 100):  # at most 100 entries a block
        batch = entries[start : start + 100]
        lines.append(f"{len(batch)} beginbfchar".encode())
        lines += [f"<{glyph:04x}> <{text.hex()}>".encode() for glyph, text in batch]
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines)


def _cid_font_file(font: Object) -> Object | None:
    """The font file of a Type 0 font with one CID font and a ToUnicode map, else None."""
    if not isinstance(font, Dictionary) or font.get(Name.Subtype) != Name.Type0 or Name.ToUnicode not in font:
        return None
    descendants = font.get(Name.DescendantFonts)
    if not isinstance(descendants, Array) or len(descendants) != 1:
        return None
    descriptor = descendants[0].get(Name.FontDescriptor)
    if not isinstance(descriptor, Dictionary) or Name.W not in descendants[0]:
        return None
    return next((descriptor[key] for key in _FONT_FILES if key in descriptor), None)


def _compressed(stream: pikepdf.Stream, data: bytes) -> pikepdf.Stream:
    """``stream`` holding ``data``, compressed as the file's object streams are: the file is
    written with each stream's data as it is (report.render.serial)."""
    stream.write(flate(data), filter=Name.FlateDecode)
    return stream


def _bit_set(glyphs: set[int]) -> bytes:
    data = bytearray((max(glyphs) + 8) // 8)
    for glyph in glyphs:
        data[glyph // 8] |= 0x80 >> (glyph % 8)
    return bytes(data)


def _copy(out: Pdf, source: Pdf, obj: Object) -> Object:
    """``obj`` of ``source`` copied into ``out`` with the source's object copier (a direct
    object is made indirect in the source first: the copier copies indirect objects only)."""
    if isinstance(obj, Dictionary | Array | pikepdf.Stream):
        return out.copy_foreign(obj if obj.is_indirect else source.make_indirect(obj))
    return obj  # a number, name or string: no references to carry


def _struct_document(root: Object) -> Object | None:
    kids = root.get(Name.K)
    if isinstance(kids, Array) and len(kids) == 1:
        kids = kids[0]
    if isinstance(kids, Dictionary) and kids.get(Name.S) == Name.Document:
        return kids
    return None


def _is_struct_elem(obj: Object) -> bool:
    """A struct element among /K's entries (not an MCID, nor a marked-content or object
    reference: those have no /S)."""
    return isinstance(obj, Dictionary) and _S in obj


def _prefix_ids(table: Object, prefix: str) -> None:
    """Prefixes the IDs and /Headers of the table's elements."""
    stack = [table]
    while stack:
        element = stack.pop()
        _prefix_element_ids(element, prefix)
        children = element.get(_K)
        if isinstance(children, Array):
            stack += [child for child in children if _is_struct_elem(child)]
        elif children is not None and _is_struct_elem(children):
            stack.append(children)


def _prefix_element_ids(element: Object, prefix: str) -> None:
    # ``in`` first: ``get`` of a missing key costs five microseconds, ``in`` half of one.
    if _ID in element and isinstance(identifier := element[_ID], String):
        element[_ID] = String(prefix + str(identifier))
    if _A not in element:
        return
    attributes = element[_A]
    for attribute in attributes if isinstance(attributes, Array) else [attributes]:
        if isinstance(attribute, Dictionary):
            headers = attribute.get(_HEADERS)
            if isinstance(headers, Array):
                attribute[_HEADERS] = Array([String(prefix + str(header)) for header in headers])


def _fill_leaf(leaf: Object, nums: Sequence[tuple[int, Object]], offset: int) -> None:
    """A number tree's leaf with ``nums``, their keys shifted by ``offset``."""
    leaf.Limits = Array([nums[0][0] + offset, nums[-1][0] + offset])
    leaf.Nums = Array([entry for key, value in nums for entry in (key + offset, value)])


def _link(slot: _Slot, item: Object, key: Name, target: Object | None) -> None:
    """The outline item of ``slot`` linked under ``key`` to ``target`` (None: to nothing)."""
    current = item.get(key)
    if (current.objgen if current is not None else None) != (target.objgen if target is not None else None):
        if target is None:
            del item[key]
        else:
            item[key] = target
        slot.changed.add(item.objgen)


def _note_key(keys: list[tuple[Object, Name, int, ObjGen]], obj: Object, key: Name, holder: Object) -> None:
    """The object's key, if it has it, and the indirect object that holds it (written again
    when the key is set)."""
    value = obj.get(key)
    if value is not None:
        keys.append((obj, key, int(value), holder.objgen))


def _blank_page(out: Pdf, model: Object) -> Dictionary:
    """A page with no content, the size of ``model`` (its media, trim and bleed boxes)."""
    page = Dictionary(Type=Name.Page, Resources=Dictionary())
    for key in _BLANK_BOXES:
        box = model.get(key)
        if isinstance(box, Array):
            page[key] = Array([float(number) for number in box])
    if Name.MediaBox not in page:
        page.MediaBox = Array([0, 0, 595.276, 841.89])  # A4, though WeasyPrint always writes one
    return out.make_indirect(page)


def _marked_blank_page(out: Pdf, blank: Pdf) -> Dictionary:
    """The first page of ``blank`` as a model for blank pages: its drawing and resources, no
    place in a structure tree, no links (each blank page is a copy of the model)."""
    page = Dictionary(Type=Name.Page)
    model = blank.pages[0].obj
    for key in (*_BLANK_BOXES, Name.Resources, Name.Contents):
        if key in model:
            page[key] = _copy(out, blank, model[key])
    return page


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(number) for number in version.split(".") if number.isdigit())
