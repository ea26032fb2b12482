"""The PDFs pass the PDF/UA-1 check of tests/pdfua.py: every fixture's and the briefing's
(issue 24). The check itself is shown to find each kind of problem it looks for."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pikepdf
import pytest
from conftest import BuiltProject
from pdfua import problems
from pikepdf import Array, Dictionary, Name, String

# Built here only: the end-to-end projects come from the session's builds (conftest.py).
OTHER_FIXTURES = ("ko", "zh", "hostile")


@pytest.mark.parametrize("name", OTHER_FIXTURES)
def test_other_fixtures_pass_the_pdfua_check(name: str, build_project: Callable[[str], BuiltProject]) -> None:
    project = build_project(name)
    assert project.run.returncode == 0, project.run.stderr
    assert problems(project.pdf) == []


def test_passes_the_pdfua_check(built: BuiltProject) -> None:
    assert problems(built.pdf) == []


def _links(pdf: pikepdf.Pdf) -> tuple[list[Dictionary], list[Dictionary]]:
    """The Link structure elements, and the link annotations, of the whole PDF."""
    elements = [
        obj
        for obj in pdf.objects
        if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructElem and obj.get(Name.S) == Name.Link
    ]
    annotations = [a for page in pdf.pages for a in page.obj.get(Name.Annots, Array()) if a.Subtype == Name.Link]
    return elements, annotations


def _objrs(element: Dictionary) -> list[Dictionary]:
    kids = element.K if isinstance(element.K, Array) else [element.K]
    return [kid for kid in kids if isinstance(kid, Dictionary) and kid.get(Name.Type) == Name.OBJR]


def test_one_link_element_and_one_annotation_per_link(all_built: dict[str, BuiltProject]) -> None:
    briefing = all_built["repository"]
    with pikepdf.open(briefing.pdf) as pdf:
        elements, annotations = _links(pdf)
        assert len(elements) == len(annotations) > 100
        assert all(len(_objrs(element)) == 1 for element in elements)
        # The contents page: one annotation per entry (there were 181 on it, for 70 entries).
        contents = next(i for i, page in enumerate(pdf.pages) if "目次" in _page_text(briefing, i))
        entries = pdf.pages[contents].obj.get(Name.Annots, Array())
        targets = [str(annotation.Dest) for annotation in entries]
        assert len(targets) == len(set(targets))


def _page_text(project: BuiltProject, index: int) -> str:
    from helpers import pdftotext, squeeze

    return squeeze(pdftotext(project.pdf, index + 1, index + 1))


def test_links_say_what_they_lead_to_in_the_reports_language(all_built: dict[str, BuiltProject]) -> None:
    briefing = all_built["repository"]
    with pikepdf.open(briefing.pdf) as pdf:
        said = {str(a.Dest): str(a.Contents) for _, annotations in [_links(pdf)] for a in annotations}
    assert said["military"] == "第2章 軍事協力"
    assert said["summary"] == "要旨"
    notes = {dest: text for dest, text in said.items() if re.fullmatch(r"[\w-]+-fn\d+", dest)}
    assert notes and all(text == f"注{dest.rsplit('fn', 1)[1]}" for dest, text in notes.items())
    assert not [text for text in said.values() if re.fullmatch(r"[a-z0-9-]+", text)], "an id slug as description"


def test_note_calls_have_the_height_of_their_glyphs(all_built: dict[str, BuiltProject]) -> None:
    with pikepdf.open(all_built["repository"].pdf) as pdf:
        _, annotations = _links(pdf)
        calls = [a for a in annotations if re.fullmatch(r"[\w-]+-fn\d+", str(a.Dest))]
        assert calls
        for call in calls:
            x1, y1, x2, y2 = (float(v) for v in call.Rect)
            assert 4 < abs(y2 - y1) < 12 and 0 < abs(x2 - x1) < 12


def test_footnotes_are_notes_with_their_ids(all_built: dict[str, BuiltProject]) -> None:
    with pikepdf.open(all_built["ja-basic"].pdf) as pdf:
        notes = [
            obj
            for obj in pdf.objects
            if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructElem and obj.get(Name.S) == Name.Note
        ]
        ids = [str(note.ID) for note in notes]
    assert ids and all(re.fullmatch(r"[\w-]+-fn\d+", name) for name in ids)


def test_running_heads_and_folios_are_pagination_artifacts(all_built: dict[str, BuiltProject]) -> None:
    with pikepdf.open(all_built["repository"].pdf) as pdf:
        for page in list(pdf.pages)[2:]:
            operations = pikepdf.parse_content_stream(page)
            pagination = [
                operands
                for operands, operator in operations
                if str(operator) == "BDC"
                and operands[0] == Name.Artifact
                and isinstance(operands[1], Dictionary)
                and operands[1].get(Name.Type) == Name.Pagination
            ]
            assert pagination, f"page {page.index + 1} has no pagination artifact (its folio)"


def test_no_bare_span_stands_between_an_element_and_its_text(all_built: dict[str, BuiltProject]) -> None:
    """WeasyPrint wraps each line's text, and each HTML span, in a Span of no attribute (half the
    objects of a tagged PDF), and each anonymous box in a NonStruct. The text is its parent's (the
    page's content map names the parent); a Span that says something (an attribute, a link
    inside a link) stays. A link's object reference is no object of its own."""
    with pikepdf.open(all_built["repository"].pdf) as pdf:
        elements = [obj for obj in pdf.objects if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructElem]
        assert not [obj for obj in pdf.objects if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.OBJR]
        links = [element for element in elements if Name.Link == element.S]
        assert links and all(
            any(isinstance(kid, Dictionary) and kid.get(Name.Type) == Name.OBJR for kid in element.K)
            for element in links
        )
        bare = [
            element
            for element in elements
            if element.S in (Name.Span, Name.NonStruct)
            and set(element.keys()) == {"/Type", "/S", "/K", "/P", "/Pg"}
            and all(isinstance(kid, int) for kid in (element.K if isinstance(element.K, Array) else [element.K]))
            and len(element.K if isinstance(element.K, Array) else [element.K]) <= 1
        ]
        assert bare == []
        paragraphs = [element for element in elements if element.S == Name.P]
        assert sum(any(isinstance(kid, int) for kid in element.K) for element in paragraphs) > 100
        assert len(pdf.objects) < 60 * len(pdf.pages)  # 135 a page with them all, 57 without


