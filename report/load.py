"""Stage 1 — load: the validated config and every chapter's front matter."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from report.config import Config, load_config, quoted
from report.errors import Diagnostics, SourceError
from report.limits import MAX_CHAPTER_BYTES
from report.model import Matter, Project, SourceChapter

FRONT_MATTER_KEYS = ("title", "id", "matter", "class", "bibliography")
ID_PATTERN = re.compile(r"^[A-Za-z][\w-]*$")
# Placeholders of the parse stage live in the Private Use Area; authors' text may not use them.
RESERVED_CHARACTERS = re.compile("[\ue000-\ue00f]")
_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)  # a front matter fence: a line of its own
# What may stand before a chapter's "# Title" and prints nothing: blank lines, HTML comments
# (linter directives), link reference definitions.
_SILENT_PREAMBLE = re.compile(
    r"(?:[ \t]*\n|[ \t]*<!--.*?-->[ \t]*(?:\n|$)|[ \t]{0,3}\[[^\]\n]+\]:[^\n]*(?:\n|$))*", re.DOTALL
)
_TITLE_ID = re.compile(r"[ \t]{0,3}#[ \t]+[^\n]*?\{[^{}\n]*?#([^\s{}.#]+)[^{}\n]*\}[ \t]*(?:\n|$)")
# A folder's own page: dropped from the chapter's path when its id is made of it.
_FOLDER_PAGES = {"readme", "index", "_index"}

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: ten times as fast


def load_project(root: Path, diagnostics: Diagnostics | None = None, config: Config | None = None) -> Project:
    """The config (read, unless given) and the chapters' front matter. Errors are raised;
    warnings (unknown front matter keys) go to ``diagnostics`` when given."""
    config = config if config is not None else load_config(root)
    own = Diagnostics()
    folder = _common_folder(config.chapters)
    derived: set[str] = set()  # ids made of paths so far: a path that slugs the same gets another
    chapters = [_load_chapter(path, folder, own, derived, config) for path in config.chapters]
    if diagnostics is not None:
        diagnostics.extend(own.warnings)
    diagnostics = own
    seen: dict[str, Path] = {}
    for chapter in chapters:
        if chapter is None:
            continue
        if chapter.id in seen:
            diagnostics.error(chapter.path, 1, f'chapter id "{chapter.id}" is already used by {seen[chapter.id].name}')
        seen[chapter.id] = chapter.path
    diagnostics.raise_if_errors(SourceError)
    return Project(config=config, chapters=tuple(c for c in chapters if c is not None))


def load_chapter(path: Path, config: Config) -> SourceChapter | None:
    """One chapter of the config as :func:`load_project` loads it, but alone (an id made of its
    path is its path's, whatever other paths slug to); None if it has an error."""
    own = Diagnostics()
    chapter = _load_chapter(path, _common_folder(config.chapters), own, set(), config)
    return chapter if not own.errors else None


def default_chapter_id(path: Path) -> str:
    """A chapter's path inside the folder of all chapters, slugged: ``01-background.md`` →
    ``background`` (ordering digits are not part of the id), ``basic/variables/README.md`` →
    ``basic-variables`` (a folder's README or index page is the folder)."""
    parts = [*path.parent.parts, path.stem]
    if len(parts) > 1 and parts[-1].lower() in _FOLDER_PAGES:
        parts.pop()
    slugs = [re.sub(r"[^\w-]+", "-", re.sub(r"^[\d_.-]+", "", part)).strip("-") for part in parts]
    slug = "-".join(part for part in slugs if part)
    if slugs[-1] and ID_PATTERN.match(slug):
        return slug
    ascii_only = re.sub(r"[^0-9A-Za-z]+", "", "-".join(parts))
    return f"chapter-{ascii_only}" if ascii_only else "chapter"


def _unused(chapter_id: str, taken: set[str]) -> str:
    """``chapter_id``, or ``chapter_id-2``, ``-3`` … when an earlier chapter's path gave it already
    (``はじめに/README.md`` and ``おわりに/README.md`` both slug to ``chapter``)."""
    if chapter_id not in taken:
        return chapter_id
    return next(f"{chapter_id}-{n}" for n in itertools.count(2) if f"{chapter_id}-{n}" not in taken)


def _common_folder(paths: Sequence[Path]) -> Path:
    """The folder holding every chapter: chapter ids are made of paths inside it."""
    return Path(os.path.commonpath([path.parent for path in paths])) if paths else Path()


def title_id(markdown: str) -> tuple[str, int] | None:
    """The ``{#id}`` on the chapter's ``# Title`` line, when the title is the chapter's first
    text, and the line it is on (0 for the first line of ``markdown``)."""
    preamble = _SILENT_PREAMBLE.match(markdown)
    match = _TITLE_ID.match(markdown, preamble.end() if preamble else 0)
    return (match.group(1), markdown.count("\n", 0, match.start())) if match else None


def _load_chapter(
    path: Path, folder: Path, diagnostics: Diagnostics, derived: set[str], config: Config
) -> SourceChapter | None:
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
    extra = {str(key): _plain(value) for key, value in meta.items() if key not in FRONT_MATTER_KEYS}
    for key in extra:
        diagnostics.warn(
            path,
            _front_matter_line(text, key),
            f"front matter key {quoted(key)} is not one the builder knows: kept as the chapter's metadata"
            f"{_typo_of(key)}",
        )
    title = meta.get("title", config.listed_title(path))  # a layout's table of contents names it
    if title is not None and (not isinstance(title, str) or not title.strip()):
        diagnostics.error(path, _front_matter_line(text, "title"), '"title" must be a non-empty string')
    if "id" in meta:
        chapter_id, id_line = meta["id"], _front_matter_line(text, "id")
    elif written := title_id(body):
        chapter_id, id_line = written[0], first_line + written[1]
    else:
        chapter_id, id_line = _unused(default_chapter_id(path.relative_to(folder)), derived), 1
        derived.add(chapter_id)
    if not isinstance(chapter_id, str) or not ID_PATTERN.match(chapter_id):
        diagnostics.error(path, id_line, '"id" must start with a letter and use only letters, digits, "-" or "_"')
    matter = meta.get("matter", config.matter_of(path))
    if not isinstance(matter, str) or matter not in {m.value for m in Matter}:
        diagnostics.error(path, _front_matter_line(text, "matter"), '"matter" must be one of "front", "body", "back"')
    classes = meta.get("class", "")
    if not isinstance(classes, str) or not all(ID_PATTERN.match(c) for c in classes.split()):
        diagnostics.error(path, _front_matter_line(text, "class"), '"class" must be space-separated class names')
    bibliography = meta.get("bibliography", False)
    if not isinstance(bibliography, bool):
        diagnostics.error(path, _front_matter_line(text, "bibliography"), '"bibliography" must be true or false')
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
        meta=extra,
        bibliography=bibliography,
    )


