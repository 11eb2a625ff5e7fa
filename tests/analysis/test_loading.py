"""Loading real records: an MLflow sqlite store written by the sweep's Recorder, an Optuna journal, Ray's folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analysis import TRIAL_COLUMNS, AnalysisError, load_mlflow, load_optuna, load_results
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
    missing = r"experiment \(--experiment\) must exist .* got 'other'; experiments there: \['Default', 'overfit'\]"
    with pytest.raises(AnalysisError, match=missing):
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


def test_the_trial_log_gives_every_finished_trial_without_mlflow(tmp_path: Path):
    from analysis.records import TrialLog, TrialSpec
    from search.engine.recording import TrialRecord, trial_entry
    from tests.sweep_case import TinyCollapse

    case = TinyCollapse()
    log = TrialLog(tmp_path / "overfit-results" / "sweep-abc.jsonl")
    for spec, summary, pruned_by in (
        (
            TrialSpec(case=case.name, part="ablation", overrides={"lr": 0.01}),
            {"outcome": "fixed", "fixed": True, "rel_error": 0.02, "epochs": 40, "seconds": 1.5, "history": []},
            None,
        ),
        (
            TrialSpec(case=case.name, part="search", number=0, overrides={"lr": 1e-6, "activation": "tanh"}),
            {"outcome": "collapsed", "fixed": False, "rel_error": 1.0, "epochs": 12, "history": []},
            "stuck at the mean",
        ),
    ):
        record = TrialRecord(spec=spec, trial_id=f"t{spec.part}", summary=summary, pruned_by=pruned_by)
        log.append({**trial_entry(record, case, 40), "parent": "p1"})
    with log.path.open("a") as file:
        file.write('{"case": "cut short by a kill')  # a line a killed driver left half-written
    rows = load_results(tmp_path / "overfit-results").set_index("part")
    assert rows.loc["ablation", "label"] == "lr=0.01" and rows.loc["ablation", "lr"] == 0.01
    assert rows.loc["ablation", "activation"] == "relu"  # the whole config: the log holds every factor
    assert bool(rows.loc["ablation", "fixed"]) and not rows.loc["ablation", "pruned"]
    assert rows.loc["search", "pruned"] and rows.loc["search", "epochs"] == 12
    assert rows.loc["search", "label"] == "search 0: lr=1e-06 activation=tanh"
    assert rows.loc["search", "sweep_id"] == "p1"


def test_a_missing_or_empty_results_folder_is_an_error(tmp_path: Path):
    with pytest.raises(AnalysisError, match="the results folder must exist, got 'nowhere'"):
        load_results("nowhere")
    (tmp_path / "sweep-x.jsonl").write_text("not json\n")
    with pytest.raises(AnalysisError, match="must hold a sweep's trial log"):
        load_results(tmp_path)


def test_analysis_imports_nothing_from_the_training_code():
    code = (
        "import sys, analysis, analysis.report, analysis.figures, analysis.stores; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('search', 'spaces', 'torch', 'ray')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
