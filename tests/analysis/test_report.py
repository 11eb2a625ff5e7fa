"""The rank and report commands on a recorded sweep (a real MLflow sqlite store, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import load_mlflow, rank
from analysis.report import format_ranking, write_report
from search.cli import main
from tests.analysis.handmade import TINY_RESULTS, record_sweep


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record_sweep(uri, TINY_RESULTS)
    return uri


def test_report_writes_markdown_html_and_figures(store: str, tmp_path: Path):
    sweep = load_mlflow(store)
    page = write_report(sweep, rank(sweep), tmp_path / "report")
    names = {p.name for p in page.parent.iterdir()}
    assert {"report.md", "report.html", "tiny_collapse-effects.png", "tiny_collapse-curves.png"} <= names
    assert "tiny_collapse-baseline-reconstructions.png" in names
    html = page.read_text()
    assert "<table>" in html and '<img src="tiny_collapse-curves.png"' in html
    assert "lr 1e-06→0.01 alone fixes it in 1/1 seeds" in (page.parent / "report.md").read_text()


def test_rank_prints_one_block_per_case(store: str, capsys):
    assert main(["rank", "--tracking-uri", store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_collapse: 4 trials, 2 fixed; baseline relative error 1; documented fix: lr=0.01")
    assert "  1.  lr " in out and "smallest fixes: lr=0.01 (0.01)" in out
    assert format_ranking(rank(load_mlflow(store))["tiny_collapse"]) in out


def test_rank_json_and_report_command(store: str, tmp_path: Path, capsys):
    assert main(["rank", "--tracking-uri", store, "--json"]) == 0
    (case,) = json.loads(capsys.readouterr().out)
    assert case["ranking"][0]["factor"] == "lr" and case["minimal_fixes"][0]["changes"] == {"lr": 0.01}
    assert main(["report", "--tracking-uri", store, "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rank", "nope"], "overfit: error: case must be one of the swept ['tiny_collapse'], got 'nope'\n"),
        (["rank", "--experiment", "x"], "overfit: error: experiment must exist in"),
        (
            ["rank", "--optuna-storage", "missing.log"],
            "overfit: error: --optuna-storage must be an existing Optuna journal, got 'missing.log'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(store: str, argv, message, capsys):
    assert main([*argv, "--tracking-uri", store]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
