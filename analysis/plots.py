"""Figures of a ranked sweep: factor effects, and the baseline's loss curve against the best fixes.

Each function returns a matplotlib figure, so a notebook shows it and the report saves it.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from analysis.changes import show
from analysis.loading import Sweep
from analysis.ranking import CaseRanking

__all__ = ["best_fixes", "curves_figure", "effects_figure"]


def effects_figure(ranking: CaseRanking, threshold: float | None = None) -> plt.Figure:
    """Each single change's final relative error (median over seeds) beside the baseline's and the threshold."""
    singles = ranking.single_changes.sort_values("error", ascending=False)
    height = max(2.5, 0.32 * len(singles) + 1.2)
    figure, axis = plt.subplots(figsize=(7.5, height))
    labels = [f"{row.factor}={show(row.value)}" for row in singles.itertuples()]
    errors = [_plottable(e) for e in singles["error"]]
    colours = ["tab:green" if rate > 0 else "tab:grey" for rate in singles["fix_rate"]]
    axis.barh(labels, errors, color=colours)
    if math.isfinite(ranking.baseline_error) and ranking.baseline_error > 0:
        axis.axvline(ranking.baseline_error, color="tab:red", linestyle="--", label="baseline")
    if threshold:
        axis.axvline(threshold, color="tab:green", linestyle=":", label="fixed below")
    axis.set_xscale("log")
    axis.set(
        xlabel="final relative error (MSE / variance; 1 = the mean), median over seeds",
        title=f"{ranking.case}: one change at a time (green: fixed)",
    )
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure


def best_fixes(ranking: CaseRanking, trials: pd.DataFrame, count: int = 3) -> pd.DataFrame:
    """The baseline (seed 0) and up to ``count`` fixed trials, one per minimal fix, best first."""
    baseline = trials[(trials["label"] == "baseline")].sort_values("seed").head(1)
    labels = [fix.label for fix in ranking.minimal_fixes[:count]]
    fixed = trials[trials["label"].isin(labels) & trials["fixed"].astype(bool)]
    fixed = fixed.sort_values("final_rel_error").drop_duplicates("label")
    return pd.concat([baseline, fixed], ignore_index=True)


def curves_figure(sweep: Sweep, ranking: CaseRanking, count: int = 3) -> plt.Figure:
    """Relative error per epoch of the baseline against the best minimal fixes (from MLflow's metric history)."""
    chosen = best_fixes(ranking, sweep.of(ranking.case), count)
    history = sweep.curves(chosen["run_id"])
    figure, axis = plt.subplots(figsize=(7.5, 4))
    for row in chosen.itertuples():
        points = history[(history["run_id"] == row.run_id) & (history["value"] > 0)]
        axis.plot(points["epoch"], points["value"], label=str(row.label), linewidth=1.4)
    axis.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="predicting the mean")
    threshold = sweep.cases[ranking.case].threshold
    if threshold:
        axis.axhline(threshold, color="tab:green", linestyle=":", linewidth=1, label="fixed below")
    axis.set_yscale("log")
    axis.set(xlabel="epoch", ylabel="relative error", title=f"{ranking.case}: baseline against the best fixes")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _plottable(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else float("nan")
