"""``report.toml``: a validated schema that reports every problem at once.

Unknown keys are rejected with the nearest known key as a suggestion, the way
mdBook's ``deny_unknown_fields`` and mkdocs' ``Config.validate`` do.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report.errors import ConfigError, Diagnostic, Diagnostics, Location

CONFIG_NAME = "report.toml"

# B5 and B6 are the JIS sizes Japanese printers mean (182×257 mm, 128×182 mm), not CSS's ISO B.
PAGE_SIZES = {"A4": "A4", "A5": "A5", "B5": "182mm 257mm", "B6": "128mm 182mm", "letter": "letter"}
PAGE_MILLIMETRES = {"A4": (210.0, 297.0), "A5": (148.0, 210.0), "B5": (182.0, 257.0), "B6": (128.0, 182.0),
                    "letter": (215.9, 279.4)}  # fmt: skip
FONT_STYLES = ("serif", "sans")
PDF_VARIANTS = ("pdf/ua-1", "pdf/a-1b", "pdf/a-2b", "pdf/a-3b", "pdf/a-2u", "pdf/a-3u", "none")
WRITING_MODES = ("horizontal-tb", "vertical-rl")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_LENGTH = re.compile(r"^\d+(\.\d+)?(pt|mm|cm|in|px|em|Q)$")
_POINTS_PER = {"pt": 1.0, "mm": 72 / 25.4, "cm": 72 / 2.54, "in": 72.0, "px": 0.75, "Q": 72 / 25.4 / 4}
_OUTPUT_NAME = re.compile(r"^[\w.-]+$")
BIBLIOGRAPHY_NAME = re.compile(r"^[^\0]+\.(json|ya?ml|bib)$", re.IGNORECASE)
CSL_NAME = re.compile(r"^[^\0]+\.csl$", re.IGNORECASE)
# The host ends at a "/": "https://example.org" would also allow https://example.org.evil.net/.
_URL_PREFIX = re.compile(r"^https?://[^/?#@\s]+/\S*$")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".qmd")
MATTERS = ("front", "body", "back")


@dataclass(frozen=True)
class PdfSettings:
    page_size: str = "A4"
    font: str = "serif"
    font_size: str = "10.5pt"
    margin: str = "20mm"
    variant: str = "pdf/ua-1"

    def points(self, length: str) -> float:
        """A validated length (see ``_LENGTH``) in points; ``em`` is the body font size."""
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", length).groups()  # type: ignore[union-attr]
        return float(number) * (self.points(self.font_size) if unit == "em" else _POINTS_PER[unit])


@dataclass(frozen=True)
class EpubSettings:
    writing_mode: str = "horizontal-tb"
    font: str = "serif"


@dataclass(frozen=True)
class Part:
    """A part of the book: a title over a run of chapters (a part title page in the PDF)."""

    title: str
    chapters: tuple[Path, ...]


@dataclass(frozen=True)
class Config:
    root: Path
    title: str
    language: str
    chapters: tuple[Path, ...]
    identifier: str
    output: str
    subtitle: str | None = None
    authors: tuple[str, ...] = ()
    date: dt.date | None = None
    # The information cut-off date (情報基準日): what the report states is true as of this day.
    cutoff_date: dt.date | None = None
    publisher: str | None = None
    edition: str | None = None
    pdf: PdfSettings = field(default_factory=PdfSettings)
    epub: EpubSettings = field(default_factory=EpubSettings)
    bibliography: Path | None = None  # CSL-JSON, CSL-YAML or BibTeX
    csl: Path | None = None  # a CSL style; else the builder's own for the language
    parts: tuple[Part, ...] = ()
    # What the chapter list says of chapters listed as tables: (path, "matter" or "title", value).
    listed: tuple[tuple[Path, str, str], ...] = ()
    fetch_allow: tuple[str, ...] = ()  # URL prefixes remote images may be downloaded from
    sources: tuple[Path, ...] = ()  # the files the settings were read from, when not report.toml

    @property
    def path(self) -> Path:
        """The file the settings come from: report.toml, else the book layout's own file."""
        return self.sources[0] if self.sources else self.root / CONFIG_NAME

    def matter_of(self, chapter: Path) -> str:
        """front, body or back, as the chapter list says (the front matter may say otherwise)."""
        return self._listed(chapter, "matter") or "body"

    def listed_title(self, chapter: Path) -> str | None:
        """The chapter's title as the chapter list gives it, for a chapter with no title of its own."""
        return self._listed(chapter, "title")

    def _listed(self, chapter: Path, key: str) -> str | None:
        return self._listed_by_chapter.get((chapter, key))

    @functools.cached_property
    def _listed_by_chapter(self) -> dict[tuple[Path, str], str]:
        """``listed`` by chapter and key, the first value of each: every chapter asks it at every
        build (a search of the whole list each time grew with the square of the chapters)."""
        by_chapter: dict[tuple[Path, str], str] = {}
        for path, key, value in self.listed:
            by_chapter.setdefault((path, key), value)
        return by_chapter

    def part_starting_at(self, chapter: Path) -> Part | None:
        return next((part for part in self.parts if part.chapters[0] == chapter), None)


Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Option:
    """One key of the schema: how to check it and what Python value it becomes."""

    check: Check
    required: bool = False


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


