"""Books written for other tools, read as they are: a folder without ``report.toml`` but
with an mdBook (``book.toml`` + ``SUMMARY.md``), an MkDocs site (``mkdocs.yml``), a GitBook
or HonKit book (``book.json`` and/or ``SUMMARY.md``) or a Quarto book (``_quarto.yml``).

Each reader turns the tool's files into the values ``report.toml`` would hold (chapter
order, parts, title, language, authors), which :func:`report.config.config_from_values`
validates like any report.toml: there is one schema. What a reader does not understand in
those files (themes, plugins, HTML outputs) is ignored: they configure the other tool.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from markdown_it import MarkdownIt

from report.config import MARKDOWN_SUFFIXES, KeyLines
from report.errors import ConfigError, Diagnostic, Location

_APPENDICES = {"ja": "付録", "zh": "附录", "ko": "부록"}
_KANA = re.compile("[\u3041-\u30ff]")
_INDEX_NAMES = ("index.md", "README.md", "readme.md")
_TITLE_WITHIN = 8192  # characters: a chapter's title comes first (after comments)
# The titles found, by a digest of the beginning they were found in: the config is read at every
# build, and a book of another tool lists its chapters there by their titles (a Markdown parse
# each: 0.14 s of each build of a 105-chapter mdBook). The build server's builds find those it read.
_TITLES: OrderedDict[bytes, str | None] = OrderedDict()
_TITLES_KEPT = 4096
# The last summaries parsed, by a digest of their text, for the same reason: the 104-chapter
# SUMMARY.md of rust-lang-ja/book-ja took 13 ms of every build to parse. (Their links are made
# paths anew at each build: the files they point to may have come or gone.)
_SUMMARIES: OrderedDict[bytes, list[Any]] = OrderedDict()
_SUMMARIES_KEPT = 4
_COMMONMARK = MarkdownIt("commonmark")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Layout:
    """A book layout's settings as report.toml values, with where each was read."""

    tool: str
    values: dict[str, Any]
    lines: KeyLines
    sources: tuple[Path, ...]


@dataclass
class _Entries:
    """Chapter files (relative to the report folder) and parts, as report.toml's ``chapters``."""

    root: Path
    items: list[Any] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    _part: list[Any] | None = None
    _seen: set[str] = field(default_factory=set)

    def chapter(self, name: str, line: int, matter: str = "", title: str = "") -> None:
        """A chapter file; ``matter`` front or back for those the book sets apart (unnumbered);
        ``title`` what the table of contents calls it, kept for a chapter without a ``#`` title."""
        if name in self._seen:  # the same file linked again (at another anchor) is one chapter
            return
        self._seen.add(name)
        self.lines.setdefault(name, line)
        listed = {"matter": matter} if matter else {}
        if title and _first_title(self.root / name) is None:
            listed["title"] = title
        entry = {"file": name, **listed} if listed else name
        (self._part if self._part is not None else self.items).append(entry)

    def start_part(self, title: str) -> None:
        self._part = []
        self.items.append({"part": title, "chapters": self._part})

    def end_part(self) -> None:
        self._part = None

    def finished(self) -> list[Any]:
        """Parts that got no chapter (a heading over nothing, drafts only) are dropped."""
        return [item for item in self.items if not isinstance(item, dict) or item.get("chapters", True)]


def read_layout(root: Path) -> Layout | None:
    """The settings of the first layout ``root`` has (see :func:`layout_file`); None when it has none."""
    found = layout_file(root)
    return _READERS[found.name](root, found) if found is not None else None


def layout_file(root: Path) -> Path | None:
    """The file that makes ``root`` a book of another tool, by the order of ``_READERS``."""
    return next((root / name for name in _READERS if (root / name).is_file()), None)


# --- mdBook -------------------------------------------------------------------


def _mdbook(root: Path, path: Path) -> Layout:
    text = _read_text(path)
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Diagnostic(Location(path, 1), f"invalid TOML: {error}")]) from None
    book = _mapping(settings.get("book"))
    source = root / _string(book.get("src")) if _string(book.get("src")) else root / "src"
    summary = source / "SUMMARY.md"
    entries = _summary_entries(root, source, summary)
    values = _values(
        title=book.get("title"),
        language=book.get("language") or _guess_language(root, entries),
        authors=book.get("authors") or book.get("author"),  # some books write "author", which mdBook ignores
        subtitle=book.get("description"),
        chapters=entries.finished(),
    )
    keys = {("", "title"): _line_of(text, "title"), ("", "language"): _line_of(text, "language")}
    return _layout("mdBook", values, path, keys, entries, summary)


