"""Stage 1, load: chapter files and their YAML front matter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from report.errors import Diagnostics, ReportError, SourceError
from report.load import YAML_LOADER, _split_front_matter, default_chapter_id, load_project
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
        path.parent.mkdir(parents=True, exist_ok=True)
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
            "a.md": "---\nid: 3\n---\n",
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


def warnings(root: Path) -> list[tuple[str, int | None, str]]:
    diagnostics = Diagnostics()
    load_project(root, diagnostics)
    assert not diagnostics.errors
    return [(d.location.path.name, d.location.line, d.message) for d in diagnostics.warnings]


def test_other_front_matter_keys_are_kept_as_metadata_with_a_warning(tmp_path: Path) -> None:
    text = "---\ntitle: T\nauthor: 山田\ntags: [a, b]\ndate: 2024-05-01\ntitel: U\n---\n"
    root = make(tmp_path, {"a.md": text})
    (chapter,) = load_project(root).chapters
    assert chapter.meta == {"author": "山田", "tags": ["a", "b"], "date": "2024-05-01", "titel": "U"}
    found = warnings(root)
    assert [(name, line) for name, line, _ in found] == [("a.md", 3), ("a.md", 4), ("a.md", 5), ("a.md", 6)]
    assert '"author"' in found[0][2] and "metadata" in found[0][2]
    assert 'did you mean "title"' in found[3][2]


def test_odd_front_matter_keys_stay_on_one_line(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": '---\ntitle: T\n"two\\nlines": 1\n---\n'})
    found = warnings(root)
    assert found, "a key with a line break is named in a warning"
    for name, line, message in found:
        assert name == "a.md" and isinstance(line, int) and line >= 2
        assert "\n" not in message


def test_key_line_is_looked_up_in_the_front_matter_only(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": '---\n"titel": T\n---\n\ntitel: in the body\n'})
    ((_, line, message),) = warnings(root)
    assert line == 2 and 'did you mean "title"' in message


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # the folder holding every chapter is left out; a folder's README or index page is the folder
        ({"basic/variables/README.md": "# V\n", "basic/intro.md": "# I\n"}, ["variables", "intro"]),
        ({"a/README.md": "# A\n", "b/index.md": "# B\n", "01-c/02-d.md": "# D\n"}, ["a", "b", "c-d"]),
        ({"01-a.md": "# A\n", "02-b.md": "# B\n"}, ["a", "b"]),  # as before: chapters/ is that folder
        # paths that slug the same (no ASCII letters in them) still give distinct ids
        (
            {"はじめに/README.md": "# は\n", "本編/README.md": "# 本\n", "おわりに.md": "# お\n"},
            ["chapter", "chapter-2", "chapter-3"],
        ),
        # else the {#id} on the # title, when only what prints nothing comes before it
        ({"a.md": "<!-- lint: off -->\n\n[x]: https://x.org\n# A {#first .x}\n"}, ["first"]),
        ({"a.md": "text\n\n# A {#first}\n"}, ["a"]),
        ({"a.md": "---\nid: fm\n---\n# A {#title}\n"}, ["fm"]),  # front matter first
    ],
)
def test_chapter_ids(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    root = make(tmp_path, files)
    assert [chapter.id for chapter in load_project(root).chapters] == expected


def test_an_invalid_id_on_the_title_is_an_error_on_its_line(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "---\nauthor: x\n---\n<!-- c -->\n# A {#1a}\n"})
    ((name, line, message),) = errors(root)
    assert (name, line) == ("a.md", 5) and '"id" must start with a letter' in message


def test_matter_of_the_wrong_type(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.md": "---\ntitle: T\nmatter: [body]\n---\n"})
    ((_, line, message),) = errors(root)
    assert line == 3 and '"matter" must be one of' in message


def _front_matter_by_lines(text: str) -> tuple[object, str, int]:
    """What front matter is, said line by line: a first line ``---``, up to the next such line."""
    lines = text.split("\n")
    if not re.fullmatch(r"---[ \t]*", lines[0]):
        return {}, text, 1
    end = next((i for i in range(1, len(lines)) if re.fullmatch(r"---[ \t]*", lines[i])), None)
    if end is None:
        return None, text, 1
    try:
        meta = yaml.load("\n".join(lines[1:end]), Loader=YAML_LOADER) or {}
    except yaml.YAMLError:
        return None, text, 1
    if not isinstance(meta, dict):
        return None, text, 1
    return meta, "\n".join(lines[end + 1 :]), end + 2


@given(
    st.lists(
        st.sampled_from(["---", "--- ", "---\t", "----", " ---", "a: 1", "b: [2]", "", "本文", "- x", ":"]), max_size=8
    )
)
def test_front_matter_is_found_as_line_by_line(lines: list[str]) -> None:
    """The chapter's text is searched for its front matter, not split into lines (most of it
    is the body): what it finds is what reading it line by line finds."""
    text = "\n".join(lines)
    assert _split_front_matter(Path("x.md"), text, Diagnostics()) == _front_matter_by_lines(text)


def test_front_matter_is_read_once_for_each_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that loads the book again (the build server between builds, and the builds it
    forks) reads a front matter it has read before not again; an edited one is read anew, and
    what a chapter's loading makes of its data does not change the data kept."""
    root = make(
        tmp_path,
        {
            "01-a.md": "---\ntitle: 序論 (テスト読込み一)\nauthor: [甲, 乙]\n---\n\n本文。\n",
            "02-b.md": "---\ntitle: 第二章 (テスト読込み二)\n---\n\n本文。\n",
        },
    )
    reads: list[str] = []
    real = yaml.load
    monkeypatch.setattr(yaml, "load", lambda text, Loader: reads.append(text) or real(text, Loader=Loader))
    first = load_project(root)
    assert len(reads) == 2
    first.chapters[0].meta["author"].append("丙")  # the chapter's copy, not the data kept
    again = load_project(root)
    assert len(reads) == 2
    assert again.chapters[0].meta == {"author": ["甲", "乙"]}
    assert [chapter.title for chapter in again.chapters] == ["序論 (テスト読込み一)", "第二章 (テスト読込み二)"]
    (root / "chapters" / "02-b.md").write_text("---\ntitle: 第二章 (テスト読込み三)\n---\n\n本文。\n", encoding="utf-8")
    assert load_project(root).chapters[1].title == "第二章 (テスト読込み三)"
    assert len(reads) == 3
