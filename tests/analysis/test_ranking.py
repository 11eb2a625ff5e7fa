from __future__ import annotations

import json

import pytest

from analysis import AnalysisError, rank_case
from tests.analysis.handmade import ablation_of_a_dying_relu, frame, info, trial


def ranked(rows, **fields):
    return rank_case(frame(rows), info(**fields))


def test_a_change_that_fixes_alone_in_every_seed_ranks_first():
    ranking = ranked(ablation_of_a_dying_relu(seeds=2), task_factors=("batch_size",))
    assert ranking.top(2) == ["activation", "lr"]
    first = ranking.table.iloc[0]
    assert first["change"] == "relu→elu" and first["fixed_alone"] == 2
    assert first["explanation"].startswith("activation relu→elu alone fixes it in 2/2 seeds; relative error 1 → 0.001")


def test_task_factors_are_listed_last_and_never_ranked():
    ranking = ranked(ablation_of_a_dying_relu(), task_factors=("batch_size",))
    last = ranking.table.iloc[-1]
    assert last["factor"] == "batch_size" and last["rank"] is None
    assert "changes what is memorised" in last["explanation"]
    assert "batch_size" not in ranking.top(3)
    unmarked = ranked(ablation_of_a_dying_relu())
    assert "batch_size" in unmarked.top(2)  # the same data, read without the case's knowledge


def test_both_factors_of_a_fix_that_needs_two_changes_outrank_a_factor_that_only_helps():
    rows = [
        trial("baseline", 0, 20.0),
        trial("activation=elu", 0, 2.0, activation="elu"),  # helps most alone, never fixes
        trial("lr=0.01", 0, 19.0, lr=0.01),
        trial("hidden_size=64", 0, 23.0, hidden_size=64),
        trial("fix: lr=0.01 hidden_size=64", 0, 0.05, lr=0.01, hidden_size=64),
    ]
    ranking = ranked(rows)
    assert set(ranking.top(2)) == {"lr", "hidden_size"}
    row = ranking.table.set_index("factor").loc["lr"]
    assert "lr=0.01 with hidden_size=64 fixes it" in row["explanation"]
    assert row["change"] == "0.001→0.01 (with others)"
    hidden = ranking.table.set_index("factor").loc["hidden_size", "explanation"]
    assert "no single change of hidden_size helped (each made it worse" in hidden  # 23 against the baseline's 20
    assert "hidden_size=64 with lr=0.01 fixes it" in hidden
    assert "lowers the relative error 20 → 2" in ranking.table.set_index("factor").loc["activation", "explanation"]


def test_a_change_within_seed_noise_of_the_baseline_is_neither_better_nor_worse():
    rows = [
        trial("baseline", 0, 20.0),
        trial("hidden_size=64", 0, 21.0, hidden_size=64),
        trial("lr=0.01", 0, 19.0, lr=0.01),
    ]
    table = ranked(rows).table.set_index("factor")["explanation"]
    assert (
        "no single change of hidden_size helped (lowest error: hidden_size 8→64, relative error 20 → 21)"
        in table["hidden_size"]
    )
    assert "no single change of lr helped (lowest error: lr 0.001→0.01, relative error 20 → 19)" in table["lr"]


def test_search_importance_breaks_ties_between_equal_ablation_evidence():
    rows = [
        trial("baseline", 0, 1.0),
        trial("activation=elu", 0, 0.01, activation="elu"),
        trial("lr=0.01", 0, 0.01, lr=0.01),
    ]
    # In the search, only the activation matters: elu trials memorise whatever the rest.
    for n, (act, lr, hidden) in enumerate(
        [
            ("elu", 1e-4, 8),
            ("relu", 1e-2, 64),
            ("elu", 1e-2, 16),
            ("relu", 1e-4, 32),
            ("elu", 3e-3, 64),
            ("relu", 3e-3, 8),
        ]
        * 2
    ):
        rows.append(
            trial(
                f"search #{n}",
                0,
                0.001 * (1 + n) if act == "elu" else 1.0 + n / 100,
                "search",
                activation=act,
                lr=lr,
                hidden_size=hidden,
            )
        )
    ranking = ranked(rows)
    assert ranking.top(1) == ["activation"]
    assert ranking.importance and all(max(s, key=s.get) == "activation" for s in ranking.importance.values())


def test_no_fixed_trial_gives_a_ranking_by_progress_and_says_so():
    rows = [
        trial("baseline", 0, 5.0),
        trial("lr=0.01", 0, 0.5, lr=0.01),
        trial("hidden_size=64", 0, 4.0, hidden_size=64),
    ]
    ranking = ranked(rows)
    assert ranking.fixed_trials == 0 and ranking.top(1) == ["lr"]
    assert "no trial of handmade was fixed" in ranking.note
    assert ranking.minimal_fixes == []


def test_same_trials_give_the_same_ranking_and_json_is_clean():
    rows = ablation_of_a_dying_relu()
    first, second = ranked(rows), ranked(rows)
    assert first.table.equals(second.table)
    assert json.loads(json.dumps(first.to_dict()))["ranking"][0]["factor"] == "activation"


def test_an_empty_sweep_or_one_without_baseline_is_an_error():
    with pytest.raises(AnalysisError, match="must hold finished trials"):
        rank_case(frame([trial("baseline")]).iloc[0:0], info())
    with pytest.raises(AnalysisError, match="must record its baseline"):
        rank_case(frame([trial("baseline")]), info(baseline={}))


def test_a_pruned_single_change_says_its_error_is_where_it_was_stopped():
    rows = [trial("baseline", 0, 20.0), trial("activation=elu", 0, 2.0, activation="elu")]
    rows[1]["pruned"] = True
    explanation = ranked(rows).table.set_index("factor").loc["activation", "explanation"]
    assert "lowers the relative error 20 → 2 when pruned" in explanation
    rows[1]["pruned"] = False
    assert "when pruned" not in ranked(rows).table.set_index("factor").loc["activation", "explanation"]
