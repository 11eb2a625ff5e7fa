"""One Tune experiment per case: the ablation's planned trials first, then the Optuna search's, through one searcher.

Running the two parts as one experiment keeps every slot busy across the boundary (the search's first trials start
while the ablation's last ones finish) and starts the trial actors once per case instead of twice.

Example:
    >>> searcher = PlanThenSearch([{"key": "ablation/baseline/seed=0"}], search=None, count=0)
    >>> searcher.suggest("t1")
    {'part': 'ablation', 'plan': {'key': 'ablation/baseline/seed=0'}}
    >>> searcher.suggest("t2") == PlanThenSearch.FINISHED
    True
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ray.tune.search import Searcher

from search.engine.plan import BASELINE_LABEL
from search.engine.pruning import CollapsePruner, PruningOptunaSearch, prunable_report

__all__ = ["PlanThenSearch"]


class PlanThenSearch(Searcher):
    """Hands out ``planned`` ablation configs in order, then ``count`` configs asked from ``search``.

    Results and completions of search trials go to ``search`` (which tells Optuna); the pruning scheduler asks
    :meth:`should_prune`. Search trials are judged by Optuna's pruner; ablation trials by ``pruner`` on their own
    reports (they are no Optuna trials), except the baseline's: it always runs to the end, the failure's record.
    """

    def __init__(
        self,
        planned: list[dict[str, Any]],
        search: PruningOptunaSearch | None,
        count: int,
        pruner: CollapsePruner | None = None,
    ) -> None:
        super().__init__(metric="rel_error", mode="min")
        self._planned = deque(planned)
        self._search = search
        self._left = count if search is not None else 0
        self._search_ids: set[str] = set()
        self._pruner = pruner
        self._reports: dict[str, tuple[dict[int, float], dict[int, float]]] = {}  # ablation trial -> (errors, spreads)
        self._pruned: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # both parts come configured

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._planned:
            plan = self._planned.popleft()
            if self._pruner is not None and plan.get("label") != BASELINE_LABEL:
                self._reports[trial_id] = ({}, {})
            return {"part": "ablation", "plan": plan}
        if self._left <= 0:
            return Searcher.FINISHED
        config = self._search.suggest(trial_id)
        if not isinstance(config, dict):
            return config  # None: the search waits for its batch to finish (--deterministic)
        self._left -= 1
        self._search_ids.add(trial_id)
        return {"part": "search", "seed": 0, **config}  # the search varies factors; seeds are the ablation's

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._search_ids:
            self._search.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._search_ids:
            self._search.on_trial_complete(trial_id, result, error)

    # ---- what the pruning scheduler and the recording callback ask ----

    def should_prune(self, trial_id: str, result: dict[str, Any]) -> bool:
        if trial_id in self._search_ids:
            return self._search.should_prune(trial_id, result)
        reports, reported = self._reports.get(trial_id), prunable_report(result)
        if reports is None or reported is None:
            return False
        epoch, rel_error, spread, budget = reported
        errors, spreads = reports
        errors[epoch], spreads[epoch] = rel_error, spread
        if self._pruner.should_stop(errors, spreads, budget):
            self._pruned.add(trial_id)
            return True
        return False

    def was_pruned(self, trial_id: str) -> bool:
        if trial_id in self._search_ids:
            return self._search.was_pruned(trial_id)
        return trial_id in self._pruned

    def optuna_number(self, trial_id: str) -> int | None:
        return self._search.optuna_number(trial_id) if trial_id in self._search_ids else None

    # Resuming goes through MLflow and Optuna (``--resume``), never through Tune's searcher checkpoint.
    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass
