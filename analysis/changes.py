"""What a trial changed from the failing baseline, and what single changes and minimal sets of changes did.

Two views of "which change fixes it", both read from the trial frame:

* :func:`single_changes`: the ablation's evidence. Every trial that changed exactly one factor from the
  baseline, grouped by (factor, value): fix rate across seeds and error ratio against the baseline's seeds.
* :func:`minimal_fixes`: the smallest sets of changes among fixed trials (ablation and search alike). A fixed
  trial's set is minimal when no other fixed trial changed a strict subset of its factors. Each set of values the
  ablation tried is its own fix (``activation=elu`` and ``activation=tanh`` are two); the search's trials, whose
  values are drawn from ranges, make one fix per set of factors (the best of them), unless they hit an ablation's
  values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MinimalFix", "changes_of", "minimal_fixes", "same_value", "show", "show_error", "single_changes"]


def same_value(a: Any, b: Any) -> bool:
    """Factor values compared as the sweep wrote them (numbers within float noise, the rest exactly)."""
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def changes_of(row: Mapping[str, Any], baseline: Mapping[str, Any], factors: list[str]) -> dict[str, Any]:
    """The factors of ``row`` that differ from ``baseline``, with the row's values."""
    return {f: row[f] for f in factors if f in row and not _missing(row[f]) and not same_value(row[f], baseline[f])}


def single_changes(trials: pd.DataFrame, baseline: Mapping[str, Any], factors: list[str]) -> pd.DataFrame:
    """One row per (factor, value) tried alone in the ablation.

    Columns: factor, value, seeds, fixed (seeds fixed), pruned (seeds the collapse pruner stopped: their error is
    the one reached when stopped), fix_rate, error (median final relative error over its seeds), baseline_error
    (median over the baseline's seeds), error_ratio (error / baseline_error; diverged trials count as infinitely
    bad), best_error.
    """
    ablation = trials[trials["part"] == "ablation"]
    base = ablation[[not changes_of(r, baseline, factors) for r in ablation.to_dict("records")]]
    baseline_error = _median_error(base)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in ablation.to_dict("records"):
        changed = changes_of(record, baseline, factors)
        if len(changed) != 1:
            continue
        ((factor, value),) = changed.items()
        entry = rows.setdefault(
            (factor, show(value)), {"factor": factor, "value": value, "errors": [], "fixed": 0, "pruned": 0}
        )
        entry["errors"].append(_error(record))
        entry["fixed"] += bool(record["fixed"])
        entry["pruned"] += bool(record.get("pruned"))
    out = []
    for entry in rows.values():
        errors = entry.pop("errors")
        error = float(np.median(errors))
        out.append(
            {
                **entry,
                "seeds": len(errors),
                "fix_rate": entry["fixed"] / len(errors),
                "error": error,
                "baseline_error": baseline_error,
                "error_ratio": _ratio(error, baseline_error),
                "best_error": float(min(errors)),
            }
        )
    columns = [
        "factor",
        "value",
        "seeds",
        "fixed",
        "pruned",
        "fix_rate",
        "error",
        "baseline_error",
        "error_ratio",
        "best_error",
    ]
    return pd.DataFrame(out, columns=columns).sort_values(["fix_rate", "error"], ascending=[False, True])


@dataclass(frozen=True)
class MinimalFix:
    """A smallest set of changes from the baseline that fixed the failure.

    Attributes:
        changes: factor -> value, the changes from the baseline (the best trial's, where the values varied).
        trials: how many fixed trials made these changes (values compared as :func:`show` writes them), or, where
            ``exact`` is False, changed these factors to values of the search's choosing.
        error: the best of those trials' final relative error.
        label: that trial's label ("activation=elu", "search #4", ...).
        exact: whether every one of the trials made exactly ``changes``.
    """

    changes: dict[str, Any]
    trials: int
    error: float
    label: str
    exact: bool = True

    def count(self) -> str:
        """Its trials, for people: "2 trials", or "the best of 5 search trials changing lr and hidden_size"."""
        if self.exact:
            return f"{self.trials} trial{'s' * (self.trials != 1)}"
        return f"the best of {self.trials} search trials changing {' and '.join(self.changes)}"

    def __str__(self) -> str:
        return " + ".join(f"{k}={show(v)}" for k, v in self.changes.items())


def minimal_fixes(
    trials: pd.DataFrame, baseline: Mapping[str, Any], factors: list[str], exclude: tuple[str, ...] = ()
) -> list[MinimalFix]:
    """Fixed trials whose set of changed factors has no fixed strict subset, smallest sets first.

    Trials that changed an ``exclude`` factor (a task factor) are left out: they memorised something else.
    """
    groups: dict[frozenset[str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for record in trials[trials["fixed"].astype(bool)].to_dict("records"):
        changed = changes_of(record, baseline, factors)
        if not changed or set(changed) & set(exclude):
            continue
        groups.setdefault(frozenset(changed), []).append((record, changed))
    minimal = [s for s in groups if not any(other < s for other in groups)]
    fixes = []
    for factor_set in minimal:
        trials_shown = [(record, changed, _shown(changed)) for record, changed in groups[factor_set]]
        tried = {shown for record, _, shown in trials_shown if record.get("part") != "search"}
        by_values: dict[tuple[str, ...] | None, list[tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]]] = {}
        for record, changed, shown in trials_shown:
            key = shown if record.get("part") != "search" or shown in tried else None
            by_values.setdefault(key, []).append((record, changed, shown))
        for same in by_values.values():
            record, changed, _ = min(same, key=lambda trial: _error(trial[0]))
            ordered = {f: changed[f] for f in factors if f in changed}
            exact = len({shown for _, _, shown in same}) == 1
            fixes.append(MinimalFix(ordered, len(same), _error(record), str(record["label"]), exact))
    return sorted(fixes, key=lambda fix: (len(fix.changes), -fix.trials, fix.error))


def show(value: Any) -> str:
    """A factor value as people write it: 16 not 16.0, 0.002 not 0.0020000000000000005."""
    if isinstance(value, bool) or not _is_number(value):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.3g}"


def show_error(value: float | None) -> str:
    """A relative error for people: 3 significant digits, scientific under 1e-3; "-" when unknown."""
    if value is None or math.isnan(value):
        return "-"
    if not math.isfinite(value):
        return "non-finite"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _shown(changes: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f"{factor}={show(changes[factor])}" for factor in sorted(changes))


def _error(record: Mapping[str, Any]) -> float:
    value = record.get("final_rel_error")
    return float(value) if _is_number(value) and math.isfinite(float(value)) else math.inf


def _median_error(rows: pd.DataFrame) -> float:
    errors = [_error(r) for r in rows.to_dict("records")]
    return float(np.median(errors)) if errors else math.nan


def _ratio(error: float, baseline_error: float) -> float:
    if not math.isfinite(baseline_error) or baseline_error <= 0:
        return math.nan
    return error / baseline_error


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
