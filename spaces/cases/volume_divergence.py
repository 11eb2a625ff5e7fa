"""Seed 002 (placeholder being written): 3-D density autoencoder that diverges late."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from spaces.case import Budget, Case, Data
from spaces.factors import FACTORS
from spaces.registry import register


@register
class VolumeDivergence(Case):
    name = "volume_divergence"
    title = "3-D density autoencoder improves, then diverges"
    source = "seeds/002_29e4c166cc337f0d.txt"
    symptom = "diverged"
    space = {"lr": FACTORS["lr"].narrow(low=1e-5, high=1e-2, grid=(2e-5, 2e-4, 2e-3)), "optimizer": FACTORS["optimizer"]}
    baseline = {"lr": 2e-4, "optimizer": "adamw"}
    fix = {"optimizer": "sgd_momentum"}
    budgets = {"quick": Budget(epochs=10), "full": Budget(epochs=10)}

    def make_data(self, seed: int, budget: Budget, config: Mapping[str, Any]) -> Data:
        x = torch.rand(4, 1, 8, 8, 8, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        return nn.Sequential(nn.Flatten(1), nn.Linear(512, 512), nn.Unflatten(1, (1, 8, 8, 8)))