def _text_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of non-empty strings"
    return None


def _chapter_entry(item: Any) -> bool:
    """A chapter file, or ``{ file = "intro.md", matter = "front", title = "Introduction" }``:
    the chapter's place in the book and its title, when the chapter does not give them (a
    layout knows which chapters stand apart, and what its table of contents calls them)."""
    if isinstance(item, dict):
        return (
            "file" in item
            and set(item) <= {"file", "matter", "title"}
            and not _text(item["file"])
            and item.get("matter", "body") in MATTERS
            and not ("title" in item and _text(item["title"]))
        )
    return not _text(item)


def _chapter_list(value: Any) -> str | None:
    """Chapters, or parts: ``{ part = "Title", chapters = [chapters] }``."""
    expected = 'must be a list of chapter files and parts ({ part = "Title", chapters = ["file.md"] })'
    if not isinstance(value, list):
        return expected
    if not value:
        return "must list at least one file"
    for item in value:
        if isinstance(item, dict) and "part" in item:
            chapters = item.get("chapters")
            if set(item) != {"part", "chapters"} or _text(item["part"]) or not isinstance(chapters, list):
                return expected
            if not chapters or not all(_chapter_entry(chapter) for chapter in chapters):
                return expected
        elif not _chapter_entry(item):
            return expected
    return None


def _url_prefixes(value: Any) -> str | None:
    if _text_list(value) is None and all(_URL_PREFIX.match(v) for v in value):
        return None
    return 'must be a list of URL prefixes such as "https://example.org/images/" (scheme, host and "/")'


def _date(value: Any) -> str | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return None
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
    return "must be an ISO 8601 date such as 2024-12-20"


def _pattern(regex: re.Pattern[str], expected: str) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and regex.match(value):
            return None
        return f"must be {expected}"

    return check


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(f'"{c}"' for c in choices)

    return check


