"""Every detector on hand-made histories: the shape it must catch, and the near misses it must not."""

from __future__ import annotations

import math

from search.trainer.metrics import Epoch
from search.trainer.symptoms import (
    Collapse,
    DeadUnits,
    Divergence,
    ExplodingGradient,
    Plateau,
    ScaleBlind,
    Symptom,
    VanishingGradient,
    detect,
    outcome,
)

THRESHOLD = 0.05


def history(rel_errors, **fields):
    """Epochs with the given relative errors; other fields constant (or per-epoch when given a list)."""
    records = []
    for i, rel in enumerate(rel_errors):
        values = {k: (v[i] if isinstance(v, list) else v) for k, v in fields.items()}
        values.setdefault("loss", rel)
        values.setdefault("mse", rel)
        values.setdefault("spread", 1.0)
        values.setdefault("power_error", rel)
        records.append(Epoch(epoch=i + 1, rel_error=rel, **values))
    return records


def test_collapse_to_the_mean_is_caught():
    flat = history([1.2, 1.05, 1.0, 1.0], spread=[0.3, 0.05, 0.01, 0.01])
    assert "outputs vary 0.01x" in Collapse()(flat, THRESHOLD)


def test_collapse_needs_both_low_spread_and_high_error():
    assert Collapse()(history([1.0, 0.9], spread=0.9), THRESHOLD) is None  # varies: not constant
    assert Collapse()(history([1.0, 0.01], spread=0.3), THRESHOLD) is None  # low spread but fixed


def test_dead_units_at_the_autotrainer_threshold():
    assert (
        DeadUnits()(history([1.0, 1.0], dead_fraction=0.7), THRESHOLD) == "70% of ReLU units are zero for every sample"
    )
    assert "gradient entries are exactly zero" in DeadUnits()(history([1.0], zero_grad_fraction=0.75), THRESHOLD)
    assert DeadUnits()(history([1.0], dead_fraction=0.69, zero_grad_fraction=0.5), THRESHOLD) is None
    assert DeadUnits()(history([0.01], dead_fraction=0.9), THRESHOLD) is None  # fixed models are not judged


def test_divergence_on_nan_and_blow_up():
    assert "non-finite" in Divergence()(history([0.5, math.nan]), THRESHOLD)
    assert "epoch 2" in Divergence()(history([0.5, 0.4, 0.3], finite=[True, False, True]), THRESHOLD)
    assert "blew up" in Divergence()(history([1.0, 1e6]), THRESHOLD)


def test_late_divergence_after_a_minimum():
    curve = history([1.0, 0.4, 0.1, 0.05, 0.3, 0.9])
    assert Divergence()(curve, THRESHOLD) == "relative error fell to 0.05 at epoch 4, then rose to 0.9 by epoch 6"


def test_noise_at_tiny_errors_and_never_learning_are_not_divergence():
    assert Divergence()(history([1.0, 1e-4, 5e-4]), THRESHOLD) is None  # 5x, but only 4e-4 higher
    assert Divergence()(history([1.0, 0.95, 1.0, 1.1]), THRESHOLD) is None  # never learnt first
    assert Divergence()(history([1.0, 0.3, 0.2, 0.25]), THRESHOLD) is None  # a wobble


def test_vanishing_gradient_autotrainer_rule():
    assert VanishingGradient()(history([1.0], grad_first=1e-6, grad_last=1e-2), THRESHOLD)
    assert VanishingGradient()(history([1.0], grad_first=1e-6, grad_last=1e-4), THRESHOLD) is None  # ratio 1e-2
    assert VanishingGradient()(history([1.0], grad_first=2e-4, grad_last=1.0), THRESHOLD) is None  # first not tiny
    assert VanishingGradient()(history([0.01], grad_first=1e-9, grad_last=1.0), THRESHOLD) is None  # fixed


def test_exploding_gradient_autotrainer_rule():
    assert "at epoch 1" in ExplodingGradient()(history([1.0, 1.0], grad_first=[80.0, 1.0], grad_last=1.0), THRESHOLD)
    assert ExplodingGradient()(history([1.0], grad_first=60.0, grad_last=1.0), THRESHOLD) is None


