"""Remote images: refused unless report.toml's [fetch] allow lists them; then downloaded once
into the cache (limits as for local images, redirects only within the list), so that a
rebuild works offline. The images come from a server on 127.0.0.1 that the test starts."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import copy_fixture, diagnostics_of, epub_names, pdftotext, run_report
from PIL import Image

from report import remote
from report.errors import Diagnostics
from report.model import Matter, SourceChapter
from report.parse import parse_chapter
from report.remote import RemoteImageError, remote_image


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


class ImageServer:
    """A local HTTP server: path → (status, headers, body); counts the requests it answers.
    It stops when the test ends, and by itself after a minute whatever happens."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(60, self.stop)

    def start(self) -> ImageServer:
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        self.routes[path] = (200, {"Content-Type": content_type}, data)
        return self.url + path.lstrip("/")


@pytest.fixture
def server() -> Iterator[ImageServer]:
    running = ImageServer().start()
    yield running
    running.stop()


def test_remote_image_is_downloaded_once_into_the_cache(server: ImageServer, tmp_path: Path) -> None:
    url = server.image("/img/box.png", _png(4, 3))
    first = remote_image(url, tmp_path, (server.url + "img/",))
    second = remote_image(url, tmp_path, (server.url + "img/",))
    assert first == second and first.parent == tmp_path / ".report-cache" / "fetched" and first.suffix == ".png"
    assert first.read_bytes() == _png(4, 3)
    assert server.requests == ["/img/box.png"]


def test_remote_image_not_allowed_says_how_to_allow_it(server: ImageServer, tmp_path: Path) -> None:
    url = server.image("/img/box.png", _png(4, 3))
    for allow in ((), (server.url + "other/",), (server.url.rstrip("/") + "0/",)):
        with pytest.raises(RemoteImageError) as error:
            remote_image(url, tmp_path, allow)
        assert f'[fetch] allow = ["{server.url}img/"]' in str(error.value)
    assert server.requests == []


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ((404, {"Content-Type": "text/html"}, b"gone"), ["HTTP 404"]),
        ((200, {"Content-Type": "text/html"}, b"<html></html>"), ["not an image", "text/html"]),
        ((302, {"Location": "https://elsewhere.example/x.png"}, b""), ["redirects to", "not allowed"]),
    ],
)
def test_remote_image_failures(
    server: ImageServer, tmp_path: Path, route: tuple[int, dict[str, str], bytes], words: list[str]
) -> None:
    server.routes["/img/x.png"] = route
    with pytest.raises(RemoteImageError) as error:
        remote_image(server.url + "img/x.png", tmp_path, (server.url,))
    for word in words:
        assert word in str(error.value)
    assert not list((tmp_path / ".report-cache").rglob("*.png"))


def test_a_redirect_within_the_allow_list_is_followed(server: ImageServer, tmp_path: Path) -> None:
    server.image("/img/real.png", _png(2, 2))
    server.routes["/img/moved.png"] = (301, {"Location": server.url + "img/real.png"}, b"")
    path = remote_image(server.url + "img/moved.png", tmp_path, (server.url + "img/",))
    assert path.read_bytes() == _png(2, 2)


def test_remote_image_larger_than_the_limit(
    server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "MAX_IMAGE_BYTES", 100)
    url = server.image("/big.png", _png(200, 200, "RGB") + b"\0" * 200)
    with pytest.raises(RemoteImageError, match="larger than"):
        remote_image(url, tmp_path, (server.url,))


def test_no_server_is_an_error_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(RemoteImageError, match="could not be downloaded"):
        remote_image("http://127.0.0.1:9/x.png", tmp_path, ("http://127.0.0.1:9/",))


def _parse(tmp_path: Path, markdown: str, allow: tuple[str, ...]) -> Diagnostics:
    source = SourceChapter(tmp_path / "c.md", "c", "T", Matter.BODY, (), markdown, 5)
    diagnostics = Diagnostics()
    parse_chapter(source, tmp_path, diagnostics, allow)
    return diagnostics


def test_a_fetched_image_has_the_limits_of_a_local_one(server: ImageServer, tmp_path: Path) -> None:
    url = server.image("/huge.png", _png(8000, 7000, "1"))  # 56 million pixels, a few kB
    ((error),) = _parse(tmp_path, f"text\n\n![huge]({url})\n", (server.url,)).errors
    assert error.location.line == 7 and "million pixels" in error.message


def test_parse_reports_a_refused_remote_image_at_its_line(tmp_path: Path) -> None:
    ((error),) = _parse(tmp_path, "![x](https://example.com/a/b.png)\n", ()).errors
    assert error.location.line == 5 and '[fetch] allow = ["https://example.com/a/"]' in error.message


def test_build_with_remote_images_then_offline(server: ImageServer, tmp_path: Path) -> None:
    """Built with the images downloaded; built again from nothing (--no-cache) with the server
    gone: the images come from the cache folder."""
    root = copy_fixture("en-basic", tmp_path)
    url = server.image("/figures/red.png", _png(40, 30, "RGB"))
    chapter = root / "chapters" / "01-intro.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + f'\n![A red box]({url} "Fetched figure")\n')
    lines = len(chapter.read_text(encoding="utf-8").splitlines())

    refused = run_report("build", root, cwd=tmp_path)
    assert refused.returncode == 1
    ((problem),) = diagnostics_of(refused.stderr)
    assert problem["line"] == str(lines) and "[fetch] allow" in problem["message"]

    config = root / "report.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'\n[fetch]\nallow = ["{server.url}figures/"]\n')
    built = run_report("build", root, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "Fetched figure" in pdftotext(root / "dist" / "en-basic.pdf")
    assert any(name.endswith(".png") and "fetched" in name for name in epub_names(root / "dist" / "en-basic.epub"))
    server.stop()

    shutil.rmtree(root / "dist")
    offline = run_report("build", root, "--no-cache", cwd=tmp_path)
    assert offline.returncode == 0, offline.stderr
    assert server.requests == ["/figures/red.png"]
