"""Fault injection, for the tests of the failure paths: ``REPORT_FAULT=STEP`` makes a build fail
at STEP as a bug, a full disk or a crashed library would, so that a test can check what the
README promises of a failed build (the previous outputs untouched, no file left behind).

The steps: ``pdf-layout``, ``pdf-draw`` and ``pdf-join`` (in the PDF workers), ``epub`` (the
EPUB being written), ``rename`` (between the renames of the outputs into place), ``fork`` (in
the build server's child, before it has become the command; the server's environment decides).
``STEP:stall`` waits at STEP instead, forever, after saying so on standard error: a test then
interrupts the build at a known point (Ctrl-C during the layout). ``STEP:delay`` waits a second
there and goes on: a test then reaches a window that is otherwise too short to hit.

Unset, as it always is outside the tests, each step costs one look-up in the environment. A
build with it set keeps no workers (see :mod:`report.build`): a kept worker would carry the
fault into later builds.
"""

from __future__ import annotations

import os
import sys
import time

FAULT_VARIABLE = "REPORT_FAULT"
STEPS = ("pdf-layout", "pdf-draw", "pdf-join", "epub", "rename")  # a build's (not the server's "fork")
_DELAY_SECONDS = 1.0


class InjectedFault(RuntimeError):
    """The failure ``REPORT_FAULT`` asked for."""


def injected() -> bool:
    return bool(os.environ.get(FAULT_VARIABLE))


def fault_point(step: str) -> None:
    """Fail (or stall) here if ``REPORT_FAULT`` names this step."""
    wanted = os.environ.get(FAULT_VARIABLE)
    if not wanted:
        return
    name, _, mode = wanted.partition(":")
    if name != step:
        return
    if mode == "stall":
        print(f"report: {FAULT_VARIABLE}: stalled at {step}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)
    if mode == "delay":
        time.sleep(_DELAY_SECONDS)
        return
    raise InjectedFault(f"{FAULT_VARIABLE}: failed at {step}")
