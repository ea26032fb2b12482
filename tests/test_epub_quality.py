"""The EPUB for readers and checkers (issue 5): cover image, print page list, notes, fonts,
accessibility (Ace by DAISY), vertical writing, store-safe CSS and byte-identical builds.

The end-to-end projects come from the session fixtures of conftest.py (each built once,
EPUBCheck started on each); this module adds Ace on each of them and a vertical-writing
variant of ja-basic, built twice in separate processes (once with the PDF, once alone).
"""

from __future__ import annotations

import functools
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tinycss2
from conftest import E2E_PROJECTS, BuiltProject
from helpers import (
    REPO_ROOT,
    EpubCheckRun,
    copy_fixture,
    epub_names,
    epub_read,
    pdftotext,
    run_report,
    squeeze,
    stop,
    unavailable,
)
from lxml import etree

NS = {
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "x": "http://www.w3.org/1999/xhtml",
    "epub": "http://www.idpf.org/2007/ops",
    "svg": "http://www.w3.org/2000/svg",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
}
X = "{http://www.w3.org/1999/xhtml}"
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ACE = REPO_ROOT / ".tools" / "ace" / "node_modules" / ".bin" / "ace-cli"
ACE_BROWSER_START_MS = 120_000
MAX_EPUB_BYTES = 2_000_000
CONFORMANCE = "EPUB Accessibility 1.1 - WCAG 2.2 Level AA"
LICENCE_NAME_IDS = (13, 14)  # licence description and licence URL


# --- reading an EPUB ------------------------------------------------------------------------


class Epub:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.names = epub_names(path)
        container = etree.fromstring(epub_read(path, "META-INF/container.xml"))
        self.opf_name = container.find(".//c:rootfile", NS).get("full-path")
        self.opf = etree.fromstring(epub_read(path, self.opf_name))
        self.base = posixpath.dirname(self.opf_name)
        self.items = self.opf.findall("opf:manifest/opf:item", NS)
        self.manifest = {item.get("id"): item for item in self.items}
        self.spine = [self.manifest[ref.get("idref")] for ref in self.opf.findall("opf:spine/opf:itemref", NS)]
        self._cache: dict[str, etree._Element] = {}

    def read(self, href: str) -> bytes:
        return epub_read(self.path, self.full(href))

    def full(self, href: str) -> str:
        return posixpath.normpath(posixpath.join(self.base, href))

    def document(self, href: str) -> etree._Element:
        if href not in self._cache:
            self._cache[href] = etree.fromstring(self.read(href))
        return self._cache[href]

    def with_property(self, prop: str) -> list[etree._Element]:
        return [item for item in self.items if prop in (item.get("properties") or "").split()]

    def xhtml(self) -> list[str]:
        return [item.get("href") for item in self.items if item.get("media-type") == "application/xhtml+xml"]

    def meta(self, prop: str) -> list[str]:
        return [m.text or "" for m in self.opf.findall("opf:metadata/opf:meta", NS) if m.get("property") == prop]

    def nav(self) -> etree._Element:
        return self.document(self.with_property("nav")[0].get("href"))

    def page_list(self) -> list[tuple[str, str]]:
        links = self.nav().xpath("//x:nav[@epub:type='page-list']//x:a", namespaces=NS)
        return [("".join(a.itertext()), a.get("href")) for a in links]


def text_of(element: etree._Element) -> str:
    """Text as printed: ruby readings and their parentheses left out."""
    parts = [element.text or ""] if etree.QName(element).localname not in ("rt", "rp") else []
    for child in element:
        if isinstance(child.tag, str):
            parts.append(text_of(child))
        parts.append(child.tail or "")
    return "".join(parts)


# --- Ace by DAISY ---------------------------------------------------------------------------


