"""The pipeline, top to bottom: load → parse → resolve → assemble → render → write.

Outputs are rendered to temporary files and renamed into place only when every
requested format has succeeded, so a failed build leaves the previous PDF and
EPUB as they were. A lock keeps two builds of one folder from interleaving.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from report.assemble import Assembler
from report.check import check_glyphs, check_stylesheets
from report.errors import Diagnostic, Diagnostics, ReportError
from report.load import load_project
from report.model import Book
from report.parse import parse_chapter
from report.render import Output
from report.render.epub import EpubRenderer
from report.render.pdf import CACHE_DIR_NAME, PdfRenderer
from report.resolve import resolve_book

FORMATS = ("pdf", "epub")
PROFILES = ("screen", "print")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    outputs: tuple[Output, ...]
    warnings: tuple[Diagnostic, ...]


def prepare(
    root: Path, strict: bool = False, progress: Progress = lambda _: None
) -> tuple[Book, tuple[Diagnostic, ...]]:
    """Everything short of rendering: the checked, numbered book and its warnings."""
    progress("reading report.toml and chapters")
    project = load_project(root)
    diagnostics = Diagnostics()
    progress(f"parsing {len(project.chapters)} chapters")
    parsed = tuple(parse_chapter(chapter, project.config.root, diagnostics) for chapter in project.chapters)
    book = resolve_book(project.config, parsed, diagnostics)
    check_glyphs(project, diagnostics)
    check_stylesheets(project, diagnostics)
    diagnostics.raise_if_errors()
    if strict and diagnostics.warnings:
        raise ReportError(diagnostics.warnings)
    return book, diagnostics.warnings


def build(
    root: Path,
    formats: tuple[str, ...] = FORMATS,
    out_dir: Path | None = None,
    profile: str = "screen",
    strict: bool = False,
    progress: Progress = lambda _: None,
) -> BuildResult:
    book, warnings = prepare(root, strict, progress)
    config = book.config
    out_dir = (out_dir or config.root / "dist").resolve()
    assembler = Assembler(book, profile=profile)
    with _build_lock(config.root / CACHE_DIR_NAME):
        out_dir.mkdir(parents=True, exist_ok=True)
        temporary = {fmt: out_dir / f".{config.output}.{fmt}.{os.getpid()}.tmp" for fmt in formats}
        try:
            rendered = _render(assembler, formats, temporary, progress)
            outputs = []
            for fmt in formats:
                final = out_dir / f"{config.output}.{fmt}"
                os.replace(temporary[fmt], final)
                outputs.append(replace(rendered[fmt], path=final))
        finally:
            for path in temporary.values():
                path.unlink(missing_ok=True)
    return BuildResult(tuple(outputs), warnings)


def _render(
    assembler: Assembler, formats: tuple[str, ...], temporary: dict[str, Path], progress: Progress
) -> dict[str, Output]:
    """The PDF comes first: its page layout gives the EPUB its print page list."""
    pdf = PdfRenderer()
    rendered: dict[str, Output] = {}
    if "pdf" in formats:
        progress("rendering the PDF")
        rendered["pdf"] = pdf.render(assembler, temporary["pdf"])
    if "epub" in formats:
        progress("rendering the EPUB")
        starts = rendered["pdf"].page_starts if "pdf" in rendered else pdf.page_starts(assembler)
        rendered["epub"] = EpubRenderer(starts).render(assembler, temporary["epub"])
    return rendered


@contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
