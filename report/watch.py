"""``report watch``: rebuild on every save, with a live-reloading HTML preview.

The preview is the print document itself (the HTML WeasyPrint lays out) with the
print stylesheets, adapted for a screen by ``report/preview/preview.css``: one
page holding the whole report, each printed page-start block (cover, title page,
contents, chapters) drawn as a sheet of paper, footnotes set under their line.

- The report folder is watched with watchfiles, ignoring the output folder, the
  cache, hidden files and editors' temporary files.
- On a save the preview is rebuilt at once in the watching thread (load, parse —
  only the chapter that changed, the others come from the cache — resolve,
  assemble), the browser is told by a server-sent event, fetches the new content
  and swaps it in place; the edited chapter scrolls into view and flashes.
- When the report has errors the page shows them, one ``path:line: message`` a
  line, instead of the last good version.
- The PDF and the EPUB are rebuilt in a background thread, with a PDF worker
  process kept warm between builds; saves made during a build are gathered into
  one more build. The page's status line says how that went.

The server listens on 127.0.0.1 only and answers only requests addressed to it.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
import jinja2.bccache

from report import fonts
from report.assemble import Assembler
from report.build import BuildResult, build, prepare
from report.cache import CACHE_DIR_NAME, Cache, digest
from report.config import Config
from report.errors import Diagnostic, ReportError
from report.layouts import layout_file
from report.render.workers import PdfWorkers

PREVIEW_DIR = Path(__file__).resolve().parent / "preview"
PAGE_WIDTHS = {"A4": "210mm", "A5": "148mm", "B5": "182mm", "B6": "128mm", "letter": "8.5in"}
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
PREVIEW_FIRST_SECONDS = 1.0  # at most, the PDF and EPUB wait for the page to show an edit
VERSIONS_REMEMBERED = 8  # a page further behind than this is sent the whole report again
BLOCK_MARK = "report-block:"  # an HTML comment before each block of the preview: <!--report-block:KEY-->
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
# What editors and tools write beside a file they save (vim's swap files and 4913, Emacs' #autosave#,
# JetBrains' ___jb_tmp___, backups, sed -i's sedXXXXXX …): never a change to the report.
_EDITOR_FILES = re.compile(
    r"(~|\.sw[a-px]|\.tmp(\.\d+)?|\.part|\.crdownload|\.bak|\.orig|\.rej|\.kate-swp|___jb_(tmp|old)___)$"
    r"|^4913$|^\.?#|^sed[A-Za-z0-9]{6}$"
)

Echo = Callable[[str, bool], None]  # a line, and whether it reports a problem


class WatchError(Exception):
    """``report watch`` cannot start (the port is taken, the folder is not a report)."""


@dataclass(frozen=True)
class Snapshot:
    """What the page shows: the report, or its errors."""

    version: int
    html: str
    ok: bool
    css: str  # the stylesheet's URL (its hash in the query)
    changed: tuple[str, ...] = ()  # ids of the chapters whose files were saved
    seconds: float = 0.0  # how long the preview took to build
    lang: str = "en"
    title: str = "report"
    # The report's blocks, as ``html`` holds them (each after its mark): the warnings, the
    # cover, the contents, each chapter. A page that shows an earlier version is sent only the
    # blocks that changed since (see PreviewState.changes_since); none for a page of errors.
    blocks: tuple[tuple[str, str], ...] = ()


def preview_html(blocks: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<!--{BLOCK_MARK}{key}-->{html}" for key, html in blocks)


class _CompiledTemplates(jinja2.BytecodeCache):
    """Each preview has its own Assembler and so its own Jinja environment: the templates'
    compiled code is kept in memory between them (keyed by name and source checksum)."""

    def __init__(self) -> None:
        self.buckets: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if (code := self.buckets.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.buckets[bucket.key] = bucket.bytecode_to_string()


class PreviewState:
    """Shared by the watching thread, the background builds and the HTTP handlers."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.snapshot = Snapshot(0, "<p>building the preview…</p>", False, "/__report.css?v=0")
        self.stylesheet = ""
        self.status = "PDF and EPUB: waiting for the first build"
        self.status_kind = "building"
        self.events = 0  # bumped on every change of snapshot or status
        self.pages = 0  # pages open (their event streams)
        self.shown = 0  # the newest version a page said it shows
        self.block_digests: dict[int, tuple[tuple[str, str], ...]] = {}  # version → its blocks' keys and digests

    def publish(self, snapshot: Snapshot | None = None, stylesheet: str | None = None, status: str = "") -> None:
        with self.changed:
            if snapshot is not None:
                self.snapshot = snapshot
                if snapshot.blocks:
                    self.block_digests[snapshot.version] = tuple((key, digest(html)) for key, html in snapshot.blocks)
                    for version in sorted(self.block_digests)[:-VERSIONS_REMEMBERED]:
                        del self.block_digests[version]
            if stylesheet is not None:
                self.stylesheet = stylesheet
            if status:
                self.status = status
            self.events += 1
            self.changed.notify_all()

    def changes_since(self, snapshot: Snapshot, version: str) -> list[tuple[str, str]] | None:
        """The blocks of ``snapshot`` that differ from those of ``version`` (a page that shows
        it replaces only them): None when that is not known, or the blocks are not the same
        ones in the same order (a chapter added, the report's errors), and the page needs all."""
        with self.changed:
            new = self.block_digests.get(snapshot.version) if snapshot.blocks else None
            old = self.block_digests.get(int(version)) if version.isdigit() else None
        if new is None or old is None or [key for key, _ in new] != [key for key, _ in old]:
            return None
        return [block for block, now, then in zip(snapshot.blocks, new, old, strict=True) if now != then]

    def set_status(self, status: str, kind: str) -> None:
        with self.changed:
            self.status_kind = kind
        self.publish(status=status)

    def page_opened(self, change: int) -> None:
        with self.changed:
            self.pages += change
            self.changed.notify_all()

    def page_shows(self, version: int) -> None:
        with self.changed:
            self.shown = max(self.shown, version)
            self.changed.notify_all()

    def wait_until_shown(self, version: int, seconds: float) -> bool:
        """Until a page shows ``version`` (at once if no page is open), for at most ``seconds``:
        whether it does."""
        with self.changed:
            return self.changed.wait_for(lambda: self.pages <= 0 or self.shown >= version, timeout=seconds)


