"""A PDF/UA-1 check for the tests: the machine-checkable rules of ISO 14289-1 (as veraPDF's
profile and the Matterhorn Protocol number them) that a tagged PDF from WeasyPrint can break,
read with pikepdf over the structure tree, the content streams and the annotations.

veraPDF cannot be installed from the package registries this project uses; this is the subset
that matters here, not a validator. ``problems(pdf)`` lists what it finds, one line each, with
the rule's number: an empty list is a pass.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
from fontTools.cffLib import CFFFontSet
from fontTools.pens.basePen import NullPen
from fontTools.ttLib import TTFont
from pikepdf import Array, Dictionary, Name, NumberTree

# ISO 32000-1 14.8.4: the standard structure types (PDF/UA 7.1-5: others must be role-mapped to one).
STANDARD_TYPES = {
    "Document", "Part", "Art", "Sect", "Div", "BlockQuote", "Caption", "TOC", "TOCI", "Index", "NonStruct",
    "Private", "P", "H", "H1", "H2", "H3", "H4", "H5", "H6", "L", "LI", "Lbl", "LBody", "Table", "TR", "TH", "TD",
    "THead", "TBody", "TFoot", "Span", "Quote", "Note", "Reference", "BibEntry", "Code", "Link", "Annot", "Ruby",
    "RB", "RT", "RP", "Warichu", "WT", "WP", "Figure", "Formula", "Form",
}  # fmt: skip
_TEXT_SHOWING = {"Tj", "TJ", "'", '"'}
_HEADING = re.compile(r"^H([1-6])$")


@dataclass
class _Tree:
    """The structure tree as reached from the root: each element once, with its parent."""

    elements: list[Dictionary] = field(default_factory=list)
    parent: dict[tuple[int, int], Dictionary] = field(default_factory=dict)
    reached: set[tuple[int, int]] = field(default_factory=set)
    mcids: dict[tuple[tuple[int, int], int], tuple[int, int]] = field(default_factory=dict)  # (page, MCID) → element
    objrs: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)  # annotation → elements


def problems(path: Path | bytes) -> list[str]:
    """What breaks PDF/UA-1 in the PDF at ``path`` (or of these bytes)."""
    with pikepdf.open(io.BytesIO(path) if isinstance(path, bytes) else path) as pdf:
        found = list(_catalog(pdf))
        root = pdf.Root.get(Name.StructTreeRoot)
        if not isinstance(root, Dictionary):
            return [*found, "7.1-8: no structure tree"]
        tree = _walk(pdf, root)
        found += _elements(tree, root)
        found += _parent_tree(pdf, root, tree)
        found += _content(pdf, tree)
        found += _annotations(pdf, root, tree)
        found += _fonts(pdf)
        return found


def _catalog(pdf: pikepdf.Pdf) -> Iterator[str]:
    if not str(pdf.Root.get(Name.Lang, "")).strip():
        yield "7.2-34: the catalog has no /Lang"
    preferences = pdf.Root.get(Name.ViewerPreferences, Dictionary())
    if preferences.get(Name.DisplayDocTitle) is not True:
        yield "7.1-10: /ViewerPreferences /DisplayDocTitle is not true"
    if pdf.Root.get(Name.MarkInfo, Dictionary()).get(Name.Marked) is not True:
        yield "7.1-11: /MarkInfo /Marked is not true"
    metadata = pdf.Root.get(Name.Metadata)
    xmp = metadata.read_bytes().decode("utf-8", "replace") if metadata is not None else ""
    if not re.search(r"pdfuaid:part(=\"|>)1", xmp):
        yield "5-1: the XMP metadata has no pdfuaid:part 1"
    if "<dc:title>" not in xmp:
        yield "7.1-9: the XMP metadata has no dc:title"


def _kids(element: Dictionary) -> list[object]:
    kids = element.get(Name.K)
    if kids is None:
        return []
    return list(kids) if isinstance(kids, Array) else [kids]


def _walk(pdf: pikepdf.Pdf, root: Dictionary) -> _Tree:
    tree = _Tree()
    stack: list[tuple[Dictionary, Dictionary | None]] = [(kid, root) for kid in reversed(_kids(root))]
    while stack:
        element, parent = stack.pop()
        key = element.objgen
        if key in tree.reached:
            continue
        tree.reached.add(key)
        tree.elements.append(element)
        if parent is not None:
            tree.parent[key] = parent
        page = element.get(Name.Pg)
        children = []
        for kid in _kids(element):
            if isinstance(kid, int):
                tree.mcids[(page.objgen if page is not None else (0, 0), int(kid))] = key
            elif isinstance(kid, Dictionary) and kid.get(Name.Type) == Name.MCR:
                kid_page = kid.get(Name.Pg, page)
                tree.mcids[(kid_page.objgen, int(kid.MCID))] = key
            elif isinstance(kid, Dictionary) and kid.get(Name.Type) == Name.OBJR:
                tree.objrs.setdefault(kid.Obj.objgen, []).append(key)
            elif isinstance(kid, Dictionary):
                children.append(kid)
        stack.extend((child, element) for child in reversed(children))
    return tree


def _elements(tree: _Tree, root: Dictionary) -> Iterator[str]:
    role_map = root.get(Name.RoleMap, Dictionary())
    ids: Counter[str] = Counter()
    previous_level = 0
    for element in tree.elements:
        kind = str(element.get(Name.S, "/"))[1:]
        standard = str(role_map.get("/" + kind, "/" + kind))[1:]
        where = f"{kind} {element.objgen[0]}"
        if standard not in STANDARD_TYPES:
            yield f"7.1-5: {where} is not a standard type nor role-mapped to one"
        parent = tree.parent.get(element.objgen)
        if parent is not None and element.get(Name.P) is not None and element.P.objgen != parent.objgen:
            yield f"7.1: {where}'s /P is not the element that lists it"
        if Name.ID in element:
            ids[str(element.ID)] += 1
        if standard == "Figure" and not str(element.get(Name.Alt, "")).strip() and Name.ActualText not in element:
            yield f"7.3-1: {where} has no /Alt"
        if standard == "Note" and Name.ID not in element:
            yield f"7.9-1: {where} has no /ID"
        if (heading := _HEADING.match(standard)) is not None:
            level = int(heading.group(1))
            if level > previous_level + 1:
                yield f"7.4.2-1: {where} follows an H{previous_level}: a heading level is skipped"
            previous_level = level
        if standard == "Table":
            yield from _table(element, tree, where)
    for name, count in ids.items():
        if count > 1:
            yield f"7.9-2: the ID {name!r} is used by {count} elements"


def _table(table: Dictionary, tree: _Tree, where: str) -> Iterator[str]:
    """7.5: headers are TH, and each data cell is tied to its headers (/Headers, or a /Scope on each TH)."""
    inside = [e for e in tree.elements if _inside(e, table, tree)]
    if not any(e.get(Name.S) == Name.TR for e in inside):
        yield f"7.5: {where} has no rows"
    cells = [e for e in inside if str(e.get(Name.S)) in ("/TH", "/TD")]
    headers = [cell for cell in cells if cell.S == Name.TH]
    if not headers:  # a table of data alone: nothing to tie
        return
    scoped = all(Name.Scope in _attributes(cell) for cell in headers)
    ids = {str(cell.ID) for cell in headers if Name.ID in cell}
    for cell in cells:
        if cell.S != Name.TD or scoped:
            continue
        named = [str(name) for name in _attributes(cell).get(Name.Headers, Array())]
        if not named or not set(named) <= ids:
            yield f"7.5-2: {where}: data cell {cell.objgen[0]} is not tied to its headers"
        parent = tree.parent.get(cell.objgen)
        if parent is None or parent.get(Name.S) != Name.TR:
            yield f"7.5: {where}: cell {cell.objgen[0]} is not in a TR"


def _attributes(element: Dictionary) -> Dictionary:
    found = Dictionary()
    owners = element.get(Name.A)
    for owner in owners if isinstance(owners, Array) else [owners] if owners is not None else []:
        if isinstance(owner, Dictionary):
            for key, value in owner.items():
                found[key] = value
    return found


def _inside(element: Dictionary, ancestor: Dictionary, tree: _Tree) -> bool:
    parent = tree.parent.get(element.objgen)
    while parent is not None:
        if parent.objgen == ancestor.objgen:
            return True
        parent = tree.parent.get(parent.objgen)
    return False


def _parent_tree(pdf: pikepdf.Pdf, root: Dictionary, tree: _Tree) -> Iterator[str]:
    """Every page's MCIDs and every annotation map, through the ParentTree, to an element of
    the tree that lists them."""
    parent_tree = root.get(Name.ParentTree)
    entries = dict(NumberTree(parent_tree).items()) if isinstance(parent_tree, Dictionary) else {}
    for number, page in enumerate(pdf.pages, start=1):
        key = page.obj.get(Name.StructParents)
        if key is None:
            continue
        mapped = entries.get(int(key))
        if not isinstance(mapped, Array):
            yield f"7.1: page {number}: /StructParents {key} is not in the ParentTree"
            continue
        for mcid, element in enumerate(mapped):
            if not isinstance(element, Dictionary):
                continue
            if element.objgen not in tree.reached:
                yield f"7.1: page {number}: MCID {mcid} belongs to an element out of the tree"
            elif tree.mcids.get((page.obj.objgen, mcid)) != element.objgen:
                yield f"7.1: page {number}: MCID {mcid}'s ParentTree element does not list it"


def _content(pdf: pikepdf.Pdf, tree: _Tree) -> Iterator[str]:
    """7.1-3: all text is either an artifact or tagged content of an element of the tree."""
    for number, page in enumerate(pdf.pages, start=1):
        stack: list[str] = []  # "artifact", "tagged" or "" for each open marked-content sequence
        untagged = unreached = 0
        for operands, operator in pikepdf.parse_content_stream(page):
            name = str(operator)
            if name in ("BDC", "BMC"):
                tag = str(operands[0])
                properties = operands[1] if name == "BDC" else None
                if tag == "/Artifact":
                    stack.append("artifact")
                elif isinstance(properties, Dictionary) and Name.MCID in properties:
                    stack.append("tagged")
                    if tree.mcids.get((page.obj.objgen, int(properties.MCID))) is None:
                        unreached += 1
                else:
                    stack.append("")
            elif name == "EMC" and stack:
                stack.pop()
            elif name in _TEXT_SHOWING and not ({"artifact", "tagged"} & set(stack)):
                untagged += 1
        if untagged:
            yield f"7.1-3: page {number}: {untagged} text operations neither tagged nor an artifact"
        if unreached:
            yield f"7.1-3: page {number}: {unreached} marked-content sequences no element of the tree lists"


def _annotations(pdf: pikepdf.Pdf, root: Dictionary, tree: _Tree) -> Iterator[str]:
    links_with_annotations: Counter[tuple[int, int]] = Counter()
    for number, page in enumerate(pdf.pages, start=1):
        for annotation in page.obj.get(Name.Annots, Array()):
            subtype = annotation.get(Name.Subtype)
            if subtype in (Name.Popup, Name.PrinterMark):
                continue
            where = f"page {number}: {str(subtype)[1:]} annotation {annotation.objgen[0]}"
            parents = tree.objrs.get(annotation.objgen, [])
            if Name.StructParent not in annotation or not parents:
                yield f"7.18.1-2: {where} is not in the structure tree"
                continue
            if subtype != Name.Link:
                continue
            elements = [e for e in tree.elements if e.objgen in parents]
            if {str(e.S) for e in elements} != {"/Link"}:
                yield f"7.18.5-1: {where} is nested in a {str(elements[0].S)[1:]}, not a Link"
            links_with_annotations.update(parents)
            if not str(annotation.get(Name.Contents, "")).strip():
                yield f"7.18.5-2: {where} has no /Contents"
            x1, y1, x2, y2 = (float(value) for value in annotation.Rect)
            if abs(x2 - x1) < 1 or abs(y2 - y1) < 1:
                yield f"7.18.5: {where} has a rectangle of no area ({x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f})"
    for element in tree.elements:
        if element.get(Name.S) == Name.Link and not links_with_annotations[element.objgen]:
            yield f"7.18.5: Link {element.objgen[0]} has no link annotation"


def _fonts(pdf: pikepdf.Pdf) -> Iterator[str]:
    """7.21.4.1: fonts embedded; 7.21.5-1: the widths written agree with the font program's."""
    seen: set[tuple[int, int]] = set()
    for page in pdf.pages:
        fonts = page.obj.get(Name.Resources, Dictionary()).get(Name.Font, Dictionary())
        for font in fonts.values():
            if font.objgen in seen:
                continue
            seen.add(font.objgen)
            for descendant in font.get(Name.DescendantFonts, Array([font])):
                yield from _font(descendant)


