"""``report watch``'s preview sent by blocks: a page that shows an earlier version is sent only
the blocks (cover, contents, chapters) that changed since, and what it then shows is what a
page loaded anew shows. The page's side (report/preview/live.js) is played here by
:func:`applied`; tests/test_watch.py runs the real one in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import copy_fixture

from report.watch import BLOCK_MARK, Watcher

_MARK = re.compile(rf"<!--{re.escape(BLOCK_MARK)}([^>]*)-->")


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Watcher]:
    watching = Watcher(copy_fixture("ja-basic", tmp_path), port=0, echo=lambda _line, _problem: None)
    try:
        yield watching
    finally:
        watching.server.server_close()


def applied(html: str, blocks: list[tuple[str, str]]) -> str:
    """What live.js makes of a page showing ``html`` sent ``blocks``: each block's nodes, after
    its mark up to the next, replaced."""
    pieces = _MARK.split(html)  # text before the first mark, then key, block, key, block…
    new = dict(blocks)
    assert set(new) <= set(pieces[1::2])
    return pieces[0] + "".join(
        f"<!--{BLOCK_MARK}{key}-->" + new.get(key, block) for key, block in zip(pieces[1::2], pieces[2::2], strict=True)
    )


def test_a_page_is_sent_only_the_chapter_that_changed(watcher: Watcher) -> None:
    first = watcher.update_preview([])
    assert [key for key, _ in first.blocks] == ["warnings", "cover", "contents", "intro", "method", "appendix"]
    chapter = watcher.root / "chapters" / "02-method.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n監視中に書き足した段落。\n", encoding="utf-8")
    second = watcher.update_preview([chapter])
    sent = watcher.state.changes_since(second, str(first.version))
    assert sent is not None and [key for key, _ in sent] == ["method"]
    assert "監視中に書き足した段落" in sent[0][1]
    assert applied(first.html, sent) == second.html
    # Several versions behind: the blocks changed since the oldest of them.
    intro = watcher.root / "chapters" / "01-intro.md"
    intro.write_text(intro.read_text(encoding="utf-8") + "\n序論にも一文。\n", encoding="utf-8")
    third = watcher.update_preview([intro])
    sent = watcher.state.changes_since(third, str(first.version))
    assert sent is not None and [key for key, _ in sent] == ["intro", "method"]
    assert applied(first.html, sent) == third.html
    assert watcher.state.changes_since(third, str(third.version)) == []


def test_a_page_that_cannot_be_brought_up_to_date_by_blocks_is_sent_the_whole(watcher: Watcher) -> None:
    first = watcher.update_preview([])
    config = watcher.root / "report.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"chapters/90-appendix.md",', ""), encoding="utf-8")  # a chapter less
    fewer = watcher.update_preview([config])
    assert [key for key, _ in fewer.blocks][-1] == "method"
    assert watcher.state.changes_since(fewer, str(first.version)) is None  # other blocks
    assert watcher.state.changes_since(fewer, "0") is None  # a version never shown
    assert watcher.state.changes_since(fewer, "-1") is None  # what live.js asks when a block is lost
    chapter = watcher.root / "chapters" / "02-method.md"
    chapter.write_text("---\nid: method\n---\n\n# 方法\n\n[](#no-such-id)\n", encoding="utf-8")
    broken = watcher.update_preview([chapter])
    assert not broken.ok and broken.blocks == ()
    assert watcher.state.changes_since(broken, str(fewer.version)) is None  # the errors: the whole page
