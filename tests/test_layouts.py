"""Books written for other tools (mdBook, MkDocs, GitBook, Quarto, a Pandoc manuscript) build
as they are; `report init --from` writes the equivalent report.toml."""

from __future__ import annotations

import tomllib
from collections import OrderedDict
from pathlib import Path

import pytest
from helpers import (
    FIXTURES,
    EpubCheckRun,
    copy_fixture,
    diagnostics_of,
    epub_read,
    pdftotext,
    run_report,
    squeeze,
)
from lxml import etree

from report import layouts
from report.config import load_config
from report.errors import ConfigError
from report.layouts import read_layout

LAYOUTS = FIXTURES / "layouts"
BOOKS = ("mdbook", "mkdocs", "gitbook", "quarto", "pandoc")
MDBOOK_FIRST_PART = {
    "part": "基礎編",
    "chapters": [
        "src/basic/variables/README.md",
        "src/basic/variables/constants.md",
        # No "#" title of its own: the summary's is kept for it.
        {"file": "src/basic/variables/shadowing.md", "title": "シャドーイング"},
        "src/basic/functions/README.md",
    ],
}


def _chapters(root: Path) -> list[object]:
    layout = read_layout(root)
    assert layout is not None
    return layout.values["chapters"]


# --- the readers --------------------------------------------------------------


def test_mdbook_summary_prefix_parts_nesting_drafts_and_suffix() -> None:
    layout = read_layout(LAYOUTS / "mdbook")
    assert layout is not None and layout.tool == "mdBook"
    assert layout.values["title"] == "錆びない本"
    assert layout.values["language"] == "ja" and layout.values["authors"] == ["山田太郎"]
    assert layout.values["chapters"] == [
        {"file": "src/README.md", "matter": "front"},  # before the lists: unnumbered
        MDBOOK_FIRST_PART,
        {"part": "応用編", "chapters": ["src/advanced/ownership.md"]},  # the draft chapter is left out
        {"file": "src/afterword.md", "matter": "back"},  # after "---": outside the parts, unnumbered
    ]


def test_chapter_titles_are_parsed_once_for_each_beginning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config is read at every build, and an mdBook's lists every chapter by its title: each
    chapter's beginning is parsed for its own title once in a process, and again when it changes."""
    root = copy_fixture("layouts/mdbook", tmp_path)
    monkeypatch.setattr(layouts, "_TITLES", OrderedDict())
    parsed: list[str] = []
    title_in = layouts._title_in
    monkeypatch.setattr(layouts, "_title_in", lambda head: parsed.append(head) or title_in(head))
    first = _chapters(root)
    assert len(parsed) == 7  # README, afterword and the five chapters of the parts
    assert _chapters(root) == first and len(parsed) == 7
    (root / "src" / "afterword.md").write_text("見出しのない後書き。\n", encoding="utf-8")
    assert _chapters(root)[-1] == {"file": "src/afterword.md", "matter": "back", "title": "あとがき"}
    assert len(parsed) == 8


def test_mkdocs_nested_nav_tolerates_python_tags() -> None:
    layout = read_layout(LAYOUTS / "mkdocs")
    assert layout is not None and layout.tool == "MkDocs"
    assert (layout.values["title"], layout.values["language"]) == ("The Widget Manual", "en")
    assert layout.values["authors"] == ["Ada Lovelace"] and layout.values["subtitle"] == "Everything about widgets"
    assert layout.values["chapters"] == [
        "docs/index.md",
        {
            "part": "Guide",
            "chapters": [
                "docs/guide/index.md",
                "docs/guide/install/index.md",
                "docs/guide/install/linux.md",
                "docs/guide/usage.md",
            ],
        },
        {"part": "Reference", "chapters": ["docs/reference/options.md"]},  # the web link is left out
    ]


def test_mkdocs_without_nav_takes_the_files_in_order(tmp_path: Path) -> None:
    root = copy_fixture("layouts/mkdocs", tmp_path)
    text = (root / "mkdocs.yml").read_text(encoding="utf-8")
    (root / "mkdocs.yml").write_text(text.split("nav:")[0], encoding="utf-8")
    assert _chapters(root) == [
        "docs/index.md",
        "docs/guide/index.md",
        "docs/guide/usage.md",
        "docs/guide/install/index.md",
        "docs/guide/install/linux.md",
        "docs/reference/options.md",
    ]


