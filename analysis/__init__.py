"""WHAT IT MEANS: finished sweeps into pandas, one ranking of the factors that fixed each failure, reports.

Reads what ``overfit sweep`` recorded (MLflow, the Optuna storage, Ray's results folder) and imports nothing from
``search``'s training code.

Example:
    >>> from analysis import load_mlflow, rank
    >>> sweep = load_mlflow("sqlite:///mlflow.db", "overfit")          # doctest: +SKIP
    >>> rankings = rank(sweep)                                          # doctest: +SKIP
    >>> rankings["conv1d_dying_relu"].table                             # doctest: +SKIP
"""

from analysis.changes import MinimalFix, minimal_fixes, single_changes
from analysis.importance import search_importance
from analysis.loading import (
    TRIAL_COLUMNS,
    AnalysisError,
    CaseSweep,
    Sweep,
    load_mlflow,
    load_optuna,
    load_results,
    search_distributions,
)
from analysis.ranking import RANKING_COLUMNS, WEIGHTS, CaseRanking, rank, rank_case

__all__ = [
    "RANKING_COLUMNS",
    "TRIAL_COLUMNS",
    "WEIGHTS",
    "AnalysisError",
    "CaseRanking",
    "CaseSweep",
    "MinimalFix",
    "Sweep",
    "load_mlflow",
    "load_optuna",
    "load_results",
    "minimal_fixes",
    "rank",
    "rank_case",
    "search_distributions",
    "search_importance",
    "single_changes",
]
