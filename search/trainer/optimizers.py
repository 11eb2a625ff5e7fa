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

# Fused kernels update every parameter in one pass instead of a Python loop of small ops per tensor: the same
# rule, 2-7x faster steps on CPU (10-25% of a quick trial; bench/trial_speed.py). torch has them for these on CPU
# and CUDA.
_FUSED = {"sgd", "sgd_momentum", "adam", "adamw"}


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
    params = list(params)
    if name in _FUSED and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params):
        extra["fused"] = True
    return factory(params, lr=lr, weight_decay=weight_decay, **extra)
