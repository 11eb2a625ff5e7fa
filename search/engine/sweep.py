"""``overfit sweep``: every case's ablation and Optuna search as ONE Ray Tune experiment, recorded in MLflow.

One :func:`run_sweep` per invocation. It checks everything that can be checked before anything starts, then, at
once, starts (or joins) Ray, readies the MLflow store and checks each case (one training step, which also says how
long its trials will take). Each case gets its parent run, its Optuna study (a journal file beside the MLflow
store) and its line of progress; all cases' trials then run in one Tune experiment, the longest expected first,
so that no slot idles between cases and the tail is short. Every finished trial goes to the sweep's trial log,
to Optuna and to MLflow; each case's summary is written as soon as its last trial ends.

``--resume`` continues an interrupted sweep: finished trials are kept (those the trial log holds but MLflow missed
are written now), unfinished ones run again (an interrupted search trial is re-asked with its config), Optuna's
sampler continues from the study's trials, and only one live command may continue a sweep at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ray.tune import Stopper

from analysis.records import (
    BASELINE_LABEL,
    Tag,
    TrialLog,
    TrialSpec,
    changes_text,
    open_journal,
    ready_tracking_store,
    redact,
)
from search.engine.case_run import CaseRun, Done
from search.engine.plan import ablation
from search.engine.preflight import PARTS, SweepError, check_resources, validate
from search.engine.progress import Progress
from search.engine.pruning import CollapsePruner
from search.engine.searcher import CaseSearch
from search.engine.tracking import FAILED, FINISHED, KILLED, Recorder, StoreUnavailable, Writer, source_tags
from search.engine.trainable import draw_figures, report_every, wants_figures
from spaces import Case, get_case

__all__ = ["PARTS", "SweepAborted", "SweepError", "SweepOptions", "run_sweep", "sweep_tags"]

MAX_FAILURES = 3  # runs of a trial whose worker or node died, before it is recorded as an error


class SweepAborted(RuntimeError):
    """A sweep that had to stop: the tracking store stayed away. Everything finished is kept on disk."""


@dataclass
class SweepOptions:
    """Everything ``overfit sweep`` takes. Defaults are the README's main job."""

    cases: list[str]
    parts: tuple[str, ...] = PARTS
    trials: int = 12
    seeds: int = 2
    profile: str = "quick"
    seed: int = 0
    prune: bool = True
    deterministic: bool = False
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    address: str | None = None
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "overfit"
    optuna_storage: str = "optuna.log"
    results_dir: str = "overfit-results"
    resume: bool = False
    progress: bool = True
    store_patience: float = 600.0  # seconds the MLflow writer waits for an unreachable store before giving up

    @classmethod
    def in_folder(cls, folder: str | Path, cases: list[str], **options: Any) -> SweepOptions:
        """Options that keep the whole sweep's state (MLflow store, Optuna journal, results) in ``folder``."""
        folder = Path(folder)
        return cls(
            cases=cases,
            tracking_uri=f"sqlite:///{folder}/mlflow.db",
            optuna_storage=str(folder / "optuna.log"),
            results_dir=str(folder / "results"),
            **options,
        )


# ---------------------------------------------------------------------------------------------------------


def run_sweep(options: SweepOptions, cases: list[Case] | None = None) -> list[dict[str, Any]]:
    """Runs the sweep; returns one summary per case (counts by outcome, parent run id, study name, and its
    ``ranking``: the :class:`analysis.ranking.CaseRanking` written to the parent run, or None).

    ``cases``: the cases ``preflight.validate(options)`` returned, when the caller checked the options already.

    Raises:
        SweepError: it cannot start (nothing was started or recorded, or what was is marked FAILED).
        SweepAborted: the tracking store stayed away; what finished is in the trial log for ``--resume``.
        KeyboardInterrupt: Ctrl-C or SIGTERM; the unfinished cases' parent runs are KILLED, ready for ``--resume``.
    """
    cases = cases if cases is not None else validate(options)
    display = Progress(options.progress)
    try:
        return _Sweep(options, cases, display).run()
    finally:
        display.close()


