"""The figures of a sweep, drawn one way wherever they are shown: MLflow's runs, the report and the notebook.

- :func:`curves_figure`: relative error per epoch of one or several trials, on a log axis that clips runaway
  trials, with the threshold and the mean-predictor lines.
- :func:`reconstruction_figure`: inputs, targets and outputs side by side, drawn for the data's shape (a signal,
  a sequence of features, slices of a volume).
- :func:`effects_figure`: each single change's final error beside the baseline's and the threshold.
- :func:`comparison_trials`: which trials a comparison shows, the same choice as the ranking's.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot: no global state, nothing to close, safe in
the sweep's driver, and shown by a notebook with ``display(figure)``.

Example:
    >>> figure = curves_figure({"baseline": [(1, 1.0), (2, 0.98)], "lr=0.01": [(1, 1.0), (2, 0.01)]},
    ...                        threshold=0.1, title="tiny: baseline against the fix")
    >>> figure.axes[0].get_ylabel()
    'relative error (MSE / variance)'
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.changes import changes_of, same_value, show
from analysis.ranking import CaseRanking
from analysis.records import WHOLE_FIX_PREFIX

__all__ = ["comparison_trials", "curves_figure", "effects_figure", "reconstruction_figure"]

MEAN_PREDICTOR = 1.0
"""The relative error of predicting the mean: the line a collapsed trial sits on."""

HEADROOM = 1000.0
"""How far above the reference (the mean predictor, the threshold or where the trials started) the axis reaches:
three decades keep a badly scaled start whole (data of tiny variance starts near 200) and show a blow-up clearly;
more only flattens the trials that learn."""


# ---- loss curves -----------------------------------------------------------------------------------------


def curves_figure(curves: Mapping[str, Sequence[tuple[int, float]]], *, threshold: float | None, title: str) -> Figure:
    """Relative error per epoch of one or several trials, on a log axis.

    The axis stops :data:`HEADROOM` times above the largest of the mean predictor (1), the threshold, where the
    first curve (the baseline) started and where most trials started. Points above it, and non-finite ones, are
    drawn in a grey band at the top, a triangle where each stretch begins: a trial at 1e11 shows as "diverged"
    without flattening the others.

    Args:
        curves: label -> (epoch, relative error) pairs, drawn in this order (the baseline first, by convention).
        threshold: the relative error under which a trial is fixed (a line), or None.
        title: the figure's title.

    Example:
        >>> figure = curves_figure({"baseline": [(1, 1.0), (2, 4.5e11)], "fix": [(1, 1.0), (2, 0.01)]},
        ...                        threshold=0.1, title="runaway")
        >>> bool(figure.axes[0].get_ylim()[1] <= 2e3)
        True
    """
    series = {label: _finite_positive(points) for label, points in curves.items()}
    top = _top(series, threshold)
    drawn = [v for values in series.values() for v in values if v <= top]
    lowest = min([*drawn, threshold or MEAN_PREDICTOR, MEAN_PREDICTOR])
    figure = Figure(figsize=(7.5, 4.2), layout="constrained")
    axis = figure.subplots()
    clipped_any = False
    for label, points in curves.items():
        x = np.array([e for e, v in points if v is not None], dtype=float)
        y = np.array([v for _, v in points if v is not None], dtype=float)
        over = ~np.isfinite(y) | (y > top)
        shown = np.where(over, top, np.where(y > 0, y, np.nan))  # log axis: zero or below is not drawable
        (line,) = axis.plot(x, shown, label=label, linewidth=1.5)
        first = over & ~np.concatenate([[False], over[:-1]])  # one mark where each stretch off the scale begins
        if first.any():
            clipped_any = True
            axis.plot(x[first], shown[first], linestyle="none", marker="^", color=line.get_color(), clip_on=False)
    axis.axhline(MEAN_PREDICTOR, color="grey", linestyle=":", linewidth=1.2, label="predicting the mean (1)")
    if threshold:
        axis.axhline(threshold, color="tab:green", linestyle="--", linewidth=1.2, label=f"fixed below {threshold:g}")
    if clipped_any:
        axis.plot([], [], linestyle="none", marker="^", color="black", label=f"off the scale (above {top:.3g})")
    if clipped_any:  # a band above the scale, where runaway points sit
        axis.axhspan(top, top * 2, color="grey", alpha=0.12, linewidth=0)
    axis.set_yscale("log")
    axis.set_ylim(lowest / 2, top * 2 if clipped_any else top)
    axis.set(xlabel="epoch", ylabel="relative error (MSE / variance)", title=_wrap(title))
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    return figure


def _wrap(title: str, width: int = 64) -> str:
    """A long title (a search trial's changes) on several lines rather than cut at the figure's edge."""
    return textwrap.fill(title, width)


def _finite_positive(points: Sequence[tuple[int, float]]) -> list[float]:
    return [float(v) for _, v in points if v is not None and math.isfinite(v) and v > 0]


def _top(series: Mapping[str, list[float]], threshold: float | None) -> float:
    """The axis' upper limit: above the data, unless a runaway trial would take it past the headroom.

    The reference is the largest of the mean predictor, the threshold, where the first curve (the baseline, the
    failing reference) started, and the lower median of where all started (one early blow-up cannot set it).
    """
    values = [v for vs in series.values() for v in vs]
    starts = [vs[0] for vs in series.values() if vs]
    first = next(iter(series.values()), [])
    reference = max(
        MEAN_PREDICTOR,
        threshold or 0.0,
        first[0] if first else 0.0,
        sorted(starts)[(len(starts) - 1) // 2] if starts else 0.0,
    )
    return min(max([*values, MEAN_PREDICTOR]) * 2, HEADROOM * reference)


# ---- reconstructions -------------------------------------------------------------------------------------

_ROLES = {"input": "input", "target": "target", "output": "output"}
_MAX_FEATURE_LINES = 10  # more features than this read better as an image (time across, features down)


def reconstruction_figure(samples: Mapping[str, Any], *, time_dim: int = -1, title: str) -> Figure:
    """A few samples' input, target and output side by side, drawn for the data's shape, in data units.

    One row per sample; the columns are input, target and output. The input is left out when absent, and when it
    is the target (an autoencoder's: the target's title says so), where it would only repeat it. A sample of
    shape ``(1024,)`` or ``(1, 1024)`` is a signal: one line, and the output's panel shows the target dashed to
    compare against. A sequence (time x features, such as ``(14, 5)``) is one line per feature over time, every
    panel of a row on the same y-range so that a flat output looks flat. A volume (``(1, 16, 16, 16)``) is three
    slices through the target's centre of mass, as images on one colour scale per row.

    Args:
        samples: ``input``, ``target`` and ``output``, each array-like of shape ``(count, *sample_shape)``; other
            keys are ignored.
        time_dim: the case's time axis in the batch tensor (as ``Case.time_dim``); the sample's is one less when
            positive. It tells which axis of a two-dimensional sample is time.
        title: the figure's title.

    Example:
        >>> sequence = np.arange(14 * 5, dtype=float).reshape(1, 14, 5)
        >>> figure = reconstruction_figure({"input": sequence, "target": sequence, "output": 0 * sequence},
        ...                                time_dim=1, title="lstm")
        >>> len(figure.axes[0].get_lines()), figure.axes[0].get_xlabel()
        (5, 'time step')
    """
    arrays = {role: np.asarray(samples[role], dtype=float) for role in _ROLES if samples.get(role) is not None}
    if "target" not in arrays or "output" not in arrays:
        raise ValueError(f"samples must hold 'target' and 'output', got {sorted(samples)}")
    titles = {role: role for role in arrays}
    if "input" in arrays and np.array_equal(arrays["input"], arrays["target"], equal_nan=True):
        del arrays["input"]
        titles["target"] = "target (= input)"
    count = len(arrays["target"])
    shaped = {role: [_shape_sample(a[i], time_dim) for i in range(count)] for role, a in arrays.items()}
    kind = shaped["target"][0][1]
    if kind == "volume":
        return _volume_figure(shaped, count, title, titles)
    columns = len(shaped)
    figure = Figure(figsize=(3.4 * columns, 2.3 * count + 0.7), layout="constrained")
    grid = figure.subplots(count, columns, squeeze=False, sharex=True)
    for row in range(count):
        limits = _row_limits([shaped[r][row][0] for r in shaped])
        for column, role in enumerate(shaped):
            axis = grid[row, column]
            data, _ = shaped[role][row]
            if kind == "signal":
                if role == "output":  # the target behind the output, to compare against
                    axis.plot(shaped["target"][row][0], linewidth=1, color="grey", linestyle="--")
                axis.plot(data, linewidth=1, color="tab:orange" if role == "output" else "tab:blue")
            elif kind == "sequence":
                for feature in range(data.shape[1]):
                    axis.plot(data[:, feature], linewidth=1.2, color=f"C{feature % 10}", label=f"feature {feature}")
            else:  # many features: an image, time across
                axis.imshow(data.T, aspect="auto", cmap="viridis", vmin=limits[0], vmax=limits[1])
            if kind != "heatmap":
                axis.set_ylim(*limits)
            if row == 0:
                axis.set_title(titles[role] + (" (target dashed)" if role == "output" and kind == "signal" else ""))
            if row == count - 1:
                axis.set_xlabel(_XLABEL[kind])
            if column == 0:
                axis.set_ylabel(f"sample {row}\n" + ("feature" if kind == "heatmap" else "value"))
    if kind == "sequence":  # under the panels, where it hides no line and no title
        handles, labels = grid[0, -1].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8)
    figure.suptitle(_wrap(title))
    return figure


_XLABEL = {"signal": "position", "sequence": "time step", "heatmap": "time step"}


def _shape_sample(sample: np.ndarray, time_dim: int) -> tuple[np.ndarray, str]:
    """A sample as the array to draw and its kind: signal (n,), sequence (time, features), heatmap or volume."""
    axis = time_dim - 1 if time_dim > 0 else time_dim  # the batch's axis 0 is gone
    axis = axis % sample.ndim if sample.ndim else 0
    kept = [i for i, size in enumerate(sample.shape) if size > 1]
    time = kept.index(axis) if axis in kept else 0
    data = sample.squeeze() if sample.size > 1 else sample.reshape(1)
    if data.ndim == 1:
        return data, "signal"
    if data.ndim == 2:
        data = np.moveaxis(data, time, 0)
        return data, "sequence" if data.shape[1] <= _MAX_FEATURE_LINES else "heatmap"
    if data.ndim == 3:
        return data, "volume"
    return data.reshape(-1), "signal"  # more than three axes: no honest picture, so the values in order


def _row_limits(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    """The y-range of one row: the target's and input's, widened to the output unless it ran far away."""
    reference = np.concatenate([a.ravel() for a in arrays[:-1]]) if len(arrays) > 1 else arrays[0].ravel()
    output = arrays[-1].ravel()
    low, high = _finite_range(reference)
    span = high - low or abs(high) or 1.0
    if np.isfinite(output).any():  # an output of NaN alone has no range to show
        out_low, out_high = _finite_range(output)
        if out_low >= low - 10 * span and out_high <= high + 10 * span:  # near enough to show whole
            low, high = min(low, out_low), max(high, out_high)
    pad = 0.05 * ((high - low) or span)
    return low - pad, high + pad


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def _volume_figure(
    shaped: Mapping[str, list[tuple[np.ndarray, str]]], count: int, title: str, titles: Mapping[str, str]
) -> Figure:
    """Three slices of each volume through the target's centre of mass, side by side in one image per panel."""
    columns = len(shaped)
    figure = Figure(figsize=(3.6 * columns, 1.25 * count + 0.8), layout="constrained")
    grid = figure.subplots(count, columns, squeeze=False)
    for row in range(count):
        target = shaped["target"][row][0]
        planes = _planes(target)
        low, high, clipped = _colour_limits(
            np.concatenate([shaped[r][row][0].ravel() for r in shaped if r != "output"]),
            shaped["output"][row][0].ravel() if "output" in shaped else np.array([]),
        )
        for column, role in enumerate(shaped):
            axis = grid[row, column]
            volume = shaped[role][row][0]
            gap = np.full((volume.shape[1], 1), np.nan)  # a blank column between slices
            strip = np.concatenate([part for z in planes for part in (volume[z], gap)][:-1], axis=1)
            image = axis.imshow(strip, cmap="magma", vmin=low, vmax=high, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[role])
            if row == count - 1:
                axis.set_xlabel("x, in slices z = " + ", ".join(str(z) for z in planes))
            if column == 0:
                axis.set_ylabel(f"sample {row}\ny")
        figure.colorbar(image, ax=list(grid[row]), shrink=0.8, label="value", extend=clipped)
    figure.suptitle(_wrap(title))
    return figure


def _colour_limits(reference: np.ndarray, output: np.ndarray) -> tuple[float, float, str]:
    """A volume row's colour range and the colour bar's ``extend``: the target's range, widened toward the output
    by at most one span of the target's (so a diverged output below zero does not look like an empty volume, and
    the target keeps most of the colours); an output past that, infinite ones included, gets an arrow.

    Example:
        >>> _colour_limits(np.array([0.0, 1.0]), np.array([-0.4, 0.5]))
        (-0.4, 1.0, 'neither')
        >>> _colour_limits(np.array([0.0, 1.0]), np.array([-100.0, np.inf, np.nan]))
        (-1.0, 1.0, 'both')
    """
    low, high = _finite_range(reference)
    span = high - low or abs(high) or 1.0
    shown = output[~np.isnan(output)]
    finite = shown[np.isfinite(shown)]
    if finite.size:
        low, high = max(min(low, float(finite.min())), low - span), min(max(high, float(finite.max())), high + span)
    below, above = bool(shown.size and shown.min() < low), bool(shown.size and shown.max() > high)
    return low, high, ("neither", "min", "max", "both")[below + 2 * above]


def _planes(volume: np.ndarray, count: int = 3) -> list[int]:
    """Slices along the first axis around the volume's centre of mass (the middle for an empty volume)."""
    depth = volume.shape[0]
    mass = np.nan_to_num(np.abs(volume)).sum(axis=(1, 2))
    centre = round(float((mass * np.arange(depth)).sum() / mass.sum())) if mass.sum() > 0 else depth // 2
    step = max(1, depth // 5)
    return sorted({min(depth - 1, max(0, centre + step * k)) for k in range(-(count // 2), count - count // 2)})


# ---- factor effects --------------------------------------------------------------------------------------


def effects_figure(ranking: CaseRanking, threshold: float | None = None) -> Figure:
    """Each single change's final relative error (median over seeds) beside the baseline's and the threshold.

    Green bars fixed the case in at least one seed; task-factor changes are hatched (they change what is
    memorised: a diagnostic, not a fix). Errors past the runaway headroom end at the axis, labelled with their value.
    """
    singles = ranking.single_changes.sort_values("error", ascending=False)
    task = set(ranking.task_factors)
    height = max(2.5, 0.32 * len(singles) + 1.4)
    figure = Figure(figsize=(7.5, height), layout="constrained")
    axis = figure.subplots()
    labels = [f"{row.factor}={show(row.value)}" + (" (task)" * (row.factor in task)) for row in singles.itertuples()]
    errors = np.array([v if math.isfinite(v) and v > 0 else np.inf for v in singles["error"]], dtype=float)
    reference = max(MEAN_PREDICTOR, threshold or 0.0, _finite_or(ranking.baseline_error, 0.0))
    top = HEADROOM * reference
    shown = np.minimum(errors, top)
    colours = ["tab:green" if rate > 0 else "tab:grey" for rate in singles["fix_rate"]]
    bars = axis.barh(labels, shown, color=colours)
    for bar, factor in zip(bars, singles["factor"], strict=True):
        if factor in task:
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    for bar, error in zip(bars, errors, strict=True):
        if error > top:
            axis.annotate(
                "diverged" if not math.isfinite(error) else f"{error:.2g} ›",
                (top, bar.get_y() + bar.get_height() / 2),
                xytext=(-3, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=7,
                color="white",
            )
    if math.isfinite(ranking.baseline_error) and ranking.baseline_error > 0:
        axis.axvline(min(ranking.baseline_error, top), color="tab:red", linestyle="--", label="baseline")
    if threshold:
        axis.axvline(threshold, color="tab:green", linestyle=":", label=f"fixed below {threshold:g}")
    axis.set_xscale("log")
    axis.set(
        xlabel="final relative error (1 = predicting the mean), median over seeds",
        title=f"{ranking.case}: one change at a time (green: fixed)",
    )
    if singles.empty:
        axis.text(0.5, 0.5, "no single change was tried", transform=axis.transAxes, ha="center")
    else:
        axis.legend(fontsize=8, loc="best")
    return figure


def _finite_or(value: float, default: float) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else default


# ---- which trials a comparison shows ---------------------------------------------------------------------


def comparison_trials(ranking: CaseRanking, trials: pd.DataFrame, count: int = 3) -> pd.DataFrame:
    """The trials a comparison of one case shows, chosen as the ranking chose: never a task-factor trial.

    In order: the baseline (its lowest seed), the documented fix's trial (its lowest seed), then the best trial of
    each of the ranking's smallest fixes not yet shown, up to ``count`` of them.

    Args:
        ranking: the case's ranking (its minimal fixes already leave out the task factors).
        trials: the case's trials (``Sweep.of(case)``).
        count: how many minimal fixes to add at most.

    Returns:
        The chosen rows of ``trials`` with two columns first: ``role`` (``baseline``, ``documented fix`` or
        ``fix``) and ``legend``, what a figure calls the trial (its role said once: ``baseline``,
        ``lr=0.01 (documented fix)``, ``activation=elu``).

    Example:
        >>> comparison_trials(ranking, sweep.of(ranking.case))[["role", "legend"]]  # doctest: +SKIP
                     role                           legend
        0        baseline                         baseline
        1  documented fix  activation=elu (documented fix)
        2             fix                     batch_size=4
    """
    factors = [f for f in ranking.table["factor"] if f in trials.columns]
    task = set(ranking.task_factors)
    ordered = trials.sort_values(["seed", "final_rel_error"], na_position="last")
    changes = {index: changes_of(row, ranking.baseline, factors) for index, row in ordered.iterrows()}
    allowed = [i for i in ordered.index if not set(changes[i]) & task]
    ablation = [i for i in allowed if ordered.at[i, "part"] == "ablation"]
    chosen: list[tuple[int, str]] = []
    baseline = next((i for i in ablation if not changes[i]), None)
    if baseline is not None:
        chosen.append((baseline, "baseline"))
    fix = dict(ranking.documented_fix)
    documented = next((i for i in ablation if fix and _same_changes(changes[i], fix)), None)
    if documented is not None:
        chosen.append((documented, "documented fix"))
    added = 0
    for minimal in ranking.minimal_fixes:
        if added == count:
            break
        if set(minimal.changes) & task or _same_changes(minimal.changes, fix):
            continue
        best = [i for i in allowed if ordered.at[i, "label"] == minimal.label and bool(ordered.at[i, "fixed"])]
        best.sort(key=lambda i: _finite_or(ordered.at[i, "final_rel_error"], math.inf))
        if best and best[0] not in {i for i, _ in chosen}:
            chosen.append((best[0], "fix"))
            added += 1
    out = trials.loc[[i for i, _ in chosen]].copy()
    out.insert(0, "role", [role for _, role in chosen])
    out.insert(1, "legend", [_legend(role, label) for role, label in zip(out["role"], out["label"], strict=True)])
    return out.reset_index(drop=True)


def _legend(role: str, label: str) -> str:
    changes = label.removeprefix(WHOLE_FIX_PREFIX)  # the ablation's label for a fix of several factors
    return f"{changes} (documented fix)" if role == "documented fix" else changes


def _same_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
