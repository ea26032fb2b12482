"""Diagnostics and the small exception hierarchy the command line maps to exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    REPORT_ERROR = 1
    USAGE = 2
    INTERNAL = 3


@dataclass(frozen=True, order=True)
class Location:
    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the author's input, printed as ``path:line: message``."""

    location: Location
    message: str
    is_warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.is_warning else ""
        return f"{self.location}: {kind}{self.message}"


class ReportError(Exception):
    """The report's input has problems; every one of them is listed."""

    exit_code = ExitCode.REPORT_ERROR

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class ConfigError(ReportError):
    """``report.toml`` is missing or invalid."""


class SourceError(ReportError):
    """A chapter, an image or a cross-reference is wrong."""


class RenderError(ReportError):
    """An output format could not be produced from valid input."""


class Diagnostics:
    """Collects the problems of one stage so that all of them are reported at once."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def error(self, path: Path, line: int | None, message: str) -> None:
        self._items.append(Diagnostic(Location(path, line), message))

    def warn(self, path: Path, line: int | None, message: str) -> None:
        self._items.append(Diagnostic(Location(path, line), message, is_warning=True))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self._items if not d.is_warning)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        # The same warning from two passes is printed once.
        return tuple(dict.fromkeys(d for d in self._items if d.is_warning))

    def raise_if_errors(self, error_type: type[ReportError] = SourceError) -> None:
        if self.errors:
            raise error_type(self.errors)
