"""The live display of a sweep, on stderr: a line per case in a terminal, plain log lines when stderr is piped.

In a terminal, rich draws one line per case within 80 columns (its bar, trials done of planned, elapsed time,
fixed / pruned / errors and the best relative error so far) and a status line (Ray starting, MLflow away).
Piped, it writes a line when something happens that a log reader needs: the sweep starts, a case ends, the store
goes away or comes back, and a summary every minute. Stdout is left to the results (and to ``--json``).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

__all__ = ["Progress"]

_NAME = 23  # a case's name is cut to this width (the documented cases' names fit), so that a line fits 80 columns


@dataclass
class _Case:
    total: int
    done: int = 0
    running: int = 0
    fixed: int = 0
    pruned: int = 0
    errors: int = 0
    best: float | None = None
    started: float = 0.0
    task: Any = None

    def counts(self) -> str:
        text = f"{self.fixed} fixed {self.pruned} pruned"
        if self.errors:
            text += f" {self.errors} err"
        return text + (f" best {self.best:.1e}" if self.best is not None else "")


class Progress:
    """What a person watching a sweep sees.

    Args:
        enabled: False shows nothing (``--quiet``).
        stream: where to draw (default stderr).
        every: seconds between summary lines when the stream is not a terminal.
    """

    def __init__(self, enabled: bool = True, stream: Any = None, every: float = 60.0) -> None:
        self.enabled = enabled
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=False)
        self.live = enabled and self.console.is_terminal
        self.every = every
        self.cases: dict[str, _Case] = {}
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self._bars = (
            RichProgress(
                *columns(),
                console=self.console,
                transient=False,
                refresh_per_second=4,
            )
            if self.live
            else None
        )
        self._status = None
        if self._bars is not None:
            self._bars.start()

    def status(self, text: str | None) -> None:
        """A line about the sweep as a whole (Ray starting, the store away); None clears it."""
        if not self.enabled:
            return
        with self._lock:
            if self._bars is not None:
                if text is None:
                    if self._status is not None:
                        self._bars.remove_task(self._status)
                        self._status = None
                elif self._status is None:
                    self._status = self._bars.add_task(text, total=None, counts="")
                else:
                    self._bars.update(self._status, description=text)
            elif text:
                self._print(f"overfit: {text}")

    def note(self, text: str) -> None:
        """A line that stays (above the live lines in a terminal)."""
        if self.enabled:
            with self._lock:
                self._print(text)

    def warn(self, text: str) -> None:
        """A line that stays, shown even when the display is off (``--quiet``)."""
        with self._lock:
            self._print(text) if self.enabled else print(text, file=sys.stderr, flush=True)

    def add_case(self, name: str, total: int, done: int = 0, fixed: int = 0, pruned: int = 0, errors: int = 0) -> None:
        case = _Case(total=total, done=done, fixed=fixed, pruned=pruned, errors=errors, started=time.monotonic())
        self.cases[name] = case
        if self._bars is not None:
            case.task = self._bars.add_task(_cut(name), total=total, completed=done, counts=case.counts())

    def trial_started(self, name: str) -> None:
        with self._lock:
            self.cases[name].running += 1
            # Piped, the minute's summary comes as a trial starts: between one trial's end and the next one's start
            # a slot is briefly free, and "running" would count one trial too few.
            if self.enabled and self._bars is None and time.monotonic() - self._last_line > self.every:
                self._print(self._overall())

    def trial_finished(self, name: str, done: Any) -> None:
        """One trial of ``name`` ended; ``done`` is its :class:`~search.engine.case_run.Done`."""
        with self._lock:
            case = self.cases[name]
            case.running = max(0, case.running - 1)
            case.done += 1
            case.fixed += done.fixed
            case.pruned += done.pruned
            case.errors += done.outcome == "error"
            if done.rel_error is not None and (case.best is None or done.rel_error < case.best):
                case.best = done.rel_error
            if self._bars is not None:
                self._bars.update(case.task, completed=case.done, counts=case.counts())
            elif not self.enabled:
                return
            elif case.done == case.total:
                minutes, seconds = divmod(int(time.monotonic() - case.started), 60)
                self._print(f"{name}: {case.done}/{case.total} trials in {minutes}:{seconds:02d}, {case.counts()}")

    def _overall(self) -> str:
        done = sum(c.done for c in self.cases.values())
        total = sum(c.total for c in self.cases.values())
        running = sum(c.running for c in self.cases.values())
        fixed = sum(c.fixed for c in self.cases.values())
        return f"overfit: {done}/{total} trials done, {running} running, {fixed} fixed"

    def _print(self, line: str) -> None:
        self.console.print(line, overflow="ignore", crop=False, markup=False)
        self._last_line = time.monotonic()

    def close(self) -> None:
        if self._bars is not None:
            self.status(None)
            self._bars.stop()
            self._bars = None


def columns() -> tuple[ProgressColumn, ...]:
    """A case's line: spinner, name, bar, trials done of planned, elapsed, counts (80 columns in all).

    No estimate of the time left: rich's assumes steady progress, which pruned trials (ending early) and the cases'
    interleaved trials do not make, and its column pushed a line past 80."""
    return (
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}", style="bold"),
        BarColumn(bar_width=8),
        MofNCompleteColumn(),
        _Elapsed(),
        TextColumn("{task.fields[counts]}"),
    )


class _Elapsed(ProgressColumn):
    """A case's time so far (until its last trial ended) as mm:ss, or h:mm:ss past an hour."""

    def render(self, task: Task) -> Text:
        seconds = task.finished_time if task.finished else task.elapsed
        minutes, second = divmod(int(seconds or 0), 60)
        hours, minute = divmod(minutes, 60)
        text = f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute:02d}:{second:02d}"
        return Text(text, style="progress.elapsed")


def _cut(name: str) -> str:
    return name if len(name) <= _NAME else name[: _NAME - 1] + "…"
