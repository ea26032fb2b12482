"""Checks over the whole project that no single stage owns: glyph coverage."""

from __future__ import annotations

import unicodedata

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
