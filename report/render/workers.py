"""The PDF's worker processes: spawned (WeasyPrint is not fork- or thread-safe), one per
core up to four, they load WeasyPrint as soon as they start and then lay out, draw and join
the parts :mod:`report.render.pdf` sends them (the worker side is :mod:`report.render.weasy`).

A build from the command line leaves its workers running for the next build, of this report or
another (:mod:`report.daemon.pool`); ``report watch`` keeps its own for the session.

This module imports little, so that a build can start the workers before it imports the
rest of the builder: WeasyPrint loads while the builder does.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from report.render.weasy import LAYOUTS_RESUMABLE, DrawJob, Drawn, JoinJob, PartJob, PartLayout, Styles, serve

LAYOUTS_AHEAD = 2  # layouts sent to a worker before it answers: it never waits for the next
# About how many times as long a part's layout made anew takes as the same layout resumed (the
# index of the 615-page bench report: 0.23 s against 0.05): the worker that keeps a part's
# layout is waited for while it has up to that many times the part's length to do first.
RESUMING_GAIN = 4


class RenderTimeout(Exception):
    """WeasyPrint did not finish in time (a pathological document); the workers were stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def render_timeout() -> float:
    """Seconds one part may take; ``REPORT_RENDER_TIMEOUT`` overrides the default of 15 minutes."""
    try:
        return float(os.environ.get("REPORT_RENDER_TIMEOUT", "900"))
    except ValueError:
        return 900.0


