"""Progress on long work: a bar with an ETA on a terminal, plain lines anywhere else.

Long-running lab and population work (calibrate, evaluate, evolve, train, fleet run) takes a
`Progress` and reports each unit of work through it; the command line picks the display. The
work never prints on its own, so a library caller gets silence (`Silent`) and a pipe gets one
flushed line per step (a log file can be tailed), while a person at a terminal gets a bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)


class Progress(Protocol):
    """Where long work reports itself: one phase at a time, one step at a time."""

    def phase(self, name: str, total: int) -> None:
        """A new phase of `total` steps begins (the previous one, if any, is finished)."""

    def step(self, note: str = "") -> None:
        """One step of the current phase is done; `note` says what it gave."""

    def say(self, line: str) -> None:
        """A line worth keeping (a phase's result), shown above any bar."""


class Silent:
    """Progress nobody watches: library callers and tests."""

    def phase(self, name: str, total: int) -> None:
        """Nothing to show."""

    def step(self, note: str = "") -> None:
        """Nothing to show."""

    def say(self, line: str) -> None:
        """Nothing to show."""


class Lines:
    """One flushed line per step and per phase: for pipes, files and CI logs."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._name = ""
        self._total = 0
        self._done = 0
        self._started = time.monotonic()

    def phase(self, name: str, total: int) -> None:
        self._name, self._total, self._done = name, total, 0
        self._started = time.monotonic()
        self.say(f"{name}: {total} steps")

    def step(self, note: str = "") -> None:
        self._done += 1
        elapsed = time.monotonic() - self._started
        eta = elapsed / self._done * (self._total - self._done)
        tail = f"  {note}" if note else ""
        self.say(
            f"{self._name} {self._done}/{self._total} ({elapsed:.0f} s, eta {eta:.0f} s){tail}"
        )

    def say(self, line: str) -> None:
        print(line, file=self._out, flush=True)


class Bar:
    """A rich progress bar with elapsed time and ETA; notes and results scroll above it."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Bar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def phase(self, name: str, total: int) -> None:
        if self._task is not None:
            self._bar.stop_task(self._task)
        self._task = self._bar.add_task(name, total=total, note="")

    def step(self, note: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, note=note)

    def say(self, line: str) -> None:
        self._bar.console.print(line, markup=False, highlight=False)


@contextmanager
def progress_for(out: IO[str] | None = None) -> Iterator[Progress]:
    """A bar when `out` (default stderr) is a terminal, plain lines when it is not."""
    stream = out if out is not None else sys.stderr
    if not stream.isatty():
        yield Lines(stream)
        return
    with Bar(Console(file=stream)) as bar:
        yield bar
