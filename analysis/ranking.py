"""One ranking per case: which factors turn the failing baseline into a fixed model, each with its reason.

Three kinds of evidence, weighed by how directly they answer "which change fixes it":

========================  ======  =======================================================================
evidence                  weight  what it is
========================  ======  =======================================================================
fixes alone               2       the ablation: the best value of the factor, changed alone, fixes it in
                                  this share of seeds (a controlled experiment)
part of a minimal fix     1       1 / size of the smallest set of changes containing the factor that fixed
                                  a trial (1 alone, 0.5 in a pair); a fix that needs two changes credits both
search importance         1       the factor's share of importance over the Optuna search (PED-ANOVA and
                                  fANOVA averaged): correlational, so it mostly breaks ties
progress alone            0.5     how far its best single change moved the error from the baseline's toward
                                  the threshold, on a log scale (0 = no better, 1 = reached it)
========================  ======  =======================================================================

The score is their weighted sum. Task factors (a case's ``task_factors``: they change what is memorised) are
listed last with their own explanation and never ranked as fixes. Following the tuning playbook, trials that
went non-finite are infeasible: worse than any finite error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.changes import MinimalFix, minimal_fixes, show, show_error, single_changes
from analysis.importance import search_importance
from analysis.loading import AnalysisError, CaseSweep, Sweep

__all__ = ["RANKING_COLUMNS", "WEIGHTS", "CaseRanking", "rank", "rank_case"]

WEIGHTS = {"alone": 2.0, "minimal": 1.0, "importance": 1.0, "progress": 0.5}
RANKING_COLUMNS = [
    "rank",
    "factor",
    "change",
    "fixed_alone",
    "seeds_alone",
    "error_ratio",
    "minimal_fix_share",
    "importance",
    "progress",
    "score",
    "explanation",
]


@dataclass
class CaseRanking:
    """The ranking of one case and what it was built from.

    Attributes:
        case: the case's name.
        table: one row per factor (:data:`RANKING_COLUMNS`), best first; task factors last, rank None.
        single_changes: the ablation's (factor, value) effects (see :func:`analysis.changes.single_changes`).
        minimal_fixes: the smallest fixing sets of changes.
        importance: per evaluator, the search's importances.
        baseline_error: the baseline's median final relative error.
        fixed_trials: how many trials of the sweep were fixed.
        trials: how many trials the sweep recorded.
        documented_fix: the fix documented for the case (empty for a case without one).
        note: a sentence on what limits the ranking (no fixed trial, no search), or "".
        baseline: the failing baseline's value of every factor.
        task_factors: the factors that change what is memorised (never ranked, never shown as fixes).
    """

    case: str
    table: pd.DataFrame
    single_changes: pd.DataFrame
    minimal_fixes: list[MinimalFix]
    importance: dict[str, dict[str, float]]
    baseline_error: float
    fixed_trials: int
    trials: int
    documented_fix: dict[str, Any]
    note: str = ""
    baseline: dict[str, Any] = field(default_factory=dict)
    task_factors: tuple[str, ...] = ()

    def top(self, count: int = 2) -> list[str]:
        """The ``count`` best-ranked factors."""
        return list(self.table.dropna(subset=["rank"])["factor"][:count])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``overfit rank --json``)."""
        table = self.table.astype(object).where(self.table.notna(), None)
        return {
            "case": self.case,
            "trials": self.trials,
            "fixed_trials": self.fixed_trials,
            "baseline_error": _finite_or_none(self.baseline_error),
            "documented_fix": self.documented_fix,
            "ranking": table.to_dict("records"),
            "minimal_fixes": [
                {
                    "changes": f.changes,
                    "trials": f.trials,
                    "exact": f.exact,
                    "error": _finite_or_none(f.error),
                    "label": f.label,
                }
                for f in self.minimal_fixes
            ],
            "importance": self.importance,
            "note": self.note,
        }


