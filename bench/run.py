"""Benchmark: our incremental builder against the naive pipeline, side by side in one run.

    python bench/run.py              # 60-page report (3 runs each) and a ~500-page one
    python bench/run.py --quick      # 60-page report, 1 run each, no 500-page report
    python bench/run.py --repeat 5 --skip-big
    python bench/run.py --only-many  # only 40 small reports built one after another (--many N)

It generates Japanese reports from the briefing's chapters, repeated with their ids made
unique (``bench/out/``, git-ignored), then runs every measurement as a separate process,
the way an author runs it, alternating naive and ours so that other load on the machine
falls on both. Times are medians; what counts are the ratios to the naive pipeline
measured in the same run. Peak memory is the largest sum of the resident memory of the
command's processes and of those earlier builds left running for it: the PDF workers and
the build server (sampled every 20 ms). Each measured edit is saved two seconds after the last
build ended (``AUTHOR_PAUSE``), as an author's is, then built at once. See bench/README.md for the
recorded results.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
BENCH_POOL = f"bench-{os.getpid()}"  # the bench's kept processes: never the author's own (REPORT_POOL)
BODY_PAGES_PER_COPY = 25  # the briefing without its cover, title page, contents and colophon
# Seconds from a build's end to the author's next save: the build server reads the report between
# builds (report.build.keep_last_build), as it can while an author reads what was built.
AUTHOR_PAUSE = 2.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


# --- the reports ---------------------------------------------------------------------------------


def generate(name: str, copies: int) -> Path:
    """The briefing's chapters ``copies`` times, every id suffixed with its copy's number."""
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "chapters").mkdir(parents=True)
    shutil.copytree(REPO / "assets", root / "assets", ignore=shutil.ignore_patterns("fonts"))
    config = tomllib.loads((REPO / "report.toml").read_text(encoding="utf-8"))
    sources = [REPO / chapter for chapter in config["chapters"]]
    colophon = [path for path in sources if "colophon" in path.name]
    body = [path for path in sources if path not in colophon]
    chapters = []
    for copy in range(1, copies + 1):
        for path in body + (colophon if copy == copies else []):
            target = root / "chapters" / f"r{copy:03d}-{path.name}"
            target.write_text(_unique_ids(path.read_text(encoding="utf-8"), f"r{copy}"), encoding="utf-8")
            chapters.append(target.relative_to(root).as_posix())
    for extra in (config.get("bibliography"), config.get("csl")):  # the files the report names
        if extra:
            (root / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / extra, root / extra)
    lines = [
        f"{key} = {_toml_value(value)}"
        for key, value in config.items()
        if key not in ("chapters", "output", "pdf", "epub", "identifier")
    ]
    lines += ['output = "bench"']
    lines += ["chapters = [", *(f'  "{chapter}",' for chapter in chapters), "]"]
    for table in ("pdf", "epub"):
        if table in config:
            lines += [f"[{table}]", *(f"{k} = {_toml_value(v)}" for k, v in config[table].items())]
    (root / "report.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    middle = _middle_chapter(root)  # the sentence edit() rewrites in place
    middle.write_text(middle.read_text(encoding="utf-8") + f"\n{_REVISION.format(0)}\n", encoding="utf-8")
    return root


def _toml_value(value: object) -> str:
    """A value of report.toml written back: dates as TOML dates, the rest as JSON (TOML's syntax for them)."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False)


def _unique_ids(text: str, suffix: str) -> str:
    text = re.sub(r"^id:\s*(\S+)\s*$", lambda m: f"id: {m.group(1)}-{suffix}", text, flags=re.MULTILINE)
    text = re.sub(r"\]\(#([\w-]+)\)", lambda m: f"](#{m.group(1)}-{suffix})", text)
    return re.sub(r"\{[^{}\n]*\}", lambda m: re.sub(r"#([A-Za-z][\w-]*)", rf"#\1-{suffix}", m.group(0)), text)


# --- running and measuring -----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_mb: float
    stdout: str
    cpu: float  # processor seconds (user and system) of every process the command ran or used


def _tree_rss_kb(pid: int) -> int:
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(child) for child in (task / "children").read_text().split()]
                pending += [child for child in children if not _same_memory(child, current)]
        except (OSError, AttributeError, ValueError):
            continue
    return total


