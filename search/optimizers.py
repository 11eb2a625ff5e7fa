"""The ``optimizer`` factor's values, as torch optimizers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

__all__ = ["OPTIMIZERS", "make_optimizer"]

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "sgd_momentum": lambda params, **kw: torch.optim.SGD(params, momentum=0.9, **kw),
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}

# Options a case may set that only some optimizers take (Adam's betas for seed 002's beta1 = 0.5).
_ACCEPTS = {"betas": {"adam", "adamw"}, "momentum": {"rmsprop"}}


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    options: Mapping[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """An optimizer by factor value; case ``options`` are passed where the optimizer accepts them."""
    try:
        factory = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}") from None
    extra = {k: v for k, v in (options or {}).items() if name in _ACCEPTS.get(k, {name})}
    return factory(params, lr=lr, weight_decay=weight_decay, **extra)
