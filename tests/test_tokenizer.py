"""WeasyPrint's HTML parser, tinyhtml5, with the cache of its tokenizer's patterns that
report.render.weasy gives it: the same trees, each pattern made once."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
import tinyhtml5
from hypothesis import given, settings
from hypothesis import strategies as st
from tinyhtml5 import inputstream

from report.render.weasy import _TokenizerPatterns

# Markup and text as the print document has them: tags, attributes, entities, comments,
# Japanese, line ends of every kind, and the characters the tokenizer reads up to.
PIECES = st.sampled_from(
    [
        "<p>",
        "</p>",
        '<a class="page-list" data-page-of="a b" href="#a">',
        "</a>",
        "<table><tr><td>",
        "<!-- 注 -->",
        "&amp;",
        "&lt;",
        "&#x3042;",
        "<pre>\n  code -- x</pre>",
        "\r\n",
        "\r",
        "\t",
        " ",
        "\0",
        "本文、句点。",
        "text",
        "<",
        "&",
        "-",
        "<br/>",
    ]
)


class _Counted(_TokenizerPatterns):
    made = 0

    def __missing__(self, key: tuple[object, bool]) -> object:
        self.made += 1
        return super().__missing__(key)


def _parsed(html: str, patterns: dict[object, object]) -> bytes:
    inputstream.characters_until_regex = patterns
    return ElementTree.tostring(tinyhtml5.parse(html))


@pytest.fixture(autouse=True)
def _tinyhtml5_s_own_cache() -> object:
    kept = inputstream.characters_until_regex
    yield
    inputstream.characters_until_regex = kept


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=60).map("".join))
def test_the_tokenizer_parses_with_each_pattern_made_once_the_trees_it_parsed(html: str) -> None:
    patterns = _Counted()
    assert _parsed(html, patterns) == _parsed(html, {})  # tinyhtml5's own: a pattern made at every call
    _parsed(html, patterns)
    assert patterns.made == len(patterns)
