"""Vanishing and exploding gradients, from the first and last layers' gradient norms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch


def _ratio(record: Epoch) -> float:
    if record.grad_last > 0:
        return record.grad_first / record.grad_last
    return math.inf if record.grad_first > 0 else math.nan


@dataclass(frozen=True)
class VanishingGradient:
    """The first layer receives almost no gradient compared with the last.

    AutoTrainer (Zhang et al., ICSE 2021): vanishing when ``|g_first| / |g_last| < 1e-3`` (``beta_1``) and
    ``|g_first| < 1e-4`` (``beta_2``). Judged on the last epoch of a model that is not fixed.
    """

    name: str = "vanishing_gradient"
    max_ratio: float = 1e-3
    max_first: float = 1e-4

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history or history[-1].rel_error < threshold:
            return None
        last = history[-1]
        ratio = _ratio(last)
        if ratio < self.max_ratio and last.grad_first < self.max_first:
            return f"first-layer gradient {last.grad_first:.2g} is {ratio:.2g}x the last layer's"
        return None


@dataclass(frozen=True)
class ExplodingGradient:
    """The first layer's gradient dwarfs the last layer's.

    AutoTrainer (Zhang et al., ICSE 2021): exploding when ``|g_first| / |g_last| > 70`` (``beta_3``), on any
    epoch of a model that is not fixed.
    """

    name: str = "exploding_gradient"
    min_ratio: float = 70.0

    def __call__(self, history: Sequence[Epoch], threshold: float) -> str | None:
        if not history or history[-1].rel_error < threshold:
            return None
        for record in history:
            ratio = _ratio(record)
            if ratio > self.min_ratio and math.isfinite(ratio):
                return f"first-layer gradient was {ratio:.3g}x the last layer's at epoch {record.epoch}"
        return None
