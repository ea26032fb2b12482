"""Hostile input gets nothing, bad builds lose nothing, the same sources give the same bytes (issue 7)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pypdf
import pytest
from helpers import EpubCheckRun, copy_fixture, diagnostics_of, run_report, stop

LEAKS = ("root:x:0:0", "/bin/bash", "SCRIPT-RAN", "IFRAME-CONTENT", "OBJECT-CONTENT")
FORBIDDEN_MARKUP = (
    "<script", "<iframe", "<object", "<style", "attachment", 'href="javascript:', '="file:', "/etc/", " onclick=", " onload=",
)  # fmt: skip


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(folder: Path) -> dict[str, str]:
    """The PDF and EPUB in ``folder`` by name, as hashes (the build record beside them is not an output)."""
    return {p.name: _sha(p) for p in sorted(folder.iterdir()) if p.suffix in (".pdf", ".epub")}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    base = tmp_path_factory.mktemp("hostile")
    root = copy_fixture("hostile", base)
    return root, run_report("build", root, "-o", base / "out")


def test_hostile_html_builds_clean_and_leaks_nothing(hostile: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, run = hostile
    assert run.returncode == 0, run.stderr
    out = root.parent / "out"
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "no-hostname"
    pdf_text = subprocess.run(["pdftotext", str(out / "hostile.pdf"), "-"], capture_output=True, text=True).stdout
    assert "SAFE-TEXT-END" in pdf_text and "SVG-LABEL" in pdf_text
    for leak in (*LEAKS, "FOREIGN"):
        assert leak not in pdf_text
    with zipfile.ZipFile(out / "hostile.epub") as epub:
        for name in epub.namelist():
            data = epub.read(name)
            if name.endswith((".xhtml", ".opf", ".ncx", ".css")):
                text = data.decode("utf-8")
                for leak in (*LEAKS, hostname, "FOREIGN"):
                    assert leak not in text, f"{leak!r} in {name}"
                if name.endswith(".xhtml"):
                    for markup in FORBIDDEN_MARKUP:
                        assert markup not in text.lower(), f"{markup!r} in {name}"
    reader = pypdf.PdfReader(out / "hostile.pdf")
    assert "/EmbeddedFiles" not in reader.trailer["/Root"].get("/Names", {}), "no attachments"
    for page in reader.pages:
        for annotation in page.get("/Annots", []) or []:
            uri = annotation.get_object().get("/A", {}).get("/URI", "")
            assert not str(uri).startswith(("file:", "javascript:")), uri


def test_hostile_epub_passes_epubcheck(hostile: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, run = hostile
    assert run.returncode == 0, run.stderr
    messages = EpubCheckRun(root.parent / "out" / "hostile.epub").result()
    problems = [m for m in messages if m["severity"] in ("FATAL", "ERROR", "WARNING")]
    assert not problems, problems


def test_paths_out_of_the_folder_are_errors_with_locations(tmp_path: Path) -> None:
    root = copy_fixture("hostile-paths", tmp_path)
    (root / "link-out").symlink_to("/etc")
    out = tmp_path / "out"
    run = run_report("build", root, "-o", out)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    found = {(Path(m["path"]).name, int(m["line"])) for m in diagnostics_of(run.stderr)}
    assert found == {("01-paths.md", line) for line in (5, 7, 9, 11, 13)}, run.stderr
    assert not out.exists() or not any(out.iterdir()), "nothing was written"


def test_sandboxed_fetcher_reads_only_inside_the_allowed_folders(tmp_path: Path) -> None:
    from report.sandbox import SandboxedFetcher

    inside = tmp_path / "report"
    inside.mkdir()
    (inside / "ok.css").write_text("p{}")
    (inside / "escape").symlink_to("/etc/hostname")
    fetcher = SandboxedFetcher((inside,))
    assert fetcher.fetch((inside / "ok.css").as_uri()).read() == b"p{}"
    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"
    for url in (
        "file:///etc/passwd",
        (inside / "escape").as_uri(),
        inside.as_uri(),
        "http://127.0.0.1:9/x",
        "ftp://x/y",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 5


def _environment(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    env.update(changes)
    return env


def test_builds_are_byte_identical_across_processes(tmp_path: Path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    digests: list[dict[str, str]] = []
    for seed, zone in (("1", "UTC"), ("4242", "Asia/Tokyo")):
        out = tmp_path / f"out-{seed}"
        # --no-cache: the second build must make its outputs, not copy the first one's.
        run = run_report("build", root, "--no-cache", "-o", out, env=_environment(PYTHONHASHSEED=seed, TZ=zone))
        assert run.returncode == 0, run.stderr
        digests.append(_outputs(out))
    assert len(digests[0]) == 2 and digests[0] == digests[1]


def test_source_date_epoch_sets_the_epub_dates(tmp_path: Path) -> None:
    root = copy_fixture("en-basic", tmp_path / "src")
    run = run_report(
        "build", root, "--format", "epub", "-o", tmp_path / "out", env=_environment(SOURCE_DATE_EPOCH="1700000000")
    )
    assert run.returncode == 0, run.stderr
    (epub,) = (tmp_path / "out").glob("*.epub")
    with zipfile.ZipFile(epub) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        opf = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".opf"))
    assert "2023-11-14T22:13:20Z" in opf


def test_a_killed_build_leaves_old_or_new_outputs_never_broken(tmp_path: Path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    out = tmp_path / "out"
    assert run_report("build", root, "-o", out).returncode == 0
    old = {p.name: _sha(p) for p in out.glob("ja-basic.*")}
    chapter = next((root / "chapters").glob("01-*.md"))
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n\n追記された段落。\n", encoding="utf-8")
    reference = tmp_path / "reference"
    assert run_report("build", root, "-o", reference).returncode == 0
    new = {p.name: _sha(p) for p in reference.glob("ja-basic.*")}
    assert old != new
    for delay in (0.3, 1.5, 3.0):
        process = subprocess.Popen([sys.executable, "-m", "report", "build", str(root), "-o", str(out)])
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = {p.name: _sha(p) for p in out.glob("ja-basic.*")}
        for name, digest in now.items():
            assert digest in (old[name], new[name]), (
                f"{name} is neither the old nor the new output after a kill at {delay}s"
            )
        if any(now[name] == new[name] for name in now):
            old = now  # the build finished before the kill; later rounds compare against it


def test_interrupted_build_keeps_previous_outputs(tmp_path: Path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    out = tmp_path / "out"
    assert run_report("build", root, "-o", out).returncode == 0
    before = _outputs(out)
    (root / "chapters" / "01-intro.md").write_text(
        "---\ntitle: 変更\n---\n\n壊れた参照[](#nowhere)。\n", encoding="utf-8"
    )
    run = run_report("build", root, "-o", out)
    assert run.returncode == 1
    assert _outputs(out) == before


def test_two_builds_at_once_do_not_corrupt_each_other(tmp_path: Path) -> None:
    root = copy_fixture("en-basic", tmp_path / "src")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "report", "build", str(root), "-o", str(out)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        for process in processes:
            process.communicate(timeout=300)
        assert [process.returncode for process in processes] == [0, 0]
    finally:
        for process in processes:
            stop(process)
    reference = tmp_path / "reference"
    assert run_report("build", root, "-o", reference).returncode == 0
    assert _outputs(out) == _outputs(reference)


def test_an_internal_error_prints_a_short_message_and_saves_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import report.cli

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(report.cli, "build", broken)
    result = CliRunner().invoke(report.cli.main, ["build", "."])
    assert result.exit_code == 3
    assert "internal error: RuntimeError: simulated bug" in result.output
    saved = re.search(r"saved in (\S+);", result.output)
    assert saved and "Traceback" in Path(saved.group(1)).read_text()
    assert "Traceback" not in result.output


def test_report_check_passes_on_the_briefing() -> None:
    run = run_report("check", Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning" not in run.stderr


def test_report_check_runs_qpdf_and_epubcheck_on_built_outputs(tmp_path: Path) -> None:
    root = copy_fixture("en-basic", tmp_path / "src")
    out = tmp_path / "out"
    assert run_report("build", root, "-o", out).returncode == 0
    run = run_report("check", root, "-o", out)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(qpdf)" in run.stdout and "(EPUBCheck)" in run.stdout
    (pdf,) = out.glob("*.pdf")
    pdf.write_bytes(pdf.read_bytes()[: len(pdf.read_bytes()) // 2])  # a truncated PDF
    run = run_report("check", root, "-o", out)
    assert run.returncode == 1
    assert f"{pdf}: qpdf:" in run.stderr, run.stderr


def test_a_pdf_that_takes_too_long_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    root = copy_fixture("ja-basic", tmp_path / "src")
    run = run_report(
        "build", root, "--no-cache", "-o", tmp_path / "out", env=_environment(REPORT_RENDER_TIMEOUT="0.01")
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "took longer than 0.01 s" in run.stderr and "Traceback" not in run.stderr
    assert not list((tmp_path / "out").glob("*.pdf")), "nothing was written"
