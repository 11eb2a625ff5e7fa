"""Hand-made sweeps for the analysis tests: trial frames, and MLflow records and Optuna journals written without
training, laid out as analysis/records.py says."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Param, RunTag

from analysis import TRIAL_COLUMNS, CaseSweep
from analysis.records import ARTIFACTS, BASELINE_LABEL, EXPERIMENT_KIND, Tag, TrialSpec, open_journal

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


TINY_CASE = {
    "name": "tiny_collapse",
    "title": "A zero-initialised MLP autoencoder that stays constant at a low learning rate",
    "factors": ["lr", "activation"],
    "task_factors": [],
    "baseline": {"lr": 1e-6, "activation": "relu"},
    "fix": {"lr": 0.01},
    "threshold": 0.1,
}
"""The test sweep's case, as its parent run records it (tests/sweep_case.py's TinyCollapse)."""

SETTINGS = {"profile": "quick", "seeds": 1, "trials": 1, "parts": "ablation,search", "seed": 0, "prune": True}

TINY_RESULTS = [
    (TrialSpec("tiny_collapse", "ablation", 0), 1.0),
    (TrialSpec("tiny_collapse", "ablation", 0, {"lr": 0.01}), 0.01),
    (TrialSpec("tiny_collapse", "ablation", 0, {"activation": "tanh"}), 0.98),
    (TrialSpec("tiny_collapse", "search", 0, {"lr": 0.05, "activation": "tanh"}, number=0), 0.02),
]
"""(trial, final relative error): a trial is fixed under the case's threshold."""


def samples(error: float, count: int = 2, width: int = 8) -> dict[str, Any]:
    """What a trial logs as ``samples.json``: inputs, targets and outputs in data units, the output ``error`` away."""
    rows = [[math.sin(i + 3 * k) for i in range(width)] for k in range(count)]
    mean = sum(map(sum, rows)) / (count * width)
    output = [[mean + (1 - error) * (v - mean) for v in row] for row in rows]
    return {"input": rows, "target": rows, "output": output, "time_dim": -1}


def record_sweep(tracking_uri: str, results: list[tuple[TrialSpec, float]], case: dict[str, Any] | None = None) -> str:
    """Writes one sweep to MLflow as the storage contract (analysis/records.py) lays it out, without training.

    Each trial's relative error falls linearly from 1 to its final value over 10 epochs; the baseline and every
    fixed trial log ``samples.json``. Returns the parent run's id.
    """
    from mlflow.tracking import MlflowClient

    case = case or TINY_CASE
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name("overfit")
    experiment = found.experiment_id if found else client.create_experiment("overfit", tags=dict([EXPERIMENT_KIND]))
    parent = client.create_run(experiment, run_name=f"{case['name']} sweep").info.run_id
    tags = {
        Tag.ROLE: "sweep",
        Tag.CASE: case["name"],
        Tag.STUDY: f"{case['name']}-{parent[:8]}",
        Tag.TITLE: case["title"],
        Tag.FACTORS: ",".join(case["factors"]),
        Tag.TASK_FACTORS: ",".join(case["task_factors"]),
        Tag.BASELINE: json.dumps(case["baseline"]),
        Tag.FIX: json.dumps(case["fix"]),
        Tag.THRESHOLD: repr(case["threshold"]),
    }
    client.log_batch(
        parent,
        params=[Param(k, str(v)) for k, v in SETTINGS.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    for spec, error in results:
        spec = replace(spec, case=case["name"])
        run = client.create_run(experiment, run_name=spec.run_name, tags={**spec.tags(), Tag.PARENT: parent})
        run_id = run.info.run_id
        fixed = error < case["threshold"]
        config = {**case["baseline"], **spec.overrides, "seed": spec.seed, "profile": spec.profile}
        history = [Metric("rel_error", 1.0 + (error - 1.0) * e / 10, 0, e) for e in range(1, 11)]
        summary = {"final_rel_error": error, "best_rel_error": error, "epochs": 10, "seconds": 0.5}
        outcome = {
            Tag.OUTCOME: "fixed" if fixed else "collapsed",
            Tag.FIXED: str(fixed).lower(),
            Tag.PRUNED: "false",
            Tag.SYMPTOMS: "" if fixed else "collapsed",
            Tag.EVIDENCE: "" if fixed else "collapsed: spread 0.01",
        }
        client.log_batch(
            run_id,
            metrics=history + [Metric(k, float(v), 0, 0) for k, v in summary.items()],
            params=[Param(k, str(v)) for k, v in config.items()],
            tags=[RunTag(k, v) for k, v in outcome.items()],
        )
        if fixed or spec.label == BASELINE_LABEL:
            client.log_dict(run_id, samples(error), ARTIFACTS["samples"])
        client.set_terminated(run_id)
    counts = {"trials": len(results), "fixed": sum(e < case["threshold"] for _, e in results), "pruned": 0}
    client.log_batch(parent, metrics=[Metric(k, float(v), 0, 0) for k, v in counts.items()])
    client.set_terminated(parent)
    return parent


def record_journal(path: str, study: str, trials: int = 2) -> None:
    """An Optuna journal holding one study of ``trials`` finished trials over the tiny case's lr."""
    import optuna

    created = optuna.create_study(study_name=study, storage=open_journal(path))
    created.set_user_attr("case", study.rsplit("-", 1)[0])
    for number in range(trials):
        trial = created.ask({"lr": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)})
        created.tell(trial, 1.0 / (number + 1))
