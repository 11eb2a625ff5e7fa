"""MLflow records of a sweep, written from the driver: a parent run per case, a child run per trial.

Ray's ``MLflowLoggerCallback`` makes one run per trial and no parent; this module makes the tree, made for the
MLflow UI: the experiment opens on its runs, each run is named by what it changed, a trial that did not fix the
case says why (its outcome, the symptoms' evidence, the pruner's rule), parents carry metrics to sort by and a
description holding the case's ranking. Tag, metric and artifact names are the storage contract's
(:mod:`analysis.records`).

:class:`Recorder` does the writing; :class:`Writer` runs it on one background thread, in order, retrying with
backoff while the store is away, so that Tune's event loop never waits on MLflow. A trial's run is created when the
trial has finished, whole: a lost driver or a lost worker never leaves a half-written run behind, and a write
that fails midway is replaced whole on its retry.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from analysis.records import ARTIFACTS, EPOCH_METRICS, EXPERIMENT_KIND, Tag

__all__ = ["Recorder", "StoreUnavailable", "Writer", "source_tags"]

_BATCH = 900  # MLflow takes at most 1000 metrics per log_batch
FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"


class Recorder:
    """Writes the sweeps of one MLflow experiment (created, and tagged for the UI, when missing).

    Args:
        tracking_uri: ``sqlite:///mlflow.db``, ``http://host:5000``, ...
        experiment: the experiment's name.
        create: whether to create a missing experiment; if False, a missing one raises :class:`LookupError` (a
            command that only continues what is recorded must create nothing).
    """

    def __init__(self, tracking_uri: str, experiment: str, create: bool = True) -> None:
        # MLflow's client retries an unreachable server for minutes by itself; the Writer's own retries show the
        # wait in the progress line and keep the sweep going meanwhile. These are MLflow's documented variables.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        found = self.client.get_experiment_by_name(experiment)
        if found is None and not create:
            raise LookupError(f"no experiment {experiment!r}")
        self.experiment_id = found.experiment_id if found else self._create(experiment)
        if found is None or found.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
            self.client.set_experiment_tag(self.experiment_id, *EXPERIMENT_KIND)
            self.client.set_experiment_tag(self.experiment_id, Tag.NOTE, _EXPERIMENT_NOTE)

    def _create(self, experiment: str) -> str:
        """A new experiment; on a sqlite store its artifacts live beside the store, not in the working folder."""
        from mlflow.exceptions import MlflowException

        location = None
        if self.tracking_uri.startswith("sqlite:///"):
            location = (Path(self.tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
        try:
            return self.client.create_experiment(experiment, artifact_location=location)
        except MlflowException:  # another command created it since we looked: use theirs
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                raise
            return found.experiment_id

    # ---- parent runs ----

    def start_sweep(self, case: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=case, tags={Tag.ROLE: "sweep", Tag.CASE: case, **tags}
        )
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def unfinished_sweep(self, case: str) -> Any | None:
        """The most recent sweep of ``case`` that did not finish (what ``--resume`` continues), or None."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{Tag.CASE}` = '{case}' and tags.`{Tag.ROLE}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs and runs[0].info.status != FINISHED:
            return runs[0]
        return None

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status=RUNNING)

    def end_sweep(
        self,
        run_id: str,
        status: str = FINISHED,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        now = _now()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, _shown(v), now, 0) for k, v in (metrics or {}).items() if _number(v)],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )
        self.client.set_terminated(run_id, status=status)

    def children(self, parent_id: str) -> list[Any]:
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], f"tags.`{Tag.PARENT}` = '{parent_id}'", max_results=5000, page_token=token
            )
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def log_figure(self, run_id: str, figure: Any, name: str) -> None:
        self.client.log_figure(run_id, figure, ARTIFACTS[name])

    # ---- child runs ----

    def write_trial(self, parent_id: str, trial: Mapping[str, Any], replace: bool = False) -> str:
        """Writes one finished trial as a child run, whole; returns its run id.

        ``trial`` is a line of the sweep's trial log (see :class:`search.engine.recording.TrialRecord`). With
        ``replace`` (a retry, or a resume), a run of the same key under ``parent_id`` that did not finish is
        deleted first, and a finished one is kept and returned: a trial is never recorded twice.
        """
        tags = dict(trial["tags"])
        key = tags[Tag.KEY]
        if replace:
            for run in self.client.search_runs(
                [self.experiment_id], f"tags.`{Tag.PARENT}` = '{parent_id}' and tags.`{Tag.KEY}` = '{key}'"
            ):
                if run.info.status == FINISHED:
                    return run.info.run_id
                self.client.delete_run(run.info.run_id)
        run = self.client.create_run(
            self.experiment_id,
            start_time=trial.get("started"),
            tags={Tag.PARENT: parent_id, **tags},
            run_name=trial["name"],
        )
        run_id = run.info.run_id
        now = _now()
        metrics = [
            Metric(name, _shown(epoch[name]), now, int(epoch["epoch"]))
            for epoch in trial.get("history") or []
            for name in EPOCH_METRICS
            if _number(epoch.get(name))
        ]
        metrics += [Metric(k, _shown(v), now, 0) for k, v in trial["metrics"].items() if _number(v)]
        params = [Param(k, str(v)) for k, v in trial["params"].items()]
        for start in range(0, max(len(metrics), 1), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + _BATCH], params=params if not start else [])
        self._log_artifacts(run_id, trial)
        if trial.get("dataset") is not None:
            self.client.log_inputs(run_id, datasets=[trial["dataset"]])
        self.client.set_terminated(run_id, status=trial["status"], end_time=trial.get("ended"))
        return run_id

    def _log_artifacts(self, run_id: str, trial: Mapping[str, Any]) -> None:
        figures, samples = trial.get("figures") or {}, trial.get("samples")
        if not figures and not samples:
            return
        with tempfile.TemporaryDirectory() as folder:
            for name, encoded in figures.items():
                path = Path(folder) / Path(ARTIFACTS[name]).name
                path.write_bytes(base64.b64decode(encoded))
                self.client.log_artifact(run_id, str(path), str(Path(ARTIFACTS[name]).parent))
            if samples:
                path = Path(folder) / ARTIFACTS["samples"]
                path.write_text(json.dumps(samples))
                self.client.log_artifact(run_id, str(path))


