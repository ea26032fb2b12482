"""Each input limit of report/limits.py just under (accepted) and just over (one error line
naming the file and line), --strict turning warnings into errors (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import diagnostics_of, run_report
from PIL import Image

from report.limits import MAX_CHAPTER_BYTES, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_NESTING, MAX_TABLE_CELLS

CHAPTER = "chapters/01-limits.md"
HEAD = "# Limits\n\nA chapter at a limit.\n\n"


def _report(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "report"
    (root / "chapters").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "report.toml").write_text(
        f'title = "Limits"\nlanguage = "en"\nchapters = ["{CHAPTER}"]\n', encoding="utf-8"
    )
    (root / CHAPTER).write_text(HEAD + body, encoding="utf-8")
    return root


def _check(root: Path, *options: str) -> tuple[int, list[tuple[str, int, str]]]:
    run = run_report("check", root, *options)
    assert "Traceback" not in run.stdout + run.stderr
    found = [(Path(m["path"]).name, int(m["line"]), m["message"]) for m in diagnostics_of(run.stderr)]
    return run.returncode, found


def _padded_to(text: str, size: int) -> str:
    """``text`` and a fenced block of ASCII lines making the chapter ``size`` bytes long."""
    fence = "\n```\n"
    filler = size - len((HEAD + text + fence + fence).encode())
    lines = ("x" * 79 + "\n") * (filler // 80) + "x" * (filler % 80)
    return text + fence + lines + fence


def _nested_quotes(levels: int) -> str:
    return "> " * levels + "deep\n"


def _nested_lists(levels: int) -> str:
    return "".join("  " * level + "- item\n" for level in range(levels))


def _table(cells: int, columns: int = 10) -> str:
    rows = cells // columns - 1  # the header row is a row of cells too
    assert (rows + 1) * columns == cells
    return (
        "| "
        + " | ".join(f"h{c}" for c in range(columns))
        + " |\n"
        + "|---" * columns
        + "|\n"
        + ("| " + " | ".join("c" for _ in range(columns)) + " |\n") * rows
    )


def _image(root: Path, pixels: tuple[int, int], size: int | None = None) -> str:
    """A one-colour PNG of ``pixels``, padded (after its end, where no reader looks) to ``size`` bytes."""
    path = root / "assets" / "image.png"
    Image.new("1", pixels).save(path, optimize=False)
    if size is not None:
        with path.open("ab") as handle:
            handle.truncate(size)
    return "![An image](../assets/image.png)\n"


LIMITS = {
    "chapter size": (
        lambda root, n: _padded_to("", n),
        MAX_CHAPTER_BYTES,
        f"a chapter may be at most {MAX_CHAPTER_BYTES:,} bytes",
    ),
    "nested quotes": (lambda root, n: _nested_quotes(n), MAX_NESTING, f"nested more than {MAX_NESTING} levels"),
    "nested lists": (lambda root, n: _nested_lists(n), MAX_NESTING, f"nested more than {MAX_NESTING} levels"),
    "table cells": (lambda root, n: _table(n), MAX_TABLE_CELLS, f"more than {MAX_TABLE_CELLS:,} cells"),
    "image bytes": (lambda root, n: _image(root, (10, 10), n), MAX_IMAGE_BYTES, "may be at most 32 MB"),
    "image pixels": (lambda root, n: _image(root, (n // 5000, 5000)), MAX_IMAGE_PIXELS, "at most 50 million pixels"),
}
# One step over each limit: a byte, a level, a row of ten cells, a byte, a column of 5,000 pixels.
OVER = {"table cells": 10, "image pixels": 5000}


@pytest.mark.parametrize("limit", LIMITS)
def test_just_under_a_limit_is_accepted(limit: str, tmp_path: Path) -> None:
    make, at, _ = LIMITS[limit]
    root = _report(tmp_path, "")
    (root / CHAPTER).write_text(HEAD + make(root, at), encoding="utf-8")
    if limit == "chapter size":
        assert (root / CHAPTER).stat().st_size == at
    code, found = _check(root)
    assert (code, found) == (0, [])


@pytest.mark.parametrize("limit", LIMITS)
def test_just_over_a_limit_is_one_error_with_its_place(limit: str, tmp_path: Path) -> None:
    make, at, message = LIMITS[limit]
    root = _report(tmp_path, "")
    (root / CHAPTER).write_text(HEAD + make(root, at + OVER.get(limit, 1)), encoding="utf-8")
    code, found = _check(root)
    assert code == 1
    assert len(found) == 1, found
    name, line, text = found[0]
    assert name == Path(CHAPTER).name and message in text
    # Where what is over the limit begins: the chapter, the innermost level, the table, the image.
    first = HEAD.count("\n") + 1
    assert line == {"chapter size": 1, "nested lists": first + MAX_NESTING}.get(limit, first), found


def test_strict_turns_each_warning_into_an_error_and_writes_nothing(tmp_path: Path) -> None:
    root = _report(tmp_path, "A character no font has: \u0e01.\n")
    (root / "styles").mkdir()
    (root / "styles" / "print.css").write_text('h1 { color: red }\n@import url("x.css");\n', encoding="utf-8")
    code, warned = _check(root)
    assert code == 0
    assert sorted((name, line) for name, line, _ in warned) == [("01-limits.md", 5), ("print.css", 2)]
    assert all(text.startswith("warning: ") for _, _, text in warned)

    out = tmp_path / "out"
    built = run_report("build", root, "-o", out)
    assert built.returncode == 0, built.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    (root / CHAPTER).write_text((root / CHAPTER).read_text(encoding="utf-8") + "\nMore.\n", encoding="utf-8")
    strict = run_report("build", root, "-o", out, "--strict")
    assert strict.returncode == 1
    assert sorted((Path(m["path"]).name, int(m["line"])) for m in diagnostics_of(strict.stderr)) == [
        ("01-limits.md", 5),
        ("print.css", 2),
    ]
    assert "nothing was written" in strict.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert _check(root, "--strict")[0] == 1
