"""Checking a case before a sweep: one line for what is wrong with it, a probe of its cost when nothing is."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search.trainer.check import CaseProbe, check_case
from spaces import CASES, FACTORS, Budget, Case, CaseError, Data, get_case


class Good(Case):
    name = "good"
    space = {"lr": FACTORS["lr"]}
    baseline = {"lr": 1e-2}
    budgets = {"quick": Budget(epochs=10)}

    def make_data(self, seed, budget, config):
        x = torch.randn(64, 16, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone(), batch_size=16)

    def build_model(self, config):
        return nn.Linear(16, 16)


class NarrowOutput(Good):
    name = "narrow_output"

    def build_model(self, config):
        return nn.Linear(16, 1)  # (64, 1) broadcasts against (64, 16) in the loss


class NanInputs(Good):
    name = "nan_inputs"

    def make_data(self, seed, budget, config):
        x = torch.randn(64, 16)
        x[3, 4] = math.nan
        return Data(x, torch.randn(64, 16))


class InfTargets(Good):
    name = "inf_targets"

    def make_data(self, seed, budget, config):
        y = torch.randn(64, 16)
        y[0, 0] = math.inf
        return Data(torch.randn(64, 16), y)


class NanFreshBatch(Good):
    name = "nan_fresh_batch"

    def make_data(self, seed, budget, config):
        return Data(torch.randn(8, 16), torch.randn(8, 16), fresh_batch=lambda g: (torch.full((8, 16), math.nan),) * 2)


class PerSampleLoss(Good):
    name = "per_sample_loss"

    def loss(self, output, target, config):
        return ((output - target) ** 2).mean(dim=1)


class InfiniteLoss(Good):
    name = "infinite_loss"

    def loss(self, output, target, config):
        return nn.functional.mse_loss(output, target) + math.inf


class TupleData(Good):
    name = "tuple_data"

    def make_data(self, seed, budget, config):
        x = torch.randn(64, 16)
        return x, x


class TupleOutput(Good):
    name = "tuple_output"

    def build_model(self, config):
        class Twice(nn.Linear):
            def forward(self, x):
                return super().forward(x), x

        return Twice(16, 16)


class BrokenModel(Good):
    name = "broken_model"

    def build_model(self, config):
        raise RuntimeError("missing weights file\nand a second line")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            NarrowOutput(),
            "case 'narrow_output': the model's output must have the target's shape, got (16, 1) against (16, 16)",
        ),
        (NanInputs(), "case 'nan_inputs': its data's inputs must be finite, got 1 NaN or inf of 1024 values"),
        (InfTargets(), "case 'inf_targets': its data's targets must be finite, got 1 NaN or inf of 1024 values"),
        (NanFreshBatch(), "case 'nan_fresh_batch': its fresh batch's inputs must be finite, got 128 NaN or inf"),
        (PerSampleLoss(), "case 'per_sample_loss': the loss must be a scalar (shape ()), got (16,)"),
        (InfiniteLoss(), "case 'infinite_loss': the loss must be finite on the first batch, got inf"),
        (BrokenModel(), "case 'broken_model': build_model() must run, but raised RuntimeError: missing weights file"),
        (TupleData(), "case 'tuple_data': make_data() must return a spaces.Data, got tuple"),
        (TupleOutput(), "case 'tuple_output': the model must return a tensor, got tuple"),
    ],
)
def test_a_bad_case_is_refused_in_one_line(case, message):
    with pytest.raises(CaseError) as caught:
        check_case(case)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_shape_is_checked_on_the_whole_batch_too():
    class WholeBatch(NarrowOutput):
        def make_data(self, seed, budget, config):
            x = torch.randn(64, 16)
            return Data(x, x.clone())

    with pytest.raises(CaseError, match=r"got \(64, 1\) against \(64, 16\)"):
        check_case(WholeBatch())


def test_a_good_case_is_probed_and_the_callers_random_state_left_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    probe = check_case(Good())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert probe.parameters == 16 * 16 + 16 and probe.steps_per_epoch == 4 and probe.output_shape == (16, 16)
    assert 0 < probe.seconds_per_epoch < 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_built_in_case_passes(name):
    probe = check_case(get_case(name))
    assert isinstance(probe, CaseProbe)
    assert probe.parameters > 0 and probe.steps_per_epoch >= 1 and 0 < probe.seconds_per_epoch < 5