# kcmp(2), by machine: whether two processes share one address space.
_KCMP_SYSCALL = {"x86_64": 312, "aarch64": 272}.get(os.uname().machine)
_KCMP_VM = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # once: _tree_rss_kb samples every 20 ms


def _same_memory(pid: int, other: int) -> bool:
    """Whether ``pid`` runs in the memory of ``other``: a child that posix_spawn started, before it
    runs its program (the build starting the build server as it ends, its parent waiting), whose
    resident memory is its parent's. Counted twice, it made a cold build's peak 580 MB instead of
    440 MB in four builds of ten."""
    if _KCMP_SYSCALL is None:
        return False
    return int(_LIBC.syscall(_KCMP_SYSCALL, pid, other, _KCMP_VM, 0, 0)) == 0


def _cpu_seconds(pid: int) -> float:
    """The processor time a running process, and its children that have ended, have used so far
    (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def _kept() -> list[int]:
    """The processes earlier builds left running that a build uses: the PDF workers of the bench's
    pool (report/daemon/pool.py) and its build server (report/daemon/server.py), which forks the
    process that runs the build. A build that uses them is charged their memory, and the
    processor time they (and the server's children) used meanwhile."""
    from report.daemon.settings import kept_processes  # (the bench runs in the builder's environment: see the end)

    return [process.pid for process in kept_processes(BENCH_POOL)]


def _stop(pids: list[int]) -> None:
    """Stop the processes, and wait until they have."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _server_listening(seconds: float = 10) -> None:
    """Until the build server a build started takes commands (it imports the builder first), as
    it does long before an author's next save."""
    from report.daemon.client import server_address
    from report.daemon.settings import builder_stamp

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(server_address(BENCH_POOL, builder_stamp()))
                return
            except OSError:
                time.sleep(0.05)


def measure(command: list[str], root: Path | None = None) -> Run:
    kept = _kept() if root is not None else []
    kept_cpu = {pid: _cpu_seconds(pid) for pid in kept}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(process.pid) + sum(_tree_rss_kb(pid) for pid in kept))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stdout}\n{stderr}")
    # The command and every process it waited for; kept workers are nobody's children: those it
    # used, and those it started and left running, are charged what they used meanwhile (one
    # gone since, e.g. of a cache folder a cold build deleted, did nothing for it).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
    left = _kept() if root is not None else []
    cpu += sum(max(0.0, _cpu_seconds(pid) - kept_cpu.get(pid, 0.0)) for pid in {*kept, *left})
    return Run(seconds, peak[0] / 1024, stdout, cpu)


def ours(root: Path, out: Path, *options: str) -> Run:
    return measure([python(), "-m", "report", "build", str(root), "-o", str(out), "--timings", *options], root)


def ours_here(root: Path, out: Path, *options: str) -> Run:
    """The build in the command's own process, as before the build server: the kept workers, but
    the builder imported afresh."""
    command = [python(), "-c", "import sys; from report.cli import run; run(sys.argv[1:])", "build", str(root)]
    return measure([*command, "-o", str(out), "--timings", *options], root)


def ours_unkept(root: Path, out: Path, *options: str) -> Run:
    """A build that neither uses nor leaves kept workers (REPORT_KEEP_WORKERS=0)."""
    os.environ["REPORT_KEEP_WORKERS"] = "0"
    try:
        return ours(root, out, *options)
    finally:
        del os.environ["REPORT_KEEP_WORKERS"]


def stop_kept_processes() -> None:
    """The bench's kept workers and build server, stopped (they would otherwise wait 10 minutes)."""
    _stop(_kept())


