"""Scale-blindness: the raw loss looks excellent, yet the model is no better than predicting the mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class ScaleBlind:
    """Tiny error next to the data's magnitude, relative error near or above 1 (seed 003).

    The data of seed 003 sit near 1.109 and vary by 0.0012, so an MSE of 1e-6 is a millionth of the signal's
    power while the model has learnt nothing of its shape. ``power_error`` (MSE over the target's mean square)
    is what the raw loss looks like; ``rel_error`` (MSE over its variance) is what it is.

    Attributes:
        max_power_error: the loss looks excellent below this share of the signal's power.
        min_rel_error: yet the relative error is at least this.
    """

    name: str = "scale_blind"
    max_power_error: float = 1e-3
    min_rel_error: float = 0.5

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history:
            return None
        last = history[-1]
        if last.power_error < self.max_power_error and last.rel_error >= self.min_rel_error:
            return (
                f"MSE {last.mse:.3g} is only {last.power_error:.2g} of the signal's power, "
                f"yet relative error is {last.rel_error:.3g}"
            )
        return None
