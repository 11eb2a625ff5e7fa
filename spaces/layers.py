"""Building blocks that cases assemble from factor values: activations and normalisation layers."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["ACTIVATIONS", "activation", "normalization"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "mish": nn.Mish,
    "selu": nn.SELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by factor value (never in-place: the trial's hooks read its output)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def normalization(kind: str, channels: int, spatial_dims: int = 0) -> nn.Module:
    """A normalisation layer for ``channels`` features.

    Args:
        kind: ``none``, ``batch``, ``layer`` or ``group`` (the ``normalization`` factor).
        channels: feature or channel count.
        spatial_dims: 0 for (N, C) inputs, 1 for (N, C, L), 3 for (N, C, D, H, W).
    """
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[spatial_dims](channels)
    if kind == "layer":
        # GroupNorm with one group normalises over channels and positions per sample: layer norm for any rank.
        return nn.LayerNorm(channels) if spatial_dims == 0 else nn.GroupNorm(1, channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown normalization {kind!r}; choose from ['batch', 'group', 'layer', 'none']")
