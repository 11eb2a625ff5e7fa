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
and tags and back, opens the Optuna journal, and checks every store and output folder before a command uses it
(one line each; a writer may create a store, a reader never does). It imports no training code, Ray or torch.

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

import base64
import fcntl
import json
import os
import re
import sqlite3
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "ARTIFACTS",
    "BASELINE_LABEL",
    "EPOCH_METRICS",
    "EXPERIMENT_KIND",
    "SUMMARY_METRICS",
    "SWEEP_METRICS",
    "WHOLE_FIX_PREFIX",
    "StoreError",
    "Tag",
    "TrialLog",
    "TrialSpec",
    "changes_text",
    "check_journal",
    "check_output_folder",
    "check_tracking_uri",
    "open_journal",
    "parse_value",
    "ready_tracking_store",
    "redact",
    "tracking_client_uri",
]

BASELINE_LABEL = "baseline"
"""The label of the failing baseline's ablation trials."""

WHOLE_FIX_PREFIX = "fix: "
"""Begins the label of the ablation trial of a documented fix of several changes, tried whole."""

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

SUMMARY_METRICS = ("final_rel_error", "best_rel_error", "final_mse", "epochs", "seconds", "actor_seconds")
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
        return (WHOLE_FIX_PREFIX if self.fix else "") + changes_text(self.overrides)

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


# ---- the trial log ----------------------------------------------------------------------------------------


class TrialLog:
    """The sweep's trial log: one JSON line per finished trial, appended and flushed before anything else.

    Example:
        >>> import tempfile
        >>> log = TrialLog(Path(tempfile.mkdtemp()) / "sweep-x.jsonl")
        >>> log.append({"case": "c", "tags": {"overfit.key": "ablation/baseline/seed=0"}})
        >>> [e["case"] for e in log.read()]
        ['c']
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, allow_nan=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as file:
                file.write(line)
                file.flush()

    def read(self) -> list[dict[str, Any]]:
        """Every complete line (a line cut short by a killed driver is skipped)."""
        if not self.path.is_file():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries


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


# ---- store checks ----------------------------------------------------------------------------------------
# One line each, before anything starts or is recorded. A *writer* (the sweep) may create a store; a *reader*
# (rank, report, the notebook) never creates or changes anything.

HANDSHAKE_TIMEOUT = 5.0
"""Seconds a tracking server has to answer the check's request."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
# The tables a sweep writes and the analysis reads. MLflow's own list (the ORM's metadata) is not public API.
_MLFLOW_TABLES = {"alembic_version", "experiments", "runs", "params", "metrics", "tags"}
_DATABASES = ("postgresql", "mysql", "mssql")  # MLflow's other SQLAlchemy stores: checked when MLflow connects


class StoreError(ValueError):
    """A store or folder a command cannot use; the message is one line naming the option and what must hold."""


def redact(uri: str) -> str:
    """``uri`` with any password replaced: ``http://user:secret@host`` as ``http://user:***@host``."""
    return re.sub(r"(?<=://)([^/@:]*):[^/]*@", r"\1:***@", uri, count=1)


