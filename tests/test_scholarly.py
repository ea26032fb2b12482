"""Callouts, citations with a bibliography, and the index (issue 21): the ja and en
scholarly fixtures built once each, read back from their PDF and EPUB, checked by EPUBCheck
and Ace."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pdfplumber
import pypdf
import pytest
from conftest import BuiltProject
from helpers import copy_fixture, diagnostics_of, pdftotext, run_report, squeeze
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from test_epub_quality import EPUB_TYPE, NS, AceRun, Epub, X, built_projects, start_ace
from test_parse import parse_text

from report.assemble import Assembler
from report.build import prepare
from report.errors import Diagnostics, ReportError
from report.index import index_html
from report.model import Book
from report.render.pdf import page_text

SCHOLARLY = ("ja-scholarly", "en-scholarly")
CALLOUT_TITLES = {
    "ja-scholarly": ["注", "ヒント", "重要", "警告", "注意", "独自の題", "警告"],
    "en-scholarly": ["Note", "Tip", "Important", "Warning", "Caution", "A titled tip", "Caution"],
}

CALLOUT_BODIES = {
    "ja-scholarly": ["注の囲みの本文。", "ヒントの囲みの本文。", "重要の囲みの本文。", "警告の囲みの本文。",
                     "注意の囲みの本文。", "題を付けた囲みの本文。", "Pandoc形式の警告の本文。"],
    "en-scholarly": ["The body of a note.", "The body of a tip.", "The body of an important callout.",
                     "The body of a warning.", "The body of a caution.", "A tip with its own title.",
                     "A Pandoc-style caution."],
}  # fmt: skip


@pytest.fixture(scope="module")
def projects(
    build_project: Callable[[str], BuiltProject], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BuiltProject]:
    return built_projects(build_project, SCHOLARLY)


@pytest.fixture(scope="module")
def ace_runs(projects: dict[str, BuiltProject], tmp_path_factory: pytest.TempPathFactory) -> dict[str, AceRun]:
    return start_ace(projects, tmp_path_factory.mktemp("ace-scholarly"))


@pytest.fixture(params=SCHOLARLY)
def project(request: pytest.FixtureRequest, projects: dict[str, BuiltProject]) -> BuiltProject:
    return projects[request.param]


def chapter_document(project: BuiltProject, chapter_id: str) -> etree._Element:
    epub = Epub(project.epub)
    return epub.document(f"{chapter_id}.xhtml")


def text_of(element: etree._Element) -> str:
    return "".join(element.itertext()).strip()


# --- checkers -------------------------------------------------------------------------------


def test_epubcheck_has_no_errors_or_warnings(project: BuiltProject) -> None:
    assert project.epubcheck is not None
    messages = [m for m in project.epubcheck.result() if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert messages == [], messages


def test_ace_finds_no_violations(project: BuiltProject, ace_runs: dict[str, AceRun]) -> None:
    if not ace_runs:
        pytest.skip("Ace is not installed (./run test installs it)")
    assert ace_runs[project.name].violations(("minor", "moderate", "serious", "critical")) == []


# --- callouts -------------------------------------------------------------------------------


def test_callouts_are_titled_asides_in_the_epub(project: BuiltProject) -> None:
    document = chapter_document(project, "callouts")
    asides = document.findall(".//x:aside[@role='note']", NS)
    assert [text_of(aside.find("x:p[@class='callout-title']", NS)) for aside in asides] == CALLOUT_TITLES[project.name]
    kinds = [aside.get("class").split()[1] for aside in asides]
    assert kinds[:5] == ["callout-note", "callout-tip", "callout-important", "callout-warning", "callout-caution"]


def test_each_callout_prints_its_title_and_body_on_one_page(project: BuiltProject) -> None:
    pages = [squeeze(page) for page in pdftotext(project.pdf).split("\f")]
    for title, body in zip(CALLOUT_TITLES[project.name], CALLOUT_BODIES[project.name], strict=True):
        assert any(squeeze(title + body) in page for page in pages), (title, body)


def test_fenced_div_with_broken_attributes_is_an_error_with_its_line() -> None:
    _, diagnostics = parse_text('本文。\n\n::: {.note title="unclosed}\nx\n:::\n')
    ((error),) = diagnostics.errors
    assert error.location.line == 3 and "fenced div" in error.message


def test_word_slots_cannot_be_forged_in_raw_html() -> None:
    chapter, _ = parse_text('<span class="word-slot" title="callout-note"></span>\n')
    assert 'class="word-slot"' not in chapter.html


# --- citations ------------------------------------------------------------------------------

# The reference list of each fixture, in its order: ja by reading then Latin; en by author.
REFERENCE_ORDER = {
    "ja-scholarly": ["ref-abe2018", "ref-ito2021", "ref-sato2019", "ref-yamada2020", "ref-brown2017", "ref-smith2022"],
    "en-scholarly": ["ref-adams2019", "ref-brown2017", "ref-smith2022", "ref-zhou2015"],
}
REFERENCE_START = {  # how each entry begins, as printed
    "ref-abe2018": "阿部三郎『制裁の実効性に関する報告』",
    "ref-ito2021": "伊藤一郎・加藤次郎「条約の法的性格」『法学論叢』5",
    "ref-sato2019": "佐藤花子『北東アジアの安全保障』",
    "ref-yamada2020": "山田太郎「露朝関係の新段階」『国際政治研究』12(3)",
    "ref-brown2017": "Brown, Alice",
    "ref-smith2022": "Smith, John",
    "ref-adams2019": "Adams, Peter. 2019.",
    "ref-zhou2015": "Zhou, Wei. 2015.",
}
CITED = {  # each citation's text, in reading order (body, then notes)
    "ja-scholarly": [
        "山田，2020，50ページ", "佐藤，2019", "伊藤・加藤，2021", "阿部，2018", "Smith，2022，101–105ページ",
        "Brown，2017", "山田（2020，60ページ）", "Smith（2022）", "佐藤，2019，12ページ",
    ],
    "en-scholarly": [
        "Smith and Jones 2022, p. 105", "see Brown 2017, chap. 2", "Adams 2019", "Zhou 2015",
        "Brown (2017, p. 12)", "Adams (2019)",
    ],
}  # fmt: skip


def _links(pdf: Path) -> list[tuple[int, str, list[float]]]:
    """(page number, named destination, rectangle) of every internal link."""
    reader = pypdf.PdfReader(pdf)
    found = []
    for number, page in enumerate(reader.pages, start=1):
        for annotation in page.get("/Annots") or []:
            annotation = annotation.get_object()
            if annotation.get("/Subtype") == "/Link" and isinstance(annotation.get("/Dest"), str):
                found.append((number, str(annotation["/Dest"]), [float(v) for v in annotation["/Rect"]]))
    return found


def _text_in(page: pdfplumber.page.Page, left: float, top: float, right: float, bottom: float) -> str:
    """The characters whose centres are in the box (their boxes may stick out of a link's)."""
    return "".join(
        char["text"]
        for char in page.chars
        if left <= (char["x0"] + char["x1"]) / 2 <= right and top <= (char["top"] + char["bottom"]) / 2 <= bottom
    )


def test_each_citation_links_to_its_entry_in_the_pdf(project: BuiltProject) -> None:
    reader = pypdf.PdfReader(project.pdf)
    destinations = reader.named_destinations
    with pdfplumber.open(project.pdf) as pdf:
        cited: list[tuple[str, str, float]] = []  # destination, text, bottom of the link
        for number, name, (x0, ya, x1, yb) in _links(project.pdf):
            if not name.startswith("ref-"):
                continue
            page = pdf.pages[number - 1]
            y0, y1 = sorted((ya, yb))
            text = squeeze(_text_in(page, x0, page.height - y1, x1, page.height - y0))
            if cited and cited[-1][0] == name and page.height - y1 >= cited[-1][2] - 1:
                text = cited.pop()[1] + text  # a citation broken across lines is two link areas
            cited.append((name, text, page.height - y0))
            # The destination is the entry itself: its page shows the entry's first words just below it.
            target = destinations[name]
            target_page = pdf.pages[reader.get_destination_page_number(target)]
            top = target_page.height - float(target.top)
            below = target_page.crop((0, max(top - 2, 0), target_page.width, min(top + 30, target_page.height)))
            assert squeeze(REFERENCE_START[name]) in squeeze(below.extract_text()), name
    assert [text for _, text, _ in cited] == [squeeze(text) for text in CITED[project.name]]


def test_bibliography_is_in_the_order_the_style_says(project: BuiltProject) -> None:
    document = _references_document(project)
    entries = document.findall(".//x:ul[@class='references']/x:li", NS)
    assert [entry.get("id") for entry in entries] == REFERENCE_ORDER[project.name]
    text = squeeze(pdftotext(project.pdf))
    positions = [text.find(squeeze(REFERENCE_START[key])) for key in REFERENCE_ORDER[project.name]]
    assert -1 not in positions and positions == sorted(positions)
    assert "引用されない文献" not in text  # only cited works are listed


def _references_document(project: BuiltProject) -> etree._Element:
    epub = Epub(project.epub)
    (name,) = [n for n in epub.xhtml() if b'class="references"' in epub.read(n)]
    return epub.document(name)


def test_epub_citations_link_to_entries_across_files(project: BuiltProject) -> None:
    epub = Epub(project.epub)
    document = epub.document("citations.xhtml")
    links = document.findall(".//x:a[@class='citation']", NS)
    assert [squeeze(text_of(link)) for link in links] == [squeeze(text) for text in CITED[project.name]]
    references = _references_document(project)
    ids = {entry.get("id") for entry in references.iter() if entry.get("id")}
    for link in links:
        file, _, fragment = link.get("href").partition("#")
        assert file.endswith(".xhtml") and fragment in ids
    assert references.find(".//x:section", NS).get("role") == "doc-bibliography"


def test_bibliography_chapter_is_where_front_matter_says(projects: dict[str, BuiltProject]) -> None:
    ja = Epub(projects["ja-scholarly"].epub)
    assert b'class="references"' in ja.read("references.xhtml")  # the chapter with bibliography: true
    en = Epub(projects["en-scholarly"].epub)
    title = en.document("references.xhtml").find(".//x:h1", NS)  # no such chapter: one at the end
    assert text_of(title) == "References"


def _bibliography_book(tmp_path: Path, markdown: str, csl: str | None = None, bibliography: str = "") -> Book:
    """en-scholarly with another citations chapter (and another CSL style, another refs.bib),
    read up to rendering."""
    root = copy_fixture("en-scholarly", tmp_path)
    (root / "chapters" / "02-citations.md").write_text(markdown, encoding="utf-8")
    if bibliography:
        (root / "refs.bib").write_text(bibliography, encoding="utf-8")
    if csl is not None:
        toml = (root / "report.toml").read_text(encoding="utf-8")
        (root / "report.toml").write_text(toml.replace("[pdf]", f'csl = "{csl}"\n\n[pdf]'), encoding="utf-8")
    book, _ = prepare(root)
    return book


def test_unknown_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as caught:
        _bibliography_book(tmp_path, "---\ntitle: T\nid: citations\n---\n\nText.\n\nA claim [@nobody2020].\n")
    ((error),) = caught.value.diagnostics
    assert error.location.path.name == "02-citations.md" and error.location.line == 8
    assert '"@nobody2020" is not in the bibliography refs.bib' in error.message


def test_a_report_chooses_its_csl_style(tmp_path: Path) -> None:
    markdown = "---\ntitle: T\nid: citations\n---\n\nFirst [@zhou2015], then [@adams2019, p. 4; @zhou2015].\n"
    book = _bibliography_book(tmp_path, markdown, csl="numeric.csl")
    chapter = next(c for c in book.chapters if c.id == "citations")
    assert re.findall(r"\[[^\]]*\]", re.sub(r"<[^>]+>", "", chapter.html)) == ["[1]", "[2, p. 4, 1]"]
    references = next(c for c in book.chapters if "bibliography" in c.classes)
    assert re.findall(r"\[(\d)\] \w+ (\w+)", references.html) == [("1", "Zhou"), ("2", "Adams")]


BROWN_2017B = "\n@book{brown2017b,\n  author = {Brown, Alice},\n  title = {Borders and Bargains},\n  publisher = {Test Press},\n  year = {2017}\n}\n"


def _plain(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


@pytest.mark.parametrize(("csl", "cited", "listed"), [
    (None, ["(see Brown 2017a, chap. 2)", "(Brown 2017b)", "Brown (2017a, p. 12)", "(Adams 2019)"],
     ["Brown, Alice. 2017a. Alliances", "Brown, Alice. 2017b. Borders"]),
    ("numeric.csl", ["[see 1, chap. 2]", "[2]", "[3]"], ["[1] Alice Brown, Alliances in Northeast Asia, 2017.", "[2] Alice"]),
])  # fmt: skip
def test_two_works_cited_alike_get_year_suffixes(
    tmp_path: Path, csl: str | None, cited: list[str], listed: list[str]
) -> None:
    """Two books by Brown of 2017: "Brown 2017" would not tell them apart. The author–date style
    asks for year suffixes (CSL's disambiguate-add-year-suffix), in the order of the reference
    list, in every citation and entry; a numeric style has none."""
    markdown = (
        "---\ntitle: T\nid: citations\n---\n\n"
        "Older [see @brown2017, chap. 2]; borders [@brown2017b]. @brown2017 [p. 12] argues; so does [@adams2019].\n"
    )
    root = tmp_path / "book"
    with (Path(__file__).parent / "fixtures" / "en-scholarly" / "refs.bib").open(encoding="utf-8") as bib:
        extended = bib.read() + BROWN_2017B
    book = _bibliography_book(root, markdown, csl=csl, bibliography=extended)
    text = _plain(next(c for c in book.chapters if c.id == "citations").html)
    references = _plain(next(c for c in book.chapters if "bibliography" in c.classes).html)
    assert all(citation in text for citation in cited), text
    assert all(entry in references for entry in listed), references
    assert ("2017a" in text) == (csl is None) and "Adams 2019a" not in text


def test_japanese_works_cited_alike_get_year_suffixes(tmp_path: Path) -> None:
    root = copy_fixture("ja-scholarly", tmp_path)
    refs = root / "refs.yaml"
    refs.write_text(
        refs.read_text(encoding="utf-8")
        + "  - id: yamada2020b\n    type: book\n    author:\n      - family: 山田\n        given: 太郎\n"
        "    reading: やまだ たろう\n    title: 条約の読み方\n    publisher: 試験出版\n"
        "    issued:\n      date-parts: [[2020]]\n",
        encoding="utf-8",
    )
    chapter = root / "chapters" / "02-citations.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n別の著作も引く[@yamada2020b]。\n", encoding="utf-8")
    book, _ = prepare(root)
    text = _plain(next(c for c in book.chapters if c.id == "citations").html)
    assert "（山田，2020a，50ページ）" in text and "山田（2020a，60ページ）" in text and "（山田，2020b）" in text, text
    assert "（佐藤，2019）" in text  # a work alone in its year has no suffix


def test_citations_formatted_once_are_taken_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild formats only the citations it has not formatted before, with the same text as a
    build without the cache; a style that formats by position (ibid.) is formatted afresh."""
    from report import bibliography
    from report.cache import Cache

    root = copy_fixture("en-scholarly", tmp_path)
    chapter = root / "chapters" / "02-citations.md"
    fresh, _ = prepare(root)
    formatted: list[str] = []
    cite_one = bibliography._CslBibliography.cite_one

    def counted(self: bibliography._CslBibliography, item: bibliography.CiteItem) -> str:
        formatted.append(item.key)
        return cite_one(self, item)

    monkeypatch.setattr(bibliography._CslBibliography, "cite_one", counted)
    styles_read: list[Path] = []
    read_style = bibliography._style
    monkeypatch.setattr(bibliography, "_style", lambda config: styles_read.append(config.root) or read_style(config))
    first, _ = prepare(root, cache=Cache(root / ".report-cache"))
    assert first.chapters == fresh.chapters and formatted
    formatted.clear()
    styles_read.clear()
    again, _ = prepare(root, cache=Cache(root / ".report-cache"))
    # Every citation and the reference list (a chapter of the book) as the last build made them:
    # the styles are not even read (citeproc-py took 70 ms a build at 586 pages).
    assert again.chapters == fresh.chapters and formatted == [] and styles_read == []
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\nAgain [@zhou2015, p. 99].\n", encoding="utf-8")
    edited, _ = prepare(root, cache=Cache(root / ".report-cache"))
    assert formatted == ["zhou2015"] and edited.chapters == prepare(root)[0].chapters
    layout = '<layout prefix="(" suffix=")" delimiter="; ">'
    style = (bibliography.CSL_DIR / "en.csl").read_text(encoding="utf-8")
    assert layout in style
    positional = layout + '<choose><if position="subsequent"><text value=""/></if></choose>'
    (root / "positional.csl").write_text(style.replace(layout, positional), encoding="utf-8")
    toml = (root / "report.toml").read_text(encoding="utf-8")
    (root / "report.toml").write_text(toml.replace("[pdf]", 'csl = "positional.csl"\n\n[pdf]'), encoding="utf-8")
    for _ in range(2):
        formatted.clear()
        prepare(root, cache=Cache(root / ".report-cache"))
        assert "zhou2015" in formatted


def test_csl_json_and_bibtex_readings_sort_japanese_entries(tmp_path: Path) -> None:
    """The same works as CSL-JSON (``reading``) and as BibTeX (jBibTeX's ``yomi``): Japanese
    entries in kana order of their readings (katakana or hiragana), before Latin ones."""
    works = [
        ("kato", "加藤", "カトウ", "加藤の本"),
        ("abe", "阿部", "あべ", "阿部の本"),
        ("ueda", "上田", "うえだ", "上田の本"),
        ("baker", "Baker", None, "Baker's book"),
    ]
    csl = [
        {"id": key, "type": "book", "author": [{"family": family, "given": "太郎" if reading else "Ann"}],
         "title": title, "issued": {"date-parts": [[2020]]}, **({"reading": reading} if reading else {})}
        for key, family, reading, title in works
    ]  # fmt: skip
    bibtex = "".join(
        f"@book{{{key}, author = {{{family}, {'太郎' if reading else 'Ann'}}}, title = {{{title}}}, year = {{2020}}"
        + (f", yomi = {{{reading}}}" if reading else "")
        + "}\n"
        for key, family, reading, title in works
    )
    markdown = "---\ntitle: T\nid: citations\n---\n\n本文[@baker; @kato; @ueda; @abe]。\n"
    for name, text in (("refs.json", json.dumps(csl, ensure_ascii=False)), ("refs.bib", bibtex)):
        root = copy_fixture("ja-scholarly", tmp_path / name)
        (root / name).write_text(text, encoding="utf-8")
        toml = (root / "report.toml").read_text(encoding="utf-8").replace("refs.yaml", name)
        (root / "report.toml").write_text(toml, encoding="utf-8")
        (root / "chapters" / "02-citations.md").write_text(markdown, encoding="utf-8")
        book, _ = prepare(root)
        references = next(c for c in book.chapters if c.bibliography)
        assert re.findall(r'id="ref-(\w+)"', references.html) == ["abe", "ueda", "kato", "baker"], name
        assert "阿部太郎" in references.html  # a Japanese name: family name first, no space


def test_citations_without_a_bibliography(tmp_path: Path) -> None:
    root = copy_fixture("en-basic", tmp_path)
    chapter = root / "chapters" / sorted(p.name for p in (root / "chapters").glob("*.md"))[0]
    text = chapter.read_text(encoding="utf-8")
    chapter.write_text(text + "\nWrite to @press or see [@smith2020].\n", encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        prepare(root)
    ((error),) = caught.value.diagnostics
    assert error.location.line == text.count("\n") + 2
    assert "[@smith2020] needs a bibliography" in error.message
    chapter.write_text(text + "\nWrite to @press.\n", encoding="utf-8")
    book, _ = prepare(root)
    assert "Write to @press." in book.chapters[0].html  # a handle, printed as written


def test_missing_bibliography_file_is_a_config_error(tmp_path: Path) -> None:
    root = copy_fixture("en-scholarly", tmp_path)
    (root / "refs.bib").unlink()
    run = run_report("build", root)
    assert run.returncode == 1
    ((diagnostic),) = diagnostics_of(run.stderr)
    assert (
        diagnostic["path"].endswith("report.toml")
        and 'bibliography file "refs.bib" does not exist' in diagnostic["message"]
    )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("@[]; -,p.12abcXY_:本文 \n")), max_size=60))
def test_citation_parsing_never_fails_and_keeps_keys(markdown: str) -> None:
    chapter, _ = parse_text(markdown)
    for citation in chapter.citations:
        assert citation.text in markdown
        for item in citation.items:
            assert "@" + item.key in citation.text


# --- the index ------------------------------------------------------------------------------

PRINTED = {"プーチン": "プーチン氏"}  # entries whose marks print other text (term="…")
KANA_ROWS = ["あ行", "か行", "さ行", "た行", "な行", "は行", "ま行", "や行", "ら行", "わ行"]


def _index_entries(project: BuiltProject) -> list[tuple[str, bool, list[str]]]:
    """The EPUB's index: (term, is a sub-entry, the hrefs it links to), in order."""
    epub = Epub(project.epub)
    document = epub.document("index.xhtml")
    section = document.find(".//x:section[@role='doc-index']", NS)
    assert section is not None and section.get(EPUB_TYPE) == "index"
    entries = []
    for entry in section.iter(f"{X}li"):
        assert entry.get(EPUB_TYPE) == "index-entry"
        term = entry.find("x:span[@class='index-term']", NS)
        links = [a.get("href") for a in entry.findall("x:span[@class='index-places']/x:a", NS)]
        entries.append((text_of(term), entry.getparent().getparent().tag == f"{X}li", links))
    return entries


def test_index_has_thirty_terms_in_gojuon_order_under_kana_headings(projects: dict[str, BuiltProject]) -> None:
    project = projects["ja-scholarly"]
    document = Epub(project.epub).document("index.xhtml")
    headings = [text_of(h) for h in document.iter(f"{X}h2")]
    assert headings == [*KANA_ROWS, "G", "I", "K", "N"]  # every kana row, then Latin initials
    entries = _index_entries(project)
    terms = [term for term, sub, _ in entries if not sub]
    assert len(terms) >= 30
    assert terms[:3] == ["安保条約", "ウクライナ", "外交官"]  # あんぽ, うくらいな, がいこう (が with か)
    assert terms.index("プーチン") < terms.index("防衛省") < terms.index("包括協定")  # ぷ < ぼう < ほうか
    assert terms[-4:] == ["G7", "ICBM", "Kursk", "NATO"]
    subs = [(term, sub) for term, sub, _ in entries]
    at = subs.index(("包括協定", False))
    assert subs[at + 1 : at + 3] == [("批准書", True), ("署名式", True)]


def test_epub_index_entries_link_to_their_places(projects: dict[str, BuiltProject]) -> None:
    project = projects["ja-scholarly"]
    epub = Epub(project.epub)
    terms = epub.document("terms.xhtml")
    marks = {
        element.get("id"): text_of(element) for element in terms.iter() if "index-mark" in (element.get("class") or "")
    }
    assert len(marks) >= 40
    for _, _, links in _index_entries(project):
        for href in links:
            file, _, fragment = href.partition("#")
            assert file == "terms.xhtml" and fragment in marks, href
    entries = {term: links for term, _, links in _index_entries(project)}
    places = [text_of(a) for a in epub.document("index.xhtml").iter(f"{X}a") if a.get("href") in entries["包括協定"]]
    assert places == ["3.1節", "3.2節", "3.3節"]  # each section once


def test_pdf_index_pages_are_where_the_terms_are_printed(project: BuiltProject) -> None:
    """Each entry's pages, as the PDF's index prints them, are the pages its marked text is on
    (each term is printed only where it is marked). The order is checked on the EPUB: two
    columns come out of pdftotext in no reliable order."""
    pages = [squeeze(page) for page in pdftotext(project.pdf, layout=False).split("\f")]
    title = {"ja-scholarly": "索引", "en-scholarly": "Index"}[project.name]
    start = next(i for i, page in enumerate(pages) if page.startswith(title))
    index_text = "".join(pages[start:])
    checked = 0
    for term, _, links in _index_entries(project):
        if not links:  # a heading of sub-entries only
            continue
        printed = squeeze(PRINTED.get(term, term))
        found = [n for n, page in enumerate(pages[:start], start=1) if printed in page]
        assert found, term
        assert squeeze(term) + _ranges(found) in index_text, (term, found)
        checked += 1
    assert checked >= {"ja-scholarly": 35, "en-scholarly": 7}[project.name]


def test_pdf_index_page_lists_are_links_to_the_first_mark(project: BuiltProject) -> None:
    """In the PDF's index, each entry's page list is a link (one area a line, should it break)
    whose text is the list alone and which leads to the entry's first mark: the first place the
    EPUB's entry links to. In print the list is the link's own text, not a span in it."""
    firsts = {links[0].partition("#")[2] for _, _, links in _index_entries(project) if links}
    pages = [squeeze(page) for page in pdftotext(project.pdf, layout=False).split("\f")]
    title = {"ja-scholarly": "索引", "en-scholarly": "Index"}[project.name]
    start = next(number for number, page in enumerate(pages, start=1) if page.startswith(title))
    found: set[str] = set()
    with pdfplumber.open(project.pdf) as pdf:
        for number, name, (x0, ya, x1, yb) in _links(project.pdf):
            if number < start:
                continue
            page = pdf.pages[number - 1]
            y0, y1 = sorted((ya, yb))
            text = squeeze(_text_in(page, x0, page.height - y1, x1, page.height - y0))
            assert re.fullmatch(r"[0-9,–]+", text), (name, text)
            found.add(name)
    assert found == firsts


def test_printed_index_lines_hold_no_inline_element_but_the_page_lists_link(tmp_path: Path) -> None:
    """The print's index entry is its term as text and the link that is its page list: each
    inline element more in an entry's line cost the index's layout a tenth of its time (laid
    out again whenever an edit moves the pages it lists). The EPUB's keeps its term's span."""
    book, _ = prepare(copy_fixture("ja-scholarly", tmp_path))
    (index,) = [chapter for chapter in book.chapters if chapter.id == "index"]
    printed = Assembler(book).print_part(index)
    entries = re.findall(r'<li class="index-entry"[^>]*>(.*?)(?:<ul|</li>)', printed, re.DOTALL)
    assert len(entries) >= 30
    for entry in entries:
        inline = re.sub(
            r'<a class="index-pages page-(?:number|list)" data-page-of="[^"]+" href="[^"]+" aria-label="[^"]*"></a>',
            "",
            entry,
        )
        assert "<" not in inline.strip(), entry
    assert 'class="index-term"' in index.html  # what the EPUB's page is made of


def _ranges(pages: list[int]) -> str:
    """3, 5, 6, 7 → "3,5–7" (as printed, spaces squeezed)."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][-1] + 1:
            runs[-1].append(page)
        else:
            runs.append([page])
    return ",".join(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def test_index_term_without_reading_is_a_warning_with_its_line() -> None:
    chapter, _ = parse_text("本文。\n\n[条約]{.index}と[じょうやく]{.index}。\n")
    assert [mark.term for mark in chapter.index_marks] == ["条約", "じょうやく"]
    assert chapter.index_marks[0].line == 3
    diagnostics = Diagnostics()
    index_html("ja", [chapter], {}, diagnostics)
    ((warning),) = diagnostics.warnings
    assert warning.location.line == 3 and 'index term "条約" has no reading' in warning.message


def test_index_marks_keep_other_classes_and_drop_their_attributes() -> None:
    chapter, _ = parse_text('[金正恩]{.index .name reading="きむじょんうん" sub="訪露"}と[普通]{.note}。\n')
    assert '<span class="index-mark name" id="ch-idx1">金正恩</span>' in chapter.html
    assert "reading=" not in chapter.html and '<span class="note">普通</span>' in chapter.html
    (mark,) = chapter.index_marks
    assert (mark.term, mark.reading, mark.sub) == ("金正恩", "きむじょんうん", "訪露")


def test_page_lists_merge_runs_into_ranges() -> None:
    pages = {"a": "12", "b": "13", "c": "14", "d": "12", "e": "20", "f": "3"}
    assert page_text("a b c d e f", pages.__getitem__) == "3, 12–14, 20"
    assert page_text("e", pages.__getitem__) == "20"


def test_invalid_bibliography_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = copy_fixture("ja-scholarly", tmp_path)
    (root / "refs.yaml").write_text("references:\n  - id: a\n    type: book\n    title: [unclosed\n", encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        prepare(root)
    ((error),) = caught.value.diagnostics
    assert error.location.path.name == "refs.yaml" and error.location.line >= 4 and "invalid YAML" in error.message


def test_an_edited_bibliography_is_built_again(tmp_path: Path) -> None:
    """The bibliography is an input of the build: the next build is not taken as up to date."""
    root = copy_fixture("en-scholarly", tmp_path)
    assert run_report("build", root, "--format", "epub", "-o", tmp_path / "out").returncode == 0
    bib = root / "refs.bib"
    bib.write_text(bib.read_text(encoding="utf-8").replace("The Long Border", "The Longer Border"), encoding="utf-8")
    again = run_report("build", root, "--format", "epub", "-o", tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert b"The Longer Border" in Epub(tmp_path / "out" / "en-scholarly.epub").read("references.xhtml")


def test_a_citation_in_the_text_needs_no_space_before_it_in_japanese() -> None:
    chapter, _ = parse_text("山田は@b [p. 3]で、佐藤は@aでそう述べた。\n")
    assert [(c.text, c.narrative) for c in chapter.citations] == [("@b [p. 3]", True), ("@a", True)]


def test_what_is_not_a_citation() -> None:
    chapter, _ = parse_text("Mail a@b.org, write \\@press, see [the @a text](#x) or [just text]; then @b [p. 3].\n")
    assert [(c.text, c.narrative, c.items[0].locator) for c in chapter.citations] == [("@b [p. 3]", True, "3")]
    assert "a@b.org" in chapter.html and "@press" in chapter.html and '<a href="#x">the @a text</a>' in chapter.html


@pytest.mark.parametrize(
    ("language", "word"), [("zh-Hant", "等"), ("zh-Hans", "等"), ("ko", "기타"), ("en", "et al."), ("fr", "et al.")]
)
def test_citations_use_the_report_languages_csl_terms(tmp_path: Path, language: str, word: str) -> None:
    """Three authors or more: the first one and the locale's "et al." term."""
    root = copy_fixture("en-scholarly", tmp_path)
    toml = (root / "report.toml").read_text(encoding="utf-8")
    (root / "report.toml").write_text(toml.replace('language = "en"', f'language = "{language}"'), encoding="utf-8")
    bib = root / "refs.bib"
    bib.write_text(
        bib.read_text(encoding="utf-8").replace(
            "Smith, John and Jones, Mary", "Smith, John and Jones, Mary and Lee, Ann"
        ),
        encoding="utf-8",
    )
    (root / "chapters" / "02-citations.md").write_text(
        "---\ntitle: T\nid: citations\n---\n\nA claim [@smith2022].\n", encoding="utf-8"
    )
    book, _ = prepare(root)
    chapter = next(c for c in book.chapters if c.id == "citations")
    assert f"Smith {word}" in chapter.html or f"Smith{word}" in chapter.html