@dataclass
class AceRun:
    """Ace started in the background on one EPUB (3–9 s), read once."""

    epub: Path
    out: Path
    process: subprocess.Popen[bytes] | None = None
    _report: dict | None = field(default=None, repr=False)

    def start(self) -> AceRun:
        env = dict(
            os.environ,
            PUPPETEER_EXECUTABLE_PATH=shutil.which("chromium") or "/usr/bin/chromium",
            # Ace gives Chromium 5 s to start: too few on two cores while the suite starts Ace on
            # every EPUB at once beside the builds ("Timed out after 5000 ms while waiting for
            # the WS endpoint URL"). This is only how long Chromium may take to start.
            ACE_TIMEOUT_INITIAL=str(ACE_BROWSER_START_MS),
        )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("wb") as log:  # what Ace says of a failure, it says on standard output
            self.process = subprocess.Popen(
                [str(ACE), "-o", str(self.out), "--force", str(self.epub)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped with its Chromium, whatever happens
            )
        return self

    @property
    def _log(self) -> Path:
        return self.out.parent / f"{self.out.name}.ace.log"

    def report(self) -> dict:
        if self._report is None:
            assert self.process is not None
            try:
                self.process.wait(timeout=300)
            finally:
                stop(self.process)
            report = self.out / "report.json"
            said = self._log.read_text(encoding="utf-8", errors="replace")[-3000:]
            assert report.is_file(), (
                f"Ace wrote no report for {self.epub.name} (exit status {self.process.returncode}; "
                f"the EPUB {'is there' if self.epub.is_file() else 'is missing'}):\n{said}"
            )
            self._report = json.loads(report.read_text(encoding="utf-8"))
        return self._report

    def violations(self, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
        return [
            f"{test['earl:test']['earl:impact']} {test['earl:test']['dct:title']} in "
            f"{assertion['earl:testSubject']['url']}: {test['earl:result'].get('dct:description', '')}"
            for assertion in self.report()["assertions"]
            for test in assertion["assertions"]
            if test["earl:test"]["earl:impact"] in impacts
        ]


def ace_available() -> bool:
    return ACE.is_file() and bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists())


def built_projects(build_project: Callable[[str], BuiltProject], names: Iterable[str]) -> dict[str, BuiltProject]:
    """Projects built once per session, each build checked to have succeeded."""
    built = {name: build_project(name) for name in names}
    for project in built.values():
        assert project.run.returncode == 0, f"{project.name}:\n{project.run.stderr}"
    return built


def start_ace(projects: dict[str, BuiltProject], base: Path) -> dict[str, AceRun]:
    """Ace started on each project's EPUB (none when Ace is not installed)."""
    if not ace_available():
        return {}
    return {name: AceRun(project.epub, base / name).start() for name, project in projects.items()}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def projects(
    build_project: Callable[[str], BuiltProject], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BuiltProject]:
    """The end-to-end projects (built once per session), with Ace started on each."""
    return built_projects(build_project, E2E_PROJECTS)


@pytest.fixture(scope="module")
def ace_runs(projects: dict[str, BuiltProject], tmp_path_factory: pytest.TempPathFactory) -> dict[str, AceRun]:
    return start_ace(projects, tmp_path_factory.mktemp("ace"))


@pytest.fixture(scope="module", autouse=True)
def _background(ace_runs: dict[str, AceRun], vertical: Vertical) -> None:
    """Ace on the projects is started first, so that it runs while the vertical variant builds."""


@pytest.fixture
def project(request: pytest.FixtureRequest, projects: dict[str, BuiltProject]) -> BuiltProject:
    return projects[request.param]


def each_project(function: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.parametrize("project", E2E_PROJECTS, indirect=True)(function)


@pytest.fixture(scope="module")
def briefing(projects: dict[str, BuiltProject]) -> BuiltProject:
    return projects["repository"]


def _environment(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    env.update(changes)
    return env


@dataclass
class Vertical:
    root: Path
    epub: Path
    epub_alone: Path  # the same report built with --format epub, other hash seed and time zone
    epubcheck: EpubCheckRun
    ace: AceRun | None


@pytest.fixture(scope="module")
def vertical(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vertical]:
    """ja-basic with ``[epub] writing-mode = "vertical-rl"``: built with its PDF (hash seed 1,
    UTC), then the EPUB alone (hash seed 4242, Tokyo) in another process."""
    base = tmp_path_factory.mktemp("vertical")
    root = copy_fixture("ja-basic", base / "src")
    toml = root / "report.toml"
    text = toml.read_text(encoding="utf-8")
    setting = 'writing-mode = "vertical-rl"\n'
    text = text.replace("[epub]\n", f"[epub]\n{setting}") if "[epub]\n" in text else f"{text}\n[epub]\n{setting}"
    toml.write_text(text, encoding="utf-8")
    first = run_report("build", root, "-o", base / "full", env=_environment(PYTHONHASHSEED="1", TZ="UTC"))
    assert first.returncode == 0, first.stderr
    epub = base / "full" / "ja-basic.epub"
    check = EpubCheckRun(epub).start()
    ace = AceRun(epub, base / "ace").start() if ace_available() else None
    second = run_report(
        "build",
        root,
        "--no-cache",  # a fresh EPUB, not the first build's from the cache
        "--format",
        "epub",
        "-o",
        base / "alone",
        env=_environment(PYTHONHASHSEED="4242", TZ="Asia/Tokyo"),
    )
    assert second.returncode == 0, second.stderr
    yield Vertical(root, epub, base / "alone" / "ja-basic.epub", check, ace)


# --- 1. structure and cover -----------------------------------------------------------------


def test_cover_image_is_the_printed_first_page(briefing: BuiltProject) -> None:
    import pypdfium2
    from PIL import Image, ImageChops, ImageStat

    epub = Epub(briefing.epub)
    (cover,) = epub.with_property("cover-image")
    assert cover.get("media-type") == "image/png"
    metas = epub.opf.findall("opf:metadata/opf:meta[@name='cover']", NS)
    assert [m.get("content") for m in metas] == [cover.get("id")]
    image = Image.open(io.BytesIO(epub.read(cover.get("href")))).convert("RGB")
    assert image.height >= 1200 and 0.6 < image.width / image.height < 0.8, image.size
    page = pypdfium2.PdfDocument(briefing.pdf)[0]
    printed = page.render(scale=image.height / page.get_height()).to_pil().convert("RGB").resize(image.size)
    difference = ImageStat.Stat(ImageChops.difference(image, printed)).mean
    assert max(difference) < 4, difference  # the same picture, up to the palette

    cover_page = epub.document(epub.spine[0].get("href"))
    (img,) = cover_page.xpath("//x:img", namespaces=NS)
    assert posixpath.normpath(img.get("src")) == cover.get("href")
    assert briefing.config["title"] in img.get("alt")
    assert briefing.config["subtitle"] in img.get("alt")
    assert img.get("role") == "doc-cover"
    assert cover_page.xpath("//*[@epub:type='cover']", namespaces=NS)


@each_project
def test_navigation_toc_landmarks_and_ncx(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    nav = epub.nav()
    (toc,) = nav.xpath("//x:nav[@epub:type='toc']", namespaces=NS)
    assert toc.get("role") == "doc-toc"
    landmarks = nav.xpath("//x:nav[@epub:type='landmarks']//x:a", namespaces=NS)
    types = {a.get(EPUB_TYPE) for a in landmarks}
    assert {"cover", "toc", "bodymatter"} <= types
    if "back" in project.chapter_matters:
        assert "backmatter" in types
    for a in landmarks:
        path, _, fragment = a.get("href").partition("#")
        assert epub.full(path) in epub.names
        if fragment:
            assert epub.document(path).xpath(f"//*[@id='{fragment}']")
    # The spine: cover, navigation, then the chapters in the order of report.toml (the PDF's).
    assert epub.spine[0].get("href") == "cover.xhtml"
    assert "nav" in (epub.spine[1].get("properties") or "")
    ncx_item = epub.manifest[epub.opf.find("opf:spine", NS).get("toc")]
    ncx = etree.fromstring(epub.read(ncx_item.get("href")))
    assert ncx.get(XML_LANG) == project.config["language"]
    assert len(ncx.findall("ncx:navMap/ncx:navPoint", NS)) == len(project.chapter_titles)
    targets = ncx.findall("ncx:pageList/ncx:pageTarget", NS)
    assert [
        (t.findtext("ncx:navLabel/ncx:text", namespaces=NS), t.find("ncx:content", NS).get("src")) for t in targets
    ] == (epub.page_list())


# --- 2. print page list ---------------------------------------------------------------------


@each_project
def test_page_list_points_at_page_break_markers(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    entries = epub.page_list()
    assert entries, "no page list"
    labels = [int(label) for label, _ in entries]
    assert labels == sorted(set(labels)), labels
    markers = [
        (name, span)
        for name in epub.xhtml()
        for span in epub.document(name).iter(f"{X}span")
        if span.get(EPUB_TYPE) == "pagebreak"
    ]
    assert len(markers) == len(entries)
    for label, href in entries:
        path, _, fragment = href.partition("#")
        (marker,) = epub.document(path).xpath(f"//*[@id='{fragment}']")
        assert marker.get(EPUB_TYPE) == "pagebreak"
        assert marker.get("role") == "doc-pagebreak"
        assert marker.get("aria-label") == label
        assert not "".join(marker.itertext())
    (page_list,) = epub.nav().xpath("//x:nav[@epub:type='page-list']", namespaces=NS)
    assert page_list.get("hidden") is not None
    source = epub.opf.find("opf:metadata/dc:source", NS)
    assert source is not None and source.text
    assert epub.meta("pageBreakSource") == [source.text]
    refines = epub.opf.findall(f"opf:metadata/opf:meta[@refines='#{source.get('id')}']", NS)
    assert [(m.get("property"), m.text) for m in refines] == [("source-of", "pagination")]


def test_page_breaks_stand_where_the_printed_pages_begin(briefing: BuiltProject) -> None:
    """A citation "p. N" of the PDF finds, in the EPUB, the element that begins page N."""
    epub = Epub(briefing.epub)
    printed = pdftotext(briefing.pdf, layout=False).split("\f")
    entries = epub.page_list()
    assert len(entries) >= 0.8 * (len(printed) - 1), (len(entries), len(printed))
    checked = 0
    for label, href in entries:
        path, _, fragment = href.partition("#")
        (marker,) = epub.document(path).xpath(f"//*[@id='{fragment}']")
        following = marker.getnext()
        while following is not None and following.get(EPUB_TYPE) == "pagebreak":
            following = following.getnext()
        assert following is not None, href
        # The first words (a heading's number aside: print may set the running head between);
        # of a chapter, its title (an index in two columns comes out of pdftotext in no order).
        title = following.find("x:h1", NS) if following.tag == f"{X}section" else None
        start = re.sub(r"^[0-9.]+", "", squeeze(text_of(following if title is None else title)))[:8]
        if not start:
            continue  # the cover: an image
        assert start in squeeze(printed[int(label) - 1]), (label, href, start)
        checked += 1
    assert checked >= len(entries) - 1
    # Every chapter begins a printed page, so every chapter has a marker before its section.
    for name in epub.xhtml():
        for section in epub.document(name).xpath("//x:body/x:section[@epub:type]", namespaces=NS):
            previous = section.getprevious()
            if section.get(EPUB_TYPE) != "cover":
                assert previous is not None and previous.get(EPUB_TYPE) == "pagebreak", name


# --- 3. notes -------------------------------------------------------------------------------


@each_project
def test_notes_link_both_ways(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    for name in epub.xhtml():
        document = epub.document(name)
        ids = {element.get("id"): element for element in document.iter() if element.get("id")}
        refs = document.xpath("//x:a[@epub:type='noteref']", namespaces=NS)
        for ref in refs:
            assert ref.get("role") == "doc-noteref"
            note = ids.get(ref.get("href").lstrip("#"))
            assert note is not None and etree.QName(note).localname == "aside", ref.get("href")
            assert note.get(EPUB_TYPE) == "footnote" and note.get("role") == "doc-footnote"
        for note in document.xpath("//x:aside[@epub:type='footnote']", namespaces=NS):
            (back,) = note.xpath(".//x:a[@role='doc-backlink']", namespaces=NS)
            target = ids.get(back.get("href").lstrip("#"))
            assert target is not None and target.get(EPUB_TYPE) == "noteref", back.get("href")
            assert target.get("href") == f"#{note.get('id')}"


# --- 4. fonts -------------------------------------------------------------------------------


def _fonts(epub: Epub) -> dict[str, object]:
    from fontTools.ttLib import TTFont

    return {
        posixpath.basename(item.get("href")): TTFont(io.BytesIO(epub.read(item.get("href"))))
        for item in epub.items
        if item.get("media-type") in ("font/otf", "font/ttf")
    }


def _features(font: object, table: str) -> set[str]:
    if table not in font:  # type: ignore[operator]
        return set()
    return {record.FeatureTag for record in font[table].table.FeatureList.FeatureRecord}  # type: ignore[index]


def test_briefing_is_small_and_its_faces_hold_what_they_set(briefing: BuiltProject) -> None:
    assert briefing.epub.stat().st_size < MAX_EPUB_BYTES
    epub = Epub(briefing.epub)
    fonts = _fonts(epub)
    cmaps = {name: set(font.getBestCmap()) for name, font in fonts.items()}  # type: ignore[attr-defined]
    serif, sans_bold = cmaps["NotoSerifCJKjp-Regular.otf"], cmaps["NotoSansCJKjp-Bold.otf"]
    assert len(cmaps["NotoSansCJKjp-Regular.otf"]) < len(serif) / 2, "sans faces are cut to what is set in sans"
    mono = cmaps.get("NotoSansMonoCJKjp-Regular.otf", set())  # a face comes only if something is set in it
    missing: dict[str, set[str]] = {"serif": set(), "sans bold": set(), "mono": set()}
    code_seen = False
    # What is drawn: format characters (U+2060 WORD JOINER, which keeps 12日 together) have no glyph.
    for name in epub.xhtml():
        document = epub.document(name)
        shown = "[not(ancestor-or-self::*[@hidden])]"
        for heading in document.xpath(f"(//x:h1 | //x:h2 | //x:h3 | //x:th | //x:caption){shown}", namespaces=NS):
            missing["sans bold"] |= {
                c for c in text_of(heading) if c.isprintable() and not c.isspace() and ord(c) not in sans_bold
            }
        for paragraph in document.xpath("//x:section[not(@epub:type='cover')]//x:p", namespaces=NS):
            prose = "".join(
                paragraph.xpath(".//text()[not(ancestor::x:code or ancestor::x:rt or ancestor::x:rp)]", namespaces=NS)
            )
            missing["serif"] |= {c for c in prose if c.isprintable() and not c.isspace() and ord(c) not in serif}
        for code in document.xpath("//x:p//x:code", namespaces=NS):
            missing["mono"] |= {c for c in text_of(code) if c.isprintable() and not c.isspace() and ord(c) not in mono}
            code_seen = True
    assert missing == {"serif": set(), "sans bold": set(), "mono": set()}
    assert code_seen == ("NotoSansMonoCJKjp-Regular.otf" in cmaps), "the monospace face is in the EPUB if code is"


@each_project
def test_the_fonts_hold_every_character_of_the_navigation_and_the_cover(project: BuiltProject) -> None:
    """Reading systems show the navigation's lists (its hidden landmarks and page list too) and
    the cover page's text (its title, the cover's alternative text) in the book's fonts."""
    epub = Epub(project.epub)
    held = set().union(*(font.getBestCmap() for font in _fonts(epub).values()))  # type: ignore[attr-defined]
    for document in (epub.nav(), epub.document(epub.spine[0].get("href"))):
        text = "".join(document.itertext()) + "".join(document.xpath("//@alt"))
        assert text.strip()
        assert {c for c in text if c.isprintable() and not c.isspace() and ord(c) not in held} == set()


KEPT_FEATURES = {"GSUB": ("vert", "vrt2", "locl", "ruby"), "GPOS": ("palt",)}


@functools.cache
def _feature_reach(file: str) -> tuple[dict[int, str], dict[str, set[str]]]:
    """For a bundled face: its cmap, and for each feature of :data:`KEPT_FEATURES` the glyphs
    its lookups act on (first glyphs; contextual lookups ignored)."""
    from fontTools.ttLib import TTFont

    font = TTFont(REPO_ROOT / "assets" / "fonts" / file, lazy=True)
    reach: dict[str, set[str]] = {}
    for table, tags in KEPT_FEATURES.items():
        if table not in font:
            continue
        layout = font[table].table
        for record in layout.FeatureList.FeatureRecord:
            if record.FeatureTag not in tags:
                continue
            glyphs = reach.setdefault(record.FeatureTag, set())
            for index in record.Feature.LookupListIndex:
                for subtable in layout.LookupList.Lookup[index].SubTable:
                    subtable = getattr(subtable, "ExtSubTable", subtable)
                    for attribute in ("mapping", "alternates", "ligatures"):
                        if hasattr(subtable, attribute):
                            glyphs |= set(getattr(subtable, attribute))
                    coverage = getattr(subtable, "Coverage", None)
                    if coverage is not None and hasattr(coverage, "glyphs"):
                        glyphs |= set(coverage.glyphs)
    return font.getBestCmap(), reach


@each_project
def test_fonts_keep_their_features_and_licence(project: BuiltProject) -> None:
    """vert, vrt2, palt, locl and ruby (and the like) stay wherever the characters have them."""
    fonts = _fonts(Epub(project.epub))
    assert fonts
    for name, font in fonts.items():
        names = {record.nameID for record in font["name"].names}  # type: ignore[index]
        assert set(LICENCE_NAME_IDS) <= names, name
        licence = font["name"].getDebugName(13)  # type: ignore[index]
        assert "Open Font License" in licence, (name, licence)
        source_cmap, reach = _feature_reach(name)
        glyphs = {source_cmap[code] for code in font.getBestCmap() if code in source_cmap}  # type: ignore[attr-defined]
        for table, tags in KEPT_FEATURES.items():
            expected = {tag for tag in tags if reach.get(tag, set()) & glyphs}
            assert expected <= _features(font, table), (name, table, expected - _features(font, table))
        assert "aalt" not in _features(font, "GSUB"), name  # glyph-heavy features are dropped
    if project.config["language"] == "ja":
        serif = fonts["NotoSerifCJKjp-Regular.otf"]
        assert {"vert", "vrt2", "locl"} <= _features(serif, "GSUB")
        assert "palt" in _features(serif, "GPOS")


# --- 5. accessibility -----------------------------------------------------------------------


@each_project
def test_accessibility_metadata(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    language = project.config["language"]
    assert epub.opf.get(XML_LANG) == language
    modes = epub.meta("schema:accessMode")
    assert modes == ["textual", "visual"]  # the cover is an image
    assert "textual" in epub.meta("schema:accessModeSufficient")
    features = set(epub.meta("schema:accessibilityFeature"))
    required = {"tableOfContents", "readingOrder", "structuralNavigation", "printPageNumbers", "alternativeText"}
    assert required <= features
    has_ruby = any(epub.document(n).xpath("//x:ruby", namespaces=NS) for n in epub.xhtml())
    assert ("rubyAnnotations" in features) == bool(has_ruby)
    assert epub.meta("schema:accessibilityHazard") == ["none"]
    (summary,) = epub.meta("schema:accessibilitySummary")
    assert len(summary) > 40
    assert epub.meta("dcterms:conformsTo") == [CONFORMANCE]
    assert all(epub.meta("a11y:certifiedBy"))


@each_project
def test_documents_earn_the_claim(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    language = project.config["language"]
    for name in epub.xhtml():
        root = epub.document(name)
        assert root.get("lang") == language and root.get(XML_LANG) == language, name
        for a in root.iter(f"{X}a"):
            assert "".join(a.itertext()).strip() or a.get("aria-label"), f"empty link in {name}: {a.get('href')}"
        for th in root.iter(f"{X}th"):
            assert th.get("scope") in ("col", "row"), name
        for img in root.iter(f"{X}img"):
            assert (img.get("alt") or "").strip(), name
        for svg in root.iter(f"{{{NS['svg']}}}svg"):
            assert svg.get("role") == "img" and (svg.get("aria-label") or "").strip(), name


@each_project
def test_ace_finds_no_serious_or_critical_violation(project: BuiltProject, ace_runs: dict[str, AceRun]) -> None:
    if not ace_runs:
        unavailable("Ace is not installed (./run test installs it in .tools/ace, with Node.js >= 20)")
    assert ace_runs[project.name].violations() == []


# --- 6. vertical writing --------------------------------------------------------------------


def test_vertical_variant(vertical: Vertical) -> None:
    epub = Epub(vertical.epub)
    assert epub.opf.find("opf:spine", NS).get("page-progression-direction") == "rtl"
    assert epub.opf.find("opf:metadata/opf:meta[@name='primary-writing-mode']", NS).get("content") == "vertical-rl"
    css = "".join(epub.read(item.get("href")).decode() for item in epub.items if item.get("media-type") == "text/css")
    for declaration in ("writing-mode: vertical-rl", "-epub-writing-mode: vertical-rl", "text-combine-upright: all"):
        assert declaration in css
    spans = [
        (name, span)
        for name in epub.xhtml()
        for span in epub.document(name).iter(f"{X}span")
        if "tcy" in (span.get("class") or "").split()
    ]
    assert spans
    assert all(re.fullmatch(r"[0-9]{1,2}", span.text or "") for _, span in spans)
    intro = epub.document("intro.xhtml")
    (label,) = intro.xpath("//x:h1//x:span[@class='chapter-label']", namespaces=NS)
    assert [s.text for s in label.iter(f"{X}span") if s.get("class") == "tcy"] == ["1"]  # 第1章
    headings = "".join(text_of(h) for h in epub.document("method.xhtml").iter(f"{X}h2"))
    assert "2.1" in headings  # section numbers keep their form (no tcy inside "2.1")


def test_vertical_variant_passes_epubcheck_and_ace(vertical: Vertical) -> None:
    messages = vertical.epubcheck.result()
    problems = [f"{m['severity']} {m['ID']} {m['message']}" for m in messages if m["severity"] != "INFO"]
    problems = [p for p in problems if not p.startswith("USAGE")]
    assert problems == []
    if vertical.ace is None:
        unavailable("Ace is not installed (./run test installs it in .tools/ace, with Node.js >= 20)")
    assert vertical.ace.violations() == []


# --- 7. store-safe CSS ----------------------------------------------------------------------


def _css_problems(css: str, names: set[str], base: str) -> Iterator[str]:
    rules = tinycss2.parse_stylesheet(css, skip_comments=False, skip_whitespace=True)
    for rule in rules:
        if rule.type == "comment":
            if "--" in rule.value:
                yield f"'--' inside a comment: {rule.value[:40]!r}"
        elif rule.type == "error":
            yield f"parse error: {rule.message}"
        elif rule.type == "at-rule":
            if rule.lower_at_keyword not in ("font-face", "media"):
                yield f"@{rule.at_keyword}"
            if rule.content is not None and rule.lower_at_keyword == "font-face":
                yield from _declaration_problems(rule.content, names, base)
        elif rule.type == "qualified-rule":
            yield from _declaration_problems(rule.content, names, base)


def _declaration_problems(content: list, names: set[str], base: str) -> Iterator[str]:
    for item in tinycss2.parse_blocks_contents(content, skip_comments=False, skip_whitespace=True):
        if item.type == "comment" and "--" in item.value:
            yield f"'--' inside a comment: {item.value[:40]!r}"
        elif item.type == "error":
            yield f"parse error: {item.message}"
        elif item.type == "declaration":
            if item.name.startswith("--"):
                yield f"custom property {item.name}"
            yield from _value_problems(item.value, names, base)


def _value_problems(tokens: list, names: set[str], base: str) -> Iterator[str]:
    for token in tokens:
        if token.type == "function":
            if token.lower_name == "var":
                yield "var()"
            if token.lower_name == "url":
                yield from _url_problems("".join(getattr(a, "value", "") for a in token.arguments), names, base)
            yield from _value_problems(token.arguments, names, base)
        elif token.type == "url":
            yield from _url_problems(token.value, names, base)
        elif token.type in ("() block", "[] block", "{} block"):
            yield from _value_problems(token.content, names, base)


def _url_problems(url: str, names: set[str], base: str) -> Iterator[str]:
    if ":" in url or posixpath.normpath(posixpath.join(base, url)) not in names:
        yield f"url({url}) is not a file of the EPUB"


@pytest.mark.parametrize("name", [*E2E_PROJECTS, "vertical"])
def test_css_is_store_safe(name: str, request: pytest.FixtureRequest) -> None:
    path = (
        request.getfixturevalue("vertical").epub
        if name == "vertical"
        else request.getfixturevalue("projects")[name].epub
    )
    epub = Epub(path)
    names = set(epub.names)
    sheets = [item.get("href") for item in epub.items if item.get("media-type") == "text/css"]
    assert sheets
    for href in sheets:
        css = epub.read(href).decode("utf-8")
        problems = list(_css_problems(css, names, posixpath.dirname(epub.full(href))))
        assert problems == [], href


def test_css_scan_catches_what_stores_reject() -> None:
    names = {"EPUB/fonts/a.otf"}
    bad = '/* a -- b */ :root { --accent: red; } p { color: var(--accent); } @import "x.css"; @font-face { src: url("../fonts/b.otf"); }'
    problems = list(_css_problems(bad, names, "EPUB/css"))
    assert any("comment" in p for p in problems)
    assert any("custom property" in p for p in problems)
    assert any("var()" in p for p in problems)
    assert any("@import" in p for p in problems)
    assert any("not a file" in p for p in problems)
    assert list(_css_problems('@font-face { src: url("../fonts/a.otf"); } p { margin: 0 }', names, "EPUB/css")) == []


# --- 8. reproducible ------------------------------------------------------------------------


def test_same_sources_give_identical_epub_bytes(vertical: Vertical) -> None:
    """Built with its PDF (hash seed 1, UTC) and alone (hash seed 4242, Asia/Tokyo)."""
    assert vertical.epub.read_bytes() == vertical.epub_alone.read_bytes()


@each_project
def test_zip_is_normalised(project: BuiltProject) -> None:
    with zipfile.ZipFile(project.epub) as archive:
        infos = archive.infolist()
    assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
    assert len({info.date_time for info in infos}) == 1
    date = project.config.get("date")
    if date is not None and "SOURCE_DATE_EPOCH" not in os.environ:
        assert infos[0].date_time[:3] == (date.year, date.month, date.day)
    assert {info.create_system for info in infos} == {3}
    assert {info.external_attr >> 16 for info in infos} == {0o644}