def small_reports(count: int) -> list[Path]:
    """``count`` small reports as ``report init`` makes them, each in its folder, with its title."""
    base = OUT / "many"
    shutil.rmtree(base, ignore_errors=True)
    roots = [base / f"report-{number:02d}" for number in range(count)]
    for number, root in enumerate(roots):
        command = [python(), "-m", "report", "init", str(root), "--title", f"報告 {number}"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return roots


def many_reports(count: int) -> tuple[list[Run], list[Run], list[tuple[str, int]]]:
    """``count`` small reports built one after another, each from nothing: with no workers kept,
    then with the pool kept; the kind and memory of each process kept after the second loop."""
    from report.daemon.settings import kept_processes

    roots = small_reports(count)
    stop_kept_processes()
    unkept = [ours_unkept(root, root / "dist") for root in roots]
    for root in roots:
        shutil.rmtree(root / ".report-cache")
        shutil.rmtree(root / "dist")
    kept = [ours(root, root / "dist") for root in roots]
    left = [(process.kind, process.memory) for process in kept_processes(BENCH_POOL)]
    return unkept, kept, left


def add_many_reports(results: Results, count: int) -> None:
    from report.daemon.settings import SERVER_KIND, pool_size

    unkept, kept, left = many_reports(count)
    total_unkept, total_kept = sum(r.seconds for r in unkept), sum(r.seconds for r in kept)
    print(
        f"{count} small reports one after another: {total_kept:.1f} s, no workers kept {total_unkept:.1f} s", flush=True
    )
    results.note(f"{count} small reports one after another, each from nothing:", "no workers kept", "the pool kept")
    results.add("  their time in all", total_unkept, total_kept, "s", "≤ 1×")
    results.add("  peak memory", max(r.peak_mb for r in unkept), max(r.peak_mb for r in kept), "MB")
    servers = sum(kind == SERVER_KIND for kind, _ in left)
    memory_left = sum(size for _, size in left) / 2**20
    results.note(
        "  kept processes left after them",
        "none",
        f"{len(left) - servers} workers + {servers} server, {memory_left:.0f} MB",
        f"≤ {pool_size()} + 1, ≤ 1,024 MB",
        "yes" if len(left) - servers <= pool_size() and servers <= 1 and memory_left <= 1024 else "NO",
    )


def naive(root: Path, out: Path, *options: str) -> tuple[Run, dict[str, float]]:
    run = measure([python(), str(BENCH / "naive.py"), str(root), str(out), *options])
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def stage(run: Run, name: str) -> float:
    """When a stage ended, from ``report build --timings``, in seconds since the build started."""
    found = re.search(rf"^{name} +([\d.]+) s", run.stdout, re.MULTILINE)
    return float(found.group(1)) if found else math.nan


def written_again(run: Run) -> bool:
    """Whether the build wrote the EPUB twice: the layout it was written ahead from (the last
    build's) was wrong."""
    found = re.search(r"^epub +\d+ +(\d+)$", run.stdout, re.MULTILINE)
    return found is not None and int(found.group(1)) > 1


def cold(root: Path, out: Path) -> Run:
    """A build from nothing: no cache, no outputs, no kept workers nor build server (they are the
    user's, shared by every report: an author's first build of the day has none)."""
    shutil.rmtree(root / ".report-cache", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    _stop(_kept())
    run = ours(root, out)
    _server_listening()
    return run


_REVISION = "本稿の分析は{}回目の改訂で補足された。"


def _economy_chapters(root: Path) -> list[Path]:
    """The generated report's copies of one chapter, in order: the chapters the edits go to."""
    return sorted((root / "chapters").glob("*-03-economy.md"))


def _middle_chapter(root: Path) -> Path:
    chapters = _economy_chapters(root)
    return chapters[len(chapters) // 2]


def edit(root: Path, number: int) -> Path:
    """Rewrite a sentence of a chapter in the middle of the report (of characters it already
    has; as long as it was for a one-digit ``number``): the chapter keeps its pages, the others
    keep their folios."""
    chapter = _middle_chapter(root)
    text = chapter.read_text(encoding="utf-8")
    chapter.write_text(re.sub(_REVISION.format(r"\d+"), _REVISION.format(number), text), encoding="utf-8")
    return chapter


def saved(edit: Callable[[Path], Path], root: Path, pause: float = AUTHOR_PAUSE) -> Path:
    """An author's next edit of ``root``, saved ``pause`` seconds after the last build."""
    time.sleep(pause)
    return edit(root)


# The sentences revise() writes after the report's own (revision 0): the next edit writes a
# sentence built before, whose layout the cache has.
REVISIONS = 9


def revise(root: Path) -> Path:
    """:func:`edit` with the next one-digit revision number (never the one already there)."""
    found = re.search(_REVISION.format(r"(\d+)"), _middle_chapter(root).read_text(encoding="utf-8"))
    return edit(root, (int(found.group(1)) + 1) % (REVISIONS + 1) if found else 1)


# The characters of text a full page of the large report's body holds: 1,430–1,560 on its body
# pages (pdftotext, spaces and line ends left out). Until the 63rd run, grow() added 3,000
# characters of Markdown, index terms' markup counted: some 2,900 printed, two pages.
PAGE_OF_TEXT = 1500


def grow(root: Path, chapter: Path | None = None, unindexed: bool = False) -> Path:
    """Add a page of text to the same chapter (its own paragraphs again, until their text, index
    terms' markup left out, fills a page): every page after it moves, so every later chapter gets
    new folios (which the join writes: they are not drawn again). The paragraphs' index terms
    come with them (the index lists the new page), unless ``unindexed`` (their text alone)."""
    chapter = chapter or _middle_chapter(root)
    text = chapter.read_text(encoding="utf-8")
    paragraphs = [
        p for p in text.split("\n\n") if len(p) > 150 and not p.lstrip().startswith(("#", "|", "-", "!", ":"))
    ]
    if unindexed:
        paragraphs = [_INDEX_TERM.sub(r"\1", p) for p in paragraphs]
    added: list[str] = []
    while sum(len(_INDEX_TERM.sub(r"\1", p)) for p in added) < PAGE_OF_TEXT:
        added.append(paragraphs[len(added) % len(paragraphs)])
    chapter.write_text(text + "\n\n" + "\n\n".join(added) + "\n", encoding="utf-8")
    return chapter


def grow_beside(root: Path) -> Path:
    """:func:`grow` for the chapter after the middle one: the large report's rounds each add a
    page, and a round's plain edit (of the middle chapter) is then of a chapter as long as in the
    round before. (Until the 21st run, the rounds grew the chapter they edited: the plain edit's
    chapter was a page longer each round, and so was its layout.)"""
    chapters = _economy_chapters(root)
    return grow(root, chapters[len(chapters) // 2 + 1])


def grow_near_end(root: Path) -> Path:
    """:func:`grow` for the last of the chapters :func:`grow_beside` grows one of: the same page
    of text, the index's page lists changed as much, but only the few parts after it get new
    folios (against some eighty after the one in the middle)."""
    return grow(root, _economy_chapters(root)[-1])


def grow_unindexed(root: Path) -> Path:
    """:func:`grow` for the chapter before the middle one, its paragraphs' index terms left out:
    a page of text that changes no entry of the index."""
    chapters = _economy_chapters(root)
    return grow(root, chapters[len(chapters) // 2 - 1], unindexed=True)


# An index term as the chapters mark it: [text]{.index …}.
_INDEX_TERM = re.compile(r"\[([^\]]*)\]\{\.index[^}]*\}")


def lengthen_early(root: Path) -> Path:
    """Add a paragraph (one of its own) to the report's first body chapter: every page after it
    may move."""
    chapter = sorted((root / "chapters").glob("r001-01-*.md"))[0]
    text = chapter.read_text(encoding="utf-8")
    paragraph = next(
        p for p in text.split("\n\n") if len(p) > 150 and not p.lstrip().startswith(("#", "|", "-", "!", ":"))
    )
    chapter.write_text(text + "\n\n" + paragraph + "\n", encoding="utf-8")
    return chapter


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))  # type: ignore[union-attr]


@dataclass
class Results:
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)

    def add(
        self, what: str, naive: float | None, ours: float, unit: str, target: str = "", met: bool | None = None
    ) -> None:
        ratio = f"{ours / naive:.2f}×" if naive else "—"
        self.rows.append(
            (what, _fmt(naive, unit), _fmt(ours, unit), ratio, target, "" if met is None else ("yes" if met else "NO"))
        )

    def note(self, what: str, naive: str = "", ours: str = "", target: str = "", met: str = "") -> None:
        self.rows.append((what, naive, ours, "", target, met))

    def table(self) -> str:
        head = ("measure", "naive", "ours", "ours / naive", "target", "met")
        widths = [max(len(row[i]) for row in [head, *self.rows]) for i in range(len(head))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)) + " |"]
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in self.rows]
        return "\n".join(lines)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:,.0f} MB" if value >= 10 else f"{value:.2f} MB"
    return f"{value:g} {unit}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def seconds(runs: list[Run]) -> float:
    return median([run.seconds for run in runs])


