"""A case of your own: an MLP autoencoder whose code is too narrow to memorise its rows.

Run it like a built-in case:

    overfit trial examples/my_case.py:NarrowCode
    overfit trial examples/my_case.py:NarrowCode --set hidden_size=16
    overfit diagnose examples/my_case.py:NarrowCode
"""

from __future__ import annotations

import torch
from torch import nn

from spaces import FACTORS, Budget, Case, Data
from spaces.layers import activation


class NarrowCode(Case):
    name = "narrow_code"
    title = "MLP autoencoder with a 2-unit code cannot memorise 64 rows of 16 features"
    source = "examples/my_case.py"
    symptom = "plateau"
    space = {
        "hidden_size": FACTORS["hidden_size"].narrow(low=1, high=64, grid=(2, 8, 16)),
        "activation": FACTORS["activation"].narrow(choices=("relu", "tanh", "elu")),
        "lr": FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-3, 1e-2)),
        "optimizer": FACTORS["optimizer"],
    }
    baseline = {"hidden_size": 2, "activation": "relu", "lr": 1e-2, "optimizer": "adam"}
    fix = {"hidden_size": 16}
    budgets = {"quick": Budget(epochs=150, samples=64), "full": Budget(epochs=600, samples=64)}
    threshold = 0.05

    def make_data(self, seed, budget, config):
        # Rows of full rank 16: a 2-unit code cannot hold them, a 16-unit one can.
        x = torch.randn(budget.samples, 16, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())

    def build_model(self, config):
        width = config["hidden_size"]
        return nn.Sequential(
            nn.Linear(16, 64),
            activation(config["activation"]),
            nn.Linear(64, width),
            nn.Linear(width, 64),
            activation(config["activation"]),
            nn.Linear(64, 16),
        )
