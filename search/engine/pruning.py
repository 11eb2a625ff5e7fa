"""Collapse pruning: an Optuna pruner on the symptom rules, and the Ray Tune pieces that let it stop trials.

Ray's ``OptunaSearch`` builds its study with a ``NopPruner`` and tells Optuna a trial stopped by a scheduler is
COMPLETE (DESIGN.md). Here the two cooperate: :class:`PruningScheduler` runs first on every result, asks
:class:`PruningOptunaSearch` whether Optuna's pruner wants the trial stopped (reporting the value to the Optuna
trial on the way), returns STOP if so; the searcher then records that trial PRUNED instead of COMPLETE.

Example (the pruner alone, as Optuna tests pruners):
    >>> import optuna
    >>> study = optuna.create_study(pruner=CollapsePruner())
    >>> trial = study.ask()
    >>> trial.set_user_attr("max_epochs", 100)
    >>> for epoch in range(1, 41):
    ...     report(trial, epoch, rel_error=1.0, spread=0.01)
    >>> trial.should_prune()
    True
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils.util import unflatten_dict

from search.trainer.metrics import Epoch
from search.trainer.symptoms import Collapse

__all__ = ["CollapsePruner", "PruningOptunaSearch", "PruningScheduler", "prunable_report", "report"]


def report(trial: optuna.Trial, epoch: int, rel_error: float, spread: float) -> None:
    """Reports one epoch to an Optuna trial the way :class:`CollapsePruner` reads it."""
    trial.report(rel_error, epoch)
    trial.set_user_attr(f"spread:{epoch}", spread)


@dataclass
class CollapsePruner(BasePruner):
    """Prunes a trial that went non-finite or blew up, or that sits at or above the mean with no way out.

    Reads the trial's intermediate values (relative error per epoch), its ``spread:{epoch}`` user attributes
    and its ``max_epochs`` user attribute (the budget), as written by :func:`report`. The window is the last
    ``patience`` share of the budget. A trial is pruned when:

      * its latest relative error is NaN or inf (the ``diverged`` rule: a NaN never recovers), or, after
        ``warmup``, above ``blow_up`` (that rule's blow-up: 1e5 mean-predictors' worth);
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
    age: a trial whose outputs keep learning to vary, however slowly. These, and the later ``stuck_warmup``,
    keep fixes that sit at the mean for a long stretch before memorising from being cut: seed 000's ELU fix and
    a low-lr fully connected decoder leave it after a third to half of their budget, their spread creeping up
    from 0.004; seed 001's Adam runs after a quarter; its SGD at lr 0.1 sits at 1.01 from 12% to 72% of its
    budget while the spread doubles, 8% a window, then memorises. A truly stuck trial's spread holds within a
    few percent (a dead ReLU layer's is constant). Leaving the mean can be abrupt (memorising starts once the
    outputs break their symmetry); getting from far worse than the mean to memorised cannot, it needs a fall
    that the window's pace shows, hence the earlier ``warmup``.

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

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        spreads = {s: trial.user_attrs.get(f"spread:{s}", math.nan) for s in values}
        return self.should_stop(values, spreads, int(trial.user_attrs.get("max_epochs", max(values))))

    def should_stop(self, values: dict[int, float], spreads: dict[int, float], budget: int) -> bool:
        """The rules on one trial's reports: relative error and spread by epoch, and its budget in epochs."""
        steps = sorted(values)
        last = values[steps[-1]]
        if not math.isfinite(last):
            return True
        start = steps[-1] - max(1, math.ceil(self.patience * budget))  # the window, in epochs (reports may skip)
        if steps[-1] < self.warmup * budget or steps[0] > start:
            return False
        if last > self.blow_up:
            return True
        recent = [Epoch(epoch=s, rel_error=values[s], spread=spreads.get(s, math.nan)) for s in steps if s >= start]
        first, end = recent[0], recent[-1]
        if self._leaving_the_mean(first, end):
            return False
        stuck = end.rel_error >= (1 - self.min_gain) * first.rel_error
        if all(e.rel_error >= self.far for e in recent):
            return stuck or self._hopeless(first, end, budget)
        at_the_mean = all(e.rel_error >= 1.0 or self.collapse([e], threshold=0.0) for e in recent)
        if not (at_the_mean and stuck and steps[-1] >= self.stuck_warmup * budget):
            return False
        half = max((s for s in steps if s <= steps[-1] // 2), default=steps[0])
        return not self._creeping(spreads.get(half, math.nan), end.spread)

    def _leaving_the_mean(self, first: Epoch, end: Epoch) -> bool:
        if end.spread - first.spread > self.min_spread_gain:
            return True
        return end.spread >= self.min_spread and end.spread >= self.spread_growth * first.spread

    def _creeping(self, then: float, now: float) -> bool:
        return now >= self.min_spread and now >= self.creep * then

    @staticmethod
    def _hopeless(first: Epoch, end: Epoch, budget: int) -> bool:
        """At the window's log-linear pace, still no better than the mean when the budget runs out."""
        if end.epoch == first.epoch:
            return False
        pace = math.log(end.rel_error / first.rel_error) / (end.epoch - first.epoch)
        return end.rel_error * math.exp(pace * (budget - end.epoch)) >= 1.0


# ---- Ray Tune cooperation -------------------------------------------------------------------------------


def prunable_report(result: dict[str, Any]) -> tuple[int, float, float, int] | None:
    """(epoch, relative error, spread, budget) of a trial's epoch report, or None for a result not to judge:
    the final one, or the last epoch's (nothing left to save)."""
    if result.get("final") or "epoch" not in result:
        return None
    if result["epoch"] == result.get("max_epochs") and result.get("finite", True):
        return None
    rel_error, spread = result.get("rel_error"), result.get("spread")
    return (
        int(result["epoch"]),
        math.nan if rel_error is None else float(rel_error),
        math.nan if spread is None else float(spread),
        int(result["max_epochs"]),
    )


class PruningOptunaSearch(OptunaSearch):
    """``OptunaSearch`` whose study uses a real pruner, and which records pruned trials as PRUNED.

    :class:`PruningScheduler` calls :meth:`should_prune` on every result before Tune calls this searcher's
    ``on_trial_result``; that call reports the epoch to the Optuna trial and asks the study's pruner.
    A trial that reports ``final`` carries its judged result; its value is told to Optuna as COMPLETE (or FAIL
    when it raised or went non-finite).

    With ``batch`` set, trials are asked in synchronous batches of that size (the last one cut to ``trials`` in
    all): a new batch is asked, whole, only once the last one has finished. TPE's suggestions then depend on which
    trials finished, never on the order in which they did, so the same seed gives the same configs beyond TPE's
    random start-up trials (``--deterministic``), at the cost of slots idling while a batch's slowest trial runs.
    """

    def __init__(
        self,
        *args: Any,
        pruner: BasePruner | None = None,
        study_attrs: dict[str, Any] | None = None,
        batch: int | None = None,
        trials: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._pruner = pruner or optuna.pruners.NopPruner()
        self._batch, self._trials, self._asked = batch, trials, 0
        self._ready: deque[optuna.Trial] = deque()
        self._in_flight: set[str] = set()
        self._study_attrs = study_attrs or {}
        self._pruned: set[str] = set()
        super().__init__(*args, **kwargs)

    def _setup_study(self, mode: Any) -> None:
        super()._setup_study(mode)
        self._ot_study.pruner = self._pruner
        for key, value in self._study_attrs.items():  # read by the analysis (which case, what counts as fixed)
            self._ot_study.set_user_attr(key, value)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self._batch:
            return super().suggest(trial_id)
        if not self._ready:
            if self._in_flight:
                return None  # Tune asks again later; the batch is still running
            # The whole batch is asked at once: each of its trials sees the same finished trials, whatever order
            # they then start and finish in.
            size = self._batch if self._trials is None else min(self._batch, self._trials - self._asked)
            if size <= 0:
                return Searcher.FINISHED
            self._ready.extend(self._ot_study.ask(fixed_distributions=self._space) for _ in range(size))
            self._asked += size
        ot_trial = self._ready.popleft()
        self._ot_trials[trial_id] = ot_trial
        self._in_flight.add(trial_id)
        return unflatten_dict(ot_trial.params)

    def should_prune(self, trial_id: str, result: dict[str, Any]) -> bool:
        ot_trial = self._ot_trials.get(trial_id)
        reported = prunable_report(result)
        if ot_trial is None or reported is None:
            return False
        epoch, rel_error, spread, budget = reported
        if not ot_trial.user_attrs.get("max_epochs"):
            ot_trial.set_user_attr("max_epochs", budget)
        report(ot_trial, epoch, rel_error, spread)
        if ot_trial.should_prune():
            self._pruned.add(trial_id)
            return True
        return False

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass  # reported in should_prune, which sees every result first

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._in_flight.discard(trial_id)
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        value = (result or {}).get("rel_error")
        summary = (result or {}).get("summary") or {}
        ot_trial.set_user_attr("outcome", "pruned" if trial_id in self._pruned else summary.get("outcome", "error"))
        ot_trial.set_user_attr("fixed", bool(summary.get("fixed", False)))
        if trial_id in self._pruned:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        elif error or value is None or not (result or {}).get("final"):
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        else:
            self._ot_study.tell(ot_trial, value)
        self._completed_trials.add(trial_id)

    def was_pruned(self, trial_id: str) -> bool:
        return trial_id in self._pruned

    def optuna_number(self, trial_id: str) -> int | None:
        trial = self._ot_trials.get(trial_id)
        return None if trial is None else trial.number


class PruningScheduler(FIFOScheduler):
    """A FIFO scheduler that stops a trial when its searcher (a :class:`PruningOptunaSearch`, or anything with its
    ``should_prune``) says Optuna's pruner wants it."""

    def __init__(self, searcher: Any) -> None:
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self.searcher.should_prune(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
