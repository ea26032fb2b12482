"""Print quality of the PDF, checked on the built briefing and fixtures (issue 4)."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pdfplumber
import pypdf
import pytest
from conftest import BuiltProject
from helpers import copy_fixture, run_report

# Characters that must never start a line (closing brackets and punctuation) or end one (openers).
NO_LINE_START = "。、，．」』）】〕〉》"
NO_LINE_END = "「『（【〔〈《"


@pytest.fixture(scope="module")
def briefing(build_project: Callable[[str], BuiltProject]) -> BuiltProject:
    project = build_project("repository")
    assert project.run.returncode == 0, project.run.stderr
    return project


def _page_texts(pdf_path) -> list[str]:
    with pdfplumber.open(pdf_path) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def _destination_pages(pdf_path) -> dict[str, int]:
    reader = pypdf.PdfReader(pdf_path)
    return {name: reader.get_destination_page_number(dest) + 1 for name, dest in reader.named_destinations.items()}


def test_toc_page_numbers_equal_printed_folios(briefing: BuiltProject) -> None:
    texts = _page_texts(briefing.pdf)
    toc_page = next(i for i, text in enumerate(texts) if text.lstrip().startswith(("目次", "Contents")))
    entries = re.findall(r"^(.+?)\s*\.{3,}\s*(\d+)$", texts[toc_page], flags=re.MULTILINE)
    assert len(entries) >= len(briefing.chapter_titles), texts[toc_page]
    for title, number in entries:
        page = int(number)
        body = texts[page - 1]
        folio = body.strip().splitlines()[-1].strip()
        assert folio == number, f"page {page} prints folio {folio!r}, the TOC says {number}"
        heading = re.sub(r"^(第\d+章|\d+(\.\d+)*)\s*", "", title).strip()
        assert heading.replace(" ", "") in body.replace(" ", ""), f"TOC entry {title!r} is not on page {page}"


def test_contents_leaders_are_evenly_spaced_dots_between_title_and_page_number(briefing: BuiltProject) -> None:
    """Each leader is laid out as one run of dots (WeasyPrint makes a box per dot): drawn as
    WeasyPrint would, dot for dot, from after the title to one column (within a dot) before
    the page numbers' box."""
    with pdfplumber.open(briefing.pdf) as pdf:
        toc = next(page for page in pdf.pages if (page.extract_text() or "").lstrip().startswith("目次"))
        lines: dict[int, list[dict[str, Any]]] = {}
        for char in toc.chars:
            lines.setdefault(round(char["top"]), []).append(char)
    ends, step = [], 0.0
    for chars in lines.values():
        chars.sort(key=lambda char: char["x0"])
        text = "".join(char["text"] for char in chars)
        entry = re.fullmatch(r"(.+?)(\.{3,})(\d+)", text)
        if entry is None:
            continue
        title_end, number_start = len(entry.group(1)), entry.start(3)
        dots = chars[title_end:number_start]
        steps = [after["x0"] - before["x0"] for before, after in itertools.pairwise(dots)]
        assert max(steps) - min(steps) < 0.01, f"unevenly spaced dots in {text!r}"
        assert dots[0]["x0"] >= chars[title_end - 1]["x1"] - 0.01, f"dots over the title in {text!r}"
        assert dots[-1]["x1"] <= chars[number_start]["x0"] + 0.01, f"dots over the page number in {text!r}"
        ends.append(dots[-1]["x1"])
        step = max(step, *steps)
    assert len(ends) >= len(briefing.chapter_titles)
    assert max(ends) - min(ends) < step, "the leaders end at one column"


def test_every_footnote_sits_on_the_page_of_its_call(briefing: BuiltProject) -> None:
    pages = _destination_pages(briefing.pdf)
    calls = {name: page for name, page in pages.items() if re.search(r"-fnref\d+$", name)}
    assert calls, "the briefing has footnotes"
    for call, page in calls.items():
        note = call.replace("-fnref", "-fn")
        assert pages.get(note) == page, f"{call} is on page {page}, its note on page {pages.get(note)}"


def test_no_body_line_starts_or_ends_with_a_forbidden_character(briefing: BuiltProject) -> None:
    text = subprocess.run(["pdftotext", str(briefing.pdf), "-"], capture_output=True, text=True, check=True).stdout
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [line for line in lines if line[0] in NO_LINE_START]
    ends = [line for line in lines if line[-1] in NO_LINE_END]
    assert not starts, f"lines start with closing punctuation: {starts[:5]}"
    assert not ends, f"lines end with an opening bracket: {ends[:5]}"


def test_ruby_is_smaller_than_and_above_its_base(briefing: BuiltProject) -> None:
    with pdfplumber.open(briefing.pdf) as pdf:
        for page in pdf.pages:
            chars = page.chars
            text = "".join(c["text"] for c in chars)
            index = text.find("ろちょう")
            if index < 0:
                continue
            reading = chars[index : index + 4]
            base = [c for c in chars if c["text"] in "露朝" and c["size"] > reading[0]["size"]]
            assert base, "the base text 露朝 is on the same page"
            base_char = min(base, key=lambda c: abs(c["x0"] - reading[0]["x0"]))
            assert reading[0]["size"] <= base_char["size"] * 0.6
            assert all(c["bottom"] <= base_char["top"] + 0.5 for c in reading), "the reading sits above its base"
            centre = (reading[0]["x0"] + reading[-1]["x1"]) / 2
            assert base_char["x0"] - 20 < centre < base_char["x1"] + 20, "the reading is over its base"
            return
    pytest.fail("no ruby reading ろちょう found in the PDF")


