"""The Ray Tune function trainable: one trial of one case, reported to Tune only when something is to be decided.

A trial's config is a :class:`~analysis.records.TrialSpec`. Each report costs a round trip through Tune's driver
(the trial waits for it), so a trial reports only (a) at an epoch where the collapse pruner would stop it, so that
the driver, the authority, can decide (for a search trial through Optuna's ``trial.should_prune``), and (b) at the
end, with its whole judged result. The pruner's rules are pure functions of the measured epochs, so the trial's
own check and the driver's agree, and the epoch a trial is pruned at does not depend on timing. Every report
carries the epochs measured since the last one; a trial that is not pruned costs one report.

Figures (its curve, and a few inputs beside targets and reconstructions) are drawn here, by the trial that
produced them, for the baseline and every fixed trial that trained for at least FIGURES_MIN_SECONDS (a near-free
fix keeps only its samples, for the report and the notebook to draw): the driver only stores them.
"""

from __future__ import annotations

import base64
import functools
import io
import time
from typing import Any

from ray import tune

from analysis.records import BASELINE_LABEL, TrialSpec
from search.engine.pruning import CollapsePruner
from search.trainer.metrics import Epoch
from search.trainer.trial import json_safe, run_trial
from spaces import Case, get_case

__all__ = ["draw_figures", "report_every", "train", "wants_figures"]

# Pruning decisions per trial: the pruner's window spans 10% of the budget, so two checks a window.
DECISIONS_PER_TRIAL = 20


# A fixed trial's figures take about half a second to draw on one core; a trial that trained for less than this
# leaves them to the report and the notebook, which draw them from its samples.
FIGURES_MIN_SECONDS = 1.0


def wants_figures(label: str, fixed: bool, seconds: float) -> bool:
    """Where figures help: the failure, and every fix that trained for longer than drawing them takes."""
    return label == BASELINE_LABEL or (fixed and seconds >= FIGURES_MIN_SECONDS)


@functools.cache
def _case(ref: str) -> Case:
    """The case, loaded once per worker process (a reused actor runs many trials; a file case would re-import)."""
    return get_case(ref)


def report_every(epochs: int) -> int:
    """Epochs between a trial's pruning checks."""
    return max(1, -(-epochs // DECISIONS_PER_TRIAL))


def train(config: dict[str, Any]) -> None:
    """Ray Tune entry point."""
    import ray

    started = time.perf_counter()
    spec = TrialSpec.from_config(config)
    case = _case(spec.case_ref or spec.case)
    budget = case.budget(spec.profile).epochs
    pruner = CollapsePruner() if spec.report_every > 0 else None
    pending: list[dict[str, Any]] = []  # measured epochs not yet reported
    errors: dict[int, float] = {}
    spreads: dict[int, float] = {}

    def on_epoch(record: Epoch) -> bool:
        pending.append(json_safe(record.as_dict()))
        errors[record.epoch], spreads[record.epoch] = record.rel_error, record.spread
        if pruner is None or record.epoch % spec.report_every or record.epoch >= budget:
            return False
        if pruner.rule(errors, spreads, budget) is not None:
            tune.report(
                {
                    "epochs": list(pending),
                    "max_epochs": budget,
                    "final": False,
                    "epoch": record.epoch,
                    "rel_error": json_safe(record.rel_error),
                }
            )
            pending.clear()  # Tune stops the trial at this report when the driver agrees
        return False

    # No device given: run_trial takes CUDA when present; Ray sets CUDA_VISIBLE_DEVICES for GPU trials.
    result = run_trial(
        case,
        spec.overrides,
        seed=spec.seed,
        profile=spec.profile,
        threads=spec.threads,
        on_epoch=on_epoch,
        report_every=spec.report_every or None,
    )
    summary = result.to_json(history=True)
    summary["gpu_ids"] = [str(i) for i in ray.get_gpu_ids()]  # what Ray gave it, beside the device torch used
    wanted = wants_figures(spec.label, result.fixed, result.seconds)  # a near-free fix keeps only its samples
    figures = draw_figures(case, spec, summary["history"], summary.get("samples")) if wanted else {}
    summary["actor_seconds"] = time.perf_counter() - started  # training plus what the trial cost around it
    tune.report(
        {
            "epochs": pending,
            "max_epochs": budget,
            "final": True,
            "rel_error": json_safe(result.rel_error),
            "summary": summary,
            "figures": figures,
        }
    )


def draw_figures(
    case: Case, spec: TrialSpec, history: list[dict[str, Any]], samples: dict[str, Any] | None
) -> dict[str, str]:
    """A trial's figures (its curve; a few inputs beside targets and outputs) as base64 PNGs, keyed as
    ``analysis.records.ARTIFACTS``. Drawn by the trial itself, or by ``--resume`` for a run it writes from the log."""
    import matplotlib

    matplotlib.use("Agg")  # a worker has no screen
    import matplotlib.pyplot as plt

    from analysis.figures import curves_figure, reconstruction_figure

    title = f"{case.name}: {spec.run_name}"
    points = [(e["epoch"], e["rel_error"]) for e in history if e.get("rel_error") is not None]
    drawn = {"curves": curves_figure({"relative error": points}, threshold=case.threshold, title=title)}
    if samples:
        drawn["reconstructions"] = reconstruction_figure(samples, time_dim=case.time_dim, title=title)
    encoded = {}
    for name, figure in drawn.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        plt.close(figure)
        encoded[name] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return encoded
