"""One trial: train a case's model under one config to memorise its data, measure it, judge the end.

This is the single trainer every case shares: a case brings its data, model and loss, never a training loop. A
trial measures the epochs its judges read (``cadence``), trains in between without reading anything off the
device, and judges its measured history (``judge``).

Example (the documented fix of one case, two seconds on one core):
    >>> from spaces import get_case
    >>> result = run_trial(get_case("volume_divergence"), {"loss_terms": "mse", "lr": 2e-3}, seed=0, threads=1)
    >>> result.outcome, result.fixed, result.epochs, len(result.history) < result.epochs
    ('fixed', True, 150, True)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from search.trainer.cadence import Cadence
from search.trainer.judge import judge
from search.trainer.metrics import Epoch
from search.trainer.symptoms import Symptom
from search.trainer.training import Trainer
from spaces.case import Budget, Case

__all__ = ["TrialResult", "json_safe", "pick_device", "run_trial"]

# Early stopping (the ``early_stopping`` factor): patience as a share of the budget, never under 5 epochs.
_PATIENCE_SHARE = 0.1
_MIN_PATIENCE = 5


@dataclass
class TrialResult:
    """How one trial went. ``outcome`` is ``fixed``, ``error`` or the most telling symptom.

    ``rel_error`` is judged on the final model (the restored best one under early stopping);
    ``stopped`` says why training ended before the budget: ``pruned``, ``stop_loss``, ``early_stopping``,
    ``non_finite``, or None when the budget ran out. ``epochs`` is the number of epochs trained; ``history`` holds
    the measured ones. ``samples`` holds the first few memorised samples, ``input``, ``target`` and ``output``,
    each a nested list of shape ``(count, *sample_shape)`` in the data's units.
    """

    case: str
    config: dict[str, Any]
    seed: int
    profile: str
    rel_error: float
    best_rel_error: float
    mse: float
    fixed: bool
    outcome: str
    symptoms: list[Symptom]
    epochs: int
    seconds: float
    device: str
    stopped: str | None = None
    error: str | None = None
    history: list[Epoch] = field(default_factory=list, repr=False)
    samples: dict[str, list] | None = field(default=None, repr=False)

    def to_json(self, history: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become None, as JSON has no NaN)."""
        data = asdict(self)
        if not history:
            data.pop("history")
            data.pop("samples")
        return json_safe(data)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts and lists) replaced by None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_trial(
    case: Case,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    profile: str = "quick",
    device: str | None = None,
    threads: int | None = None,
    on_epoch: Callable[[Epoch], bool] | None = None,
    report_every: int | None = None,
) -> TrialResult:
    """Trains ``case``'s model under its baseline with ``overrides`` applied, and judges the result.

    Configuration errors (unknown factor, bad value, unknown profile) raise before any work; anything that goes
    wrong while building or training is recorded as outcome ``error``, never raised.

    Args:
        case: the failure case.
        overrides: factor values that differ from the case's baseline.
        seed: seeds the data, the initial weights and the batch order.
        profile: ``quick`` or ``full`` budget.
        device: torch device; default CUDA when present, else CPU.
        threads: torch CPU threads (a trial should use the CPUs it holds); default: torch's current setting.
        on_epoch: called with each measured epoch's record (not with one that ends the trial as non-finite, early
            stopped or at its stop loss); returning True stops the trial as ``pruned``.
        report_every: epochs that are multiples of it are measured (and handed to ``on_epoch``); the other
            measured epochs are those :class:`~search.trainer.cadence.Cadence` picks.
    """
    config = case.config(overrides)
    budget = case.budget(profile)
    cadence = Cadence(budget.epochs, report_every, every_epoch=bool(config.get("early_stopping")))
    dev = pick_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN to expose reads of uninitialised memory: a
    # debugging aid that costs 5-10% of a trial and changes no result of a correct op.
    torch.utils.deterministic.fill_uninitialized_memory = False
    history: list[Epoch] = []
    started = time.perf_counter()
    stopped = error = samples = None
    final: Epoch | None = None
    epochs = 0
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        data = case.make_data(seed, budget, config)
        model = case.build_model(config).to(dev)
        trainer = Trainer(case, config, model, data, dev, generator)
        keeper = _BestKeeper(budget.epochs) if config.get("early_stopping") else None
        stopped, epochs = _train(trainer, budget, cadence, keeper, on_epoch, history)
        if keeper is not None and keeper.best is not None and keeper.best is not history[-1]:
            model.load_state_dict(keeper.state)  # early stopping keeps the best weights, not the last
            final = keeper.best
        samples = trainer.samples()
    except Exception as exc:  # a trial that raises is recorded, never takes the sweep down
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    final = final or (history[-1] if history else Epoch())
    verdict = judge(history, case.threshold, error=error, final=final)
    return TrialResult(
        case=case.name,
        config=config,
        seed=seed,
        profile=profile,
        rel_error=verdict.rel_error,
        best_rel_error=verdict.best_rel_error,
        mse=final.mse,
        fixed=verdict.fixed,
        outcome=verdict.outcome,
        symptoms=verdict.symptoms,
        epochs=epochs or (history[-1].epoch if history else 0),  # raised mid-way: at least its last record
        seconds=seconds,
        device=str(dev),
        stopped=stopped,
        error=error,
        history=history,
        samples=samples,
    )