def _typo_of(key: str) -> str:
    """``titel`` is most likely ``title`` mistyped; ``author`` is an author, not ``matter``."""
    close = difflib.get_close_matches(key, FRONT_MATTER_KEYS, n=1, cutoff=0.8)
    return f'; did you mean "{close[0]}"?' if close else ""


def _plain(value: Any) -> Any:
    """Front matter data as plain JSON values (dates as ISO 8601 text), to keep and to cache."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(item) for item in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _split_front_matter(path: Path, text: str, diagnostics: Diagnostics) -> tuple[dict[str, Any] | None, str, int]:
    """The front matter, the body and the body's first line. (The text is searched, not split
    into lines: most of it is the body.)"""
    opening = _FENCE.match(text)
    if opening is None:
        return {}, text, 1
    closing = _FENCE.search(text, opening.end() + 1)
    if opening.end() == len(text) or closing is None:
        diagnostics.error(path, 1, "front matter opened with --- is never closed")
        return None, text, 1
    end = text.count("\n", 0, closing.start())  # the closing line's index
    try:
        meta = _yaml_front_matter(text[opening.end() + 1 : closing.start() - 1])
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(error, "problem", None) or "invalid YAML"
        diagnostics.error(path, line, f"front matter: {problem}")
        return None, text, 1
    if not isinstance(meta, dict):
        diagnostics.error(path, 2, "front matter must be a mapping of keys to values")
        return None, text, 1
    return meta, text[closing.end() + 1 :], end + 2


@functools.lru_cache(maxsize=4096)
def _yaml_front_matter(front_matter: str) -> Any:
    """The front matter's data, read once in a process for each text (the build server reads
    the chapters between builds: the builds it forks find them read; 8 ms of 15 a build of 180
    chapters). Only read, never changed, by its callers."""
    # A safe loader builds plain data only: no tags, no Python objects. LibYAML's, where
    # PyYAML has it, reads front matter ten times as fast (0.4 s a build of 180 chapters).
    return yaml.load(front_matter, Loader=YAML_LOADER) or {}


def _front_matter_line(text: str, key: object) -> int:
    """The line of ``key`` in the front matter (never in the body), else the front matter's first line."""
    pattern = re.compile(rf"""^['"]?{re.escape(str(key))}['"]?\s*:""")
    for number, line in enumerate(text.split("\n")[1:], start=2):
        if _FENCE.match(line):
            break
        if pattern.match(line):
            return number
    return 2
