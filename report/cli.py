"""The ``report`` command: build, check and init (see the contract)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from shlex import quote
from typing import NoReturn

import click
from rich.console import Console

from report import __version__
from report.build import FORMATS, PROFILES, BuildResult, build, prepare
from report.check import check_outputs
from report.daemon.settings import SERVER_KIND, KeptProcess
from report.errors import Diagnostic, Diagnostics, ExitCode, ReportError
from report.init import InitError, init_from_layout, init_report


def _new_console() -> Console:
    # soft_wrap: a message stays one line (path:line: message), whatever the terminal width;
    # no markup or emoji codes: "chapters/a.md:100: …" must not print ":100:" as an emoji.
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


console = _new_console()


def _display(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _print_diagnostic(diagnostic: Diagnostic) -> None:
    location = diagnostic.location
    where = _display(location.path) + (f":{location.line}" if location.line else "")
    kind = "warning: " if diagnostic.is_warning else ""
    console.print(
        f"{where}: {kind}{diagnostic.message}", markup=False, style="yellow" if diagnostic.is_warning else "red"
    )


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"


@contextmanager
def _handled(writes: bool = True) -> Iterator[None]:
    """Author errors become one line each and exit 1; a bug becomes a short message
    and a saved traceback, never a wall of Python."""
    try:
        yield
    except ReportError as error:
        for diagnostic in error.diagnostics:
            _print_diagnostic(diagnostic)
        count = len(error.diagnostics)
        written = "; nothing was written" if writes else ""
        console.print(f"{count} problem{'s' if count != 1 else ''}{written}.", style="red")
        sys.exit(ExitCode.REPORT_ERROR)
    except KeyboardInterrupt:
        console.print("interrupted; previous outputs are unchanged.", style="red")
        sys.exit(ExitCode.REPORT_ERROR)
    except Exception as error:
        with tempfile.NamedTemporaryFile("w", prefix="report-crash-", suffix=".txt", delete=False) as handle:
            traceback.print_exc(file=handle)
        # One line: a worker's error carries the worker's traceback (saved above), whose last
        # line is the worker's exception.
        lines = str(error).strip().splitlines() or [""]
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1].strip()}"
        console.print(f"internal error: {type(error).__name__}: {summary}", markup=False, style="red")
        console.print(f"the traceback is saved in {handle.name}; please report it.", markup=False)
        sys.exit(ExitCode.INTERNAL)


@contextmanager
def _status(enabled: bool) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _: None
        return
    with console.status("starting") as status:
        yield lambda message: status.update(message)


def run(args: list[str] | None = None, prog_name: str | None = None, then: Callable[[], object] | None = None) -> None:
    """The ``report`` command: :func:`main`, then ``then``, then out at once, as mypy does.
    Tearing the interpreter down would take a tenth of a second, freeing what the process drops
    anyway; every build, watch and check has closed its files, workers and threads by then."""
    global console
    # As this process's streams and environment are now: in a build server's child
    # (report.daemon.server) they are the command's, not those the server was started with.
    console = _new_console()
    try:
        main(args=args, prog_name=prog_name)
    except SystemExit as stop:
        code = stop.code
    else:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (report build | head)
            stream.flush()
    if then is not None:
        then()
    os._exit(code if isinstance(code, int) else int(code is not None))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="report")
def main() -> None:
    """Build print PDF and EPUB 3 from a folder of Markdown chapters."""


def _formats(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise click.BadParameter(f"choose from {', '.join(FORMATS)} (comma-separated)")
    return formats


_report_path = click.argument("path", default=".", type=click.Path(file_okay=False, path_type=Path))
_strict = click.option("--strict", is_flag=True, help="Treat warnings as errors.")


def _output_folder(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), help=help_text)


@main.command("build")
@_report_path
@click.option("--format", "formats", default="pdf,epub", callback=_formats, help="pdf, epub or both (pdf,epub).")
@click.option("--profile", type=click.Choice(PROFILES), default="screen", help="print adds bleed and crop marks.")
@_output_folder("Output folder (default PATH/dist).")
@_strict
@click.option("--no-cache", is_flag=True, help="Rebuild everything, whatever the cache holds.")
@click.option("--timings", is_flag=True, help="Say when each stage ended and what came from the cache.")
def build_command(
    path: Path,
    formats: tuple[str, ...],
    profile: str,
    out_dir: Path | None,
    strict: bool,
    no_cache: bool,
    timings: bool,
) -> None:
    """Build the report in PATH into PDF and EPUB."""
    started = time.monotonic()
    with _handled(), _status(console.is_terminal) as progress:
        result = build(path, formats, out_dir, profile, strict, progress, use_cache=not no_cache)
    for warning in result.warnings:
        _print_diagnostic(warning)
    for output in result.outputs:
        for message in output.warnings:
            console.print(f"{_display(output.path)}: warning: {message}", markup=False, style="yellow")
    parts = []
    for output in result.outputs:
        count = f"{output.pages} pages" if output.format == "pdf" else f"{output.pages} documents"
        parts.append(f"{_display(output.path)} ({count}, {_size(output.size)})")
    elapsed = time.monotonic() - started
    if result.up_to_date:
        click.echo(f"up to date: {', '.join(parts)}; nothing changed, nothing written ({elapsed:.1f} s)")
    else:
        click.echo(f"wrote {', '.join(parts)} in {elapsed:.1f} s")
    if timings:
        click.echo(_timings_table(result))


def _timings_table(result: BuildResult) -> str:
    """When each stage ended and how long it took; what was rendered; the cache's hits and misses."""
    rows = [f"{'stage':<16}{'ended':>9}{'took':>9}"]
    previous = 0.0
    for stage, seconds in result.timings.items():
        rows.append(f"{stage:<16}{seconds:>7.2f} s{seconds - previous:>7.2f} s")
        previous = seconds
    rows.append(f"rendered afresh: {', '.join(result.rendered) or 'nothing'}")
    stats = result.stats
    kinds = sorted(set(stats.hits) | set(stats.misses))
    if kinds:
        rows.append(f"{'cache entries':<16}{'hits':>9}{'misses':>9}")
        rows += [f"{kind:<16}{stats.hits[kind]:>9}{stats.misses[kind]:>9}" for kind in kinds]
    return "\n".join(rows)


