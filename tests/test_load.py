"""Stage 1, load: chapter files and their YAML front matter."""

from __future__ import annotations

from pathlib import Path

import pytest

from report.errors import ReportError, SourceError
from report.load import default_chapter_id, load_project
from report.model import Matter


def make(root: Path, chapters: dict[str, str | bytes], toml_extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = ", ".join(f'"chapters/{name}"' for name in chapters)
    (root / "report.toml").write_text(
        f'title = "T"\nlanguage = "ja"\nchapters = [{names}]\n{toml_extra}', encoding="utf-8"
    )
    (root / "chapters").mkdir(exist_ok=True)
    for name, text in chapters.items():
        path = root / "chapters" / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return root


def errors(root: Path) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ReportError) as caught:
        load_project(root)
    return [(d.location.path.name, d.location.line, d.message) for d in caught.value.diagnostics]


def test_front_matter_read(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {"01-a.md": "---\ntitle: 序論\nid: intro\nmatter: front\nclass: lead wide\n---\n\n本文。\n"},
    )
    (chapter,) = load_project(root).chapters
    assert chapter.title == "序論"
    assert chapter.id == "intro"
    assert chapter.matter is Matter.FRONT
    assert chapter.classes == ("lead", "wide")
    assert chapter.markdown == "\n本文。\n"
    assert chapter.first_line == 7  # the line after the closing ---, where the Markdown starts


def test_without_front_matter(tmp_path: Path) -> None:
    root = make(tmp_path, {"02-background.md": "# 背景\n\n本文。\n"})
    (chapter,) = load_project(root).chapters
    assert chapter.title is None  # the parse stage takes the first # heading
    assert chapter.id == "background"
    assert chapter.matter is Matter.BODY
    assert chapter.classes == ()
    assert chapter.first_line == 1


def test_bom_and_crlf(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "\ufeff---\r\ntitle: T\r\n---\r\nText\r\n".encode()})
    (chapter,) = load_project(root).chapters
    assert chapter.title == "T"
    assert chapter.markdown == "Text\n"
    assert chapter.first_line == 4


def test_title_is_stripped_and_empty_front_matter_allowed(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "---\ntitle: '  T  '\n---\n# X\n", "b.md": "---\n---\n# B\n"})
    first, second = load_project(root).chapters
    assert first.title == "T"
    assert second.title is None and second.id == "b"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-background.md", "background"),
        ("00_summary.md", "summary"),
        ("3.2-results-and-notes.md", "results-and-notes"),
        ("intro.md", "intro"),
        ("01-イントロ.md", "chapter-01"),
        ("01.md", "chapter-01"),
        ("99 colophon.md", "colophon"),
    ],
)
def test_default_chapter_id(name: str, expected: str) -> None:
    assert default_chapter_id(Path(name)) == expected


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("---\ntitle: T\ntitel: U\n---\n", 3, ['unknown front matter key "titel"', 'did you mean "title"']),
        ("---\ntitle: T\nmater: back\n---\n", 3, ['did you mean "matter"']),
        ("---\ntitle: T\n---\n", None, []),  # fine: no error
        ("---\ntitle: [a\n---\n", None, ["front matter"]),
        ("---\ntitle: T\n", 1, ["never closed"]),
        ("---\n- a\n- b\n---\n", 2, ["mapping"]),
        ("---\ntitle: 3\n---\n", 2, ['"title" must be a non-empty string']),
        ("---\ntitle: ''\n---\n", 2, ['"title" must be a non-empty string']),
        ("---\nid: 1abc\n---\n# T\n", 2, ['"id" must start with a letter']),
        ("---\nid: a b\n---\n# T\n", 2, ['"id" must start with a letter']),
        ("---\nmatter: middle\n---\n# T\n", 2, ['"matter" must be one of']),
        ("---\nclass: 3\n---\n# T\n", 2, ['"class" must be space-separated class names']),
        ("---\nclass: ok .bad\n---\n# T\n", 2, ['"class" must be space-separated class names']),
    ],
)
def test_front_matter_problems(tmp_path: Path, text: str, line: int | None, words: list[str]) -> None:
    root = make(tmp_path, {"a.md": text})
    if not words:
        load_project(root)
        return
    ((name, found_line, message),) = errors(root)
    assert name == "a.md"
    if line is not None:
        assert found_line == line, message
    else:
        assert isinstance(found_line, int) and found_line >= 2
    for word in words:
        assert word in message


def test_yaml_error_line_points_into_the_file(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "---\ntitle: T\nid: a\nmatter: body: extra\n---\n"})
    ((_, line, message),) = errors(root)
    assert line == 4
    assert message.startswith("front matter: ")


def test_yaml_is_data_only(tmp_path: Path) -> None:
    """safe_load: a Python tag is an error, never an object."""
    root = make(tmp_path, {"a.md": "---\ntitle: !!python/object/apply:os.system ['echo hi']\n---\n"})
    ((_, line, message),) = errors(root)
    assert line == 2 and "front matter" in message


def test_all_chapters_reported_together(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "a.md": "---\ntitel: T\n---\n",
            "b.md": b"# B\n\n\xff\n",
            "c.md": "---\nmatter: x\n---\n",
        },
    )
    found = errors(root)
    assert [(name, line) for name, line, _ in found] == [("a.md", 2), ("b.md", 3), ("c.md", 2)]


def test_invalid_utf8_line(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": b"# T\n\nok\nok\n" + b"bad \xe3\x81 byte\n"})
    ((_, line, message),) = errors(root)
    assert line == 5
    assert "not valid UTF-8" in message


def test_reserved_private_use_characters(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "# T\n\nA \ue001 B\n"})
    ((_, line, message),) = errors(root)
    assert line == 3 and "U+E001" in message


def test_duplicate_chapter_ids(tmp_path: Path) -> None:
    root = make(tmp_path, {"01-a.md": "# A\n", "02-b.md": "---\nid: a\n---\n# B\n"})
    with pytest.raises(SourceError) as caught:
        load_project(root)
    ((diagnostic),) = caught.value.diagnostics
    assert diagnostic.location.path.name == "02-b.md"
    assert '"a"' in diagnostic.message and "01-a.md" in diagnostic.message


def test_odd_front_matter_keys_stay_on_one_line(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": '---\ntitle: T\n"two\\nlines": 1\n? [a, b]\n: 2\n---\n'})
    found = errors(root)
    assert found, "a key with a line break or a complex key is an error"
    for name, line, message in found:
        assert name == "a.md" and isinstance(line, int) and line >= 2
        assert "\n" not in message


def test_key_line_is_looked_up_in_the_front_matter_only(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": '---\n"titel": T\n---\n\ntitel: in the body\n'})
    ((_, line, message),) = errors(root)
    assert line == 2 and 'did you mean "title"' in message


def test_matter_of_the_wrong_type(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "---\ntitle: T\nmatter: [body]\n---\n"})
    ((_, line, message),) = errors(root)
    assert line == 3 and '"matter" must be one of' in message
