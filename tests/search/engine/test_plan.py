from __future__ import annotations

from search.engine.plan import ablation
from spaces import get_case


def test_ablation_is_baseline_then_one_change_at_a_time_over_seeds():
    case = get_case("lstm_mean_prediction")
    planned = ablation(case, seeds=2)
    assert [p.label for p in planned[:2]] == ["baseline", "baseline"] and [p.seed for p in planned[:2]] == [0, 1]
    changes = {p.label for p in planned[2:]}
    assert "hidden_size=100" in changes and "transform=difference" in changes and "optimizer=rmsprop" in changes
    assert "hidden_size=5" not in changes  # the baseline's own value is the baseline
    assert all(len(p.overrides) == 1 for p in planned[2:])
    assert len({p.key for p in planned}) == len(planned)  # keys identify trials across a resume


def test_the_documented_fix_is_tried_even_off_the_grid():
    case = get_case("identity_tiny_variance")
    labels = {p.label for p in ablation(case, seeds=1)}
    assert "transform=standardize" in labels


def test_a_documented_fix_of_several_changes_is_also_tried_whole():
    case = get_case("volume_divergence")
    whole = [p for p in ablation(case, seeds=2) if p.label.startswith("fix:")]
    assert [p.seed for p in whole] == [0, 1]
    assert whole[0].overrides == {k: v for k, v in case.fixed_config().items() if v != case.config()[k]}
    assert whole[0].key == "ablation/fix: lr=0.002 loss_terms=mse/seed=0"
