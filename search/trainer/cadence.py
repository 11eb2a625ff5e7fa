"""Which epochs a trial measures: those its judges read, and enough for a curve a person can read.

Measuring an epoch (an eval pass over the memorised set, dead-unit hooks, gradient norms, reading the figures off
the device) costs up to half an epoch on the small cases, and what reads the figures needs few of them:

- the pruner reads the epochs the engine reports, multiples of ``report_every``: they are always measured;
- the symptom rules read the last epoch (collapse, dead units, scale-blindness, vanishing gradients), the first,
  the best and the last (late divergence), the best of the last quarter against the best before it (plateau),
  any measured epoch (exploding gradients) and any non-finite value (divergence): the first and last few epochs
  are measured, and a non-finite loss is caught on the unmeasured epochs' losses, read at the next measurement;
- the MLflow curves and the figures want a readable line: a regular grid of about :data:`POINTS` epochs;
- early stopping keeps the best epoch's weights, so under it every epoch is measured.

A loss that jumps between measurements is seen only at the next one (reading it earlier would wait for the device
at every epoch); the epochs before cannot be measured then, so the cadence looks closer from there on (every epoch
for one grid step) instead.

Example:
    >>> cadence = Cadence(epochs=300, report_every=10)
    >>> [e for e in range(1, 301) if cadence.due(e)][:12]
    [1, 2, 3, 4, 5, 6, 10, 12, 18, 20, 24, 30]
    >>> sum(cadence.due(e) for e in range(1, 301))
    80
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["EDGE", "JUMP", "POINTS", "Cadence"]

POINTS = 50
"""Epochs on the regular grid, about: the curve's resolution (the engine's reports add about 30 more)."""

EDGE = 0.02
"""Share of the budget measured at every epoch at its start and at its end (at least :data:`MIN_EDGE` epochs)."""

MIN_EDGE = 5

JUMP = 2.0
"""A training loss above this multiple of the last measured one is a jump: the cadence then looks closer."""


class Cadence:
    """The measured epochs of one trial.

    Args:
        epochs: the budget.
        report_every: epochs that are multiples of it are measured (the engine reports there).
        every_epoch: measure every epoch (early stopping reads each one).

    Attributes:
        step: the regular grid's spacing in epochs.
        edge: epochs measured at every epoch at the start and at the end.
    """

    def __init__(self, epochs: int, report_every: int | None = None, every_epoch: bool = False) -> None:
        if report_every is not None and report_every < 1:
            raise ValueError(f"report_every must be None or >= 1, got {report_every}")
        self.epochs, self.report_every, self.every_epoch = epochs, report_every, every_epoch
        self.step = max(1, epochs // POINTS)
        self.edge = max(MIN_EDGE, math.ceil(EDGE * epochs))
        self._closer_until = 0

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` is measured (the last epoch of the budget always is)."""
        return (
            self.every_epoch
            or epoch <= self.edge
            or epoch > self.epochs - self.edge
            or epoch % self.step == 0
            or (self.report_every is not None and epoch % self.report_every == 0)
            or epoch <= self._closer_until
        )

    def watch(self, epoch: int, reference: float, losses: Sequence[float]) -> None:
        """Looks closer after ``epoch`` (every epoch for one grid step) if any of ``losses``, the training losses
        since the measurement whose loss was ``reference``, jumped above :data:`JUMP` times it."""
        if reference > 0 and any(loss > JUMP * reference for loss in losses):
            self._closer_until = max(self._closer_until, epoch + self.step)