# --- the check finds what it looks for --------------------------------------------------------


def _broken(pdf_bytes: bytes, damage: Callable[[pikepdf.Pdf], None]) -> list[str]:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        damage(pdf)
        buffer = io.BytesIO()
        pdf.save(buffer)
    return problems(buffer.getvalue())


def _first(pdf: pikepdf.Pdf, kind: Name) -> Dictionary:
    return next(
        obj
        for obj in pdf.objects
        if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructElem and obj.get(Name.S) == kind
    )


def _link_under_a_span(pdf: pikepdf.Pdf) -> None:
    link = _first(pdf, Name.Link)
    link.S = Name.Span


def _no_annotation_contents(pdf: pikepdf.Pdf) -> None:
    _, annotations = _links(pdf)
    annotations[0].Contents = String("")


def _flat_rectangle(pdf: pikepdf.Pdf) -> None:
    _, annotations = _links(pdf)
    x1, y1, x2, _ = annotations[0].Rect
    annotations[0].Rect = Array([x1, y1, x2, y1])


def _folio_tagged(pdf: pikepdf.Pdf) -> None:
    """A folio's artifact made plain marked content, as WeasyPrint wrote it: untagged text."""
    page = pdf.pages[-1]
    operations = pikepdf.parse_content_stream(page)
    changed = [
        (Array([Name.Span]), pikepdf.Operator("BMC"))
        if str(operator) == "BDC" and operands[0] == Name.Artifact and isinstance(operands[1], Dictionary)
        else (operands, operator)
        for operands, operator in operations
    ]
    page.obj.Contents = pdf.make_stream(pikepdf.unparse_content_stream(changed))


def _wrong_width(pdf: pikepdf.Pdf) -> None:
    """The first width of the first CID font's /W halved."""
    font = next(f for f in pdf.objects if isinstance(f, Dictionary) and f.get(Name.Subtype) == Name.CIDFontType0)
    widths = font.W
    run = widths[1]
    run[0] = int(run[0]) // 2


DAMAGES: dict[str, tuple[Callable[[pikepdf.Pdf], None], str]] = {
    "no Lang": (lambda pdf: pdf.Root.__delattr__("Lang"), "7.2-34"),
    "no DisplayDocTitle": (lambda pdf: pdf.Root.__setattr__("ViewerPreferences", Dictionary()), "7.1-10"),
    "no pdfuaid": (lambda pdf: pdf.Root.__delattr__("Metadata"), "5-1"),
    "figure without Alt": (lambda pdf: _first(pdf, Name.Figure).__delattr__("Alt"), "7.3-1"),
    "note without ID": (lambda pdf: _first(pdf, Name.Note).__delattr__("ID"), "7.9-1"),
    "heading skipped": (lambda pdf: _first(pdf, Name.H2).__setattr__("S", Name.H4), "7.4.2-1"),
    "cell without headers": (lambda pdf: _first(pdf, Name.TD).__delattr__("A"), "7.5-2"),
    "link under a Span": (_link_under_a_span, "7.18.5-1"),
    "link without Contents": (_no_annotation_contents, "7.18.5-2"),
    "link of no height": (_flat_rectangle, "7.18.5:"),
    "folio tagged": (_folio_tagged, "7.1-3"),
    "unknown type": (lambda pdf: _first(pdf, Name.P).__setattr__("S", Name("/Paragraph")), "7.1-5"),
    "width not the font's": (_wrong_width, "7.21.5-1"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_the_check_finds_each_problem(damage: str, all_built: dict[str, BuiltProject]) -> None:
    change, rule = DAMAGES[damage]
    found = _broken(all_built["ja-basic"].pdf.read_bytes(), change)
    assert any(problem.startswith(rule) for problem in found), found


def test_figures_svg_drawings_included_have_their_alt_text(all_built: dict[str, BuiltProject]) -> None:
    with pikepdf.open(all_built["ja-basic"].pdf) as pdf:
        alts = sorted(
            str(obj.get(Name.Alt))
            for obj in pdf.objects
            if isinstance(obj, Dictionary) and obj.get(Name.Type) == Name.StructElem and obj.get(Name.S) == Name.Figure
        )
    assert alts == ["処理の流れ", "赤い見本の四角"]  # the SVG drawing's and the PNG's alt texts
