"""The storage contract: what a sweep records and where, written through by the sweep and read through by the analysis.

A sweep leaves three records, each complete enough to analyse on its own:

- **MLflow** (the primary record): one experiment; per case of a sweep a *parent* run (tag ``overfit.role`` =
  ``sweep``) with the case's settings, summary metrics and a description holding its ranking, and under it one
  *child* run per trial (``overfit.role`` = ``trial``) with the factors as params, per-epoch metrics, the outcome
  and its evidence as tags, and figures for the baseline and every fixed trial.
- **Optuna** (the search): one study per case of a sweep, named ``{case}-{parent run id[:8]}``, in a journal file;
  each trial carries its MLflow run id and outcome as user attributes.
- **Ray** (what each trial reported): ``{results_dir}/{experiment}/{trial}/result.json``; a trial's config is a
  :class:`TrialSpec`, and its last line holds the judged result.

This module names every tag, metric and artifact, turns a :class:`TrialSpec` into Tune's config, MLflow's params
and tags and back, and opens the Optuna journal. It imports no training code, Ray or torch.

Example:
    >>> spec = TrialSpec(case="lstm_mean_prediction", part="ablation", seed=1, overrides={"hidden_size": 100})
    >>> spec.key, spec.label, spec.run_name
    ('ablation/hidden_size=100/seed=1', 'hidden_size=100', 'hidden_size=100 · seed 1')
    >>> TrialSpec.from_config(spec.to_config()) == spec
    True
    >>> parse_value("1e-3"), parse_value("True"), parse_value("elu")
    (0.001, True, 'elu')
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACTS",
    "BASELINE_LABEL",
    "EPOCH_METRICS",
    "EXPERIMENT_KIND",
    "SUMMARY_METRICS",
    "SWEEP_METRICS",
    "Tag",
    "TrialSpec",
    "changes_text",
    "open_journal",
    "parse_value",
]

BASELINE_LABEL = "baseline"
"""The label of the failing baseline's ablation trials."""

EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""MLflow 3 opens an experiment on its GenAI traces page unless it is tagged as classic model development."""


class Tag:
    """MLflow tag names. Values are short text: the UI shows tags whole in its tables and run pages."""

    ROLE = "overfit.role"  # "sweep" on a case's parent run, "trial" on each child run
    CASE = "overfit.case"
    SWEEP = "overfit.sweep"  # the id shared by every case of one `overfit sweep` invocation
    # Parent runs
    STUDY = "overfit.study"
    TITLE = "overfit.title"
    FACTORS = "overfit.factors"  # comma-separated, in the case's order
    TASK_FACTORS = "overfit.task_factors"
    BASELINE = "overfit.baseline"  # JSON: every factor's baseline value
    FIX = "overfit.fix"  # JSON: the factors the documented fix changes
    THRESHOLD = "overfit.threshold"
    # Child runs
    PART = "overfit.part"  # "ablation" or "search"
    KEY = "overfit.key"  # the trial's identity within its sweep, stable across a resume
    LABEL = "overfit.label"  # what it changed
    OUTCOME = "overfit.outcome"  # "fixed", "error" or the symptom that explains the failure
    FIXED = "overfit.fixed"  # "true" / "false"
    PRUNED = "overfit.pruned"
    PRUNED_BY = "overfit.pruned_by"  # the pruner's rule, and the figures at the epoch it stopped the trial
    SYMPTOMS = "overfit.symptoms"  # comma-separated names
    EVIDENCE = "overfit.evidence"  # one line per symptom: "name: evidence"
    WHY = "overfit.why"  # one sentence: why this trial did or did not fix the case
    ERROR = "overfit.error"
    DEVICE = "overfit.device"  # what torch trained on
    GPU_IDS = "overfit.gpu_ids"  # what Ray gave the trial
    ATTEMPTS = "overfit.attempts"  # runs of the trial, counting attempts lost with a worker or node
    OPTUNA_TRIAL = "overfit.optuna_trial"  # the search trial's number in its study
    RAY_TRIAL_ID = "overfit.ray_trial_id"
    # MLflow's own
    PARENT = "mlflow.parentRunId"
    NOTE = "mlflow.note.content"  # a run's (or experiment's) description, markdown


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
"""Per-epoch metrics of a trial run (step = epoch)."""

SUMMARY_METRICS = ("final_rel_error", "best_rel_error", "final_mse", "epochs", "seconds")
"""One value per trial run: the judged end of the trial."""

SWEEP_METRICS = ("trials", "fixed", "pruned", "errors", "baseline_rel_error", "best_rel_error", "fix_rank")
"""One value per parent run, so that a person can sort the cases' sweeps in the UI."""