def test_pdf_is_tagged_titled_and_in_the_report_language(briefing: BuiltProject) -> None:
    reader = pypdf.PdfReader(briefing.pdf)
    root = reader.trailer["/Root"]
    assert root["/Lang"] == briefing.config["language"]
    assert bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert bool(root["/MarkInfo"]["/Marked"])
    assert "/StructTreeRoot" in root
    assert reader.metadata.title == briefing.config["title"]
    check = subprocess.run(["qpdf", "--check", str(briefing.pdf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_running_heads_show_the_report_and_chapter_titles(briefing: BuiltProject) -> None:
    texts = _page_texts(briefing.pdf)
    title = briefing.config["title"]
    body_titles = [t for t, m in zip(briefing.chapter_titles, briefing.chapter_matters, strict=True) if m == "body"]
    headed = [text for text in texts if text.startswith(title)]
    assert len(headed) >= len(texts) // 2, "most pages carry the report title as running head"
    for chapter in body_titles:
        assert any(text.splitlines()[0].endswith(chapter) for text in headed), f"no running head names {chapter}"


def test_print_profile_adds_bleed_and_crop_marks(tmp_path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    screen = run_report("build", root, "--format", "pdf", "-o", tmp_path / "screen")
    printed = run_report("build", root, "--format", "pdf", "--profile", "print", "-o", tmp_path / "print")
    assert screen.returncode == 0 and printed.returncode == 0, printed.stderr
    (screen_pdf,) = (tmp_path / "screen").glob("*.pdf")
    (print_pdf,) = (tmp_path / "print").glob("*.pdf")
    screen_page = pypdf.PdfReader(screen_pdf).pages[0]
    print_page = pypdf.PdfReader(print_pdf).pages[0]
    bleed_mm = 3
    grown = float(print_page.mediabox.width) - float(screen_page.mediabox.width)
    assert grown >= 2 * bleed_mm * 72 / 25.4 - 0.5, "the print page is larger by the bleed on both sides"
    assert float(print_page.trimbox.width) == pytest.approx(float(screen_page.mediabox.width), abs=0.5)

    # Chapters start on right-hand (odd) pages; the blank pages before them have the marks,
    # and no running head or folio.
    pages = pypdf.PdfReader(print_pdf).pages
    texts = [page.extract_text() for page in pages]
    for label in ("第1章", "第2章"):
        (first,) = [number for number, text in enumerate(texts, start=1) if text.startswith(label)]
        assert first % 2 == 1, f"{label} starts on page {first}"
    blanks = [number for number, text in enumerate(texts) if not text.strip() and number > 1]
    assert blanks, "a blank page before a chapter"
    for number in blanks:
        drawn = pages[number].get_contents().get_data()
        assert b"/Artifact" in drawn and b" Do" in drawn, "the crop and registration marks (an artifact)"
        assert pages[number]["/Resources"]["/XObject"], "the crop and registration marks"


@pytest.mark.parametrize(("size", "width_mm", "height_mm"), [("B5", 182, 257), ("A5", 148, 210)])
def test_page_size_comes_from_report_toml(tmp_path, size: str, width_mm: int, height_mm: int) -> None:
    root = copy_fixture("en-basic", tmp_path / "src")
    config = root / "report.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[pdf\].*?(?=^\[|\Z)", "", text)
    config.write_text(text + f'\n[pdf]\npage-size = "{size}"\nfont = "sans"\nfont-size = "9pt"\n', encoding="utf-8")
    run = run_report("build", root, "--format", "pdf", "-o", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    (pdf,) = (tmp_path / "out").glob("*.pdf")
    box = pypdf.PdfReader(pdf).pages[0].mediabox
    assert float(box.width) == pytest.approx(width_mm * 72 / 25.4, abs=1)
    assert float(box.height) == pytest.approx(height_mm * 72 / 25.4, abs=1)


def test_pdf_a_variant_from_report_toml(tmp_path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    config = root / "report.toml"
    text = re.sub(r"(?m)^variant\s*=.*$", "", config.read_text(encoding="utf-8"))
    if "[pdf]" not in text:
        text += "\n[pdf]\n"
    config.write_text(text.replace("[pdf]", '[pdf]\nvariant = "pdf/a-3u"', 1), encoding="utf-8")
    run = run_report("build", root, "--format", "pdf", "-o", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    (pdf,) = (tmp_path / "out").glob("*.pdf")
    catalog = pypdf.PdfReader(pdf).trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r"pdfaid:part[^0-9]{0,3}3", xmp) and re.search(r"pdfaid:conformance[^A-Z]{0,3}U", xmp), xmp
    assert "/OutputIntents" in catalog
    assert "/StructTreeRoot" in catalog, "PDF/A output stays tagged"


def test_a_table_split_over_pages_repeats_its_header_row(tmp_path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    chapter = next((root / "chapters").glob("01-*.md"))
    rows = "\n".join(f"| 行{n} | 値{n} |" for n in range(1, 121))
    table = f"\n\nTable: 長い表 {{#tbl-long}}\n\n| 見出し列甲 | 見出し列乙 |\n|---|---|\n{rows}\n"
    chapter.write_text(chapter.read_text(encoding="utf-8") + table, encoding="utf-8")
    run = run_report("build", root, "--format", "pdf", "-o", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    (pdf,) = (tmp_path / "out").glob("*.pdf")
    pages = [text for text in _page_texts(pdf) if re.search(r"行\d+", text)]
    assert len(pages) >= 2, "the table runs over several pages"
    assert all("見出し列甲" in text for text in pages), "every page of the table starts with its header row"
