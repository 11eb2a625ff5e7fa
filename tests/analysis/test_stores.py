"""Finding a sweep's stores from where a reader starts: the working folder, the project's root, the environment."""

from __future__ import annotations

from pathlib import Path

from analysis.stores import find_stores, project_root


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "mlflow.db").write_bytes(b"")
    (tmp_path / "optuna.log").write_text("")
    return tmp_path


def test_a_kernel_in_notebooks_finds_the_stores_in_the_project_root(tmp_path: Path):
    root = _project(tmp_path)
    stores = find_stores(root / "notebooks", environ={})
    assert project_root(root / "notebooks") == root
    assert stores.tracking_uri == f"sqlite:///{root / 'mlflow.db'}"
    assert stores.optuna_storage == str(root / "optuna.log")
    assert stores.found_in == str(root) and str(root) in str(stores)


def test_the_working_folder_comes_first(tmp_path: Path):
    root = _project(tmp_path)
    (root / "notebooks" / "mlflow.db").write_bytes(b"")
    stores = find_stores(root / "notebooks", environ={})
    assert stores.found_in == str(root / "notebooks")
    assert stores.optuna_storage == str(root / "optuna.log")  # the journal is wherever it is


def test_the_environment_names_the_stores(tmp_path: Path):
    root = _project(tmp_path)
    env = {"OVERFIT_TRACKING_URI": "http://127.0.0.1:5000", "OVERFIT_EXPERIMENT": "mine", "OVERFIT_OPTUNA_STORAGE": "j"}
    stores = find_stores(root / "notebooks", environ=env)
    assert (stores.tracking_uri, stores.experiment, stores.optuna_storage) == ("http://127.0.0.1:5000", "mine", "j")
    assert stores.found_in == "$OVERFIT_TRACKING_URI"


def test_no_sweep_anywhere_says_so(tmp_path: Path):
    stores = find_stores(tmp_path, environ={})
    assert stores.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}" and stores.optuna_storage is None
    assert stores.found_in.startswith("nowhere")