# --- GitBook / HonKit ---------------------------------------------------------


def _gitbook(root: Path, path: Path) -> Layout:
    settings: dict[str, Any] = {}
    text = ""
    if path.name == "book.json":
        text = _read_text(path)
        try:
            settings = _mapping(json.loads(text))
        except json.JSONDecodeError as error:
            raise ConfigError([Diagnostic(Location(path, error.lineno), f"invalid JSON: {error.msg}")]) from None
    source = (root / _string(settings.get("root"))).resolve() if _string(settings.get("root")) else root
    structure = _mapping(settings.get("structure"))
    summary = source / (_string(structure.get("summary")) or "SUMMARY.md")
    readme = _string(structure.get("readme")) or "README.md"
    entries = _summary_entries(root, source, summary)
    if (source / readme).is_file():
        # GitBook's first page is the readme, listed in the summary or not.
        name = _relative(root, source / readme)
        if name not in entries.lines:
            entries.items.insert(0, name)
            entries.lines[name] = 1
    values = _values(
        title=settings.get("title") or _first_title(source / readme) or root.name,
        language=settings.get("language") or _guess_language(root, entries),
        authors=settings.get("author"),
        subtitle=settings.get("description"),
        chapters=entries.finished(),
    )
    keys = {("", "title"): _line_of(text, '"title"'), ("", "language"): _line_of(text, '"language"')}
    return _layout("GitBook", values, path, keys, entries, summary)


# --- SUMMARY.md (mdBook, GitBook) -----------------------------------------------


def _summary_entries(root: Path, source: Path, summary: Path) -> _Entries:
    """The chapters a SUMMARY.md links to, in order. A heading after the first block (``# Part``
    in mdBook, ``## Part`` in GitBook) starts a part; a link outside the lists after them
    (mdBook's suffix chapters) or a ``---`` separator ends it. Links outside the lists are
    unnumbered, as mdBook has them: front matter before the lists, back matter after them.
    Draft chapters (``[Title]()``) and links to the web are skipped."""
    entries = _Entries(root)
    if not summary.is_file():
        raise ConfigError([Diagnostic(Location(summary, None), "the book has no SUMMARY.md listing its chapters")])
    tokens = _summary_tokens(_read_text(summary))
    list_depth = 0
    lists_seen = False
    for index, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
            lists_seen = True
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif token.type == "heading_open" and token.tag in ("h1", "h2"):
            if any(not _is_comment(earlier) for earlier in tokens[:index]):  # else the summary's own title
                entries.start_part(_inline_text(tokens[index + 1]))
        elif token.type == "hr":
            entries.end_part()
        elif token.type == "inline" and tokens[index - 1].type != "heading_open":
            line = token.map[0] + 1 if token.map else 1
            matter = "" if list_depth else "back" if lists_seen else "front"
            for href, title in _links(token):
                if matter == "back":  # a suffix chapter stands outside the parts
                    entries.end_part()
                if (name := _chapter_name(root, summary.parent, href)) is not None:
                    entries.chapter(name, line, matter, title)
    return entries


def _summary_tokens(text: str) -> list[Any]:
    """The summary's tokens, parsed once in a process (see _SUMMARIES): read, not changed."""
    return _once_in_process(_SUMMARIES, _SUMMARIES_KEPT, text, _COMMONMARK.parse)


def _once_in_process(kept: OrderedDict[bytes, _T], limit: int, text: str, parse: Callable[[str], _T]) -> _T:
    """``parse(text)``, kept in ``kept`` by a digest of ``text`` (its ``limit`` most recent)."""
    key = hashlib.blake2b(text.encode(), digest_size=16).digest()
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    made = kept[key] = parse(text)
    if len(kept) > limit:
        kept.popitem(last=False)
    return made


def _links(inline: Any) -> Iterator[tuple[str, str]]:
    """Each link's target and text."""
    target, text = None, ""
    for child in inline.children or ():
        if child.type == "link_open":
            target, text = str(child.attrGet("href") or ""), ""
        elif child.type == "link_close" and target is not None:
            yield target, text.strip()
            target = None
        elif child.type in ("text", "code_inline"):
            text += child.content


def _inline_text(inline: Any) -> str:
    return "".join(child.content for child in inline.children or () if child.type in ("text", "code_inline")).strip()


# --- MkDocs -------------------------------------------------------------------


