"""End to end, EPUB: the container, EPUBCheck, the package document and the XHTML."""

from __future__ import annotations

import posixpath
import zipfile

import pytest
from conftest import BuiltProject
from helpers import epub_names, epub_read
from lxml import etree

NS = {
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "x": "http://www.w3.org/1999/xhtml",
    "epub": "http://www.idpf.org/2007/ops",
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
}
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_FONT_BYTES = 2_000_000
SCRIPT_TEXT = {"ja-basic": "悪意のあるスクリプト", "en-basic": "malicious script"}


class Epub:
    """The parsed parts of one EPUB."""

    def __init__(self, path) -> None:  # type: ignore[no-untyped-def]
        self.path = path
        self.names = epub_names(path)
        container = etree.fromstring(epub_read(path, "META-INF/container.xml"))
        self.opf_name = container.find(".//c:rootfile", NS).get("full-path")
        self.opf = etree.fromstring(self.read(self.opf_name))
        self.base = posixpath.dirname(self.opf_name)
        self.manifest = {item.get("id"): item for item in self.opf.findall("opf:manifest/opf:item", NS)}
        self.spine = [self.manifest[ref.get("idref")] for ref in self.opf.findall("opf:spine/opf:itemref", NS)]
        self._documents: dict[str, etree._Element] = {}

    def read(self, name: str) -> bytes:
        return epub_read(self.path, name)

    def full_name(self, href: str) -> str:
        return posixpath.normpath(posixpath.join(self.base, href))

    def document(self, name: str) -> etree._Element:
        if name not in self._documents:
            self._documents[name] = etree.fromstring(self.read(name))
        return self._documents[name]

    def xhtml_names(self) -> list[str]:
        return [
            self.full_name(item.get("href"))
            for item in self.manifest.values()
            if item.get("media-type") == "application/xhtml+xml"
        ]

    def chapter_documents(self) -> list[str]:
        """Spine documents other than the cover and the navigation document."""
        return [
            self.full_name(item.get("href"))
            for item in self.spine
            if "nav" not in (item.get("properties") or "").split()
            and not self.document(self.full_name(item.get("href"))).xpath("//*[@epub:type='cover']", namespaces=NS)
        ]


@pytest.fixture
def epub(built: BuiltProject) -> Epub:
    return Epub(built.epub)


def test_mimetype_first_and_stored(built: BuiltProject) -> None:
    with zipfile.ZipFile(built.epub) as archive:
        assert archive.testzip() is None
        first = archive.infolist()[0]
        assert first.filename == "mimetype"
        assert first.compress_type == zipfile.ZIP_STORED
        assert first.extra == b""
        assert archive.read("mimetype") == b"application/epub+zip"


