"""Finished sweeps into tidy pandas DataFrames: one row per trial, from MLflow (the primary record), the Optuna
storage (the search's studies) or Ray's results folder.

Reads only what ``overfit sweep`` wrote (MLflow tags ``overfit.*``, params, summary metrics; Optuna studies named
``{case}-{sweep}``; Ray's ``result.json`` lines); imports nothing from the training code.

Example:
    >>> sweep = load_mlflow("sqlite:///mlflow.db")          # doctest: +SKIP
    >>> sweep.trials.groupby(["case", "outcome"]).size()     # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.records import (
    ARTIFACTS,
    BASELINE_LABEL,
    EPOCH_METRICS,
    SUMMARY_METRICS,
    SWEEP_METRICS,
    StoreError,
    Tag,
    TrialLog,
    check_journal,
    check_tracking_uri,
    open_journal,
    parse_value,
)

__all__ = [
    "TRIAL_COLUMNS",
    "AnalysisError",
    "CaseSweep",
    "Sweep",
    "load_mlflow",
    "load_optuna",
    "load_results",
    "optuna_studies",
    "parse_value",
    "search_distributions",
]

TRIAL_COLUMNS = [
    "case",
    "part",
    "label",
    "seed",
    "outcome",
    "symptoms",
    "fixed",
    "pruned",
    "final_rel_error",
    "best_rel_error",
    "epochs",
    "seconds",
    "status",
    "run_id",
    "sweep_id",
]
"""The columns every trial frame has; each factor of the case is one more column, named as the factor."""

_NOT_FACTORS = {"seed", "profile"}


class AnalysisError(ValueError):
    """A sweep that cannot be analysed: missing store or experiment, no trials, a corrupt results folder."""


@dataclass
class CaseSweep:
    """What the analysis needs to know of one case's sweep besides its trials.

    Attributes:
        case: the case's name.
        sweep_id: the MLflow parent run of the sweep (empty when not loaded from MLflow).
        factors: the factors the sweep varied, in the case's order.
        baseline: the failing baseline's value of every factor.
        fix: the documented fix, only the factors it changes (empty when the sweep did not record it).
        threshold: relative error under which a trial is fixed (None when not recorded).
        status: the parent run's status (FINISHED, KILLED, RUNNING).
        study: the Optuna study of its search part.
        task_factors: factors that change what is memorised; never ranked as fixes.
        title: the case's one-line description.
        settings: the sweep's settings, as its parent run's params (profile, seeds, trials, parts, seed, ...).
        metrics: the parent run's summary metrics (``records.SWEEP_METRICS``), where the sweep logged them.
    """

    case: str
    sweep_id: str
    factors: list[str]
    baseline: dict[str, Any]
    fix: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    status: str = "FINISHED"
    study: str | None = None
    task_factors: tuple[str, ...] = ()
    title: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Sweep:
    """A finished sweep of one or more cases: the trial frame, and per case what frames alone cannot say.

    ``trials`` has :data:`TRIAL_COLUMNS` and one column per factor; ``symptoms`` is a tuple of names.
    """

    trials: pd.DataFrame
    cases: dict[str, CaseSweep]
    tracking_uri: str | None = None
    experiment: str | None = None
    experiment_id: str | None = None

    def of(self, case: str) -> pd.DataFrame:
        """The trials of one case, with only that case's factors as factor columns."""
        if case not in self.cases:
            raise AnalysisError(f"case must be one of the sweep's {sorted(self.cases)}, got {case!r}")
        info = self.cases[case]
        rows = self.trials[self.trials["case"] == case]
        return rows[TRIAL_COLUMNS + [f for f in info.factors if f in rows.columns]].reset_index(drop=True)

    def curves(self, run_ids: Iterable[str], metric: str = EPOCH_METRICS[0]) -> pd.DataFrame:
        """Per-epoch values of ``metric`` for the given trial runs: columns run_id, epoch, value (MLflow only)."""
        client = self._client()
        rows = [
            {"run_id": run_id, "epoch": m.step, "value": m.value}
            for run_id in run_ids
            for m in client.get_metric_history(run_id, metric)
        ]
        return pd.DataFrame(rows, columns=["run_id", "epoch", "value"]).sort_values(["run_id", "epoch"])

    def artifact(self, run_id: str, name: str, folder: str | Path) -> Path | None:
        """Downloads one artifact of a run (such as ``figures/curves.png``) into ``folder``; None if absent."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar per image in reports
        client = self._client()
        if name not in {a.path for a in client.list_artifacts(run_id, posixpath.dirname(name) or None)}:
            return None
        return Path(client.download_artifacts(run_id, name, str(folder)))

    def samples(self, run_id: str) -> dict[str, Any] | None:
        """The samples a trial logged (``records.ARTIFACTS["samples"]``) as a dict, or None; leaves no file behind."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        client = self._client()
        name = ARTIFACTS["samples"]
        if name not in {a.path for a in client.list_artifacts(run_id, posixpath.dirname(name) or None)}:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return json.loads(Path(client.download_artifacts(run_id, name, folder)).read_text())

    def run_url(self, run_id: str) -> str | None:
        """The run's page in the MLflow UI when the sweep was recorded on a tracking server, else None.

        Credentials in the URI (``http://user:pass@host``) are left out: the link is for people to read. MLflow
        3.17's UI shows its GenAI pages in a browser that never chose otherwise; the link asks for the classic ones.
        """
        if not self.tracking_uri or not self.tracking_uri.startswith(("http://", "https://")):
            return None
        parts = urllib.parse.urlsplit(self.tracking_uri)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{parts.port}" if parts.port else ""
        base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return f"{base}/#/experiments/{self.experiment_id}/runs/{run_id}?workflowType=machine_learning"

    def _client(self):
        if self.tracking_uri is None:
            raise AnalysisError("per-epoch curves and artifacts are in MLflow: load the sweep with load_mlflow")
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)


