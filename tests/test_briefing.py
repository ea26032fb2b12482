"""The briefing uses citations, an index and callouts (issue 21, item 4): its sources are in
refs.yaml, cited at the claims and listed in 出典・注記; its key terms are indexed; its 要点
boxes are callouts. Read back from the repository's own build (shared with the other tests)."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable

import pypdf
import pytest
import yaml
from conftest import BuiltProject
from helpers import REPO_ROOT, pdftotext, squeeze
from test_epub_quality import NS, Epub, X
from test_scholarly import _index_entries, _ranges, text_of

KEYPOINT_CHAPTERS = ("background", "military", "economy", "geopolitics", "policy")


@pytest.fixture(scope="module")
def briefing(build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    built = build_project("repository")
    assert built.run.returncode == 0, built.run.stderr
    return built


def _sources() -> list[dict]:
    return yaml.safe_load((REPO_ROOT / "refs.yaml").read_text(encoding="utf-8"))["references"]


def test_every_source_is_cited_and_listed_in_the_sources_chapter(briefing: BuiltProject) -> None:
    document = Epub(briefing.epub).document("sources.xhtml")
    listed = [entry.get("id") for entry in document.findall(".//x:ul[@class='references']/x:li", NS)]
    assert sorted(listed) == sorted(f"ref-{source['id']}" for source in _sources())
    # Every citation was formatted: no key is left as written (an @ or [@ in the printed text).
    assert "@" not in pdftotext(briefing.pdf)


def test_each_citation_in_the_pdf_leads_to_the_list_of_sources(briefing: BuiltProject) -> None:
    reader = pypdf.PdfReader(briefing.pdf)
    destinations = reader.named_destinations
    pages = pdftotext(briefing.pdf, layout=False).split("\f")
    cited = set()
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            destination = annotation.get_object().get("/Dest")
            if isinstance(destination, str) and destination.startswith("ref-"):
                cited.add(destination)
                target = pages[reader.get_destination_page_number(destinations[destination])]
                assert "文献一覧" in target or "出典・注記" in target, destination
    assert cited == {f"ref-{source['id']}" for source in _sources()}


def test_keypoints_are_important_callouts_titled_youten(briefing: BuiltProject) -> None:
    epub = Epub(briefing.epub)
    for chapter in KEYPOINT_CHAPTERS:
        document = epub.document(f"{chapter}.xhtml")
        asides = document.findall(".//x:aside[@role='note']", NS)
        assert len(asides) == 1, chapter
        assert "callout-important" in asides[0].get("class").split()
        assert text_of(asides[0].find("x:p[@class='callout-title']", NS)) == "要点"
        assert asides[0].find(".//x:ul", NS) is not None  # the key points are the list inside
        assert not [e for e in document.iter() if "keypoints" in (e.get("class") or "")], chapter
    # In print each box keeps its title with its first point on one page.
    pages = [squeeze(page) for page in pdftotext(briefing.pdf).split("\f")]
    assert sum(page.count("要点•") for page in pages) == len(KEYPOINT_CHAPTERS)


def test_index_lists_key_terms_at_the_pages_of_their_marks(briefing: BuiltProject) -> None:
    """Each index entry prints the pages of its marks (their named destinations in the PDF)."""
    entries = _index_entries(briefing)
    terms = [term for term, sub, _ in entries if not sub]
    assert 30 <= len(terms) <= 60
    reader = pypdf.PdfReader(briefing.pdf)
    destinations = reader.named_destinations
    pages = [squeeze(page) for page in pdftotext(briefing.pdf, layout=False).split("\f")]
    start = next(i for i, page in enumerate(pages) if page.startswith("索引"))
    index_text = "".join(pages[start:])
    mark_pages: dict[str, set[int]] = defaultdict(set)
    for term, _, links in entries:
        for href in links:
            mark = href.partition("#")[2]
            mark_pages[term].add(reader.get_destination_page_number(destinations[mark]) + 1)
    assert len(mark_pages) >= 30
    for term, numbers in mark_pages.items():
        assert squeeze(term) + _ranges(sorted(numbers)) in index_text, (term, sorted(numbers))
    headings = [text_of(h) for h in Epub(briefing.epub).document("index.xhtml").iter(f"{X}h2")]
    assert headings[0] == "あ行" and "索引" not in headings


def test_the_timeline_chart_is_drawn_from_the_briefings_data_file(briefing: BuiltProject) -> None:
    """図1 (issue 22, item 4): a chart from assets/data/timeline.csv, cited from the text, its
    events those of the 年表 on the same dates, its labels text in the PDF, its data a table in the EPUB."""
    with (REPO_ROOT / "assets" / "data" / "timeline.csv").open(encoding="utf-8", newline="") as data:
        rows = [tuple(row.values()) for row in csv.DictReader(data)]
    assert len(rows) >= 10
    epub = Epub(briefing.epub)
    background = epub.document("background.xhtml")
    (figure,) = background.findall(".//x:figure[@id='fig-timeline']", NS)
    assert background.findall(".//x:a[@href='#fig-timeline']", NS), "the text refers to the chart"
    table = [tuple(text_of(cell) for cell in row.findall("x:td", NS)) for row in figure.findall(".//x:tbody/x:tr", NS)]
    assert table == rows
    # Every event is one of the chronology's, on its date, so the chart adds no fact of its own.
    chronology = squeeze(text_of(epub.document("chronology.xhtml").find(".//x:table", NS)))
    for day, *_ in rows:
        year, month, date = (int(part) for part in day.split("-"))
        assert f"{year}年{month}月{date}日" in chronology, day
    # In print the labels are text (not paths), on the page of the chart's caption.
    (page,) = [page for page in pdftotext(briefing.pdf).split("\f") if "首脳会談から条約発効までの主な出来事" in page]
    assert all(squeeze(event) in squeeze(page) for _, event, *_ in rows)
