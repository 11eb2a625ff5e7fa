"""Collapse pruning: an Optuna pruner over the symptom rules, and the Tune scheduler that lets it stop trials.

:class:`CollapsePruner` is a plain ``optuna.pruners.BasePruner``: a search trial is reported through
:meth:`CollapsePruner.report` (Optuna's ``trial.report`` plus what a single value cannot carry: the outputs'
spread and the budget) and judged by Optuna's ``trial.should_prune()``. The ablation's trials are no Optuna trials;
they are judged by :meth:`CollapsePruner.rule` on the same reports. :class:`PruningScheduler` returns STOP when its
searcher says a trial is to be pruned; Tune runs a scheduler's ``on_trial_result`` before the searcher's.

Example (the pruner alone, as Optuna tests pruners):
    >>> import optuna
    >>> pruner = CollapsePruner()
    >>> trial = optuna.create_study(pruner=pruner).ask()
    >>> for epoch in range(1, 41):
    ...     pruner.report(trial, epoch, rel_error=1.0, spread=0.01, budget=100)
    >>> trial.should_prune()
    True
    >>> pruner.rule({e: 1.0 for e in range(1, 41)}, {e: 0.01 for e in range(1, 41)}, budget=100)
    'stuck at the mean: relative error 1 → 1 over epochs 30-40 (budget 100), spread 0.01 (0.01 at epoch 20)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.trainer.metrics import Epoch
from search.trainer.symptoms import Collapse

__all__ = ["CollapsePruner", "PruningScheduler"]


@dataclass
class CollapsePruner(BasePruner):
    """Prunes a trial that went non-finite or blew up, or that sits at or above the mean with no way out.

    Reads a trial's relative error and spread by epoch and its budget in epochs. The window is the last
    ``patience`` share of the budget. A trial is pruned when:

      * its latest relative error is NaN or inf (a NaN never recovers), or, after ``warmup``, above ``blow_up``
        (1e5 mean-predictors' worth: the ``diverged`` rule's blow-up);
      * after ``warmup``, it was clearly worse than the mean (relative error >= ``far``) throughout the window,
        is not leaving the mean, and either did not fall by ``min_gain`` (stuck: seed 003's scale-blind layer
        at 2) or, at the window's own log-linear pace, would still be worse than the mean when its budget ends
        (hopeless: seed 004 searched at a tiny lr, 30x the mean and crawling);
      * after ``stuck_warmup``, every epoch of the window is ``collapsed`` or no better than the mean, it is not
        leaving the mean, its error did not fall by ``min_gain``, and its outputs are not creeping away from the
        mean either (stuck at the mean).

    "Leaving the mean" is the spread (how much outputs vary across samples, against the targets) growing by
    ``min_spread_gain`` over the window, or to ``spread_growth`` times its start once above ``min_spread``.
    "Creeping away" is the spread, above ``min_spread``, at least ``creep`` times what it was at half the trial's
    age. These, and the later ``stuck_warmup``, keep fixes that sit at the mean for a long stretch before
    memorising from being cut: seed 000's ELU fix leaves the mean after a third to half of its budget, its spread
    creeping up from 0.004; seed 001's SGD at lr 0.1 sits at 1.01 from 12% to 72% of its budget while the spread
    doubles, then memorises. A truly stuck trial's spread holds within a few percent (a dead ReLU layer's is
    constant). Leaving the mean can be abrupt (memorising starts once the outputs break their symmetry); getting
    from far worse than the mean to memorised cannot, it needs a fall that the window's pace shows, hence the
    earlier ``warmup``. docs/benchmarks.md has how the thresholds were chosen.

    Attributes:
        warmup: share of the budget before a blow-up or a far-worse-than-the-mean prune.
        stuck_warmup: share of the budget before a stuck-at-the-mean prune.
        patience: share of the budget the window spans.
        min_gain: relative fall of the error over the window that counts as progress.
        min_spread_gain: absolute growth of the spread over the window that counts as leaving the mean.
        spread_growth, min_spread: relative growth of the spread (once it is above ``min_spread``) that does.
        creep: growth of the spread since half the trial's age that counts as creeping away from the mean.
        far: a relative error at or above this is clearly worse than predicting the mean.
        blow_up: a relative error above this, after the warm-up, is pruned at once.
        collapse: the symptom rule.
    """

    warmup: float = 0.15
    stuck_warmup: float = 0.4
    patience: float = 0.1
    min_gain: float = 0.02
    min_spread_gain: float = 0.02
    spread_growth: float = 1.5
    min_spread: float = 1e-3
    creep: float = 1.1
    far: float = 1.5
    blow_up: float = 1e5
    collapse: Collapse = field(default_factory=Collapse)
    # What Optuna's single intermediate value cannot carry, per (study, trial number): spreads by epoch, budget.
    _extra: dict[tuple[str, int], tuple[dict[int, float], int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def report(self, trial: optuna.Trial, epoch: int, rel_error: float, spread: float, budget: int) -> None:
        """Reports one epoch of a search trial: its relative error to Optuna, its spread and budget to the pruner."""
        trial.report(rel_error, epoch)
        spreads, _ = self._extra.setdefault((trial.study.study_name, trial.number), ({}, budget))
        spreads[epoch] = spread

    def forget(self, study_name: str, number: int) -> None:
        """Drops what :meth:`report` kept of a finished trial."""
        self._extra.pop((study_name, number), None)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        spreads, budget = self._extra.get((study.study_name, trial.number), ({}, max(values, default=0)))
        return bool(values) and self.rule(values, spreads, budget) is not None

    def should_stop(self, values: dict[int, float], spreads: dict[int, float], budget: int) -> bool:
        """True when :meth:`rule` names a reason to stop."""
        return self.rule(values, spreads, budget) is not None

    def rule(self, values: dict[int, float], spreads: dict[int, float], budget: int) -> str | None:
        """Why the trial should stop now, in words with the figures that decided it, or None to let it run.

        Args:
            values: relative error by epoch (the epochs measured so far; they may skip).
            spreads: the outputs' spread by epoch (missing epochs count as NaN).
            budget: the trial's epochs.
        """
        steps = sorted(values)
        now = steps[-1]
        last = values[now]
        if not math.isfinite(last):
            return f"non-finite: relative error {last} at epoch {now}"
        start = now - max(1, math.ceil(self.patience * budget))  # the window, in epochs
        if now < self.warmup * budget or steps[0] > start:
            return None
        if last > self.blow_up:
            return f"blew up: relative error {last:.3g} > {self.blow_up:.0e} at epoch {now} (budget {budget})"
        recent = [Epoch(epoch=s, rel_error=values[s], spread=spreads.get(s, math.nan)) for s in steps if s >= start]
        first, end = recent[0], recent[-1]
        if self._leaving_the_mean(first, end):
            return None
        window = (
            f"relative error {first.rel_error:.3g} → {end.rel_error:.3g} over epochs {first.epoch}-{end.epoch} "
            f"(budget {budget})"
        )
        stuck = end.rel_error >= (1 - self.min_gain) * first.rel_error
        if all(e.rel_error >= self.far for e in recent):
            if stuck:
                return f"far worse than the mean and stuck: {window}"
            projected = self._projected(first, end, budget)
            if projected >= 1.0:
                return f"far worse than the mean and too slow: {window}; at that pace {projected:.3g} at the end"
            return None
        at_the_mean = all(e.rel_error >= 1.0 or self.collapse([e], threshold=0.0) for e in recent)
        if not (at_the_mean and stuck and now >= self.stuck_warmup * budget):
            return None
        half = max((s for s in steps if s <= now // 2), default=steps[0])
        then = spreads.get(half, math.nan)
        if self._creeping(then, end.spread):
            return None
        return f"stuck at the mean: {window}, spread {end.spread:.3g} ({then:.3g} at epoch {half})"

    def _leaving_the_mean(self, first: Epoch, end: Epoch) -> bool:
        if end.spread - first.spread > self.min_spread_gain:
            return True
        return end.spread >= self.min_spread and end.spread >= self.spread_growth * first.spread

    def _creeping(self, then: float, now: float) -> bool:
        return now >= self.min_spread and now >= self.creep * then

    @staticmethod
    def _projected(first: Epoch, end: Epoch, budget: int) -> float:
        """The relative error at the end of the budget, at the window's log-linear pace (inf when flat)."""
        if end.epoch == first.epoch:
            return 0.0  # one report in the window: no pace to project
        pace = math.log(end.rel_error / first.rel_error) / (end.epoch - first.epoch)
        return end.rel_error * math.exp(pace * (budget - end.epoch))


class PruningScheduler(FIFOScheduler):
    """A FIFO scheduler that stops a trial when its searcher's ``should_stop(trial_id, result)`` says so."""

    def __init__(self, searcher: Any) -> None:
        super().__init__()
        self.searcher = searcher

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its tuner; the searcher it asks holds live studies and threads

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self.searcher.should_stop(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