class _Sweep:
    """The state of one invocation: its stores, its cases, the locks it holds."""

    def __init__(self, options: SweepOptions, cases: list[Case], display: Progress) -> None:
        self.options, self.cases, self.display = options, cases, display
        self.sweep_id = uuid.uuid4().hex[:12]
        self.runs: list[CaseRun] = []
        self.locks: dict[str, tuple[int, Path]] = {}  # parent run -> its lock file, open and held
        self.optuna_writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optuna-writer")
        self.writer = Writer(patience=options.store_patience)
        self.journal = None  # opened by the first case that searches: an ablation-only sweep leaves none
        self.ray_stopping = threading.Event()
        self.recorder: Recorder | None = None  # opened before Ray starts when resuming, else beside its start
        self.unfinished: dict[str, Any] = {}  # case -> the parent run --resume continues

    def run(self) -> list[dict[str, Any]]:
        import ray

        _quiet_libraries()
        started_here = not ray.is_initialized()
        try:
            if self.options.resume:
                self._find_unfinished()
            self.display.status("joining the Ray cluster" if self.options.address else "starting Ray")
            with ThreadPoolExecutor(max_workers=1) as pool:
                # While Ray starts: each case is checked and timed by one training step, then (only if every case
                # passed) MLflow readies its store, which for a new sqlite store is a schema migration (seconds).
                ready = pool.submit(self._ready_stores)
                if started_here:
                    _start_ray(self.options)
                self._stop_on_sigterm()
                expected = ready.result()
            self.display.status(None)
            check_resources([n["Resources"] for n in ray.nodes() if n["Alive"]], *self._requests())
            gpus, slots = _slots(self.options)
            self.log = TrialLog(Path(self.options.results_dir).expanduser().resolve() / f"sweep-{self.sweep_id}.jsonl")
            self.runs = [self._open(case, expected[case.name], gpus, slots) for case in self.cases]
            self._fit(gpus, slots)
            return [run.summary() for run in self.runs]
        except BaseException as exc:
            self._abandon(KILLED if isinstance(exc, KeyboardInterrupt) else FAILED)
            raise
        finally:
            self.ray_stopping.set()  # from here on a GCS that stops answering is this command's doing
            self._close()
            if started_here:
                ray.shutdown()

    def _stop_on_sigterm(self) -> None:
        """SIGTERM ends the sweep as Ctrl-C does: Tune stops its trials, the unfinished cases are closed for --resume.

        Ray's driver installs its own SIGTERM handler, which aborts the process; ours replaces it once Ray has started.
        A SIGTERM sent to the whole process group (``timeout``, a cancelled CI job, ``kill -- -PGID``) also stops the
        Ray processes this command started, unlike Ctrl-C, which Ray's processes ignore: Tune's orderly stop would
        then wait a minute on a GCS that is gone. So the signal also starts a watch on the GCS, which ends the command
        itself once it stops answering.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        import ray

        try:
            gcs = ray.get_runtime_context().gcs_address
        except Exception:  # a Ray Client connection (ray://) has no GCS address of its own to watch
            gcs = None
        watching: list[threading.Thread] = []

        def on_sigterm(signum: int, frame: Any) -> None:
            if gcs and not watching:
                watching.append(threading.Thread(target=self._end_if_ray_is_gone, args=(gcs,), daemon=True))
                watching[0].start()
            signal.raise_signal(signal.SIGINT)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _end_if_ray_is_gone(self, gcs: str) -> None:
        """Once the GCS at ``gcs`` (host:port) stops answering, closes the unfinished cases' parents KILLED and ends
        the process at once, as a killed driver would (``--resume`` continues either way)."""
        host, port = gcs.rsplit(":", 1)
        while not self.ray_stopping.is_set():
            try:
                socket.create_connection((host, int(port)), timeout=2).close()
            except OSError:
                if self.ray_stopping.is_set():
                    return
                self._abandon(KILLED)
                self.display.close()  # the terminal's cursor back, the live lines left as they were
                print("overfit: sweep interrupted (Ray stopped with it); continue it with --resume", file=sys.stderr)
                os._exit(130)  # Tune's clean-up would wait on the lost GCS; nothing is left for it to save
            time.sleep(0.25)

    def _ready_stores(self) -> dict[str, float]:
        """Checks every case (expected seconds per trial, by name), then opens the MLflow store."""
        expected = {case.name: _probe(case, self.options.profile) for case in self.cases}
        if self.recorder is None:
            self.recorder = _recorder(self.options.tracking_uri, self.options.experiment)
        return expected

    def _find_unfinished(self) -> None:
        """``--resume`` continues the unfinished sweeps of the named cases and starts none: a case without one (in a
        whole sweep, one that finished before the interruption) is left out, with a line saying so."""
        try:
            self.recorder = _recorder(self.options.tracking_uri, self.options.experiment, create=False)
        except LookupError:  # no such experiment: nothing to continue, and nothing created
            self.unfinished = {}
        else:
            self.unfinished = {case.name: self.recorder.unfinished_sweep(case.name) for case in self.cases}
        if not any(self.unfinished.values()):
            names = ", ".join(case.name for case in self.cases)
            raise SweepError(
                f"--resume needs an unfinished sweep of {names} in {redact(self.options.tracking_uri)} (experiment "
                f"{self.options.experiment!r}), and none is: run without --resume to start one"
            )
        for case in self.cases:
            if self.unfinished[case.name] is None:
                self.display.warn(f"{case.name}: no unfinished sweep; nothing to resume")
        self.cases = [case for case in self.cases if self.unfinished[case.name] is not None]

    def _requests(self) -> tuple[float, float | None]:
        return self.options.cpus_per_trial, self.options.gpus_per_trial

    # ---- cases ----

    def _open(self, case: Case, seconds_per_trial: float, gpus: float, slots: int) -> CaseRun:
        """The case's parent run (new, or the interrupted one to resume), study and remaining trials."""
        options = self.options
        parent = self.unfinished[case.name] if options.resume else None
        if parent is not None:
            parent_id = parent.info.run_id
            self._lock(parent_id, case.name)
            options = _with_stored(options, parent.data.params)
            self.recorder.reopen(parent_id)
        else:
            params, tags = self._params(case, gpus, slots), sweep_tags(case, self.sweep_id)
            parent_id = self.recorder.start_sweep(case.name, params, tags)
            self._lock(parent_id, case.name)
        budget = case.budget(options.profile).epochs
        settings = {
            "case_ref": _case_ref(case, self.options),
            "profile": options.profile,
            "threads": max(1, int(options.cpus_per_trial)),
            "report_every": report_every(budget) if options.prune else 0,
            "sweep": self.sweep_id,
        }
        pruner = CollapsePruner() if options.prune else None
        study = self._study(case, parent_id, options) if "search" in options.parts else None
        run = CaseRun(
            case=case,
            parent_id=parent_id,
            search=None,  # set below, once the finished trials are known
            expected=0,
            recorder=self.recorder,
            writer=self.writer,
            log=self.log,
            display=self.display,
            budget=budget,
            dataset=_dataset(case, options.profile),
            summarise=self._summarise,
        )
        if parent is None and run.dataset is not None:
            self.recorder.client.log_inputs(parent_id, datasets=[run.dataset])
        if parent is not None:
            run.done = self._settle(run, study, options)
            self.display.note(
                f"{case.name}: resuming its sweep (parent run {parent_id[:8]}, {len(run.done)} trials already finished)"
            )
        planned = []
        if "ablation" in options.parts:
            planned = [replace(spec, **settings) for spec in ablation(case, options.seeds)]
            # The baseline runs to the end, never pruned: it is the failure's record.
            planned = [replace(s, report_every=0) if s.label == BASELINE_LABEL else s for s in planned]
        ablation_total = len(planned)
        planned = [spec for spec in planned if spec.key not in run.done]
        searched = sum(key.startswith("search/") for key in run.done)
        count = max(0, options.trials - searched) if study is not None else 0
        run.expected = ablation_total + (options.trials if study is not None else 0)
        run.search = CaseSearch(
            case.name,
            planned,
            study,
            space=_space(case),
            count=count,
            pruner=pruner,
            batch=slots if options.deterministic else None,
            settings=settings,
            baseline=case.config(),
            writes=self.optuna_writes,
        )
        run.seconds_per_trial = seconds_per_trial
        self.display.add_case(case.name, run.expected, **run.counts())
        return run

    def _params(self, case: Case, gpus: float, slots: int) -> dict[str, Any]:
        options = self.options
        baseline = case.config()
        fix = {k: v for k, v in case.config(case.fix).items() if v != baseline[k]}
        return {
            "profile": options.profile,
            "seeds": options.seeds,
            "trials": options.trials,
            "parts": ",".join(options.parts),
            "seed": options.seed,
            "prune": options.prune,
            "deterministic": options.deterministic,
            "case_ref": _case_ref(case, options),
            "cpus_per_trial": options.cpus_per_trial,
            "gpus_per_trial": gpus,  # as resolved: a quarter GPU by default when the cluster has GPUs
            "slots": slots,
            "results_dir": str(Path(options.results_dir).expanduser().resolve()),
            "sweep": self.sweep_id,
            "baseline": changes_text(baseline),
            "fix": changes_text(fix) or "none documented",
            "threshold": case.threshold,
        }

    def _study(self, case: Case, parent_id: str, options: SweepOptions):
        import optuna

        name = f"{case.name}-{parent_id[:8]}"
        self.journal = self.journal or open_journal(self.options.optuna_storage)
        try:
            existing = len(optuna.load_study(study_name=name, storage=self.journal).trials)
        except KeyError:
            existing = 0
        # A resumed study's sampler continues from a seed its finished trials moved on, not from the first one:
        # TPE's random start-up trials would otherwise repeat the configs already run.
        study = optuna.create_study(
            study_name=name,
            storage=self.journal,
            sampler=optuna.samplers.TPESampler(seed=options.seed + existing),
            pruner=CollapsePruner() if options.prune else optuna.pruners.NopPruner(),
            direction="minimize",
            load_if_exists=True,
        )
        if not existing:
            with warnings.catch_warnings():  # experimental since Optuna 3.2, and what the dashboard names the axis by
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(["rel_error"])
            self.recorder.client.set_tag(parent_id, Tag.STUDY, name)
            study.set_user_attr("case", case.name)
            study.set_user_attr("threshold", case.threshold)
            study.set_user_attr("mlflow_parent_run_id", parent_id)
        return study

    def _settle(self, run: CaseRun, study, options: SweepOptions) -> dict[str, Done]:
        """After an interruption: what finished, with MLflow and Optuna made whole again (see the module doc)."""
        from optuna.trial import TrialState

        done: dict[str, Done] = {}
        for child in self.recorder.children(run.parent_id):
            key = child.data.tags.get(Tag.KEY, "")
            if child.info.status in (FINISHED, FAILED) and key:
                done[key] = Done.from_tags(child.data.tags, child.data.metrics.get("final_rel_error"))
            else:  # a write cut short: the trial log (or a new run) writes it whole
                self.recorder.client.delete_run(child.info.run_id)
        entries = {}
        for path in Path(options.results_dir).expanduser().glob("sweep-*.jsonl"):
            for entry in TrialLog(path).read():
                if entry.get("parent") == run.parent_id:
                    entries[entry["tags"][Tag.KEY]] = entry
        for key, entry in entries.items():
            if key not in done:  # finished, but MLflow never heard of it (away, or the driver died first)
                figures = {}
                tags, seconds = entry["tags"], entry["metrics"].get("seconds") or 0.0
                if entry.get("samples") and wants_figures(tags[Tag.LABEL], tags[Tag.FIXED] == "true", seconds):
                    spec = TrialSpec.from_config(entry["spec"])
                    figures = draw_figures(run.case, spec, entry["history"], entry["samples"])
                self.recorder.write_trial(
                    run.parent_id, {**entry, "figures": figures, "dataset": run.dataset}, replace=True
                )
                done[key] = Done.from_tags(entry["tags"], entry["metrics"].get("final_rel_error"))
        if study is None:
            return done
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            key = f"search/{trial.number}"
            # Optuna takes no attribute on a finished trial, and has no public way to set one on this trial from its
            # number: told ones recovered here link their MLflow run through the run's overfit.optuna_trial tag.
            if key in done:  # it finished, but the driver died before telling Optuna
                outcome = done[key]
                value = outcome.rel_error
                if outcome.pruned:
                    study.tell(trial.number, state=TrialState.PRUNED)
                elif outcome.outcome == "error" or value is None:
                    study.tell(trial.number, state=TrialState.FAIL)
                else:
                    study.tell(trial.number, value)
            else:  # never finished: failed, and asked again with its config
                study.tell(trial.number, state=TrialState.FAIL)
                study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        return done

    # ---- the experiment ----

    def _fit(self, gpus: float, slots: int) -> None:
        from ray import tune

        from search.engine.pruning import PruningScheduler
        from search.engine.recording import RecordingCallback
        from search.engine.searcher import SweepSearcher
        from search.engine.trainable import train

        for run in self.runs:
            if run.complete:
                run.summary_written = self.writer.submit(lambda retrying, run=run: self._summarise(run))
        remaining = [run for run in self.runs if not run.complete]
        if remaining:
            searcher = SweepSearcher([r.search for r in remaining], [r.seconds_per_trial for r in remaining])
            callback = RecordingCallback(searcher, {run.case.name: run for run in self.runs})
            storage = Path(self.options.results_dir).expanduser().resolve()  # trials chdir: absolute paths only
            tuner = tune.Tuner(
                tune.with_resources(train, {"cpu": self.options.cpus_per_trial, "gpu": gpus}),
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=PruningScheduler(searcher),
                    num_samples=sum(r.expected - len(r.done) for r in remaining),
                    max_concurrent_trials=slots,
                    reuse_actors=True,
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name=f"sweep-{self.sweep_id}-{int(time.time())}",
                    storage_path=str(storage),
                    verbose=0,
                    callbacks=[callback],
                    failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                    stop=_StoreGone(self.writer),
                    log_to_file=True,
                ),
            )
            callback.finish_failed(tuner.fit())
        self._flush()
        if not all(run.complete for run in self.runs):
            raise KeyboardInterrupt  # Tune ended early: Ctrl-C or SIGTERM

    def _summarise(self, run: CaseRun) -> None:
        """Writes the case's summary to its parent run: metrics, the ranking as its description, the comparison."""
        from search.engine.summary import write_summary

        run.search.wait()
        run.ranking = write_summary(self.recorder, run, self.options)

    def _flush(self) -> None:
        """Waits for every write of this sweep; raises SweepAborted when the tracking store stayed away."""
        futures = [run.summary_written for run in self.runs if run.summary_written is not None]
        self.writer.close()
        self.optuna_writes.shutdown(wait=True)
        for future in futures:
            future.exception()
        if self.writer.failed is not None:
            if isinstance(self.writer.failed, StoreUnavailable):
                raise SweepAborted(
                    f"the tracking store {redact(self.options.tracking_uri)} stayed unreachable for "
                    f"{self.options.store_patience:.0f} s ({self.writer.failed}); every finished trial is kept in "
                    f"{self.log.path}: run the same command with --resume once it answers"
                )
            raise self.writer.failed

    def _abandon(self, status: str) -> None:
        """After an interruption or a failed start: the parent runs of unfinished cases are closed with ``status``."""
        if isinstance(self.writer.failed, StoreUnavailable):
            return  # the store is away; --resume reopens the parents either way
        for run in self.runs:
            if not run.complete:
                with contextlib.suppress(Exception):  # the store may be what failed; --resume reopens it anyway
                    self.recorder.end_sweep(run.parent_id, status=status)

    def _lock(self, parent_id: str, case: str) -> None:
        """Holds the sweep of ``case`` for this command's lifetime: a second live command may not continue it."""
        path = Path(self.options.optuna_storage).expanduser().resolve()
        lock = path.with_name(f".{path.name}.{parent_id}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SweepError(
                f"--resume: the sweep of {case} (run {parent_id[:8]}) is being run by another live command; "
                "wait for it to end, or stop it first"
            ) from None
        self.locks[parent_id] = (fd, lock)

    def _close(self) -> None:
        if self.writer.failed is None:
            self.writer.close()
        self.optuna_writes.shutdown(wait=False, cancel_futures=True)
        finished = {run.parent_id for run in self.runs if run.complete}
        for parent_id, (fd, lock) in self.locks.items():
            if parent_id in finished:  # nothing is left to resume: the file goes, while still held
                lock.unlink(missing_ok=True)
            os.close(fd)  # the kernel releases the flock with the descriptor