def rank(sweep: Sweep, cases: list[str] | None = None, distributions: dict[str, dict] | None = None) -> dict:
    """A :class:`CaseRanking` per case of ``sweep`` (all, or those named), in the given order."""
    names = cases or sorted(sweep.cases)
    return {name: rank_case(sweep.of(name), sweep.cases[name], (distributions or {}).get(name)) for name in names}


def rank_case(trials: pd.DataFrame, info: CaseSweep, distributions: dict | None = None) -> CaseRanking:
    """Ranks the factors of one case's sweep. See the module's docstring for the evidence and its weights."""
    if trials.empty:
        raise AnalysisError(f"the sweep of {info.case!r} must hold finished trials, got none (run {info.sweep_id})")
    if not info.baseline:
        raise AnalysisError(f"the sweep of {info.case!r} must record its baseline, got none (run {info.sweep_id})")
    factors = [f for f in info.factors if f in trials]
    task = tuple(f for f in info.task_factors if f in factors)
    singles = single_changes(trials, info.baseline, factors)
    fixes = minimal_fixes(trials, info.baseline, factors, exclude=task)
    importance = search_importance(trials, [f for f in factors if f not in task], distributions)
    baseline_error = float(singles["baseline_error"].iloc[0]) if len(singles) else math.nan
    shares = importance_share_by_factor(importance)
    rows = [_factor_row(f, info, singles, fixes, shares, baseline_error, task=f in task) for f in factors]
    table = pd.DataFrame(rows)
    ranked = table[~table["task"]].sort_values(["score", "factor"], ascending=[False, True])
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    table = pd.concat([ranked, table[table["task"]].assign(rank=None)], ignore_index=True)[RANKING_COLUMNS]
    fixed = int(trials["fixed"].astype(bool).sum())
    return CaseRanking(
        case=info.case,
        table=table,
        single_changes=singles,
        minimal_fixes=fixes,
        importance=importance,
        baseline_error=baseline_error,
        fixed_trials=fixed,
        trials=len(trials),
        documented_fix=dict(info.fix),
        note=_note(info, trials, fixed, importance),
        baseline=dict(info.baseline),
        task_factors=task,
    )


def _factor_row(
    factor: str,
    info: CaseSweep,
    singles: pd.DataFrame,
    fixes: list[MinimalFix],
    shares: dict[str, float],
    baseline_error: float,
    task: bool,
) -> dict[str, Any]:
    mine = singles[singles["factor"] == factor]
    best = mine.iloc[0] if len(mine) else None  # single_changes sorts by fix rate, then error
    fix_rate = float(best["fix_rate"]) if best is not None else 0.0
    sizes = [len(f.changes) for f in fixes if factor in f.changes]
    minimal_share = 1.0 / min(sizes) if sizes else 0.0
    importance_share = shares.get(factor, 0.0) if shares else math.nan
    progress = _progress(baseline_error, float(best["error"]) if best is not None else math.nan, info.threshold)
    score = (
        WEIGHTS["alone"] * fix_rate
        + WEIGHTS["minimal"] * minimal_share
        + WEIGHTS["importance"] * (0.0 if math.isnan(importance_share) else importance_share)
        + WEIGHTS["progress"] * progress
    )
    change = f"{show(info.baseline.get(factor))}→{show(best['value'])}" if best is not None else ""
    together = [f for f in fixes if factor in f.changes and len(f.changes) > 1]
    if together and not fix_rate:  # it fixes only together: show the value that did
        change = f"{show(info.baseline.get(factor))}→{show(together[0].changes[factor])} (with others)"
    return {
        "factor": factor,
        "change": change,
        "fixed_alone": int(best["fixed"]) if best is not None else 0,
        "seeds_alone": int(best["seeds"]) if best is not None else 0,
        "error_ratio": float(best["error_ratio"]) if best is not None else math.nan,
        "minimal_fix_share": minimal_share,
        "importance": importance_share,
        "progress": progress,
        "score": 0.0 if task else round(score, 4),
        "explanation": _explain(factor, best, baseline_error, together, shares, task, info),
        "task": task,
    }


