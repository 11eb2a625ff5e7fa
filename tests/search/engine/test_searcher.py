"""The sweep's searcher on hand-made results: ask-and-tell with a real Optuna study, pruning, cases interleaved."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler

from analysis.records import TrialSpec
from search.engine.pruning import CollapsePruner, PruningScheduler
from search.engine.searcher import WAIT, CaseSearch, SweepSearcher
from spaces import get_case, optuna_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
CASE = get_case("lstm_mean_prediction")


class FakeTrial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def epochs(first: int, last: int, rel_error: float, spread: float) -> list[dict]:
    return [{"epoch": e, "rel_error": rel_error, "spread": spread} for e in range(first, last + 1)]


def decision(batch: list[dict], budget: int = 100) -> dict:
    """A trial's report where its own check says the pruner would stop it (see search.engine.trainable)."""
    return {"epochs": batch, "max_epochs": budget, "final": False, "rel_error": batch[-1]["rel_error"]}


def case_search(planned=(), count=2, pruner=True, batch=None, name="lstm_mean_prediction", writes=None) -> CaseSearch:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=CollapsePruner())
    return CaseSearch(
        name,
        list(planned),
        study,
        space=optuna_space(CASE.search_space()),
        count=count,
        pruner=study.pruner if pruner else None,
        batch=batch,
        settings={"report_every": 5},
        baseline=CASE.config(),
        writes=writes,
    )


def summary(rel_error: float, outcome: str = "plateau", history=()) -> dict:
    return {"rel_error": rel_error, "outcome": outcome, "fixed": outcome == "fixed", "history": list(history)}


def test_a_collapsing_search_trial_is_stopped_and_told_pruned():
    case = case_search()
    searcher = SweepSearcher([case])
    scheduler = PruningScheduler(searcher)
    config = searcher.suggest("t1")
    assert config["part"] == "search" and config["number"] == 0 and config["report_every"] == 5
    assert scheduler.on_trial_result(None, FakeTrial("t1"), decision(epochs(1, 20, 1.0, 0.0))) == "CONTINUE"
    assert scheduler.on_trial_result(None, FakeTrial("t1"), decision(epochs(21, 40, 1.0, 0.0))) == TrialScheduler.STOP
    assert searcher.pruned["t1"].startswith("stuck at the mean: relative error 1 → 1 over epochs 30-40")
    case.tell(searcher.spec("t1"), summary(1.0, "collapsed"), pruned=True, link=lambda: "run-1")
    (trial,) = case.study.get_trials()
    assert trial.state == TrialState.PRUNED and trial.intermediate_values[40] == 1.0
    assert trial.user_attrs == {"key": "search/0", "outcome": "pruned", "fixed": False, "mlflow_run_id": "run-1"}


def test_a_healthy_trial_completes_with_its_final_value_and_its_curve():
    case = case_search()
    searcher = SweepSearcher([case])
    searcher.suggest("t1")
    curve = [{"epoch": e, "rel_error": 1.0 / e} for e in range(1, 101)]
    case.tell(searcher.spec("t1"), summary(0.01, "fixed", curve), pruned=False, link=lambda: None)
    (trial,) = case.study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.value == pytest.approx(0.01)
    assert trial.intermediate_values[50] == pytest.approx(1 / 50) and "mlflow_run_id" not in trial.user_attrs


def test_a_trial_that_raised_or_went_non_finite_is_failed():
    case = case_search()
    searcher = SweepSearcher([case])
    searcher.suggest("raised"), searcher.suggest("nan")
    case.tell(searcher.spec("raised"), summary(0.5, "error"), pruned=False, link=lambda: None)
    case.tell(searcher.spec("nan"), summary(None, "diverged"), pruned=False, link=lambda: None)
    assert [t.state for t in case.study.get_trials()] == [TrialState.FAIL, TrialState.FAIL]


def test_a_final_result_is_never_pruned():
    searcher = SweepSearcher([case_search()])
    searcher.suggest("t1")
    final = {**decision(epochs(1, 100, 1.0, 0.0)), "final": True}
    assert not searcher.should_stop("t1", final)


def test_a_retried_trial_reports_each_epoch_to_optuna_once():
    case = case_search()
    searcher = SweepSearcher([case])
    searcher.suggest("t1")
    searcher.should_stop("t1", decision(epochs(1, 20, 1.2, 0.5)))
    # Its worker was lost; Tune runs it again from the start, and it reports the same epochs again.
    searcher.should_stop("t1", decision(epochs(1, 22, 1.2, 0.5)))
    (trial,) = case.study.get_trials()
    assert sorted(trial.intermediate_values) == list(range(1, 23))


def test_deterministic_batches_are_asked_whole_once_the_last_one_is_told():
    case = case_search(count=3, batch=2)
    first, second = case.next_spec(), case.next_spec()
    assert case.next_spec() == WAIT  # the batch is running
    case.tell(first, summary(0.5), pruned=False, link=lambda: None)
    assert case.next_spec() == WAIT  # one of the batch still runs: its result must count for the next batch
    case.tell(second, summary(0.4), pruned=False, link=lambda: None)
    third = case.next_spec()
    assert third.number == 2 and case.next_spec() is None  # the last batch is cut to the trials left


