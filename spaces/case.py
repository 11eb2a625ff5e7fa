"""The case interface: one documented (or user-brought) failure, everything the shared trainer needs.

A case says what differs between failures and nothing else: its data, its model built from a config, its
loss when it is not plain MSE, the failing baseline, the documented fix, its budgets and its threshold. The
trainer in ``search`` does the rest, so a case module has no training loop.

Example (a complete case; see README for running it):
    >>> import torch
    >>> from torch import nn
    >>> from spaces import FACTORS, Budget, Case, Data
    >>> class TinyIdentity(Case):
    ...     name = "tiny_identity"
    ...     title = "A linear layer learns the identity"
    ...     symptom = "plateau"
    ...     space = {"lr": FACTORS["lr"].narrow(grid=(1e-3, 1e-1)), "optimizer": FACTORS["optimizer"]}
    ...     baseline = {"lr": 1e-3, "optimizer": "sgd"}
    ...     fix = {"lr": 1e-1}
    ...     budgets = {"quick": Budget(epochs=50), "full": Budget(epochs=200)}
    ...     def make_data(self, seed, budget, config):
    ...         x = torch.rand(64, 8, generator=torch.Generator().manual_seed(seed))
    ...         return Data(x, x)
    ...     def build_model(self, config):
    ...         return nn.Linear(8, 8)
    >>> TinyIdentity().config({"lr": "0.01"})["lr"]
    0.01
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from spaces.factors import Factor, FactorError

__all__ = ["PROFILES", "Budget", "Case", "Data"]

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Budget:
    """How long a trial trains and how much data it memorises, for one profile.

    Attributes:
        epochs: passes over the memorised data (or fresh batches drawn, for generated data).
        samples: data-set size where the case scales it (rows, signals, volumes); None keeps the case's own.
        stop_loss: stop early once the training loss falls below this (seed 004's "loss < 1e-4" rule).
    """

    epochs: int
    samples: int | None = None
    stop_loss: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"a budget needs epochs >= 1, got {self.epochs}")


@dataclass
class Data:
    """What a trial memorises.

    Attributes:
        inputs, targets: the fixed set to reproduce; every epoch's metrics are measured on it.
        batch_size: minibatch size for an epoch over ``inputs``; None trains on the whole set at once.
        fresh_batch: for generated data (seed 001): draws a new (inputs, targets) batch from the trial's
            generator; each epoch is then one step on a fresh batch, and ``inputs``/``targets`` are the fixed
            validation batch.
    """

    inputs: Tensor
    targets: Tensor
    batch_size: int | None = None
    fresh_batch: Callable[[torch.Generator], tuple[Tensor, Tensor]] | None = field(default=None, repr=False)


class Case:
    """Base class of a failure case. Subclasses set the class attributes and the two abstract methods.

    Attributes:
        name: registry key, used on the command line.
        title: one line saying what fails.
        source: where the failure is documented (a thread, a file of yours).
        symptom: the symptom the baseline must show (a detector name from ``search.trainer.symptoms``).
        space: the factors this case searches, narrowed from :data:`spaces.FACTORS`.
        baseline: the failing config, one value per factor of ``space``.
        fix: the documented fix, as factor changes from the baseline.
        budgets: a :class:`Budget` per profile (``quick`` for CPU sweeps and CI, ``full`` for the thread's numbers).
        threshold: a trial is fixed when its final relative error (MSE over the target's variance) is below it.
        variance_dims: axes over which "predicting the mean" is taken; relative error 1 means no better than it.
        time_dim: axis along which the ``difference`` transform runs.
        optimizer_options: extra keyword arguments for the optimizer (such as Adam's betas).
        task_factors: factors that change what is memorised (seed 000's batch of n signals) rather than how it
            is learnt. The ablation tries them as a diagnostic ("one signal fits"), the search holds them at the
            baseline, and the analysis never ranks them as fixes: memorising less is not memorising.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    source: ClassVar[str] = ""
    symptom: ClassVar[str] = ""
    space: ClassVar[Mapping[str, Factor]] = {}
    baseline: ClassVar[Mapping[str, Any]] = {}
    fix: ClassVar[Mapping[str, Any]] = {}
    budgets: ClassVar[Mapping[str, Budget]] = {}
    threshold: ClassVar[float] = 0.05
    variance_dims: ClassVar[tuple[int, ...]] = (0,)
    time_dim: ClassVar[int] = -1
    optimizer_options: ClassVar[Mapping[str, Any]] = {}
    task_factors: ClassVar[tuple[str, ...]] = ()

    def make_data(self, seed: int, budget: Budget, config: Mapping[str, Any]) -> Data:
        """The data to memorise, deterministic in ``seed`` (``config`` for factors that shape data, e.g. batch size)."""
        raise NotImplementedError

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        """The model under ``config`` (a full, validated config)."""
        raise NotImplementedError

    def loss(self, output: Tensor, target: Tensor, config: Mapping[str, Any]) -> Tensor:
        """The training loss; plain MSE unless the case documents another."""
        return nn.functional.mse_loss(output, target)

    # ---- derived behaviour, shared by every case ----

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The baseline with ``overrides`` applied, every value validated against this case's space."""
        config = dict(self.baseline)
        for name, value in (overrides or {}).items():
            config[name] = value
        return {name: self.factor(name).validate(value) for name, value in config.items()}

    def factor(self, name: str) -> Factor:
        try:
            return self.space[name]
        except KeyError:
            raise FactorError(
                f"unknown factor {name!r} for case {self.name!r}; choose from {sorted(self.space)}"
            ) from None

    def search_space(self) -> dict[str, Factor]:
        """The factors the Optuna search varies: the space less the task factors."""
        return {name: f for name, f in self.space.items() if name not in self.task_factors}

    def fixed_config(self) -> dict[str, Any]:
        """The baseline with the documented fix applied."""
        return self.config(self.fix)

    def budget(self, profile: str) -> Budget:
        try:
            return self.budgets[profile]
        except KeyError:
            raise ValueError(f"unknown profile {profile!r}; choose from {sorted(self.budgets)}") from None

    def check(self) -> None:
        """Raises if the declaration is inconsistent (called when a case is registered or loaded)."""
        missing = [a for a in ("name", "space", "baseline", "budgets") if not getattr(self, a, None)]
        if missing:
            raise TypeError(f"case {type(self).__name__} must set {', '.join(missing)}")
        missing, extra = sorted(set(self.space) - set(self.baseline)), sorted(set(self.baseline) - set(self.space))
        if missing or extra:
            raise TypeError(
                f"case {self.name!r}: baseline must give one value per factor of its space; "
                f"missing {missing}, extra {extra}"
            )
        unknown = sorted(set(self.task_factors) - set(self.space))
        if unknown:
            raise TypeError(f"case {self.name!r}: task_factors must be factors of its space, got {unknown}")
        self.config(self.fix)  # validates baseline and fix
        for method in ("make_data", "build_model"):
            if getattr(type(self), method) is getattr(Case, method):
                raise TypeError(f"case {self.name!r} must define {method}()")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (``overfit cases --json``)."""
        return {
            "name": self.name,
            "title": self.title,
            "source": self.source,
            "symptom": self.symptom,
            "threshold": self.threshold,
            "baseline": dict(self.baseline),
            "fix": dict(self.fix),
            "task_factors": list(self.task_factors),
            "factors": {
                name: list(f.choices)
                if f.categorical
                else {"low": f.low, "high": f.high, "log": f.log, "grid": list(f.grid)}
                for name, f in self.space.items()
            },
            "budgets": {p: asdict(b) for p, b in self.budgets.items()},
        }
