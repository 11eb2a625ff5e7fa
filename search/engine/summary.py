"""A case's summary on its parent run, written once its last trial has finished: what a person sorts and reads.

Metrics to sort the cases' sweeps by (trials, fixed, pruned, errors, the baseline's and the best relative error,
the documented fix's rank), the ranking as the run's description (MLflow's note, markdown), and the comparison
figure: the baseline against the trials the ranking names (the documented fix and the smallest fixes; never a
task-factor trial), with the threshold and the mean-predictor lines.
"""

from __future__ import annotations

import math
from typing import Any

from analysis.records import Tag

__all__ = ["fix_rank", "ranking_markdown", "write_summary"]


def write_summary(recorder: Any, run: Any, options: Any) -> Any:
    """Ranks ``run``'s case from what MLflow holds of its sweep and closes its parent run, FINISHED.

    Returns the case's :class:`analysis.ranking.CaseRanking`, or None when there was nothing to rank.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import AnalysisError, load_mlflow, rank_case
    from analysis.figures import comparison_trials, curves_figure

    case = run.case.name
    metrics: dict[str, float] = run.metrics()
    tags: dict[str, str] = {}
    ranking = None
    try:
        sweep = load_mlflow(recorder.tracking_uri, options.experiment, [case], sweep_id=run.parent_id)
        study = run.search.study
        distributions = (
            {k: v for t in study.get_trials(deepcopy=False) for k, v in t.distributions.items()} if study else {}
        )
        ranking = rank_case(sweep.of(case), sweep.cases[case], distributions or None)
        metrics["fix_rank"] = fix_rank(ranking)
        tags[Tag.NOTE] = ranking_markdown(ranking, run.case.title, run.case.threshold)
        chosen = comparison_trials(ranking, sweep.of(case))
        history = sweep.curves(chosen["run_id"])
        curves = {row.legend: list(zip(*_points(history, row.run_id), strict=True)) for row in chosen.itertuples()}
        figure = curves_figure(curves, threshold=run.case.threshold, title=f"{case}: the baseline against its fixes")
        recorder.log_figure(run.parent_id, figure, "comparison")
        plt.close(figure)
    except AnalysisError as exc:  # a sweep with nothing to rank still closes, and says why
        tags[Tag.NOTE] = f"{run.case.title}.\n\nNo ranking: {exc}"
    recorder.end_sweep(run.parent_id, "FINISHED", metrics, tags)
    return ranking


def _points(history: Any, run_id: str) -> tuple[list[int], list[float]]:
    rows = history[history["run_id"] == run_id]
    return list(rows["epoch"]), list(rows["value"])


def fix_rank(ranking: Any) -> float:
    """The documented fix's place in the ranking: its worst-placed factor's rank (NaN when it has none)."""
    ranks = ranking.table.set_index("factor")["rank"]
    places = [ranks.get(factor) for factor in ranking.documented_fix]
    if not places or any(p is None or (isinstance(p, float) and math.isnan(p)) for p in places):
        return math.nan
    return float(max(places))


def ranking_markdown(ranking: Any, title: str, threshold: float) -> str:
    """The ranking as markdown, for the parent run's description."""
    from analysis.changes import show, show_error

    fix = ", ".join(f"`{k}={show(v)}`" for k, v in ranking.documented_fix.items()) or "none documented"
    lines = [
        f"**{title}.**",
        "",
        f"{ranking.trials} trials, {ranking.fixed_trials} fixed (relative error under {threshold:g}; 1 = predicting "
        f"the mean). The baseline's relative error: {show_error(ranking.baseline_error)}. Documented fix: {fix}.",
        "",
        "| # | factor | best change | score | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in ranking.table.itertuples():
        place = str(int(row.rank)) if row.rank is not None and not _nan(row.rank) else "-"
        why = str(row.explanation).replace("|", "\\|")
        lines.append(f"| {place} | {row.factor} | {row.change} | {row.score:.2f} | {why} |")
    if ranking.minimal_fixes:
        shown = ", ".join(f"`{fix}` ({show_error(fix.error)})" for fix in ranking.minimal_fixes[:5])
        lines += ["", f"Smallest fixes: {shown}."]
    if ranking.note:
        lines += ["", f"Note: {ranking.note}"]
    return "\n".join(lines)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
