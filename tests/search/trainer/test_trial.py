"""The shared trainer on tiny cases: determinism, recorded failures, pruning hook, early stopping, the measured
epochs and the samples."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search.trainer.cadence import Cadence
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


class Long(Tiny):
    """Long enough for a sparse history: 400 full-batch epochs of a tiny model."""

    name = "long"
    budgets = {"quick": Budget(epochs=400), "full": Budget(epochs=400, stop_loss=1e-3)}

    def make_data(self, seed, budget, config):
        x = torch.randn(16, 6, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())


class NanAt37(Long):
    """Its loss goes NaN at epoch 37, between two measurements."""

    name = "nan_at_37"

    def __init__(self):
        self.calls = 0

    def loss(self, output, target, config):
        self.calls += 1
        loss = nn.functional.mse_loss(output, target)
        return loss * math.nan if self.calls == 37 else loss


class Shaped(Tiny):
    """Samples of shape (2, 3, 5): a figure must see them whole."""

    name = "shaped"

    def make_data(self, seed, budget, config):
        x = 3.0 + torch.randn(8, 2, 3, 5, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())

    def build_model(self, config):
        return nn.Sequential(nn.Flatten(), nn.Linear(30, 30), nn.Unflatten(1, (2, 3, 5)))


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


def test_history_holds_the_measured_epochs_and_on_epoch_sees_each():
    seen = []

    def on_epoch(record):
        seen.append(record.epoch)
        return False

    result = run_trial(Long(), seed=0, report_every=14, on_epoch=on_epoch)
    epochs = [record.epoch for record in result.history]
    assert epochs == [e for e in range(1, 401) if Cadence(400, report_every=14).due(e)] == seen
    assert result.epochs == 400 and 50 <= len(epochs) <= 120
    assert set(range(14, 401, 14)) <= set(epochs)


def test_measuring_fewer_epochs_trains_the_same_weights():
    sparse = run_trial(Long(), seed=2)
    every = run_trial(Long(), seed=2, report_every=1)  # every epoch measured
    assert len(every.history) == 400 > len(sparse.history)
    by_epoch = {record.epoch: record for record in every.history}
    assert all(record == by_epoch[record.epoch] for record in sparse.history)
    assert sparse.rel_error == every.rel_error and sparse.samples == every.samples


def test_a_loss_gone_nan_between_measurements_is_recorded_at_its_epoch():
    result = run_trial(NanAt37(), seed=0)
    assert not Cadence(400).due(37)
    broken, found = result.history[-2:]
    assert (broken.epoch, broken.finite, math.isnan(broken.loss)) == (37, False, True)
    assert found.epoch == 40 and not found.finite  # the next measurement, where it was read
    assert result.stopped == "non_finite" and result.epochs == 40 and result.outcome == "diverged"
    assert "at epoch 37" in result.symptoms[0].evidence


def test_stop_loss_is_read_every_epoch_and_its_epoch_measured():
    every = run_trial(Long(), {"lr": 3e-2}, seed=0, profile="full", report_every=1)
    result = run_trial(Long(), {"lr": 3e-2}, seed=0, profile="full")
    assert every.stopped == result.stopped == "stop_loss"
    assert result.epochs == every.epochs == result.history[-1].epoch < 400
    assert result.history[-1] == every.history[-1] and result.history[-1].loss < 1e-3


def test_samples_keep_their_shape_and_units():
    result = run_trial(Shaped(), {"transform": "standardize"}, seed=0)
    data = Shaped().make_data(0, None, {})
    samples = {name: torch.tensor(values) for name, values in result.samples.items()}
    assert {name: tuple(t.shape) for name, t in samples.items()} == {
        "input": (3, 2, 3, 5),
        "target": (3, 2, 3, 5),
        "output": (3, 2, 3, 5),
    }
    assert torch.equal(samples["input"], data.inputs[:3])  # the data's units, not the standardised ones
    assert samples["output"].mean().item() == pytest.approx(3.0, abs=0.5)
    assert result.to_json(history=True)["samples"] == result.samples


def test_report_every_must_be_positive_before_any_work():
    with pytest.raises(ValueError, match="report_every must be None or >= 1"):
        run_trial(Tiny(), report_every=0)
