"""Which factors mattered in the Optuna search: ``optuna.importance`` over the search part's trials.

The study is rebuilt in memory from the trial frame rather than read as stored, for one reason: Optuna's
evaluators read COMPLETE trials only, and the pruned trials are the collapses the ranking must explain. Each
pruned trial enters with the relative error it had reached when cut. The target is log10 of the final relative
error (errors span ten decades); trials that went non-finite (infeasible) count as the worst seen.

Evaluators: PED-ANOVA (Optuna's default, no scikit-learn) and fANOVA (where scikit-learn is installed). Both are
seeded or deterministic, so the same trials give the same importances.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["EVALUATORS", "search_importance"]

EVALUATORS = ("ped_anova", "fanova")
MIN_TRIALS = 4  # below this no evaluator says anything worth printing


def search_importance(
    trials: pd.DataFrame,
    factors: list[str],
    distributions: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Importance of each factor over the search trials, per evaluator: {"ped_anova": {factor: share}, ...}.

    Args:
        trials: one case's trial frame; only ``part == "search"`` rows are used.
        factors: the factors to evaluate (those the search varied).
        distributions: Optuna distributions per factor (from the stored study); inferred from the values when
            None.

    Returns an empty dict when there are fewer than :data:`MIN_TRIALS` search trials or no factor varied.
    """
    import optuna

    search = trials[trials["part"] == "search"]
    varied = [f for f in factors if f in search and search[f].astype(str).nunique() > 1]
    if len(search) < MIN_TRIALS or not varied:
        return {}
    distributions = {f: distributions[f] for f in varied} if distributions else _infer(search, varied)
    worst = max((v for v in search["final_rel_error"] if _finite(v)), default=1.0)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line per case
    try:
        study = optuna.create_study(direction="minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for record in search.to_dict("records"):
        error = record["final_rel_error"] if _finite(record["final_rel_error"]) else 10 * worst
        params = {f: _as_param(record[f], distributions[f]) for f in varied}
        if any(p is None for p in params.values()):
            continue  # a value outside the distribution: a trial from another version of the space
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=math.log10(max(error, 1e-12)))
        )
    results = {}
    for name, evaluator in _evaluators(len(study.trials)).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(study, evaluator=evaluator)
            results[name] = {f: float(v) for f, v in scores.items()}
        except (RuntimeError, ValueError):
            continue  # too few distinct trials for this evaluator; the others still speak
    return results


def _evaluators(trials: int) -> dict[str, Any]:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    # PED-ANOVA contrasts the best ``target_quantile`` of trials with all of them; Optuna's 10% is a single trial
    # in a quick sweep's search, so the top holds at least three trials (at most half).
    quantile = min(0.5, max(0.1, 3 / trials))
    evaluators: dict[str, Any] = {"ped_anova": PedAnovaImportanceEvaluator(target_quantile=quantile)}
    try:
        import sklearn  # noqa: F401  fANOVA's forest

        evaluators["fanova"] = FanovaImportanceEvaluator(seed=0)
    except ImportError:
        pass
    return evaluators


def _infer(search: pd.DataFrame, factors: list[str]) -> dict[str, Any]:
    """Distributions from the values seen: numbers as (log-)float ranges, everything else categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    out = {}
    for f in factors:
        values = search[f].dropna()
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and not values.map(lambda v: isinstance(v, bool)).any():
            low, high = float(numeric.min()), float(numeric.max())
            out[f] = FloatDistribution(low, high, log=low > 0 and high / low > 20)
        else:
            out[f] = CategoricalDistribution(sorted({str(v) for v in values}))
    return out


def _as_param(value: Any, distribution: Any) -> Any:
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if choice == value or str(choice) == str(value):
                return choice
        return None
    number = float(value)
    if not distribution.low <= number <= distribution.high:
        return None
    return int(number) if type(distribution).__name__ == "IntDistribution" else number


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
