"""Checking a case before a sweep: one training step, exactly as a trial takes it, on the case's baseline.

A case of your own can be wrong in ways a trial does not see: an output of shape (64, 1) against targets of
(64, 16) broadcasts in the loss and trains (and is judged ``collapsed``); data holding NaN is judged ``diverged``.
:func:`check_case` refuses such a case in one line that names it and what must hold, before anything starts, and
measures what one epoch of its training steps costs (the sweep starts the longest trials first).

Example:
    >>> from spaces import get_case
    >>> probe = check_case(get_case("lstm_mean_prediction"))
    >>> probe.parameters, probe.steps_per_epoch, probe.output_shape
    (510, 1, (1, 14, 5))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from search.trainer.training import Trainer
from spaces import Case, CaseError, Data

__all__ = ["CaseProbe", "check_case"]


@dataclass(frozen=True)
class CaseProbe:
    """What one training step of a case's baseline showed.

    Attributes:
        seconds_per_epoch: wall seconds of one epoch's training steps on the CPU at torch's current thread count:
            making the epoch's batches, and one step (the second) times the steps per epoch. Measured epochs cost
            more.
        parameters: trainable parameters of the baseline model.
        steps_per_epoch: optimizer steps in one epoch.
        output_shape: the model's output shape on its first training batch (the target's shape).
    """

    seconds_per_epoch: float
    parameters: int
    steps_per_epoch: int
    output_shape: tuple[int, ...]


def check_case(case: Case, profile: str = "quick", seed: int = 0) -> CaseProbe:
    """Builds ``case``'s baseline model and data and runs one training step the way a trial does (and a second,
    timed).

    Raises:
        CaseError: in one line naming the case, when the data (inputs or targets) hold NaN or inf, the model's
            output is not a tensor of the target's shape, the loss is not a finite scalar, or making the data,
            building the model or the step raised.
    """
    config = case.config()
    budget = case.budget(profile)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        data = _guard(case, "make_data()", lambda: case.make_data(seed, budget, config))
        if not isinstance(data, Data):
            raise CaseError(f"case {case.name!r}: make_data() must return a spaces.Data, got {type(data).__name__}")
        for name, tensor in (("inputs", data.inputs), ("targets", data.targets)):
            _check_finite(case, f"its data's {name}", tensor)
        model = _guard(case, "build_model()", lambda: case.build_model(config))
        trainer = _guard(
            case, "the trainer", lambda: Trainer(case, config, model, data, torch.device("cpu"), torch.Generator())
        )
        trainer.model.train()
        started = time.perf_counter()
        batches = _guard(case, "its training batches", lambda: list(trainer.batches()))
        batch_seconds = time.perf_counter() - started
        inputs, targets = batches[0]
        if data.fresh_batch is not None:
            _check_finite(case, "its fresh batch's inputs", inputs)
            _check_finite(case, "its fresh batch's targets", targets)
        with torch.no_grad():  # the step's forward pass and loss, looked at before stepping
            output = _guard(case, "the model's forward pass", lambda: trainer.model(inputs))
            if not isinstance(output, Tensor):
                raise CaseError(f"case {case.name!r}: the model must return a tensor, got {type(output).__name__}")
            if output.shape != targets.shape:
                raise CaseError(
                    f"case {case.name!r}: the model's output must have the target's shape, got "
                    f"{tuple(output.shape)} against {tuple(targets.shape)}"
                )
            loss = _guard(case, "loss()", lambda: case.loss(output, targets, config))
            _check_loss(case, loss)
        _check_loss(case, _guard(case, "the training step", lambda: trainer.step(inputs, targets)))
        # The first step pays once for kernel selection and allocations: the second is the one a trial repeats.
        inputs, targets = batches[1 % len(batches)]
        started = time.perf_counter()
        trainer.step(inputs, targets)
        step_seconds = time.perf_counter() - started
    return CaseProbe(
        seconds_per_epoch=batch_seconds + step_seconds * trainer.steps_per_epoch,
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        steps_per_epoch=trainer.steps_per_epoch,
        output_shape=tuple(output.shape),
    )


def _guard(case: Case, what: str, work):
    """``work()``, with anything it raises turned into one line naming the case and where it failed."""
    try:
        return work()
    except CaseError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CaseError(f"case {case.name!r}: {what} must run, but raised {type(exc).__name__}: {message}") from exc


def _check_finite(case: Case, what: str, tensor: Tensor) -> None:
    bad = int((~torch.isfinite(tensor)).sum()) if tensor.is_floating_point() else 0
    if bad:
        raise CaseError(f"case {case.name!r}: {what} must be finite, got {bad} NaN or inf of {tensor.numel()} values")


def _check_loss(case: Case, loss: Tensor) -> None:
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise CaseError(f"case {case.name!r}: the loss must be a scalar (shape ()), got {shape}")
    if not math.isfinite(loss.item()):
        raise CaseError(f"case {case.name!r}: the loss must be finite on the first batch, got {loss.item()}")
