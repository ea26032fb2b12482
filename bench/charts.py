"""Benchmark: what drawing charts costs (issue 22). A report of 20 Vega-Lite charts, bar and line,
their data in CSV files, against the same report with each chart replaced by the SVG it renders
to (a plain image), built side by side in one run.

    python bench/charts.py              # 3 runs of each
    python bench/charts.py --repeat 5

Both reports are written under ``bench/out/`` (git-ignored): ``charts-20`` and ``charts-20-svg``.
Every measurement is a separate process, ``report build PATH -o OUT --timings``, as an author runs
it, alternating the two reports: a cold build (no cache, no outputs, no kept workers nor build
server), a no-op rebuild, and a rebuild after one chart's data changed (in the baseline: its SVG
file, drawn from the changed data beforehand). Builds after the cold one use the kept workers and
build server it left, in a pool of the bench's own (``REPORT_POOL``), as bench/run.py does. Each
chart is its own chapter, so that the cache's count of parsed chapters shows that only the changed
chart was drawn again: the bench checks it on every such rebuild. Times are medians; what counts
is the ratio to the baseline measured in the same run. See bench/README.md for recorded results.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

from run import BENCH_POOL, OUT, REPO, VENV_PYTHON, Run, cold, median, ours, python, stage, stop_kept_processes

CHARTS = 20
CHANGED = 7  # the chart whose data a rebuild changes: one in the middle of the report
MONTHS = [f"2024-{month:02d}" for month in range(1, 13)]
REGIONS = ["北海道", "東北", "関東", "中部", "近畿", "中国", "四国", "九州"]


def spec(number: int) -> dict[str, object]:
    """Chart ``number``'s Vega-Lite spec: odd numbers a bar chart by region, even ones a line chart
    of two series by month."""
    data = {"url": f"../data/chart-{number:02d}.csv"}
    if number % 2:
        encoding = {
            "x": {"field": "地域", "type": "nominal", "sort": None, "title": "地域"},
            "y": {"field": "件数", "type": "quantitative", "title": "件数"},
        }
        return {"width": 300, "data": data, "mark": "bar", "encoding": encoding}
    encoding = {
        "x": {"field": "月", "type": "temporal", "title": "月", "axis": {"format": "%-m月"}},
        "y": {"field": "値", "type": "quantitative", "title": "指数"},
        "color": {"field": "系列", "type": "nominal", "title": None, "legend": {"orient": "bottom"}},
    }
    return {"width": 300, "data": data, "mark": {"type": "line", "point": True}, "encoding": encoding}


def data(number: int, change: int = 0) -> str:
    """Chart ``number``'s CSV, its first value raised by ``change``."""
    draw = random.Random(number)
    if number % 2:
        rows = [f"{region},{draw.randint(20, 200) + (change if i == 0 else 0)}" for i, region in enumerate(REGIONS)]
        return "地域,件数\n" + "\n".join(rows) + "\n"
    rows = [
        f"{month},{series},{draw.randint(80, 120) + (change if (i, series) == (0, '実績') else 0)}"
        for series in ("実績", "計画")
        for i, month in enumerate(MONTHS)
    ]
    return "月,系列,値\n" + "\n".join(rows) + "\n"


def drawn(number: int, change: int = 0) -> str:
    """The SVG chart ``number`` renders to, as the builder draws it."""
    from report.charts import chart

    return chart(json.dumps(spec(number), ensure_ascii=False), lambda url: data(number, change)).svg


def caption(number: int) -> str:
    return f"指標{number}の{'地域別の件数' if number % 2 else '月別の推移'}"


