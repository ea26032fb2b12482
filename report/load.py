"""Stage 1 — load: the validated config and every chapter's front matter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from report.config import load_config, quoted, suggestion
from report.errors import Diagnostics, SourceError
from report.limits import MAX_CHAPTER_BYTES
from report.model import Matter, Project, SourceChapter

FRONT_MATTER_KEYS = ("title", "id", "matter", "class")
ID_PATTERN = re.compile(r"^[A-Za-z][\w-]*$")
# Placeholders of the parse stage live in the Private Use Area; authors' text may not use them.
RESERVED_CHARACTERS = re.compile("[\ue000-\ue00f]")
_FENCE = re.compile(r"^---[ \t]*$")


def load_project(root: Path) -> Project:
    config = load_config(root)
    diagnostics = Diagnostics()
    chapters = [_load_chapter(path, diagnostics) for path in config.chapters]
    seen: dict[str, Path] = {}
    for chapter in chapters:
        if chapter is None:
            continue
        if chapter.id in seen:
            diagnostics.error(chapter.path, 1, f'chapter id "{chapter.id}" is already used by {seen[chapter.id].name}')
        seen[chapter.id] = chapter.path
    diagnostics.raise_if_errors(SourceError)
    return Project(config=config, chapters=tuple(c for c in chapters if c is not None))


def default_chapter_id(path: Path) -> str:
    """``01-background.md`` → ``background``: ordering digits are not part of the id."""
    stem = re.sub(r"^[\d_.-]+", "", path.stem)
    slug = re.sub(r"[^\w-]+", "-", stem).strip("-")
    return slug if slug and ID_PATTERN.match(slug) else f"chapter-{re.sub(r'[^0-9A-Za-z]+', '', path.stem) or 'x'}"


def _load_chapter(path: Path, diagnostics: Diagnostics) -> SourceChapter | None:
    if (size := path.stat().st_size) > MAX_CHAPTER_BYTES:
        diagnostics.error(
            path, 1, f"chapter is {size:,} bytes; a chapter may be at most {MAX_CHAPTER_BYTES:,} bytes (4 MB): split it"
        )
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        diagnostics.error(path, line, f"not valid UTF-8 (byte 0x{path.read_bytes()[error.start]:02x})")
        return None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if reserved := RESERVED_CHARACTERS.search(text):
        line = text[: reserved.start()].count("\n") + 1
        diagnostics.error(path, line, f"character U+{ord(reserved.group()):04X} is reserved and may not be used")
        return None
    meta, body, first_line = _split_front_matter(path, text, diagnostics)
    if meta is None:
        return None
    problems_before = len(diagnostics.errors)
    for key in meta:
        if key not in FRONT_MATTER_KEYS:
            diagnostics.error(
                path,
                _front_matter_line(text, key),
                f"unknown front matter key {quoted(key)}{suggestion(str(key), FRONT_MATTER_KEYS)}",
            )
    title = meta.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        diagnostics.error(path, _front_matter_line(text, "title"), '"title" must be a non-empty string')
    chapter_id = meta.get("id", default_chapter_id(path))
    if not isinstance(chapter_id, str) or not ID_PATTERN.match(chapter_id):
        diagnostics.error(
            path,
            _front_matter_line(text, "id"),
            '"id" must start with a letter and use only letters, digits, "-" or "_"',
        )
    matter = meta.get("matter", "body")
    if not isinstance(matter, str) or matter not in {m.value for m in Matter}:
        diagnostics.error(path, _front_matter_line(text, "matter"), '"matter" must be one of "front", "body", "back"')
    classes = meta.get("class", "")
    if not isinstance(classes, str) or not all(ID_PATTERN.match(c) for c in classes.split()):
        diagnostics.error(path, _front_matter_line(text, "class"), '"class" must be space-separated class names')
    if len(diagnostics.errors) > problems_before:
        return None
    return SourceChapter(
        path=path,
        id=chapter_id,
        title=title.strip() if isinstance(title, str) else None,
        matter=Matter(matter),
        classes=tuple(classes.split()),
        markdown=body,
        first_line=first_line,
    )


def _split_front_matter(path: Path, text: str, diagnostics: Diagnostics) -> tuple[dict[str, Any] | None, str, int]:
    lines = text.split("\n")
    if not lines or not _FENCE.match(lines[0]):
        return {}, text, 1
    end = next((i for i in range(1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        diagnostics.error(path, 1, "front matter opened with --- is never closed")
        return None, text, 1
    try:
        # safe_load builds plain data only: no tags, no Python objects.
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(error, "problem", None) or "invalid YAML"
        diagnostics.error(path, line, f"front matter: {problem}")
        return None, text, 1
    if not isinstance(meta, dict):
        diagnostics.error(path, 2, "front matter must be a mapping of keys to values")
        return None, text, 1
    return meta, "\n".join(lines[end + 1 :]), end + 2


def _front_matter_line(text: str, key: object) -> int:
    """The line of ``key`` in the front matter (never in the body), else the front matter's first line."""
    pattern = re.compile(rf"""^['"]?{re.escape(str(key))}['"]?\s*:""")
    for number, line in enumerate(text.split("\n")[1:], start=2):
        if _FENCE.match(line):
            break
        if pattern.match(line):
            return number
    return 2
