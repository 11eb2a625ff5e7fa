"""Seed 001: a fully connected denoising autoencoder that outputs a constant (about 0.5) for every input.

Thread: "Denoising linear autoencoder learns to output a constant instead of denoising" (seeds/001). Each
example is a random combination of cos(0.1x), cos(x), cos(3x) (coefficients uniform in [-2, 2], |c| < 0.1 set
to 0) over B = 2 intervals of K = 512 samples, Gaussian noise (std 0.4) added, clean and noisy each min-max
normalised per example to [0, 1). A fresh batch of 64 every step; validation is one fixed batch. SGD lr 0.01
momentum 0.9, 200 epochs, MSE. The asker's fix: BatchNorm1d in the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from spaces.case import Budget, Case, Data
from spaces.factors import FACTORS
from spaces.layers import activation, normalization
from spaces.registry import register

K, B = 512, 2
LENGTH = K * B
FREQUENCIES = (0.1, 1.0, 3.0)
NOISE_STD = 0.4


def make_batch(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(noisy, clean), each (batch, 1, 1024) and min-max normalised per example, as the thread's generator."""
    x = torch.arange(LENGTH) * (2 * math.pi / K)
    coef = torch.rand(batch_size, len(FREQUENCIES), generator=generator) * 4 - 2
    coef = torch.where(coef.abs() < 0.1, torch.zeros_like(coef), coef)
    waves = torch.stack([torch.cos(f * x) for f in FREQUENCIES])  # (3, L)
    clean = (coef @ waves).unsqueeze(1)
    noisy = clean + NOISE_STD * torch.randn(clean.shape, generator=generator)
    return _minmax(noisy), _minmax(clean)


def _minmax(x: Tensor) -> Tensor:
    x = x - x.amin(dim=-1, keepdim=True)
    return x / (x.amax(dim=-1, keepdim=True) + 1e-5)


def _hidden(n_in: int, n_out: int, config: Mapping[str, Any]) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), normalization(config["normalization"], n_out), activation(config["activation"])]


class LinAutoencoder(nn.Module):
    """The thread's LinAutoencoder (z = hidden_size), with the normalisation factor after each hidden Linear."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        z = config["hidden_size"]
        self.encoder = nn.Sequential(
            *_hidden(LENGTH, 2 * z, config), *_hidden(2 * z, z, config), *_hidden(z, z, config)
        )
        self.decoder = nn.Sequential(
            *_hidden(z, z, config), *_hidden(z, 2 * z, config), nn.Linear(2 * z, LENGTH), nn.Tanh()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x.flatten(1))).view(x.shape)


@register
class DenoiseConstantOutput(Case):
    name = "denoise_constant_output"
    title = "Denoising MLP autoencoder outputs a constant whatever the input"
    source = "seeds/001_5f22d81f7431dba2.txt"
    symptom = "collapsed"
    space = {
        "normalization": FACTORS["normalization"].narrow(choices=("none", "batch", "layer")),
        "activation": FACTORS["activation"].narrow(choices=("relu", "leaky_relu", "elu", "tanh")),
        "hidden_size": FACTORS["hidden_size"].narrow(low=8, high=512, grid=(256,)),
        "lr": FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-3, 1e-1)),
        "optimizer": FACTORS["optimizer"].narrow(choices=("sgd", "sgd_momentum", "adam")),
    }
    baseline = {
        "normalization": "none",
        "activation": "relu",
        "hidden_size": 64,
        "lr": 1e-2,
        "optimizer": "sgd_momentum",
    }
    fix = {"normalization": "batch"}
    budgets = {"quick": Budget(epochs=800, samples=64), "full": Budget(epochs=200, samples=64)}
    threshold = 0.5

    def make_data(self, seed: int, budget: Budget, config: Mapping[str, Any]) -> Data:
        size = budget.samples
        validation = make_batch(size, torch.Generator().manual_seed(seed + 1_000_003))
        return Data(*validation, fresh_batch=lambda generator: make_batch(size, generator))

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        return LinAutoencoder(config)