class _StoreGone(Stopper):
    """A Tune stopper that ends the experiment once the MLflow writer has given up on the store."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.writer is not None and self.writer.failed is not None

    def __getstate__(self) -> dict[str, Any]:
        return {"writer": None}  # Tune pickles its run config; a live writer does not pickle


def sweep_tags(case: Case, sweep_id: str) -> dict[str, str]:
    """A parent run's tags: what the analysis needs of the case besides its trials."""
    baseline = case.config()
    fix = {k: v for k, v in case.config(case.fix).items() if v != baseline[k]}
    return {
        **source_tags(case),
        Tag.SWEEP: sweep_id,
        Tag.TITLE: case.title,
        Tag.FACTORS: ",".join(case.space),
        Tag.TASK_FACTORS: ",".join(case.task_factors),
        Tag.BASELINE: json.dumps(baseline),
        Tag.FIX: json.dumps(fix),
        Tag.THRESHOLD: repr(float(case.threshold)),
        Tag.NOTE: f"{case.title}.\n\nSweep running: trials appear under this run as they finish.",
    }


def _recorder(tracking_uri: str, experiment: str, create: bool = True) -> Recorder:
    """The MLflow writer, once a new sqlite store has been created under a lock (two commands may start at once)."""
    ready_tracking_store(tracking_uri)
    return Recorder(tracking_uri, experiment, create=create)


def _probe(case: Case, profile: str) -> float:
    """The case checked by one training step; the expected seconds of one of its trials."""
    from search.trainer.check import check_case

    return check_case(case, profile).seconds_per_epoch * case.budget(profile).epochs


def _dataset(case: Case, profile: str) -> Any:
    """The case's data (seed 0, the baseline's config) as an MLflow dataset input, or None if it cannot be built."""
    try:
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import Dataset, DatasetInput, InputTag

        data = case.make_data(0, case.budget(profile), case.config())
        source = CodeDatasetSource({"case": case.name, "source": case.source or type(case).__module__})
        dataset = mlflow.data.from_numpy(
            data.inputs.numpy(), targets=data.targets.numpy(), source=source, name=f"{case.name} (seed 0)"
        )
        return DatasetInput(Dataset(**dataset.to_dict()), tags=[InputTag("mlflow.data.context", "training")])
    except Exception:  # a dataset is a convenience for the UI: a case whose data mlflow cannot describe runs anyway
        return None


def _space(case: Case) -> dict[str, Any]:
    from spaces import optuna_space

    return optuna_space(case.search_space())


def _start_ray(options: SweepOptions) -> None:
    import ray

    ray.init(
        address=options.address,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        logging_level="ERROR",
    )


def _quiet_libraries() -> None:
    """Our display replaces Ray's tables and loggers; Tune's experiment checkpoint is not used to resume."""
    import logging

    import optuna

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the new engine prints its tables whatever the verbosity
    # Tune rewrites its whole experiment state (every trial) every few seconds by default: O(trials^2) work on
    # the driver, for a checkpoint that --resume never reads (it goes through MLflow, Optuna and the trial log).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "3600")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("ray", "ray.tune", "ray.train", "ray.air", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _slots(options: SweepOptions) -> tuple[float, int]:
    import ray

    resources = ray.cluster_resources()
    gpus = options.gpus_per_trial
    if gpus is None:  # by default trials use CUDA when the cluster has GPUs, four to a GPU
        gpus = 0.25 if resources.get("GPU", 0) > 0 else 0.0
    slots = int(resources.get("CPU", 1) // options.cpus_per_trial) or 1
    if gpus > 0:
        slots = min(slots, int(resources.get("GPU", 0) / gpus) or 1)
    if options.max_concurrent:
        slots = min(slots, options.max_concurrent)
    return gpus, slots


def _case_ref(case: Case, options: SweepOptions) -> str:
    """How workers find the case: its registered name, or the user's ``file.py:NAME`` made absolute."""
    for ref in options.cases:
        if ref == case.name:
            return ref
        if ":" in ref and get_case(ref).name == case.name:
            where, _, attr = ref.rpartition(":")
            return f"{Path(where).resolve()}:{attr}" if where.endswith(".py") else ref
    return case.name


def _with_stored(options: SweepOptions, stored: dict[str, str]) -> SweepOptions:
    """A resumed sweep keeps the settings it started with."""
    return replace(
        options,
        profile=stored.get("profile", options.profile),
        seeds=int(stored.get("seeds", options.seeds)),
        trials=int(stored.get("trials", options.trials)),
        parts=tuple(stored.get("parts", ",".join(options.parts)).split(",")),
        seed=int(stored.get("seed", options.seed)),
        prune=stored.get("prune", str(options.prune)) == "True",
        deterministic=stored.get("deterministic", str(options.deterministic)) == "True",
        results_dir=stored.get("results_dir", options.results_dir),
    )


def _trial_name(trial) -> str:
    """Trial folders named by case, part and id, not by the whole config."""
    return f"{trial.config.get('case', 'trial')}-{trial.config.get('part', '')}-{trial.trial_id}"
