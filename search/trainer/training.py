"""The training itself: a case's model, data and optimizer under one config, its steps and its measurements.

:func:`~search.trainer.trial.run_trial` drives it epoch by epoch; :func:`~search.trainer.check.check_case` runs one
of its steps to check a case before a sweep. Between measurements nothing here reads a value off the device: the
losses stay tensors, so a GPU runs ahead of Python instead of waiting for it at every step.

Example:
    >>> import torch
    >>> from spaces import get_case
    >>> case = get_case("lstm_mean_prediction")
    >>> config = case.config()
    >>> data = case.make_data(0, case.budget("quick"), config)
    >>> trainer = Trainer(case, config, case.build_model(config), data, torch.device("cpu"), torch.Generator())
    >>> loss = trainer.epoch()
    >>> record = trainer.measure(1, loss)
    >>> record.epoch, record.finite, record.rel_error > 0
    (1, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from search.trainer.metrics import DeadUnitProbe, Epoch, ErrorMeter, gradient_stats
from search.trainer.optimizers import make_optimizer
from spaces.case import Case, Data
from spaces.transforms import transform

__all__ = ["SAMPLES", "Trainer"]

SAMPLES = 3
"""Memorised samples kept beside their reconstructions for a trial's figures."""


class Trainer:
    """One config of one case, ready to train: its model, data (on the device, in model space) and optimizer.

    Args:
        case: the failure case.
        config: a full, validated config of the case.
        model: the case's model under ``config``, on ``device``.
        data: the case's data (on the CPU).
        device: where to train.
        generator: the trial's CPU generator: the batch order and fresh batches.
    """

    def __init__(
        self,
        case: Case,
        config: Mapping[str, Any],
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
        self.inputs, self.targets = self._to_device(data.inputs), self._to_device(data.targets)
        # The memorised set in model space, transformed once: it is measured, and trained on whole or in minibatches.
        # Every transform works per sample, so a minibatch of the transformed set is the transformed minibatch.
        self.memorised = transform(self.transform, self.inputs, self.targets, case.time_dim)
        self.errors = ErrorMeter(self.targets, case.variance_dims)
        self.probe = DeadUnitProbe(model)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch."""
        n, size = len(self.inputs), self.data.batch_size
        if self.data.fresh_batch is not None or size is None or size >= n:
            return 1
        return math.ceil(n / size)

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch's training batches, (inputs, targets) in model space."""
        if self.data.fresh_batch is not None:
            inputs, targets = self.data.fresh_batch(self.generator)
            pair = transform(self.transform, self._to_device(inputs), self._to_device(targets), self.case.time_dim)
            yield pair.inputs, pair.targets
            return
        if self.steps_per_epoch == 1:
            yield self.memorised.inputs, self.memorised.targets
            return
        order = self._to_device(torch.randperm(len(self.inputs), generator=self.generator))
        inputs, targets = self.memorised.inputs[order], self.memorised.targets[order]
        for start in range(0, len(order), self.data.batch_size):
            yield inputs[start : start + self.data.batch_size], targets[start : start + self.data.batch_size]

    def step(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """One optimizer step on a batch; returns its loss, still on the device (reading it would wait for it)."""
        loss = self.case.loss(self.model(inputs), targets, self.config)
        # The model's own zero_grad: the same parameters as the optimizer's, without the optimizer's profiler
        # hooks, which cost a tenth of a step on the small cases.
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def epoch(self) -> Tensor:
        """Trains one epoch; returns its last step's loss, on the device."""
        self.model.train()
        for inputs, targets in list(self.batches()):
            loss = self.step(inputs, targets)
        return loss

    def measure(self, epoch: int, loss: Tensor) -> Epoch:
        """Measures the memorised set right after ``epoch``, whose last step had ``loss`` (and left its gradients)."""
        grads = gradient_stats(self.model)
        self.model.eval()
        with torch.no_grad(), self.probe:
            output = self.memorised.inverse(self.model(self.memorised.inputs))
        stats = self.errors(output)
        loss_value = loss.item()
        finite = math.isfinite(loss_value) and math.isfinite(grads["grad_first"]) and bool(torch.isfinite(output).all())
        return Epoch(epoch=epoch, loss=loss_value, dead_fraction=self.probe.fraction, finite=finite, **stats, **grads)

    def samples(self, count: int = SAMPLES) -> dict[str, list]:
        """The first ``count`` memorised samples: ``input``, ``target`` and the model's ``output``, in the data's
        units and shapes, each a nested list of shape ``(count, *sample_shape)`` for a figure to draw."""
        self.model.eval()
        with torch.no_grad():
            pair = transform(self.transform, self.inputs[:count], self.targets[:count], self.case.time_dim)
            output = pair.inverse(self.model(pair.inputs))
        return {
            name: tensor.detach().float().cpu().tolist()
            for name, tensor in (("input", self.inputs[:count]), ("target", self.targets[:count]), ("output", output))
        }

    def _to_device(self, tensor: Tensor) -> Tensor:
        # From pinned memory a copy to the GPU is queued, not waited for; from pageable memory it waits for the GPU.
        if self.device.type == "cuda" and tensor.device.type == "cpu":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)
