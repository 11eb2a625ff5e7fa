"""Loading real records: an MLflow sqlite store written by the sweep's Recorder, an Optuna journal, Ray's folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analysis import TRIAL_COLUMNS, AnalysisError, load_mlflow, load_optuna, load_ray_results
from tests.analysis.handmade import TINY_RESULTS, record_sweep, samples


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record_sweep(uri, TINY_RESULTS)
    return uri


def test_mlflow_sweep_becomes_one_row_per_trial_with_typed_factors(store: str):
    sweep = load_mlflow(store)
    trials = sweep.of("tiny_collapse")
    assert list(trials.columns) == [*TRIAL_COLUMNS, "lr", "activation"]
    assert len(trials) == len(TINY_RESULTS)
    row = trials.set_index("label").loc["lr=0.01"]
    assert row["lr"] == 0.01 and row["activation"] == "relu" and bool(row["fixed"]) and row["outcome"] == "fixed"
    assert trials.set_index("label").loc["baseline", "symptoms"] == ("collapsed",)
    info = sweep.cases["tiny_collapse"]
    assert info.baseline == {"lr": 1e-6, "activation": "relu"} and info.fix == {"lr": 0.01}
    assert info.threshold == 0.1 and info.factors == ["lr", "activation"] and info.status == "FINISHED"


def test_the_latest_sweep_of_a_case_is_the_one_loaded(store: str):
    newer = record_sweep(store, TINY_RESULTS[:2])
    sweep = load_mlflow(store)
    assert sweep.cases["tiny_collapse"].sweep_id == newer and len(sweep.trials) == 2


def test_curves_and_artifacts_come_from_mlflow(store: str, tmp_path: Path):
    sweep = load_mlflow(store)
    baseline = sweep.trials.set_index("label").loc["baseline", "run_id"]
    curves = sweep.curves([baseline])
    assert list(curves["epoch"]) == list(range(1, 11)) and curves["value"].iloc[0] == pytest.approx(1.0)
    assert sweep.samples(baseline)["target"] == samples(1.0)["target"]
    assert sweep.artifact(baseline, "figures/curves.png", tmp_path / "a").stat().st_size > 1000
    assert sweep.artifact(baseline, "missing.png", tmp_path / "a") is None
    activation = sweep.trials.set_index("label").loc["activation=tanh", "run_id"]
    assert sweep.samples(activation) is None  # neither fixed nor the baseline: no samples logged


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(
        AnalysisError, match=r"tracking_uri must be an existing MLflow store, got 'sqlite:///.*nope.db'"
    ):
        load_mlflow(uri)
    assert not (tmp_path / "nope.db").exists()


def test_a_missing_or_empty_experiment_and_an_unknown_case_are_errors(store: str):
    with pytest.raises(
        AnalysisError, match=r"experiment must exist .* got 'other'; experiments there: \['Default', 'overfit'\]"
    ):
        load_mlflow(store, "other")
    from mlflow.tracking import MlflowClient

    MlflowClient(store).create_experiment("empty")
    with pytest.raises(AnalysisError, match="holds no overfit sweep"):
        load_mlflow(store, "empty")
    with pytest.raises(AnalysisError, match=r"case must be one of the swept \['tiny_collapse'\], got 'nope'"):
        load_mlflow(store, cases=["nope"])


def test_an_unreachable_tracking_server_is_an_error():
    with pytest.raises(AnalysisError, match=r"must be a reachable MLflow tracking server, got 'http://127\.0\.0\.1:9'"):
        load_mlflow("http://127.0.0.1:9")


def test_optuna_journal_trials_with_their_states(tmp_path: Path):
    path = tmp_path / "optuna.log"
    study = optuna.create_study(
        study_name="tiny_collapse-abcd1234", storage=JournalStorage(JournalFileBackend(str(path)))
    )
    study.set_user_attr("case", "tiny_collapse")
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)})
    trial.set_user_attr("outcome", "fixed")
    study.tell(trial, 0.01)
    study.tell(
        study.ask({"lr": optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)}),
        state=optuna.trial.TrialState.PRUNED,
    )
    rows = load_optuna(str(path))
    assert list(rows["state"]) == ["COMPLETE", "PRUNED"] and list(rows["pruned"]) == [False, True]
    assert set(rows["case"]) == {"tiny_collapse"} and rows["outcome"].tolist() == ["fixed", "pruned"]
    with pytest.raises(AnalysisError, match=r"storage must be an existing Optuna journal, got 'missing\.log'"):
        load_optuna("missing.log")


def _ray_trial(folder: Path, params: dict, lines: list[dict]) -> None:
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(params))
    (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_ray_results_folder_gives_finished_and_stopped_trials(tmp_path: Path):
    root = tmp_path / "overfit-results"
    plan = {"key": "ablation/lr=0.01/seed=0", "label": "lr=0.01", "overrides": {"lr": 0.01}, "seed": 0}
    summary = {
        "outcome": "fixed",
        "fixed": True,
        "rel_error": 0.01,
        "best_rel_error": 0.01,
        "epochs": 40,
        "seconds": 1.5,
    }
    _ray_trial(
        root / "tiny_collapse-ablation-1" / "ablation_aaaa",
        {"case": "tiny_collapse", "part": "ablation", "plan": plan},
        [{"epoch": 1, "rel_error": 1.0, "trial_id": "aaaa"}, {"final": True, "summary": summary, "trial_id": "aaaa"}],
    )
    _ray_trial(
        root / "tiny_collapse-search-2" / "search_bbbb",
        {"case": "tiny_collapse", "part": "search", "lr": 1e-6, "activation": "tanh", "seed": 0},
        [{"epoch": 12, "rel_error": 1.0, "trial_id": "bbbb", "time_total_s": 0.4}],
    )
    rows = load_ray_results(root).set_index("part")
    assert rows.loc["ablation", "label"] == "lr=0.01" and rows.loc["ablation", "lr"] == 0.01
    assert bool(rows.loc["ablation", "fixed"]) and not rows.loc["ablation", "pruned"]
    assert (
        rows.loc["search", "pruned"]
        and rows.loc["search", "epochs"] == 12
        and rows.loc["search", "activation"] == "tanh"
    )


def test_a_corrupt_or_missing_ray_folder_is_an_error_naming_the_file(tmp_path: Path):
    root = tmp_path / "overfit-results"
    _ray_trial(root / "tiny_collapse-search-2" / "search_bbbb", {"case": "tiny_collapse"}, [])
    (root / "tiny_collapse-search-2" / "search_bbbb" / "result.json").write_text('{"epoch": 1,\n')
    with pytest.raises(AnalysisError, match=r"must be JSON lines beside params.json, got .*search_bbbb/result.json"):
        load_ray_results(root)
    with pytest.raises(AnalysisError, match="the Ray results folder must exist, got 'nowhere'"):
        load_ray_results("nowhere")


def test_analysis_imports_nothing_from_the_training_code():
    code = (
        "import sys, analysis, analysis.report, analysis.figures, analysis.stores; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('search', 'spaces', 'torch', 'ray')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
