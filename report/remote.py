"""Remote images, downloaded once into the cache from the addresses report.toml allows.

Nothing is fetched unless ``[fetch] allow`` lists a prefix of the image's URL. A fetched
image is kept in ``.report-cache/fetched/`` under a name made from its URL, so that a
rebuild reads it from there without the network. A redirect is followed only to an allowed
address; the answer must say it is an image and be at most as large as a local image may be
(the pixel limit is checked by the parse stage, as for a local image).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from report.limits import MAX_IMAGE_BYTES

FETCHED_DIR = Path(".report-cache") / "fetched"
TIMEOUT_SECONDS = 20.0  # for the connection and each read
DOWNLOAD_SECONDS = 120.0  # for the whole image
CONTENT_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/svg+xml": ".svg",
}


class RemoteImageError(Exception):
    """Why a remote image cannot be used: one line, for ``path:line: message``."""


def is_remote(src: str) -> bool:
    return src.lower().startswith(("http://", "https://"))


def allowed(url: str, allow: tuple[str, ...]) -> bool:
    return any(url.startswith(prefix) for prefix in allow)


def remote_image(url: str, root: Path, allow: tuple[str, ...]) -> Path:
    """The local copy of the image at ``url``: from the cache, else downloaded into it."""
    if not allowed(url, allow):
        raise RemoteImageError(
            f'remote image "{url}" is not downloaded: allow its address in report.toml, e.g. '
            f'[fetch] allow = ["{_suggested_prefix(url)}"], or save it in the report folder'
        )
    folder = root / FETCHED_DIR
    stem = hashlib.sha256(url.encode()).hexdigest()[:32]
    cached = sorted(folder.glob(f"{stem}.*")) if folder.is_dir() else []
    if cached:
        return cached[0]
    opener = urllib.request.build_opener(_AllowListRedirects(allow))
    request = urllib.request.Request(url, headers={"User-Agent": "report (image download)"})
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            content_type = response.headers.get_content_type()
            if content_type not in CONTENT_TYPES:
                raise RemoteImageError(f'remote image "{url}" is not an image (the server says {content_type})')
            data = _read_bounded(response, url)
    except urllib.error.HTTPError as error:
        raise RemoteImageError(f'remote image "{url}" could not be downloaded: HTTP {error.code}') from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RemoteImageError(f'remote image "{url}" could not be downloaded: {reason}') from None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{CONTENT_TYPES[content_type]}"
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False) as handle:
        handle.write(data)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)  # a build that stops half-way leaves no half image
    return path


def _read_bounded(response: IO[bytes], url: str) -> bytes:
    """The body, refused beyond the size limit or when it takes too long (a server that
    sends a byte at a time would never time out a single read)."""
    deadline = time.monotonic() + DOWNLOAD_SECONDS
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(1 << 16):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise RemoteImageError(
                f'remote image "{url}" is larger than {MAX_IMAGE_BYTES // 1024 // 1024} MB, the most an image may be'
            )
        if time.monotonic() > deadline:
            raise RemoteImageError(f'remote image "{url}" took more than {DOWNLOAD_SECONDS:.0f} s to download')
        chunks.append(chunk)
    return b"".join(chunks)


def _suggested_prefix(url: str) -> str:
    """``https://host/a/b/c.png`` → ``https://host/a/b/``: the image's folder."""
    return url.rsplit("/", 1)[0] + "/"


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is followed only to an address the allow list has."""

    def __init__(self, allow: tuple[str, ...]) -> None:
        self.allow = allow

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not allowed(newurl, self.allow):
            raise RemoteImageError(f'remote image "{req.full_url}" redirects to "{newurl}", which is not allowed')
        return super().redirect_request(req, fp, code, msg, headers, newurl)
