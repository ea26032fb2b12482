"""Benchmark: a resumed layout that takes the last layout's computed styles
(``report.render.resume._style_key``) against the same layout computing them again, in one run.

    python bench/styles.py                           # the repository's briefing
    python bench/styles.py bench/out/report-500 --rounds 6 --series 3

A PDF worker (in this process) lays out the print document's longest chapter, then lays it out
``--rounds`` times more, each time with one more of its own paragraphs appended (an author
writing on at the end), each layout resuming the one before: in one series the styles are
taken, in the other the last layout's are forgotten first, so that they are computed again. The
two series alternate layout by layout, the garbage collector off while one is timed; there are
``--series`` pairs of them. Prints the median layout of each, and the median of each pair's
difference (the two layouts of a pair lay out the same HTML, resuming the same).
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report.assemble import Assembler  # noqa: E402
from report.build import prepare  # noqa: E402
from report.cache import CACHE_DIR_NAME, Cache  # noqa: E402
from report.render import weasy  # noqa: E402
from report.render.pdf import PdfRenderer  # noqa: E402

_PARAGRAPH = re.compile(r"<p\b[^>]*>.*?</p>", re.DOTALL)


def lay_out(worker: weasy.Worker, name: str, html: str, take_styles: bool) -> float:
    """Seconds to lay out ``html`` as part ``name``, resuming its last layout."""
    last = worker.resumable.get(name)
    if last is not None and not take_styles:
        last.styled.clear()
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        worker.layout(weasy.PartJob(f"{name}-{started}", html, name=name))
        return time.perf_counter() - started
    finally:
        gc.enable()
        worker.laid_out.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", type=Path, default=REPO, help="a report's folder")
    parser.add_argument("--rounds", type=int, default=6, help="layouts resumed in each series")
    parser.add_argument("--series", type=int, default=3, help="pairs of series")
    options = parser.parse_args()
    root = options.report.resolve()
    book, _ = prepare(root)
    assembler = Assembler(book, profile="print")
    styles = PdfRenderer(Cache(root / CACHE_DIR_NAME), None)._styles(assembler)
    name, html = max(assembler.print_parts[2:], key=lambda part: len(part[1]))  # past the cover and contents
    paragraphs = [p for p in _PARAGRAPH.findall(html) if len(p) > 200]
    end = html.rfind("</section>")
    versions = [
        html[:end] + "\n".join(paragraphs[: k % len(paragraphs) + 1]) + html[end:] for k in range(options.rounds)
    ]
    weasy.load_weasyprint()
    worker = weasy.Worker()
    worker.use(styles)
    taken, computed = [], []
    for series in range(options.series):
        for take_styles in (True, False):
            lay_out(worker, f"{take_styles}-{series}", html, take_styles)
        for version in versions:
            taken.append(lay_out(worker, f"True-{series}", version, True))
            computed.append(lay_out(worker, f"False-{series}", version, False))
    differences = [b - a for a, b in zip(taken, computed, strict=True)]
    print(f"{name}: {len(html) / 1000:.0f} kB, {len(versions)} layouts resumed in each of {options.series} series")
    print(
        f"styles computed again: {statistics.median(computed) * 1000:.0f} ms; "
        f"taken from the last layout: {statistics.median(taken) * 1000:.0f} ms; "
        f"ratio {statistics.median(taken) / statistics.median(computed):.2f}; "
        f"each pair's difference, median: {statistics.median(differences) * 1000:.1f} ms "
        f"({sum(d > 0 for d in differences)} of {len(differences)} pairs faster)"
    )


if __name__ == "__main__":
    main()
