"""Collapse: the model outputs (nearly) the same thing whatever the input: a constant or the data's mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class Collapse:
    """Outputs barely vary across samples while the error stays near that of predicting the mean.

    TheDeepChecker (Ben Braiek & Khomh, TOSEM 2023) flags "constant outputs" when the network's outputs hardly
    vary across a batch; seeds 001 (constant 0.5) and 004 (a flat line at the mean) are this symptom. Here the
    variation is measured as ``spread`` (output std across samples over target std), judged at the last epoch.

    Attributes:
        max_spread: outputs vary less than this fraction of the targets' variation.
        min_rel_error: and the error is at least this fraction of the mean-predictor's.
    """

    name: str = "collapsed"
    max_spread: float = 0.5
    min_rel_error: float = 0.7

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history:
            return None
        last = history[-1]
        if last.spread < self.max_spread and last.rel_error >= self.min_rel_error:
            return (
                f"outputs vary {last.spread:.3g}x as much as the targets; "
                f"relative error {last.rel_error:.3g} (1 = predicting the mean)"
            )
        return None
