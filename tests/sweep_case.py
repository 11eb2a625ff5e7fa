"""A tiny case for end-to-end sweep tests: trains in a fraction of a second, and collapses at a low lr.

The last layer starts at zero, so the output starts constant (collapsed); a learning rate too low to move it
stays collapsed (what the pruner must cut), a sane one memorises the rows.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from spaces import FACTORS, Budget, Case, Data
from spaces.layers import activation


class TinyCollapse(Case):
    name = "tiny_collapse"
    title = "A zero-initialised MLP autoencoder that stays constant at a low learning rate"
    source = "tests/sweep_case.py"
    symptom = "collapsed"
    space = {
        "lr": FACTORS["lr"].narrow(low=1e-6, high=1e-1, grid=(1e-2,)),
        "activation": FACTORS["activation"].narrow(choices=("relu", "tanh")),
    }
    baseline = {"lr": 1e-6, "activation": "relu"}
    fix = {"lr": 1e-2}
    budgets = {"quick": Budget(epochs=40, samples=32), "full": Budget(epochs=120, samples=32)}
    threshold = 0.1

    def make_data(self, seed, budget, config):
        x = torch.randn(budget.samples, 8, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())

    def build_model(self, config):
        model = nn.Sequential(nn.Linear(8, 32), activation(config["activation"]), nn.Linear(32, 8))
        nn.init.zeros_(model[2].weight)
        nn.init.zeros_(model[2].bias)
        return model


class SlowTinyCollapse(TinyCollapse):
    """The same, a few seconds a trial: long enough to kill a sweep in the middle."""

    name = "slow_tiny_collapse"

    def build_model(self, config):
        model = super().build_model(config)
        model.register_forward_hook(lambda *_: time.sleep(0.02))
        return model


class OtherTinyCollapse(TinyCollapse):
    """A second tiny case, so that a sweep holds two cases."""

    name = "other_tiny_collapse"


class LongTinyCollapse(TinyCollapse):
    """The same, about four seconds a trial: long enough to lose a worker or a node in the middle of one."""

    name = "long_tiny_collapse"

    def build_model(self, config):
        model = super().build_model(config)
        model.register_forward_hook(lambda *_: time.sleep(0.05))
        return model
