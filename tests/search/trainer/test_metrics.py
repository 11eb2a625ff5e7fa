from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search.trainer.metrics import DeadUnitProbe, Epoch, ErrorMeter, gradient_stats


def test_predicting_the_mean_scores_relative_error_one():
    target = torch.randn(32, 10)
    stats = ErrorMeter(target, (0,))(target.mean(0, keepdim=True).expand_as(target))
    assert stats["rel_error"] == pytest.approx(1.0)
    assert stats["spread"] == pytest.approx(0.0)


def test_relative_error_is_scale_free_and_power_error_is_not():
    target = torch.randn(32, 10, dtype=torch.float64)
    output = target + 0.1 * torch.randn(32, 10, dtype=torch.float64)
    small = ErrorMeter(target * 1e-3 + 1.1, (0,))(output * 1e-3 + 1.1)
    large = ErrorMeter(target, (0,))(output)
    assert small["rel_error"] == pytest.approx(large["rel_error"], rel=1e-6)
    assert small["power_error"] < 1e-6 < large["power_error"]
    assert small["mse"] == pytest.approx(large["mse"] * 1e-6, rel=1e-6)


def test_variance_dims_define_the_mean_predictor():
    # One sequence (1, time, features): the mean is per feature over time.
    sequence = torch.randn(1, 14, 5) + torch.arange(5.0)
    flat = sequence.mean(dim=1, keepdim=True).expand_as(sequence)
    assert ErrorMeter(sequence, (0, 1))(flat)["rel_error"] == pytest.approx(1.0)


def test_dead_unit_probe_counts_the_most_dead_relu_layer():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.fill_(0.1)
            layer.bias.fill_(1.0)  # every unit fires for inputs in [0, 1)
        model[2].bias[:6] = -1e3  # but six of the second layer's eight can never fire
    with DeadUnitProbe(model) as probe:
        model(torch.rand(16, 4))
    assert probe.fraction == pytest.approx(6 / 8)


def test_dead_unit_probe_ignores_leaky_activations():
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU())
    with torch.no_grad():
        model[0].bias[:] = -1e3
    with DeadUnitProbe(model) as probe:
        model(torch.randn(16, 4))
    assert probe.fraction == 0.0


def test_gradient_stats_compare_first_and_last_weights():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model(torch.randn(8, 4)).pow(2).mean().backward()
    stats = gradient_stats(model)
    assert stats["grad_first"] == pytest.approx(model[0].weight.grad.norm().item())
    assert stats["grad_last"] == pytest.approx(model[2].weight.grad.norm().item())
    assert 0 <= stats["zero_grad_fraction"] < 1
    model[0].weight.grad[0, 0] = math.nan
    assert math.isnan(gradient_stats(model)["grad_first"])


def test_a_single_sample_is_judged_against_its_own_mean():
    signal = torch.randn(1, 1, 64, dtype=torch.float64)
    stats = ErrorMeter(signal, (0,))(signal.mean().expand_as(signal))
    assert stats["rel_error"] == pytest.approx(1.0)


def test_an_epoch_back_from_a_report():
    # A report is JSON: NaN became None, and it carries keys of its own.
    record = Epoch.from_dict({"epoch": 30, "rel_error": None, "loss": 0.5, "dead_fraction": None, "max_epochs": 100})
    assert record.epoch == 30 and record.loss == 0.5 and record.dead_fraction == 0.0 and record.finite
    assert math.isnan(record.rel_error) and math.isnan(record.power_error)
    assert Epoch.from_dict(record.as_dict()) == record