class _TolerantLoader(yaml.SafeLoader):
    """Plain data only, like safe_load; a tag it does not know (``!!python/name:…``,
    ``!ENV``, which mkdocs.yml files use for plugins) reads as nothing instead of failing."""


_TolerantLoader.add_constructor(None, lambda _loader, _node: None)


def _mkdocs(root: Path, path: Path) -> Layout:
    text = _read_text(path)
    settings = _yaml(path, text)
    docs = root / (_string(settings.get("docs_dir")) or "docs")
    theme = _mapping(settings.get("theme"))
    entries = _Entries(root)
    nav = settings.get("nav")
    if isinstance(nav, list) and nav:
        _nav_entries(root, docs, nav, entries, text, top=True)
    else:
        for file in _markdown_files(docs):
            entries.chapter(_relative(root, file), 1)
    values = _values(
        title=settings.get("site_name"),
        language=theme.get("language") or theme.get("locale") or _guess_language(root, entries),
        authors=settings.get("site_author"),
        subtitle=settings.get("site_description"),
        chapters=entries.finished(),
    )
    keys = {("", "title"): _line_of(text, "site_name"), ("", "language"): _line_of(text, "language")}
    return _layout("MkDocs", values, path, keys, entries)


def _nav_entries(root: Path, docs: Path, items: list[Any], entries: _Entries, text: str, top: bool) -> None:
    """MkDocs' ``nav``: a file, ``Title: file``, or ``Section: [items]``. A top-level section
    is a part; deeper sections are only their chapters, in order (a book has one level of parts)."""
    for item in items:
        pairs = list(item.items()) if isinstance(item, dict) else [(None, item)]
        for title, value in pairs:
            if isinstance(value, list):
                if top and title is not None:
                    entries.start_part(str(title))
                _nav_entries(root, docs, value, entries, text, top=False)
                if top:
                    entries.end_part()
            elif isinstance(value, str) and (name := _chapter_name(root, docs, value)) is not None:
                entries.chapter(name, _line_of(text, value), title=str(title or ""))


def _markdown_files(folder: Path) -> list[Path]:
    """Every Markdown file under ``folder`` as MkDocs orders them without a nav: a folder's
    index page, its other files, then its subfolders."""

    def order(file: Path) -> tuple[tuple[str, ...], bool, str]:
        parts = file.relative_to(folder).parts
        return (parts[:-1], parts[-1] not in _INDEX_NAMES, parts[-1])

    files = [
        file
        for file in folder.rglob("*")
        if file.suffix in MARKDOWN_SUFFIXES
        and file.is_file()
        and not any(part.startswith((".", "_")) for part in file.relative_to(folder).parts)
    ]
    return sorted(files, key=order)


# --- Quarto -------------------------------------------------------------------


def _quarto(root: Path, path: Path) -> Layout:
    text = _read_text(path)
    settings = _yaml(path, text)
    book = _mapping(settings.get("book"))
    language = _string(settings.get("lang"))
    entries = _Entries(root)
    chapters = book.get("chapters")
    for item in chapters if isinstance(chapters, list) else ():
        if isinstance(item, dict) and isinstance(item.get("chapters"), list):
            entries.start_part(_quarto_part_title(root, str(item.get("part") or "")))
            for name in item["chapters"]:
                _quarto_chapter(root, name, entries, text)
            entries.end_part()
        else:
            # Quarto's index page is the preface, unnumbered.
            front = isinstance(item, str) and Path(item).stem == "index"
            _quarto_chapter(root, item, entries, text, "front" if front else "")
    appendices = book.get("appendices")
    if isinstance(appendices, list) and appendices:
        entries.start_part(_APPENDICES.get((language or "en").split("-")[0], "Appendices"))
        for name in appendices:
            _quarto_chapter(root, name, entries, text, "back")
        entries.end_part()
    date = book.get("date") or settings.get("date")
    values = _values(
        title=book.get("title") or settings.get("title"),
        language=language or _guess_language(root, entries),
        authors=book.get("author") or settings.get("author"),
        subtitle=book.get("subtitle"),
        chapters=entries.finished(),
    )
    if date is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):  # not "today", "last-modified"
        values["date"] = str(date)
    keys = {("", "title"): _line_of(text, "title"), ("", "language"): _line_of(text, "lang")}
    return _layout("Quarto", values, path, keys, entries)


def _quarto_chapter(root: Path, item: Any, entries: _Entries, text: str, matter: str = "") -> None:
    if isinstance(item, str) and (name := _chapter_name(root, root, item)) is not None:
        entries.chapter(name, _line_of(text, item), matter)


