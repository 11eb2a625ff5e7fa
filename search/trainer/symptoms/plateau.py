"""Plateau: the error stopped improving above the threshold: underfit within the budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class Plateau:
    """Over the last ``window`` of the run's epochs, the best error improved by less than ``min_gain`` of itself.

    The single-batch overfit test (TheDeepChecker; Karpathy's "overfit one batch") expects the error to keep
    falling towards zero; a flat curve above the case's threshold is a failure to memorise.

    The window is a share of the epochs run, not of the records: a history holds the measured epochs only.

    Attributes:
        window: the trailing share of epochs examined.
        min_gain: relative improvement of the best error over that window below which the curve is flat.
        min_epochs: shorter runs are not judged.
    """

    name: str = "plateau"
    window: float = 0.25
    min_gain: float = 0.05
    min_epochs: int = 8

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history or history[-1].epoch < self.min_epochs or history[-1].rel_error < threshold:
            return None
        last = history[-1].epoch
        start = max(1, int(last * (1 - self.window)))  # the window is the epochs after this one
        before = [r.rel_error for r in history if r.epoch <= start and math.isfinite(r.rel_error)]
        after = [r.rel_error for r in history if r.epoch > start and math.isfinite(r.rel_error)]
        if not before or not after:
            return None
        gain = (min(before) - min(after)) / min(before) if min(before) > 0 else 0.0
        if gain < self.min_gain:
            return (
                f"best relative error moved from {min(before):.3g} to {min(after):.3g} over the last "
                f"{last - start} epochs, above the threshold {threshold:g}"
            )
        return None
