"""The Ray Tune function trainable: one trial of one case, reported to Tune as it trains.

A trial's config holds the case reference (a built-in name or ``file.py:NAME``), the profile, the seed, the
part of the sweep and the factor values. It reports a light record every few epochs (what the pruner and the
live display need) and, at the end, the whole judged result: outcome, symptoms, per-epoch history and a few
samples beside their reconstructions, which the driver records in MLflow.
"""

from __future__ import annotations

import math
from typing import Any

import ray
from ray import tune

from search.trainer.trial import json_safe, run_trial
from spaces import get_case

__all__ = ["LIGHT_FIELDS", "REPORTS_PER_TRIAL", "report_every", "train"]

# Reports per trial to aim for: every report costs the driver a few milliseconds (scheduler, searcher,
# callbacks), and with two cores the driver competes with the trials it runs.
REPORTS_PER_TRIAL = 30


def report_every(epochs: int) -> int:
    return max(1, math.ceil(epochs / REPORTS_PER_TRIAL))


def train(config: dict[str, Any]) -> None:
    """Ray Tune entry point."""
    case = get_case(config["case"])
    plan = config.get("plan")  # an ablation trial carries its planned change; a search trial its factors
    overrides = plan["overrides"] if plan else {name: config[name] for name in case.space if name in config}
    seed = int(plan["seed"] if plan else config.get("seed", 0))
    epochs = case.budget(config["profile"]).epochs
    every = report_every(epochs)

    def on_epoch(record) -> bool:
        if record.epoch % every == 0 or not record.finite:
            tune.report({**_light(record), "max_epochs": epochs, "final": False})
        return False  # stopping is the scheduler's call: Tune interrupts the trial at its next report

    # No device given: run_trial takes CUDA when present; Ray sets CUDA_VISIBLE_DEVICES for GPU trials.
    result = run_trial(
        case,
        overrides,
        seed=seed,
        profile=config["profile"],
        threads=int(config.get("threads", 1)),
        on_epoch=on_epoch,
    )
    summary = result.to_json(history=True)
    summary["gpu_ids"] = [str(i) for i in ray.get_gpu_ids()]  # what Ray gave it, beside the device torch used
    last = result.history[-1] if result.history else None
    tune.report(
        {
            **(_light(last) if last else {}),
            "rel_error": json_safe(result.rel_error),
            "best_rel_error": json_safe(result.best_rel_error),
            "max_epochs": epochs,
            "final": True,
            "summary": summary,
        }
    )


# What a light report carries, beside ``max_epochs`` and ``final``; the driver keeps these per epoch.
LIGHT_FIELDS = ("epoch", "rel_error", "spread", "mse", "loss", "dead_fraction", "finite")


def _light(record) -> dict[str, Any]:
    return json_safe({name: getattr(record, name) for name in LIGHT_FIELDS})
