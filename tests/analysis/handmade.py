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


def record_sweep(tracking_uri: str, results: list[tuple[str, str, dict[str, Any], int, float]]) -> str:
    """Writes one sweep of the tiny test case to MLflow through the sweep's own recording path, without training.

    ``results`` holds (label, part, overrides, seed, final relative error) per trial (a search trial's label is
    its own: ``search N: ...``); a trial is fixed under the case's threshold and its relative error falls linearly
    to that value over 10 epochs. The baseline carries figures and samples. Returns the parent run.
    """
    from analysis.figures import curves_figure, reconstruction_figure
    from analysis.records import TrialSpec
    from search.engine.recording import TrialRecord, trial_entry
    from search.engine.sweep import sweep_tags
    from search.engine.tracking import Recorder
    from tests.sweep_case import TinyCollapse

    case = TinyCollapse()
    recorder = Recorder(tracking_uri, "overfit")
    parent = recorder.start_sweep(case.name, {"profile": "quick", "seeds": 1, "trials": 0}, sweep_tags(case, "test"))
    searched = 0
    for _label, part, overrides, seed, error in results:
        number = searched if part == "search" else None
        searched += part == "search"
        spec = TrialSpec(case=case.name, part=part, seed=seed, overrides=overrides, number=number)
        history = [{"epoch": e, "rel_error": 1.0 + (error - 1.0) * e / 10} for e in range(1, 11)]
        fixed = error < case.threshold
        record = TrialRecord(spec=spec, trial_id=f"t{len(history)}")
        record.summary = {
            "outcome": "fixed" if fixed else "collapsed",
            "symptoms": [] if fixed else [{"name": "collapsed", "evidence": "spread 0.01"}],
            "fixed": fixed,
            "rel_error": error,
            "best_rel_error": error,
            "epochs": 10,
            "seconds": 0.5,
            "history": history,
        }
        if spec.label == "baseline":
            record.summary["samples"] = {"input": [[0.0, 1.0, 0.0]], "target": [[0.0, 1.0, 0.0]], "output": [[0.3] * 3]}
            record.figures = {
                "curves": _png(curves_figure({"baseline": [(1, 1.0), (10, error)]}, title="baseline")),
                "reconstructions": _png(reconstruction_figure(record.summary["samples"], title="baseline")),
            }
        recorder.write_trial(parent, {**trial_entry(record, case, 10), "figures": record.figures})
    recorder.end_sweep(parent)
    return parent


def _png(figure: Any) -> str:
    import base64
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


TINY_RESULTS = [
    ("baseline", "ablation", {}, 0, 1.0),
    ("lr=0.01", "ablation", {"lr": 0.01}, 0, 0.01),
    ("activation=tanh", "ablation", {"activation": "tanh"}, 0, 0.98),
    ("search 0: lr=0.05 activation=tanh", "search", {"lr": 0.05, "activation": "tanh"}, 0, 0.02),
]