@main.command("check")
@_report_path
@_output_folder("Where built outputs are (default PATH/dist).")
@_strict
def check_command(path: Path, out_dir: Path | None, strict: bool) -> None:
    """Validate the report in PATH without writing anything; check built outputs where they exist."""
    with _handled(writes=False):
        book, warnings = prepare(path, strict)
        config = book.config
        out = out_dir or config.root / "dist"
        diagnostics = Diagnostics()
        checked = check_outputs(out / f"{config.output}.pdf", out / f"{config.output}.epub", diagnostics)
        problems = diagnostics.errors + (diagnostics.warnings if strict else ())
        if problems:
            raise ReportError(problems)
    for warning in (*warnings, *diagnostics.warnings):
        _print_diagnostic(warning)
    count = len(book.chapters)
    outputs = f"; checked {', '.join(checked)}" if checked else ""
    click.echo(f"{_display(config.path)}: {count} chapter{'s' if count != 1 else ''}, no errors{outputs}")


@main.command("watch")
@_report_path
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Preview port (0: any free one)."
)
@_output_folder("Output folder for the PDF and EPUB (default PATH/dist).")
def watch_command(path: Path, port: int, out_dir: Path | None) -> None:
    """Rebuild on every save, with a live-reloading preview on 127.0.0.1:PORT."""
    from report.watch import WatchError, watch

    try:
        watch(path, port, out_dir, echo=lambda line, problem: click.echo(line, err=problem))
    except WatchError as error:
        console.print(str(error), style="red", markup=False)
        sys.exit(ExitCode.USAGE)


@main.command("init")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", default=None, help="The report's title.")
@click.option("--language", default="ja", show_default=True, help="BCP 47 language tag (ja, en, zh-Hans, ko …).")
@click.option(
    "--from",
    "from_book",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Write the report.toml of the mdBook, MkDocs, GitBook or Quarto book in this folder.",
)
def init_command(folder: Path | None, title: str | None, language: str, from_book: Path | None) -> None:
    """Create a new report in FOLDER that builds as it is (or, --from, take a book over)."""
    if (folder is None) == (from_book is None):
        raise click.UsageError("give a FOLDER to create, or --from a book's folder")
    if from_book is not None:
        with _handled():  # the book's own problems are printed as a build prints them
            try:
                tool, written_toml = init_from_layout(from_book)
            except InitError as error:
                _init_failed(error)
        click.echo(
            f"wrote {_display(written_toml)} from the {tool} book; build it with: report build {quote(_display(from_book))}"
        )
        return
    assert folder is not None
    try:
        written = init_report(
            folder, title or ("新しいレポート" if language.startswith("ja") else "New report"), language
        )
    except InitError as error:
        _init_failed(error)
    click.echo(
        f"created {_display(folder)} ({len(written)} files); build it with: report build {quote(_display(folder))}"
    )


@main.command("stop")
def stop_command() -> None:
    """End every kept background process of yours (build server, PDF workers)."""
    from report.daemon.settings import chosen_pool, kept_processes, stop_kept

    kept = kept_processes(chosen_pool())
    stop_kept(kept)
    click.echo(f"stopped {_counted(kept)}")


@main.command("status")
def status_command() -> None:
    """List your kept background processes, with their memory and idle time."""
    from report.daemon.settings import chosen_pool, kept_processes

    kept = kept_processes(chosen_pool())
    now = time.time()
    for process in kept:
        if process.starting or process.idle_since is None:
            idle = "starting" if process.starting else "busy"
        else:
            idle = f"idle {_duration(now - process.idle_since)}"
        click.echo(f"{process.pid:>8}  {process.kind:<13} {process.pool:<10} {_size(process.memory):>9}  {idle}")
    click.echo(f"{_counted(kept)}, {_size(sum(p.memory for p in kept))} in all")


def _counted(kept: list[KeptProcess]) -> str:
    servers = sum(p.kind == SERVER_KIND for p in kept)
    workers = len(kept) - servers
    return (
        f"{len(kept)} kept process{'es' if len(kept) != 1 else ''} "
        f"({servers} build server{'s' if servers != 1 else ''}, {workers} PDF worker{'s' if workers != 1 else ''})"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def _init_failed(error: InitError) -> NoReturn:
    console.print(str(error), style="red", markup=False)
    sys.exit(ExitCode.REPORT_ERROR)
