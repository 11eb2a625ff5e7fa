"""Seed 003: a linear layer that "learns" the identity to an MSE of 1e-6, and has learnt nothing.

Thread: "Autoencoder not learning identity function" (seeds/003). The data sit near 1.109 and vary by 0.0012
(X ~ Normal(1.1090579, 0.0012380764), 139336 x 84 in the thread; fewer rows here, same behaviour). One
Dense(84 -> 84) layer, Keras SGD (lr 0.01), MSE, batch 8. The loss looks excellent in absolute terms while the
output is the mean: the variation is a millionth of the signal's power, so plain SGD never sees it. The fix:
standardise each sample and undo it after, inside the model (the ``standardize`` transform).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from spaces.case import Budget, Case, Data
from spaces.factors import FACTORS
from spaces.registry import register

MEAN, STD, WIDTH = 1.1090579, 0.0012380764, 84


def keras_dense(n_in: int, n_out: int) -> nn.Linear:
    """A Linear layer initialised as Keras' Dense: Glorot-uniform weights, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


@register
class IdentityTinyVariance(Case):
    name = "identity_tiny_variance"
    title = "Linear identity on data of tiny variance: tiny loss, nothing learnt"
    source = "seeds/003_5568171e20b9dd1e.txt"
    symptom = "scale_blind"
    space = {
        "transform": FACTORS["transform"].narrow(choices=("none", "standardize")),
        "optimizer": FACTORS["optimizer"].narrow(choices=("sgd", "sgd_momentum", "adam")),
        "lr": FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-3, 1e-1)),
        "batch_size": FACTORS["batch_size"].narrow(low=1, high=256, grid=(32,)),
    }
    baseline = {"transform": "none", "optimizer": "sgd", "lr": 1e-2, "batch_size": 8}
    fix = {"transform": "standardize"}
    budgets = {
        "quick": Budget(epochs=100, samples=1024),
        "full": Budget(epochs=200, samples=4096),
    }
    threshold = 0.05

    def make_data(self, seed: int, budget: Budget, config: Mapping[str, Any]) -> Data:
        generator = torch.Generator().manual_seed(seed)
        x = MEAN + STD * torch.randn(budget.samples, WIDTH, generator=generator)
        return Data(x, x.clone(), batch_size=config["batch_size"])

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        return keras_dense(WIDTH, WIDTH)