# ---- MLflow ----------------------------------------------------------------------------------------------


def load_mlflow(
    tracking_uri: str = "sqlite:///mlflow.db",
    experiment: str = "overfit",
    cases: Iterable[str] | None = None,
    sweep_id: str | None = None,
) -> Sweep:
    """Loads the latest sweep of each case in ``experiment`` (a finished one when there is one).

    With ``sweep_id`` (a parent run's id), loads that sweep of its case, finished or not.

    Raises:
        AnalysisError: the store is missing or unreachable, the experiment is missing or holds no sweep, or a
            requested case was never swept there.
    """
    _check_store(tracking_uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise AnalysisError(
            f"experiment (--experiment) must exist in {tracking_uri}, got {experiment!r}; experiments there: {names}"
        )
    parents = _search(client, found.experiment_id, f"tags.`{Tag.ROLE}` = 'sweep'")
    latest: dict[str, Any] = {}
    for run in sorted(parents, key=lambda r: (r.info.status == "FINISHED", r.info.start_time)):
        if sweep_id is None or run.info.run_id == sweep_id:
            latest[run.data.tags.get(Tag.CASE, "")] = run  # finished ones last, newest last: they win
    wanted = list(cases) if cases else sorted(latest)
    if not latest:
        raise AnalysisError(f"experiment {experiment!r} in {tracking_uri} holds no overfit sweep: run `overfit sweep`")
    missing = [c for c in wanted if c not in latest]
    if missing:
        raise AnalysisError(f"case must be one of the swept {sorted(latest)}, got {missing[0]!r}")
    children = _search(client, found.experiment_id, f"tags.`{Tag.ROLE}` = 'trial'")
    by_parent: dict[str, list[Any]] = {}
    for run in children:
        by_parent.setdefault(run.data.tags.get(Tag.PARENT, ""), []).append(run)
    rows, infos = [], {}
    for case in wanted:
        parent = latest[case]
        runs = [r for r in by_parent.get(parent.info.run_id, []) if r.info.status not in ("RUNNING", "SCHEDULED")]
        case_rows = [_mlflow_row(case, parent.info.run_id, run) for run in runs]
        infos[case] = _case_info(case, parent, case_rows)
        rows += case_rows
    return Sweep(_frame(rows), infos, tracking_uri, experiment, found.experiment_id)


def _search(client, experiment_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=5000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _mlflow_row(case: str, sweep_id: str, run) -> dict[str, Any]:
    params = {k: parse_value(v) for k, v in run.data.params.items()}
    tags = {Tag.LABEL: run.info.run_name, **run.data.tags}
    return _row(case, sweep_id, tags, params, run.data.metrics, run.info.status, run.info.run_id)


def _row(
    case: str,
    sweep_id: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    status: str,
    run_id: str,
) -> dict[str, Any]:
    """One trial's row, from what its MLflow run (or its line of the trial log) holds."""
    row = {
        "case": case,
        "part": tags.get(Tag.PART, ""),
        "label": tags.get(Tag.LABEL, ""),
        "seed": params.get("seed"),
        "outcome": tags.get(Tag.OUTCOME, "error"),
        "symptoms": tuple(s for s in tags.get(Tag.SYMPTOMS, "").split(",") if s),
        "fixed": tags.get(Tag.FIXED) == "true",
        "pruned": tags.get(Tag.PRUNED) == "true",
        **{name: _float(metrics.get(name)) for name in SUMMARY_METRICS if name in TRIAL_COLUMNS},
        "status": status,
        "run_id": run_id,
        "sweep_id": sweep_id,
    }
    row.update({k: v for k, v in params.items() if k not in _NOT_FACTORS})
    return row


def _case_info(case: str, parent, rows: list[dict[str, Any]]) -> CaseSweep:
    tags = parent.data.tags
    baseline_row = next((r for r in rows if r["label"] == BASELINE_LABEL), None)
    if Tag.BASELINE in tags:
        baseline = json.loads(tags[Tag.BASELINE])
    elif baseline_row is not None:  # sweeps recorded before the parent carried its baseline
        baseline = {k: v for k, v in baseline_row.items() if k not in TRIAL_COLUMNS}
    else:
        baseline = {}
    factors = tags[Tag.FACTORS].split(",") if tags.get(Tag.FACTORS) else list(baseline)
    threshold = tags.get(Tag.THRESHOLD)
    return CaseSweep(
        case=case,
        sweep_id=parent.info.run_id,
        factors=factors,
        baseline=baseline,
        fix=json.loads(tags.get(Tag.FIX, "{}")),
        threshold=float(threshold) if threshold else None,
        status=parent.info.status,
        study=tags.get(Tag.STUDY),
        task_factors=tuple(f for f in tags.get(Tag.TASK_FACTORS, "").split(",") if f),
        title=tags.get(Tag.TITLE, ""),
        settings={k: parse_value(v) for k, v in sorted(parent.data.params.items())},
        metrics={k: v for k, v in parent.data.metrics.items() if k in SWEEP_METRICS},
    )


def _check_store(uri: str) -> None:
    """Fails before MLflow would create a store it was asked to read, or hang on a dead server."""
    try:
        check_tracking_uri(uri, writer=False, option="tracking_uri")
    except StoreError as exc:
        raise AnalysisError(str(exc)) from None


# ---- Optuna ----------------------------------------------------------------------------------------------


def load_optuna(storage: str = "optuna.log", cases: Iterable[str] | None = None) -> pd.DataFrame:
    """Every trial of every study in an Optuna storage (a journal file, or a database URL), one row each.

    Columns: case, study, number, state, value (the final relative error), pruned, fixed and outcome (when the
    sweep recorded them), then one column per factor.
    """
    studies = optuna_studies(storage)
    wanted = set(cases) if cases else None
    rows = []
    for study in studies:
        case = study.user_attrs.get("case") or study.study_name.rsplit("-", 1)[0]
        if wanted is not None and case not in wanted:
            continue
        for trial in study.get_trials(deepcopy=False):
            rows.append(
                {
                    "case": case,
                    "study": study.study_name,
                    "number": trial.number,
                    "state": trial.state.name,
                    "value": trial.value if trial.value is not None else math.nan,
                    "pruned": trial.state.name == "PRUNED",
                    "fixed": trial.user_attrs.get("fixed"),
                    "outcome": trial.user_attrs.get("outcome", "pruned" if trial.state.name == "PRUNED" else None),
                    **trial.params,
                }
            )
    return pd.DataFrame(rows)


def optuna_studies(storage: str) -> list[Any]:
    """The studies of a journal file or database URL, loaded; raises AnalysisError when there is none."""
    import optuna

    try:
        check_journal(storage, writer=False, option="storage")
    except StoreError as exc:
        raise AnalysisError(str(exc)) from None
    store: Any = storage if "://" in storage else open_journal(storage)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if not summaries:
        raise AnalysisError(f"the Optuna storage must hold a study, got none in {storage!r}")
    return [optuna.load_study(study_name=s.study_name, storage=store) for s in summaries]


def search_distributions(storage: str, sweep: Sweep) -> dict[str, dict[str, Any]]:
    """Per case of ``sweep``, the Optuna distributions its search sampled from (its stored study's), if found."""
    by_name = {study.study_name: study for study in optuna_studies(storage)}
    out = {}
    for case, info in sweep.cases.items():
        study = by_name.get(info.study or "")
        trials = study.get_trials(deepcopy=False) if study is not None else []
        if trials:
            out[case] = {k: v for t in trials for k, v in t.distributions.items()}
    return out


# ---- Ray results -----------------------------------------------------------------------------------------


def load_results(folder: str | Path = "overfit-results") -> pd.DataFrame:
    """Every finished trial in a results folder's trial logs (``sweep-{id}.jsonl``), one row per trial.

    The trial log is what the sweep wrote first for every finished trial (its MLflow run is written from it), so it
    is complete without MLflow: the same columns as :func:`load_mlflow`'s trials, ``run_id`` being Ray's trial id
    and ``sweep_id`` the MLflow parent run it belongs to.

    Raises:
        AnalysisError: the folder is missing or holds no trial log.
    """
    root = Path(folder)
    if not root.is_dir():
        raise AnalysisError(f"the results folder must exist, got {str(folder)!r}")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for log in sorted(root.glob("sweep-*.jsonl")):
        for entry in TrialLog(log).read():
            if isinstance(entry.get("tags"), dict) and Tag.KEY in entry["tags"]:
                latest[(entry.get("parent", ""), entry["tags"][Tag.KEY])] = entry  # a later line of a trial wins
    if not latest:
        raise AnalysisError(f"the results folder must hold a sweep's trial log (sweep-*.jsonl), got none in {root}")
    rows = [
        _row(
            entry["case"],
            entry["parent"],
            entry["tags"],
            entry["params"],
            entry["metrics"],
            entry.get("status", "FINISHED"),
            entry["tags"].get(Tag.RAY_TRIAL_ID, ""),
        )
        for entry in latest.values()
    ]
    return _frame(rows)


# ---- shared ----------------------------------------------------------------------------------------------


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in TRIAL_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype=object)
    extra = [c for c in frame.columns if c not in TRIAL_COLUMNS]
    return frame[TRIAL_COLUMNS + extra]
