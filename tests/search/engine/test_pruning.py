"""The collapse pruner on hand-made reports, judged through Optuna's public ``trial.should_prune``."""

from __future__ import annotations

import math

import optuna
import pytest

from search.engine.pruning import CollapsePruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def trial_with(reports, max_epochs=100):
    """An Optuna trial reported as the sweep reports one, judged by Optuna's own ``should_prune``."""
    pruner = CollapsePruner()
    trial = optuna.create_study(pruner=pruner).ask()
    for epoch, (rel_error, spread) in enumerate(reports, start=1):
        pruner.report(trial, epoch, rel_error, spread, budget=max_epochs)
    return trial


def test_collapsed_and_stuck_after_warmup_is_pruned():
    assert trial_with([(1.0, 0.01)] * 40).should_prune()


def test_not_before_warmup():
    assert not trial_with([(1.0, 0.01)] * 20).should_prune()


def test_collapsed_but_leaving_the_mean_is_kept():
    # Seed 000's ELU fix: near the mean for a third of its budget, but the spread keeps growing.
    leaving = [(1.0 - 0.002 * i, 0.01 * i) for i in range(40)]
    assert not trial_with(leaving).should_prune()


def test_a_varying_output_is_not_collapsed():
    assert not trial_with([(0.9, 0.8)] * 60).should_prune()


def test_stuck_worse_than_the_mean_is_pruned_even_when_it_varies():
    # Seed 003's scale-blind layer: outputs vary as much as the targets, and the error sits at 2.
    assert trial_with([(2.0, 1.0)] * 40).should_prune()


def test_far_worse_than_the_mean_is_cut_sooner_than_stuck_at_it():
    # Far worse than the mean has no abrupt way out; sitting at the mean does (a fix can break symmetry late).
    assert trial_with([(2.0, 1.0)] * 15).should_prune()
    assert not trial_with([(2.0, 1.0)] * 14).should_prune()
    assert not trial_with([(1.0, 0.004)] * 39).should_prune()
    assert trial_with([(1.0, 0.004)] * 40).should_prune()


def test_a_slow_creep_away_from_the_mean_is_kept():
    # Seed 001's SGD at lr 0.1 (a false prune once): rel 1.01 from 12% to 72% of its budget, the spread growing
    # 0.05 -> 0.1 (8% a window, too slow for the window's rules), then memorised (0.34 at the end).
    creeping = [(1.01, 0.05 * 1.0075**i) for i in range(41)]
    assert not trial_with(creeping).should_prune()
    held = [(1.01, 0.05 * (1 + 0.02 * math.sin(i))) for i in range(41)]  # a stuck trial's spread: noise only
    assert trial_with(held).should_prune()


def test_nan_prunes_at_once():
    assert trial_with([(0.5, 0.9), (math.nan, math.nan)]).should_prune()


def test_reports_may_skip_epochs():
    pruner = CollapsePruner()
    trial = optuna.create_study(pruner=pruner).ask()
    for epoch in range(10, 301, 10):  # one report every 10 epochs
        pruner.report(trial, epoch, 1.0, 0.0, budget=300)
        if epoch == 120:  # 40% of the budget: stuck at the mean since its window began
            assert trial.should_prune()
            return
    pytest.fail("never pruned")


def test_far_worse_than_the_mean_and_improving_too_slowly_is_pruned():
    # seed 004 searched at a tiny lr: 40x worse than the mean, falling 1% an epoch; at that pace still > 1 at 100.
    slow = [(40 * 0.99**i, 0.5) for i in range(40)]
    assert trial_with(slow).should_prune()


def test_worse_than_the_mean_but_on_pace_to_beat_it_is_kept():
    # seed 001's BatchNorm fix: 8x worse than the mean, still worse at 40%, on pace to beat it before the end.
    on_pace = [(8 * 0.97**i, 0.5) for i in range(40)]  # 2.4 at epoch 40, about 0.4 by epoch 100
    assert not trial_with(on_pace).should_prune()


def test_a_blow_up_is_pruned_after_the_warmup_only():
    assert not trial_with([(1e6, 1.0)] * 10).should_prune()
    assert trial_with([(0.5, 0.9)] * 30 + [(1e6, 1.0)]).should_prune()


def test_creeping_spread_at_the_mean_is_leaving_it():
    # A low-lr fully connected decoder on seed 000 (a false prune once): rel 0.999 with the spread creeping
    # 0.0055 -> 0.0093 over the window at 40% of the budget; it memorises by the end (rel 0.002).
    creeping = [(0.999, 0.0055 * 1.055 ** max(0, i - 30)) for i in range(41)]
    assert not trial_with(creeping).should_prune()
    flat = [(0.999, 0.004)] * 41
    assert trial_with(flat).should_prune()


def test_the_rule_names_what_decided_it_with_its_figures():
    pruner = CollapsePruner()
    stuck = {e: 2.0 for e in range(1, 16)}
    assert pruner.rule(stuck, {e: 1.0 for e in stuck}, budget=100) == (
        "far worse than the mean and stuck: relative error 2 → 2 over epochs 5-15 (budget 100)"
    )
    assert pruner.rule({1: 0.5, 2: math.inf}, {}, budget=100) == "non-finite: relative error inf at epoch 2"
    assert pruner.rule({e: 0.5 for e in range(1, 16)}, {e: 0.9 for e in range(1, 16)}, budget=100) is None


def test_each_trial_keeps_its_own_spreads():
    # Two trials of one study: one leaving the mean, one stuck at it; the pruner must not mix their spreads.
    pruner = CollapsePruner()
    study = optuna.create_study(pruner=pruner)
    leaving, stuck = study.ask(), study.ask()
    for epoch in range(1, 41):
        pruner.report(leaving, epoch, 1.0, 0.01 * epoch, budget=100)
        pruner.report(stuck, epoch, 1.0, 0.004, budget=100)
    assert stuck.should_prune() and not leaving.should_prune()
