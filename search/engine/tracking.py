"""MLflow records of a sweep: a parent run per case sweep, a child run per trial, written from the driver.

Ray's ``MLflowLoggerCallback`` makes one run per trial and no parent (DESIGN.md); this module makes the tree,
tags each trial with its outcome and symptoms, marks pruned trials, logs per-epoch metrics and the figures
(curves, inputs beside reconstructions) for the baseline and the best trials. Keys (``overfit.key``) tie a
trial to its run across a resume, so nothing is recorded twice and nothing is left RUNNING.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the driver has no screen
import matplotlib.pyplot as plt
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

__all__ = ["EPOCH_METRICS", "Recorder"]

EPOCH_METRICS = (
    "rel_error",
    "mse",
    "loss",
    "spread",
    "power_error",
    "dead_fraction",
    "zero_grad_fraction",
    "grad_first",
    "grad_last",
)
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch


class Recorder:
    """Writes sweeps to one MLflow experiment.

    Args:
        tracking_uri: ``sqlite:///mlflow.db``, ``http://host:5000``, ...
        experiment: experiment name (created when missing).
    """

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)

    # ---- sweeps ----

    def start_sweep(self, case: str, params: Mapping[str, Any]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{case} sweep",
            tags={"overfit.case": case, "overfit.role": "sweep"},
        )
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def describe_sweep(self, run_id: str, case: Any, study: str) -> None:
        """What the analysis needs besides the trials: the case's factors, baseline, documented fix, threshold."""
        baseline = case.config()
        fix = {k: v for k, v in case.fixed_config().items() if v != baseline[k]}
        tags = {
            "overfit.study": study,
            "overfit.title": case.title,
            "overfit.factors": ",".join(case.space),
            "overfit.task_factors": ",".join(case.task_factors),
            "overfit.baseline": json.dumps(baseline),
            "overfit.fix": json.dumps(fix),
            "overfit.threshold": repr(float(case.threshold)),
        }
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def unfinished_sweep(self, case: str) -> Any | None:
        """The most recent sweep of ``case`` that did not finish (what ``--resume`` continues), or None."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`overfit.case` = '{case}' and tags.`overfit.role` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs and runs[0].info.status != RunStatus.to_string(RunStatus.FINISHED):
            return runs[0]
        return None

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))

    def end_sweep(self, run_id: str, status: str = "FINISHED", tags: Mapping[str, str] | None = None) -> None:
        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(run_id, status=status)

    def children(self, parent_id: str) -> list[Any]:
        return self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=5000
        )

    def settle_interrupted(self, parent_id: str) -> tuple[set[str], dict[str, str]]:
        """After a killed driver: the keys already finished, and the unfinished ablation runs to reuse by key.

        Unfinished runs of the Optuna part are deleted: their Optuna trials are marked failed and new trials are
        asked in their place, so keeping them would count a trial twice.
        """
        finished, reusable = set(), {}
        for run in self.children(parent_id):
            key = run.data.tags.get("overfit.key", "")
            if run.info.status == RunStatus.to_string(RunStatus.FINISHED):
                finished.add(key)
            elif key.startswith("ablation/"):
                reusable[key] = run.info.run_id
            else:
                self.client.delete_run(run.info.run_id)
        return finished, reusable

    # ---- trials ----

    def start_trial(
        self,
        parent_id: str,
        key: str,
        name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        run_id: str | None = None,
    ) -> str:
        all_tags = {"mlflow.parentRunId": parent_id, "overfit.key": key, "overfit.role": "trial", **tags}
        if run_id is None:
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id
            self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        else:
            self.reopen(run_id)
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
        return run_id

    def finish_trial(
        self, run_id: str, history: Iterable[Mapping[str, Any]], summary: Mapping[str, Any], status: str
    ) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, float(record[name]), now, int(record["epoch"]))
            for record in history
            for name in EPOCH_METRICS
            if _number(record.get(name))
        ]
        for name in ("rel_error", "best_rel_error", "mse", "epochs", "seconds"):
            if _number(summary.get(name)):
                metrics.append(
                    Metric(f"final_{name}" if name in ("rel_error", "mse") else name, float(summary[name]), now, 0)
                )
        symptoms = [s if isinstance(s, str) else s["name"] for s in summary.get("symptoms", [])]
        evidence = [f"{s['name']}: {s['evidence']}" for s in summary.get("symptoms", []) if isinstance(s, dict)]
        tags = [
            RunTag("overfit.outcome", str(summary.get("outcome", "error"))),
            RunTag("overfit.fixed", str(bool(summary.get("fixed", False))).lower()),
            RunTag("overfit.pruned", str(bool(summary.get("pruned", False))).lower()),
            RunTag("overfit.symptoms", ",".join(symptoms)),
            RunTag("overfit.evidence", "\n".join(evidence)[:4000]),
        ]
        if summary.get("device"):
            tags.append(RunTag("overfit.device", str(summary["device"])))
        if summary.get("gpu_ids"):
            tags.append(RunTag("overfit.gpu_ids", ",".join(summary["gpu_ids"])))
        if summary.get("error"):
            tags.append(RunTag("overfit.error", str(summary["error"])[:4000]))
        for start in range(0, max(len(metrics), 1), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + _BATCH], tags=tags if start == 0 else [])
        self.client.set_terminated(run_id, status=status)

    def log_figures(
        self, run_id: str, title: str, history: list[Mapping[str, Any]], samples: Mapping[str, list[list[float]]] | None
    ) -> None:
        """Loss curves, and a few inputs beside their reconstructions, like the pictures in the threads."""
        figure = curves_figure(title, {"this trial": history})
        self.client.log_figure(run_id, figure, "curves.png")
        plt.close(figure)
        if samples:
            figure = samples_figure(title, samples)
            self.client.log_figure(run_id, figure, "reconstructions.png")
            plt.close(figure)

    def log_comparison(self, run_id: str, title: str, curves: Mapping[str, list[Mapping[str, Any]]]) -> None:
        figure = curves_figure(title, curves)
        self.client.log_figure(run_id, figure, "baseline_vs_best.png")
        plt.close(figure)


def curves_figure(title: str, curves: Mapping[str, list[Mapping[str, Any]]]) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, history in curves.items():
        points = [(r["epoch"], r["rel_error"]) for r in history if _number(r.get("rel_error")) and r["rel_error"] > 0]
        if points:
            axis.plot(*zip(*points, strict=True), label=label)
    axis.set_yscale("log")
    axis.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="predicting the mean")
    axis.set(xlabel="epoch", ylabel="relative error (MSE / variance)", title=title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def samples_figure(title: str, samples: Mapping[str, list[list[float]]]) -> plt.Figure:
    count = len(samples["target"])
    figure, axes = plt.subplots(count, 1, figsize=(7, 2.2 * count), squeeze=False)
    for index, axis in enumerate(axes[:, 0]):
        axis.plot(samples["target"][index], label="expected (target)", linewidth=1)
        axis.plot(samples["output"][index], label="reconstruction", linewidth=1)
        axis.set_ylabel(f"sample {index}")
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
