"""What a trial measures at a measured epoch, and the record it keeps (:class:`Epoch`).

Each function here reads its figures off the device in one transfer (one host sync), not one per figure: on a
GPU every read waits for the device, and a trial measures only the epochs its judges read (``cadence``).

All error figures are scale-free where judgement depends on them (seed 003 is the lesson): ``rel_error`` is the
MSE divided by the target's variance around its mean, so 1.0 means "no better than predicting the mean",
whatever the data's units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DeadUnitProbe", "Epoch", "ErrorMeter", "gradient_stats"]


@dataclass
class Epoch:
    """One measured epoch. Defaults let tests write hand-made histories with only the fields they need.

    A trial's history holds its measured epochs only, each with its own number; NaN means "not measured" where a
    record comes from partial reports (a pruned trial's), and "non-finite" for ``loss``, ``mse`` and ``rel_error``.

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
    def from_dict(cls, values: Mapping[str, Any]) -> Epoch:
        """The record back from a dict such as a report; unknown keys are ignored, None (JSON's NaN) is the default.

        Example:
            >>> Epoch.from_dict({"epoch": 3, "rel_error": None, "spread": 0.5, "trial_id": "x"}).rel_error
            nan
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})


class ErrorMeter:
    """mse, rel_error, power_error and spread of outputs against one target, whose own figures (its variance
    around the mean predictor and its mean square) are computed once: a trial measures against the same target
    every time.

    Args:
        target: the target, in the data's units.
        variance_dims: the axes over which "predicting the mean" is taken (a single sample has no spread across
            samples; then the mean predictor is the sample's own mean).

    Example:
        >>> meter = ErrorMeter(torch.tensor([[0.0], [2.0]]), variance_dims=(0,))
        >>> meter(torch.ones(2, 1))  # the mean predictor: relative error 1, no spread
        {'mse': 1.0, 'rel_error': 1.0, 'power_error': 0.5, 'spread': 0.0}
    """

    def __init__(self, target: Tensor, variance_dims: tuple[int, ...]) -> None:
        self.target = target.detach().double()
        self.dims = tuple(d for d in variance_dims if target.shape[d] > 1) or tuple(range(target.dim()))
        self.variance, self.power = torch.stack(
            [self.target.var(dim=self.dims, unbiased=False).mean(), torch.mean(self.target**2)]
        ).tolist()

    def __call__(self, output: Tensor) -> dict[str, float]:
        output = output.detach().double()
        mse, output_var = torch.stack(
            [torch.mean((output - self.target) ** 2), output.var(dim=self.dims, unbiased=False).mean()]
        ).tolist()
        return {
            "mse": mse,
            "rel_error": mse / self.variance if self.variance > 0 else math.inf,
            "power_error": mse / self.power if self.power > 0 else math.inf,
            "spread": math.sqrt(output_var / self.variance) if self.variance > 0 else math.nan,
        }


def gradient_stats(model: nn.Module) -> dict[str, float | bool]:
    """Zero-gradient share and first/last weight gradient norms, read after ``backward()`` (or after the optimizer's
    step, which leaves the gradients as they are).

    Non-finite gradients are caught through the loss and the outputs they produce one step later; checking
    every entry here would cost as much as the step itself on the larger cases.
    """
    grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
    if not grads:
        return {"zero_grad_fraction": 0.0, "grad_first": math.nan, "grad_last": math.nan}
    total = sum(g.numel() for g in grads)
    # Weight tensors (matrices and kernels), as AutoTrainer compares kernels, not biases.
    weights = [p.grad for p in model.parameters() if p.grad is not None and p.dim() >= 2] or grads
    nonzero = torch.stack([torch.count_nonzero(g) for g in grads]).sum().double()
    nonzero, first, last = torch.stack([nonzero, weights[0].norm().double(), weights[-1].norm().double()]).tolist()
    return {"zero_grad_fraction": (total - int(nonzero)) / total, "grad_first": first, "grad_last": last}


# Activations whose negative side has zero gradient: a unit that is negative for every sample is dead.
_ZERO_GRADIENT_ACTIVATIONS = (nn.ReLU, nn.ReLU6)


class DeadUnitProbe:
    """Forward hooks on ReLU modules that count units inactive for every sample of a batch.

    Use as a context manager around a forward pass of the memorised set; read :attr:`fraction` after.
    """

    def __init__(self, model: nn.Module) -> None:
        self._modules = [m for m in model.modules() if isinstance(m, _ZERO_GRADIENT_ACTIVATIONS)]
        self._handles: list = []
        self._active: list[Tensor] = []

    def __enter__(self) -> DeadUnitProbe:
        self._active = []
        self._handles = [m.register_forward_hook(self._hook) for m in self._modules]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if output.dim() < 2:
            return
        # A unit is one element of a sample's activation map; the batch is axis 0. The max over the batch of the
        # comparison, as bytes, is `any` (NaN included): torch's `any` over a leading axis is 2.5x slower on CPU.
        active = (output.detach().flatten(1) > 0).view(torch.uint8).amax(dim=0)
        self._active.append(active.float().mean())  # read in `fraction`, with the other layers' in one sync

    @property
    def fraction(self) -> float:
        """The dead share of the most-dead ReLU layer: one silent layer blocks the whole signal path."""
        if not self._active:
            return 0.0
        return 1.0 - torch.stack(self._active).min().item()
