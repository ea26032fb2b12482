"""Checks over the whole project that no single stage owns: glyph coverage."""

from __future__ import annotations

import unicodedata

from report.css import clean_stylesheet
from report.errors import Diagnostics
from report.fonts import missing_characters
from report.model import Project


def check_glyphs(project: Project, diagnostics: Diagnostics) -> None:
    """Warn, with file, line and code point, for every character no bundled font can draw:
    without this a reader would see an empty box (tofu) and the author nothing."""
    for chapter in project.chapters:
        missing = missing_characters(chapter.markdown)
        if not missing:
            continue
        for offset, line in enumerate(chapter.markdown.split("\n")):
            for character in sorted(missing & set(line)):
                name = unicodedata.name(character, "unnamed character")
                diagnostics.warn(
                    chapter.path,
                    chapter.first_line + offset,
                    f"no bundled font has {character!r} (U+{ord(character):04X} {name}); it would print as an empty box",
                )


def check_stylesheets(project: Project, diagnostics: Diagnostics) -> None:
    """A report's stylesheets may not load files: say what the build leaves out, and where."""
    for name in ("print.css", "epub.css"):
        path = project.config.root / "styles" / name
        if path.is_file():
            for removed in clean_stylesheet(path.read_text(encoding="utf-8"))[1]:
                diagnostics.warn(path, removed.line, f"{removed.what} is ignored: stylesheets may not load files")
