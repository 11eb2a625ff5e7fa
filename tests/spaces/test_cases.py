"""Every documented case is declared consistently, makes deterministic data, and builds under every factor value."""

from __future__ import annotations

import pytest
import torch

from search.trainer.symptoms import DETECTORS
from spaces import CASES, FACTORS, PROFILES, get_case

NAMES = sorted(CASES)


def test_the_five_documented_cases_are_registered():
    assert NAMES == [
        "conv1d_dying_relu",
        "denoise_constant_output",
        "identity_tiny_variance",
        "lstm_mean_prediction",
        "volume_divergence",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_declaration(name):
    case = get_case(name)
    case.check()
    assert set(case.budgets) == set(PROFILES)
    assert case.symptom in {d.name for d in DETECTORS}
    assert case.fix and case.fixed_config() != case.config()
    assert 0 < case.threshold < 1  # judged on a scale-free error: 1 is the mean predictor
    for factor_name, factor in case.space.items():
        assert factor_name in FACTORS  # narrowed from the shared vocabulary, never invented
        assert factor.ablation_values(), f"{name}.{factor_name} has nothing for an ablation to try"
    assert case.source.startswith("seeds/")


@pytest.mark.parametrize("name", NAMES)
def test_data_is_deterministic_in_the_seed(name):
    case = get_case(name)
    config, budget = case.config(), case.budget("quick")
    first, again = case.make_data(0, budget, config), case.make_data(0, budget, config)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, again.targets)
    if first.fresh_batch is not None:
        draw = first.fresh_batch(torch.Generator().manual_seed(5))
        redraw = again.fresh_batch(torch.Generator().manual_seed(5))
        assert all(torch.equal(a, b) for a, b in zip(draw, redraw, strict=False))


def _configs(case):
    """The baseline, the fix, and every ablation value of every factor (one factor changed at a time)."""
    yield case.config()
    yield case.fixed_config()
    for name, factor in case.space.items():
        for value in factor.ablation_values():
            yield case.config({name: value})


@pytest.mark.parametrize("name", NAMES)
def test_model_builds_and_reconstructs_shape_under_every_ablation_value(name):
    case = get_case(name)
    for config in _configs(case):
        data = case.make_data(0, case.budget("quick"), config)
        model = case.build_model(config).eval()
        with torch.no_grad():
            output = model(data.inputs[:2] if len(data.inputs) > 1 else data.inputs)
        assert output.shape == (data.targets[:2] if len(data.targets) > 1 else data.targets).shape, config


def test_lstm_case_uses_the_threads_tensor_verbatim():
    data = get_case("lstm_mean_prediction").make_data(0, None, {})
    assert data.inputs.shape == (1, 14, 5)
    assert data.inputs[0, 0].tolist() == pytest.approx([0.5122, 0.0360, 0.7027, 0.0721, 0.1892])
    assert data.inputs[0, -1].tolist() == pytest.approx([0.5279, 0.0629, 0.6886, 0.1514, 0.0971])


def test_identity_case_matches_the_threads_statistics():
    case = get_case("identity_tiny_variance")
    x = case.make_data(0, case.budget("full"), case.config()).inputs
    assert x.shape[1] == 84
    assert x.mean().item() == pytest.approx(1.1090579, abs=1e-4)
    assert x.std().item() == pytest.approx(0.0012380764, rel=0.05)


# That each quick baseline fails with its documented symptom and each documented fix fixes it is asserted on the
# quick sweep of all five cases, with the ranking (tests/analysis/test_gold.py).


def test_conv1d_cheaper_layers_compute_the_threads_layers():
    from torch import nn

    from spaces.cases.conv1d_dying_relu import DenseConv1d, PairMax

    torch.manual_seed(0)
    dense, conv = DenseConv1d(16, 8, kernel_size=32), nn.Conv1d(16, 8, kernel_size=32)
    conv.load_state_dict(dense.state_dict())  # the same parameters, under the same names
    for length in (32, 40):  # the kernel spans the input (the product), or not (the conv itself)
        x = torch.randn(4, 16, length)
        torch.testing.assert_close(dense(x), conv(x), rtol=1e-5, atol=1e-5)

    # After a ReLU many pairs tie at zero: the gradient goes to the first of the pair in both.
    x = torch.randn(4, 8, 64).relu().requires_grad_()
    pooled, expected = PairMax()(x), nn.MaxPool1d(2)(x)
    assert torch.equal(pooled, expected)
    upstream = torch.randn_like(pooled)
    (grad,) = torch.autograd.grad(pooled, x, upstream)
    (grad_expected,) = torch.autograd.grad(expected, x, upstream)
    assert torch.equal(grad, grad_expected)


def test_lstm_decoder_as_one_layer_computes_the_threads_loop():
    from torch import nn

    from spaces.cases.lstm_mean_prediction import SEQUENCE, LSTMEncoderDecoder

    torch.manual_seed(0)
    model = LSTMEncoderDecoder(5, 20)
    next_draw = torch.rand(1)
    # The thread's parameters, initialised from the same random numbers as the three layers built alone, and no
    # more drawn: what comes after the model (data, dropout) draws the same numbers as before.
    torch.manual_seed(0)
    layers = nn.ModuleDict({"encoder": nn.LSTM(5, 20, batch_first=True), "cell": nn.LSTMCell(5, 20)})
    layers["dense"] = nn.Linear(20, 5)
    assert torch.equal(torch.rand(1), next_draw)
    for ours, theirs in zip(model.state_dict().values(), layers.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)

    x = torch.cat([SEQUENCE, torch.randn(3, 14, 5)])  # the thread's sequence and a batch beside it
    upstream = torch.randn(4, 14, 5)
    model(x)  # a call before: its weights (re-bound into a buffer on CUDA) must not leak into the next backward
    fused, loop = model(x), model.step_by_step(x)
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-6)
    params = list(model.parameters())
    for got, expected in zip(
        torch.autograd.grad(fused, params, upstream), torch.autograd.grad(loop, params, upstream), strict=True
    ):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
