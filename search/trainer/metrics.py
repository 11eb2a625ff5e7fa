"""What a trial measures each epoch, and the record it keeps (:class:`Epoch`).

All error figures are scale-free where judgement depends on them (seed 003 is the lesson): ``rel_error`` is the
MSE divided by the target's variance around its mean, so 1.0 means "no better than predicting the mean",
whatever the data's units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

__all__ = ["DeadUnitProbe", "Epoch", "gradient_stats", "output_stats"]


@dataclass
class Epoch:
    """One epoch's measurements. Defaults let tests write hand-made histories with only the fields they need.

    Attributes:
        epoch: 1-based epoch index.
        loss: the training loss of the epoch's last step (the case's own loss, in model space).
        mse: mean squared error of the reconstruction of the memorised set, in the data's units.
        rel_error: ``mse`` divided by the target's variance (over the case's ``variance_dims``).
        power_error: ``mse`` divided by the target's mean square: how good the raw loss *looks*.
        spread: std of the outputs across samples over std of the targets (0 means a constant output).
        dead_fraction: share of units that output zero for every sample of the memorised set, in the
            most-dead ReLU layer.
        zero_grad_fraction: share of exactly-zero gradient entries over all parameters (AutoTrainer).
        grad_first, grad_last: gradient norms of the first and last weight tensors.
        finite: False once a loss, output or gradient held NaN or inf.
    """

    epoch: int = 0
    loss: float = math.nan
    mse: float = math.nan
    rel_error: float = math.nan
    power_error: float = math.nan
    spread: float = math.nan
    dead_fraction: float = 0.0
    zero_grad_fraction: float = 0.0
    grad_first: float = math.nan
    grad_last: float = math.nan
    finite: bool = True

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Epoch:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def output_stats(output: Tensor, target: Tensor, variance_dims: tuple[int, ...]) -> dict[str, float]:
    """mse, rel_error, power_error and spread of ``output`` against ``target`` (same shape)."""
    output, target = output.detach().double(), target.detach().double()
    # A single sample has no spread across samples; then the mean predictor is the sample's own mean.
    variance_dims = tuple(d for d in variance_dims if target.shape[d] > 1) or tuple(range(target.dim()))
    mse = torch.mean((output - target) ** 2).item()
    target_var = target.var(dim=variance_dims, unbiased=False).mean().item()
    output_var = output.var(dim=variance_dims, unbiased=False).mean().item()
    power = torch.mean(target**2).item()
    return {
        "mse": mse,
        "rel_error": mse / target_var if target_var > 0 else math.inf,
        "power_error": mse / power if power > 0 else math.inf,
        "spread": math.sqrt(output_var / target_var) if target_var > 0 else math.nan,
    }


def gradient_stats(model: nn.Module) -> dict[str, float | bool]:
    """Zero-gradient share and first/last weight gradient norms, read after ``backward()``.

    Non-finite gradients are caught through the loss and the outputs they produce one step later; checking
    every entry here would cost as much as the step itself on the larger cases.
    """
    grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
    if not grads:
        return {"zero_grad_fraction": 0.0, "grad_first": math.nan, "grad_last": math.nan}
    total = sum(g.numel() for g in grads)
    zeros = total - sum(int(torch.count_nonzero(g)) for g in grads)
    # Weight tensors (matrices and kernels), as AutoTrainer compares kernels, not biases.
    weights = [p.grad for p in model.parameters() if p.grad is not None and p.dim() >= 2] or grads
    return {
        "zero_grad_fraction": zeros / total,
        "grad_first": weights[0].norm().item(),
        "grad_last": weights[-1].norm().item(),
    }


# Activations whose negative side has zero gradient: a unit that is negative for every sample is dead.
_ZERO_GRADIENT_ACTIVATIONS = (nn.ReLU, nn.ReLU6)


class DeadUnitProbe:
    """Forward hooks on ReLU modules that count units inactive for every sample of a batch.

    Use as a context manager around a forward pass of the memorised set; read :attr:`fraction` after.
    """

    def __init__(self, model: nn.Module) -> None:
        self._modules = [m for m in model.modules() if isinstance(m, _ZERO_GRADIENT_ACTIVATIONS)]
        self._handles: list = []
        self.fractions: list[float] = []

    def __enter__(self) -> DeadUnitProbe:
        self.fractions = []
        self._handles = [m.register_forward_hook(self._hook) for m in self._modules]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if output.dim() < 2:
            return
        # A unit is one element of a sample's activation map; the batch is axis 0.
        active = (output.detach() > 0).flatten(1).any(dim=0)
        self.fractions.append(1.0 - active.float().mean().item())

    @property
    def fraction(self) -> float:
        """The dead share of the most-dead ReLU layer: one silent layer blocks the whole signal path."""
        return max(self.fractions, default=0.0)
