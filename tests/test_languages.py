"""Chinese and Korean reports: labels and interface words in the report's language."""

from __future__ import annotations

import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pypdf
import pytest
from helpers import FIXTURES, copy_fixture, pdftotext, run_report, squeeze
from lxml import etree

from report.build import prepare

LANGUAGES = {
    # fixture: (language, labels of: chapter, section, figure, table, contents heading)
    "zh": ("zh-Hans", "第1章", "1.1节", "图1", "表1", "目录"),
    "ko": ("ko", "제1장", "1.1절", "그림 1", "표 1", "목차"),
}


@pytest.mark.parametrize("name", sorted(LANGUAGES))
def test_labels_in_html(name: str) -> None:
    language, chapter, section, figure, table, _ = LANGUAGES[name]
    book, warnings = prepare(FIXTURES / name)
    assert book.config.language == language
    assert not warnings
    (only,) = book.chapters
    links = dict(re.findall(r'<a href="#([^"]+)" class="xref[^"]*">([^<]*)</a>', only.html))
    assert links == {f"fig-{name}": figure, f"tbl-{name}": table, f"{name}-sec": section, "intro": chapter}
    assert only.label.caption_prefix == chapter
    assert f'<span class="label">{figure}</span>' in only.html
    assert f'<span class="label">{table}</span>' in only.html


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("languages")

    def build(name: str) -> Path:
        root = copy_fixture(name, base)
        run = run_report("build", root, "-o", base / "out" / name)
        assert run.returncode == 0, run.stderr
        return base / "out" / name

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(sorted(LANGUAGES), pool.map(build, sorted(LANGUAGES)), strict=True))


@pytest.mark.parametrize("name", sorted(LANGUAGES))
def test_pdf_labels(name: str, built: dict[str, Path]) -> None:
    language, chapter, section, figure, table, contents = LANGUAGES[name]
    assert pypdf.PdfReader(built[name] / f"{name}.pdf").trailer["/Root"].get("/Lang") == language
    text = squeeze(pdftotext(built[name] / f"{name}.pdf"))
    for word in (chapter, section, figure, table, contents):
        assert squeeze(word) in text, word


@pytest.mark.parametrize("name", sorted(LANGUAGES))
def test_epub_language(name: str, built: dict[str, Path]) -> None:
    language, chapter, section, figure, table, contents = LANGUAGES[name]
    with zipfile.ZipFile(built[name] / f"{name}.epub") as epub:
        opf = next(n for n in epub.namelist() if n.endswith(".opf"))
        package = etree.fromstring(epub.read(opf))
        assert package.findtext(".//{http://purl.org/dc/elements/1.1/}language") == language
        pages = [n for n in epub.namelist() if n.endswith(".xhtml")]
        texts = {}
        for page in pages:
            root = etree.fromstring(epub.read(page))
            assert root.get("lang") == language, page
            assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == language, page
            texts[page] = "".join(root.itertext())
        everything = "".join(texts.values())
        for word in (chapter, section, figure, table, contents):
            assert word in everything, word