def test_gitbook_root_structure_and_parts() -> None:
    layout = read_layout(LAYOUTS / "gitbook")
    assert layout is not None and layout.tool == "GitBook"
    assert (layout.values["title"], layout.values["language"], layout.values["authors"]) == (
        "ギットブックの手引き",
        "ja",
        ["鈴木花子"],
    )
    assert layout.values["chapters"] == [
        "content/README.md",
        {"part": "第一部 準備", "chapters": ["content/part1/README.md", "content/part1/tools.md"]},
        {"part": "第二部 実践", "chapters": ["content/part2/README.md"]},
    ]


def test_gitbook_readme_comes_first_even_when_the_summary_omits_it(tmp_path: Path) -> None:
    root = copy_fixture("layouts/gitbook", tmp_path)
    (root / "book.json").write_text('{"root": "content", "structure": {"summary": "toc.md"}}', encoding="utf-8")
    (root / "content" / "toc.md").write_text("* [準備](part1/README.md)\n", encoding="utf-8")
    layout = read_layout(root)
    assert layout is not None
    assert layout.values["chapters"] == ["content/README.md", "content/part1/README.md"]
    assert layout.values["title"] == "序文"  # the readme's title, when book.json has none
    assert layout.values["language"] == "ja"  # guessed from the kana of the first chapter


def test_quarto_parts_part_files_and_appendices() -> None:
    layout = read_layout(LAYOUTS / "quarto")
    assert layout is not None and layout.tool == "Quarto"
    assert layout.values["title"] == "Data in Practice" and layout.values["authors"] == ["Grace Hopper"]
    assert layout.values["date"] == "2024-05-01" and layout.values["language"] == "en"
    assert layout.values["chapters"] == [
        {"file": "index.md", "matter": "front"},  # the preface
        {"part": "Foundations", "chapters": ["intro.md", "methods.md"]},
        {"part": "Findings", "chapters": ["results.md"]},  # the part file's "#" title
        {"part": "Appendices", "chapters": [{"file": "data.md", "matter": "back"}]},
    ]


