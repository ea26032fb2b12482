"""``report init``: a new report folder that builds as it is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import tomli_w

from report.config import CONFIG_NAME, config_from_values
from report.layouts import read_layout

_CHAPTER_JA = """---
title: はじめに
id: introduction
---

{.lead}
この章は`report init`が作った見本です。自由に書き換えてください。

## 書き方 {#introduction-howto}

本文は Markdown で書きます。脚注[^1]、ルビ（{漢字|かんじ}）、表、図が使えます。
相互参照は空のリンクで書きます。たとえば[](#tbl-example)のように書くと番号が入ります。

Table: 表の見本 {#tbl-example}

| 項目 | 内容 |
|------|------|
| 形式 | PDF と EPUB |
| 組版 | WeasyPrint |

[^1]: 脚注はページの下に入ります。
"""

_CHAPTER_EN = """---
title: Introduction
id: introduction
---

{.lead}
This chapter was written by `report init`. Replace it with your own.

## How to write {#introduction-howto}

Chapters are Markdown with footnotes[^1], tables and figures. A cross-reference is
an empty link: [](#tbl-example) gets its number.

Table: An example table {#tbl-example}

| Item | Value |
|------|-------|
| Formats | PDF and EPUB |
| Engine | WeasyPrint |

[^1]: Footnotes are set at the foot of the page.
"""


class InitError(Exception):
    pass


def init_report(folder: Path, title: str, language: str) -> list[Path]:
    if (folder / "report.toml").exists():
        raise InitError(f"{folder / 'report.toml'} already exists; not overwriting it")
    japanese = language.lower().startswith("ja")
    files = {
        "report.toml": (
            f'title = "{_toml_string(title)}"\n'
            f'language = "{language}"\n'
            f"date = {dt.date.today().isoformat()}\n"
            'chapters = ["chapters/01-introduction.md"]\n'
        ),
        "chapters/01-introduction.md": _CHAPTER_JA if japanese else _CHAPTER_EN,
        "styles/print.css": "/* Your additions to the built-in print stylesheet. */\n",
        "styles/epub.css": "/* Your additions to the built-in EPUB stylesheet. */\n",
        "assets/.gitkeep": "",
        ".gitignore": "dist/\n.report-cache/\n",
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _toml_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def init_from_layout(folder: Path) -> tuple[str, Path]:
    """Write the report.toml equivalent to the book layout ``folder`` has (mdBook, MkDocs,
    GitBook, Quarto), so that the author can take its settings over; (the tool, the file)."""
    root = folder.resolve()
    target = root / CONFIG_NAME
    if target.exists():
        raise InitError(f"{target} already exists; not overwriting it")
    layout = read_layout(root)
    if layout is None:
        raise InitError(f"{folder} has no book.toml, mkdocs.yml, book.json, SUMMARY.md or _quarto.yml to read")
    config_from_values(root, layout.values, layout.lines, layout.sources)  # what would not build is not written
    read = ", ".join(path.relative_to(root).as_posix() for path in layout.sources)
    header = f"# Written by `report init --from` from the {layout.tool} book's {read}.\n"
    target.write_text(header + tomli_w.dumps(layout.values, indent=2), encoding="utf-8")
    return layout.tool, target
