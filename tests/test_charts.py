"""Charts from data: Vega-Lite blocks drawn as SVG with text in the bundled faces, numbered
figures, their data (inline or a CSV/JSON file of the report) as a table in the EPUB."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import BuiltProject
from helpers import copy_fixture, epub_names, epub_read, pdffonts, pdftotext, run_report, squeeze

from report.charts import CHART_FONT
from report.errors import Diagnostics
from report.model import Matter, ParsedChapter, SourceChapter, TargetKind
from report.parse import parse_chapter

BAR = '{"data": {"values": [{"k": "甲", "n": 3}, {"k": "乙", "n": 5}]}, "mark": "bar", "encoding": {"x": {"field": "k", "type": "nominal", "title": "区分"}, "y": {"field": "n", "type": "quantitative"}}}'
FROM_FILE = '{"data": {"url": "%s"}, "mark": "bar", "encoding": {"x": {"field": "year", "type": "ordinal"}, "y": {"field": "v", "type": "quantitative"}}}'


def parse(markdown: str, root: Path) -> tuple[ParsedChapter, Diagnostics]:
    diagnostics = Diagnostics()
    source = SourceChapter(root / "chapters" / "ch.md", "ch", "章", Matter.BODY, (), markdown, 3)
    return parse_chapter(source, root, diagnostics), diagnostics


def test_chart_is_a_numbered_figure_with_text_in_the_bundled_faces(tmp_path: Path) -> None:
    parsed, diagnostics = parse(f'# 章\n\n```vega-lite {{#fig-bar caption="区分別"}}\n{BAR}\n```\n', tmp_path)
    assert not diagnostics.errors
    assert '<figure id="fig-bar" class="figure chart">' in parsed.html
    assert [(t.id, t.kind, t.text) for t in parsed.targets[1:]] == [("fig-bar", TargetKind.FIGURE, "区分別")]
    (svg,) = parsed.svgs
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "区分" in texts and "甲" in texts  # text stays text
    families = set(re.findall(r'font-family="([^"]*)"', svg))
    assert families == {CHART_FONT.replace('"', "&quot;")}
    assert 'aria-label="区分別"' in svg and re.search(r'style="width: [\d.]+mm"', svg)
    # The data, for the EPUB: a table behind <details>.
    assert "<details><summary>" in parsed.html
    assert "<td>甲</td><td>3</td>" in parsed.html


def test_alt_attribute_is_the_chart_text_alternative(tmp_path: Path) -> None:
    parsed, _ = parse(f'# 章\n\n```vega-lite {{caption="題" alt="乙が多い"}}\n{BAR}\n```\n', tmp_path)
    assert 'aria-label="乙が多い"' in parsed.svgs[0]


@pytest.mark.parametrize(
    ("name", "text"),
    [("v.csv", "year,v\n2020,1\n2021,4\n"), ("v.json", '[{"year": 2020, "v": 1}, {"year": 2021, "v": 4}]')],
)
def test_chart_data_from_a_file_of_the_report(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_text(text, encoding="utf-8")
    parsed, diagnostics = parse(f"# 章\n\n```vega-lite\n{FROM_FILE % ('../data/' + name)}\n```\n", tmp_path)
    assert not diagnostics.errors
    assert parsed.includes == (tmp_path / "data" / name,)  # watched by the parse cache
    assert "<td>2021</td><td>4</td>" in parsed.html
    assert ">2021</text>" in parsed.svgs[0]


def test_a_spec_file_referenced_like_an_image_is_a_chart(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "c.vl.json").write_text(BAR, encoding="utf-8")
    figure, diagnostics = parse('# 章\n\n![乙が多い](../assets/c.vl.json "区分別"){#fig-c}\n', tmp_path)
    assert not diagnostics.errors
    assert '<figure id="fig-c" class="figure">' in figure.html and "<td>乙</td><td>5</td>" in figure.html
    assert 'aria-label="乙が多い"' in figure.svgs[0] and ">区分</text>" in figure.svgs[0]
    assert figure.includes == (tmp_path / "assets" / "c.vl.json",)
    inline, _ = parse("# 章\n\n文中の![図](../assets/c.vl.json)です。\n", tmp_path)
    assert len(inline.svgs) == 1 and "<details>" not in inline.html  # no block inside a paragraph


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (FROM_FILE % "../data/missing.csv", 'chart data "../data/missing.csv" does not exist'),
        (FROM_FILE % "../../outside.csv", 'chart data "../../outside.csv" is outside the report folder'),
        (FROM_FILE % "https://example.com/x.csv", "is not a file of the report"),
        (FROM_FILE % "../data/v.txt", "is not CSV, TSV or JSON"),
        ('{"mark": "bar",', "the Vega-Lite spec is not JSON"),
        ('{"layer": [{"data": {"url": "https://example.com/y.csv"}, "mark": "bar"}]}', "url not allowed"),
    ],
)
def test_bad_charts_are_errors_at_their_line(tmp_path: Path, block: str, message: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "v.txt").write_text("x", encoding="utf-8")
    parsed, diagnostics = parse(f"# 章\n\n本文\n\n```vega-lite\n{block}\n```\n", tmp_path)
    assert [(d.location.line, message in d.message) for d in diagnostics.errors] == [(7, True)], diagnostics.errors
    assert "<figure" not in parsed.html


def test_built_charts_in_pdf_and_epub(figures: BuiltProject) -> None:
    ja = figures.name == "ja-figures"
    text = squeeze(pdftotext(figures.pdf))
    for label in ("推定人数", "派遣地域", "暦年", "貿易額（百万ドル）") if ja else ("Estimatedtroops", "Calendaryear"):
        assert label in text  # the axis titles are text in the PDF, not paths
    if not ja:
        assert "Goodsshipped" in text  # the .vl.json figure
    assert "11,000" in text and "11000" not in text  # the data table is the EPUB's alone
    chapter = next(n for n in epub_names(figures.epub) if n.endswith("charts.xhtml"))
    xhtml = epub_read(figures.epub, chapter).decode()
    assert xhtml.count("<svg") == xhtml.count("<details>") == (3 if ja else 4)
    assert f"<summary>{'データ' if ja else 'Data'}</summary>" in xhtml
    assert re.search(r"<td>2023</td>\s*<td>70</td>", xhtml)
    opf = epub_read(figures.epub, "EPUB/content.opf").decode()
    assert re.search(r'<item [^>]*href="charts.xhtml"[^>]*properties="svg"', opf)


def test_chart_labels_in_other_scripts_are_set_in_their_own_faces(tmp_path: Path) -> None:
    """A chart's labels in Hebrew, Arabic and Devanagari are set in those scripts' faces, as the
    text around the chart is: not the Arabic in Noto Sans Math's letters, which do not join.
    (WeasyPrint found only the first family of the labels' font-family while it was written
    with a space after each comma.)"""
    root = copy_fixture("en-figures", tmp_path / "src")
    chapter = root / "chapters" / "02-charts.md"
    text = chapter.read_text(encoding="utf-8")
    labels = {'"Kursk"': '"שָׁלוֹם"', '"Donetsk"': '"السلام عليكم"', '"Region deployed"': '"नमस्ते"'}
    for before, after in labels.items():
        text = text.replace(before, after)
    chapter.write_text(text, encoding="utf-8")
    built = run_report("build", root, "-o", tmp_path / "out", "--format", "pdf")
    assert built.returncode == 0 and not re.search(r"glyph|font", built.stderr, re.IGNORECASE), built.stderr
    families = {row["family"] for row in pdffonts(tmp_path / "out" / "en-figures.pdf")}
    assert {"Noto-Sans-Hebrew", "Noto-Sans-Arabic", "Noto-Sans-Devanagari"} <= families, families
    assert "Noto-Sans-Math" not in families, families


def test_changing_the_data_redraws_that_chart_alone(tmp_path: Path) -> None:
    root = copy_fixture("en-figures", tmp_path / "src")
    out = tmp_path / "out"
    assert run_report("build", root, "-o", out, "--format", "epub").returncode == 0
    csv = root / "data" / "trade.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("2023,70", "2023,95"), encoding="utf-8")
    rebuilt = run_report("build", root, "-o", out, "--format", "epub", "--timings")
    assert rebuilt.returncode == 0, rebuilt.stderr
    xhtml = epub_read(out / "en-figures.epub", "EPUB/charts.xhtml").decode()
    assert re.search(r"<td>2023</td>\s*<td>95</td>", xhtml) and ">100</text>" in xhtml  # the axis grew
    # Nothing else is made again: the other chapter's parse, layout and EPUB page come from the cache.
    for kind, hits, misses in (("parsed", 1, 1), ("pdf-layout", 3, 1), ("epub-page", 1, 1)):
        # a row of --timings' cache table: kind, hits, misses
        assert re.search(rf"^{kind}\s+{hits}\s+{misses}$", rebuilt.stdout, re.MULTILINE), rebuilt.stdout
    shutil.rmtree(root / ".report-cache", ignore_errors=True)


def test_a_chapter_parsed_again_draws_none_of_its_charts_again(tmp_path: Path) -> None:
    """The drawings are kept in the cache by their spec: an edit of the text around a chart
    parses the chapter again, and vl-convert is not asked for the chart."""
    root = copy_fixture("en-figures", tmp_path / "src")
    out = tmp_path / "out"
    first = run_report("build", root, "-o", out, "--format", "epub", "--timings")
    assert first.returncode == 0 and re.search(r"^chart\s+0\s+[1-9]\d*$", first.stdout, re.MULTILINE), first.stdout
    drawn = int(re.search(r"^chart\s+0\s+(\d+)$", first.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    chapter = next(path for path in (root / "chapters").glob("*.md") if "vega-lite" in path.read_text(encoding="utf-8"))
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\nA sentence added after the charts.\n", encoding="utf-8")
    again = run_report("build", root, "-o", out, "--format", "epub", "--timings")
    assert again.returncode == 0, again.stderr
    assert re.search(r"^parsed\s+\d+\s+1$", again.stdout, re.MULTILINE), again.stdout
    assert re.search(rf"^chart\s+{drawn}\s+0$", again.stdout, re.MULTILINE), again.stdout
    assert "A sentence added after the charts." in epub_read(out / "en-figures.epub", "EPUB/charts.xhtml").decode()
