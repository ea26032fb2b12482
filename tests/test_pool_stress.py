"""Kept processes never pile up (report/daemon/pool.py): 40 different report folders built one
after another from the command line, then 8 at once, leave no more than the pool's workers and
one build server, holding less than a gigabyte; every build's outputs are its report's.

Not a timing test: it counts processes and memory. The builds run in a pool of the test's own
(``REPORT_POOL``), stopped at the end.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import pdftotext, run_report, squeeze
from test_kept_workers import new_pool

from report.daemon.settings import SERVER_KIND, WORKER_KIND, kept_processes, pool_size, stop_kept
from report.init import init_report

SEQUENTIAL, AT_ONCE = 40, 8


def test_many_reports_leave_at_most_the_pool_running(tmp_path: Path) -> None:
    pool = new_pool()
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    environment.update(REPORT_KEEP_WORKERS="120", REPORT_POOL=pool)
    roots = []
    for number in range(SEQUENTIAL + AT_ONCE):
        root = tmp_path / f"report-{number:02d}"
        init_report(root, f"Report {number}", "en")
        chapter = next((root / "chapters").glob("*.md"))
        chapter.write_text(chapter.read_text(encoding="utf-8") + f"\nMarker{number:02d}x\n", encoding="utf-8")
        roots.append(root)

    def built(root: Path) -> None:
        run = run_report("build", root, env=environment, timeout=600)
        assert run.returncode == 0, run.stderr
        marker = f"Marker{root.name[-2:]}x"
        assert marker in squeeze(pdftotext(root / "dist" / f"{root.name}.pdf"))
        with zipfile.ZipFile(root / "dist" / f"{root.name}.epub") as epub:
            assert any(marker in epub.read(name).decode() for name in epub.namelist() if name.endswith(".xhtml"))

    try:
        for root in roots[:SEQUENTIAL]:
            built(root)
        after_sequential = kept_processes(pool)
        with ThreadPoolExecutor(AT_ONCE) as builds:
            list(builds.map(built, roots[SEQUENTIAL:]))
        after_all = kept_processes(pool)
    finally:
        stop_kept(kept_processes(pool))
    for kept in (after_sequential, after_all):
        workers = [process for process in kept if process.kind == WORKER_KIND]
        servers = [process for process in kept if process.kind == SERVER_KIND]
        assert 1 <= len(workers) <= pool_size(), kept
        assert len(servers) == 1, kept
        assert sum(process.memory for process in kept) < 2**30