def test_a_layout_gives_the_same_config_as_its_report_toml(tmp_path: Path) -> None:
    root = copy_fixture("layouts/mdbook", tmp_path)
    from_layout = load_config(root)
    assert [p.title for p in from_layout.parts] == ["基礎編", "応用編"]
    assert from_layout.parts[0].chapters[0] == root.resolve() / "src/basic/variables/README.md"
    assert from_layout.path == root.resolve() / "book.toml"
    run = run_report("init", "--from", root, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "from the mdBook book" in run.stdout
    text = (root / "report.toml").read_text(encoding="utf-8")
    assert text.startswith("# Written by `report init --from` from the mdBook book's book.toml, src/SUMMARY.md")
    written = tomllib.loads(text)
    assert written["chapters"][1] == MDBOOK_FIRST_PART
    from_toml = load_config(root)
    assert from_toml.path == root.resolve() / "report.toml"
    same = ("title", "language", "authors", "chapters", "parts", "identifier", "output")
    assert [getattr(from_toml, name) for name in same] == [getattr(from_layout, name) for name in same]

    again = run_report("init", "--from", root, cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_init_from_a_folder_that_is_no_book(tmp_path: Path) -> None:
    run = run_report("init", "--from", tmp_path, cwd=tmp_path)
    assert run.returncode == 1 and "has no book.toml, mkdocs.yml" in run.stderr
    assert run_report("init", cwd=tmp_path).returncode == 2  # neither FOLDER nor --from


@pytest.mark.parametrize(
    ("book", "edit", "where", "words"),
    [
        ("mdbook", ("src/SUMMARY.md", "[所有権](advanced/ownership.md)", "[所有権](advanced/gone.md)"),
         "src/SUMMARY.md:15", ['"src/advanced/gone.md" does not exist']),
        ("mdbook", ("book.toml", 'language = "ja"', 'language = "日本語"'), "book.toml:4", ['"language"']),
        ("mkdocs", ("mkdocs.yml", "nav:", "nav: [\n"), "mkdocs.yml:", ["expected"]),
        ("quarto", ("_quarto.yml", "- methods.md", "- ../outside.md"), "_quarto.yml:16",
         ["outside the report folder"]),
        ("gitbook", ("book.json", '"language": "ja",', '"language": "ja"'), "book.json:5", ["invalid JSON"]),
    ],
)  # fmt: skip
def test_problems_in_a_layout_point_at_its_files(
    tmp_path: Path, book: str, edit: tuple[str, str, str], where: str, words: list[str]
) -> None:
    root = copy_fixture(f"layouts/{book}", tmp_path)
    name, old, new = edit
    text = (root / name).read_text(encoding="utf-8")
    assert old in text
    (root / name).write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(root)
    ((problem),) = error.value.diagnostics
    assert str(problem).startswith(str(root.resolve() / where)), str(problem)
    for word in words:
        assert word in problem.message


def test_a_summary_that_is_missing(tmp_path: Path) -> None:
    root = copy_fixture("layouts/mdbook", tmp_path)
    (root / "src" / "SUMMARY.md").unlink()
    with pytest.raises(ConfigError, match=r"no SUMMARY\.md"):
        load_config(root)


def test_a_summary_is_parsed_once_in_a_process_but_its_chapters_are_checked_at_every_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config is read at every build: a summary read again as it was is not parsed again,
    but the files it lists are looked for again (a chapter removed since is reported), and a
    summary changed is parsed anew."""
    monkeypatch.setattr(layouts, "_SUMMARIES", OrderedDict())
    parses: list[str] = []
    parse = layouts._COMMONMARK.parse
    monkeypatch.setattr(layouts._COMMONMARK, "parse", lambda text, *rest: parses.append(text) or parse(text, *rest))
    root = copy_fixture("layouts/mdbook", tmp_path)
    summary = root / "src" / "SUMMARY.md"
    first = load_config(root)
    assert load_config(root) == first and parses.count(summary.read_text(encoding="utf-8")) == 1
    (root / "src" / "afterword.md").unlink()
    with pytest.raises(ConfigError, match=r"afterword\.md"):
        load_config(root)
    assert parses.count(summary.read_text(encoding="utf-8")) == 1
    summary.write_text(summary.read_text(encoding="utf-8").replace("[あとがき](afterword.md)\n", ""), encoding="utf-8")
    assert len(load_config(root).chapters) == len(first.chapters) - 1
    assert parses.count(summary.read_text(encoding="utf-8")) == 1 and len(set(parses)) >= 2


def test_report_toml_wins_over_a_layout(tmp_path: Path) -> None:
    root = copy_fixture("layouts/mdbook", tmp_path)
    (root / "report.toml").write_text('title = "T"\nlanguage = "en"\nchapters = ["src/afterword.md"]\n')
    config = load_config(root)
    assert (config.title, len(config.chapters), config.parts) == ("T", 1, ())


# --- the books, built ---------------------------------------------------------


@pytest.fixture(scope="module")
def built_books(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, EpubCheckRun | None]]:
    """Each book built once (without a report.toml but the Pandoc manuscript's); EPUBCheck
    runs while the next one builds."""
    base = tmp_path_factory.mktemp("layouts")
    books = {}
    for name in BOOKS:
        root = copy_fixture(f"layouts/{name}", base)
        run = run_report("build", root, cwd=base)
        epub = root / "dist" / f"{name}.epub"
        check = EpubCheckRun(epub).start() if run.returncode == 0 else None
        books[name] = (root, run.stdout + run.stderr, check)
    return books


@pytest.mark.parametrize("book", BOOKS)
def test_book_builds_and_passes_epubcheck(built_books: dict, book: str) -> None:
    root, output, check = built_books[book]
    assert check is not None, output
    assert not [d for d in diagnostics_of(output) if "warning" not in d["message"][:8]], output
    assert check.result() == []
    assert (root / "dist" / f"{book}.pdf").stat().st_size > 0


def _nav_tree(epub: Path) -> list[tuple[str, list[str]]]:
    """The EPUB's table of contents: each top entry's text and its children's texts."""
    nav = etree.fromstring(epub_read(epub, "EPUB/nav.xhtml"))
    ns = {"x": "http://www.w3.org/1999/xhtml", "e": "http://www.idpf.org/2007/ops"}
    top = nav.xpath("//x:nav[@e:type='toc']/x:ol/x:li", namespaces=ns)
    return [
        ("".join(li.xpath("x:a//text()", namespaces=ns)), ["".join(a.xpath(".//text()")) for a in li.xpath("x:ol/x:li/x:a", namespaces=ns)])
        for li in top
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("book", "parts"),
    [
        (
            "mdbook",
            {
                "基礎編": ["第1章　変数", "第2章　定数", "第3章　シャドーイング", "第4章　関数"],
                "応用編": ["第5章　所有権"],
            },
        ),
        ("gitbook", {"第一部 準備": ["第2章　準備", "第3章　道具"], "第二部 実践": ["第4章　実践"]}),
        ("quarto", {"Foundations": ["Chapter 1　Introduction", "Chapter 2　Methods"], "Appendices": ["The data"]}),
    ],
)
def test_parts_group_chapters_in_the_epub_and_get_a_page_in_the_pdf(
    built_books: dict, book: str, parts: dict[str, list[str]]
) -> None:
    root, _, _ = built_books[book]
    tree = dict(_nav_tree(root / "dist" / f"{book}.epub"))
    for title, chapters in parts.items():
        assert tree[title] == chapters, tree
    text = pdftotext(root / "dist" / f"{book}.pdf", layout=False)
    pages = text.split("\f")
    for title in parts:
        # Its own page, and a line of the contents (page 3: cover, title page, contents).
        assert any(squeeze(page) == squeeze(title) for page in pages), title
        assert squeeze(title) in squeeze(pages[2])


def test_links_between_chapter_files_land_in_the_right_document(built_books: dict) -> None:
    root, _, _ = built_books["mdbook"]
    page = epub_read(root / "dist" / "mdbook.epub", "EPUB/basic-variables-constants.xhtml").decode()
    assert 'href="basic-variables.xhtml#let"' in page


def test_in_print_a_part_starts_on_a_right_hand_page_and_its_first_chapter_too(tmp_path: Path) -> None:
    root = copy_fixture("layouts/mdbook", tmp_path)
    run = run_report("build", root, "--profile", "print", "--format", "pdf", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    pages = [squeeze(page) for page in pdftotext(root / "dist" / "mdbook.pdf", layout=False).split("\f")]
    parts = [n for n, page in enumerate(pages, start=1) if page in ("基礎編", "応用編")]
    assert len(parts) == 2 and all(n % 2 == 1 for n in parts), parts
    for n in parts:  # a blank back, then the part's first chapter
        assert pages[n] == "" and pages[n + 1].startswith("第"), pages[n : n + 2]


def test_fixture_books_have_no_report_toml() -> None:
    """The layouts are read from the tools' own files (the Pandoc manuscript has none)."""
    assert [b for b in BOOKS if (LAYOUTS / b / "report.toml").exists()] == ["pandoc"]


def test_unnumbered_chapters_of_a_layout(built_books: dict) -> None:
    """mdBook's prefix and suffix chapters and Quarto's preface are not numbered."""
    root, _, _ = built_books["mdbook"]
    contents = squeeze(pdftotext(root / "dist" / "mdbook.pdf", layout=False).split("\f")[2])
    assert "第1章" not in contents.split("基礎編")[0] and "あとがき" in contents
    assert "第6章" not in contents and "第5章所有権" in contents
    tree = dict(_nav_tree(root / "dist" / "mdbook.epub"))
    assert "はじめに" in tree and "あとがき" in tree


def test_the_chapter_list_may_give_a_chapter_its_matter(tmp_path: Path) -> None:
    from report.load import load_project

    root = copy_fixture("layouts/pandoc", tmp_path)
    toml = root / "report.toml"
    listed = '{ file = "chapters/01-harbour.md", matter = "front" }, "chapters/02-market.md"'
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('"chapters/01-harbour.md", "chapters/02-market.md"', listed)
    )
    project = load_project(root)
    assert [c.matter.value for c in project.chapters] == ["front", "body"]
    toml.write_text(toml.read_text(encoding="utf-8").replace('matter = "front"', 'matter = "middle"'))
    with pytest.raises(ConfigError, match="list of chapter files and parts"):
        load_config(root)


def test_watch_takes_a_book_layout_too(tmp_path: Path) -> None:
    from report.watch import Watcher, WatchError

    watcher = Watcher(LAYOUTS / "mkdocs", port=0)
    watcher.server.server_close()
    with pytest.raises(WatchError, match=r"no report\.toml"):
        Watcher(tmp_path, port=0)
