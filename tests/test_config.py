"""report.toml: the schema, its messages, defaults and the derived identifier."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from report.config import Config, EpubSettings, PdfSettings, load_config
from report.errors import ConfigError

MINIMAL = 'title = "T"\nlanguage = "ja"\nchapters = ["chapters/a.md"]\n'


def project(root: Path, toml: str, chapters: tuple[str, ...] = ("chapters/a.md",)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "report.toml").write_text(toml, encoding="utf-8")
    for name in chapters:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# A\n", encoding="utf-8")
    return root


def problems(root: Path) -> list[tuple[int | None, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    for diagnostic in caught.value.diagnostics:
        assert diagnostic.location.path == root.resolve() / "report.toml"
        assert not diagnostic.is_warning
    return [(d.location.line, d.message) for d in caught.value.diagnostics]


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    config = load_config(project(tmp_path / "my report", MINIMAL))
    assert isinstance(config, Config)
    assert config.title == "T" and config.language == "ja"
    assert config.chapters == ((tmp_path / "my report" / "chapters" / "a.md").resolve(),)
    assert config.authors == () and config.subtitle is None and config.date is None
    assert config.output == "my-report"  # the folder's name, made a safe file name
    assert config.pdf == PdfSettings() and config.epub == EpubSettings()
    assert (config.pdf.page_size, config.pdf.font, config.pdf.font_size) == ("A4", "serif", "10.5pt")
    assert config.epub.writing_mode == "horizontal-tb"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", config.identifier)


def test_full_config(tmp_path: Path) -> None:
    toml = MINIMAL + (
        'subtitle = "S"\nauthors = ["A", "B"]\ndate = 2024-12-20\npublisher = "P"\nedition = "2"\n'
        'identifier = "isbn:123"\noutput = "book"\n'
        '[pdf]\npage-size = "B5"\nfont = "sans"\nfont-size = "9pt"\nmargin = "15mm"\n'
        '[epub]\nwriting-mode = "vertical-rl"\nfont = "sans"\n'
    )
    config = load_config(project(tmp_path, toml))
    assert config.authors == ("A", "B")
    assert config.date == dt.date(2024, 12, 20)
    assert config.identifier == "isbn:123"
    assert config.output == "book"
    assert config.pdf.page_size == "B5" and config.pdf.font == "sans" and config.pdf.margin == "15mm"
    assert config.epub.writing_mode == "vertical-rl" and config.epub.font == "sans"


def test_date_as_string(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, MINIMAL + 'date = "2024-02-29"\n'))
    assert config.date == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    ("extra", "key", "suggested"),
    [
        ('titel = "x"\n', "titel", "title"),
        ('author = ["x"]\n', "author", "authors"),
        ('langauge = "en"\n', "langauge", "language"),
        ('[pdf]\npage_size = "A4"\n', "page_size", "page-size"),
        ('[pdf]\nfontsize = "9pt"\n', "fontsize", "font-size"),
        ('[epub]\nwriting_mode = "vertical-rl"\n', "writing_mode", "writing-mode"),
        ('[pfd]\nfont = "sans"\n', "pfd", "pdf"),
    ],
)
def test_unknown_key_names_it_and_suggests(tmp_path: Path, extra: str, key: str, suggested: str) -> None:
    toml = MINIMAL + extra
    found = problems(project(tmp_path, toml))
    assert len(found) == 1
    line, message = found[0]
    assert f'unknown key "{key}"' in message
    assert f'did you mean "{suggested}"' in message
    # The line is the key's line (or its table's): where an editor should jump.
    assert line == next(n for n, text in enumerate(toml.splitlines(), 1) if text.startswith((key, f"[{key}]")))


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path: Path) -> None:
    ((_, message),) = problems(project(tmp_path, MINIMAL + "zzzzzz = 1\n"))
    assert message == 'unknown key "zzzzzz"'


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    toml = (
        "title = 3\n"  # 1
        'language = "not a tag!"\n'  # 2
        'chapters = ["chapters/a.md", "chapters/missing.md", "../outside.md", "chapters/a.txt"]\n'  # 3
        'authors = "one"\n'  # 4
        "date = 2024-01-01T10:00:00\n"  # 5
        'output = "a/b"\n'  # 6
        'pdf = "A4"\n'  # 7
        "[epub]\n"  # 8
        'writing-mode = "sideways"\n'  # 9
        "font = 1\n"  # 10
        "colour = 1\n"  # 11
    )
    found = problems(project(tmp_path, toml))
    lines = sorted(line for line, _ in found if line is not None)
    assert lines == [1, 2, 3, 3, 3, 4, 5, 6, 7, 9, 10, 11], found
    text = "\n".join(message for _, message in found)
    for expected in (
        '"title" must be a non-empty string',
        '"language" must be a BCP 47 language tag',
        'chapter file "chapters/missing.md" does not exist',
        'chapter "../outside.md" is outside the report folder',
        'chapter "chapters/a.txt" is not a Markdown (.md) file',
        '"authors" must be a list of non-empty strings',
        '"date" must be an ISO 8601 date',
        '"output" must be a file base name',
        '"pdf" must be a table',
        '[epub] "writing-mode" must be one of "horizontal-tb", "vertical-rl"',
        '[epub] "font" must be one of "serif", "sans"',
        '[epub] unknown key "colour"',
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('language = "ja"\nchapters = ["chapters/a.md"]\n', 'missing required key "title"'),
        ('title = "T"\nchapters = ["chapters/a.md"]\n', 'missing required key "language"'),
        ('title = "T"\nlanguage = "ja"\n', 'missing required key "chapters"'),
        ('title = "T"\nlanguage = "ja"\nchapters = []\n', '"chapters" must list at least one file'),
        ('title = "  "\nlanguage = "ja"\nchapters = ["chapters/a.md"]\n', '"title" must be a non-empty string'),
        ('title = "T"\nlanguage = "ja"\nchapters = ["chapters/a.md", "chapters/a.md"]\n', "listed twice"),
        (MINIMAL + "[pdf]\nmargin = 20\n", '[pdf] "margin" must be a CSS length'),
        (MINIMAL + '[pdf]\nvariant = "pdf/x"\n', '[pdf] "variant" must be one of'),
        (MINIMAL + 'date = "2024-02-30"\n', '"date" must be an ISO 8601 date'),
        (MINIMAL + 'authors = ["A", ""]\n', '"authors" must be a list of non-empty strings'),
        (MINIMAL + "subtitle = []\n", '"subtitle" must be a non-empty string'),
    ],
)
def test_single_problems(tmp_path: Path, toml: str, message: str) -> None:
    found = problems(project(tmp_path, toml))
    assert len(found) == 1, found
    line, text = found[0]
    assert message in text
    # Every problem has a line, so that it prints as path:line: message.
    assert isinstance(line, int) and 1 <= line <= max(1, len(toml.splitlines()))


def test_key_lines_inside_inline_and_dotted_tables(tmp_path: Path) -> None:
    found = problems(project(tmp_path, MINIMAL + 'pdf.page-size = "A3"\nepub = { font = "mono" }\n'))
    assert sorted(line for line, _ in found) == [4, 5], found


@pytest.mark.parametrize("tag", ["ja", "en", "zh-Hans", "zh-Hant-TW", "ko", "en-GB", "ja-JP", "yue", "sr-Latn-RS"])
def test_language_tags_accepted(tmp_path: Path, tag: str) -> None:
    assert (
        load_config(project(tmp_path, f'title = "T"\nlanguage = "{tag}"\nchapters = ["chapters/a.md"]\n')).language
        == tag
    )


@pytest.mark.parametrize("tag", ["", "j", "日本語", "en_US", "en-", "-en", "toolongtag"])
def test_language_tags_rejected(tmp_path: Path, tag: str) -> None:
    ((_, message),) = problems(project(tmp_path, f'title = "T"\nlanguage = "{tag}"\nchapters = ["chapters/a.md"]\n'))
    assert '"language"' in message


@pytest.mark.parametrize(
    ("toml", "expected_line"),
    [
        ('title = "T"\nlanguage = "ja"\nchapters = [\n"chapters/a.md"\nbroken\n', 5),
        ('title = "T"\nlanguage = "ja"\ntitle = "again"\nchapters = ["chapters/a.md"]\n', 3),
        ('title = "T"\nlanguage = "ja"\nchapters = ', 3),  # at the end of the document
    ],
    ids=["unclosed-array", "duplicate-key", "end-of-document"],
)
def test_invalid_toml_has_a_line(tmp_path: Path, toml: str, expected_line: int) -> None:
    ((line, message),) = problems(project(tmp_path, toml))
    assert message.startswith("invalid TOML: ")
    assert "(at " not in message  # the position is in the location, not repeated in the message
    assert line == expected_line


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('title = "T"\nlanguage = "ja"\ntitle = "again"\n', (3, 'key "title" is set twice (first on line 1)')),
        (
            'title = "T"\n[pdf]\nfont = "serif"\n\n font = "sans"\n',
            (5, 'key "pdf.font" is set twice (first on line 3)'),
        ),
        ('title = "T"\n[epub]\n[pdf]\n[epub]\n', (4, 'table "epub" is set twice (first on line 2)')),
    ],
    ids=["key", "key-in-table", "table"],
)
def test_a_duplicate_key_is_named_with_its_lines(tmp_path: Path, toml: str, expected: tuple[int, str]) -> None:
    ((line, message),) = problems(project(tmp_path, toml))
    assert (line, message) == (expected[0], f"invalid TOML: {expected[1]}")


def test_invalid_utf8_config(tmp_path: Path) -> None:
    project(tmp_path, MINIMAL)
    (tmp_path / "report.toml").write_bytes(b'title = "\xff"\nlanguage = "ja"\nchapters = ["chapters/a.md"]\n')
    ((_, message),) = problems(tmp_path)
    assert "UTF-8" in message


def test_no_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "report.toml" in str(caught.value)


def test_chapter_symlink_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("# X\n", encoding="utf-8")
    root = project(tmp_path / "r", 'title = "T"\nlanguage = "ja"\nchapters = ["chapters/link.md"]\n', ())
    (root / "chapters").mkdir()
    (root / "chapters" / "link.md").symlink_to(outside)
    ((line, message),) = problems(root)
    assert "outside the report folder" in message and line == 3


# --- the identifier ---------------------------------------------------------------------


def _identifier(root: Path, toml: str) -> str:
    return load_config(project(root, toml)).identifier


def test_identifier_is_deterministic(tmp_path: Path) -> None:
    toml = MINIMAL + 'authors = ["A"]\nedition = "1"\n'
    first = _identifier(tmp_path / "one", toml)
    # Same metadata in another folder, another order of keys, another day: the same identifier.
    second = _identifier(tmp_path / "two", 'edition = "1"\nauthors = ["A"]\n' + MINIMAL + "date = 2030-01-01\n")
    assert first == second
    assert first.startswith("urn:uuid:")


@pytest.mark.parametrize(
    "changed",
    [
        'title = "Other"\nlanguage = "ja"\nchapters = ["chapters/a.md"]\nauthors = ["A"]\nedition = "1"\n',
        MINIMAL + 'authors = ["B"]\nedition = "1"\n',
        MINIMAL + 'authors = ["A"]\nedition = "2"\n',
    ],
)
def test_identifier_follows_title_authors_edition(tmp_path: Path, changed: str) -> None:
    base = _identifier(tmp_path / "base", MINIMAL + 'authors = ["A"]\nedition = "1"\n')
    assert _identifier(tmp_path / "changed", changed) != base


def test_identifier_given_is_kept(tmp_path: Path) -> None:
    assert _identifier(tmp_path, MINIMAL + 'identifier = "urn:isbn:9784000000000"\n') == "urn:isbn:9784000000000"


def test_output_name_default_is_safe(tmp_path: Path) -> None:
    assert load_config(project(tmp_path / "報告 2024!", MINIMAL)).output == "報告-2024"
    assert load_config(project(tmp_path / "---", MINIMAL)).output == "report"


def test_pdf_lengths_in_points() -> None:
    settings = PdfSettings(font_size="12pt")
    lengths = {"10.5pt": 10.5, "25.4mm": 72.0, "2.54cm": 72.0, "1in": 72.0, "4px": 3.0, "2em": 24.0, "4Q": 72 / 25.4}
    assert {length: round(settings.points(length), 6) for length in lengths} == {
        length: round(points, 6) for length, points in lengths.items()
    }


def test_cutoff_date(tmp_path: Path) -> None:
    config = load_config(project(tmp_path / "a", MINIMAL + "date = 2024-12-20\ncutoff-date = 2024-12-13\n"))
    assert config.cutoff_date == dt.date(2024, 12, 13)
    assert load_config(project(tmp_path / "b", MINIMAL + 'cutoff-date = "2024-12-13"\n')).cutoff_date == dt.date(
        2024, 12, 13
    )
    assert load_config(project(tmp_path / "c", MINIMAL)).cutoff_date is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('cutoff-date = "13 December"\n', '"cutoff-date" must be an ISO 8601 date such as 2024-12-20'),
        ("date = 2024-12-20\ncutoff-date = 2024-12-21\n", '"cutoff-date" must not be later than "date"'),
    ],
)
def test_bad_cutoff_date(tmp_path: Path, extra: str, message: str) -> None:
    assert problems(project(tmp_path, MINIMAL + extra)) == [(len(MINIMAL.splitlines()) + extra.count("\n"), message)]
