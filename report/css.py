"""A report's own stylesheets may style, never load: ``@import`` and ``url()`` other
than ``data:`` are removed (the PDF's sandbox would refuse them anyway, and an EPUB
must not point at files it does not carry)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tinycss2


@dataclass(frozen=True)
class Removed:
    line: int
    what: str


def _urls(tokens: list[tinycss2.ast.Node]) -> Iterator[str]:
    for token in tokens:
        if token.type == "url":
            yield token.value
        elif token.type == "function":
            if token.lower_name == "url":
                yield "".join(str(getattr(arg, "value", "")) for arg in token.arguments)
            else:
                yield from _urls(token.arguments)
        elif token.type in ("() block", "[] block", "{} block"):
            yield from _urls(token.content)


def _loads_something(tokens: list[tinycss2.ast.Node]) -> bool:
    return any(not url.startswith("data:") for url in _urls(tokens))


def clean_stylesheet(text: str) -> tuple[str, tuple[Removed, ...]]:
    """The stylesheet without rules and declarations that load resources, and what was removed."""
    removed: list[Removed] = []
    rules = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    return "\n".join(_clean_rules(rules, removed)) + "\n", tuple(removed)


def _clean_rules(rules: list[tinycss2.ast.Node], removed: list[Removed]) -> Iterator[str]:
    for rule in rules:
        if rule.type == "at-rule" and rule.lower_at_keyword == "import":
            removed.append(Removed(rule.source_line, "@import"))
        elif rule.type in ("qualified-rule", "at-rule") and rule.content is not None:
            head = (f"@{rule.at_keyword}" if rule.type == "at-rule" else "") + tinycss2.serialize(rule.prelude)
            items = tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True)
            yield f"{head.strip()} {{ {' '.join(_clean_block(items, removed))} }}"
        elif rule.type == "at-rule" or rule.type == "qualified-rule":
            yield rule.serialize()


def _clean_block(items: list[tinycss2.ast.Node], removed: list[Removed]) -> Iterator[str]:
    for item in items:
        if item.type == "declaration":
            if _loads_something(item.value):
                removed.append(Removed(item.source_line, f"{item.name}: url(…)"))
            else:
                yield f"{item.serialize()};"
        elif item.type in ("qualified-rule", "at-rule"):
            yield from _clean_rules([item], removed)


def report_stylesheet(root: Path, name: str) -> str | None:
    path = root / "styles" / name
    if not path.is_file():
        return None
    return clean_stylesheet(path.read_text(encoding="utf-8"))[0]
