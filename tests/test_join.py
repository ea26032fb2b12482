"""Joining parts laid out apart (report/render/join.py): real WeasyPrint parts, checked as one PDF."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pikepdf
import pypdf
import pytest
from fontTools.cffLib import CFFFontSet
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from helpers import BUNDLED_PDF_FAMILIES, REPO_ROOT, cut_faces, pdffonts
from hypothesis import given
from hypothesis import strategies as st
from pikepdf import Array, Dictionary, Name, NameTree, NumberTree, String
from PIL import Image

import report.render.weasy
import report.render.workers
from report.fonts import FACES, font_face_css, fontconfig_file
from report.render.join import Joiner, JoinPart, join_pdfs
from report.render.pdf import _Joined, _Part, join_order
from report.render.serial import span
from report.render.weasy import (
    LAYOUTS_RESUMABLE,
    NO_NUMBERS,
    DrawJob,
    JoinedPart,
    JoinJob,
    PartJob,
    Styles,
    Worker,
    face_name,
)
from report.render.workers import LAYOUTS_AHEAD, RESUMING_GAIN, Session

# Runs in a fresh interpreter: fontconfig must see only our fonts before Pango starts.
RENDER = """
import json, sys, warnings
warnings.filterwarnings("ignore", message="No fonts configured in FontConfig")
from contextlib import nullcontext
from report.render.weasy import load_weasyprint, real_fonts
load_weasyprint()  # as in the PDF workers: parts name the report's font subsets
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
job = json.load(sys.stdin)
fonts = FontConfiguration()
css = [CSS(string=job["css"], base_url=job["base_url"], font_config=fonts)]
for item in job["documents"]:
    document = HTML(string=item["html"], base_url=job["base_url"]).render(
        stylesheets=css, font_config=fonts, pdf_tags=True, pdf_variant=item["variant"])
    with real_fonts() if item["alone"] else nullcontext():
        document.write_pdf(item["target"], pdf_tags=True, pdf_variant=item["variant"])