class Watcher:
    def __init__(self, root: Path, port: int = 8000, out_dir: Path | None = None, echo: Echo | None = None) -> None:
        self.root = root.resolve()
        if not (self.root / "report.toml").is_file() and layout_file(self.root) is None:
            raise WatchError(
                f"{root}: no report.toml (nor a book.toml, mkdocs.yml, book.json…) here; watch a report folder"
            )
        self.out_dir = (out_dir or self.root / "dist").resolve()
        self.cache_dir = self.root / CACHE_DIR_NAME
        self.echo: Echo = echo or (lambda line, _problem: print(line))
        self.state = PreviewState()
        self.stop_event = threading.Event()
        self._chapters: dict[str, str] = {}  # chapter id → digest, to tell what changed
        self._templates = _CompiledTemplates()
        self._workers: PdfWorkers | None = None
        self._wanted = threading.Event()
        self._background = threading.Thread(target=self._build_outputs, name="report-build", daemon=True)
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        except OSError as error:
            raise WatchError(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); choose another --port") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Serve and watch until interrupted (Ctrl-C, SIGTERM) or :attr:`stop_event` is set."""
        import watchfiles

        threading.Thread(target=self.server.serve_forever, name="report-http", daemon=True).start()
        self._workers = PdfWorkers(fonts.fontconfig_file(self.cache_dir, bundled_dir=False))
        self._background.start()
        self.echo(f"previewing {self.url} — watching {self.root} (Ctrl-C to stop)", False)
        self.update_preview(())
        self._wanted.set()
        previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
        try:
            for changes in watchfiles.watch(
                self.root, watch_filter=self._watched, step=30, stop_event=self.stop_event, raise_interrupt=True
            ):
                self.update_preview(Path(path) for _, path in changes)
                self._wanted.set()
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.close()

    def close(self) -> None:
        self.stop_event.set()
        self._wanted.set()
        self.server.shutdown()
        self.server.server_close()
        if self._workers is not None:
            self._workers.close()
        if self._background.is_alive():
            self._background.join(timeout=10)
        self.echo("stopped watching", False)

    def _watched(self, _change: object, name: str) -> bool:
        path = Path(name)
        if path.is_relative_to(self.out_dir) or path.is_relative_to(self.cache_dir):
            return False
        relative = path.relative_to(self.root).parts if path.is_relative_to(self.root) else path.parts
        if any(part.startswith(".") or part in ("__pycache__", "node_modules") for part in relative):
            return False
        return not _EDITOR_FILES.search(path.name)

    # --- the preview -------------------------------------------------------------------

    def update_preview(self, saved: Iterable[Path]) -> Snapshot:
        """Rebuild the preview page and tell the browsers."""
        started = time.perf_counter()
        saved = {path.resolve() for path in saved}
        version = self.state.snapshot.version + 1
        cache = Cache(self.cache_dir)
        stylesheet = None
        try:
            with fonts.cached(cache):
                book, warnings = prepare(self.root, cache=cache)
                assembler = Assembler(book)
                assembler.env.bytecode_cache = self._templates
                blocks = [("warnings", self._warnings(warnings))] + [
                    (key, body.group(1) if (body := _BODY.search(document)) else document)
                    for key, document in assembler.print_parts
                ]
                stylesheet = self._stylesheet(assembler, book.config, cache)
            cache.save()
        except ReportError as error:
            snapshot = self._problems(version, error.diagnostics, started)
        except Exception as error:  # a bug: say so in the page, keep watching
            self.echo("".join(traceback.format_exception(error)).rstrip(), True)
            snapshot = self._problems(version, (), started, f"internal error: {type(error).__name__}: {error}")
        else:
            digests = {chapter.id: digest(repr(chapter)) for chapter in book.chapters}
            edited = tuple(
                c.id for c in book.chapters if c.source in saved and digests[c.id] != self._chapters.get(c.id)
            )
            self._chapters = digests
            snapshot = Snapshot(
                version,
                preview_html(blocks),
                True,
                f"/__report.css?v={digest(stylesheet)[:16]}",
                edited,
                time.perf_counter() - started,
                book.config.language,
                book.config.title,
                tuple(blocks),
            )
        self.state.publish(snapshot, stylesheet)
        what = ", ".join(sorted(self._display(path) for path in saved)) or "first build"
        outcome = "updated" if snapshot.ok else "shows the errors"
        self.echo(f"preview {outcome} in {snapshot.seconds:.2f} s ({what})", False)
        return snapshot

    def _stylesheet(self, assembler: Assembler, config: Config, cache: Cache) -> str:
        urls = {
            face.file: f"/__report/fonts/{face.file}?v={fonts.font_digest(face.file, cache)[:16]}"
            for face in fonts.FACES
        }
        page = (
            f":root {{ --report-page-width: {PAGE_WIDTHS.get(config.pdf.page_size, '210mm')};"
            f" --report-page-margin: {config.pdf.margin}; }}\n"
        )
        preview = (PREVIEW_DIR / "preview.css").read_text(encoding="utf-8")
        return "\n".join([*assembler.print_stylesheets(urls), page, preview])

    def _warnings(self, warnings: tuple[Diagnostic, ...]) -> str:
        if not warnings:
            return ""
        lines = "\n".join(html.escape(self._line(warning)) for warning in warnings)
        count = f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
        return f'<details class="report-warnings"><summary>{count}</summary><pre>{lines}</pre></details>\n'

    def _problems(self, version: int, diagnostics: tuple[Diagnostic, ...], started: float, extra: str = "") -> Snapshot:
        lines = [self._line(d) for d in diagnostics] + ([extra] if extra else [])
        for line in lines:
            self.echo(line, True)
        count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
        page = (
            '<section class="report-errors" role="alert">'
            f"<h1>The report has {count}</h1>"
            "<p>Fix them and save: the preview follows. The PDF and EPUB keep their last good version.</p>"
            f"<pre>{html.escape(chr(10).join(lines))}</pre></section>"
        )
        previous = self.state.snapshot
        return replace(
            previous, version=version, html=page, ok=False, changed=(), seconds=time.perf_counter() - started, blocks=()
        )

    def _line(self, diagnostic: Diagnostic) -> str:
        location = diagnostic.location
        where = self._display(location.path) + (f":{location.line}" if location.line else "")
        return f"{where}: {'warning: ' if diagnostic.is_warning else ''}{diagnostic.message}"

    def _display(self, path: Path) -> str:
        path = path.resolve()
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    # --- PDF and EPUB in the background ------------------------------------------------

    def _build_outputs(self) -> None:
        while True:
            self._wanted.wait()
            if self.stop_event.is_set():
                return
            self._wanted.clear()
            self.state.set_status("PDF and EPUB: building…", "building")
            # The preview first: the PDF and EPUB take the processor once the page shows the edit
            # (with them building at once, the page showed it 0.1 s later, measured on 2 cores).
            self.state.wait_until_shown(self.state.snapshot.version, PREVIEW_FIRST_SECONDS)
            started = time.perf_counter()
            try:
                if self._workers is None or not self._workers.alive:
                    self._workers = PdfWorkers(fonts.fontconfig_file(self.cache_dir, bundled_dir=False))
                result = build(self.root, out_dir=self.out_dir, workers=self._workers)
            except ReportError:
                self.state.set_status("PDF and EPUB not rebuilt: the report has errors", "failed")
                continue
            except Exception as error:
                if self.stop_event.is_set():
                    return
                self.echo("".join(traceback.format_exception(error)).rstrip(), True)
                self.state.set_status(f"PDF and EPUB failed: {type(error).__name__}: {error}", "failed")
                continue
            self.state.set_status(self._built(result, time.perf_counter() - started), "ok")

    def _built(self, result: BuildResult, seconds: float) -> str:
        parts = []
        for output in result.outputs:
            count = f"{output.pages} pages" if output.format == "pdf" else f"{output.size / 1e6:.1f} MB"
            parts.append(f"{self._display(output.path)} ({count})")
        done = "up to date" if result.up_to_date or not result.rendered else "written"
        message = f"{', '.join(parts)} {done} in {seconds:.1f} s"
        self.echo(message, False)
        return message


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# --- HTTP ---------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — report watch</title>
<link id="report-css" rel="stylesheet" href="{css}">
<script src="/__report.js" defer></script>
</head>
<body>
<main id="report-preview" data-version="{version}" data-ok="{ok}">
{html}
</main>
<div id="report-status" role="status" data-state="{kind}">{status}</div>
</body>
</html>
"""


def _handler(watcher: Watcher) -> type[BaseHTTPRequestHandler]:
    state = watcher.state

    class Handler(BaseHTTPRequestHandler):
        server_version = "report-watch"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the console is for the author

        def do_GET(self) -> None:
            if not self._ours():
                self._send(403, b"forbidden", "text/plain")
                return
            url = urlsplit(self.path)
            path = unquote(url.path)
            if path == "/":
                self._page()
            elif path == "/__report.css":
                self._send(200, state.stylesheet.encode(), "text/css; charset=utf-8")
            elif path == "/__report.js":
                self._send(200, (PREVIEW_DIR / "live.js").read_bytes(), "text/javascript; charset=utf-8")
            elif path == "/__report/update":
                self._update(parse_qs(url.query).get("have", [""])[0])
            elif path == "/__report/events":
                self._events()
            elif path.startswith("/__report/fonts/"):
                self._font(path.removeprefix("/__report/fonts/"))
            else:
                self._file(path)

        def _page(self) -> None:
            with state.changed:
                snapshot, status, kind = state.snapshot, state.status, state.status_kind
            page = PAGE.format(
                lang=html.escape(snapshot.lang),
                title=html.escape(snapshot.title),
                css=html.escape(snapshot.css),
                version=snapshot.version,
                ok=str(snapshot.ok).lower(),
                html=snapshot.html,
                kind=kind,
                status=html.escape(status),
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _update(self, have: str) -> None:
            with state.changed:
                snapshot, status, kind, shown = state.snapshot, state.status, state.status_kind, state.shown
            fresh = have != str(snapshot.version)
            blocks = state.changes_since(snapshot, have) if fresh else None
            body = {
                "version": snapshot.version,
                "ok": snapshot.ok,
                "html": snapshot.html if fresh and blocks is None else None,
                "blocks": blocks,
                "css": snapshot.css,
                "changed": list(snapshot.changed),
                "seconds": snapshot.seconds,
                "status": status,
                "status_kind": kind,
                "shown": shown,  # the newest version a page said it shows
            }
            self._send(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if not self._ours():
                self._send(403, b"forbidden", "text/plain")
            elif unquote(url.path) == "/__report/shown":
                version = parse_qs(url.query).get("version", [""])[0]
                if version.isdigit():
                    state.page_shows(int(version))
                self._send(204, b"", "text/plain")
            else:
                self._send(404, b"not found", "text/plain")

        def _ours(self) -> bool:
            """Whether the request names this server (DNS rebinding and the like do not)."""
            return self.headers.get("Host", "") in (f"127.0.0.1:{watcher.port}", f"localhost:{watcher.port}")

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            state.page_opened(+1)
            try:
                self._send_events()
            finally:
                state.page_opened(-1)

        def _send_events(self) -> None:
            seen = [-1]

            def news() -> bool:
                return state.events != seen[0] or watcher.stop_event.is_set()

            try:
                while not watcher.stop_event.is_set():
                    with state.changed:
                        state.changed.wait_for(news, timeout=15)
                        events, version = state.events, state.snapshot.version
                    if events != seen[0]:
                        seen[0] = events
                        self.wfile.write(f"event: change\ndata: {version}\n\n".encode())
                    else:
                        self.wfile.write(b": still here\n\n")
                    self.wfile.flush()
            except OSError:
                pass  # the page went away

        def _font(self, name: str) -> None:
            face = next((face for face in fonts.FACES if face.file == name), None)
            if face is None:
                self._send(404, b"not found", "text/plain")
                return
            path = fonts.fonts_dir() / face.file
            self.send_response(200)
            self.send_header("Content-Type", "font/otf" if path.suffix == ".otf" else "font/ttf")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("Cache-Control", "max-age=31536000, immutable")  # the URL names its hash
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile)

        def _file(self, path: str) -> None:
            """Images of the report, where the print document's relative URLs point."""
            target = (watcher.root / path.lstrip("/")).resolve()
            relative = target.relative_to(watcher.root).parts if target.is_relative_to(watcher.root) else ()
            if (
                not relative
                or any(part.startswith(".") for part in relative)
                or target.suffix.lower() not in IMAGE_TYPES
                or not target.is_file()
            ):
                self._send(404, b"not found", "text/plain")
                return
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(200, target.read_bytes(), kind, cache=False)

        def _send(self, code: int, body: bytes, kind: str, cache: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def watch(root: Path, port: int = 8000, out_dir: Path | None = None, echo: Echo | None = None) -> None:
    """Watch ``root`` and serve its preview on 127.0.0.1:``port`` until interrupted."""
    Watcher(root, port, out_dir, echo).run()
