"""Benchmark: the builder as it is against an earlier commit, after the same edits of one report.

    python bench/ab.py 735ecb6                      # one chapter edited, 5 times each
    python bench/ab.py 735ecb6 --edits revise,lengthen_early,grow --count 5 --copies 20 --pause 2

A change that saves a tenth of a second is lost in the machine's drift between two runs of
``run.py`` (the same code measured a third faster or slower minutes apart). Here two copies
of one generated report (``bench/out/ab-*``, git-ignored) are built by the two versions of the
builder one after the other, after the same edit (``run.py``'s: ``revise``, ``lengthen_early``,
``grow``), in the order before-after, then after-before, each with kept processes of its own
(``REPORT_POOL``), as an author's builds have. Each edit comes ``--pause`` seconds after the
last build ended, as an author's save does (the build server reads the report between builds:
that must neither slow the other version's build nor see the edit), and is built at once. The
earlier commit is taken with ``git archive`` and run with the repository's ``.venv``. Prints
each build's time, the medians and their ratio, and the median of each round's ratio.

A real book (fetched, never committed) is measured the same way with ``--book``: its folder is
copied for each version, and the edits go to its ``--chapter``, at a place in it that moves from
15 % to 85 % of its text over the rounds (the same place for both versions in a round)::

    python bench/ab.py 5900995 --book /tmp/book-ja --chapter src/ch10-03-lifetime-syntax.md \
        --edits paragraph_within,sentence_within --count 8 --pause 3

With ``--stopped``, the kept processes are stopped before each edit: each build is an author's
first after a pause long enough for them to end (the join is made anew).

- ``sentence_within``: a sentence added to the next paragraph of prose (after its first "。");
- ``paragraph_within``: a paragraph of two sentences added before the next paragraph of prose.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the bench's reports and edits

# What the edits within a book's chapter add: text of the book's own language (Japanese, as the
# books this builder is for), a line of it or two.
SENTENCE = "この一文は編集の試しに加えた。"
PARAGRAPH = "この段落は編集の試しに加えた。ここに二つめの文を書き足して、段落を二行ほどにしておく。"
# A paragraph of prose: after a blank line, a line that begins with none of Markdown's block
# marks (a heading, a list, a quote, a table, a fence, raw HTML, an attribute or a number).
_PROSE = re.compile(r"\n\n(?=[^\s#`<|\-!\[>*0-9{:~+=])")


def sentence_within(chapter: Path, fraction: float) -> Path:
    """A sentence added after the first "。" of the next paragraph of prose from ``fraction`` of
    the chapter's text on (at its end, if it has none)."""
    text = chapter.read_text(encoding="utf-8")
    start = _next_prose(text, fraction)
    end = text.find("\n\n", start)
    if end < 0:  # the paragraph ends the text
        end = len(text)
    full_stop = text.find("。", start, end)
    at = full_stop + 1 if full_stop >= 0 else end
    chapter.write_text(text[:at] + SENTENCE + text[at:], encoding="utf-8")
    return chapter


def paragraph_within(chapter: Path, fraction: float) -> Path:
    """A paragraph added before the next paragraph of prose from ``fraction`` of the chapter's
    text on."""
    text = chapter.read_text(encoding="utf-8")
    at = _next_prose(text, fraction)
    chapter.write_text(text[:at] + PARAGRAPH + "\n\n" + text[at:], encoding="utf-8")
    return chapter


def _next_prose(text: str, fraction: float) -> int:
    found = _PROSE.search(text, int(len(text) * fraction)) or _PROSE.search(text)
    if found is None:
        raise SystemExit("the chapter has no paragraph of prose to edit")
    return found.end()


WITHIN = {"sentence_within": sentence_within, "paragraph_within": paragraph_within}


