"""Where a finished sweep's stores are, for a reader started anywhere in the project.

``overfit sweep`` writes ``mlflow.db`` and ``optuna.log`` in the folder it ran in, usually the project's root, while
Jupyter starts a notebook's kernel in the notebook's folder (``notebooks/``). :func:`find_stores` looks in the
working folder, then in the project's root (the nearest folder above holding ``pyproject.toml``, else the parent),
unless the environment names the stores.

Example:
    >>> stores = find_stores(environ={"OVERFIT_TRACKING_URI": "http://127.0.0.1:5000"})
    >>> stores.tracking_uri, stores.experiment, stores.found_in
    ('http://127.0.0.1:5000', 'overfit', '$OVERFIT_TRACKING_URI')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENVIRONMENT", "Stores", "find_stores", "project_root"]

ENVIRONMENT = {
    "tracking_uri": "OVERFIT_TRACKING_URI",
    "experiment": "OVERFIT_EXPERIMENT",
    "optuna_storage": "OVERFIT_OPTUNA_STORAGE",
}
"""The variables that name the stores, overriding the search."""

MLFLOW_FILE = "mlflow.db"  # the sweep's default store, sqlite:///mlflow.db
JOURNAL_FILE = "optuna.log"  # the sweep's default Optuna journal


@dataclass(frozen=True)
class Stores:
    """A sweep's stores, and where they were found.

    Attributes:
        tracking_uri: the MLflow store.
        experiment: the MLflow experiment.
        optuna_storage: the Optuna journal or URL, or None when there is none.
        found_in: the folder they were found in, the variable that named them (``$OVERFIT_TRACKING_URI``), or
            ``nowhere`` (then ``tracking_uri`` names the working folder's default, which does not exist).
    """

    tracking_uri: str
    experiment: str
    optuna_storage: str | None
    found_in: str

    def __str__(self) -> str:
        journal = self.optuna_storage or "none"
        return (
            f"MLflow store {self.tracking_uri} (experiment {self.experiment!r}); Optuna journal {journal}; "
            f"from {self.found_in}"
        )


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (the working folder) holding ``pyproject.toml``, else its parent."""
    here = Path(start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if (folder / "pyproject.toml").is_file()), here.parent)


def find_stores(start: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Stores:
    """The stores of the sweep to read: those the environment names, else the first folder holding ``mlflow.db``.

    Args:
        start: the folder to start from (the working folder by default).
        environ: the environment (``os.environ`` by default); see :data:`ENVIRONMENT`.
    """
    env = os.environ if environ is None else environ
    here = Path(start or Path.cwd()).resolve()
    folders = list(dict.fromkeys([here, project_root(here)]))
    found = next((folder for folder in folders if (folder / MLFLOW_FILE).is_file()), None)
    folder = found or here
    uri = env.get(ENVIRONMENT["tracking_uri"]) or f"sqlite:///{folder / MLFLOW_FILE}"
    journal = env.get(ENVIRONMENT["optuna_storage"])
    if not journal:
        journal_folder = next((f for f in [folder, *folders] if (f / JOURNAL_FILE).is_file()), None)
        journal = str(journal_folder / JOURNAL_FILE) if journal_folder else None
    if env.get(ENVIRONMENT["tracking_uri"]):
        where = "$" + ENVIRONMENT["tracking_uri"]
    else:
        where = str(found) if found else "nowhere (run `overfit sweep` in the project's root first)"
    return Stores(uri, env.get(ENVIRONMENT["experiment"]) or "overfit", journal, where)
