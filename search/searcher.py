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

from search.pruning import PruningOptunaSearch

__all__ = ["PlanThenSearch"]


class PlanThenSearch(Searcher):
    """Hands out ``planned`` ablation configs in order, then ``count`` configs asked from ``search``.

    Results and completions of search trials go to ``search`` (which tells Optuna); the pruning scheduler asks
    :meth:`should_prune`, which answers for search trials only, so the ablation always runs to the end.
    """

    def __init__(self, planned: list[dict[str, Any]], search: PruningOptunaSearch | None, count: int) -> None:
        super().__init__(metric="rel_error", mode="min")
        self._planned = deque(planned)
        self._search = search
        self._left = count if search is not None else 0
        self._search_ids: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # both parts come configured

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._planned:
            return {"part": "ablation", "plan": self._planned.popleft()}
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
        return trial_id in self._search_ids and self._search.should_prune(trial_id, result)

    def was_pruned(self, trial_id: str) -> bool:
        return trial_id in self._search_ids and self._search.was_pruned(trial_id)

    def optuna_number(self, trial_id: str) -> int | None:
        return self._search.optuna_number(trial_id) if trial_id in self._search_ids else None

    # Resuming goes through MLflow and Optuna (``--resume``), never through Tune's searcher checkpoint.
    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass
