"""``overfit sweep``: per case, the ablation and an Optuna search as parallel Ray Tune trials, recorded in MLflow.

One :class:`Sweep` per invocation: it validates everything that can be checked (cases, Ray address, tracking
server), joins or starts Ray, then for each case runs the ablation grid (baseline, one factor changed at a
time, ``seeds`` seeds each) and an Optuna TPE search of ``trials`` trials with collapse pruning, each as one
Tune experiment. Every trial becomes a child run of the case's parent run in MLflow; the Optuna study lives in a
journal file beside the MLflow store.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune.logger import JsonLoggerCallback

from search.engine.plan import BASELINE_KEY, PlannedTrial, ablation
from search.engine.progress import Progress
from search.engine.pruning import CollapsePruner, PruningOptunaSearch, PruningScheduler
from search.engine.recording import RecordingCallback, TrialRecord
from spaces import PROFILES, Case, get_case, optuna_space

__all__ = ["PARTS", "SweepError", "SweepOptions", "run_sweep"]

PARTS = ("ablation", "search")


class SweepError(ValueError):
    """A sweep that cannot start: bad option, unreachable Ray cluster or tracking server."""


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
    stream: Any = field(default=sys.stdout, repr=False)

    @classmethod
    def in_folder(cls, folder: str | Path, cases: list[str], **options: Any) -> SweepOptions:
        """Options that keep the whole sweep's state (MLflow store, Optuna journal, Ray results) in ``folder``."""
        folder = Path(folder)
        return cls(
            cases=cases,
            tracking_uri=f"sqlite:///{folder}/mlflow.db",
            optuna_storage=str(folder / "optuna.log"),
            results_dir=str(folder / "results"),
            **options,
        )

    def validate(self) -> list[Case]:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown or not self.parts:
            raise SweepError(f"--parts must be a subset of {list(PARTS)}, got {list(self.parts)}")
        if self.profile not in PROFILES:
            raise SweepError(f"--profile must be one of {list(PROFILES)}, got {self.profile!r}")
        if self.trials < 0 or self.seeds < 1:
            raise SweepError(f"--trials >= 0 and --seeds >= 1 must hold, got trials={self.trials}, seeds={self.seeds}")
        if self.cpus_per_trial <= 0 or (self.gpus_per_trial is not None and self.gpus_per_trial < 0):
            raise SweepError(
                f"--cpus-per-trial > 0 and --gpus-per-trial >= 0 must hold, got "
                f"{self.cpus_per_trial} and {self.gpus_per_trial}"
            )
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SweepError(f"--max-concurrent must be at least 1, got {self.max_concurrent}")
        if not self.cases:
            raise SweepError("name the cases to sweep or pass --all")
        cases = [get_case(ref) for ref in self.cases]
        check_tracking(self.tracking_uri)
        if self.address:
            check_ray_address(self.address)
        return cases


def check_tracking(uri: str) -> None:
    """Fails fast, in one line, when the MLflow tracking store cannot be reached or created."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
                if response.status != 200:
                    raise SweepError(f"tracking server {uri!r} answered /health with HTTP {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SweepError(
                f"tracking server {uri!r} is not reachable ({reason}); start it or pass another --tracking-uri"
            ) from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise SweepError(f"the folder of tracking store {uri!r} must exist and be writable")


def check_ray_address(address: str) -> None:
    """Fails fast when nothing listens at a Ray cluster's ``host:port`` (``auto`` and ``ray://`` pass)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address must be host:port of a Ray head node (or 'auto'), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SweepError(
            f"no Ray cluster answers at {address!r} ({exc.strerror or exc}); start one with "
            "`ray start --head` or drop --address"
        ) from None


# ---------------------------------------------------------------------------------------------------------


def run_sweep(options: SweepOptions) -> list[dict[str, Any]]:
    """Runs the sweep; returns one summary per case (counts by outcome, parent run id, study name)."""
    cases = options.validate()
    import ray

    from search.engine.tracking import Recorder

    _quiet_libraries()  # after the imports: MLflow configures its logger when imported

    ray_started_here = not ray.is_initialized()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # MLflow readies its store (a new sqlite store migrates its schema: seconds) while Ray starts.
        recorder_ready = pool.submit(Recorder, options.tracking_uri, options.experiment)
        if ray_started_here:
            if options.address:
                _use_cluster_token()
            ray.init(
                address=options.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                logging_level="ERROR",
            )
    try:
        recorder = recorder_ready.result()
        return [_sweep_case(case, options, recorder) for case in cases]
    finally:
        if ray_started_here:
            ray.shutdown()


def _use_cluster_token() -> None:
    """Joins a token-authenticated cluster as ``ray start`` does.

    A cluster started on this machine with Ray's token auth (on by default) writes ~/.ray/auth_token, but a
    driver sends it only in token mode, and Ray caches its mode when imported: Ray's own helper switches it.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray: fall back to the environment, read by processes started from here
        if (Path.home() / ".ray" / "auth_token").exists():
            os.environ["RAY_AUTH_MODE"] = "token"
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _quiet_libraries() -> None:
    """Our live display replaces Ray's tables; Ray's auto loggers would serialise whole histories as TensorBoard
    scalars. The JSON logger is kept (the Ray results folder is one of the sources analysis reads)."""
    import logging

    import optuna

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the new engine prints its tables whatever the verbosity
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


def _sweep_case(case: Case, options: SweepOptions, recorder) -> dict[str, Any]:
    from search.engine.tracking import Recorder  # noqa: F401  (typing only)

    ref = _case_ref(case, options)
    gpus, slots = _slots(options)
    params = {
        "profile": options.profile,
        "seeds": options.seeds,
        "trials": options.trials,
        "parts": ",".join(options.parts),
        "seed": options.seed,
        "prune": options.prune,
        "deterministic": options.deterministic,
        "case_ref": ref,
        "cpus_per_trial": options.cpus_per_trial,
        "gpus_per_trial": gpus,  # as resolved: a quarter GPU by default when the cluster has GPUs
        "slots": slots,
    }
    finished: set[str] = set()
    reusable: dict[str, str] = {}
    parent = recorder.unfinished_sweep(case.name) if options.resume else None
    if parent is not None:
        parent_id = parent.info.run_id
        stored = parent.data.params
        options = _with_stored(options, stored)
        recorder.reopen(parent_id)
        finished, reusable = recorder.settle_interrupted(parent_id)
        _say(options, f"{case.name}: resuming sweep {parent_id[:8]} ({len(finished)} trials already finished)")
    else:
        parent_id = recorder.start_sweep(case.name, params)
    study_name = f"{case.name}-{parent_id[:8]}"
    recorder.describe_sweep(parent_id, case, study_name)
    display = Progress(case.name, options.progress, options.stream)
    records: list[TrialRecord] = []
    try:
        planned = (
            [p for p in ablation(case, options.seeds) if p.key not in finished] if "ablation" in options.parts else []
        )
        remaining = 0
        if "search" in options.parts:
            remaining = max(0, options.trials - sum(1 for key in finished if key.startswith("search/")))
        _run_parts(
            case,
            ref,
            planned,
            remaining,
            study_name,
            options,
            (gpus, slots),
            recorder,
            parent_id,
            reusable,
            display,
            records,
        )
    except KeyboardInterrupt:
        _abandon(recorder, records, parent_id)
        raise
    _figures_for_best(recorder, parent_id, case, records)
    counts = Counter((r.summary or {}).get("outcome", "error") for r in records)
    single_changes: dict[str, list[int]] = {}
    for record in records:
        if record.part == "ablation" and record.summary:
            tally = single_changes.setdefault(record.name, [0, 0])
            tally[0] += bool(record.summary.get("fixed"))
            tally[1] += 1
    recorder.end_sweep(parent_id, tags={"overfit.outcomes": ",".join(f"{k}={v}" for k, v in sorted(counts.items()))})
    display.close()
    return {
        "case": case.name,
        "parent_run_id": parent_id,
        "study": study_name,
        "outcomes": dict(counts),
        "trials": len(records),
        "ablation": {label: {"fixed": fixed, "seeds": seeds} for label, (fixed, seeds) in single_changes.items()},
    }


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
    from dataclasses import replace

    return replace(
        options,
        profile=stored.get("profile", options.profile),
        seeds=int(stored.get("seeds", options.seeds)),
        trials=int(stored.get("trials", options.trials)),
        parts=tuple(stored.get("parts", ",".join(options.parts)).split(",")),
        seed=int(stored.get("seed", options.seed)),
        prune=stored.get("prune", str(options.prune)) == "True",
        deterministic=stored.get("deterministic", str(options.deterministic)) == "True",
    )


def _trainable(options: SweepOptions, gpus: float):
    from ray import tune

    from search.engine.trainable import train

    resources = {"cpu": options.cpus_per_trial, "gpu": gpus}
    return tune.with_resources(train, resources)


def _run_config(case: Case, options: SweepOptions, callbacks: list) -> Any:
    from ray import tune

    storage = Path(options.results_dir).expanduser().resolve()  # trials chdir: absolute paths only
    return tune.RunConfig(
        name=f"{case.name}-sweep-{int(time.time())}",
        storage_path=str(storage),
        verbose=0,
        callbacks=[*callbacks, JsonLoggerCallback()],
        log_to_file=True,
    )


def _run_parts(
    case: Case,
    ref: str,
    planned: list[PlannedTrial],
    count: int,
    study_name: str,
    options: SweepOptions,
    resources: tuple[float, int],
    recorder,
    parent_id: str,
    reusable: dict[str, str],
    display: Progress,
    records: list[TrialRecord],
) -> None:
    """Both parts of a case's sweep as one Tune experiment; raises KeyboardInterrupt if it was cut short."""
    from ray import tune

    from search.engine.searcher import PlanThenSearch

    entries = [{"key": p.key, "label": p.label, "seed": p.seed, "overrides": p.overrides} for p in planned]
    if entries:
        display.add("ablation", len(entries))
    gpus, slots = resources  # GPUs per trial and concurrent trials, resolved once per case (_slots)
    pruner = CollapsePruner() if options.prune else None
    search = _searcher(case, count, study_name, options, slots, pruner) if count > 0 else None
    if search is not None:
        display.add("search", count)
    if not entries and search is None:
        return
    expected = len(entries) + (count if search is not None else 0)
    searcher = PlanThenSearch(entries, search, count, pruner)
    callback = RecordingCallback(
        case, options, recorder, parent_id, display, records, reusable=reusable, searcher=searcher
    )
    tuner = tune.Tuner(
        _trainable(options, gpus),
        param_space={"case": ref, "profile": options.profile, "threads": max(1, int(options.cpus_per_trial))},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=PruningScheduler(searcher),
            num_samples=expected,
            max_concurrent_trials=slots,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=_run_config(case, options, [callback]),
    )
    try:
        tuner.fit()
    finally:
        callback.flush()  # the runs of finished trials are written before anything reads or closes them
    callback.check_complete(expected)


