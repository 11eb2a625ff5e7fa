"""One Ray Tune searcher for a whole sweep: every case's ablation plan, then its Optuna search, interleaved.

:class:`CaseSearch` is one case's part of it. It hands out the ablation's planned trials, then asks the case's
Optuna study for the search's trials through Optuna's public ask-and-tell API (``study.ask``, ``trial.report``,
``trial.should_prune``, ``study.tell`` with COMPLETE, PRUNED or FAIL), and judges whether a trial is to be pruned.
:class:`SweepSearcher` is the ``ray.tune.search.Searcher`` Tune sees: it asks the cases in order, longest expected
trials first, so that the slowest trials start early and the sweep's tail is short; a case with nothing to hand
out (its deterministic batch still running, or done) lets the next one fill the slot.

Optuna's writes that no decision waits for (a finished trial's intermediate values and its ``tell``) go through
one background thread, off Tune's event loop.

Example:
    >>> import optuna
    >>> from analysis.records import TrialSpec
    >>> plan = [TrialSpec(case="c", part="ablation")]
    >>> case = CaseSearch("c", plan, study=None, space={}, count=0)
    >>> searcher = SweepSearcher([case])
    >>> searcher.suggest("t1")["part"], searcher.suggest("t2") == SweepSearcher.FINISHED
    ('ablation', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher

from analysis.records import TrialSpec
from search.engine.pruning import CollapsePruner

__all__ = ["WAIT", "CaseSearch", "SweepSearcher"]

WAIT = "wait"
"""What :meth:`CaseSearch.next_spec` returns while its deterministic batch is still running."""

SETTLE_SECONDS = 2.0
"""The longest Tune's event loop waits in :meth:`SweepSearcher.suggest` for a finished batch's tells."""


class CaseSearch:
    """One case's trials: its planned ablation, then ``count`` trials asked from its Optuna study.

    Args:
        case: the case's name.
        planned: the ablation's trials, complete specs, in the order to run them.
        study: the case's Optuna study (None when the sweep has no search part).
        space: the Optuna distributions of the searched factors.
        count: search trials to ask in all.
        pruner: judges trials on their reports; None runs every trial to the end.
        batch: ask the search's trials in synchronous batches of this size (``--deterministic``): a new batch only
            once the last one has been told, so TPE's suggestions never depend on the order trials finish in.
        settings: what every search trial's spec carries besides its config (case_ref, profile, threads, ...).
        baseline: the case's baseline config: a search trial's label names what differs from it.
        writes: the thread that runs Optuna's writes nothing waits for (one per sweep; default: run inline).
    """

    def __init__(
        self,
        case: str,
        planned: list[TrialSpec],
        study: optuna.Study | None,
        space: Mapping[str, BaseDistribution],
        count: int,
        pruner: CollapsePruner | None = None,
        batch: int | None = None,
        settings: Mapping[str, Any] | None = None,
        baseline: Mapping[str, Any] | None = None,
        writes: ThreadPoolExecutor | None = None,
    ) -> None:
        self.case = case
        self.planned = list(planned)
        self.study, self.space, self.pruner = study, dict(space), pruner
        self.left = count if study is not None else 0
        self.batch = batch
        self.settings, self.baseline = dict(settings or {}), dict(baseline or {})
        self._writes = writes
        self._asked: dict[int, optuna.Trial] = {}  # search trials asked and not yet told, by number
        self._ready: list[optuna.Trial] = []  # the rest of the current deterministic batch
        self._telling: list[Future] = []
        self._history: dict[str, tuple[dict[int, float], dict[int, float]]] = {}  # ablation: errors, spreads
        self._reported: dict[int, int] = {}  # search trial number -> last epoch reported to Optuna

    # ---- handing out trials ----

    def next_spec(self) -> TrialSpec | str | None:
        """The next trial to run, :data:`WAIT` while a deterministic batch runs, or None when there is none left."""
        if self.planned:
            return self.planned.pop(0)
        if self.left <= 0 and not self._ready:
            return None
        if self.batch:
            if not self._ready:
                if self._asked or any(not f.done() for f in self._telling):
                    return WAIT  # the next batch is asked only once this one is told, whole
                size = min(self.batch, self.left)
                self._ready = [self.study.ask(self.space) for _ in range(size)]
                self.left -= size
            trial = self._ready.pop(0)
        else:
            trial = self.study.ask(self.space)
            self.left -= 1
        self._asked[trial.number] = trial
        changes = {k: v for k, v in trial.params.items() if self.baseline.get(k) != v}
        return TrialSpec(
            case=self.case,
            part="search",
            number=trial.number,
            overrides=dict(trial.params),
            changes=changes,
            **self.settings,
        )

    # ---- pruning ----

    def should_stop(self, spec: TrialSpec, epochs: list[dict[str, Any]], budget: int) -> str | None:
        """The pruner's rule that stops ``spec`` now, given the epochs it reported since its last report, or None.

        A search trial's epochs are reported to its Optuna trial and judged by Optuna's ``should_prune``; an
        ablation trial's by the same rules on its own reports. A trial whose spec says ``report_every == 0``
        (the baseline, or ``--no-prune``) is never stopped.
        """
        if self.pruner is None or spec.report_every <= 0 or not epochs:
            return None
        errors, spreads = self._history.setdefault(spec.key, ({}, {}))
        for epoch in epochs:
            errors[epoch["epoch"]], spreads[epoch["epoch"]] = _value(epoch["rel_error"]), _value(epoch["spread"])
        if spec.part != "search":
            return self.pruner.rule(errors, spreads, budget)
        trial = self._asked.get(spec.number)
        if trial is None:
            return None
        last = self._reported.get(spec.number, 0)
        for epoch in sorted(e for e in errors if e > last):  # a retried trial repeats its lost attempt's epochs
            self.pruner.report(trial, epoch, errors[epoch], spreads[epoch], budget)
        self._reported[spec.number] = max(errors)
        if not trial.should_prune():
            return None
        return self.pruner.rule(errors, spreads, budget) or "pruned by the study's pruner"

    # ---- telling Optuna ----

    def settle(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for the tells of a deterministic batch whose trials have all finished."""
        if self.batch and not self._asked:
            wait(self._telling, timeout=timeout)

    def wait(self) -> None:
        """Blocks until every finished trial has been told to Optuna (raises the first write that failed)."""
        for future in self._telling:
            future.result()

    def tell(self, spec: TrialSpec, summary: Mapping[str, Any], pruned: bool, link: Callable[[], str | None]) -> None:
        """Records a finished search trial in its Optuna study, off the event loop (a no-op for the ablation).

        Args:
            spec: the trial.
            summary: its judged result (outcome, fixed, rel_error, history...).
            pruned: whether the pruner stopped it.
            link: returns the trial's MLflow run id once written (or None): stored as a user attribute.
        """
        self._history.pop(spec.key, None)
        if spec.part != "search" or spec.number not in self._asked:
            return
        trial = self._asked.pop(spec.number)
        reported = self._reported.pop(spec.number, 0)

        def write() -> None:
            if self.pruner is not None:
                self.pruner.forget(self.study.study_name, trial.number)
            for epoch in summary.get("history") or []:  # the curve, for the dashboard (pruned ones have theirs)
                if not pruned and epoch.get("epoch", 0) > reported and _finite(epoch.get("rel_error")):
                    trial.report(float(epoch["rel_error"]), int(epoch["epoch"]))
            trial.set_user_attr("key", spec.key)
            trial.set_user_attr("outcome", "pruned" if pruned else str(summary.get("outcome", "error")))
            trial.set_user_attr("fixed", bool(summary.get("fixed", False)))
            run_id = link()  # before the tell: a finished trial takes no more attributes
            if run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
            value = summary.get("rel_error")
            if pruned:
                self.study.tell(trial, state=TrialState.PRUNED)
            elif summary.get("outcome") == "error" or not _finite(value):
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, float(value))

        self._telling.append(self._writes.submit(write) if self._writes else _done(write))


