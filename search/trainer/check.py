"""Placeholder until the trainer's case check lands: times one training step of the baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass

from spaces import Case

__all__ = ["CaseProbe", "check_case"]


@dataclass(frozen=True)
class CaseProbe:
    seconds_per_epoch: float
    parameters: int


def check_case(case: Case, profile: str = "quick", seed: int = 0) -> CaseProbe:
    config = case.config()
    budget = case.budget(profile)
    data = case.make_data(seed, budget, config)
    model = case.build_model(config)
    started = time.perf_counter()
    loss = case.loss(model(data.inputs), data.targets, config)
    loss.backward()
    return CaseProbe(time.perf_counter() - started, sum(p.numel() for p in model.parameters()))
