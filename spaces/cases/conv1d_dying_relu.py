"""Seed 000: a 1-D conv autoencoder that fits one signal but not a batch of them (dying ReLU).

Thread: "Underfitting a single batch: can't make an autoencoder overfit a multi-sample batch of 1-D data"
(seeds/000). Shape (n, 1, 1024); with n = 1 it fits, with n > 1 the MSE stays above about 0.2: the output
keeps the signals' mean shape but loses their negative offsets. The answer reproduced it on "simple Gaussian
data" (here: standard normal signals) with batch 16, 100 epochs, Adam lr 1e-3: loss 0.2727 with ReLU against
0.000476 with LeakyReLU. Other documented factors: a fully connected decoder (more parameters), batch size.

On our batch the cause reproduces (a whole 1-channel ReLU layer of the decoder goes silent for every sample and
the output collapses to the mean), but LeakyReLU's slope of 0.01 does not rescue it within 300 epochs; ELU, which
the answer also names, does. So the documented fix here is ELU, with a 300-epoch quick budget
(docs/reproduction.md has the numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from spaces.case import Budget, Case, Data
from spaces.factors import FACTORS
from spaces.layers import activation, normalization
from spaces.registry import register

LENGTH = 1024
_ENCODER = ((1, 8, 15), (8, 16, 11), (16, 32, 7), (32, 64, 5), (64, 128, 3))  # (in, out, kernel) per block
_DECODER = (128, 64, 32, 16, 8, 1)


class DenseConv1d(nn.Conv1d):
    """The thread's dense layer: a conv whose kernel spans its whole input, so its output has length 1.

    The same layer (parameters, initialisation, state dict) as ``nn.Conv1d``, computed as the matrix product it
    is: on one CPU core the conv kernels take about 8 ms for this shape's forward and backward pass, the product
    1.3 ms (the conv was a quarter of the case's epoch). Any other input length runs the conv.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.kernel_size[0] or self.padding != (0,):
            return super().forward(x)
        return nn.functional.linear(x.flatten(1), self.weight.flatten(1), self.bias).unsqueeze(-1)


class _PairMaxFunction(torch.autograd.Function):
    """The max of each pair of neighbours on the last dim; its gradient goes to the larger (the first on a tie)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        even, odd = x[..., 0::2], x[..., 1::2]
        ctx.save_for_backward(even >= odd)
        return torch.maximum(even, odd)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (first,) = ctx.saved_tensors
        grad_x = grad.new_zeros(*grad.shape, 2)
        grad_x[..., 0] = grad * first
        grad_x[..., 1] = grad * ~first
        return grad_x.flatten(-2)


class PairMax(nn.Module):
    """``nn.MaxPool1d(2)`` on even lengths: the max of each pair of neighbours, by elementwise kernels.

    The same values, and the same gradients wherever they are finite (a tie sends the gradient to the first of the
    pair, as the pooling kernel does): a trial's history is the same to the bit. The pooling kernel, or a max over
    pairs, reduces over a dimension of two, which torch's CPU kernels do slowly; two strided views compared
    elementwise, and a mask applied to the gradient, save 4% of the case's training epoch and 11% of a
    measurement on one core.

    Example:
        >>> x = torch.tensor([[[1.0, 3.0, 2.0, 2.0]]], requires_grad=True)
        >>> y = PairMax()(x)
        >>> y.tolist(), torch.equal(y, nn.functional.max_pool1d(x, 2))
        ([[[3.0, 2.0]]], True)
        >>> y.sum().backward()
        >>> x.grad.tolist()
        [[[0.0, 1.0, 1.0, 0.0]]]
    """

    def forward(self, x: Tensor) -> Tensor:
        return _PairMaxFunction.apply(x)


def _conv_block(c_in: int, c_out: int, kernel: int, config: Mapping[str, Any]) -> nn.Sequential:
    """The thread's Conv1DBlock: 'same' conv, (its commented-out BatchNorm), activation, max-pool by 2."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=(kernel - 1) // 2),
        normalization(config["normalization"], c_out, spatial_dims=1),
        activation(config["activation"]),
        PairMax(),
    )