def _font(font: Dictionary) -> Iterator[str]:
    name = str(font.get(Name.BaseFont, "?"))[1:]
    descriptor = font.get(Name.FontDescriptor)
    file = next((descriptor[key] for key in (Name.FontFile, Name.FontFile2, Name.FontFile3) if key in descriptor), None)
    if file is None:
        yield f"7.21.4.1-1: font {name} is not embedded"
        return
    if font.get(Name.Subtype) not in (Name.CIDFontType0, Name.CIDFontType2):
        return  # the report's fonts are all CID fonts
    if font.get(Name.CIDToGIDMap, Name.Identity) != Name.Identity:
        return
    written = _cid_widths(font.get(Name.W, Array()))
    advances = _advances(file)
    # The glyphs given a width (a cut font keeps every glyph's place, and a composite glyph's parts,
    # which no text shows).
    wrong = {cid: advances[cid] for cid in sorted(written) if cid in advances and abs(advances[cid] - written[cid]) > 1}
    if wrong:
        cid, actual = next(iter(wrong.items()))
        yield (
            f"7.21.5-1: font {name}: {len(wrong)} glyph widths disagree with the font program"
            f" (CID {cid}: {written[cid]:g}, not {actual:g})"
        )


def _advances(file: pikepdf.Stream) -> dict[int, float]:
    """The advance of each glyph of an embedded font program, by CID, in thousandths of an em:
    a bare CFF (/CIDFontType0C) from its charstrings, an OpenType or TrueType font from hmtx.
    A CID-keyed font names its glyphs by CID; otherwise (/CIDToGIDMap /Identity) CID = glyph id."""
    data = file.read_bytes()
    if file.get(Name.Subtype) in (Name.CIDFontType0C, Name.Type1C):
        fonts = CFFFontSet()
        fonts.decompile(io.BytesIO(data), None)
        top = fonts[fonts.fontNames[0]]
        scale = 1000 * float(top.FontMatrix[0])
        charstrings = top.CharStrings
        names = list(charstrings.keys())
        widths = {}
        for name in names:
            charstrings[name].draw(NullPen())  # the width is read with the outline
            widths[name] = charstrings[name].width * scale
    else:
        program = TTFont(io.BytesIO(data))
        scale = 1000 / program["head"].unitsPerEm
        names = program.getGlyphOrder()
        widths = {name: program["hmtx"].metrics[name][0] * scale for name in names}
    by_cid = {int(n[3:]): n for n in names if n.startswith("cid") and n[3:].isdigit()} or dict(enumerate(names))
    return {cid: widths[name] for cid, name in by_cid.items()}


def _cid_widths(array: Array) -> dict[int, float]:
    """/W: ``c [w1 w2 …]`` and ``c_first c_last w`` runs."""
    widths: dict[int, float] = {}
    items = list(array)
    index = 0
    while index < len(items):
        first = int(items[index])
        if isinstance(items[index + 1], Array):
            for offset, width in enumerate(items[index + 1]):
                widths[first + offset] = float(width)
            index += 2
        else:
            for cid in range(first, int(items[index + 1]) + 1):
                widths[cid] = float(items[index + 2])
            index += 3
    return widths