def test_scale_blind_is_a_tiny_loss_that_learnt_nothing():
    blind = history([1.0, 1.0], mse=1e-6, power_error=1e-6)
    assert "yet relative error is 1" in ScaleBlind()(blind, THRESHOLD)
    assert ScaleBlind()(history([1.0], power_error=0.4), THRESHOLD) is None  # the loss does not look good
    assert ScaleBlind()(history([0.01], power_error=1e-8), THRESHOLD) is None  # tiny and truly learnt


def test_plateau_is_a_flat_curve_above_the_threshold():
    assert Plateau()(history([1.0, 0.5, 0.3] + [0.29] * 9), THRESHOLD)
    assert Plateau()(history([1.0 * 0.8**i for i in range(12)]), THRESHOLD) is None  # still falling
    assert Plateau()(history([1.0, 0.5, 0.01] + [0.01] * 9), THRESHOLD) is None  # flat but fixed
    assert Plateau()(history([1.0] * 5), THRESHOLD) is None  # too short to judge


def test_detect_runs_every_detector_and_outcome_picks_the_cause():
    dying = history([1.0] * 10, spread=0.0, dead_fraction=1.0)
    names = [s.name for s in detect(dying, THRESHOLD)]
    assert names == ["dead_units", "collapsed", "plateau"]
    assert outcome(False, detect(dying, THRESHOLD)) == "dead_units"
    assert outcome(True, []) == "fixed"
    assert outcome(False, [], error="RuntimeError: boom") == "error"
    assert outcome(False, [Symptom("vanishing_gradient", "...")]) == "plateau"


# ---- sparse histories: a trial keeps its measured epochs only, each with its own number ----


def sparse(points, **fields):
    """Measured epochs, epoch number -> relative error, other fields as in :func:`history`."""
    records = history(list(points.values()), **fields)
    for record, epoch in zip(records, points, strict=True):
        record.epoch = epoch
    return records


def test_plateau_windows_are_epochs_not_records():
    # Dense first epochs, then a sparse grid: the error fell until epoch 120 and was flat over the last quarter
    # of the run (epochs 151-200), though most *records* are early ones.
    points = {e: 1.0 - 0.5 * e / 30 for e in range(1, 31)} | {40: 0.4, 80: 0.3, 120: 0.2, 160: 0.2, 200: 0.2}
    evidence = Plateau()(sparse(points), THRESHOLD)
    assert evidence == "best relative error moved from 0.2 to 0.2 over the last 50 epochs, above the threshold 0.05"
    still_falling = points | {160: 0.15, 200: 0.1}
    assert Plateau()(sparse(still_falling), THRESHOLD) is None


def test_plateau_judges_a_long_run_with_few_records():
    assert Plateau()(sparse({1: 1.0, 100: 0.5, 200: 0.5, 300: 0.5}), THRESHOLD)
    assert Plateau()(sparse({1: 1.0, 5: 0.5, 7: 0.5}), THRESHOLD) is None  # 7 epochs: too short to judge


def test_divergence_names_the_epochs_of_a_sparse_history():
    curve = sparse({1: 1.0, 2: 0.6, 30: 0.05, 60: 0.5, 90: 0.9})
    assert Divergence()(curve, THRESHOLD) == "relative error fell to 0.05 at epoch 30, then rose to 0.9 by epoch 90"


def test_a_loss_gone_non_finite_between_measurements_is_divergence_at_its_epoch():
    # The trainer keeps such an epoch with its loss alone, then the measurement that found it.
    records = [*sparse({1: 1.0, 20: 0.5}), Epoch(epoch=37, loss=math.nan, finite=False), *sparse({40: math.nan})]
    assert Divergence()(records, THRESHOLD) == "non-finite loss, output or gradient at epoch 37"
    assert next(s.name for s in detect(records, THRESHOLD)) == "diverged"


def test_last_epoch_rules_read_the_last_measured_epoch():
    records = sparse({1: 1.0, 50: 1.0, 300: 1.0}, spread=[1.0, 1.0, 0.01], dead_fraction=[0.0, 0.0, 0.9])
    assert Collapse()(records, THRESHOLD) and DeadUnits()(records, THRESHOLD)
    assert "at epoch 50" in ExplodingGradient()(
        sparse({1: 1.0, 50: 1.0, 300: 1.0}, grad_first=[1.0, 100.0, 1.0], grad_last=1.0), THRESHOLD
    )