TOP_LEVEL: Mapping[str, Option] = {
    "title": Option(_text, required=True),
    "language": Option(_pattern(_LANGUAGE_TAG, "a BCP 47 language tag such as ja, en, zh-Hans"), required=True),
    "chapters": Option(_chapter_list, required=True),
    "subtitle": Option(_text),
    "authors": Option(_text_list),
    "date": Option(_date),
    "cutoff-date": Option(_date),
    "publisher": Option(_text),
    "edition": Option(_text),
    "identifier": Option(_text),
    "output": Option(_pattern(_OUTPUT_NAME, "a file base name of letters, digits, '.', '_' or '-'")),
    "bibliography": Option(_pattern(BIBLIOGRAPHY_NAME, "a .json, .yaml, .yml or .bib file of the report")),
    "csl": Option(_pattern(CSL_NAME, "a .csl file of the report")),
}
TABLES: Mapping[str, Mapping[str, Option]] = {
    "pdf": {
        "page-size": Option(_one_of(tuple(PAGE_SIZES))),
        "font": Option(_one_of(FONT_STYLES)),
        "font-size": Option(_pattern(_LENGTH, "a CSS length such as 10.5pt")),
        "margin": Option(_pattern(_LENGTH, "a CSS length such as 20mm")),
        "variant": Option(_one_of(PDF_VARIANTS)),
    },
    "epub": {
        "writing-mode": Option(_one_of(WRITING_MODES)),
        "font": Option(_one_of(FONT_STYLES)),
    },
    "fetch": {
        "allow": Option(_url_prefixes),
    },
}


def quoted(name: object) -> str:
    """``name`` in double quotes, line breaks and quotes escaped: a message stays one line."""
    return json.dumps(str(name), ensure_ascii=False)


def suggestion(name: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f'; did you mean "{close[0]}"?' if close else ""


class KeyLines:
    """Where each key (and each chapter file) is written in the settings' source, so that
    messages can point at it: report.toml's text, or a book layout's own files."""

    def __init__(
        self,
        keys: dict[tuple[str, str], int] | None = None,
        chapters: dict[str, int] | None = None,
        chapters_file: Path | None = None,
    ):
        self._lines = dict(keys or {})
        self._chapters = dict(chapters or {})
        self.chapters_file = chapters_file  # where the chapters are listed, if not with the other keys
        self.table = ""  # in TOML text, the table the text ends in

    @classmethod
    def of_toml(cls, text: str) -> KeyLines:
        lines = cls()
        table = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if header := re.match(r"^\[\s*([\w.-]+)\s*\]", line):
                table = header.group(1)
                lines._lines.setdefault(("", table), number)
            elif key := re.match(r"^([\w.-]+|\"[^\"]+\")\s*=", line):
                name = key.group(1).strip('"')
                lines._lines.setdefault((table, name), number)
                if "." in name and not key.group(1).startswith('"'):  # a dotted key: pdf.page-size = …
                    dotted_table, _, dotted_key = name.rpartition(".")
                    lines._lines.setdefault(("", dotted_table), number)
                    lines._lines.setdefault((dotted_table, dotted_key), number)
            for string in re.findall(r'"([^"\\]*)"', line):
                lines._chapters.setdefault(string, number)
        lines.table = table  # the table the text ends in
        return lines

    def first(self, table: str, key: str) -> int | None:
        return self._lines.get((table, key))

    def line(self, table: str, key: str) -> int:
        """The key's line, else its table's line (inline tables), else the first line: never none,
        so that every message reads ``path:line: message``."""
        return self._lines.get((table, key)) or self._lines.get(("", table)) or 1

    def chapter(self, name: str) -> int:
        return self._chapters.get(name) or self.line("", "chapters")


def _duplicate(text: str, line: int) -> str | None:
    """What a line that TOML rejects sets again (tomllib's message does not name it): the key or
    table, and the line that first set it; None if the line sets nothing set before."""
    lines = text.splitlines()
    raw = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    before = KeyLines.of_toml("\n".join(lines[: line - 1]))
    if header := re.match(r"^\[\s*([\w.-]+)\s*\]", raw):
        table, key, kind = "", header.group(1), "table"
    elif assignment := re.match(r"^([\w.-]+|\"[^\"]+\")\s*=", raw):
        table, key, kind = before.table, assignment.group(1).strip('"'), "key"
    else:
        return None
    if (first := before.first(table, key)) is None:
        return None
    name = f"{table}.{key}" if table else key
    return f'{kind} "{name}" is set twice (first on line {first})'


def _validate_table(
    values: Mapping[str, Any],
    schema: Mapping[str, Option],
    table: str,
    lines: KeyLines,
    path: Path,
    diagnostics: Diagnostics,
) -> None:
    prefix = f"[{table}] " if table else ""
    for key, value in values.items():
        if table == "" and key in TABLES:
            continue
        option = schema.get(key)
        if option is None:
            known = list(schema) + ([] if table else list(TABLES))
            diagnostics.error(
                path, lines.line(table, key), f"{prefix}unknown key {quoted(key)}{suggestion(key, known)}"
            )
        elif problem := option.check(value):
            diagnostics.error(path, lines.line(table, key), f'{prefix}"{key}" {problem}')
    for key, option in schema.items():
        if option.required and key not in values:
            diagnostics.error(path, lines.line("", table), f'{prefix}missing required key "{key}"')


def _derived_identifier(title: str, authors: tuple[str, ...], edition: str | None) -> str:
    """A stable identifier: the same metadata always gives the same UUID."""
    seed = "\n".join((title, *authors, edition or ""))
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'report:' + seed)}"


