"""Stage 5 — render: one renderer per output format, all with the same interface."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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


Result = TypeVar("Result")


def in_background(name: str, work: Callable[..., Result], *arguments: Any) -> Future[Result]:
    """``work(*arguments)`` in a thread of its own, which ends with it (the EPUB written while
    the PDF is laid out, the PDF joined while the EPUB is written), with the caller's context
    variables: a thread starts with none, and the fonts' cache is one (:func:`report.fonts.cached`)."""
    executor = ThreadPoolExecutor(1, thread_name_prefix=name)
    future = executor.submit(contextvars.copy_context().run, work, *arguments)
    executor.shutdown(wait=False)
    return future
