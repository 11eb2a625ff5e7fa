"""Hand-made sweeps for the analysis tests: trial frames, and MLflow records (through the sweep's own recording path)
and Optuna journals written without training."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import pandas as pd

from analysis import TRIAL_COLUMNS, CaseSweep
from analysis.records import BASELINE_LABEL, TrialSpec, open_journal

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


SETTINGS = {"profile": "quick", "seeds": 1, "trials": 1, "parts": "ablation,search", "seed": 0, "prune": True}
"""The parent run's params: the sweep's settings."""


def samples(error: float, count: int = 2, width: int = 8) -> dict[str, Any]:
    """What a trial logs as ``samples.json``: inputs, targets and outputs in data units, the output ``error`` away."""
    rows = [[math.sin(i + 3 * k) for i in range(width)] for k in range(count)]
    mean = sum(map(sum, rows)) / (count * width)
    output = [[mean + (1 - error) * (v - mean) for v in row] for row in rows]
    return {"input": rows, "target": rows, "output": output, "time_dim": -1}


def tiny_case(name: str = "tiny_collapse") -> Any:
    """The tiny test case (tests/sweep_case.py), recorded under ``name``."""
    from tests.sweep_case import TinyCollapse

    return type("Recorded", (TinyCollapse,), {"name": name})()


def record_sweep(
    tracking_uri: str, results: list[tuple[str, str, dict[str, Any], int, float]], case: Any = None
) -> str:
    """Writes one sweep of the tiny test case to MLflow through the sweep's own recording path, without training.

    ``results`` holds (label, part, overrides, seed, final relative error) per trial (a search trial's label is
    its own: ``search N: ...``); a trial is fixed under the case's threshold and its relative error falls linearly
    to that value over 10 epochs. The baseline and every fixed trial carry ``samples.json``, the baseline its
    figures too. ``case`` is :func:`tiny_case` by default. Returns the parent run.
    """
    from analysis.figures import curves_figure, reconstruction_figure
    from search.engine.recording import TrialRecord, trial_entry
    from search.engine.sweep import sweep_tags
    from search.engine.tracking import Recorder

    case = case or tiny_case()
    recorder = Recorder(tracking_uri, "overfit")
    parent = recorder.start_sweep(case.name, SETTINGS, sweep_tags(case, "test"))
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
        logged = {**samples(error), "time_dim": case.time_dim} if fixed or spec.label == BASELINE_LABEL else None
        if spec.label == BASELINE_LABEL:  # drawing is slow: the baseline's figures are enough to read back
            points = [(r["epoch"], r["rel_error"]) for r in history]
            record.figures = {
                "curves": _png(curves_figure({spec.label: points}, threshold=case.threshold, title=spec.label)),
                "reconstructions": _png(reconstruction_figure(logged, title=spec.label)),
            }
        entry = {**trial_entry(record, case, 10), "figures": record.figures, "samples": logged}
        recorder.write_trial(parent, entry)
    recorder.end_sweep(parent)
    return parent


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


TINY_RESULTS = [
    ("baseline", "ablation", {}, 0, 1.0),
    ("lr=0.01", "ablation", {"lr": 0.01}, 0, 0.01),
    ("activation=tanh", "ablation", {"activation": "tanh"}, 0, 0.98),
    ("search 0: lr=0.05 activation=tanh", "search", {"lr": 0.05, "activation": "tanh"}, 0, 0.02),
]


def record_journal(path: str, study: str, trials: int = 2) -> None:
    """An Optuna journal holding one study of ``trials`` finished trials over the tiny case's lr."""
    import optuna

    created = optuna.create_study(study_name=study, storage=open_journal(path))
    created.set_user_attr("case", study.rsplit("-", 1)[0])
    for number in range(trials):
        trial = created.ask({"lr": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)})
        created.tell(trial, 1.0 / (number + 1))
