"""Dead units: ReLU units that output zero for every sample, so no gradient reaches them (dying ReLU)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class DeadUnits:
    """Most ReLU units are inactive for every sample, or most gradient entries are exactly zero.

    AutoTrainer (Zhang et al., ICSE 2021) reports dying ReLU when at least 70% of the gradient entries are zero
    (its ``gamma = 0.7``); we apply the same 70% to the share of units that are silent over the whole memorised
    set, measured directly with forward hooks, and require the model to be failing (not fixed), as AutoTrainer
    only checks a model that has not converged.

    Attributes:
        min_fraction: share of dead units, or of zero gradient entries, at or above which units are dead.
    """

    name: str = "dead_units"
    min_fraction: float = 0.7

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history or history[-1].rel_error < threshold:
            return None
        last = history[-1]
        if last.dead_fraction >= self.min_fraction:
            return f"{last.dead_fraction:.0%} of ReLU units are zero for every sample"
        if last.zero_grad_fraction >= self.min_fraction:
            return f"{last.zero_grad_fraction:.0%} of gradient entries are exactly zero"
        return None
