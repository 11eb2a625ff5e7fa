"""One trial: train a case's model under one config to memorise its data, measure every epoch, judge the end.

This is the single trainer every case shares (DESIGN.md, "One trainer, many cases").

Example:
    >>> from spaces import get_case
    >>> result = run_trial(get_case("lstm_mean_prediction"), {"hidden_size": 100, "lr": 1e-2}, seed=0)
    >>> result.outcome, result.fixed  # doctest: +SKIP
    ('fixed', True)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from search.trainer.metrics import DeadUnitProbe, Epoch, gradient_stats, output_stats
from search.trainer.optimizers import make_optimizer
from search.trainer.symptoms import Symptom, detect, outcome
from spaces.case import Case, Data
from spaces.transforms import Transformed, transform

__all__ = ["TrialResult", "json_safe", "pick_device", "run_trial"]

# Early stopping (the ``early_stopping`` factor): patience as a share of the budget, never under 5 epochs.
_PATIENCE_SHARE = 0.1
_MIN_PATIENCE = 5


@dataclass
class TrialResult:
    """How one trial went. ``outcome`` is ``fixed``, ``error`` or the most telling symptom.

    ``rel_error`` is judged on the final model (the restored best one under early stopping);
    ``stopped`` says why training ended before the budget: ``pruned``, ``stop_loss``, ``early_stopping``,
    ``non_finite``, or None when the budget ran out.
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
    samples: dict[str, list[list[float]]] | None = field(default=None, repr=False)

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
        on_epoch: called with each epoch's record; returning True stops the trial as ``pruned``.
    """
    config = case.config(overrides)
    budget = case.budget(profile)
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
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        data = case.make_data(seed, budget, config)
        model = case.build_model(config).to(dev)
        trainer = _Trainer(case, config, model, data, dev, generator)
        keeper = _BestKeeper(budget.epochs) if config.get("early_stopping") else None
        for epoch in range(1, budget.epochs + 1):
            record = trainer.epoch(epoch)
            history.append(record)
            if keeper is not None:
                keeper.update(record, model)
            if not record.finite or not math.isfinite(record.rel_error):
                stopped = "non_finite"
                break
            if keeper is not None and keeper.exhausted(epoch):
                stopped = "early_stopping"
                break
            if budget.stop_loss is not None and record.loss < budget.stop_loss:
                stopped = "stop_loss"
                break
            if on_epoch is not None and on_epoch(record):
                stopped = "pruned"
                break
        if keeper is not None and keeper.best is not None and keeper.best is not history[-1]:
            model.load_state_dict(keeper.state)  # early stopping keeps the best weights, not the last
            final = keeper.best
        samples = trainer.samples()
    except Exception as exc:  # a trial that raises is recorded, never takes the sweep down
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    final = final or (history[-1] if history else Epoch())
    rel_error = final.rel_error
    fixed = error is None and math.isfinite(rel_error) and rel_error < case.threshold
    symptoms = detect(history, case.threshold) if history else []
    return TrialResult(
        case=case.name,
        config=config,
        seed=seed,
        profile=profile,
        rel_error=rel_error,
        best_rel_error=min((r.rel_error for r in history if math.isfinite(r.rel_error)), default=math.nan),
        mse=final.mse,
        fixed=fixed,
        outcome=outcome(fixed, symptoms, error),
        symptoms=symptoms,
        epochs=len(history),
        seconds=seconds,
        device=str(dev),
        stopped=stopped,
        error=error,
        history=history,
        samples=samples,
    )


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


class _Trainer:
    """The per-epoch work: training steps, then a measurement of the memorised set."""

    def __init__(
        self,
        case: Case,
        config: dict[str, Any],
        model: torch.nn.Module,
        data: Data,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        self.case, self.config, self.model, self.data = case, config, model, data
        self.device, self.generator = device, generator
        self.transform = config.get("transform", "none")
        self.optimizer = make_optimizer(
            config.get("optimizer", "adam"),
            model.parameters(),
            lr=config.get("lr", 1e-3),
            weight_decay=config.get("weight_decay", 0.0),
            options=case.optimizer_options,
        )
        self.inputs, self.targets = data.inputs.to(device), data.targets.to(device)
        # The memorised set in model space, transformed once: it is measured every epoch, and trained on
        # whole when there are no minibatches.
        self.memorised = transform(self.transform, self.inputs, self.targets, case.time_dim)
        self.probe = DeadUnitProbe(model)

    def _batches(self) -> Iterator[Transformed]:
        """The epoch's training batches, in model space."""
        if self.data.fresh_batch is not None:
            inputs, targets = self.data.fresh_batch(self.generator)
            yield transform(self.transform, inputs.to(self.device), targets.to(self.device), self.case.time_dim)
            return
        n, size = len(self.inputs), self.data.batch_size
        if size is None or size >= n:
            yield self.memorised
            return
        order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, n, size):
            index = order[start : start + size]
            yield transform(self.transform, self.inputs[index], self.targets[index], self.case.time_dim)

    def samples(self, count: int = 3, length: int = 1024) -> dict[str, list[list[float]]]:
        """A few memorised samples beside their reconstructions (flattened), for the figures of a sweep."""
        self.model.eval()
        with torch.no_grad():
            pair = transform(self.transform, self.inputs[:count], self.targets[:count], self.case.time_dim)
            output = pair.inverse(self.model(pair.inputs))
        return {
            name: [row[:length].tolist() for row in tensor.detach().float().flatten(1).cpu()]
            for name, tensor in (("input", self.inputs[:count]), ("target", self.targets[:count]), ("output", output))
        }

    def epoch(self, epoch: int) -> Epoch:
        self.model.train()
        batches = list(self._batches())
        for step, pair in enumerate(batches):
            loss = self.case.loss(self.model(pair.inputs), pair.targets, self.config)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if step == len(batches) - 1:  # gradient statistics of the epoch's last step only: they cost a pass
                grads = gradient_stats(self.model)
            self.optimizer.step()
        self.model.eval()
        with torch.no_grad(), self.probe:
            output = self.memorised.inverse(self.model(self.memorised.inputs))
        stats = output_stats(output, self.targets, self.case.variance_dims)
        loss_value = loss.item()
        finite = math.isfinite(loss_value) and math.isfinite(grads["grad_first"]) and bool(torch.isfinite(output).all())
        return Epoch(epoch=epoch, loss=loss_value, dead_fraction=self.probe.fraction, finite=finite, **stats, **grads)