def _in_chapter(edit: Callable[[Path, float], Path], chapter: str, fraction: float, root: Path) -> Path:
    return edit(root / chapter, fraction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="the commit to compare with (the working tree is the other)")
    parser.add_argument("--edits", default="revise", help="run.py's edits, comma-separated")
    parser.add_argument("--count", type=int, default=5, help="builds of each version after each kind of edit")
    parser.add_argument(
        "--copies", type=int, default=20, help="the report: the briefing this many times (20: 586 pages)"
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=run.AUTHOR_PAUSE,
        help="seconds from a build's end to the next edit, as an author pauses: the build server "
        "reads the report's chapters once a build has ended, which must neither slow the other "
        "version's build nor see the next edit",
    )
    parser.add_argument("--book", type=Path, help="a book's folder, measured instead of the generated report")
    parser.add_argument("--chapter", help="with --book: the chapter (its path in the book) the edits go to")
    parser.add_argument(
        "--stopped",
        action="store_true",
        help="the kept processes stopped before each edit: an author's first edit after they went idle",
    )
    options = parser.parse_args()
    edits = options.edits.split(",")
    if options.book is not None and (options.chapter is None or not set(edits) <= WITHIN.keys()):
        parser.error(f"--book takes --chapter, and the edits {', '.join(WITHIN)}")
    if options.book is None and set(edits) & WITHIN.keys():
        parser.error(f"the edits {', '.join(WITHIN)} are a --book's")
    if run.VENV_PYTHON.exists() and Path(sys.prefix).resolve() != run.VENV_PYTHON.parent.parent.resolve():
        os.execv(run.VENV_PYTHON, [str(run.VENV_PYTHON), *sys.argv])

    if "revise" in edits and options.count > run.REVISIONS:
        print(
            f"warning: revise writes {run.REVISIONS} new sentences; its rounds after the"
            f" {run.REVISIONS}th take their layouts from the cache (in both versions)",
            file=sys.stderr,
        )
    code = run.OUT / f"ab-code-{options.before}"
    if not code.exists():
        code.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(run.REPO), "archive", options.before], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    report = options.book or run.generate(f"ab-report-{options.copies}", options.copies)
    versions = {"before": code, "after": run.REPO}
    roots = {}
    for name in versions:
        roots[name] = run.OUT / f"ab-{name}"
        shutil.rmtree(roots[name], ignore_errors=True)
        shutil.copytree(report, roots[name], ignore=shutil.ignore_patterns(".report-cache", "dist", ".git"))

    def build(name: str) -> float:
        environment = {**os.environ, "REPORT_POOL": f"ab-{name}-{os.getpid()}"}
        if name == "before":
            environment["PYTHONPATH"] = str(code)
        command = [run.python(), "-m", "report", "build", str(roots[name]), "-o", str(roots[name] / "dist")]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environment, cwd=versions[name])
        return time.perf_counter() - started

    def stop(name: str) -> None:
        environment = {**os.environ, "REPORT_POOL": f"ab-{name}-{os.getpid()}"}
        subprocess.run([run.python(), "-m", "report", "stop"], capture_output=True, env=environment, cwd=versions[name])

    try:
        for name in versions:
            build(name)  # from nothing, then once more: the kept processes are running
            build(name)
        for edit in edits:
            times: dict[str, list[float]] = {name: [] for name in versions}
            for round_number in range(options.count):
                fraction = 0.15 + 0.7 * round_number / max(options.count - 1, 1)
                for name in list(versions)[:: 1 if round_number % 2 == 0 else -1]:
                    change = (
                        functools.partial(_in_chapter, WITHIN[edit], options.chapter, fraction)
                        if edit in WITHIN
                        else getattr(run, edit)
                    )
                    if options.stopped:
                        stop(name)
                    run.saved(change, roots[name], options.pause)  # then built at once
                    times[name].append(build(name))
                print(f"{edit}: " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in versions), flush=True)
            before, after = (statistics.median(times[name]) for name in versions)
            # Each round's two builds come seconds apart: their ratio is spared the
            # machine's drift over the run, which the medians are not.
            paired = statistics.median(a / b for a, b in zip(times["after"], times["before"], strict=True))
            print(
                f"== {edit}: before {before:.2f} s, after {after:.2f} s, after ÷ before {after / before:.2f}"
                f" (the median of each round's ratio: {paired:.2f})"
            )
    finally:
        for name in versions:
            stop(name)


if __name__ == "__main__":
    main()
