"""What WeasyPrint may read: files inside the allowed folders and ``data:`` URLs.

No network, no redirects, no devices or special files, nothing outside the
report folder and the bundled fonts.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

MAX_RESOURCE_BYTES = 64 * 1024 * 1024


class SandboxedFetcher(URLFetcher):  # type: ignore[misc]
    def __init__(self, allowed_roots: tuple[Path, ...]) -> None:
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False, timeout=5)
        self.allowed_roots = tuple(root.resolve() for root in allowed_roots)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            return self._refuse(url, "only files of the report may be used")
        path = Path(unquote(urlsplit(url).path)).resolve()
        if not any(path.is_relative_to(root) for root in self.allowed_roots):
            return self._refuse(url, "outside the report folder")
        if not path.is_file():
            return self._refuse(url, "not a regular file")
        if path.stat().st_size > MAX_RESOURCE_BYTES:
            return self._refuse(url, "larger than 64 MB")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})

    def _refuse(self, url: str, reason: str) -> URLFetcherResponse:
        self.refused.append(f"{url}: {reason}")
        raise ValueError(f"refused {url}: {reason}")
