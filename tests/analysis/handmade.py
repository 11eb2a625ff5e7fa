"""Hand-made sweeps for the analysis tests: trial frames and MLflow records written without training."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import TRIAL_COLUMNS, CaseSweep

BASELINE = {"activation": "relu", "lr": 1e-3, "hidden_size": 8, "batch_size": 16}
FACTORS = list(BASELINE)


def trial(label: str, seed: int = 0, error: float = 1.0, part: str = "ablation", **changes: Any) -> dict[str, Any]:
    """One trial row: the baseline with ``changes``, fixed when ``error`` is under 0.1."""
    fixed = error < 0.1
    return {
        "case": "handmade",
        "part": part,
        "label": label,
        "seed": seed,
        "outcome": "fixed" if fixed else "collapsed",
        "symptoms": () if fixed else ("collapsed",),
        "fixed": fixed,
        "pruned": False,
        "final_rel_error": error,
        "best_rel_error": error,
        "epochs": 100,
        "seconds": 1.0,
        "status": "FINISHED",
        "run_id": f"{label}-{seed}",
        "sweep_id": "sweep",
        **{**BASELINE, **changes},
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    return out[TRIAL_COLUMNS + FACTORS]


def info(**fields: Any) -> CaseSweep:
    defaults = {
        "case": "handmade",
        "sweep_id": "sweep",
        "factors": FACTORS,
        "baseline": BASELINE,
        "fix": {"activation": "elu"},
        "threshold": 0.1,
    }
    return CaseSweep(**{**defaults, **fields})


def ablation_of_a_dying_relu(seeds: int = 2) -> list[dict[str, Any]]:
    """activation=elu fixes every seed, lr=0.01 some, hidden_size=64 helps without fixing; a pair also fixes."""
    rows = []
    for seed in range(seeds):
        rows += [
            trial("baseline", seed, 1.0),
            trial("activation=elu", seed, 0.001, activation="elu"),
            trial("activation=tanh", seed, 0.9, activation="tanh"),
            trial("lr=0.01", seed, 0.05 if seed == 0 else 0.5, lr=0.01),
            trial("hidden_size=64", seed, 0.3, hidden_size=64),
            trial("batch_size=1", seed, 1e-6, batch_size=1),
        ]
    return rows
