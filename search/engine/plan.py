"""What a sweep of one case runs: the ablation grid (baseline, then one factor changed at a time, K seeds).

The Optuna part needs no plan: its trials are asked from the study as slots free up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spaces import Case

__all__ = ["BASELINE_KEY", "BASELINE_LABEL", "DOCUMENTED_FIX", "PlannedTrial", "ablation"]

DOCUMENTED_FIX = "documented fix"  # the ``factor`` of a planned trial that applies a multi-factor documented fix


@dataclass(frozen=True)
class PlannedTrial:
    """One ablation trial: the factor changed (None for the baseline), its value, and the seed.

    ``key`` identifies the trial across a resume, so a finished one is never run or recorded twice.
    """

    factor: str | None
    value: Any
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.factor is None:
            return BASELINE_LABEL
        if self.factor == DOCUMENTED_FIX:
            return "fix: " + " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.factor}={self.value}"

    @property
    def key(self) -> str:
        return f"ablation/{self.label}/seed={self.seed}"


def ablation(case: Case, seeds: int) -> list[PlannedTrial]:
    """The baseline and every one-factor change over the case's ablation values, each over ``seeds`` seeds.

    Values equal to the baseline's are skipped (they are the baseline); the documented fix's values are always
    included, so a fix that lies off a factor's grid is still tried alone; a documented fix that changes several
    factors is also tried whole, last.
    """
    baseline = case.config()
    values: dict[str, list[Any]] = {name: list(f.ablation_values()) for name, f in case.space.items()}
    for name, value in case.config(case.fix).items():
        if value != baseline[name] and value not in values[name]:
            values[name].append(value)
    planned = [PlannedTrial(None, None, seed) for seed in range(seeds)]
    for name, options in values.items():
        for value in options:
            if value == baseline[name]:
                continue
            planned += [PlannedTrial(name, value, seed, {name: value}) for seed in range(seeds)]
    fix = {k: v for k, v in case.config(case.fix).items() if v != baseline[k]}
    if len(fix) > 1:
        planned += [PlannedTrial(DOCUMENTED_FIX, None, seed, fix) for seed in range(seeds)]
    return planned


BASELINE_LABEL = "baseline"
BASELINE_KEY = PlannedTrial(None, None, 0).key
"""The key of the seed-0 baseline: the trial whose figures every sweep records."""
