"""Each bad-input fixture fails with exit status 1 and names the right file and line."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import BAD_FIXTURES, SUMMARY, copy_fixture, diagnostics_of, run_report

# fixture → (file, line, words the message must contain)
SINGLE_PROBLEM = {
    "unknown-key": ("report.toml", 3, ['unknown key "autors"', 'did you mean "authors"']),
    "missing-key": ("report.toml", 1, ['missing required key "language"']),
    "chapter-missing": ("report.toml", 5, ['"chapters/02-gone.md"', "does not exist"]),  # the file's own line
    "front-matter-key": ("chapters/01-body.md", 3, ['"matter" must be one of']),
    "front-matter-yaml": ("chapters/01-body.md", 3, ["front matter"]),
    "unknown-xref": ("chapters/01-body.md", 7, ['unknown id "#nowhere"']),
    "duplicate-id": ("chapters/02-more.md", 7, ['"same"', "already defined", "02-more.md:3"]),
    "ambiguous-xref": ("chapters/03-ref.md", 3, ['"#more" is ambiguous', "01-body.md:5", "02-more.md:1"]),
    "link-anchor-missing": ("chapters/01-body.md", 3, ['"02-more.md#nowhere"', 'no id "nowhere"']),
    "missing-image": ("chapters/01-body.md", 5, ['"../assets/missing.png"', "does not exist"]),
    "image-escape": ("chapters/01-body.md", 7, ['"../../../../etc/hostname"', "outside the report folder"]),
    "image-format": ("chapters/01-body.md", 3, ['"../assets/blue.bmp"', "unsupported format"]),
    "invalid-utf8": ("chapters/01-body.md", 4, ["not valid UTF-8"]),
    "footnote-undefined": ("chapters/01-body.md", 5, ['"[^missing]"', "not defined"]),
    "second-title": ("chapters/01-body.md", 5, ["one title", "##"]),
    "link-escape": ("chapters/01-body.md", 3, ['"../../../../etc/hostname"']),
}
# Fixtures whose problem is a warning: they fail only with --strict.
STRICT = {"link-anchor-missing"}


def test_every_bad_fixture_is_covered() -> None:
    names = {path.name for path in BAD_FIXTURES.iterdir() if path.is_dir()}
    assert names == set(SINGLE_PROBLEM) | {"config-many"}


@dataclass
class Failure:
    root: Path
    base: Path  # the working directory of the run: diagnostic paths are relative to it
    diagnostics: list[re.Match[str]]
    stderr: str


def _fail(name: str, base: Path, command: str = "build") -> Failure:
    base.mkdir(parents=True, exist_ok=True)
    root = copy_fixture(f"bad/{name}", base)
    out = base / "out"
    args = [command, root.name] + (["-o", str(out)] if command == "build" else [])
    args += ["--strict"] if name in STRICT else []
    run = run_report(*args, cwd=base)
    assert run.returncode == 1, (name, run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert not out.exists() or not any(out.iterdir()), "a failed build wrote outputs"
    return Failure(root, base, diagnostics_of(run.stderr), run.stderr)


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Failure]:
    """Every bad fixture built at once: each run is a short process, so they run side by side."""
    base = tmp_path_factory.mktemp("bad")
    names = sorted({*SINGLE_PROBLEM, "config-many"})
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {name: pool.submit(_fail, name, base / name) for name in names}
        return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("name", sorted(SINGLE_PROBLEM))
def test_single_problem(name: str, failures: dict[str, Failure]) -> None:
    expected_file, expected_line, words = SINGLE_PROBLEM[name]
    failure = failures[name]
    lines = [line for line in failure.stderr.splitlines() if line.strip()]
    assert len(failure.diagnostics) == 1, failure.stderr
    assert len(lines) == 2 and SUMMARY.match(lines[1]), failure.stderr  # the problem, then "1 problem; …"
    problem = failure.diagnostics[0]
    assert (failure.base / problem["path"]).resolve() == (failure.root / expected_file).resolve(), failure.stderr
    assert int(problem["line"]) == expected_line, failure.stderr
    for word in words:
        assert word in problem["message"], (word, failure.stderr)


def test_config_problems_are_all_reported(failures: dict[str, Failure]) -> None:
    failure = failures["config-many"]
    for diagnostic in failure.diagnostics:
        assert (failure.base / diagnostic["path"]).resolve() == (failure.root / "report.toml").resolve()
    assert {int(d["line"]) for d in failure.diagnostics} == {1, 2, 4, 5, 6, 9, 10}, failure.stderr
    messages = " | ".join(d["message"] for d in failure.diagnostics)
    for word in ('"title"', '"language"', '"date"', '"output"', 'unknown key "colour"', '"page-size"', '"font-size"'):
        assert word in messages, word
    summary = failure.stderr.strip().splitlines()[-1]
    assert summary == f"{len(failure.diagnostics)} problems; nothing was written."


@pytest.mark.parametrize("name", ["unknown-xref", "unknown-key"])
def test_check_command_reports_the_same(name: str, tmp_path: Path) -> None:
    failure = _fail(name, tmp_path, command="check")
    expected_file, expected_line, _ = SINGLE_PROBLEM[name]
    assert len(failure.diagnostics) == 1
    assert failure.diagnostics[0]["path"].endswith(expected_file)
    assert int(failure.diagnostics[0]["line"]) == expected_line
