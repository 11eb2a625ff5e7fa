"""The shared trainer on tiny cases: determinism, recorded failures, pruning hook, early stopping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search.trainer.trial import run_trial
from spaces import FACTORS, Budget, Case, Data, FactorError, get_case


class Tiny(Case):
    name = "tiny"
    space = {
        "lr": FACTORS["lr"],
        "optimizer": FACTORS["optimizer"],
        "early_stopping": FACTORS["early_stopping"],
        "transform": FACTORS["transform"].narrow(choices=("none", "standardize")),
    }
    baseline = {"lr": 1e-2, "optimizer": "adam", "early_stopping": False, "transform": "none"}
    budgets = {"quick": Budget(epochs=40), "full": Budget(epochs=80)}

    def make_data(self, seed, budget, config):
        x = torch.randn(16, 6, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone(), batch_size=4)

    def build_model(self, config):
        return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 6))


class Raises(Tiny):
    name = "raises"

    def build_model(self, config):
        raise RuntimeError("the user's model is broken")


class GoesNan(Tiny):
    name = "goes_nan"

    def loss(self, output, target, config):
        return nn.functional.mse_loss(output, target) * math.nan


def test_same_seed_same_history_other_seed_differs():
    first = run_trial(Tiny(), seed=3)
    again = run_trial(Tiny(), seed=3)
    other = run_trial(Tiny(), seed=4)
    assert [e.as_dict() for e in first.history] == [e.as_dict() for e in again.history]
    assert first.rel_error != other.rel_error


def test_result_carries_what_the_cli_prints():
    result = run_trial(Tiny(), {"lr": 3e-2}, seed=0)
    data = result.to_json()
    assert {"case", "config", "rel_error", "mse", "fixed", "symptoms", "epochs", "seconds", "outcome"} <= set(data)
    assert data["config"]["lr"] == 3e-2 and data["epochs"] == 40
    assert result.fixed == (result.rel_error < Tiny.threshold)


def test_nan_is_recorded_as_diverged_not_raised():
    result = run_trial(GoesNan(), seed=0)
    assert result.outcome == "diverged"
    assert result.stopped == "non_finite" and result.epochs == 1
    assert not result.fixed
    assert result.to_json()["rel_error"] is None  # JSON has no NaN


def test_an_exception_is_recorded_as_error():
    result = run_trial(Raises(), seed=0)
    assert result.outcome == "error"
    assert result.error == "RuntimeError: the user's model is broken"
    assert not result.fixed and result.epochs == 0


def test_configuration_errors_raise_before_any_work():
    with pytest.raises(FactorError, match="optimizer must be one of"):
        run_trial(Tiny(), {"optimizer": "lion"})
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        run_trial(Tiny(), profile="huge")


def test_on_epoch_returning_true_prunes():
    seen = []
    result = run_trial(Tiny(), seed=0, on_epoch=lambda record: seen.append(record.epoch) or record.epoch == 5)
    assert result.stopped == "pruned" and result.epochs == 5 and seen == [1, 2, 3, 4, 5]


def test_early_stopping_keeps_the_best_weights():
    # SGD at a rate that first helps, then diverges: early stopping must keep the good epoch.
    wild = run_trial(Tiny(), {"lr": 0.3, "optimizer": "sgd_momentum"}, seed=1)
    kept = run_trial(Tiny(), {"lr": 0.3, "optimizer": "sgd_momentum", "early_stopping": True}, seed=1)
    assert wild.outcome == "diverged"
    assert kept.rel_error == pytest.approx(kept.best_rel_error)
    assert kept.stopped in ("early_stopping", "non_finite") and math.isfinite(kept.rel_error)


def test_standardize_transform_measures_in_the_original_units():
    shifted = run_trial(get_case("identity_tiny_variance"), {"transform": "standardize"}, seed=0, profile="quick")
    assert shifted.mse < 1e-6  # error measured on the original ~1.1 scale, not the standardised one
