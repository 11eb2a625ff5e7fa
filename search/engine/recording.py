"""The Tune callback that records each trial of a sweep in MLflow, from the driver, and feeds the live display.

MLflow writes go through one background thread, in order: Tune's event loop hands out the next trial while the
last one's run is written, instead of idling a slot for the write (about half a second a trial on sqlite).
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback

from search.engine.plan import BASELINE_KEY
from search.engine.progress import Progress
from search.engine.trainable import LIGHT_FIELDS
from search.trainer.metrics import Epoch
from search.trainer.symptoms import detect, outcome
from spaces import Case

__all__ = ["RecordingCallback", "TrialRecord"]


@dataclass
class TrialRecord:
    """What the driver knows of one running trial. ``run`` resolves to its MLflow run id once written."""

    key: str
    name: str
    part: str
    run: Future
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    recorded: bool = False

    @property
    def run_id(self) -> str:
        return self.run.result()


class RecordingCallback(Callback):
    """Bridges Tune's trial events to MLflow (one writer: the driver) and to the live display."""

    def __init__(
        self,
        case: Case,
        options: Any,
        recorder,
        parent_id: str,
        display: Progress,
        records: list[TrialRecord],
        reusable: dict[str, str] | None = None,
        searcher=None,
    ) -> None:
        self.case, self.options = case, options
        self.recorder, self.parent_id, self.display = recorder, parent_id, display
        self.reusable = reusable or {}
        self.searcher = searcher
        self.records = records  # shared with the sweep, which closes unfinished runs after an interrupt
        self._first = len(records)
        self._by_trial: dict[str, TrialRecord] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-writer")
        self._writes: list[Future] = []
        self._warned_cpu = False

    def _write(self, function) -> Future:
        """Queues one MLflow write behind the earlier ones."""
        future = self._writer.submit(function)
        self._writes.append(future)
        return future

    def flush(self) -> None:
        """Waits for every queued MLflow write; raises the first that failed (a tracking server gone, say)."""
        for future in self._writes:
            future.result()
        self._writes.clear()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config into the experiment folder; this callback holds live clients and streams,
        # and resuming goes through MLflow and Optuna (see ``--resume``), never through that pickle.
        return {}

    def _identify(self, trial) -> tuple[str, str, str, dict[str, Any], int]:
        """(part, key, name, config, seed) of a trial, from what the searcher gave it."""
        config = trial.config
        if "plan" in config:
            plan = config["plan"]
            overrides = self.case.config(plan["overrides"])
            return "ablation", plan["key"], plan["label"], overrides, int(plan["seed"])
        number = self.searcher.optuna_number(trial.trial_id)
        overrides = self.case.config({k: config[k] for k in self.case.space if k in config})
        return "search", f"search/{number}", f"search #{number}", overrides, int(config.get("seed", 0))

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if trial.trial_id in self._by_trial:
            return
        part, key, name, config, seed = self._identify(trial)
        params = {**config, "seed": seed, "profile": self.options.profile}
        tags = {
            "overfit.case": self.case.name,
            "overfit.part": part,
            "overfit.label": name,
            "overfit.ray_trial_id": trial.trial_id,
        }
        run = self._write(
            lambda: self.recorder.start_trial(self.parent_id, key, name, params, tags, run_id=self.reusable.get(key))
        )
        record = TrialRecord(key=key, name=name, part=part, run=run)
        self._by_trial[trial.trial_id] = record
        self.records.append(record)
        self.display.started(part)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        record = self._by_trial.get(trial.trial_id)
        if record is None:
            return
        if result.get("final"):
            record.summary = result["summary"]
        elif "epoch" in result:
            record.history.append({name: result.get(name) for name in LIGHT_FIELDS})

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, failed=False)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, failed=True)

    def _finish(self, trial, failed: bool) -> None:
        record = self._by_trial.get(trial.trial_id)
        if record is None or record.recorded:
            return
        pruned = bool(self.searcher and self.searcher.was_pruned(trial.trial_id))
        summary = record.summary
        if summary is None:  # stopped by the pruner, or the worker died: judge what was reported
            summary = _judge_partial(record.history, self.case, failed, trial)
        summary = {**summary, "pruned": pruned}
        record.summary = summary
        if summary.get("gpu_ids") and summary.get("device") == "cpu" and not self._warned_cpu:
            self._warned_cpu = True
            print(
                f"{self.case.name}: Ray gives trials GPU {','.join(summary['gpu_ids'])} but torch sees no CUDA device "
                "(a CPU build of torch?): they run on the CPU",
                file=sys.stderr,
                flush=True,
            )
        history = summary.get("history") or record.history
        status = "FAILED" if summary.get("outcome") == "error" else "FINISHED"
        self._write(lambda: self.recorder.finish_trial(record.run_id, history, summary, status))
        if record.key == BASELINE_KEY:
            title = f"{self.case.name}: baseline"
            self._write(lambda: self.recorder.log_figures(record.run_id, title, history, summary.get("samples")))
        record.recorded = True
        self.display.finished(record.part, summary)

    def check_complete(self, expected: int) -> None:
        """After ``fit()``: fewer finished trials than planned means the sweep was interrupted (Ctrl-C)."""
        self.flush()
        if sum(r.recorded for r in self.records[self._first :]) < expected:
            raise KeyboardInterrupt


def _judge_partial(history: list[dict[str, Any]], case: Case, failed: bool, trial) -> dict[str, Any]:
    epochs = [
        Epoch(
            epoch=int(h["epoch"]),
            rel_error=_nan(h.get("rel_error")),
            spread=_nan(h.get("spread")),
            mse=_nan(h.get("mse")),
            loss=_nan(h.get("loss")),
            dead_fraction=h.get("dead_fraction") or 0.0,
            power_error=math.nan,
        )
        for h in history
    ]
    symptoms = detect(epochs, case.threshold) if epochs else []
    error = None
    if failed:
        error = f"trial {trial.trial_id} failed in Ray: see {getattr(trial, 'error_file', None) or 'its log'}"
    last = epochs[-1] if epochs else Epoch()
    return {
        "outcome": outcome(False, symptoms, error),
        "symptoms": [s.name for s in symptoms],
        "rel_error": None if math.isnan(last.rel_error) else last.rel_error,
        "best_rel_error": min((e.rel_error for e in epochs if math.isfinite(e.rel_error)), default=None),
        "epochs": last.epoch,
        "seconds": (getattr(trial, "last_result", None) or {}).get("time_total_s"),
        "fixed": False,
        "error": error,
        "history": history,
    }


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
