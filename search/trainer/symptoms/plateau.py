"""Plateau: the error stopped improving above the threshold: underfit within the budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class Plateau:
    """Over the last ``window`` of the run, the best error improved by less than ``min_gain`` of itself.

    The single-batch overfit test (TheDeepChecker; Karpathy's "overfit one batch") expects the error to keep
    falling towards zero; a flat curve above the case's threshold is a failure to memorise.

    Attributes:
        window: the trailing share of epochs examined.
        min_gain: relative improvement of the best error over that window below which the curve is flat.
        min_epochs: shorter histories are not judged.
    """

    name: str = "plateau"
    window: float = 0.25
    min_gain: float = 0.05
    min_epochs: int = 8

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if len(history) < self.min_epochs or history[-1].rel_error < threshold:
            return None
        start = max(1, int(len(history) * (1 - self.window)))
        before = min(r.rel_error for r in history[:start])
        after = min(r.rel_error for r in history[start:])
        gain = (before - after) / before if before > 0 else 0.0
        if gain < self.min_gain:
            return (
                f"best relative error moved from {before:.3g} to {after:.3g} over the last "
                f"{len(history) - start} epochs, above the threshold {threshold:g}"
            )
        return None
