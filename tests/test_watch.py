"""``report watch`` in a real browser: Debian's Chromium, headless, driven by Playwright.

The watcher runs as an author runs it (``report watch PATH --port N``) on a copy of a
fixture; the page is loaded once and must follow the edits by itself.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import copy_fixture, pdftotext, squeeze, stop
from playwright.sync_api import sync_playwright

from report.watch import PreviewState

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install chromium); CI installs it"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = copy_fixture("ja-basic", tmp_path)
    port = free_port()
    log = (tmp_path / "watch.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "report", "watch", str(root), "--port", str(port)],
        stdout=log,
        stderr=log,
        start_new_session=True,  # stopped with its workers, whatever happens
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if b'data-ok="true"' in response.read():
                        break  # serving, and the first preview is built
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "watch.log").read_text()
            assert time.monotonic() < deadline, "report watch did not start"
            time.sleep(0.1)
        yield root, url
    finally:
        stop(process, grace=20)
        log.close()


def eventually(condition: Callable[[], bool], seconds: float, failure: str) -> None:
    """Waits until ``condition`` holds; fails with ``failure`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def server_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "__report/update?have=0", timeout=10) as response:
        state: dict[str, Any] = json.loads(response.read())
        return state


def test_only_this_server_is_told_what_a_page_shows(watching: tuple[Path, str]) -> None:
    _, url = watching
    port = url.rsplit(":", 1)[1].strip("/")
    shown = urllib.request.Request(url + "__report/shown?version=99", method="POST")
    with pytest.raises(urllib.error.HTTPError, match="403"):
        forged = urllib.request.Request(shown.full_url, method="POST", headers={"Host": f"example.com:{port}"})
        urllib.request.urlopen(forged, timeout=10)
    assert server_state(url)["shown"] < 99
    with urllib.request.urlopen(shown, timeout=10) as response:
        assert response.status == 204
    assert server_state(url)["shown"] == 99


def preview_has(text: str) -> str:
    return f"document.getElementById('report-preview').innerText.includes({text!r})"


def test_preview_follows_edits_and_shows_errors(watching: tuple[Path, str]) -> None:
    root, url = watching
    chapter = root / "chapters" / "02-method.md"
    original = chapter.read_text(encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            assert "実験の設計" in page.inner_text("#report-preview")
            page.evaluate("window.notReloaded = true")  # lost if the page were loaded again
            page.evaluate("document.getElementById('intro').dataset.kept = 'yes'")  # lost if replaced

            # An edit shows up in the open page, which tells the server once it is painted (the
            # PDF and EPUB wait for that, so as not to slow the page down). Only the edited
            # chapter is replaced, and the page then shows what a page loaded anew shows.
            chapter.write_text(original + "\n監視中に書き足した段落。\n", encoding="utf-8")
            page.wait_for_function(preview_has("監視中に書き足した段落"), timeout=30_000)
            assert page.evaluate("window.notReloaded") is True
            assert page.evaluate("document.getElementById('intro').dataset.kept") == "yes"
            anew = browser.new_page()
            anew.goto(url)
            assert anew.inner_text("#report-preview") == page.inner_text("#report-preview")
            anew.close()
            version = int(page.eval_on_selector("#report-preview", "main => main.dataset.version"))
            eventually(lambda: server_state(url)["shown"] >= version, 30, "the page did not say it shows the edit")

            # A broken cross-reference: the page shows path:line: message instead of the report.
            broken = original + "\n監視中に書き足した段落。\n\n壊れた参照は[](#no-such-id)にある。\n"
            chapter.write_text(broken, encoding="utf-8")
            line = broken.split("\n").index("壊れた参照は[](#no-such-id)にある。") + 1
            page.wait_for_selector(".report-errors", timeout=30_000)
            shown = page.inner_text("#report-preview")
            assert f'chapters/02-method.md:{line}: cross-reference to unknown id "#no-such-id"' in shown
            assert "実験の設計" not in shown  # not the stale report

            # Fixed: the report is back.
            chapter.write_text(original + "\n監視中に書き足した段落。\n", encoding="utf-8")
            page.wait_for_function(preview_has("監視中に書き足した段落"), timeout=30_000)
            assert page.query_selector(".report-errors") is None
            assert page.evaluate("window.notReloaded") is True
        finally:
            browser.close()

    # The PDF is rebuilt in the background with the edit.
    pdf = root / "dist" / "ja-basic.pdf"
    eventually(
        lambda: pdf.is_file() and "監視中に書き足した段落" in squeeze(pdftotext(pdf)), 90, "the PDF was not rebuilt"
    )


def test_the_pdf_and_epub_wait_for_the_page_to_show_an_edit_but_not_for_ever() -> None:
    state = PreviewState()
    assert state.wait_until_shown(1, seconds=0), "no page open: at once"
    state.page_opened(+1)
    assert not state.wait_until_shown(1, seconds=0.05), "a page open that has not shown it: up to the limit"
    threading.Timer(0.05, state.page_shows, args=(1,)).start()
    assert state.wait_until_shown(1, seconds=30), "until the page shows it"
    assert not state.wait_until_shown(2, seconds=0)
    state.page_opened(-1)
    assert state.wait_until_shown(2, seconds=0), "the page went away"