def _chapter_paths(
    root: Path,
    source: Path,
    entries: list[Any],
    lines: KeyLines,
    diagnostics: Diagnostics,
    seen: dict[Path, dict[str, str]],
) -> tuple[Path, ...]:
    """The chapters' paths, checked; ``seen`` gets each one with what the list says of it."""
    paths: list[Path] = []
    source = lines.chapters_file or source
    for entry in entries:
        name, listed = (entry["file"], entry) if isinstance(entry, dict) else (entry, {})
        path = (root / name).resolve()
        line = lines.chapter(name)
        if not path.is_relative_to(root):
            diagnostics.error(source, line, f"chapter {quoted(name)} is outside the report folder")
        elif path.suffix.lower() not in MARKDOWN_SUFFIXES:
            diagnostics.error(source, line, f"chapter {quoted(name)} is not a Markdown (.md) file")
        elif not path.is_file():
            diagnostics.error(source, line, f"chapter file {quoted(name)} does not exist")
        elif path in seen:
            diagnostics.error(source, line, f"chapter {quoted(name)} is listed twice")
        else:
            seen[path] = {key: value.strip() for key, value in listed.items() if key != "file"}
            paths.append(path)
    return tuple(paths)


def _chapters_and_parts(
    root: Path, source: Path, entries: list[Any], lines: KeyLines, diagnostics: Diagnostics
) -> tuple[tuple[Path, ...], tuple[Part, ...], tuple[tuple[Path, str, str], ...]]:
    """The chapters in order, the parts, and what the list says of chapters (matter, title)."""
    seen: dict[Path, dict[str, str]] = {}
    parts = []
    for entry in entries:
        if isinstance(entry, dict) and "part" in entry:
            chapters = _chapter_paths(root, source, entry["chapters"], lines, diagnostics, seen)
            if chapters:
                parts.append(Part(entry["part"].strip(), chapters))
        else:
            _chapter_paths(root, source, [entry], lines, diagnostics, seen)
    listed = tuple((path, key, value) for path, values in seen.items() for key, value in values.items())
    return tuple(seen), tuple(parts), listed


def _settings(cls: type[Any], values: Mapping[str, Any]) -> Any:
    return cls(**{key.replace("-", "_"): value for key, value in values.items()})


def load_config(root: Path) -> Config:
    """Read and validate ``root/report.toml`` (else the book layout the folder has, see
    :mod:`report.layouts`); raise ConfigError listing every problem."""
    from report.layouts import read_layout  # the layouts give values for this one schema

    root = root.resolve()
    path = root / CONFIG_NAME
    if not path.is_file() and (layout := read_layout(root)) is not None:
        return config_from_values(root, layout.values, layout.lines, layout.sources)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([_single(path, f"no {CONFIG_NAME} here: is this a report folder?")]) from None
    except UnicodeDecodeError as error:
        raise ConfigError([_single(path, f"not valid UTF-8 ({error.reason})")]) from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # ``lineno`` exists from Python 3.14 on; before, the line is only in the message.
        at = re.search(r" \(at (?:line (\d+), column \d+|end of document)\)$", str(error))
        line = getattr(error, "lineno", None) or (int(at.group(1)) if at and at.group(1) else len(text.splitlines()))
        message = _duplicate(text, line) or (str(error)[: at.start()] if at else str(error))
        raise ConfigError([_single(path, f"invalid TOML: {message}", line)]) from None
    return config_from_values(root, values, KeyLines.of_toml(text))