def _quarto_part_title(root: Path, part: str) -> str:
    """A part is a title, or a file whose ``#`` title is the part's."""
    if Path(part).suffix in MARKDOWN_SUFFIXES and (root / part).is_file():
        return _first_title(root / part) or Path(part).stem
    return part or "—"


# --- shared -------------------------------------------------------------------


def _layout(
    tool: str, values: dict[str, Any], path: Path, keys: dict[tuple[str, str], int], entries: _Entries, *more: Path
) -> Layout:
    if not values["chapters"]:
        raise ConfigError([Diagnostic(Location(more[0] if more else path, 1), f"the {tool} book lists no chapters")])
    keys.setdefault(("", "chapters"), 1)
    # Chapter messages point at the file that lists them (SUMMARY.md), the others at book.toml.
    lines = KeyLines({key: line for key, line in keys.items() if line}, entries.lines, more[0] if more else None)
    return Layout(tool, values, lines, (path, *more))


def _values(title: Any, language: Any, authors: Any, subtitle: Any, chapters: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"title": _string(title) or "", "language": _language(language), "chapters": chapters}
    names = [authors] if isinstance(authors, str | dict) else authors if isinstance(authors, list) else []
    # Quarto writes authors as names or as {name: …, affiliation: …}.
    names = [_string(n.get("name")) if isinstance(n, dict) else _string(n) for n in names]
    if names := [name for name in names if name]:
        values["authors"] = names
    if _string(subtitle):
        values["subtitle"] = _string(subtitle)
    return values


def _language(value: Any) -> str:
    """``ja_JP`` (MkDocs themes, GitBook) is BCP 47's ``ja-JP``."""
    return str(value).strip().replace("_", "-") if value else "en"


def _guess_language(root: Path, entries: _Entries) -> str:
    """A layout that does not say: Japanese if its first chapter has kana, else English."""
    first = next(iter(entries.lines), None)
    if first is None or not (root / first).is_file():
        return "en"
    return "ja" if _KANA.search((root / first).read_text(encoding="utf-8", errors="replace")[:20000]) else "en"


def _chapter_name(root: Path, base: Path, href: str) -> str | None:
    """A link or nav entry as a chapter path relative to the report folder; None for drafts
    (empty links), web addresses and what is not Markdown (config reports missing files)."""
    href = urllib.parse.unquote(href.split("#", 1)[0].strip())
    if not href or re.match(r"^[a-z][a-z0-9+.-]*:", href, re.IGNORECASE) or Path(href).suffix not in MARKDOWN_SUFFIXES:
        return None
    return _relative(root, base / href)


def _relative(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root)).as_posix()


def _first_title(path: Path) -> str | None:
    """The ``#`` title a chapter starts with (after its front matter and comments), as the
    parse stage takes it; None when it starts otherwise. Only its beginning is read, and parsed
    once in a process (see _TITLES)."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", errors="replace") as handle:
        head = handle.read(_TITLE_WITHIN)
    return _once_in_process(_TITLES, _TITLES_KEPT, head, _title_in)


def _title_in(head: str) -> str | None:
    head = re.sub(r"\A---[ \t]*\n.*?\n---[ \t]*\n", "", head, flags=re.DOTALL)
    tokens = _COMMONMARK.parse(head)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            return re.sub(r"\s*\{[^}]*\}$", "", _inline_text(tokens[index + 1])) or None
        if not _is_comment(token):
            return None
    return None


def _is_comment(token: Any) -> bool:
    """An HTML comment block (a translation's original text, a linter directive): prints nothing."""
    return bool(token.type == "html_block" and token.content.lstrip().startswith("<!--"))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise ConfigError([Diagnostic(Location(path, None), f"not valid UTF-8 ({error.reason})")]) from None


def _yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        return _mapping(yaml.load(text, Loader=_TolerantLoader))  # a SafeLoader: plain data only
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([Diagnostic(Location(path, mark.line + 1 if mark else 1), problem)]) from None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _line_of(text: str, word: str) -> int:
    """The first line of ``text`` that has ``word`` (0: none)."""
    return next((number for number, line in enumerate(text.splitlines(), start=1) if word in line), 0)


_READERS: dict[str, Callable[[Path, Path], Layout]] = {
    "book.toml": _mdbook,
    "mkdocs.yml": _mkdocs,
    "mkdocs.yaml": _mkdocs,
    "book.json": _gitbook,
    "SUMMARY.md": _gitbook,
    "_quarto.yml": _quarto,
    "_quarto.yaml": _quarto,
}
