"""The factor vocabulary: every axis a sweep may turn to fix a failing autoencoder.

One declaration serves three readers: the CLI (``--set lr=1e-3`` is parsed and validated here), Ray Tune
(:meth:`Factor.to_tune`) and Optuna (:meth:`Factor.to_optuna`). A case narrows the vocabulary to the values
that make sense for it (:meth:`Factor.narrow`) and keeps the name, so results of every case share columns.

Example:
    >>> FACTORS["activation"].validate("leaky_relu")
    'leaky_relu'
    >>> FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-3, 1e-2)).validate("3e-3")
    0.003
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna.distributions as od

__all__ = ["FACTORS", "Factor", "FactorError", "optuna_space", "tune_space"]


class FactorError(ValueError):
    """A factor name or value that the vocabulary (or a case's narrowing of it) does not allow."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Factor:
    """One searchable axis: either a set of ``choices`` or a numeric range ``[low, high]``.

    Attributes:
        name: the column name everywhere (CLI, Ray config, Optuna param, MLflow param, DataFrame).
        help: what the factor changes, in a phrase.
        choices: allowed values of a categorical factor.
        low, high: bounds of a numeric factor (inclusive).
        log: sample a numeric factor on a log scale.
        integer: a numeric factor takes whole numbers.
        grid: the values an ablation tries for a numeric factor (a categorical one tries its choices).
    """

    name: str
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    grid: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise FactorError(f"factor {self.name!r} needs either choices or both low and high")
        if self.choices is not None and not self.choices:
            raise FactorError(f"factor {self.name!r} has no choices")
        if self.low is not None and self.high is not None:
            if not self.low <= self.high:
                raise FactorError(f"`low <= high` must hold for {self.name!r}, but got ({self.low=}, {self.high=})")
            if self.log and self.low <= 0:
                raise FactorError(f"a log-scale factor needs low > 0; {self.name!r} got low={self.low}")
        for value in self.grid:
            self.validate(value)

    @property
    def categorical(self) -> bool:
        return self.choices is not None

    def validate(self, value: Any) -> Any:
        """Returns ``value`` converted to the factor's type, or raises :class:`FactorError` saying what holds."""
        if self.choices is not None:
            for choice in self.choices:
                if value == choice or (isinstance(value, str) and _parse_like(value, choice) == choice):
                    return choice
            raise FactorError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        try:
            number = _to_number(value, self.integer)
        except (TypeError, ValueError):
            kind = "an integer" if self.integer else "a number"
            raise FactorError(f"{self.name} must be {kind} in [{self.low:g}, {self.high:g}], got {value!r}") from None
        if not (self.low <= number <= self.high) or math.isnan(number):
            raise FactorError(f"{self.name} must lie in [{self.low:g}, {self.high:g}], got {value!r}")
        return number

    def narrow(
        self,
        choices: Sequence[Any] | None = None,
        low: float | None = None,
        high: float | None = None,
        grid: Sequence[Any] | None = None,
    ) -> Factor:
        """A copy restricted to a subset of the choices or a sub-range; what is asked must lie inside this one."""
        if choices is not None:
            if self.choices is None:
                raise FactorError(f"{self.name} is numeric; narrow it with low/high, not choices")
            choices = tuple(self.validate(c) for c in choices)
        if low is not None or high is not None:
            if self.choices is not None:
                raise FactorError(f"{self.name} is categorical; narrow it with choices, not low/high")
            low = self.validate(self.low if low is None else low)
            high = self.validate(self.high if high is None else high)
        return replace(
            self,
            choices=self.choices if choices is None else choices,
            low=self.low if low is None else low,
            high=self.high if high is None else high,
            grid=self.grid if grid is None else tuple(grid),
        )

    def ablation_values(self) -> tuple[Any, ...]:
        """The values a one-factor-at-a-time ablation tries."""
        return self.choices if self.choices is not None else self.grid

    def to_tune(self) -> Any:
        """This factor as a Ray Tune search domain."""
        from ray import tune  # imported lazily: the CLI's `cases` and `trial` need no Ray

        if self.choices is not None:
            return tune.choice(list(self.choices))
        if self.integer:
            return (tune.lograndint if self.log else tune.randint)(int(self.low), int(self.high) + 1)
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)

    def to_optuna(self) -> od.BaseDistribution:
        """This factor as an Optuna distribution."""
        if self.choices is not None:
            return od.CategoricalDistribution(list(self.choices))
        if self.integer:
            return od.IntDistribution(int(self.low), int(self.high), log=self.log)
        return od.FloatDistribution(self.low, self.high, log=self.log)


def _to_number(value: Any, integer: bool) -> float | int:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    number = float(value)
    if integer:
        if not number.is_integer():
            raise ValueError("not whole")
        return int(number)
    return number


def _parse_like(text: str, example: Any) -> Any:
    """Parses CLI text as the type of ``example`` (bool before int: bool is an int in Python)."""
    lowered = text.strip().lower()
    try:
        if isinstance(example, bool):
            return True if lowered in _TRUE else False if lowered in _FALSE else None
        if isinstance(example, int):
            return int(lowered)
        if isinstance(example, float):
            return float(lowered)
    except ValueError:
        return None
    return text.strip()


def tune_space(space: Mapping[str, Factor]) -> dict[str, Any]:
    """A Ray Tune ``param_space`` over the given factors."""
    return {name: factor.to_tune() for name, factor in space.items()}


def optuna_space(space: Mapping[str, Factor]) -> dict[str, od.BaseDistribution]:
    """Optuna distributions over the given factors (for ``OptunaSearch(space=...)`` or ``study.ask``)."""
    return {name: factor.to_optuna() for name, factor in space.items()}


_VOCABULARY = (
    Factor(
        "hidden_size",
        "width of the bottleneck: code width, LSTM hidden size or channel width, per case",
        low=1,
        high=2048,
        log=True,
        integer=True,
    ),
    Factor(
        "activation",
        "nonlinearity of the hidden layers",
        choices=("relu", "leaky_relu", "elu", "gelu", "mish", "selu", "silu", "tanh"),
    ),
    Factor("normalization", "normalisation layers inside the model", choices=("none", "batch", "layer", "group")),
    Factor("lr", "learning rate", low=1e-7, high=1.0, log=True),
    Factor(
        "optimizer",
        "update rule (sgd_momentum is SGD with momentum 0.9)",
        choices=("sgd", "sgd_momentum", "adam", "adamw", "rmsprop"),
    ),
    Factor("weight_decay", "L2 penalty handed to the optimizer", choices=(0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
    Factor(
        "transform",
        "invertible data transform around the model: per-sample standardisation or differencing",
        choices=("none", "standardize", "difference"),
    ),
    Factor("batch_size", "samples per update (or per memorised batch)", low=1, high=4096, log=True, integer=True),
    Factor("decoder", "decoder architecture", choices=("conv", "fc")),
    Factor(
        "loss_terms",
        "terms of the training loss besides the MSE",
        choices=("mse", "mse+frobenius", "mse+segmentation", "mse+frobenius+segmentation"),
    ),
    Factor("early_stopping", "stop when the error stops improving and keep the best weights", choices=(False, True)),
)

FACTORS: dict[str, Factor] = {factor.name: factor for factor in _VOCABULARY}
"""The vocabulary, by name."""
