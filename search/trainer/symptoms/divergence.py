"""Divergence: NaN or inf, a blow-up, or the late divergence of seed 002 (improves, then rises sharply)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


@dataclass(frozen=True)
class Divergence:
    """The error became non-finite, exploded, or rose far above its best after having improved.

    AutoTrainer (Zhang et al., ICSE 2021) treats a NaN loss or a loss of at least 1e5 as an exploding model; we
    use the scale-free error for the blow-up (``max_rel_error``). Late divergence follows seed 002's curve:
    the error falls to a minimum, then ends ``rise`` times above it and by at least ``min_rise`` in absolute
    relative-error units, so noise at tiny errors is not called divergence. The first, best and last are those of
    the measured epochs; a non-finite loss between measurements is in the history as its own epoch.

    Attributes:
        max_rel_error: a relative error above this is a blow-up (1e5 mean-predictors' worth).
        rise: final error over best error at or above which the run diverged late.
        min_rise: the final error must also exceed the best by this much.
        min_improvement: the best must be below this fraction of the first epoch's error (it did learn first).
    """

    name: str = "diverged"
    max_rel_error: float = 1e5
    rise: float = 3.0
    min_rise: float = 0.1
    min_improvement: float = 0.8

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history:
            return None
        for record in history:
            values = (record.loss, record.mse, record.rel_error)
            if not record.finite or any(math.isnan(v) or math.isinf(v) for v in values):
                return f"non-finite loss, output or gradient at epoch {record.epoch}"
        last = history[-1]
        if last.rel_error > self.max_rel_error:
            return f"relative error blew up to {last.rel_error:.3g}"
        best = min(history, key=lambda r: r.rel_error)
        first = history[0].rel_error
        if (
            best.rel_error <= self.min_improvement * first
            and last.rel_error >= self.rise * best.rel_error
            and last.rel_error - best.rel_error >= self.min_rise
        ):
            return (
                f"relative error fell to {best.rel_error:.3g} at epoch {best.epoch}, "
                f"then rose to {last.rel_error:.3g} by epoch {last.epoch}"
            )
        return None
