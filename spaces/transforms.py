"""Invertible data transforms (the ``transform`` factor), applied around the model.

A transform maps the (input, target) pair into the space the model trains in, and maps the model's output
back, so every metric is measured against the original target. This is the fix of seed 003 (standardise each
sample, undo it after) and seed 004 (difference the series, first row kept).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TRANSFORMS", "Transformed", "transform"]

_EPS = 1e-8


@dataclass
class Transformed:
    """The pair in model space, and how to bring an output back."""

    inputs: Tensor
    targets: Tensor
    inverse: Callable[[Tensor], Tensor]


def _identity(inputs: Tensor, targets: Tensor, time_dim: int) -> Transformed:
    return Transformed(inputs, targets, lambda out: out)


def _standardize(inputs: Tensor, targets: Tensor, time_dim: int) -> Transformed:
    # Statistics of the input only: they are what the model knows at inference time.
    dims = tuple(range(1, inputs.dim()))
    mean = inputs.mean(dim=dims, keepdim=True)
    std = inputs.std(dim=dims, keepdim=True, unbiased=False) + _EPS
    return Transformed((inputs - mean) / std, (targets - mean) / std, lambda out: out * std + mean)


def _differences(x: Tensor, dim: int) -> Tensor:
    return torch.cat([x.narrow(dim, 0, 1), torch.diff(x, dim=dim)], dim=dim)


def _difference(inputs: Tensor, targets: Tensor, time_dim: int) -> Transformed:
    return Transformed(
        _differences(inputs, time_dim), _differences(targets, time_dim), lambda out: out.cumsum(dim=time_dim)
    )


TRANSFORMS: dict[str, Callable[[Tensor, Tensor, int], Transformed]] = {
    "none": _identity,
    "standardize": _standardize,
    "difference": _difference,
}


def transform(name: str, inputs: Tensor, targets: Tensor, time_dim: int = -1) -> Transformed:
    """Applies the named transform; ``time_dim`` is the axis that ``difference`` runs along."""
    try:
        return TRANSFORMS[name](inputs, targets, time_dim)
    except KeyError:
        raise ValueError(f"unknown transform {name!r}; choose from {sorted(TRANSFORMS)}") from None