def test_the_ablation_is_handed_out_first_and_pruned_by_the_same_rules_but_never_the_baseline():
    planned = [
        TrialSpec(case="lstm_mean_prediction", part="ablation", report_every=0),  # the baseline
        TrialSpec(case="lstm_mean_prediction", part="ablation", overrides={"lr": 1e-6}, report_every=5),
    ]
    searcher = SweepSearcher([case_search(planned, count=1)])
    assert [searcher.suggest(t)["part"] for t in ("baseline", "change", "search")] == ["ablation"] * 2 + ["search"]
    stuck = decision(epochs(1, 40, 1.0, 0.0))
    assert not searcher.should_stop("baseline", stuck)
    assert searcher.should_stop("change", stuck) and searcher.should_stop("search", stuck)
    assert set(searcher.pruned) == {"change", "search"}


def test_without_a_pruner_every_trial_runs_to_the_end():
    searcher = SweepSearcher([case_search(pruner=False)])
    searcher.suggest("t1")
    assert not searcher.should_stop("t1", decision(epochs(1, 60, 1.0, 0.0)))


def test_the_longest_trials_go_first_and_cases_alike_take_turns():
    cases = [case_search(count=2, name=name) for name in ("short", "long", "long too")]
    searcher = SweepSearcher(cases, seconds=[1.0, 30.0, 40.0])  # 30 s and 40 s: one tier (a factor of two)
    handed = [searcher.suggest(f"t{i}")["case"] for i in range(6)]
    assert handed == ["long", "long too", "long", "long too", "short", "short"]


def test_a_waiting_case_lets_the_next_fill_the_slot():
    slow = case_search(count=2, batch=1, name="slow")
    fast = case_search(count=1, name="fast")
    searcher = SweepSearcher([slow, fast], seconds=[10.0, 1.0])
    assert searcher.suggest("a")["case"] == "slow"  # the longest expected trials first
    assert searcher.suggest("b")["case"] == "fast"  # slow's deterministic batch runs: fast fills the slot
    assert searcher.suggest("c") is None  # nothing to hand out until slow's batch is told
    slow.tell(searcher.spec("a"), summary(0.3), pruned=False, link=lambda: None)
    assert searcher.suggest("c")["case"] == "slow"
    assert searcher.suggest("d") == SweepSearcher.FINISHED


def test_a_told_batch_starts_the_next_without_tunes_second_of_sleep():
    writes = ThreadPoolExecutor(max_workers=1)  # tells in the background, as in a sweep
    case = case_search(count=3, batch=1, writes=writes)
    searcher = SweepSearcher([case])
    searcher.suggest("a")
    linked = threading.Event()
    case.tell(searcher.spec("a"), summary(0.3), pruned=False, link=lambda: linked.wait(10) and None)
    threading.Timer(0.2, linked.set).start()  # the tell waits a moment for its MLflow run
    assert searcher.suggest("b")["part"] == "search"  # waited for the tell, instead of None and Tune's 1 s sleep
    started = time.monotonic()
    assert searcher.suggest("c") is None  # "b" still runs: nothing to wait for but its result, which Tune brings
    assert time.monotonic() - started < 0.5
    writes.shutdown()


def asked_configs(batch: int | None, finishing: int, count: int = 14) -> list[dict]:
    """Runs a TPE search of ``count`` trials on two slots; whenever both slots are busy the trial at index
    ``finishing`` (0: the older, -1: the newer) ends first, as on a cluster where either may."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7))
    search = CaseSearch(
        CASE.name,
        [],
        study,
        space=optuna_space(CASE.search_space()),
        count=count,
        pruner=None,
        batch=batch,
        settings={"report_every": 5},
        baseline=CASE.config(),
    )
    running, asked = [], []
    while True:
        while len(running) < 2 and isinstance(spec := search.next_spec(), TrialSpec):
            running.append(spec)
            asked.append(spec)
        if not running:
            return [study.trials[spec.number].params for spec in asked]
        done = running.pop(finishing if len(running) == 2 else 0)
        search.tell(done, summary(1 / (done.number + 1)), pruned=False, link=lambda: None)


def test_the_same_seed_asks_the_same_configs_whatever_order_trials_finish_in():
    # Within TPE's ten random start-up trials the configs follow the ask order alone.
    assert asked_configs(None, 0, count=10) == asked_configs(None, -1, count=10)
    # Beyond them TPE models the finished trials: deterministic batches are asked only once the last is told.
    assert asked_configs(2, 0) == asked_configs(2, -1)
    # Asked one at a time instead, which trial finished first shows in the configs that follow.
    assert asked_configs(None, 0) != asked_configs(None, -1)