class SweepSearcher(Searcher):
    """The searcher Tune sees for a whole sweep: the longest expected trials first, similar ones interleaved.

    Cases are ranked by their expected trial time in tiers of a factor of two: a slot goes to the highest tier with
    a trial to hand out, and within a tier to the case served least so far (so cases of similar cost share the
    slots from the start, and a tier's last trials end together).

    Args:
        cases: the cases' searches.
        seconds: each case's expected seconds per trial (default: all alike, so the cases take turns).
    """

    def __init__(self, cases: list[CaseSearch], seconds: list[float] | None = None) -> None:
        super().__init__(metric="rel_error", mode="min")
        self.cases = cases
        self.tiers = _tiers(seconds or [1.0] * len(cases))
        self.served = [0] * len(cases)
        self.trials: dict[str, tuple[CaseSearch, TrialSpec]] = {}
        self.pruned: dict[str, str] = {}  # the pruner's reason, by trial id, for every trial it stopped

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # every case comes configured

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        config = self._next(trial_id)
        if config is None:
            # Every case waits for its deterministic batch to be told to Optuna. Tune, with no trial to start, asks
            # again only after a second's sleep (TuneController._update_trial_queue, not configurable); the tells
            # take a fraction of that, so wait for them here and start the next batch at once.
            for case in self.cases:
                case.settle(timeout=SETTLE_SECONDS)
            config = self._next(trial_id)
        return config

    def _next(self, trial_id: str) -> dict[str, Any] | str | None:
        waiting = False
        for index in sorted(range(len(self.cases)), key=lambda i: (-self.tiers[i], self.served[i], i)):
            case = self.cases[index]
            spec = case.next_spec()
            if spec == WAIT:
                waiting = True
            elif spec is not None:
                self.trials[trial_id] = (case, spec)
                self.served[index] += 1
                return spec.to_config()
        return None if waiting else Searcher.FINISHED

    def spec(self, trial_id: str) -> TrialSpec:
        return self.trials[trial_id][1]

    def should_stop(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Asked by the pruning scheduler on every result; True stops the trial (see :meth:`rule`)."""
        return self.rule(trial_id, result) is not None

    def rule(self, trial_id: str, result: dict[str, Any]) -> str | None:
        """The pruner's reason to stop a trial on this result, remembered for the recording; None to let it run."""
        if trial_id not in self.trials or result.get("final") or not result.get("epochs"):
            return None
        case, spec = self.trials[trial_id]
        reason = case.should_stop(spec, result["epochs"], int(result["max_epochs"]))
        if reason is not None:
            self.pruned[trial_id] = reason
        return reason

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass  # the recording callback tells each case once the trial is judged

    # Resuming goes through MLflow, Optuna and the sweep's trial log (``--resume``), never through Tune's
    # searcher checkpoint or the pickle of its tuner (this searcher holds live studies and threads).
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass


def _tiers(seconds: list[float]) -> list[int]:
    """Each case's tier, highest first: from the longest case down, a new tier starts below half the tier's top."""
    tiers = [0] * len(seconds)
    tier, top = 0, None
    for index in sorted(range(len(seconds)), key=lambda i: -seconds[i]):
        if top is not None and seconds[index] < top / 2:
            tier, top = tier - 1, None
        top = seconds[index] if top is None else top
        tiers[index] = tier
    return tiers


def _value(value: Any) -> float:
    return math.nan if value is None else float(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _done(function: Callable[[], None]) -> Future:
    future: Future = Future()
    try:
        function()
        future.set_result(None)
    except Exception as exc:  # surfaced where the sweep waits for its writes
        future.set_exception(exc)
    return future