def source_tags(case: Any) -> dict[str, str]:
    """MLflow's source tags (the runs table's "Source" column): the case's module, where its model is defined."""
    import inspect

    try:
        path = Path(inspect.getsourcefile(type(case)) or "").resolve()
    except TypeError:
        return {}
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return {"mlflow.source.name": str(path), "mlflow.source.type": "LOCAL"}


class StoreUnavailable(RuntimeError):
    """The tracking store stayed unreachable for longer than the writer waits."""


class Writer:
    """Runs MLflow writes on one background thread, in order, each retried with backoff while the store is away.

    ``submit`` queues a write and returns a future; when the queue is full (``capacity`` writes waiting) it blocks,
    which holds the sweep back rather than losing records. A write that keeps failing for ``patience`` seconds
    makes every later one fail too: the sweep then stops with one line, and ``--resume`` writes what is missing
    from the sweep's trial log once the store is back.

    Attributes:
        waiting_since: when the current write started failing (None while the store answers): the live display
            shows it.
    """

    def __init__(self, patience: float = 600.0, capacity: int = 10_000, max_wait: float = 30.0) -> None:
        self.patience, self.max_wait = patience, max_wait
        self.waiting_since: float | None = None
        self.last_error = ""
        self.failed: BaseException | None = None
        self._queue: queue.Queue[tuple[Callable[[bool], Any], Future] | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="mlflow-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def submit(self, write: Callable[[bool], Any]) -> Future:
        """Queues ``write(retrying)``; ``retrying`` is True on its second and later attempts."""
        future: Future = Future()
        self._queue.put((write, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        """Lets the queued writes finish (or fail), then stops the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            write, future = job
            if self.failed is not None:
                future.set_exception(self.failed)
                continue
            try:
                future.set_result(self._attempt(write))
            except BaseException as exc:
                self.failed = exc if not isinstance(exc, _GiveUp) else exc.cause
                future.set_exception(self.failed)
            finally:
                self.waiting_since = None

    def _attempt(self, write: Callable[[bool], Any]) -> Any:
        attempts = Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=1, min=1, max=self.max_wait),
            stop=stop_after_delay(self.patience),
            before_sleep=self._waiting,
            reraise=False,
            retry_error_callback=_give_up,
        )
        for attempt in attempts:
            with attempt:
                return write(attempt.retry_state.attempt_number > 1)
        return None  # unreachable: tenacity returns or raises

    def _waiting(self, state: RetryCallState) -> None:
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
        error = state.outcome.exception() if state.outcome else None
        self.last_error = f"{type(error).__name__}: {error}".splitlines()[0][:200] if error else ""


class _GiveUp(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = StoreUnavailable(str(cause).splitlines()[0][:300] if str(cause) else type(cause).__name__)


def _give_up(state: RetryCallState) -> None:
    raise _GiveUp(state.outcome.exception())


def _transient(error: BaseException) -> bool:
    """Errors worth waiting out (a server away or failing, a locked database); a refused record is not one."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        return error.get_http_status_code() >= 500  # MLflow reports a connection error as its INTERNAL_ERROR
    return isinstance(error, (OSError, TimeoutError)) or type(error).__module__.split(".")[0] in _STORE_MODULES


_STORE_MODULES = {"requests", "urllib3", "sqlalchemy", "sqlite3"}


def _now() -> int:
    return int(time.time() * 1000)


def _shown(value: float) -> float:
    """A metric to 5 significant digits: what the UI shows whole (it prints 1.0000000000000009), and ample to rank."""
    return float(f"{value:.5g}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_EXPERIMENT_NOTE = """Sweeps of `overfit`: which change lets an autoencoder memorise the data it should.

Each **parent run** is one case's sweep (sort them by `fixed`, `best_rel_error` or `fix_rank`; its description
holds the ranking of the factors that fixed it). Expand it for its **trials**: the ablation (the failing baseline,
then one factor changed at a time) and the Optuna search, each named by what it changed. A trial is *fixed* when
its final relative error (MSE over the target's variance; 1 = predicting the mean) is under the case's threshold;
otherwise the tags `overfit.outcome`, `overfit.why` and `overfit.evidence` (and `overfit.pruned_by` for a trial the
collapse pruner stopped) say why not.
"""