def memory(runs: list[Run]) -> float:
    return median([run.peak_mb for run in runs])


def processor(runs: list[Run]) -> float:
    return median([run.cpu for run in runs])


def parts(found: list[dict[str, float]]) -> str:
    return f"{median([p['pdf'] for p in found]):.2f} s + {median([p['epub'] for p in found]):.2f} s"


# --- the preview ---------------------------------------------------------------------------------


def preview_updates(root: Path, edits: int) -> tuple[list[float], str]:
    """Seconds from a chapter's save to the new content shown in the page (Chromium via Playwright
    when available, else the time until the server offers the new content), and which it was."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    out = OUT / "watch-dist"
    watcher = subprocess.Popen(
        [python(), "-m", "report", "watch", str(root), "--port", str(port), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(lambda: b'data-ok="true"' in _get(url), 120)
        _wait_until(lambda: json.loads(_get(url + "__report/update?have=0"))["status_kind"] == "ok", 300)
        try:
            return _in_browser(root, url, edits), "in Chromium"
        except ImportError:
            return _from_server(root, url, edits), "offered by the server; no Chromium"
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())
    except OSError:
        return b""


def _wait_until(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("report watch did not get ready")
        time.sleep(0.05)


def _idle(url: str) -> None:
    """Wait for the background PDF and EPUB build, so that each save meets the same machine."""
    _wait_until(lambda: json.loads(_get(url + "__report/update?have=0"))["status_kind"] != "building", 600)


def _in_browser(root: Path, url: str, edits: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise ImportError("no Chromium")
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        for number in range(edits):
            _idle(url)
            marker = f"{1000 + number}回目"
            started = time.perf_counter()
            edit(root, 1000 + number)
            page.wait_for_function(
                f"document.getElementById('report-preview').innerText.includes({marker!r})", timeout=60_000
            )
            times.append(time.perf_counter() - started)
        browser.close()
    return times


def _from_server(root: Path, url: str, edits: int) -> list[float]:
    times = []
    for number in range(edits):
        _idle(url)
        before = json.loads(_get(url + "__report/update?have=0"))["version"]
        started = time.perf_counter()
        edit(root, 2000 + number)
        _wait_until(lambda before=before: json.loads(_get(url + "__report/update?have=0"))["version"] > before, 60)
        times.append(time.perf_counter() - started)
    return times


# --- the benchmark -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run of each, no 500-page report")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--pages", type=int, default=60, help="pages of the main report (at least)")
    parser.add_argument("--big-pages", type=int, default=500, help="pages of the large report")
    parser.add_argument("--skip-big", action="store_true", help="no 500-page report")
    parser.add_argument("--skip-big-naive", action="store_true", help="500-page report: ours only")
    parser.add_argument("--many", type=int, default=40, help="small reports built one after another (0: none)")
    parser.add_argument("--only-many", action="store_true", help="only the small reports built one after another")
    options = parser.parse_args()
    repeat = 1 if options.quick else options.repeat
    os.environ["REPORT_POOL"] = BENCH_POOL
    os.environ.pop("CI", None)  # (the bench measures what an author's machine does)

    OUT.mkdir(parents=True, exist_ok=True)
    if options.only_many:
        results = Results()
        add_many_reports(results, options.many)
        stop_kept_processes()
        _report(results)
        return
    # The builder's modules compiled, as Python keeps them on an author's machine (where
    # PYTHONDONTWRITEBYTECODE is set, each command would compile them again: 0.1 s a process).
    subprocess.run([python(), "-m", "compileall", "-q", str(REPO / "report")], check=True, stdout=subprocess.DEVNULL)
    copies = max(1, math.ceil((options.pages - 4) / BODY_PAGES_PER_COPY))
    root = generate("report-60", copies)
    print(f"machine: {os.cpu_count()} cores; {repeat} run(s) of each; report: {copies}× the briefing", flush=True)

    # Alternated, so that the load other people put on the machine falls on all of them.
    naive_runs, naive_parts, same_runs, same_parts = [], [], [], []
    cold_runs, noop_runs, edit_runs, epub_runs, grow_runs, grown = [], [], [], [], [], []
    unkept_edit_runs, unkept_epub_runs = [], []  # the same, with no workers kept between builds
    here_epub_runs = []  # the same, in the command's own process (no build server)
    grow_epub_runs = []  # two more pages added, EPUB alone: the EPUB written ahead is written again
    for number in range(repeat):
        run, found = naive(root, OUT / "naive-60")
        naive_runs.append(run)
        naive_parts.append(found)
        run, found = naive(root, OUT / "naive-same-60", "--same-document")
        same_runs.append(run)
        same_parts.append(found)
        cold_runs.append(cold(root, OUT / "ours-60"))
        page_count = pages(OUT / "ours-60" / "bench.pdf")
        noop_runs.append(ours(root, OUT / "ours-60"))
        saved(revise, root)
        edit_runs.append(ours(root, OUT / "ours-60"))
        saved(revise, root)
        epub_runs.append(ours(root, OUT / "ours-60-epub", "--format", "epub"))
        saved(revise, root)
        here_epub_runs.append(ours_here(root, OUT / "ours-60-epub", "--format", "epub"))
        saved(revise, root)
        unkept_edit_runs.append(ours_unkept(root, OUT / "ours-60"))
        saved(revise, root)
        unkept_epub_runs.append(ours_unkept(root, OUT / "ours-60-epub", "--format", "epub"))
        before = pages(OUT / "ours-60" / "bench.pdf")
        saved(grow, root)
        grow_runs.append(ours(root, OUT / "ours-60"))
        grown.append(pages(OUT / "ours-60" / "bench.pdf") - before)
        saved(grow, root)
        grow(root)  # more than a page: the pages after the chapter move
        grow_epub_runs.append(ours(root, OUT / "ours-60-epub", "--format", "epub"))
        if not written_again(grow_epub_runs[-1]):
            raise SystemExit("the EPUB written ahead was kept: the pages did not move")
        print(
            f"run {number + 1}: naive {naive_runs[-1].seconds:.1f} s (processor {naive_runs[-1].cpu:.1f} s), "
            f"naive on our document {same_runs[-1].seconds:.1f} s, "
            f"cold {cold_runs[-1].seconds:.1f} s (processor {cold_runs[-1].cpu:.1f} s), no-op {noop_runs[-1].seconds:.2f} s, "
            f"edit {edit_runs[-1].seconds:.1f} s, EPUB alone {epub_runs[-1].seconds:.2f} s "
            f"(no build server {here_epub_runs[-1].seconds:.2f} s), "
            f"unkept: edit {unkept_edit_runs[-1].seconds:.1f} s, EPUB alone {unkept_epub_runs[-1].seconds:.2f} s, "
            f"a page added {grow_runs[-1].seconds:.1f} s (+{grown[-1]} pages), "
            f"two more, EPUB alone {grow_epub_runs[-1].seconds:.2f} s",
            flush=True,
        )
        generate("report-60", copies)  # the next run starts from the same report
    preview, preview_how = preview_updates(generate("report-60-watch", copies), 3 if options.quick else 5)
    print(f"preview updates: {', '.join(f'{t:.2f}' for t in preview)} s", flush=True)

    naive_time, same_time = seconds(naive_runs), seconds(same_runs)
    cold_time, edit_time = seconds(cold_runs), seconds(edit_runs)
    results = Results()
    results.add(f"cold build, PDF + EPUB ({page_count} pages)", naive_time, cold_time, "s", "≤ 0.6×")
    results.note("  naive: its PDF, then its EPUB", parts(naive_parts))
    results.add("  against the naive pipeline on our document", same_time, cold_time, "s", "≤ 0.6×")
    results.note("  naive on our document: PDF, then EPUB", parts(same_parts))
    results.add("no-op rebuild", naive_time, seconds(noop_runs), "s", "≤ 0.1×")
    results.add("one chapter edited, PDF + EPUB", naive_time, edit_time, "s", "≤ 0.5×")
    results.add("  against the naive pipeline on our document", same_time, edit_time, "s", "≤ 0.5×")
    results.add(
        f"a page of text added to that chapter (+{min(grown)}–{max(grown)} pages)", naive_time, seconds(grow_runs), "s"
    )
    results.add(
        "  ÷ the plain edit, as measured in this run (the naive column)", edit_time, seconds(grow_runs), "s", "≤ 1.5×"
    )
    results.add("one chapter edited, EPUB alone (--format epub)", naive_time, seconds(epub_runs), "s", "< 1 s")
    results.add("  in the command's own process (no build server)", naive_time, seconds(here_epub_runs), "s", "< 1 s")
    results.add("  pages of text added, EPUB alone (pages moved)", naive_time, seconds(grow_epub_runs), "s")
    results.add("one chapter edited, PDF + EPUB, no workers kept", naive_time, seconds(unkept_edit_runs), "s", "≤ 0.5×")
    results.add("one chapter edited, EPUB alone, no workers kept", naive_time, seconds(unkept_epub_runs), "s", "< 1 s")
    epub_step = median([stage(run, "epub") - stage(run, "laid out") for run in edit_runs])
    results.add("  the EPUB step, once the print layout is known", None, epub_step, "s", "< 1 s")
    results.add(f"preview updated after a save ({preview_how})", None, median(preview), "s", "< 0.5 s")
    results.add(
        "processor time, cold build (both cores: ours is parallel)", processor(naive_runs), processor(cold_runs), "s"
    )
    results.add("  against the naive pipeline on our document", processor(same_runs), processor(cold_runs), "s")
    results.add("peak memory, cold build", memory(naive_runs), memory(cold_runs), "MB")
    results.add("  against the naive pipeline on our document", memory(same_runs), memory(cold_runs), "MB")
    sizes = {name: (OUT / folder / name).stat().st_size / 1e6 for folder, name in (
        ("naive-60", "naive.pdf"), ("naive-60", "naive.epub"), ("ours-60", "bench.pdf"), ("ours-60", "bench.epub"),
    )}  # fmt: skip
    same_pdf = (OUT / "naive-same-60" / "naive.pdf").stat().st_size / 1e6
    results.add("PDF size", sizes["naive.pdf"], sizes["bench.pdf"], "MB", "≤ 1×")
    results.add("  against the naive pipeline on our document", same_pdf, sizes["bench.pdf"], "MB", "≤ 1×")
    results.add("EPUB size", sizes["naive.epub"], sizes["bench.epub"], "MB", "≤ 0.1×")

    if not (options.quick or options.skip_big):
        big_copies = max(1, math.ceil((options.big_pages - 4) / BODY_PAGES_PER_COPY))
        big_root = generate("report-500", big_copies)
        print(f"large report: {big_copies}× the briefing", flush=True)
        big_naive = None if options.skip_big_naive else naive(big_root, OUT / "naive-500", "--same-document")[0]
        # The small report's cold build again, just before and after the large one: machine speed
        # moves over minutes, and growth compares the two sizes at the same moment.
        beside = [cold(root, OUT / "ours-60-beside")]
        big_cold = cold(big_root, OUT / "ours-500")
        beside.append(cold(root, OUT / "ours-60-beside"))
        big_noop = ours(big_root, OUT / "ours-500")
        # The small report's cold build just before stopped the kept processes: this first edit
        # makes the join anew (as an author's first edit after ten idle minutes). Its own row; the
        # edits measured against the small report's are those of the author's loop.
        saved(revise, big_root)
        big_first_edit = ours(big_root, OUT / "ours-500")
        big_edits, big_early, big_grow, big_grow_end, big_grow_unindexed = [], [], [], [], []
        grown: list[int] = []  # the pages each page of text in the middle added (see PAGE_OF_TEXT)
        for _ in range(1 if options.quick else options.repeat):
            saved(revise, big_root)
            big_edits.append(ours(big_root, OUT / "ours-500"))
            saved(lengthen_early, big_root)
            big_early.append(ours(big_root, OUT / "ours-500"))
            pages_before = pages(OUT / "ours-500" / "bench.pdf")
            saved(grow_beside, big_root)
            big_grow.append(ours(big_root, OUT / "ours-500"))
            grown.append(pages(OUT / "ours-500" / "bench.pdf") - pages_before)
            # What a page in the middle costs beyond its plain edit, in two parts (after the
            # round's other edits, which they leave as they were before these rows).
            saved(grow_near_end, big_root)
            big_grow_end.append(ours(big_root, OUT / "ours-500"))
            saved(grow_unindexed, big_root)
            big_grow_unindexed.append(ours(big_root, OUT / "ours-500"))
        big_pages = pages(OUT / "ours-500" / "bench.pdf")
        big_preview, big_preview_how = preview_updates(generate("report-500-watch", big_copies), 3)
        naive_big = big_naive.seconds if big_naive else None
        beside_time = statistics.mean(run.seconds for run in beside)
        growth = (big_cold.seconds / big_pages) / (beside_time / page_count)
        growth_from_median = (big_cold.seconds / big_pages) / (cold_time / page_count)
        print(
            f"large report: cold {big_cold.seconds:.1f} s, no-op {big_noop.seconds:.2f} s, "
            f"first edit {big_first_edit.seconds:.1f} s, "
            f"edits {', '.join(f'{run.seconds:.1f}' for run in big_edits)} s, "
            f"a paragraph early {', '.join(f'{run.seconds:.1f}' for run in big_early)} s, "
            f"a page in the middle {', '.join(f'{run.seconds:.1f}' for run in big_grow)} s "
            f"(pages added: {', '.join(map(str, grown))}), "
            f"near the end {', '.join(f'{run.seconds:.1f}' for run in big_grow_end)} s, "
            f"with no index term {', '.join(f'{run.seconds:.1f}' for run in big_grow_unindexed)} s, "
            f"preview {', '.join(f'{t:.2f}' for t in big_preview)} s; "
            f"{page_count} pages cold just before and after: {beside[0].seconds:.1f} s, {beside[1].seconds:.1f} s"
        )
        results.add(f"{big_pages} pages: cold build (naive on our document)", naive_big, big_cold.seconds, "s")
        results.add(f"{big_pages} pages: no-op rebuild", naive_big, big_noop.seconds, "s")
        results.add(f"{big_pages} pages: one chapter edited", naive_big, seconds(big_edits), "s")
        results.add(
            "  the first edit after the kept processes were stopped (the join made anew)",
            naive_big, big_first_edit.seconds, "s",
        )  # fmt: skip
        results.add(
            "  the edit after it (the build server it started had read the book meanwhile)",
            naive_big, big_edits[0].seconds, "s",
        )  # fmt: skip
        results.note("Edits against edits, measured in this run (the naive column holds the baseline named):")
        results.add(
            f"  {big_pages} pages, one chapter edited ÷ the same edit of {page_count} pages",
            edit_time, seconds(big_edits), "s", "≤ 1.3×",
        )  # fmt: skip
        results.add(
            f"  {big_pages} pages, a paragraph added to an early chapter ÷ the edit of {page_count} pages",
            edit_time, seconds(big_early), "s", "≤ 1.5×",
        )  # fmt: skip
        results.add(
            f"  {big_pages} pages, a page of text added in the middle ÷ its plain edit",
            seconds(big_edits), seconds(big_grow), "s", "≤ 1.5×",
        )  # fmt: skip
        results.add(
            "    the page in the middle ÷ the same page near the end (few parts' folios move)",
            seconds(big_grow_end), seconds(big_grow), "s",
        )  # fmt: skip
        results.add(
            "    a page of text with no index term, in the middle ÷ the plain edit",
            seconds(big_edits), seconds(big_grow_unindexed), "s",
        )  # fmt: skip
        # The page in the middle keeps both cores busy where the plain edit waits on the main
        # process: their processor times (every process's) tell how far apart they must stay.
        results.add(
            "    processor time of every process: the page in the middle ÷ the plain edit",
            processor(big_edits), processor(big_grow), "s",
        )  # fmt: skip
        results.add(
            f"{big_pages} pages: preview updated after a save ({big_preview_how})",
            None,
            median(big_preview),
            "s",
            "< 0.5 s",
        )
        results.note(
            f"{big_pages} pages: seconds per page ÷ those of {page_count} pages, cold",
            "",
            f"{growth:.2f}",
            "≤ 1 (linear)",
            "yes" if growth <= 1.0 else "NO",
        )
        results.note(f"  ÷ those of the {page_count}-page runs' median cold build", "", f"{growth_from_median:.2f}")
        results.add(
            f"{big_pages} pages: peak memory, cold build",
            big_naive.peak_mb if big_naive else None,
            big_cold.peak_mb,
            "MB",
            "< 1,536 MB",
            big_cold.peak_mb < 1536,
        )

    if options.many:
        add_many_reports(results, options.many)
    stop_kept_processes()
    _report(results)


def _report(results: Results) -> None:
    _judge(results)
    table = results.table()
    print()
    print(table)
    (OUT / "results.md").write_text(table + "\n", encoding="utf-8")


def _judge(results: Results) -> None:
    """Fill in the "met" column of the rows with a ratio or absolute target."""
    judged = []
    for what, naive, ours, ratio, target, met in results.rows:
        if target.startswith("≤") and ratio.endswith("×"):
            met = "yes" if float(ratio[:-1]) <= float(target[1:].strip(" ×")) else "NO"
        elif target.startswith("<") and ours.endswith(" s"):
            met = "yes" if float(ours[:-2]) < float(target[1:].strip(" s")) else "NO"
        judged.append((what, naive, ours, ratio, target, met))
    results.rows = judged


if __name__ == "__main__":
    # Run with the project's virtual environment (playwright, report) whatever python started it.
    in_venv = Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve()
    if VENV_PYTHON.exists() and not in_venv and not os.environ.get("BENCH_REEXEC"):
        os.environ["BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    main()
