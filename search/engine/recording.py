"""What the driver keeps of each trial, the sweep's trial log on disk, and the Tune callback that feeds them.

A finished trial is judged once (its own final report, or what it reported before the pruner or a lost worker
stopped it), appended to the sweep's **trial log** (``{results_dir}/sweep-{id}.jsonl``, one JSON line per
trial, written before anything else), then told to Optuna and written to MLflow in the background. The log is the
sweep's durable record: when MLflow was away, or the driver died between a trial's end and its MLflow write,
``--resume`` writes the missing runs from it; ``analysis.load_results`` reads it without MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from analysis.records import BASELINE_LABEL, Tag, TrialSpec
from search.engine.tracking import source_tags
from search.trainer.judge import judge
from search.trainer.metrics import Epoch
from search.trainer.trial import json_safe
from spaces import Case

__all__ = ["RecordingCallback", "TrialRecord", "trial_entry"]


@dataclass
class TrialRecord:
    """What the driver knows of one trial while and after it runs.

    Attributes:
        spec: what the trial is.
        trial_id: Ray Tune's id of it.
        started: when it started, in ms since the epoch (MLflow's clock).
        attempts: how many times it was started (a lost worker or node makes Tune run it again).
        epochs: the epochs it reported before its final report (all, when it was stopped).
        summary: its judged result, once finished.
        figures: base64 PNGs it drew (baseline and fixed trials).
        pruned_by: the pruner's rule, when the pruner stopped it.
        ended: when it ended, in ms.
    """

    spec: TrialSpec
    trial_id: str
    started: int = field(default_factory=lambda: int(time.time() * 1000))
    attempts: int = 1
    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    figures: dict[str, str] = field(default_factory=dict)
    pruned_by: str | None = None
    ended: int | None = None


def judge_partial(epochs: list[dict[str, Any]], case: Case, error: str | None = None) -> dict[str, Any]:
    """The judged result of a trial that never sent its final report (pruned, or its worker lost)."""
    history = [Epoch.from_dict(e) for e in epochs]
    verdict = judge(history, case.threshold, error=error)
    last = history[-1] if history else Epoch()
    return json_safe(
        {
            "outcome": verdict.outcome,
            "symptoms": [{"name": s.name, "evidence": s.evidence} for s in verdict.symptoms],
            "rel_error": verdict.rel_error,
            "best_rel_error": verdict.best_rel_error,
            "mse": last.mse,
            "epochs": last.epoch,
            "fixed": False,
            "error": error,
            "history": epochs,
        }
    )


def unexplained(summary: Mapping[str, Any], threshold: float) -> str | None:
    """Evidence for a failure no symptom rule names: it ran out of budget while still improving."""
    if summary.get("fixed") or summary.get("outcome") == "error":
        return None
    if any(s["name"] == summary.get("outcome") for s in summary.get("symptoms") or []):
        return None
    points = [(e["epoch"], e["rel_error"]) for e in summary.get("history") or [] if e.get("rel_error") is not None]
    if not points:
        return None
    last_epoch, last = points[-1]
    earlier = [v for epoch, v in points if epoch <= last_epoch * 3 / 4] or [points[0][1]]
    trend = f"{earlier[-1]:.3g} → {last:.3g} over its last quarter"
    return f"relative error {last:.3g} still above the threshold {threshold:g} when the budget ran out ({trend})"


def trial_entry(record: TrialRecord, case: Case, budget: int) -> dict[str, Any]:
    """The trial as one line of the trial log: everything its MLflow run is written from."""
    spec, summary = record.spec, record.summary or {}
    symptoms = summary.get("symptoms") or []
    evidence = [f"{s['name']}: {s['evidence']}" for s in symptoms]
    if (budget_ran_out := unexplained(summary, case.threshold)) is not None:
        evidence.insert(0, f"{summary.get('outcome', 'plateau')}: {budget_ran_out}")
    pruned = record.pruned_by is not None
    tags = {
        **spec.tags(),
        **source_tags(case),
        Tag.OUTCOME: str(summary.get("outcome", "error")),
        Tag.FIXED: str(bool(summary.get("fixed"))).lower(),
        Tag.PRUNED: str(pruned).lower(),
        Tag.SYMPTOMS: ",".join(s["name"] for s in symptoms),
        Tag.EVIDENCE: "\n".join(evidence)[:4000],
        Tag.WHY: why(summary, case.threshold, record.pruned_by, budget),
        Tag.ATTEMPTS: str(record.attempts),
        Tag.RAY_TRIAL_ID: record.trial_id,
    }
    if pruned:
        tags[Tag.PRUNED_BY] = str(record.pruned_by)
    for tag, name in ((Tag.DEVICE, "device"), (Tag.ERROR, "error")):
        if summary.get(name):
            tags[tag] = str(summary[name])[:4000]
    if summary.get("gpu_ids"):
        tags[Tag.GPU_IDS] = ",".join(summary["gpu_ids"])
    tags[Tag.NOTE] = note(spec, summary, case.threshold, tags[Tag.WHY], evidence, record.attempts)
    return {
        "case": spec.case,
        "name": spec.run_name,
        "spec": spec.to_config(),
        "tags": tags,
        "params": {**case.config(spec.overrides), "seed": spec.seed, "profile": spec.profile},
        "metrics": {
            "final_rel_error": summary.get("rel_error"),
            "best_rel_error": summary.get("best_rel_error"),
            "final_mse": summary.get("mse"),
            "epochs": summary.get("epochs"),
            "seconds": summary.get("seconds"),
            "actor_seconds": summary.get("actor_seconds"),
        },
        "history": summary.get("history") or record.epochs,
        # For the figures of the baseline and of every fix, whoever draws them (the trial, the report, the notebook)
        "samples": {**summary["samples"], "time_dim": case.time_dim}
        if summary.get("samples") and (summary.get("fixed") or spec.label == BASELINE_LABEL)
        else None,
        "status": "FAILED" if summary.get("outcome") == "error" else "FINISHED",
        "started": record.started,
        "ended": record.ended,
    }


def why(summary: Mapping[str, Any], threshold: float, pruned_by: str | None, budget: int) -> str:
    """One sentence: why this trial did or did not fix the case."""
    error = summary.get("rel_error")
    shown = "nan" if error is None else f"{error:.3g}"
    if summary.get("fixed"):
        return f"fixed: relative error {shown} < threshold {threshold:g}"
    if summary.get("outcome") == "error":
        return f"raised: {str(summary.get('error') or 'unknown error').splitlines()[0][:300]}"
    cause = next((s["evidence"] for s in summary.get("symptoms") or [] if s["name"] == summary.get("outcome")), "")
    cause = cause or unexplained(summary, threshold) or ""
    text = f"{summary.get('outcome', 'plateau')}" + (f": {cause}" if cause else f": relative error {shown}")
    if pruned_by:
        text += f"; pruned at epoch {summary.get('epochs')} of {budget}: {pruned_by}"
    return text


def note(
    spec: TrialSpec, summary: Mapping[str, Any], threshold: float, reason: str, evidence: list[str], attempts: int
) -> str:
    """The run's description (markdown): what it changed, how it ended and why."""
    best = summary.get("best_rel_error")
    lines = [
        f"**{spec.label}**, seed {spec.seed} ({spec.part}): **{summary.get('outcome', 'error')}**.",
        "",
        f"{reason[0].upper()}{reason[1:]}.",
        "",
        f"Final relative error {_show(summary.get('rel_error'))} (best {_show(best)}; the case counts as fixed below "
        f"{threshold:g}, and 1 means no better than predicting the mean).",
    ]
    if evidence:
        lines += ["", "Symptoms:", *[f"- {line}" for line in evidence]]
    if attempts > 1:
        lines += ["", f"Ran {attempts} times: {attempts - 1} attempt(s) lost with a worker or node, then run again."]
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "nan" if value is None else f"{value:.3g}"


class RecordingCallback(Callback):
    """Bridges Tune's trial events to each case of the sweep (:class:`search.engine.case_run.CaseRun`).

    Args:
        searcher: the sweep's searcher (it knows each trial's spec and the pruner's reasons).
        runs: the cases of the sweep by name.
    """

    def __init__(self, searcher: Any, runs: Mapping[str, Any]) -> None:
        self.searcher, self.runs = searcher, runs
        self.records: dict[str, TrialRecord] = {}
        self._warned_cpu = False
        self._checked, self._away = 0.0, False

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config into the experiment folder; resuming never goes through that pickle.
        return {}

    def on_step_begin(self, iteration, trials, **info) -> None:
        """Shows the MLflow writer's wait, if any, on the live display (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        writer = next(iter(self.runs.values())).writer
        if writer.waiting_since is not None:
            away = int(now - writer.waiting_since)
            self._away = True
            next(iter(self.runs.values())).display.status(
                f"MLflow unreachable for {away // 60}:{away % 60:02d}, retrying ({writer.backlog} writes waiting)"
            )
        elif self._away:
            self._away = False
            next(iter(self.runs.values())).display.status(None)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if trial.trial_id in self.records:
            return  # a retried trial: on_trial_recover counted it
        spec = self.searcher.spec(trial.trial_id)
        self.records[trial.trial_id] = TrialRecord(spec=spec, trial_id=trial.trial_id)
        self.runs[spec.case].started(spec)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        record = self.records.get(trial.trial_id)
        if record is None:
            return
        record.epochs.extend(result.get("epochs") or [])
        if result.get("final"):
            record.summary = result["summary"]
            record.figures = result.get("figures") or {}

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        record = self.records.get(trial.trial_id)
        if record is not None:  # its worker or node was lost: Tune runs it again from the start
            record.attempts += 1
            record.epochs.clear()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finish(trial.trial_id, trial.last_result, error=None)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = f"trial failed in Ray after {self._attempts(trial.trial_id)} attempt(s): {_ray_error(trial)}"
        self._finish(trial.trial_id, trial.last_result, error=error)

    def finish_failed(self, results: Iterable[Any]) -> None:
        """Records the trials that Tune's ``results`` (its ResultGrid) hold as failed but no callback heard of.

        Ray Tune 2.60 ends a trial in error without calling ``on_trial_error`` when its lost actor reports a second
        failure while the first is being handled (seen when a node dies under load); without this the trial would
        be lost and the sweep would end as if interrupted. A trial stopped by Ctrl-C has no error: left for --resume.
        """
        for result in results:
            trial_id = (result.metrics or {}).get("trial_id")
            if result.error is None or trial_id not in self.records:
                continue
            lines = [line for line in str(result.error).splitlines() if line.strip()] or ["see Ray's logs"]
            error = f"trial failed in Ray after {self._attempts(trial_id)} attempt(s): {lines[-1][:300]}"
            self._finish(trial_id, result.metrics, error=error)

    def _attempts(self, trial_id: str) -> int:
        record = self.records.get(trial_id)
        return record.attempts if record else 1

    def _finish(self, trial_id: str, last_result: Mapping[str, Any] | None, error: str | None) -> None:
        """Judges and records a trial that ended (``last_result``: Tune's last result of it, if any)."""
        record = self.records.pop(trial_id, None)
        if record is None:
            return
        record.ended = int(time.time() * 1000)
        record.pruned_by = self.searcher.pruned.get(trial_id)
        run = self.runs[record.spec.case]
        if record.summary is None:  # stopped by the pruner, or its worker died for good: judge what it reported
            record.summary = judge_partial(record.epochs, run.case, error)
            record.summary["seconds"] = (last_result or {}).get("time_total_s")
        if record.summary.get("gpu_ids") and record.summary.get("device") == "cpu" and not self._warned_cpu:
            self._warned_cpu = True
            run.display.warn(
                f"overfit: Ray gives trials GPU {','.join(record.summary['gpu_ids'])} but torch sees no CUDA device "
                "(a CPU build of torch?): they run on the CPU"
            )
        run.finished(record)


def _ray_error(trial) -> str:
    """The first line of the error Ray recorded for a trial."""
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text().strip() if path else ""
    except OSError:
        text = ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "see Ray's logs"
