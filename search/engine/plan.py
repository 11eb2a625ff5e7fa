"""What a case's ablation runs: the baseline, then one factor changed at a time, each over K seeds.

The Optuna part needs no plan: its trials are asked from the case's study as slots free up.

Example:
    >>> from spaces import get_case
    >>> planned = ablation(get_case("lstm_mean_prediction"), seeds=1)
    >>> [spec.label for spec in planned][:4]
    ['baseline', 'hidden_size=20', 'hidden_size=100', 'lr=1e-06']
"""

from __future__ import annotations

from typing import Any

from analysis.records import TrialSpec
from spaces import Case

__all__ = ["BASELINE_KEY", "ablation"]


def ablation(case: Case, seeds: int) -> list[TrialSpec]:
    """The baseline and every one-factor change over the case's ablation values, each over ``seeds`` seeds.

    Values equal to the baseline's are skipped (they are the baseline); the documented fix's values are always
    included, so a fix that lies off a factor's grid is still tried alone; a documented fix that changes several
    factors is also tried whole, last. The specs carry what varies between trials; the sweep fills in the rest.
    """
    baseline = case.config()
    values: dict[str, list[Any]] = {name: list(f.ablation_values()) for name, f in case.space.items()}
    fix = {k: v for k, v in case.config(case.fix).items() if v != baseline[k]}
    for name, value in fix.items():
        if value not in values[name]:
            values[name].append(value)
    changes = [{name: value} for name, options in values.items() for value in options if value != baseline[name]]
    changes = [{}, *changes] + ([fix] if len(fix) > 1 else [])  # the baseline first, the whole fix last
    return [
        TrialSpec(case=case.name, part="ablation", seed=seed, overrides=overrides, fix=len(overrides) > 1)
        for overrides in changes
        for seed in range(seeds)
    ]


BASELINE_KEY = TrialSpec(case="", part="ablation").key
"""The key of the seed-0 baseline: the failure's record, never pruned."""
