"""The live display of a sweep: one compact line per case part instead of Ray's tables."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A compact live line per case part: done/total, running, fixed, pruned, errors."""

    def __init__(self, case: str, enabled: bool, stream: Any) -> None:
        self.case, self.enabled, self.stream = case, enabled, stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.counts: dict[str, Counter] = {}
        self.totals: dict[str, int] = {}
        self._last = 0.0

    def add(self, part: str, total: int) -> None:
        self.totals[part] = total
        self.counts[part] = Counter()
        self._show(force=True)

    def started(self, part: str) -> None:
        self.counts[part]["running"] += 1
        self._show()

    def finished(self, part: str, summary: dict[str, Any]) -> None:
        counts = self.counts[part]
        counts["running"] -= 1
        counts["done"] += 1
        counts["fixed"] += bool(summary.get("fixed"))
        counts["pruned"] += bool(summary.get("pruned"))
        counts["errors"] += summary.get("outcome") == "error"
        self._show(force=counts["done"] == self.totals[part])

    def _line(self) -> str:
        parts = []
        for part, counts in self.counts.items():
            parts.append(
                f"{part} {counts['done']}/{self.totals[part]} done, {counts['running']} running, "
                f"{counts['fixed']} fixed, {counts['pruned']} pruned, {counts['errors']} errors"
            )
        return f"{self.case:<24} " + " | ".join(parts)

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if force or now - self._last > 0.5:
                self.stream.write("\r\033[K" + self._line())
                self.stream.flush()
                self._last = now
        elif force or now - self._last > 30:  # a log, not a terminal: a line when a part ends, or every 30 s
            self.stream.write(self._line() + "\n")
            self.stream.flush()
            self._last = now

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