def tracking_client_uri(uri: str) -> str:
    """The URI to give MLflow: ``user:password@`` moved into ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``.

    MLflow's REST client sends those variables as basic auth, so the credentials work while no MLflow message,
    log line or stored tag can show them. Sets the variables in this process (and in processes it starts).
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.username is None:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
    if parts.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def check_tracking_uri(uri: str, *, writer: bool, option: str = "--tracking-uri", timeout: float | None = None) -> None:
    """Raises :class:`StoreError` unless ``uri`` is an MLflow store this command can use.

    ``sqlite:///PATH``: for a reader an existing MLflow store; for a writer that, or an empty or new file in a
    writable folder. ``http(s)://HOST[:PORT]``: a server that answers MLflow's REST API within ``timeout``
    (default :data:`HANDSHAKE_TIMEOUT`).
    """
    shown = redact(uri)
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise StoreError(f"{option} must be a well-formed URI, got {shown!r}") from None
    scheme = parts.scheme.lower() if "://" in uri else ""
    if uri.startswith("sqlite:"):
        if not uri.startswith("sqlite:///"):
            raise StoreError(f"{option} must be sqlite:///PATH (four slashes before an absolute path), got {shown!r}")
        _check_sqlite(_sqlite_path(uri), writer, option, shown)
    elif scheme in ("http", "https"):
        if not parts.hostname or port == 0:
            raise StoreError(f"{option} must be http(s)://HOST[:PORT], got {shown!r}")
        _check_server(uri, option, shown, HANDSHAKE_TIMEOUT if timeout is None else timeout)
    elif scheme.partition("+")[0] in _DATABASES:
        return
    elif scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true"):
        path = Path(parts.path if scheme else uri).expanduser()
        if writer:
            check_output_folder(path, option)
        elif not path.is_dir():
            raise StoreError(f"{option} must be an existing MLflow file store, got {shown!r}")
    else:
        raise StoreError(f"{option} must be sqlite:///PATH or http(s)://HOST:PORT of an MLflow server, got {shown!r}")


def ready_tracking_store(uri: str) -> None:
    """Creates a new sqlite store (MLflow's schema migration) under an ``flock`` on ``PATH.lock`` beside it.

    Two commands that start at once on a new store would otherwise both migrate it, and one fail (sqlite:
    "duplicate column name"). The second waits for the first, then finds the store ready. Call it after
    :func:`check_tracking_uri` and before any other MLflow call on ``uri``; other stores are left to MLflow.
    """
    if not uri.startswith("sqlite:///"):
        return
    from mlflow.tracking import MlflowClient

    with _flocked(f"{_sqlite_path(uri).resolve()}.lock"):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # MLflow migrates a new store when opened


def check_journal(path: str | Path, *, writer: bool, option: str = "--optuna-storage") -> None:
    """Raises :class:`StoreError` unless ``path`` is an Optuna journal this command can use.

    A writer may name a new file in a writable folder; a reader (which may also pass an Optuna database URL) an
    existing journal. Every line must be a journal entry; Optuna skips a last line cut short by a killed
    writer, but a writer's next entry would be appended to it, so a writer refuses it.
    """
    text = str(path)
    if "://" in text:
        if writer:
            raise StoreError(f"{option} must be a journal file path, got {text!r}")
        return  # an Optuna database URL: Optuna checks it when it connects
    file = Path(text).expanduser()
    folder = file.absolute().parent
    if file.is_dir():
        raise StoreError(f"{option} must name a file, got the folder {text!r}")
    if not folder.is_dir():
        raise StoreError(f"{option} must be in an existing folder, got {text!r} (no folder {folder})")
    if not file.exists():
        if not writer:
            raise StoreError(f"{option} must be an existing Optuna journal, got {text!r} (no such file)")
        _writable(folder, option, text)
        return
    if writer:
        _writable(folder, option, text)  # the lock file lives beside the journal
        _writable(file, option, text)
    lines = file.read_bytes().split(b"\n")
    if lines[-1] == b"":  # the file ends with a newline
        lines.pop()
    bad = next((i for i, line in enumerate(lines) if not _journal_entry(line)), None)
    if bad is not None and bad < len(lines) - 1:  # Optuna fails on any bad entry but the last
        raise StoreError(f"{option} must be an Optuna journal (a JSON entry per line), got {text!r} (line {bad + 1})")
    if bad is not None and writer:
        raise StoreError(
            f"{option} must end in a whole entry, got {text!r} whose last line is not one (a writer killed while "
            "writing): remove that line"
        )


def check_output_folder(path: str | Path, option: str) -> None:
    """Raises :class:`StoreError` unless ``path`` is a writable folder, or can be made in a writable one.

    Only the last folder of the path is made: a missing parent is more likely a typo than a wish.
    """
    text = str(path)
    if not text.strip():
        raise StoreError(f"{option} must name a folder, got {text!r}")
    folder = Path(text).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        where = "" if existing == folder else f" (under the file {existing})"
        raise StoreError(f"{option} must be a folder, got the file {text!r}{where}")
    if existing not in (folder, folder.parent):
        raise StoreError(f"{option} must be a folder in an existing folder, got {text!r} (no folder {folder.parent})")
    _writable(existing, option, text)


def _sqlite_path(uri: str) -> Path:
    """The file of ``sqlite:///PATH``, as SQLAlchemy opens it (relative to the working folder, no ``~``)."""
    return Path(uri.removeprefix("sqlite:///").partition("?")[0])


def _check_sqlite(path: Path, writer: bool, option: str, shown: str) -> None:
    folder = path.absolute().parent
    if path.is_dir():
        raise StoreError(f"{option} must name a file, got the folder {shown!r}")
    if not folder.is_dir():
        raise StoreError(f"{option} must be in an existing folder, got {shown!r} (no folder {folder})")
    if not path.exists():
        if not writer:
            raise StoreError(f"{option} must be an existing MLflow store, got {shown!r} (no such file): run a sweep")
        _writable(folder, option, shown)
        return
    tables = _sqlite_tables(path, option, shown) if path.stat().st_size else set()
    if writer and not tables:  # an empty database: MLflow creates its tables in it
        _writable(folder, option, shown)
        _writable(path, option, shown)
        return
    if not tables:
        raise StoreError(f"{option} must be an MLflow store, got the empty file {shown!r}: run a sweep")
    if not tables >= _MLFLOW_TABLES:
        raise StoreError(f"{option} must be an MLflow store, got the SQLite file {shown!r} without MLflow's tables")
    if writer:
        _writable(folder, option, shown)  # sqlite writes its rollback journal beside the store
        _writable(path, option, shown)


def _sqlite_tables(path: Path, option: str, shown: str) -> set[str]:
    """The table names of an SQLite file, read without creating or changing anything."""
    with path.open("rb") as file:
        header = file.read(100)
    if not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{option} must be an SQLite file, got {shown!r} (no SQLite header)")
    # The header's page count (valid when its two change counters agree) times the page size: a shorter file
    # was cut short.
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size = path.stat().st_size
    if len(header) < 100 or (header[24:28] == header[92:96] and size < pages * page_size):
        raise StoreError(
            f"{option} must be a whole SQLite file, got {shown!r} cut short ({size} of {pages * page_size} bytes)"
        )
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{option} must be a readable SQLite file, got {shown!r} ({exc})") from None
    return {name for (name,) in rows}


def _check_server(uri: str, option: str, shown: str, timeout: float) -> None:
    """A handshake with MLflow's REST API (not a port probe, nor ``/health``, which any web server may answer)."""
    parts = urlsplit(uri)
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    else:  # where tracking_client_uri put them, or the user did
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_unredirected_header("Authorization", f"Basic {token}")  # never sent on to another host
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_unredirected_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_tls_context()) as response:
            body = response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise StoreError(
                f"{option} must be a server that accepts your credentials, got {shown!r} (HTTP {exc.code})"
            ) from None
        raise StoreError(f"{option} must be an MLflow tracking server, got {shown!r} (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"{option} must be a reachable MLflow tracking server, got {shown!r} ({reason})") from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not set(answer) <= {"experiments", "next_page_token"}:
        raise StoreError(f"{option} must be an MLflow tracking server, got {shown!r} (its API answer is not MLflow's)")


def _tls_context() -> ssl.SSLContext | None:
    """The TLS settings MLflow's client honours (its environment variables)."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":  # what the user asked of MLflow
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cert) if cert else None


def _journal_entry(line: bytes) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and "op_code" in entry


def _writable(path: Path, option: str, shown: str) -> None:
    if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
        raise StoreError(f"{option} must be writable, got {shown!r} ({path} is not writable)")


@contextmanager
def _flocked(path: str) -> Iterator[None]:
    lock = JournalLock(path)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