def test_epubcheck_has_no_errors_or_warnings(built: BuiltProject) -> None:
    assert built.epubcheck is not None
    messages = built.epubcheck.result()
    problems = [m for m in messages if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    printable = "\n".join(
        f"{m['severity']} {m['ID']} {loc.get('path')}:{loc.get('line')}: {m['message']}"
        for m in problems
        for loc in m.get("locations") or [{}]
    )
    print(printable)
    assert problems == [], printable


def test_package_metadata(built: BuiltProject, epub: Epub) -> None:
    metadata = epub.opf.find("opf:metadata", NS)
    assert metadata.findtext("dc:language", namespaces=NS) == built.config["language"]
    assert metadata.findtext("dc:title", namespaces=NS) == built.config["title"]
    creators = metadata.findall("dc:creator", NS)
    assert [c.text for c in creators] == built.config.get("authors", [])
    ids = [c.get("id") for c in creators]
    assert all(ids) and len(set(ids)) == len(ids), ids
    identifier = metadata.findall("dc:identifier", NS)
    assert len(identifier) == 1 and identifier[0].text
    assert epub.opf.get("unique-identifier") == identifier[0].get("id")


def test_fonts_in_manifest_are_subset(built: BuiltProject, epub: Epub) -> None:
    fonts = [item for item in epub.manifest.values() if item.get("href").startswith("fonts/")]
    assert fonts, "no fonts in the EPUB"
    for item in fonts:
        href = item.get("href")
        expected = "font/otf" if href.endswith(".otf") else "font/ttf"
        assert item.get("media-type") == expected, href
        size = len(epub.read(epub.full_name(href)))
        assert 0 < size < MAX_FONT_BYTES, (href, size)
    # Every file in the container is in the manifest (besides the OCF files).
    listed = {epub.full_name(item.get("href")) for item in epub.manifest.values()}
    for name in epub.names:
        if name in ("mimetype", "META-INF/container.xml", epub.opf_name):
            continue
        assert name in listed, name


def test_each_chapter_is_its_own_document(built: BuiltProject, epub: Epub) -> None:
    chapters = epub.chapter_documents()
    assert len(chapters) == len(built.chapter_titles)
    for name, title in zip(chapters, built.chapter_titles, strict=True):
        root = epub.document(name)
        assert root.get("lang") == built.config["language"], name
        assert root.get(XML_LANG) == built.config["language"], name
        h1 = root.findall(".//x:h1", NS)
        assert len(h1) == 1, name
        assert title in "".join(h1[0].itertext()), (name, title)
        assert root.findtext(".//x:head/x:title", namespaces=NS), name


def test_nav_lists_every_chapter(built: BuiltProject, epub: Epub) -> None:
    nav_item = next(item for item in epub.manifest.values() if "nav" in (item.get("properties") or "").split())
    nav = epub.document(epub.full_name(nav_item.get("href")))
    toc = nav.xpath("//x:nav[@epub:type='toc']", namespaces=NS)
    assert len(toc) == 1
    entries = toc[0].xpath("x:ol/x:li/x:a", namespaces=NS)
    assert len(entries) == len(built.chapter_titles)
    chapters = epub.chapter_documents()
    for entry, title, chapter in zip(entries, built.chapter_titles, chapters, strict=True):
        assert title in "".join(entry.itertext())
        href = entry.get("href").split("#")[0]
        assert epub.full_name(href) == chapter


def _links(epub: Epub) -> list[tuple[str, etree._Element]]:
    return [(name, a) for name in epub.xhtml_names() for a in epub.document(name).iter(f"{{{NS['x']}}}a")]


def test_internal_links_resolve(built: BuiltProject, epub: Epub) -> None:
    """Every local link, cross-references across chapter files included, reaches an existing id."""
    checked = 0
    for name, anchor in _links(epub):
        href = anchor.get("href")
        if href is None or href.startswith(("http:", "https:", "mailto:")):
            continue
        path, _, fragment = href.partition("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), path)) if path else name
        assert target in epub.names, f"{name}: {href} → missing file {target}"
        if fragment:
            ids = epub.document(target).xpath("//@id")
            assert fragment in ids, f"{name}: {href} → no id {fragment!r} in {target}"
        checked += 1
    assert checked > 0


def test_cross_references_are_filled_and_cross_files(built: BuiltProject, epub: Epub) -> None:
    xrefs = [(name, a) for name, a in _links(epub) if "xref" in (a.get("class") or "").split()]
    if built.name == "repository":
        assert xrefs, "the briefing has cross-references"
    for name, anchor in xrefs:
        assert "".join(anchor.itertext()).strip(), f"empty cross-reference in {name}: {anchor.get('href')}"
    if built.name in ("ja-basic", "en-basic"):
        labels = {"".join(a.itertext()): a.get("href") for _, a in xrefs}
        figure, table = ("図1", "表1") if built.name == "ja-basic" else ("Figure 1", "Table 1")
        assert labels[figure] == "method.xhtml#fig-sample"
        assert labels[table] == "method.xhtml#tbl-results"


def test_footnotes_are_asides(built: BuiltProject, epub: Epub) -> None:
    notes = {
        (name, aside.get("id"))
        for name in epub.xhtml_names()
        for aside in epub.document(name).iter(f"{{{NS['x']}}}aside")
        if aside.get(EPUB_TYPE) == "footnote"
    }
    refs = [(name, a) for name, a in _links(epub) if a.get(EPUB_TYPE) == "noteref"]
    if built.name in ("ja-basic", "en-basic"):
        expected = 2 if built.name == "ja-basic" else 3  # en-basic has an inline note ^[…] too
        assert len(notes) == expected and len(refs) == expected
    for name, anchor in refs:
        assert (name, anchor.get("href").lstrip("#")) in notes, anchor.get("href")


def ruby_pairs(ruby: etree._Element) -> list[tuple[str, str]]:
    """(base, reading) pairs of one <ruby>: the base is the text before each <rt>, <rp> left out."""
    pairs, base = [], ruby.text or ""
    for child in ruby:
        local = etree.QName(child).localname
        if local == "rt":
            pairs.append((base, "".join(child.itertext())))
            base = ""
        elif local != "rp":
            base += "".join(child.itertext())
        base += child.tail or ""
    return pairs


def test_ruby_is_markup(built: BuiltProject, epub: Epub) -> None:
    rubies = [ruby for name in epub.xhtml_names() for ruby in epub.document(name).iter(f"{{{NS['x']}}}ruby")]
    if built.name == "en-basic":
        assert rubies == []
        return
    if built.name == "repository":
        return
    if built.name in ("ja-basic", "cjk-mixed"):  # the fixtures that write ruby
        assert rubies
    pairs = [pair for ruby in rubies for pair in ruby_pairs(ruby)]
    assert all(base and reading for base, reading in pairs), pairs
    if built.name == "ja-basic":
        # {露朝|ろちょう} is one group; {漢字|かん|じ} gives each character its own reading.
        assert ("露朝", "ろちょう") in pairs
        assert ("漢", "かん") in pairs and ("字", "じ") in pairs
    if built.name == "cjk-mixed":
        assert ("𠮷野", "よしの") in pairs


def test_no_script_anywhere(built: BuiltProject, epub: Epub) -> None:
    for name in epub.names:
        data = epub.read(name)
        if name.endswith((".xhtml", ".opf", ".ncx", ".css")):
            assert b"<script" not in data.lower(), name
            if built.name in SCRIPT_TEXT:
                assert SCRIPT_TEXT[built.name].encode() not in data, name
    for name in epub.xhtml_names():
        assert not epub.document(name).xpath("//x:script | //@*[starts-with(local-name(), 'on')]", namespaces=NS)


def test_kept_raw_html_and_inline_svg(all_built: dict[str, BuiltProject]) -> None:
    epub = Epub(all_built["ja-basic"].epub)
    method = epub.document(epub.full_name("method.xhtml"))
    svg = method.findall(".//{http://www.w3.org/2000/svg}svg")
    assert len(svg) == 1
    assert "入力段階" in "".join(svg[0].itertext())
    assert svg[0].get("role") == "img" and svg[0].get("aria-label")
    intro = epub.document(epub.full_name("intro.xhtml"))
    kept = intro.xpath("//x:span[@class='keep']", namespaces=NS)
    assert [k.text for k in kept] == ["残るスパン"]
    assert intro.xpath("//x:s[text()='取り消された記述']", namespaces=NS)
    assert len(intro.xpath("//x:dl/x:dt", namespaces=NS)) == 2
    png = [item.get("href") for item in epub.manifest.values() if item.get("media-type") == "image/png"]
    assert [href for href in png if href.endswith("sample.png")] == ["assets/figures/sample.png"]