def _upsample_block(c_in: int, c_out: int, config: Mapping[str, Any]) -> nn.Sequential:
    """The thread's Upsample1DBlock: 'same' conv k=3, activation, linear upsampling by 4."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, 3, padding=1),
        normalization(config["normalization"], c_out, spatial_dims=1) if c_out > 1 else nn.Identity(),
        activation(config["activation"]),
        nn.Upsample(scale_factor=4, mode="linear", align_corners=True),
    )


class Conv1dAutoencoder(nn.Module):
    """The thread's encoder (five conv blocks, then a k=32 conv as a dense layer) and either decoder."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        code = config["hidden_size"]
        act = config["activation"]
        blocks = [_conv_block(i, o, k, config) for i, o, k in _ENCODER]
        self.encoder = nn.Sequential(*blocks, DenseConv1d(128, code, kernel_size=32), nn.Flatten(1))
        if config["decoder"] == "conv":
            ups = [_upsample_block(i, o, config) for i, o in zip((code, *_DECODER[1:-1]), _DECODER[1:], strict=False)]
            self.decoder = nn.Sequential(
                nn.Unflatten(1, (code, 1)),
                *ups,
                activation(act),
                nn.Conv1d(1, 1, 3, padding=1),
                activation(act),
                nn.Flatten(1),
                nn.Linear(LENGTH, LENGTH),
            )
        else:
            self.decoder = nn.Sequential(
                nn.Linear(code, 256),
                activation(act),
                nn.Linear(256, 512),
                activation(act),
                nn.Linear(512, LENGTH),
                activation(act),
                nn.Linear(LENGTH, LENGTH),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x)).view(x.shape)


@register
class Conv1dDyingRelu(Case):
    name = "conv1d_dying_relu"
    title = "1-D conv autoencoder cannot overfit a batch of signals (dying ReLU)"
    source = "seeds/000_e4c055570206e368.txt"
    symptom = "dead_units"
    space = {
        # The thread's activations (ReLU, and LeakyReLU, ELU, Mish named as fixes) and tanh as a saturating one;
        # grids hold the values worth one 20-second trial each on a CPU.
        "activation": FACTORS["activation"].narrow(choices=("relu", "leaky_relu", "elu", "mish", "tanh")),
        "normalization": FACTORS["normalization"].narrow(choices=("none", "batch")),
        "decoder": FACTORS["decoder"],
        "batch_size": FACTORS["batch_size"].narrow(low=1, high=64, grid=(1, 4)),
        "hidden_size": FACTORS["hidden_size"].narrow(low=16, high=512, grid=(512,)),
        "lr": FACTORS["lr"].narrow(low=1e-5, high=1e-1, grid=(1e-4, 1e-2)),
        "optimizer": FACTORS["optimizer"].narrow(choices=("adam", "sgd_momentum", "rmsprop")),
    }
    baseline = {
        "activation": "relu",
        "normalization": "none",
        "decoder": "conv",
        "batch_size": 16,
        "hidden_size": 128,
        "lr": 1e-3,
        "optimizer": "adam",
    }
    fix = {"activation": "elu"}
    # n, the number of signals memorised: n = 1 fitting is the thread's diagnostic, not a fix for n = 16.
    task_factors = ("batch_size",)
    # The answer's own run is 100 epochs; on our synthetic batch ELU needs about 300 to memorise (see
    # docs/reproduction.md), so the quick profile is the longer one here.
    budgets = {"quick": Budget(epochs=300), "full": Budget(epochs=100)}
    # The thread separates "fits" (MSE 0.0005 on unit-variance data) from "fails" (0.27): 0.1 lies between.
    threshold = 0.1

    def make_data(self, seed: int, budget: Budget, config: Mapping[str, Any]) -> Data:
        # The batch to memorise: its size is the batch_size factor (n in the thread).
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(config["batch_size"], 1, LENGTH, generator=generator)
        return Data(x, x.clone())

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        return Conv1dAutoencoder(config)
