from __future__ import annotations

from search.plan import ablation
from spaces import get_case


def test_ablation_is_baseline_then_one_change_at_a_time_over_seeds():
    case = get_case("lstm_mean_prediction")
    planned = ablation(case, seeds=2)
    assert [p.label for p in planned[:2]] == ["baseline", "baseline"] and [p.seed for p in planned[:2]] == [0, 1]
    changes = {p.label for p in planned[2:]}
    assert "hidden_size=100" in changes and "transform=difference" in changes and "optimizer=sgd" in changes
    assert "hidden_size=5" not in changes  # the baseline's own value is the baseline
    assert all(len(p.overrides) == 1 for p in planned[2:])
    assert len({p.key for p in planned}) == len(planned)  # keys identify trials across a resume


def test_the_documented_fix_is_tried_even_off_the_grid():
    case = get_case("identity_tiny_variance")
    labels = {p.label for p in ablation(case, seeds=1)}
    assert "transform=standardize" in labels