"""

CSS = """
@page { size: A4; margin: 20mm; @bottom-center { content: counter(page); } }
body { font-family: "Noto Serif", "Noto Serif CJK JP"; font-size: 11pt; }
h1, h2 { font-family: "Noto Sans", "Noto Sans CJK JP"; font-weight: 700; }
h1 { break-before: page; bookmark-level: 1; }
h2 { bookmark-level: 2; }
img { width: 20mm; }
"""

FILLER_JA = "これは日本語の本文で、組版の確認のために繰り返されます。" * 14
FILLER_EN = "The quick brown fox jumps over the lazy dog, again and again, to fill the page. " * 12


def _page(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>結合のテスト</title>'
        f'<meta name="author" content="試験 太郎"></head><body>{body}</body></html>'
    )


# Each target holds a marker (TARGET-<id>) that tells on which page it was drawn.
COVER = """
<section id="cover"><p>PART-COVER 表紙</p><h1 id="toc">TARGET-toc 目次 Contents</h1>
<p><a href="#ch1">第一章へ LINK-a</a></p><p><a href="#ch2-sec">第二章の節へ LINK-b</a></p>
<p><a href="#ch3">第三章へ LINK-c</a></p><p><a href="#toc">目次へ</a></p>
<span id="ch1"></span><span id="ch2-sec"></span><span id="ch3"></span></section>
"""
CHAPTER_1 = f"""
<section id="ch1"><h1>TARGET-ch1 第一章 はじめに</h1><p>PART-ONE</p>
<p><img src="dot.png" alt="赤い点"></p>
<p>{FILLER_JA}</p><p>{FILLER_EN}</p><p>{FILLER_JA}</p><p>{FILLER_EN}</p><p>{FILLER_JA}</p>
<h2 id="ch1-sec">TARGET-ch1-sec 一の節</h2>
<p><a href="#ch1">この章の頭へ</a>、<a href="#ch2-sec">第二章の節へ</a>、<a href="https://example.org/">外へ</a></p>
<table><thead><tr><th>見出し</th><th>Heading</th></tr></thead>
<tbody><tr><td>セル</td><td>cell</td></tr><tr><td>二行目</td><td>row two</td></tr></tbody></table>
<span id="ch2-sec"></span></section>
"""
CHAPTER_2 = f"""
<section id="ch2"><h1>TARGET-ch2 Chapter Two</h1><p>PART-TWO</p>
<p><img src="dot.png" alt="赤い点"></p><p>{FILLER_EN}</p><p>{FILLER_JA}</p><p>{FILLER_EN}</p>
<h2 id="ch2-sec">TARGET-ch2-sec 二の節</h2>
<p><a href="#ch1-sec">back to 1.1</a> <a href="#ch2">this chapter</a></p>
<table><tr><th>列</th><th>Column</th></tr><tr><td>値</td><td>value</td></tr></table>
<span id="ch1-sec"></span></section>
"""
CHAPTER_3 = """<section id="ch3"><h1>TARGET-ch3 第三章 短い章</h1><p>PART-THREE</p>
<p><a href="#toc">目次へ戻る</a></p><span id="toc"></span></section>"""

QUIRKS = """<p>QUIRKS <a href="#missing">to a missing anchor</a> <a href="#stub">to a stand-in</a>
<a href="#hidden">to a hidden one</a></p><span id="stub"></span><span id="hidden" style="display: none"></span>"""

PARTS = {
    "cover": (COVER, frozenset({"ch1", "ch2-sec", "ch3"}), False),
    "one": (CHAPTER_1, frozenset({"ch2-sec"}), False),
    "two": (CHAPTER_2, frozenset({"ch1-sec"}), False),
    "three": (CHAPTER_3, frozenset({"toc"}), True),
}
MARKERS = {"cover": "PART-COVER", "one": "PART-ONE", "two": "PART-TWO", "three": "PART-THREE"}
OUTLINE = [
    "TARGET-toc 目次 Contents",
    "TARGET-ch1 第一章 はじめに",
    "TARGET-ch2 Chapter Two",
    "TARGET-ch3 第三章 短い章",
]
OUTLINE_CHILDREN = {
    "TARGET-ch1 第一章 はじめに": ["TARGET-ch1-sec 一の節"],
    "TARGET-ch2 Chapter Two": ["TARGET-ch2-sec 二の節"],
}


@dataclass(frozen=True)
class Rendered:
    parts: tuple[JoinPart, ...]
    names: tuple[str, ...]
    whole: bytes  # the same book written by WeasyPrint at once
    pdfa_parts: tuple[JoinPart, ...]  # two small parts written as PDF/A-3b
    pdfa1_parts: tuple[JoinPart, ...]  # the same written as PDF/A-1b (whose fonts have a CID set)
    quirks: bytes  # what WeasyPrint does with stand-ins and links to missing anchors
    joined: bytes
    path: Path  # the joined PDF, for the command-line tools
    whole_path: Path
    fonts: dict[str, Path]  # the font files the parts name instead of embedding them


def _render(directory: Path, documents: dict[str, tuple[str, str | None]]) -> dict[str, bytes]:
    """Each HTML document as the PDF workers write it: tagged, naming its fonts (the bundled
    faces cut to the characters of all documents, as a report's subsets are) by hash."""
    urls = cut_faces(directory, "".join(html for html, _ in documents.values()), CSS)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(directory / "dot.png")
    job = {
        "css": font_face_css(urls) + CSS,
        "base_url": directory.as_uri() + "/",
        "documents": [
            {"html": html, "variant": variant, "target": str(directory / f"{name}.pdf"), "alone": name == "whole"}
            for name, (html, variant) in documents.items()
        ],
    }
    environment = {**os.environ, "FONTCONFIG_FILE": str(fontconfig_file(directory, bundled_dir=False))}
    subprocess.run(
        [sys.executable, "-c", RENDER], input=json.dumps(job), text=True, check=True, env=environment, cwd=REPO_ROOT
    )
    return {name: (directory / f"{name}.pdf").read_bytes() for name in documents}


def _fonts(directory: Path) -> dict[str, Path]:
    """The faces the parts name, by name: the files their @font-face rules point at."""
    return {
        face_name(face.family, face.weight): directory / face.file
        for face in FACES
        if (directory / face.file).is_file()
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    directory = tmp_path_factory.mktemp("join")
    documents: dict[str, tuple[str, str | None]] = {
        name: (_page(html), "pdf/ua-1") for name, (html, _, _) in PARTS.items()
    }
    documents["whole"] = (_page("".join(html for html, _, _ in PARTS.values())), "pdf/ua-1")
    documents["a-one"] = (_page(CHAPTER_1), "pdf/a-3b")
    documents["a-two"] = (_page(CHAPTER_2), "pdf/a-3b")
    documents["a1-one"] = (_page(CHAPTER_1), "pdf/a-1b")
    documents["a1-two"] = (_page(CHAPTER_2), "pdf/a-1b")
    documents["quirks"] = (_page(QUIRKS), "pdf/ua-1")
    pdfs = _render(directory, documents)
    parts = tuple(JoinPart(pdfs[name], stubs, blank) for name, (_, stubs, blank) in PARTS.items())
    fonts = _fonts(directory)
    joined = join_pdfs(parts, fonts)
    path = directory / "joined.pdf"
    path.write_bytes(joined)
    pdfa, pdfa1 = (
        (JoinPart(pdfs[f"{a}-one"], frozenset({"ch2-sec"})), JoinPart(pdfs[f"{a}-two"], frozenset({"ch1-sec"})))
        for a in ("a", "a1")
    )
    whole = directory / "whole.pdf"
    return Rendered(parts, tuple(PARTS), pdfs["whole"], pdfa, pdfa1, pdfs["quirks"], joined, path, whole, fonts)


# The parts as added to the join: in order, or not (the builder adds the contents last, once it
# is drawn): every test that takes ``joined`` holds for both.
JOIN_ORDERS = {"in order": (0, 1, 2, 3), "out of order": (3, 1, 0, 2)}


@pytest.fixture(scope="session", params=list(JOIN_ORDERS))
def joined(request: pytest.FixtureRequest, rendered: Rendered) -> bytes:
    return rendered.joined if request.param == "in order" else _joined_in(rendered, JOIN_ORDERS[request.param])


@functools.cache
def _open(data: bytes) -> pikepdf.Pdf:
    """The PDF, kept open: pikepdf objects die with their Pdf (only read, never changed)."""
    return pikepdf.Pdf.open(io.BytesIO(data))


def _texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def _expected_layout(rendered: Rendered) -> list[str | None]:
    """For each page of the joined PDF: the name of the part it comes from (None: a blank page)."""
    layout: list[str | None] = []
    for name, part in zip(rendered.names, rendered.parts, strict=True):
        if part.blank_before:
            layout.append(None)
        layout += [name] * len(_open(part.pdf).pages)
    return layout


# --- pages -------------------------------------------------------------------------------------


def test_pages_in_order_with_the_blank_pages_asked_for(rendered: Rendered, joined: bytes) -> None:
    layout = _expected_layout(rendered)
    texts = _texts(joined)
    assert len(texts) == len(layout)
    assert layout.count("one") >= 2, "chapter one runs over several pages"
    for number, (name, text) in enumerate(zip(layout, texts, strict=True)):
        if name is None:
            assert not text.strip(), f"page {number} should be blank"
        else:
            own = {n for n, marker in MARKERS.items() if marker in text}
            assert own <= {name}, f"page {number} shows the markers of {own}"
    for name, marker in MARKERS.items():
        first = next(i for i, text in enumerate(texts) if marker in text)
        assert first == layout.index(name), f"{name} starts on page {first}"
    # The part pages are the parts' pages themselves, in order.
    sources = [page.extract_text() for part in rendered.parts for page in pypdf.PdfReader(io.BytesIO(part.pdf)).pages]
    assert [text for name, text in zip(layout, texts, strict=True) if name is not None] == sources


def test_blank_page_is_empty_and_sized_like_the_next_page(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    layout = _expected_layout(rendered)
    blanks = [number for number, name in enumerate(layout) if name is None]
    assert blanks == [layout.index("three") - 1]
    for number in blanks:
        page = pdf.pages[number].obj
        following = pdf.pages[number + 1].obj
        assert Name.Contents not in page
        assert Name.StructParents not in page
        assert Name.Annots not in page
        assert [float(x) for x in page.MediaBox] == [float(x) for x in following.MediaBox]
        assert [float(x) for x in page.TrimBox] == [float(x) for x in following.TrimBox]


# --- links -------------------------------------------------------------------------------------


def _dests(pdf: pikepdf.Pdf) -> dict[str, pikepdf.Object]:
    return dict(NameTree(pdf.Root.Names.Dests).items())


def test_every_link_resolves_to_the_page_of_its_target(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    texts = _texts(joined)
    dests = _dests(pdf)
    page_numbers = {page.obj.objgen: number for number, page in enumerate(pdf.pages)}
    links = 0
    cross_part = 0
    layout = _expected_layout(rendered)
    for number, page in enumerate(pdf.pages):
        for annotation in page.obj.get(Name.Annots, Array()):
            if annotation.get(Name.Subtype) != Name.Link or Name.Dest not in annotation:
                continue
            name = str(annotation.Dest)
            assert name in dests, f"link to {name!r} on page {number} goes nowhere"
            target = page_numbers[dests[name][0].objgen]
            assert f"TARGET-{name}" in texts[target], f"{name} leads to page {target}"
            links += 1
            cross_part += layout[target] != layout[number]
    assert links >= 9  # one per internal <a> at least (a link broken over lines makes more)
    assert cross_part >= 5


def test_each_name_once_from_its_owner_never_from_a_stub(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    tree = pdf.Root.Names.Dests
    leaves = list(tree.Kids)  # leaves whose limits are their first and last keys
    assert all(list(leaf.Limits) == [leaf.Names[0], leaf.Names[-2]] for leaf in leaves)
    flat = [entry for leaf in leaves for entry in leaf.Names]
    keys = [bytes(key) for key in flat[0::2]]
    assert keys == sorted(keys), "a name tree is sorted"
    assert len(keys) == len(set(keys))
    owned: dict[str, int] = {}
    layout = _expected_layout(rendered)
    for index, (name, part) in enumerate(zip(rendered.names, rendered.parts, strict=True)):
        for key in NameTree(_open(part.pdf).Root.Names.Dests):
            if key not in part.stubs:
                assert key not in owned, f"{key} is owned by two parts"
                owned[key] = index
        assert part.stubs <= set(NameTree(_open(part.pdf).Root.Names.Dests).keys()), (
            f"WeasyPrint writes a destination for each (empty) stand-in span of {name}"
        )
    dests = _dests(pdf)
    assert set(dests) == set(owned)
    page_numbers = {page.obj.objgen: number for number, page in enumerate(pdf.pages)}
    for key, index in owned.items():
        assert layout[page_numbers[dests[key][0].objgen]] == rendered.names[index]


# --- structure tree ----------------------------------------------------------------------------


def _is_elem(obj: pikepdf.Object) -> bool:
    return isinstance(obj, Dictionary) and Name.S in obj and obj.get(Name.Type) not in (Name.MCR, Name.OBJR)


def _walk(root: pikepdf.Object) -> dict[tuple[int, int], pikepdf.Object]:
    """Every struct element reached through /K, checking that each kid's /P is its parent."""
    found: dict[tuple[int, int], pikepdf.Object] = {}
    stack = [root]
    while stack:
        element = stack.pop()
        kids = element.get(Name.K)
        for kid in kids if isinstance(kids, Array) else [kids]:
            if _is_elem(kid):
                assert kid.P.objgen == element.objgen, f"{kid.S} {kid.objgen} has the wrong /P"
                assert kid.objgen not in found, "an element is reached twice"
                found[kid.objgen] = kid
                stack.append(kid)
    return found


def _ancestors(element: pikepdf.Object) -> list[tuple[int, int]]:
    chain = []
    while Name.P in element:
        element = element.P
        chain.append(element.objgen)
    return chain


def _parent_tree(pdf: pikepdf.Pdf) -> dict[int, pikepdf.Object]:
    return dict(NumberTree(pdf.Root.StructTreeRoot.ParentTree).items())


def _margin_elements(pdf: pikepdf.Pdf) -> int:
    """ParentTree elements that /K does not reach: WeasyPrint leaves the page margin boxes'
    contents (here the page numbers) out of the tree but lists them in the ParentTree."""
    reached = _walk(pdf.Root.StructTreeRoot)
    return sum(
        1
        for value in _parent_tree(pdf).values()
        for element in (value if isinstance(value, Array) else [value])
        if element.objgen not in reached
    )


def test_one_document_element_holding_the_parts_in_order(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    root = pdf.Root.StructTreeRoot
    assert len(root.K) == 1
    document = root.K[0]
    assert Name.Document == document.S
    assert document.P.objgen == root.objgen
    documents = [obj for obj in pdf.objects if isinstance(obj, Dictionary) and obj.get(Name.S) == Name.Document]
    assert len(documents) == 1, "the parts' own Document elements are gone"
    roots = [obj for obj in pdf.objects if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructTreeRoot]
    assert len(roots) == 1
    expected = [str(kid.S) for part in rendered.parts for kid in _open(part.pdf).Root.StructTreeRoot.K[0].K]
    assert [str(kid.S) for kid in document.K] == expected
    for kid in document.K:
        assert kid.P.objgen == document.objgen


def test_parent_tree_maps_each_page_and_link_without_collisions(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    tree = _parent_tree(pdf)
    reached = _walk(pdf.Root.StructTreeRoot)
    document = pdf.Root.StructTreeRoot.K[0].objgen
    keys_seen: set[int] = set()
    pages_checked = links_checked = 0
    for page in pdf.pages:
        obj = page.obj
        if Name.StructParents in obj:
            key = int(obj.StructParents)
            assert key not in keys_seen
            keys_seen.add(key)
            elements = tree[key]
            mcids = _mcids(page)
            assert mcids, "each part page has marked content"
            assert max(mcids) < len(elements)
            for mcid in mcids:
                element = elements[mcid]
                assert element.Pg.objgen == obj.objgen, "the element of an MCID names the page it is on"
                assert mcid in _kid_mcids(element)
                assert element.objgen in reached or document in _ancestors(element)
            pages_checked += 1
        for annotation in obj.get(Name.Annots, Array()):
            key = int(annotation.StructParent)
            assert key not in keys_seen
            keys_seen.add(key)
            link = tree[key]
            assert Name.Link == link.S
            assert link.objgen in reached
            objrs = [kid for kid in link.K if isinstance(kid, Dictionary) and kid.get(Name.Type) == Name.OBJR]
            assert [objr.Obj.objgen for objr in objrs] == [annotation.objgen]
            assert objrs[0].Pg.objgen == obj.objgen
            links_checked += 1
    assert set(tree) == keys_seen, "no ParentTree key without a page or annotation"
    assert pages_checked == sum(len(_open(part.pdf).pages) for part in rendered.parts)
    assert links_checked >= 10
    if Name.ParentTreeNextKey in pdf.Root.StructTreeRoot:
        assert int(pdf.Root.StructTreeRoot.ParentTreeNextKey) > max(tree)


def test_every_element_reached_and_every_pg_on_a_joined_page(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    reached = _walk(pdf.Root.StructTreeRoot)
    pages = {page.obj.objgen for page in pdf.pages}
    for element in reached.values():
        if Name.Pg in element:
            assert element.Pg.objgen in pages
    # What the ParentTree names is reached through /K, but for the margin boxes' contents,
    # which are out of /K in each part as WeasyPrint writes them, and stay so (no more, no fewer).
    assert _margin_elements(pdf) == sum(_margin_elements(_open(part.pdf)) for part in rendered.parts)
    document = pdf.Root.StructTreeRoot.K[0].objgen
    for value in _parent_tree(pdf).values():
        for element in value if isinstance(value, Array) else [value]:
            assert element.objgen in reached or document in _ancestors(element)
            assert element.Pg.objgen in pages
    elements = [obj for obj in pdf.objects if _is_elem(obj) and obj.get(Name.Type) == Name.StructElem]
    within = {element.objgen for element in elements if document in _ancestors(element)}
    assert within == {element.objgen for element in elements} - {document}


def test_table_header_ids_stay_unique(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    elements = _walk(pdf.Root.StructTreeRoot).values()
    ids = [str(element.ID) for element in elements if Name.ID in element]
    assert len(ids) >= 4
    assert len(ids) == len(set(ids))
    for element in elements:
        attributes = element.get(Name.A)
        if isinstance(attributes, Dictionary) and Name.Headers in attributes:
            assert {str(header) for header in attributes.Headers} <= set(ids)


def _mcids(page: pikepdf.Page) -> list[int]:
    found = []
    for operands, operator in pikepdf.parse_content_stream(page):
        if operator == pikepdf.Operator("BDC") and isinstance(operands[1], Dictionary) and Name.MCID in operands[1]:
            found.append(int(operands[1].MCID))
    return found


def _kid_mcids(element: pikepdf.Object) -> list[int]:
    kids = element.K
    return [int(kid) for kid in (kids if isinstance(kids, Array) else [kids]) if isinstance(kid, int)]


# --- outline -----------------------------------------------------------------------------------


def _outline(item: pikepdf.Object | None, parent: pikepdf.Object) -> list[pikepdf.Object]:
    items = []
    previous = None
    while item is not None:
        assert item.Parent.objgen == parent.objgen
        if previous is None:
            assert Name.Prev not in item
        else:
            assert item.Prev.objgen == previous.objgen
        items.append(item)
        previous = item
        item = item.get(Name.Next)
    if items:
        assert parent.First.objgen == items[0].objgen
        assert parent.Last.objgen == items[-1].objgen
    return items


def test_outline_is_the_parts_outlines_in_order(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    texts = _texts(joined)
    root = pdf.Root.Outlines
    top = _outline(root.First, root)
    assert [str(item.Title) for item in top] == OUTLINE
    visible = len(top)
    page_numbers = {page.obj.objgen: number for number, page in enumerate(pdf.pages)}
    for item in top:
        children = _outline(item.get(Name.First), item)
        assert [str(child.Title) for child in children] == OUTLINE_CHILDREN.get(str(item.Title), [])
        assert int(item.Count) == len(children)
        visible += len(children)
        for entry in (item, *children):
            page = page_numbers[entry.Dest[0].objgen]
            assert str(entry.Title).split()[0] in texts[page]
    assert int(root.Count) == visible


# --- fonts, size, validity, metadata -----------------------------------------------------------


def _font_files(pdf: pikepdf.Pdf) -> list[pikepdf.Object]:
    found = {}
    for obj in pdf.objects:
        if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.FontDescriptor:
            for key in (Name.FontFile, Name.FontFile2, Name.FontFile3):
                if key in obj:
                    found[obj[key].objgen] = obj[key]
    return list(found.values())


def test_each_font_file_and_image_is_stored_once(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    files = _font_files(pdf)
    digests = [hashlib.sha256(stream.read_raw_bytes()).hexdigest() for stream in files]
    assert len(digests) == len(set(digests)), "a font file is stored twice"
    for stream in files:
        smallest = min(path.stat().st_size for path in rendered.fonts.values())
        assert len(stream.read_bytes()) < smallest / 2, "cut to the glyphs drawn"
    images = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get(Name.Subtype) == Name.Image]
    assert len(images) == 1, "the image both chapters show is stored once"


def test_fonts_are_the_bundled_faces_embedded(rendered: Rendered) -> None:
    rows = pdffonts(rendered.path)
    assert rows
    for row in rows:
        assert row["family"] in BUNDLED_PDF_FAMILIES, row
        assert row["emb"] == "yes", row


def test_about_as_small_as_the_book_written_at_once(rendered: Rendered) -> None:
    assert len(rendered.joined) < 1.05 * len(rendered.whole)
    assert len(pdffonts(rendered.path)) == len(pdffonts(rendered.whole_path)), "one font dictionary a face"


def test_qpdf_finds_nothing_wrong(joined: bytes, tmp_path: Path) -> None:
    path = tmp_path / "joined.pdf"
    path.write_bytes(joined)
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr


def test_same_parts_same_bytes(rendered: Rendered) -> None:
    assert join_pdfs(rendered.parts, rendered.fonts) == rendered.joined
    assert join_pdfs(list(rendered.parts), dict(rendered.fonts)) == rendered.joined


@pytest.mark.parametrize("order", [JOIN_ORDERS["out of order"], (1, 3, 2, 0)])
def test_parts_added_in_any_order_give_the_same_bytes(rendered: Rendered, order: tuple[int, ...]) -> None:
    assert _joined_in(rendered, order) == rendered.joined


def _joined_in(rendered: Rendered, order: tuple[int, ...]) -> bytes:
    joiner = Joiner(rendered.fonts)
    try:
        for slot in order:
            joiner.add(slot, rendered.parts[slot])
        return joiner.result()
    finally:
        joiner.close()


def test_a_join_kept_for_the_next_build_gives_the_bytes_of_a_join_from_nothing(rendered: Rendered) -> None:
    """A joiner taken up by the next build (begin): the parts sent again as they were, in
    whatever order, are kept; a part that changed replaces its slot's alone (the parts after it
    are not added again), and a part not sent again is taken out. The PDF is byte for byte the
    one a new joiner makes of the same parts, build after build."""
    one, two, three, four = rendered.parts
    builds = [
        [(0, one), (1, two), (3, four), (2, three)],
        [(0, one), (1, two), (3, four), (2, two)],  # the last part changed
        [(0, one), (1, three), (3, four), (2, two)],  # one in the middle
        [(0, one), (1, three), (2, two)],  # the last gone
        [(0, one), (1, three), (2, two), (3, four)],  # back, in another order
        [(3, four), (1, three), (0, one), (2, two)],  # the same, in another order again
        [(0, one), (1, two), (3, four), (2, three)],
    ]

    def joined(parts: list[tuple[int, JoinPart]], joiner: Joiner) -> bytes:
        for slot, part in parts:
            joiner.add(slot, part)
        return joiner.result()

    kept = Joiner(rendered.fonts)
    try:
        for number, parts in enumerate(builds):
            kept.begin()
            sources = {slot: kept.slots[slot].source for slot in kept.slots}
            fresh = Joiner(rendered.fonts)
            try:
                assert joined(parts, kept) == joined(parts, fresh), f"build {number + 1}"
            finally:
                fresh.close()
            if number == 2:  # the part in the middle changed: only its slot's part was added
                assert {slot for slot in sources if kept.slots[slot].source is sources[slot]} == {0, 2, 3}
        kept.begin()
        kept.add(0, one)
        with pytest.raises(ValueError, match="already joined"):
            kept.add(0, one)
    finally:
        kept.close()


def test_a_part_that_outgrows_its_structure_keys_moves_no_other_part_s(rendered: Rendered) -> None:
    """The ParentTree keys of a part's pages and links start at a multiple of one stride, the
    span of the part with the most keys: a part that gets more keys than its span held (a page
    and its links added to a chapter) moves no other part's keys, so that their pages and
    links are not written again. The PDF is still a join from nothing's."""
    one, two, three, four = rendered.parts
    whole = JoinPart(rendered.whole)  # the most keys: it sets the stride

    def keys_after_the_first_part(joined: bytes) -> list[int]:
        pages = [page.obj.get(Name.StructParents) for page in _open(joined).pages]
        return [int(key) for key in pages if key is not None][len(_open(parts[0].pdf).pages) :]  # (a blank has none)

    kept = Joiner(rendered.fonts)
    try:
        parts = [four, whole, two, three]
        for slot, part in enumerate(parts):
            kept.add(slot, part)
        before = keys_after_the_first_part(kept.result())
        four_span = span(kept.slots[0].key_count)
        kept.begin()
        parts[0] = one
        for slot, part in enumerate(parts):
            kept.add(slot, part)
        after = kept.result()
        assert span(kept.slots[0].key_count) > four_span  # it outgrew the span it had
        assert keys_after_the_first_part(after) == before
        assert after == join_pdfs(parts, rendered.fonts)
    finally:
        kept.close()


def test_a_name_two_parts_own_leads_to_the_first_whatever_the_order(rendered: Rendered) -> None:
    part = rendered.parts[1]  # chapter one, twice: every name it owns is owned by both
    joiner = Joiner(rendered.fonts)
    try:
        joiner.add(1, part)
        joiner.add(0, part)
        with pytest.raises(ValueError, match="already joined"):
            joiner.add(1, part)
        pdf = _open(joiner.result())
    finally:
        joiner.close()
    first_pages = len(_open(part.pdf).pages)
    assert len(pdf.pages) == 2 * first_pages
    page_numbers = {page.obj.objgen: number for number, page in enumerate(pdf.pages)}
    dests = _dests(pdf)
    assert dests and set(dests) == set(NameTree(_open(part.pdf).Root.Names.Dests).keys()) - part.stubs
    assert all(page_numbers[dest[0].objgen] < first_pages for dest in dests.values())


def test_a_worker_joins_parts_sent_in_several_messages_and_drops_a_join_not_ended(
    rendered: Rendered, tmp_path: Path
) -> None:
    """A build sends the parts drawn first, then the rest with the target. One that stops
    between (a character found missing: every part is laid out again) leaves the join begun:
    the worker drops it when the next build (or the same one's next try) begins."""
    parts = _part_files(rendered, tmp_path)
    fonts = tuple(rendered.fonts.items())
    worker = Worker()
    assert worker.join(JoinJob(tuple(parts[:3]), fonts, None)) is None
    worker.forget()
    target = tmp_path / "joined.pdf"
    assert worker.join(JoinJob(tuple(parts[:2]), fonts, None)) is None
    assert worker.join(JoinJob(tuple(parts[2:]), fonts, target)) == target
    assert target.read_bytes() == rendered.joined
    assert worker.joiner is None


def test_a_fresh_join_drops_the_one_begun(rendered: Rendered, tmp_path: Path) -> None:
    """A build joins the parts as they are drawn. When one it sent is drawn again (a part
    before it was laid out again and moved it), it sends them all again, as a fresh join."""
    parts = _part_files(rendered, tmp_path)
    fonts = tuple(rendered.fonts.items())
    worker = Worker()
    assert worker.join(JoinJob(tuple(parts[:3]), fonts, None)) is None
    target = tmp_path / "joined.pdf"
    assert worker.join(JoinJob(tuple(parts[:2]), fonts, None, fresh=True)) is None
    assert worker.join(JoinJob(tuple(parts[2:]), fonts, target)) == target
    assert target.read_bytes() == rendered.joined


def test_a_kept_join_reads_only_the_parts_whose_files_changed(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's file is named by its content (the cache's): the next build's join takes the bytes
    it has for a file sent again, and its page numbers (where a drawing drew them is told by its
    bytes), and reads only a part drawn anew, and its numbers, with the bytes of a join from
    nothing."""
    parts = _part_files(rendered, tmp_path)
    fonts = tuple(rendered.fonts.items())
    worker = Worker()
    target = tmp_path / "joined.pdf"
    assert worker.join(JoinJob(tuple(parts), fonts, target)) == target
    moved = tmp_path / "moved.pdf"
    moved.write_bytes(parts[1].pdf.read_bytes())
    parts[1] = replace(parts[1], pdf=moved)  # drawn again (the same bytes, as another file)
    read: list[Path] = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: read.append(path) or read_bytes(path))
    unpacked: list[str] = []
    unpack = report.render.weasy.unpacked_numbers
    monkeypatch.setattr(report.render.weasy, "unpacked_numbers", lambda text: unpacked.append(text) or unpack(text))
    parts = [replace(part, numbers="not read: the join has them") if part.pdf != moved else part for part in parts]
    assert worker.join(JoinJob(tuple(parts), fonts, target)) == target
    assert [path for path in read if path.parent == tmp_path and path != target] == [moved]
    assert unpacked == [parts[1].numbers]
    monkeypatch.undo()
    assert target.read_bytes() == rendered.joined


def test_parts_are_sent_to_the_join_in_order_and_anew_when_one_changes() -> None:
    """The build sends the join each part once drawn, in the join order up to the first not yet
    drawn: the same order, so the same bytes, however the workers' drawings come in. A part
    that prints the page of a part after it comes after that part (it is drawn once that part
    is laid out): chapter 1 after chapter 2, to which it refers; the contents last."""
    drawn_after = {"cover": 0, "contents": 4, "chapter 1": 3, "chapter 2": 3, "chapter 3": 4}
    parts = [
        _Part(
            name=name, report="", source="", named_digest="", stubs=frozenset(), boxes={}, numbers={}, drawn_after=after
        )
        for name, after in drawn_after.items()
    ]
    order = join_order(parts)
    assert [parts[index].name for index in order] == ["cover", "chapter 2", "chapter 1", "chapter 3", "contents"]

    sent_as = dict.fromkeys(range(len(parts)), "")  # what the join is sent of each: its drawing, its numbers

    def drawn(index: int, drawing: str) -> None:
        parts[index].pdf, sent_as[index] = Path(f"{drawing}.pdf"), drawing

    joined = _Joined()
    drawn(0, "cover"), drawn(2, "chapter 1"), drawn(4, "chapter 3")
    assert joined.next_parts(parts, order, sent_as.get) == ([0], False)  # chapter 2 is not drawn: the others wait
    drawn(3, "chapter 2")
    assert joined.next_parts(parts, order, sent_as.get) == ([3, 2, 4], False)
    assert joined.next_parts(parts, order, sent_as.get) == ([], False)
    sent_as[4] = "chapter 3 with new page numbers"  # a part before it grew
    assert joined.next_parts(parts, order, sent_as.get) == ([0, 3, 2, 4], True)
    parts[4].pdf, sent_as[4] = None, "chapter 3 laid out again"  # to be drawn again
    assert joined.next_parts(parts, order, sent_as.get) == ([0, 3, 2], True)
    drawn(4, "chapter 3 laid out again"), drawn(1, "contents")
    assert joined.next_parts(parts, order, sent_as.get) == ([4, 1], False)


def test_joining_ahead_every_part_drawn_is_sent_and_sent_again_once_moved() -> None:
    """With no join kept for the book (see PdfRun._join_ahead), the join is sent every part
    drawn, not only those up to the first still to be drawn; one that moved since is sent again
    with all the others, the join begun anew (the joiner keeps what it joined of them)."""
    parts = [
        _Part(
            name=name, report="", source="", named_digest="", stubs=frozenset(), boxes={}, numbers={}, drawn_after=index
        )
        for index, name in enumerate(["cover", "contents", "chapter 1", "chapter 2", "chapter 3"])
    ]
    order = join_order(parts)
    sent_as = dict.fromkeys(range(len(parts)), "")
    for index in (0, 1, 3, 4):  # chapter 1, edited, is still being laid out
        parts[index].pdf, sent_as[index] = Path(f"{index}.pdf"), "as the last build placed it"
    joined = _Joined()
    assert joined.next_parts(parts, order, sent_as.get, ahead=True) == ([0, 1, 3, 4], False)
    assert not joined.stale(sent_as.get)
    sent_as[3] = sent_as[4] = "moved: chapter 1 is a page longer"
    assert joined.stale(sent_as.get)
    parts[2].pdf, sent_as[2] = Path("2.pdf"), "drawn"
    assert joined.next_parts(parts, order, sent_as.get, ahead=True) == ([0, 1, 2, 3, 4], True)
    assert joined.next_parts(parts, order, sent_as.get, ahead=True) == ([], False)


def _part_files(rendered: Rendered, folder: Path) -> list[JoinedPart]:
    """The parts as a build sends them to the join: its slot, its file, its stubs, a blank page
    before (and no page numbers to set)."""
    parts = []
    for slot, part in enumerate(rendered.parts):
        path = folder / f"{slot}.pdf"
        path.write_bytes(part.pdf)
        parts.append(JoinedPart(slot, path, part.stubs, part.blank_before, NO_NUMBERS, (), 1))
    return parts


# A zlib stream's header tells how hard it was deflated (RFC 1950's FLEVEL): libdeflate's levels
# 1 and 6 write "fastest" and "default".
_FASTEST, _DEFAULT = b"x\x01", b"x\x9c"


def test_a_part_deflates_what_the_join_unpacks_quickly_and_what_it_copies_tightly(rendered: Rendered) -> None:
    """The join unpacks a part's object and cross-reference streams and writes every object
    anew, but copies its pages' content streams into the book (or cuts them where it sets a page
    number): libdeflate deflates those at its level 6 (smaller than zlib's 9), the others at its
    level 1 (zlib's level 9 was three quarters of the zlib time of drawing a chapter)."""
    for part in rendered.parts:
        pdf = _open(part.pdf)
        packed = {
            str(obj.Type): obj.read_raw_bytes()[:2]
            for obj in pdf.objects
            if isinstance(obj, pikepdf.Stream) and obj.get("/Type") in ("/ObjStm", "/XRef")
        }
        assert packed == {"/ObjStm": _FASTEST, "/XRef": _FASTEST}
        assert {page.Contents.read_raw_bytes()[:2] for page in pdf.pages} == {_DEFAULT}


def test_the_pages_references_are_made_once_for_each_number_of_pages() -> None:
    """WeasyPrint's tagging asks pydyf for the references of all pages once for each marked box;
    made at each call, they cost the chapter's pages times its boxes. (In a fresh interpreter,
    as a PDF worker: loading WeasyPrint as a worker does changes it.)"""
    script = """
import pydyf
from report.render.weasy import load_weasyprint
load_weasyprint()
pdf = pydyf.PDF()
assert pdf.page_references == ()
for _ in range(3):
    pdf.add_page(pydyf.Dictionary({"Type": "/Page"}))
first = pdf.page_references
assert first == tuple(f"{number} 0 R".encode() for number in pdf.pages["Kids"][::3]), first
assert pdf.page_references is first
pdf.add_page(pydyf.Dictionary({"Type": "/Page"}))
assert pdf.page_references[:3] == first and len(pdf.page_references) == 4
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO_ROOT)


def test_first_part_metadata_kept(rendered: Rendered, joined: bytes) -> None:
    pdf = _open(joined)
    first = _open(rendered.parts[0].pdf)
    assert str(pdf.Root.Lang) == "ja"
    assert bool(pdf.Root.MarkInfo.Marked) is True
    assert bool(pdf.Root.ViewerPreferences.DisplayDocTitle) is True
    assert pdf.Root.Metadata.read_bytes() == first.Root.Metadata.read_bytes()
    assert b"pdfuaid:part" in pdf.Root.Metadata.read_bytes()
    assert dict(pdf.docinfo.items()) == dict(first.docinfo.items())
    assert str(pdf.docinfo.Title) == "結合のテスト"
    assert pdf.pdf_version == first.pdf_version


def test_pdfa_parts_keep_their_output_intent_and_share_the_profile(rendered: Rendered) -> None:
    joined = join_pdfs(rendered.pdfa_parts, rendered.fonts)
    pdf = _open(joined)
    first = _open(rendered.pdfa_parts[0].pdf)
    assert len(pdf.pages) == sum(len(_open(part.pdf).pages) for part in rendered.pdfa_parts)
    intents = pdf.Root.OutputIntents
    assert len(intents) == 1
    assert intents[0].S == Name.GTS_PDFA1
    assert intents[0].DestOutputProfile.read_bytes() == first.Root.OutputIntents[0].DestOutputProfile.read_bytes()
    profiles = [
        obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and Name.N in obj and obj.get(Name.N) == 3
    ]
    digests = [hashlib.sha256(profile.read_raw_bytes()).hexdigest() for profile in profiles]
    assert len(digests) == len(set(digests)), "the sRGB profile is stored once"
    assert b"pdfaid:part" in pdf.Root.Metadata.read_bytes()


def test_pdfa1_font_cid_sets_name_the_glyphs_all_parts_draw_as_parts_come_and_go(rendered: Rendered) -> None:
    """PDF/A-1 asks each embedded CID font for the set of CIDs its file has: the joined file's
    are those all parts draw (and .notdef), in a join kept for the next build too, after a part
    was taken out and brought back; and the bytes are a new joiner's."""
    one, two = rendered.pdfa1_parts
    assert any(Name.CIDSet in obj for obj in _open(one.pdf).objects if isinstance(obj, Dictionary))
    kept = Joiner(rendered.fonts)
    try:
        for parts in ([(0, one), (1, two)], [(0, one)], [(0, one), (1, two)]):
            kept.begin()
            fresh = Joiner(rendered.fonts)
            try:
                for joiner in (kept, fresh):
                    for slot, part in parts:
                        joiner.add(slot, part)
                joined = kept.result()
                assert joined == fresh.result()
            finally:
                fresh.close()
            checked = 0
            for obj in _open(joined).objects:
                if isinstance(obj, Dictionary) and Name.W in obj and Name.CIDSet in obj.FontDescriptor:
                    bits = obj.FontDescriptor.CIDSet.read_bytes()
                    cids = {index for index in range(len(bits) * 8) if bits[index // 8] & (0x80 >> index % 8)}
                    assert cids == _glyph_ids(obj.W) | {0}
                    checked += 1
            assert checked
    finally:
        kept.close()


def test_nothing_to_join() -> None:
    with pytest.raises(ValueError):
        join_pdfs([])


def test_parts_name_their_fonts_and_the_join_needs_them(rendered: Rendered) -> None:
    for part in rendered.parts:
        for stream in _font_files(_open(part.pdf)):
            assert len(stream.read_bytes()) < 100, "a stand-in, not the font file"
    with pytest.raises(ValueError, match="font file not given"):
        join_pdfs(rendered.parts)


def test_a_single_part_keeps_its_links_and_outline(rendered: Rendered) -> None:
    part = rendered.parts[1]
    pdf = _open(join_pdfs([part], rendered.fonts))
    source = _open(part.pdf)
    assert len(pdf.pages) == len(source.pages)
    assert set(_dests(pdf)) == set(_dests(source)) - part.stubs
    assert int(pdf.Root.Outlines.Count) == int(source.Root.Outlines.Count)


def test_weasyprint_keeps_links_only_to_anchors_it_has(rendered: Rendered) -> None:
    """What the caller relies on: an empty, zero-size stand-in ``<span id>`` is an anchor (its
    link is kept and its name is a destination); a link to an id that the part lacks, or to
    an element that is not displayed, is dropped by WeasyPrint (with an error logged)."""
    pdf = _open(rendered.quirks)
    links = [str(annotation.Dest) for annotation in pdf.pages[0].obj.get(Name.Annots, Array())]
    assert links == ["stub"]
    assert set(_dests(pdf)) == {"stub"}


def test_cut_fonts_keep_every_glyph_the_parts_draw(rendered: Rendered, joined: bytes) -> None:
    """Each joined font file is the face the parts name, cut to the glyphs all parts draw (those
    their font dictionaries give widths for): each such glyph has its outline in the face, and
    no other glyph is kept. TrueType faces keep their glyph ids; the CFF faces (the CJK ones,
    whose ids run to 65,000) are bare CID-keyed CFF fonts holding only those glyphs, their
    charsets naming each glyph's CID (its id in the face), so that the text is as drawn."""
    whole = {TTFont(path)["name"].getDebugName(6): TTFont(path) for path in rendered.fonts.values()}
    drawn: dict[str, set[int]] = {}  # face → the glyph ids the parts draw, in the face's numbering
    for part in rendered.parts:
        for obj in _open(part.pdf).objects:
            if isinstance(obj, Dictionary) and Name.W in obj and Name.FontDescriptor in obj:
                name = str(obj.BaseFont).partition("+")[2]
                drawn.setdefault(name, set()).update(_glyph_ids(obj.W))
    for obj in _open(joined).objects:
        if not (isinstance(obj, Dictionary) and Name.W in obj and Name.FontDescriptor in obj):
            continue
        descriptor = obj.FontDescriptor
        stream = next(descriptor[key] for key in (Name.FontFile, Name.FontFile2, Name.FontFile3) if key in descriptor)
        old = drawn[str(obj.BaseFont).partition("+")[2]] | {0}
        assert set(_glyph_ids(obj.W)) | {0} == old, "widths for exactly the glyphs drawn"
        if stream.get(Name.Subtype) == Name.CIDFontType0C:
            cff = CFFFontSet()
            cff.decompile(io.BytesIO(stream.read_bytes()), None)
            top = cff[cff.fontNames[0]]
            original = whole[cff.fontNames[0]]
            assert hasattr(top, "ROS"), "CID-keyed"
            cids = [0, *(int(name.removeprefix("cid")) for name in top.charset[1:])]
            assert cids == sorted(old), "the glyphs drawn, by CID, and no other"
            for name in top.charset[1:]:
                assert _bounds(top.CharStrings[name]) == _bounds(original.getGlyphSet()[name]), name
        else:
            cut = TTFont(io.BytesIO(stream.read_bytes()))
            original = whole[cut["name"].getDebugName(6)]
            assert len(cut.getGlyphOrder()) == max(old) + 1
            for gid in range(len(cut.getGlyphOrder())):
                glyph = cut.getGlyphSet()[cut.getGlyphName(gid)]
                if gid in old:
                    assert _bounds(glyph) == _bounds(original.getGlyphSet()[original.getGlyphName(gid)]), gid
                else:
                    assert _bounds(glyph) is None, f"glyph {gid} no part draws is kept"
    texts = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(joined)).pages]
    assert any("第一章" in text for text in texts), "the text reads as drawn"


def _glyph_ids(widths: Array) -> set[int]:
    items, found, index = list(widths), set(), 0
    while index + 1 < len(items):
        if isinstance(items[index + 1], Array):
            found.update(range(int(items[index]), int(items[index]) + len(items[index + 1])))
            index += 2
        else:
            found.update(range(int(items[index]), int(items[index + 1]) + 1))
            index += 3
    return found


def _bounds(glyph: Any) -> tuple[float, ...] | None:
    pen = BoundsPen(None)
    glyph.draw(pen)
    return pen.bounds


def test_widths_are_read_in_both_forms_of_a_w_array() -> None:
    """A CID font's /W array as the PDF reference allows it: ``c [w1 w2 …]`` runs and
    ``c_first c_last w`` ranges, with integers and reals (the join reads its PDF syntax)."""
    from report.render.join import _widths

    widths = Array([1, Array([500, 250.5]), 10, 12, 1000, 20, Array([-3, 0.25])])
    assert _widths(widths) == {1: 500.0, 2: 250.5, 10: 1000.0, 11: 1000.0, 12: 1000.0, 20: -3.0, 21: 0.25}
    assert _widths(Array()) == {}


_WIDTH = st.one_of(st.integers(-5, 3000), st.floats(-10, 3000, allow_nan=False).map(lambda value: round(value, 3)))
_W_RUNS = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 70000), st.lists(_WIDTH, max_size=5)),  # c [w1 w2 …]
        st.tuples(st.integers(0, 70000), st.integers(0, 4), _WIDTH),  # c_first c_last w
    ),
    max_size=8,
)


@given(_W_RUNS)
def test_any_w_array_is_read_as_its_runs_say(runs: list[tuple[Any, ...]]) -> None:
    """Arrays of ``c [w …]`` runs only (as WeasyPrint writes them: read in bulk) and arrays mixing
    both forms give each glyph the width its last run gives it."""
    from report.render.join import _widths

    items: list[object] = []
    expected: dict[int, float] = {}
    for run in runs:
        if len(run) == 2:
            first, values = run
            items += [first, Array(values)]
            expected.update((first + offset, float(value)) for offset, value in enumerate(values))
        else:
            first, extra, value = run
            items += [first, first + extra, value]
            expected.update((glyph, float(value)) for glyph in range(first, first + extra + 1))
    assert _widths(Array(items)) == expected


def test_weasyprint_loads_fonttools_subsetter_and_instancer_only_when_it_calls_them() -> None:
    """A worker imports WeasyPrint without fontTools' subsetter and instancer (a third of the
    import), which it calls only for fonts a report has none of; called, they work."""
    script = """
import sys
from report.render.weasy import load_weasyprint
load_weasyprint()
import weasyprint.pdf.fonts as fonts
assert "fontTools.subset" not in sys.modules and "fontTools.varLib.instancer" not in sys.modules
options = fonts.subset.Options(hinting=False)
assert type(options).__module__ == "fontTools.subset" and options.hinting is False
import fontTools.subset, fontTools.varLib.instancer
assert fontTools.subset.Options is type(options) and callable(fontTools.varLib.instancer.instantiateVariableFont)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert done.stdout.strip() == "ok", done.stderr


class _Connection:
    """A worker's end of the pipe, as a session sees it: what was sent, and a layout's answer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.answers: list[tuple[Any, ...]] = []

    def send(self, message: tuple[str, Any]) -> None:
        self.sent.append(message)
        kind, job = message
        if kind == "layout":
            self.answers.append(("laid-out", job.key, None))

    def recv(self) -> tuple[Any, ...]:
        return self.answers.pop(0)


def _session(
    tmp_path: Path,
    connections: list[_Connection],
    joins_kept: list[str] | None = None,
    resumes: list[list[str]] | None = None,
) -> Session:
    workers = SimpleNamespace(
        busy=threading.Lock(),
        connections=connections,
        joins_kept=joins_kept or [""] * len(connections),
        resumes=resumes or [[] for _ in connections],
    )
    # Each message handed to the connection at once, not by a thread (what a session sends where
    # is told here; report.render.workers._Outbox's own test tells how).
    outbox = lambda connection: SimpleNamespace(put=connection.send, close=lambda: None)  # noqa: E731
    with mock.patch.object(report.render.workers, "_Outbox", outbox):
        return Session(workers, _STYLES, on_layout=lambda *_: None, on_drawn=lambda *_: None)  # type: ignore[arg-type]


def test_a_message_longer_than_the_pipe_holds_does_not_hold_the_sender() -> None:
    """A worker busy laying out a long chapter reads nothing: the chapter's drawing sent behind
    the layout (as long as the chapter) is written by the outbox's thread, while the build's
    main thread goes on. The messages arrive whole and in order."""
    ours, theirs = multiprocessing.Pipe()
    outbox = report.render.workers._Outbox(ours)
    long = ("draw", "本" * 400_000)  # 1.2 MB: far more than a pipe holds
    outbox.put(("layout", "章"))
    outbox.put(long)
    outbox.put(("join", "終"))  # returned at once, nothing read yet
    assert [theirs.recv(), theirs.recv(), theirs.recv()] == [("layout", "章"), long, ("join", "終")]
    outbox.close()
    assert not outbox.thread.is_alive()


_STYLES = Styles((), "", (), Path("fonts.conf"), None, "styles of the book", ())


def test_an_edit_s_second_layout_goes_to_the_worker_with_nothing_to_do(tmp_path: Path) -> None:
    """After an edit the chapter is laid out, then drawn by the worker that laid it out; the
    index (or the contents) laid out again once the chapter's pages are known goes to the
    other worker, beside the drawing, not after it."""
    connections = [_Connection(), _Connection()]
    session = _session(tmp_path, connections)
    session.lay_out(PartJob("chapter", "本文"))
    session._answer(0, connections[0])  # type: ignore[arg-type]
    session.draw(DrawJob(PartJob("chapter", "本文"), (), 1, tmp_path / "chapter.pdf"))  # by the first, which has it
    session.lay_out(PartJob("index", "索引"))
    assert [job.key for kind, job in connections[1].sent if kind == "layout"] == ["index"]


@pytest.mark.parametrize("keeper", [0, 1])
def test_the_join_goes_to_the_worker_that_keeps_the_book_s_join(tmp_path: Path, keeper: int) -> None:
    """The worker that wrote the book's last join keeps it and takes it up again (the parts sent
    as they were are kept): the next join goes there even when that worker holds the part
    drawn last. Joined elsewhere, every part is joined anew (at 586 pages, 1.7 s); sent by the
    old rule alone (the last worker but the contents' holder), it went to the first worker in
    one build and to the last in the next."""
    connections = [_Connection(), _Connection()]
    joins_kept = ["styles of another book", ""]
    joins_kept[keeper] = _STYLES.key
    session = _session(tmp_path, connections, joins_kept)
    session.lay_out(PartJob("contents", "目次"))
    session.lay_out(PartJob("chapter", "本文"))
    holder = session.holder["contents"]
    session.join(JoinJob((), (), None), drawn_last="contents")
    assert [kind for kind, _ in connections[keeper].sent][-1] == "join"
    assert holder == keeper and not any(kind == "join" for kind, _ in connections[1 - keeper].sent)


@pytest.mark.parametrize("first", ["index", "join"])
def test_a_first_build_joins_where_it_did_not_lay_out_the_index(tmp_path: Path, first: str) -> None:
    """In a report's first build, the index (a part that lists pages) and the join go to two
    workers, whichever comes first: the index to the worker that has no join begun (not the one
    its name points to), the join to the one that did not lay out the index (not the one keeping
    no join). After an edit that moves pages, the index is laid out again (resumed by the worker
    that keeps it) while the joiner joins the moved parts: on one worker, one would wait for the
    other."""
    connections = [_Connection(), _Connection()]
    session = _session(tmp_path, connections, ["", "styles of another book"])
    if first == "join":
        session.join(JoinJob((), (), None))  # to the first worker: it keeps no join
    session.lay_out(PartJob("index", "索引", name="index", lists_pages=True))  # its name points to the last
    if first == "index":
        session.join(JoinJob((), (), None))
    joined = [index for index, connection in enumerate(connections) if any(k == "join" for k, _ in connection.sent)]
    assert joined == [1 - session.holder["index"]] == [0]


@pytest.mark.parametrize("keeper", [0, 1])
def test_the_index_goes_to_the_worker_that_does_not_keep_the_book_s_join_even_with_its_room_filled(
    tmp_path: Path, keeper: int
) -> None:
    """A first build of a report whose join a worker keeps (a copy of the report, built before
    in the same pool): the other worker's room is filled with chapters, and the index laid out
    by the joiner, which kept its layout, waited there after every later page-moving edit for
    the moved parts' join, or held it back. The index goes to the worker that does not join,
    room or not."""
    connections = [_Connection(), _Connection()]
    joins_kept = ["", ""]
    joins_kept[keeper] = _STYLES.key
    session = _session(tmp_path, connections, joins_kept)
    for number in range(2 * LAYOUTS_AHEAD):
        session.lay_out(PartJob(f"chapter {number}", "本文"))
    assert session._room() == []
    session._answer(keeper, connections[keeper])  # type: ignore[arg-type]
    assert session._room() == [keeper]  # the joiner has room now, the other none
    session.lay_out(PartJob("index", "索引", name="index", lists_pages=True))
    assert session.holder["index"] == 1 - keeper


@pytest.mark.parametrize("keeper", [0, 1])
def test_an_edited_chapter_is_laid_out_by_the_worker_that_keeps_the_book_s_join(tmp_path: Path, keeper: int) -> None:
    """Both workers free: the edited chapter goes to the one that keeps the book's join, and the
    index, laid out beside it (with a guess of its pages) or after it (once its pages are
    known), to the other, which keeps the index's layout (see above); neither waits for the
    other, nor for the join of the parts the edit moved."""
    connections = [_Connection(), _Connection()]
    joins_kept = ["", ""]
    joins_kept[keeper] = _STYLES.key
    session = _session(tmp_path, connections, joins_kept)
    session.lay_out(PartJob("chapter", "本文"))
    session.lay_out(PartJob("index", "索引", name="index", lists_pages=True))
    assert (session.holder["chapter"], session.holder["index"]) == (keeper, 1 - keeper)


def test_a_book_s_first_join_goes_to_a_worker_keeping_no_other_book_s(tmp_path: Path) -> None:
    """An author switching between two reports: the second's join goes to the worker that keeps
    none, so that each keeps its own (joined where the first's is kept, it would replace it,
    and the next build of the first would join every part anew)."""
    connections = [_Connection(), _Connection()]
    session = _session(tmp_path, connections, ["", "styles of another book"])
    session.join(JoinJob((), (), None))
    assert [kind for kind, _ in connections[0].sent][-1] == "join"
    assert not any(kind == "join" for kind, _ in connections[1].sent)


def test_the_join_goes_to_another_worker_than_the_one_that_will_draw_the_contents(tmp_path: Path) -> None:
    """In a first build the contents is laid out early and drawn last, by the worker that laid
    it out, once every page is known: the join goes to the other worker, even when that one
    is busier for now, so that the parts drawn meanwhile are joined while the contents is
    drawn, not after it."""
    connections = [_Connection(), _Connection()]
    session = _session(tmp_path, connections)
    for key, html in (("cover", "表紙"), ("chapter 1", "本文" * 5000), ("contents", "目次" * 4000), ("chapter 2", "")):
        session.lay_out(PartJob(key, html))
    holder = session.holder["contents"]
    for _ in range(2):
        session._answer(holder, connections[holder])  # type: ignore[arg-type]
    session.join(JoinJob((), (), None), drawn_last="contents")  # the holder is free, but holds it
    assert connections[1 - holder].sent[-1][0] == "join"
    assert not any(kind == "join" for kind, _ in connections[holder].sent)


def test_a_name_tree_s_leaves_are_made_again_only_where_their_entries_changed() -> None:
    """A long name tree is cut into leaves at keys its digest chooses: an entry added changes its
    leaf only; the leaves whose entries are those of the last join (the same values of the same
    parts) are the same objects. Read back, the tree holds every entry, in order."""
    joiner = Joiner({})
    try:
        parts = [object(), object()]  # stand-ins for two slots
        names = sorted((f"id-{number}" for number in range(1000)), key=lambda name: bytes(String(name)))
        items: list[Any] = [(name, String(f"value of {name}"), parts[index % 2]) for index, name in enumerate(names)]
        first = joiner._name_tree(Name.Dests, items)
        assert 5 < len(first.Kids) < 40
        assert [str(key) for key in dict(NameTree(first).items())] == names
        assert all(list(leaf.Limits) == [leaf.Names[0], leaf.Names[-2]] for leaf in first.Kids)
        joiner.kept_leaves.clear()
        again = joiner._name_tree(Name.Dests, items)
        assert [leaf.objgen for leaf in again.Kids] == [leaf.objgen for leaf in first.Kids]
        assert joiner.kept_leaves == {leaf.objgen for leaf in again.Kids}  # for the writer not to unparse them
        middle = len(items) // 2
        items[middle] = (items[middle][0], String("another part's"), object())  # its part was joined again
        joiner.kept_leaves.clear()
        changed = joiner._name_tree(Name.Dests, items)
        assert sum(a.objgen != b.objgen for a, b in zip(changed.Kids, again.Kids, strict=True)) == 1
        assert len(joiner.kept_leaves) == len(changed.Kids) - 1
        place = next(index for index, (name, _, _) in enumerate(items) if bytes(String(name)) > b"id-500+")
        items.insert(place, ("id-500+", String("added"), parts[0]))
        added = joiner._name_tree(Name.Dests, items)
        assert 1 <= len({leaf.objgen for leaf in added.Kids} - {leaf.objgen for leaf in changed.Kids}) <= 2
        assert NameTree(added)["id-500+"] == String("added")
    finally:
        joiner.close()


def test_a_part_goes_to_the_worker_its_name_points_to_when_both_are_free(tmp_path: Path) -> None:
    """A worker keeps the last layouts it made, to resume (report.render.resume): a chapter
    edited build after build is laid out by the same worker, the one its name points to, when
    that one is free; when it is not, by the free one (a resumed layout is not worth a wait) —
    unless the busy one has the part's layout of this build and no more to do than this layout
    is long (the index laid out again once its pages are known: resumed, a fraction of a layout
    made anew). Its first layout, still to be made, counts for nothing there: the second resumes
    it."""
    names = {zlib.crc32(name.encode()) % 2: name for name in ("chapter-a", "chapter-b", "chapter-c", "chapter-d")}
    assert len(names) == 2
    for worker, name in names.items():
        session = _session(tmp_path, [_Connection(), _Connection()])
        session.lay_out(PartJob("first", "本文", name=name))
        session.lay_out(PartJob("again", "本文", name=name))  # waits for the first, as long
        session.lay_out(PartJob("third", "本文本文", name=name))  # its worker has no room: it waits all the same
        assert session.holder == {"first": worker, "again": worker, "third": worker}
        session = _session(tmp_path, [_Connection(), _Connection()])
        session.lay_out(PartJob("first", "本文" * 50, name=name))
        session.lay_out(PartJob("shorter", "本文", name=name))  # the first is its own: it waits
        assert session.holder == {"first": worker, "shorter": worker}
        session = _session(tmp_path, [_Connection(), _Connection()])
        session.lay_out(PartJob("first", "本文", name=name))
        session.draw(DrawJob(PartJob("first", "本文" * 50, name=name), (), 1, tmp_path / "first.pdf"))
        session.lay_out(PartJob("again", "本文", name=name))  # a long drawing ahead of it: the free one
        assert session.holder == {"again": 1 - worker}


@pytest.mark.parametrize("keeper", [0, 1])
def test_a_part_goes_to_the_worker_that_keeps_its_layout_from_an_earlier_build(tmp_path: Path, keeper: int) -> None:
    """A part laid out again in a later build (the index, after a page added with index terms)
    goes to the worker that kept its last layout, to resume it (the 615-page report's index:
    0.04-0.07 s resumed, 0.25-0.44 s made anew, as it was whenever the other worker was free
    first), even when the other is free, or when that worker has to do first up to RESUMING_GAIN
    times as much as the layout is long (the edited chapter's drawing, say: the index was made
    anew beside it, in the first edit after a report's first build); not when it has more. The
    session notes where it sent it, for the next build."""
    connections = [_Connection(), _Connection()]
    resumes: list[list[str]] = [["chapter-a"], ["chapter-b"]]
    resumes[keeper].append("index")
    session = _session(tmp_path, connections, resumes=resumes)
    session.lay_out(PartJob("index", "索引" * 100, name="index"))
    assert session.holder == {"index": keeper}
    assert resumes[keeper][-1] == "index"
    session = _session(tmp_path, [_Connection(), _Connection()], resumes=resumes)
    ahead = "本文" * RESUMING_GAIN  # RESUMING_GAIN times as long as the layout
    session._send(keeper, ("draw", DrawJob(PartJob("ahead", ahead), (), 1, tmp_path / "ahead.pdf")))
    session.lay_out(PartJob("index after", "索引", name="index"))
    assert session.holder == {"index after": keeper}
    session = _session(tmp_path, [_Connection(), _Connection()], resumes=resumes)
    session._send(keeper, ("draw", DrawJob(PartJob("long", ahead + "本"), (), 1, tmp_path / "long.pdf")))
    session.lay_out(PartJob("index again", "索引", name="index"))  # more ahead of it there
    assert session.holder == {"index again": 1 - keeper}
    assert resumes[1 - keeper][-1] == "index"  # which keeps it now
    older = [[f"part-{n}" for n in range(6)], ["index", *(f"other-{n}" for n in range(5))]]
    older[0].append("index")  # made more recently by the first worker
    session = _session(tmp_path, [_Connection(), _Connection()], resumes=older)
    session.lay_out(PartJob("index", "索引", name="index"))
    assert session.holder == {"index": 0} and len(older[0]) == LAYOUTS_RESUMABLE


def test_a_layout_is_free_to_begin_when_the_worker_it_goes_to_has_nothing_to_do(tmp_path: Path) -> None:
    """Whether a layout sent now would be begun at once (the index guessed while the edited
    chapter is laid out: see PdfRun._lists_pages_unknown): the worker it would go to, its keeper
    here, has no layout or drawing to do first (a join does not count)."""
    resumes: list[list[str]] = [["index"], []]
    session = _session(tmp_path, [_Connection(), _Connection()], resumes=resumes)
    assert session.free_for("index", 100)
    session._send(0, ("join", SimpleNamespace()))
    assert session.free_for("index", 100)
    session.lay_out(PartJob("chapter", "本文", name="chapter"))  # to the other, which is free
    assert session.holder == {"chapter": 1} and session.free_for("index", 100)
    session._send(0, ("draw", DrawJob(PartJob("other", "本文"), (), 1, tmp_path / "other.pdf")))
    assert not session.free_for("index", 100)  # its keeper has a drawing to do first
    assert session.free_for("", 100) is False  # the other has the chapter


def test_a_part_is_drawn_ahead_only_by_its_worker_free_of_layouts_and_drawings(tmp_path: Path) -> None:
    """The index drawn ahead of its pages (see PdfRun._draw_ahead): by the worker that laid it
    out, when nothing but the join waits there; not behind a layout or a drawing."""
    connections = [_Connection(), _Connection()]
    session = _session(tmp_path, connections)
    session.lay_out(PartJob("index", "索引"))
    holder = session.holder["index"]
    job = DrawJob(PartJob("index", "索引"), (), 1, tmp_path / "index.pdf")
    assert not session.draw_if_free(job)  # its layout is still to come
    session._answer(holder, connections[holder])  # type: ignore[arg-type]
    session._send(holder, ("join", JoinJob((), (), None)))
    assert session.draw_if_free(job)
    assert connections[holder].sent[-1] == ("draw", job) and "index" not in session.holder
    assert not session.draw_if_free(job)  # no longer its worker's to draw: drawn
