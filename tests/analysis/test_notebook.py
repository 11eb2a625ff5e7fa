"""The notebook on a real Jupyter kernel, started in ``notebooks/`` as Jupyter starts it, with the sweep's stores in
the project's root: it finds them, says so, draws every figure, and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from analysis.records import Tag
from analysis.stores import ENVIRONMENT
from tests.analysis.handmade import TINY_RESULTS, record_journal, record_sweep

pytestmark = pytest.mark.slow(seconds=10)
ROOT = Path(__file__).resolve().parents[2]


def test_the_notebook_started_in_notebooks_finds_the_stores_in_the_project_root(tmp_path: Path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'a-project'\n")
    (tmp_path / "notebooks").mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = record_sweep(uri, TINY_RESULTS)
    record_journal(str(tmp_path / "optuna.log"), f"tiny_collapse-{parent[:8]}")
    MlflowClient(uri).set_tag(parent, Tag.STUDY, f"tiny_collapse-{parent[:8]}")  # as a sweep names its study
    record_journal(str(tmp_path / "optuna.log"), "tiny_collapse-0ldsweep", trials=3)  # an earlier sweep's study
    before = sorted(tmp_path.rglob("*"))
    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

    notebook = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / "notebooks")}}
    )
    client.execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    first = "".join(o.get("text", "") for o in code[0].outputs)
    assert f"Reading the sweep from {tmp_path}:" in first and f"sqlite:///{tmp_path / 'mlflow.db'}" in first
    assert str(tmp_path / "optuna.log") in first
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images == 4  # effects, curves, and the baseline's and the fix's reconstructions
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "tiny_collapse" in html and "COMPLETE" in html  # the ranking and the Optuna study
    optuna_table = code[-1].outputs[0]["data"]["text/html"]
    assert "<td>2</td>" in optuna_table and "<td>5</td>" not in optuna_table  # this sweep's study alone, not 2 + 3
    assert sorted(tmp_path.rglob("*")) == before  # no stray folder, no cache