def _train(
    trainer: Trainer,
    budget: Budget,
    cadence: Cadence,
    keeper: _BestKeeper | None,
    on_epoch: Callable[[Epoch], bool] | None,
    history: list[Epoch],
) -> tuple[str | None, int]:
    """Trains epoch by epoch, appending the measured ones to ``history``; returns (why it stopped, epochs run)."""
    unread: list[tuple[int, Tensor]] = []  # the losses of the epochs since the last measurement, on the device
    for epoch in range(1, budget.epochs + 1):
        loss = trainer.epoch()
        # The stop-loss rule is per epoch (seed 004 counts the iterations to a loss under 1e-4): it reads every loss.
        reached = budget.stop_loss is not None and loss.item() < budget.stop_loss
        if not (reached or cadence.due(epoch)):
            unread.append((epoch, loss))
            continue
        losses = _read(unread)
        unread.clear()
        previous = history[-1] if history else None
        # A loss that went non-finite between measurements is kept as its own epoch: its loss is all there is of it.
        broken = next((Epoch(epoch=e, loss=v, finite=False) for e, v in losses if not math.isfinite(v)), None)
        if broken is not None:
            history.append(broken)
        record = trainer.measure(epoch, loss)
        history.append(record)
        if previous is not None:
            cadence.watch(epoch, previous.loss, [v for _, v in losses] + [record.loss])
        if keeper is not None:
            keeper.update(record, trainer.model)
        if broken is not None or not record.finite or not math.isfinite(record.rel_error):
            return "non_finite", epoch
        if keeper is not None and keeper.exhausted(epoch):
            return "early_stopping", epoch
        if reached:
            return "stop_loss", epoch
        if on_epoch is not None and on_epoch(record):
            return "pruned", epoch
    return None, budget.epochs


def _read(unread: list[tuple[int, Tensor]]) -> list[tuple[int, float]]:
    """(epoch, loss) of the unmeasured epochs, read off the device at once."""
    if not unread:
        return []
    values = torch.stack([loss for _, loss in unread]).tolist()
    return [(epoch, value) for (epoch, _), value in zip(unread, values, strict=True)]


class _BestKeeper:
    """Early stopping: remembers the best epoch's weights; patience runs out after no gain for a while."""

    def __init__(self, epochs: int) -> None:
        self.patience = max(_MIN_PATIENCE, int(_PATIENCE_SHARE * epochs))
        self.best: Epoch | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, record: Epoch, model: torch.nn.Module) -> None:
        if (
            record.finite
            and math.isfinite(record.rel_error)
            and (self.best is None or record.rel_error < self.best.rel_error)
        ):
            self.best, self.state = record, copy.deepcopy(model.state_dict())

    def exhausted(self, epoch: int) -> bool:
        return self.best is not None and epoch - self.best.epoch >= self.patience