def generate(name: str, as_svg: bool) -> Path:
    """The report: one short chapter per chart, the chart a ``vega-lite`` block with its data in
    ``data/``, or (``as_svg``) an image of the SVG it renders to, in ``figures/``."""
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    for folder in ("chapters", "data", "figures"):
        (root / folder).mkdir(parents=True)
    chapters = []
    for number in range(1, CHARTS + 1):
        (root / "data" / f"chart-{number:02d}.csv").write_text(data(number), encoding="utf-8")
        if as_svg:
            (root / "figures" / f"chart-{number:02d}.svg").write_text(drawn(number), encoding="utf-8")
            figure = f'![{caption(number)}](../figures/chart-{number:02d}.svg "{caption(number)}"){{#fig-{number}}}'
        else:
            block = json.dumps(spec(number), ensure_ascii=False, indent=2)
            figure = f'```vega-lite {{#fig-{number} caption="{caption(number)}"}}\n{block}\n```'
        text = (
            f"# 指標{number} {{#ch-{number}}}\n\n[](#fig-{number})は{caption(number)}を示す。"
            f"数値は試験用に生成したものである。\n\n{figure}\n\n"
            f"[](#fig-{number})のとおり、値は{'地域によって' if number % 2 else '月によって'}異なる。\n"
        )
        chapter = root / "chapters" / f"{number:02d}.md"
        chapter.write_text(text, encoding="utf-8")
        chapters.append(chapter.relative_to(root).as_posix())
    config = [
        f'title = "図{CHARTS}点の試験"',
        'language = "ja"',
        'output = "charts"',
        "chapters = [",
        *(f'  "{chapter}",' for chapter in chapters),
        "]",
    ]
    (root / "report.toml").write_text("\n".join(config) + "\n", encoding="utf-8")
    return root


def change_data(root: Path, as_svg: bool, change: int) -> None:
    """Chart CHANGED's data changed (its first value raised by ``change``); in the baseline, its
    SVG file replaced by the SVG of the changed data, drawn here (not timed)."""
    (root / "data" / f"chart-{CHANGED:02d}.csv").write_text(data(CHANGED, change), encoding="utf-8")
    if as_svg:
        (root / "figures" / f"chart-{CHANGED:02d}.svg").write_text(drawn(CHANGED, change), encoding="utf-8")


def only_one_chapter_parsed(run: Run) -> None:
    """``--timings``' cache table: every chapter's parse (and so its chart) but one from the cache."""
    if not re.search(rf"^parsed\s+{CHARTS - 1}\s+1$", run.stdout, re.MULTILINE):
        raise SystemExit(f"more than the changed chart was drawn again:\n{run.stdout}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    options = parser.parse_args()
    os.environ["REPORT_POOL"] = BENCH_POOL
    os.environ.pop("CI", None)  # (the bench measures what an author's machine does)
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([python(), "-m", "compileall", "-q", str(REPO / "report")], check=True, stdout=subprocess.DEVNULL)
    reports = {False: generate(f"charts-{CHARTS}", as_svg=False), True: generate(f"charts-{CHARTS}-svg", as_svg=True)}
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {options.repeat} run(s) of each", flush=True
    )

    runs: dict[tuple[bool, str], list[Run]] = {}
    for number in range(options.repeat):
        for as_svg, root in reports.items():  # alternated: the load others put on the machine falls on both
            out = root.parent / f"{root.name}-out"
            change_data(root, as_svg, 0)
            measured = {"cold build": cold(root, out), "no-op rebuild": ours(root, out)}
            change_data(root, as_svg, number + 1)
            measured["one chart's data changed"] = edited = ours(root, out)
            only_one_chapter_parsed(edited)
            for what, run in measured.items():
                runs.setdefault((as_svg, what), []).append(run)
            print(
                f"run {number + 1}, {'SVG images' if as_svg else 'charts'}: "
                + ", ".join(f"{what} {run.seconds:.2f} s" for what, run in measured.items()),
                flush=True,
            )
    stop_kept_processes()

    rows = [("measure", "charts", "SVG images", "charts / SVG")]
    for what in ("cold build", "no-op rebuild", "one chart's data changed"):
        charts, images = (median([run.seconds for run in runs[(as_svg, what)]]) for as_svg in (False, True))
        rows.append((what, f"{charts:.2f} s", f"{images:.2f} s", f"{charts / images:.2f}×"))
        if what != "no-op rebuild":  # (a no-op build prepares nothing)
            charts, images = (
                median([stage(run, "prepared") for run in runs[(as_svg, what)]]) for as_svg in (False, True)
            )
            rows.append(
                (f"{what}: parsed and prepared", f"{charts:.2f} s", f"{images:.2f} s", f"{charts / images:.2f}×")
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    table = "\n".join(lines)
    print(f"\n{table}")
    (OUT / "charts-results.md").write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    # Run with the project's virtual environment (report, vl-convert) whatever python started it.
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    main()
