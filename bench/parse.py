"""Benchmark: what parsing the print document's HTML costs WeasyPrint's parser, tinyhtml5 2.1.0,
with its own cache of its tokenizer's patterns (the baseline: it stores each pattern under the
pattern, not under the characters it reads up to, and so makes it anew at every call) and with
the cache the PDF workers give it (``report.render.weasy._TokenizerPatterns``), in one run.

    python bench/parse.py                         # the repository's briefing, best of 5
    python bench/parse.py bench/out/report-500 --repeat 9

Each part of the print document (the cover, the contents, each chapter) is parsed as a worker
parses it before laying it out; a part's time is the best of ``--repeat`` parses, alternating
the two caches. Prints the total of each, their ratio, and the largest part's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import tinyhtml5
from tinyhtml5 import inputstream

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report.assemble import Assembler  # noqa: E402
from report.build import prepare  # noqa: E402
from report.render.weasy import _TokenizerPatterns  # noqa: E402


def best(html: str, repeat: int) -> tuple[float, float]:
    """The best of ``repeat`` parses of ``html`` with tinyhtml5's own cache, and with ours."""
    own, ours = [], []
    for _ in range(repeat):
        for cache, times in (({}, own), (_TokenizerPatterns(), ours)):
            inputstream.characters_until_regex = cache
            start = time.perf_counter()
            tinyhtml5.parse(html)
            times.append(time.perf_counter() - start)
    return min(own), min(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", type=Path, default=REPO, help="a report's folder")
    parser.add_argument("--repeat", type=int, default=5, help="parses of each part with each cache")
    options = parser.parse_args()
    book, _ = prepare(options.report.resolve())
    parts = Assembler(book, profile="print").print_parts
    timed = [(name, len(html), *best(html, options.repeat)) for name, html in parts]
    own = sum(row[2] for row in timed)
    ours = sum(row[3] for row in timed)
    name, size, own_largest, ours_largest = max(timed, key=lambda row: row[1])
    print(f"{len(parts)} parts, {sum(row[1] for row in timed) / 1000:.0f} kB of HTML")
    print(
        f"tinyhtml5's own cache: {own * 1000:.0f} ms; the workers' cache: {ours * 1000:.0f} ms; ratio {ours / own:.2f}"
    )
    print(f"largest part ({name}, {size / 1000:.0f} kB): {own_largest * 1000:.0f} → {ours_largest * 1000:.0f} ms")


if __name__ == "__main__":
    main()