def config_from_values(
    root: Path, values: Mapping[str, Any], lines: KeyLines, sources: tuple[Path, ...] = ()
) -> Config:
    """The validated Config of settings read from report.toml or from a book layout's files
    (``sources``, where messages point)."""
    path = sources[0] if sources else root / CONFIG_NAME
    diagnostics = Diagnostics()
    _validate_table(values, TOP_LEVEL, "", lines, path, diagnostics)
    for table, schema in TABLES.items():
        if table in values:
            if isinstance(values[table], dict):
                _validate_table(values[table], schema, table, lines, path, diagnostics)
            else:
                diagnostics.error(path, lines.line("", table), f'"{table}" must be a table ([{table}])')
    chapters: tuple[Path, ...] = ()
    parts: tuple[Part, ...] = ()
    listed: tuple[tuple[Path, str, str], ...] = ()
    if _chapter_list(values.get("chapters")) is None:
        chapters, parts, listed = _chapters_and_parts(root, path, values["chapters"], lines, diagnostics)
    date, cutoff_date = _as_date(values.get("date")), _as_date(values.get("cutoff-date"))
    if date and cutoff_date and cutoff_date > date:
        diagnostics.error(path, lines.line("", "cutoff-date"), '"cutoff-date" must not be later than "date"')
    files = {key: _report_file(root, key, values, lines, diagnostics) for key in ("bibliography", "csl")}
    diagnostics.raise_if_errors(ConfigError)

    authors = tuple(values.get("authors", ()))
    return Config(
        root=root,
        title=values["title"],
        language=values["language"],
        chapters=chapters,
        identifier=values.get("identifier") or _derived_identifier(values["title"], authors, values.get("edition")),
        output=values.get("output") or _default_output_name(root),
        subtitle=values.get("subtitle"),
        authors=authors,
        date=date,
        cutoff_date=cutoff_date,
        publisher=values.get("publisher"),
        edition=values.get("edition"),
        pdf=_settings(PdfSettings, values.get("pdf", {})),
        epub=_settings(EpubSettings, values.get("epub", {})),
        bibliography=files["bibliography"],
        csl=files["csl"],
        parts=parts,
        listed=listed,
        fetch_allow=tuple(values.get("fetch", {}).get("allow", ())),
        sources=sources,
    )


def _as_date(value: Any) -> dt.date | None:
    """A date key's value, if it is a valid one (TOML dates are dates already; strings are ISO 8601)."""
    if _date(value) is not None:
        return None
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _report_file(
    root: Path, key: str, values: Mapping[str, Any], lines: KeyLines, diagnostics: Diagnostics
) -> Path | None:
    """The file a key names (checked above to be a string of the right kind), inside the report."""
    name = values.get(key)
    if not isinstance(name, str) or TOP_LEVEL[key].check(name):
        return None
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        diagnostics.error(root / CONFIG_NAME, lines.line("", key), f"{key} {quoted(name)} is outside the report folder")
    elif not path.is_file():
        diagnostics.error(root / CONFIG_NAME, lines.line("", key), f"{key} file {quoted(name)} does not exist")
    else:
        return path
    return None


def _default_output_name(root: Path) -> str:
    name = re.sub(r"[^\w.-]+", "-", root.name).strip("-.")
    return name or "report"


def _single(path: Path, message: str, line: int | None = None) -> Diagnostic:
    return Diagnostic(Location(path, line), message)