def _progress(baseline_error: float, error: float, threshold: float | None) -> float:
    """Share of the way from the baseline's error down to the threshold, on a log scale, clipped to [0, 1]."""
    if threshold is None or not all(math.isfinite(v) and v > 0 for v in (baseline_error, threshold)):
        return 0.0
    if not math.isfinite(error):
        return 0.0
    if baseline_error <= threshold:
        return 1.0 if error <= baseline_error else 0.0
    return min(1.0, max(0.0, math.log(baseline_error / max(error, 1e-300)) / math.log(baseline_error / threshold)))


def _explain(
    factor: str,
    best: Any,
    baseline_error: float,
    together: list[MinimalFix],
    shares: dict[str, float],
    task: bool,
    info: CaseSweep,
) -> str:
    """The row's plain-language reason; ``together`` are the minimal fixes of several changes that include it."""
    parts = []
    if best is not None:
        change = f"{factor} {show(info.baseline.get(factor))}→{show(best['value'])}"
        errors = f"relative error {show_error(baseline_error)} → {show_error(best['error'])}"
        if best["pruned"]:  # its error is where the pruner stopped it, not where its budget would have ended
            errors += " when pruned" if best["pruned"] == best["seeds"] else f" ({int(best['pruned'])} seeds pruned)"
        seeds = f"{int(best['fixed'])}/{int(best['seeds'])} seeds"
        if task:
            return f"{change} fits ({seeds}; {errors}) but changes what is memorised: a diagnostic, not a fix"
        if best["fixed"]:
            parts.append(f"{change} alone fixes it in {seeds}; {errors}")
        elif best["error"] < 0.9 * baseline_error:  # a tenth at least: less is seed noise
            parts.append(f"{change} alone lowers the {errors} but fixes it in 0/{int(best['seeds'])} seeds")
        elif best["error"] > 1.1 * baseline_error:  # a tenth at least, as for "lowers" above
            parts.append(f"no single change of {factor} helped (each made it worse; the least: {change}, {errors})")
        else:
            parts.append(f"no single change of {factor} helped (lowest error: {change}, {errors})")
    elif task:
        return f"{factor} changes what is memorised: not ranked as a fix"
    else:
        parts.append(f"{factor} was not tried alone")
    if together and not (best is not None and best["fixed"]):
        fix = together[0]
        # The value that fixed it together, which need not be the one that did best alone.
        pair = f"{factor}={show(fix.changes[factor])} with {_others(fix, factor)}"
        parts.append(f"{pair} fixes it (relative error {show_error(fix.error)}, {fix.label})")
    if factor in shares:
        order = sorted(shares, key=lambda f: -shares[f])
        parts.append(f"search importance {shares[factor]:.2f} ({_ordinal(order.index(factor) + 1)} of {len(order)})")
    return "; ".join(parts)


def importance_share_by_factor(importance: dict[str, dict[str, float]]) -> dict[str, float]:
    """The evaluators' importances averaged per factor."""
    factors = {f for scores in importance.values() for f in scores}
    return {f: sum(s.get(f, 0.0) for s in importance.values()) / len(importance) for f in factors}


def _others(fix: MinimalFix, factor: str) -> str:
    return " + ".join(f"{k}={show(v)}" for k, v in fix.changes.items() if k != factor)


def _note(info: CaseSweep, trials: pd.DataFrame, fixed: int, importance: dict) -> str:
    notes = []
    if fixed == 0:
        notes.append(
            f"no trial of {info.case} was fixed (relative error under {info.threshold}); the ranking orders factors "
            "by how far they moved the error: try more trials, more seeds or --profile full"
        )
    if not (trials["part"] == "search").any():
        notes.append("no search trials: importance is missing (sweep with --parts ablation,search)")
    elif not importance:
        notes.append("too few search trials for importance")
    if not (trials["part"] == "ablation").any():
        notes.append("no ablation trials: no factor was tried alone (sweep with --parts ablation,search)")
    return "; ".join(notes)


def _ordinal(n: int) -> str:
    return f"{n}{'tsnrhtdd'[(n // 10 % 10 != 1) * (n % 10 < 4) * n % 10 :: 4]}"


def _finite_or_none(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None
