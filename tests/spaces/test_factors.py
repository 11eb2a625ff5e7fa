from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from spaces import FACTORS, Factor, FactorError, get_case, optuna_space, tune_space


def test_vocabulary_covers_the_design_card():
    assert {
        "hidden_size",
        "activation",
        "normalization",
        "lr",
        "optimizer",
        "transform",
        "decoder",
        "loss_terms",
        "batch_size",
    } <= set(FACTORS)
    assert {"relu", "leaky_relu", "elu", "gelu", "mish", "selu", "tanh"} <= set(FACTORS["activation"].choices)
    assert {"sgd", "sgd_momentum", "adam", "adamw", "rmsprop"} == set(FACTORS["optimizer"].choices)
    assert {"none", "standardize", "difference"} == set(FACTORS["transform"].choices)


@pytest.mark.parametrize(
    ("factor", "text", "value"),
    [
        ("activation", "leaky_relu", "leaky_relu"),
        ("lr", "3e-3", 0.003),
        ("lr", 0.5, 0.5),
        ("hidden_size", "100", 100),
        ("hidden_size", 100.0, 100),
        ("weight_decay", "1e-4", 1e-4),
        ("early_stopping", "true", True),
        ("early_stopping", "off", False),
    ],
)
def test_validate_converts_cli_text(factor, text, value):
    assert FACTORS[factor].validate(text) == value
    assert type(FACTORS[factor].validate(text)) is type(value)


@pytest.mark.parametrize(
    ("factor", "value", "message"),
    [
        ("activation", "relu6", "activation must be one of ['relu', 'leaky_relu'"),
        ("lr", "fast", "lr must be a number in [1e-07, 1], got 'fast'"),
        ("lr", 2.0, "lr must lie in [1e-07, 1], got 2.0"),
        ("lr", "nan", "lr must lie in"),
        ("hidden_size", "7.5", "hidden_size must be an integer"),
        ("hidden_size", 0, "hidden_size must lie in [1, 2048], got 0"),
        ("early_stopping", "maybe", "early_stopping must be one of [False, True], got 'maybe'"),
    ],
)
def test_bad_values_say_what_must_hold_and_echo_the_value(factor, value, message):
    with pytest.raises(FactorError) as info:
        FACTORS[factor].validate(value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_narrow_keeps_inside_the_vocabulary():
    lr = FACTORS["lr"].narrow(low=1e-4, high=1e-2, grid=(1e-3,))
    assert (lr.low, lr.high, lr.ablation_values()) == (1e-4, 1e-2, (1e-3,))
    with pytest.raises(FactorError, match="lr must lie in"):
        FACTORS["lr"].narrow(low=1e-9)
    with pytest.raises(FactorError, match="must lie in"):
        FACTORS["lr"].narrow(low=1e-4, high=1e-2, grid=(1e-1,))
    with pytest.raises(FactorError, match="activation must be one of"):
        FACTORS["activation"].narrow(choices=("relu", "swish"))
    with pytest.raises(FactorError, match="categorical"):
        FACTORS["activation"].narrow(low=1)


def test_declaration_must_be_consistent():
    with pytest.raises(FactorError, match="low <= high"):
        Factor("x", "", low=2, high=1)
    with pytest.raises(FactorError, match="log-scale"):
        Factor("x", "", low=0, high=1, log=True)
    with pytest.raises(FactorError, match="either choices or"):
        Factor("x", "")


def test_optuna_distributions_match_the_declaration():
    space = optuna_space(get_case("conv1d_dying_relu").space)
    assert isinstance(space["activation"], CategoricalDistribution)
    assert space["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert space["batch_size"] == IntDistribution(1, 64, log=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    case = get_case("conv1d_dying_relu")
    for _ in range(20):
        params = study.ask(space).params
        assert case.config(params) == params  # every sampled config validates unchanged


def test_tune_domains_sample_valid_configs():
    from ray.tune.search.sample import Categorical, Float, Integer

    case = get_case("lstm_mean_prediction")
    space = tune_space(case.space)
    assert isinstance(space["optimizer"], Categorical)
    assert isinstance(space["lr"], Float)
    assert isinstance(space["hidden_size"], Integer)
    for _ in range(20):
        config = {name: domain.sample() for name, domain in space.items()}
        validated = case.config(config)
        assert validated["hidden_size"] == config["hidden_size"]
        assert math.isclose(validated["lr"], config["lr"])