def worker_count() -> int:
    """One worker per core the process may use, up to four (more rarely pays for its memory)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """A spawned process first imports the parent's main module (the ``report`` command, and
    with it the whole builder: a third of a second on each core while the build starts).
    A worker needs only :mod:`report.render.weasy`: while the workers start, the main
    module does not say where it comes from, so they do not import it."""
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class PdfWorkers:
    """Spawned processes that lay out and draw parts. They import WeasyPrint as soon as they
    start, and stay warm between builds (``report watch`` keeps them for the session)."""

    def __init__(self, fontconfig: Path | None = None, count: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        connections: list[Connection] = []
        self.processes: list[Any] = []
        with _main_module_hidden():
            for number in range(count or worker_count()):
                connection, child = context.Pipe()
                process = context.Process(
                    target=serve, args=(child, fontconfig), name=f"report-pdf-{number}", daemon=True
                )
                process.start()
                child.close()
                connections.append(connection)
                self.processes.append(process)
        self._attach(connections, [""] * len(connections), [[] for _ in connections])

    def _attach(self, connections: list[Connection], joins_kept: list[str], resumes: list[list[str]]) -> None:
        self.connections = connections
        # By worker, the styles key of the book whose join it keeps from an earlier build ("":
        # none, as far as known): a join of that book goes there again (see Session.join).
        self.joins_kept = joins_kept
        # By worker, the names of the parts whose last layout it keeps to resume, the most recent
        # last, as far as known: a part is laid out there again (see Session._send_layouts).
        self.resumes = resumes
        self.busy = threading.Lock()  # one build at a time
        self._closing = threading.Lock()  # a build's main thread and its joining thread may both close

    @property
    def alive(self) -> bool:
        return all(p.is_alive() for p in self.processes) and not any(c.closed for c in self.connections)

    def close(self) -> None:
        """Done with the workers: stop them (they keep nothing worth waiting for, and may still
        be importing)."""
        self.stop()

    def stop(self) -> None:
        """Stop the processes: a build was abandoned midway, or a worker failed."""
        with self._closing:
            for process in self.processes:
                if process.is_alive():
                    process.terminate()
            for process in self.processes:
                process.join(timeout=5)
            self._hang_up()

    def _hang_up(self) -> None:
        for connection in self.connections:
            if not connection.closed:
                connection.close()

    def ended(self, index: int) -> str:
        """How a worker that stopped answering ended."""
        return f"exit code {self.processes[index].exitcode}"

    def __enter__(self) -> PdfWorkers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class Session:
    """One run's use of the workers: what each was sent and has not yet answered. Layouts go
    to whichever worker is free (parts differ widely in cost), a few ahead so that none waits
    for the main process; a part is drawn by the worker that laid it out (it still has it)."""

    workers: PdfWorkers
    styles: Styles
    on_layout: Callable[[str, PartLayout], None]  # called with each layout as it arrives
    on_drawn: Callable[[Path, Drawn], None]  # with each part drawn (its target, what drawing it tells)
    expected: list[int] = field(default_factory=list)  # answers awaited, by worker
    # By worker, each job awaited: its size, and the part's name if it is a layout.
    work: list[deque[tuple[int, str]]] = field(default_factory=list)
    layouts_due: int = 0  # layouts sent or waiting, not yet answered
    waiting: deque[PartJob] = field(default_factory=deque)  # layouts not yet sent
    holder: dict[str, int] = field(default_factory=dict)  # part key → worker that laid it out
    named: dict[str, int] = field(default_factory=dict)  # part name → the worker it was last sent to
    joiner: int | None = None  # the worker that has a join begun
    lister: int | None = None  # the worker a part that lists pages went to (see join)
    closed: bool = False
    outboxes: list[_Outbox] = field(default_factory=list)  # by worker

    def __post_init__(self) -> None:
        self.workers.busy.acquire()
        self.expected = [0] * len(self.workers.connections)
        self.work = [deque() for _ in self.workers.connections]
        self.outboxes = [_Outbox(connection) for connection in self.workers.connections]
        self.use(self.styles)

    def use(self, styles: Styles) -> None:
        self.styles = styles
        self.holder.clear()
        self.named.clear()
        self.joiner = self.lister = None  # new styles: the workers drop what they laid out, and a join begun
        self.layouts_due -= len(self.waiting)
        self.waiting.clear()
        for index in range(len(self.workers.connections)):
            self._send(index, ("styles", styles), answered=False)

    def lay_out(self, job: PartJob, first: bool = False) -> None:
        if first:
            self.waiting.appendleft(job)
        else:
            self.waiting.append(job)
        self.layouts_due += 1
        self._send_layouts()

    def draw(self, job: DrawJob) -> None:
        """To the worker that laid the part out (it still has it), else the least busy."""
        index = self.holder.pop(job.part.key, None)
        if index is None:
            index = self._least_busy()
        self._send(index, ("draw", job))

    def draw_if_free(self, job: DrawJob, behind: bool = False) -> bool:
        """Drawn by the worker that laid the part out, should that one have no layout or drawing
        to do first (a join aside), or (``behind``) right behind its layout, sent to it just now:
        whether it was sent (not if the layout still waits for a worker)."""
        index = self.holder.get(job.part.key)
        if index is None or (not behind and self._ahead_of(index)):
            return False
        self.draw(job)
        return True

    def join(self, job: JoinJob, drawn_last: str = "") -> None:
        """Parts for the join, to the worker that has it begun; else to the one that keeps the
        book's join of an earlier build, which takes it up again (most parts are sent as they
        were: see report.render.weasy.Worker.join), whatever it has to do first; else to the
        last worker but the one that holds the part ``drawn_last`` (by key: the contents,
        drawn once every page is known, by the worker that laid it out), so that the join goes
        on while it is drawn, and one keeping no join before one keeping another book's (an
        author switching between two reports keeps both); but not to the worker the index went
        to, if it was laid out first (see _send_layouts: the two go apart). With the target, the
        last parts: waits until the join is written. A ``fresh`` job begins anew (parts joined
        were drawn again), on the worker that has the join begun."""
        if self.joiner is None:
            kept = self.workers.joins_kept
            keeping = [index for index in range(len(self.expected)) if kept[index] == self.styles.key]
            avoid = self.holder.get(drawn_last)
            others = [index for index in range(len(self.expected)) if index != avoid] or [0]  # [0]: the only one
            if keeping:
                self.joiner = keeping[0]
            elif self.lister is not None and len(self.expected) > 1:
                self.joiner = max(index for index in range(len(self.expected)) if index != self.lister)
            else:
                self.joiner = max(others, key=lambda index: (not kept[index], index))
        self._send(self.joiner, ("join", job))
        if job.target is not None:
            self.workers.joins_kept[self.joiner] = self.styles.key  # for the next build in this process
            self.joiner = None
            self._receive(lambda: not any(self.expected))

    def _send_layouts(self) -> None:
        """Each layout waiting to a worker with nothing to do, else to the first with room: an
        edit's second layout (the index's, the contents' made longer) runs beside the edited
        chapter's drawing, not after it. Of those, first the one that keeps this book's join
        from an earlier build; but a part that lists pages (the index) goes to one that does
        not join, free or not. After an edit that moves pages, the joiner joins the moved parts
        again (40 ms for 80 chapters of the bench's report) and writes the file, and the index
        is laid out and drawn again (100 ms): on one worker, the one after the other; on two,
        together (the other worker, done with the edited chapter, had nothing more to do). An
        edited chapter goes to the joiner, so that an index laid out beside it (with a guess of
        its pages, see report.render.pdf) is not laid out after it. Where a first build left the
        index was a matter of which worker was free then: it goes where the join is not, and
        should the index come first, the join goes where the index is not (see join). Of those,
        the one the part's name points to: a part edited build after build goes to
        the same worker, which may resume its last layout (see report.render.resume). A part
        laid out again in the same build (the index, once the pages it lists are known) goes
        back to the worker that has its first layout, unless that worker has more to do first
        than this layout, made anew elsewhere, would take (RESUMING_GAIN times its length).
        Neither the join's messages (which fill its room) count, nor the part's first layout,
        should it still be under way: this one resumes it."""
        while self.waiting:
            room = self._room()
            if not room:
                return
            job = self.waiting.popleft()
            index = self._worker_for(job.name, len(job.html), room, job.lists_pages)
            if job.lists_pages:
                self.lister = index
            if job.name:
                self.named[job.name] = index
                self._resumes_now(index, job.name)
            self.holder[job.key] = index
            self._send(index, ("layout", job))

    def free_for(self, name: str, length: int, lists_pages: bool = False) -> bool:
        """Whether a layout of the part ``name``, ``length`` long (``lists_pages``: see PartJob),
        sent now would be begun at once: its worker (see _send_layouts) has no layout or drawing
        to do first."""
        room = self._room()
        return bool(room) and not self.waiting and not self._ahead_of(self._worker_for(name, length, room, lists_pages))

    def _room(self) -> list[int]:
        """The workers with fewer than LAYOUTS_AHEAD messages they have not answered."""
        return [index for index, due in enumerate(self.expected) if due < LAYOUTS_AHEAD]

    def _worker_for(self, name: str, length: int, room: list[int], lists_pages: bool = False) -> int:
        """The worker a layout of the part ``name``, ``length`` long, goes to (see _send_layouts)."""
        joining = [key == self.styles.key for key in self.workers.joins_kept]
        if lists_pages and self.joiner is not None:  # (a first build's join, begun)
            joining[self.joiner] = True
        home = zlib.crc32(name.encode()) % len(self.expected)

        def rank(index: int) -> tuple[bool, bool, bool]:
            busy = self.expected[index] > 0  # (a part that lists pages: where the join is not, free or not)
            return (joining[index], busy, index != home) if lists_pages else (busy, not joining[index], index != home)

        # A part that lists pages goes where the join is not even with no room: in a first build the
        # other worker may still have chapters to lay out, and the index laid out by the joiner would
        # be kept there, to be laid out again after every later page-moving edit's chapter.
        index = min(range(len(self.expected)) if lists_pages else room, key=rank)
        keeper = self.named.get(name, self._resuming(name))
        if keeper is not None and self._ahead_of(keeper, name) <= RESUMING_GAIN * length:
            return keeper
        return index

    def _resuming(self, name: str) -> int | None:
        """The worker that keeps the part's last layout from an earlier build, to resume: of two,
        the one that made it more recently, as far as their lists tell (None: neither)."""
        keeping = [index for index, names in enumerate(self.workers.resumes) if name and name in names]
        return max(keeping, key=lambda index: self.workers.resumes[index].index(name), default=None)

    def _resumes_now(self, index: int, name: str) -> None:
        """The worker keeps the part's layout it is sent, as its last (see Worker.layout): the
        next build in this process, and the ones its kept workers greet, send it there again."""
        names = self.workers.resumes[index]
        if name in names:
            names.remove(name)
        names.append(name)
        del names[:-LAYOUTS_RESUMABLE]

    def wait_for_layouts(self) -> None:
        """Until every layout asked for so far has arrived (and gone to ``on_layout``)."""
        self._receive(lambda: self.layouts_due == 0)

    def wait_until(self, done: Callable[[], bool]) -> None:
        """Until ``done`` (what it waits for comes with the answers: see ``on_drawn``), or
        nothing more is to come."""
        self._receive(lambda: done() or not any(self.expected))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if any(self.expected):  # abandoned midway: the workers' state is unknown
            self.workers.stop()  # (a message still being written then fails: its outbox ends)
        for outbox in self.outboxes:
            outbox.close()
        self.workers.busy.release()

    def _least_busy(self) -> int:
        """The worker with the least to lay out or draw before it is free: parts differ widely
        in cost (the contents, drawn last, takes many chapters' time), their HTML's length
        tells."""
        return min(range(len(self.expected)), key=lambda i: (self._ahead_of(i), self.expected[i]))

    def _ahead_of(self, index: int, name: str = "") -> int:
        """The size of what the worker has to do before a job sent now: the HTML of the layouts
        and drawings it was sent and has not answered, but of the part ``name``'s layouts."""
        return sum(size for size, laid_out in self.work[index] if not name or laid_out != name)

    def _send(self, index: int, message: tuple[str, Any], answered: bool = True) -> None:
        self.outboxes[index].put(message)
        if answered:
            self.expected[index] += 1
            kind, payload = message
            if kind == "layout":
                self.work[index].append((len(payload.html), payload.name))
            else:
                self.work[index].append((len(payload.part.html) if kind == "draw" else 0, ""))

    def receive_ready(self) -> None:
        """The answers come already, without waiting for more."""
        while ready := self._ready(timeout=0):
            self._answer_ready(ready)

    def _receive(self, done: Callable[[], bool]) -> None:
        """Answers, until ``done``: each worker answers its messages in order."""
        while not done():
            ready = self._ready(timeout=render_timeout())
            if not ready:
                self.workers.stop()
                raise RenderTimeout(render_timeout())
            self._answer_ready(ready)

    def _ready(self, timeout: float) -> list[Any]:
        """The connections of the workers that have answered, within ``timeout`` seconds."""
        connections = self.workers.connections
        return wait([connections[i] for i, count in enumerate(self.expected) if count], timeout=timeout)

    def _answer_ready(self, ready: list[Any]) -> None:
        for index, connection in enumerate(self.workers.connections):
            if connection in ready:
                self._answer(index, connection)
        self._send_layouts()

    def _answer(self, index: int, connection: Connection) -> None:
        try:
            kind, *payload = connection.recv()
        except (EOFError, OSError):
            self.workers.stop()
            raise RuntimeError(f"a PDF worker stopped unexpectedly ({self.workers.ended(index)})") from None
        self.expected[index] -= 1
        self.work[index].popleft()
        if kind == "error":
            self.workers.stop()
            raise RuntimeError(f"the PDF could not be rendered:\n{payload[0]}")
        if kind == "laid-out":
            self.layouts_due -= 1
            self.on_layout(payload[0], payload[1])
        elif kind == "drawn":
            self.on_drawn(payload[0], payload[1])
        # "joined": the target is written


class _Outbox:
    """The messages to one worker, written to it in order by a thread of their own. A message
    longer than the pipe holds waits for the worker to read it: a 175 kB chapter's drawing,
    sent behind its layout, held a build's main thread for the whole layout (2 s), answers from
    the other worker unread. Each message is pickled by the sender (an error is the caller's)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.messages: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._write, name="report-pdf-send", daemon=True)
        self.thread.start()

    def put(self, message: tuple[str, Any]) -> None:
        self.messages.put(bytes(ForkingPickler.dumps(message)))

    def close(self) -> None:
        """Once every message put is written (or the worker is gone)."""
        self.messages.put(None)
        self.thread.join()

    def _write(self) -> None:
        while (data := self.messages.get()) is not None:
            try:
                self.connection.send_bytes(data)
            except (OSError, ValueError):  # the worker is gone (or stopped): reading its answers says so
                return