ARTIFACTS = {
    "curves": "figures/curves.png",  # a trial's relative error per epoch
    "reconstructions": "figures/reconstructions.png",  # a few inputs, targets and outputs side by side
    # The same samples as numbers, for the report and the notebook to redraw with analysis.figures:
    # {"input", "target", "output": nested lists of shape (count, *sample_shape) in data units,
    #  "time_dim": the case's Case.time_dim (which axis of the batch is time)}
    "samples": "samples.json",
    "comparison": "figures/baseline_vs_best.png",  # on a parent run: the baseline against the ranked fixes
}


@dataclass(frozen=True)
class TrialSpec:
    """What one trial of a sweep is: the one owner of a trial's description, from the searcher to the analysis.

    Attributes:
        case: the case's name.
        part: ``ablation`` (a planned change) or ``search`` (an Optuna trial).
        seed: seeds the data, the initial weights and the batch order.
        overrides: the factor values that differ from the case's baseline (ablation), or every searched factor's
            value (search).
        case_ref: how a worker finds the case (its name, or ``/abs/path/file.py:NAME`` for a case of your own).
        profile: the budget profile, ``quick`` or ``full``.
        threads: torch CPU threads (the CPUs the trial holds).
        number: the Optuna trial's number (search trials).
        changes: for a search trial, the factors whose value differs from the baseline (what its label names).
        fix: True for the ablation's whole documented fix (several factors at once).
        report_every: epochs between the trial's reports to the driver.
        sweep: the id of the ``overfit sweep`` invocation.
    """

    case: str
    part: str
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    case_ref: str = ""
    profile: str = "quick"
    threads: int = 1
    number: int | None = None
    changes: dict[str, Any] | None = None
    fix: bool = False
    report_every: int = 1
    sweep: str = ""

    @property
    def label(self) -> str:
        """What the trial changed, as people name it: ``baseline``, ``lr=0.01``, ``search 3: activation=elu``."""
        if self.part == "search":
            changed = changes_text(self.changes if self.changes is not None else self.overrides)
            return f"search {self.number}: {changed or 'the baseline'}"
        if not self.overrides:
            return BASELINE_LABEL
        return ("fix: " if self.fix else "") + changes_text(self.overrides)

    @property
    def key(self) -> str:
        """The trial's identity within its case's sweep: a resume never runs or records one key twice."""
        return f"search/{self.number}" if self.part == "search" else f"ablation/{self.label}/seed={self.seed}"

    @property
    def run_name(self) -> str:
        """The MLflow run's name: the label, and the seed for the ablation's repeated changes."""
        return self.label if self.part == "search" else f"{self.label} · seed {self.seed}"

    def to_config(self) -> dict[str, Any]:
        """Tune's config for the trial (JSON-ready: Ray writes it into the trial's params.json)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrialSpec:
        """The spec back from Tune's config (or from a trial's params.json)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in config.items() if k in names})

    def tags(self) -> dict[str, str]:
        """The MLflow tags that identify the trial."""
        tags = {Tag.ROLE: "trial", Tag.CASE: self.case, Tag.PART: self.part, Tag.KEY: self.key, Tag.LABEL: self.label}
        if self.number is not None:
            tags[Tag.OPTUNA_TRIAL] = str(self.number)
        return tags


def changes_text(changes: dict[str, Any]) -> str:
    """``{"lr": 0.01, "activation": "elu"}`` as ``lr=0.01 activation=elu`` (floats to 3 significant digits)."""
    return " ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in changes.items()
    )


def parse_value(text: str) -> Any:
    """An MLflow param (always text) back to the value the sweep logged: bool, None, int, float or str."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# ---- the Optuna journal ----------------------------------------------------------------------------------


class JournalLock:
    """The journal's write lock, held with ``flock``: the kernel releases it when its holder dies.

    Optuna's own file locks are files that a killed driver leaves behind, which the next command waits out (its
    grace period) before breaking. Optuna's ``JournalFileBackend`` takes any lock object with ``acquire`` and
    ``release``; there is no public base class to derive from, so this one only matches that shape.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def open_journal(path: str | Path):
    """Optuna storage over the journal file at ``path`` (created on first write), locked with :class:`JournalLock`."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(path).expanduser().resolve()
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalLock(f"{path}.flock")))
