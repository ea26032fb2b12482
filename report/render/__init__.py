"""Stage 5 — render: one renderer per output format, all with the same interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the PDF workers import this package: they need no assembler (nor Jinja)
    from report.assemble import Assembler


@dataclass(frozen=True)
class PageStart:
    """A printed page: its folio and the id of the first element that begins on it."""

    label: str
    anchor: str


@dataclass(frozen=True)
class Output:
    format: str
    path: Path
    size: int
    pages: int | None = None  # printed pages (PDF) or documents (EPUB)
    warnings: tuple[str, ...] = ()
    page_starts: tuple[PageStart, ...] = ()


class Renderer(Protocol):
    format: str

    def render(self, assembler: Assembler, target: Path) -> Output:
        """Write the output to ``target`` (a temporary path the build renames into place)."""
        ...
