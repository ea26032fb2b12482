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
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the bench's reports and edits


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
    options = parser.parse_args()
    if run.VENV_PYTHON.exists() and Path(sys.prefix).resolve() != run.VENV_PYTHON.parent.parent.resolve():
        os.execv(run.VENV_PYTHON, [str(run.VENV_PYTHON), *sys.argv])

    if "revise" in options.edits.split(",") and options.count > run.REVISIONS:
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
    report = run.generate(f"ab-report-{options.copies}", options.copies)
    versions = {"before": code, "after": run.REPO}
    roots = {}
    for name in versions:
        roots[name] = run.OUT / f"ab-{name}"
        shutil.rmtree(roots[name], ignore_errors=True)
        shutil.copytree(report, roots[name], ignore=shutil.ignore_patterns(".report-cache", "dist"))

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
        for edit in options.edits.split(","):
            times: dict[str, list[float]] = {name: [] for name in versions}
            for round_number in range(options.count):
                for name in list(versions)[:: 1 if round_number % 2 == 0 else -1]:
                    run.saved(getattr(run, edit), roots[name], options.pause)  # then built at once
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
