"""Charts from data: a Vega-Lite spec in a ```` ```vega-lite {#fig-x caption="…"} ```` block, its
data inline or in a CSV, TSV or JSON file of the report.

vl-convert draws the chart as SVG, offline (no URL is allowed: a data file is read by the parse
stage, inside the report folder, and handed to Vega as inline values), its text kept as text in
the bundled sans faces, so that the SVG figure path (report/svg.py) inlines it and the PDF and
the EPUB set its labels in the report's fonts. The data is also kept as a table, which the EPUB
shows behind a ``<details>`` for readers who cannot see the chart.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from report.cache import code_fingerprint, digest
from report.fonts import FACES, active_cache, font_digest, font_stack, fonts_dir

# Latin first, the CJK face behind it, then the faces of other scripts and symbols, per
# character, as text in a Latin language is set. No space after the commas: WeasyPrint reads an
# SVG's font-family by cutting it at commas and taking the quotes off each end, spaces left, so
# that only the first family was found, and the rest came from whatever face fontconfig found
# with the letters (an Arabic label from Noto Sans Math, whose letters do not join).
CHART_FONT = ",".join(f'"{family}"' for family in font_stack("sans", "en"))
DATA_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json"}
# Printed size of Vega's pixel: its 10 px labels come out at about 9.5 pt, near the body text.
MM_PER_CHART_PIXEL = 1 / 3
_ROOT_WIDTH = re.compile(r'<svg [^>]*?\bwidth="([\d.]+)"')
MAX_TABLE_ROWS = 500  # the EPUB's table of a chart's data; more is not read, but the chart shows it all


class ChartError(ValueError):
    """A chart that cannot be drawn; the message says why."""


@dataclass(frozen=True)
class Chart:
    svg: str  # as vl-convert drew it (not yet cleaned)
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def table_html(self) -> str:
        head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>\n" for row in self.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def chart(spec_text: str, read_data: Callable[[str], str]) -> Chart:
    """The chart ``spec_text`` describes; ``read_data(url)`` gives the text of a data file of the
    report (or raises :class:`ChartError`)."""
    try:
        spec = json.loads(spec_text)
    except json.JSONDecodeError as error:
        raise ChartError(f"the Vega-Lite spec is not JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(spec, dict):
        raise ChartError("the Vega-Lite spec is not a JSON object")
    data = spec.get("data")
    values = _values(data)
    if isinstance(data, dict) and isinstance(data.get("url"), str):
        spec["data"], values = _inline(data, read_data)
    columns = tuple(dict.fromkeys(key for row in values[:MAX_TABLE_ROWS] for key in row))
    rows = tuple(tuple(_cell(row.get(c)) for c in columns) for row in values[:MAX_TABLE_ROWS])
    return Chart(_cached_draw(spec), columns, rows)


def _inline(data: dict[str, Any], read_data: Callable[[str], str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``{"url": "trade.csv"}`` → the file's text as inline values in the format it is in (Vega
    types them as it would the file it read itself), and its rows for the table."""
    url = str(data["url"])
    format_: dict[str, Any] = data["format"] if isinstance(data.get("format"), dict) else {}
    kind = format_.get("type") or DATA_FORMATS.get(PurePosixPath(url).suffix.lower())
    if kind not in DATA_FORMATS.values():
        raise ChartError(f'chart data "{url}" is not CSV, TSV or JSON (name it .csv, .tsv or .json)')
    text = read_data(url)
    inline = {**{k: v for k, v in data.items() if k != "url"}, "values": text, "format": {**format_, "type": kind}}
    if kind != "json":
        rows = list(csv.DictReader(io.StringIO(text), delimiter="," if kind == "csv" else "\t"))
        return inline, [dict(row) for row in rows]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ChartError(f'chart data "{url}" is not JSON: {error.msg} (line {error.lineno})') from None
    return inline, _values({"values": parsed})


def _values(data: Any) -> list[dict[str, Any]]:
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list):
        return []
    return [row if isinstance(row, dict) else {"value": row} for row in values]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _cached_draw(spec: dict[str, Any]) -> str:
    """:func:`_draw`, kept in the build's cache, keyed by the spec (its data inlined), the faces
    and the code: a chapter parsed again after an edit of its text draws none of its charts
    again (vl-convert takes seconds to start, and a second or more a chart)."""
    cache = active_cache()
    if cache is None:
        return _draw(spec)
    faces = [font_digest(face.file, cache) for face in FACES if face.style == "sans"]
    key = digest(code_fingerprint("report.charts"), *faces, json.dumps(spec, sort_keys=True, ensure_ascii=False))
    return cache.text("chart", key, lambda: _draw(spec))


def _draw(spec: dict[str, Any]) -> str:
    converter = _converter()
    config = {"font": CHART_FONT, **(spec.get("config") or {})}
    try:
        drawn = str(converter.vegalite_to_svg(spec, config=config, allowed_base_urls=[]))
    except ValueError as error:
        # vl-convert's message, then a JavaScript stack: the first line that says something.
        lines = [
            line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().startswith("at ")
        ]
        reason = lines[-1] if lines else "it cannot be drawn"
        raise ChartError(f"the Vega-Lite spec cannot be drawn: {reason}") from None
    # Its own width (the SVG figure path drops width and height), so that every chart's labels
    # print at one size, however wide the chart.
    width = _ROOT_WIDTH.search(drawn)
    if width is None:
        return drawn
    return drawn.replace("<svg ", f'<svg style="width: {float(width.group(1)) * MM_PER_CHART_PIXEL:.1f}mm" ', 1)


@cache
def _converter() -> Any:
    import vl_convert

    vl_convert.register_font_directory(str(fonts_dir()))  # text measured in the faces it is set in
    return vl_convert