def _searcher(
    case: Case, count: int, study_name: str, options: SweepOptions, slots: int, pruner: CollapsePruner | None
) -> PruningOptunaSearch:
    import optuna

    storage = _optuna_storage(options.optuna_storage)
    _fail_interrupted(storage, study_name)
    return PruningOptunaSearch(
        space=optuna_space(case.search_space()),
        metric="rel_error",
        mode="min",
        sampler=optuna.samplers.TPESampler(seed=options.seed),
        study_name=study_name,
        storage=storage,
        pruner=pruner or optuna.pruners.NopPruner(),
        study_attrs={"case": case.name, "threshold": case.threshold},
        batch=slots if options.deterministic else None,
        trials=count,
    )


def _trial_name(trial) -> str:
    """Trial folders named by part and id, not by the whole config."""
    return f"{trial.config.get('part', 'trial')}_{trial.trial_id}"


def _optuna_storage(path: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(path).expanduser().resolve())))


def _fail_interrupted(storage, study_name: str) -> None:
    """Trials a killed driver left RUNNING are marked FAIL: they never finished, and new trials replace them."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)


def _abandon(recorder, records: list[TrialRecord], parent_id: str) -> None:
    for record in records:
        if record.summary is None:
            recorder.client.set_terminated(record.run_id, status="KILLED")
    recorder.end_sweep(parent_id, status="KILLED")


def _figures_for_best(recorder, parent_id: str, case: Case, records: list[TrialRecord]) -> None:
    """Figures for the best trials (the baseline's were logged as it finished), and baseline-vs-best curves."""
    judged = [r for r in records if r.summary and r.summary.get("rel_error") is not None]
    best = sorted(judged, key=lambda r: r.summary["rel_error"])[:3]
    for record in best:
        recorder.log_figures(
            record.run_id,
            f"{case.name}: {record.name}",
            record.summary.get("history", []),
            record.summary.get("samples"),
        )
    baseline = next((r for r in records if r.key == BASELINE_KEY and r.summary), None)
    curves = {}
    if baseline:
        curves["baseline"] = baseline.summary.get("history", [])
    for record in best:
        curves[record.name] = record.summary.get("history", [])
    if curves:
        recorder.log_comparison(parent_id, f"{case.name}: baseline against the best trials", curves)


def _say(options: SweepOptions, text: str) -> None:
    if options.progress:
        options.stream.write(text + "\n")
        options.stream.flush()
