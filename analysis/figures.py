"""Figures (placeholder until the figure module lands): curves and reconstructions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["curves_figure", "reconstruction_figure"]


def curves_figure(
    curves: Mapping[str, Sequence[tuple[int, float]]], *, threshold: float | None = None, title: str = ""
) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, points in curves.items():
        shown = [(e, v) for e, v in points if v is not None and math.isfinite(v) and v > 0]
        if shown:
            axis.plot(*zip(*shown, strict=True), label=label)
    axis.set_yscale("log")
    axis.axhline(1.0, color="grey", linestyle=":", linewidth=1, label="predicting the mean")
    if threshold:
        axis.axhline(threshold, color="tab:green", linestyle=":", linewidth=1, label="fixed below")
    axis.set(xlabel="epoch", ylabel="relative error (MSE / variance)", title=title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def reconstruction_figure(samples: Mapping[str, Any], *, time_dim: int = -1, title: str = "") -> plt.Figure:
    target, output = np.asarray(samples["target"]), np.asarray(samples["output"])
    count = len(target)
    figure, axes = plt.subplots(count, 1, figsize=(7, 2.2 * count), squeeze=False)
    for index, axis in enumerate(axes[:, 0]):
        axis.plot(target[index].ravel(), label="target", linewidth=1)
        axis.plot(output[index].ravel(), label="output", linewidth=1)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def comparison_trials(ranking, trials):
    import pandas as pd

    baseline = trials[trials["label"] == "baseline"].sort_values("seed").head(1)
    labels = [fix.label for fix in ranking.minimal_fixes[:3]]
    fixed = trials[trials["label"].isin(labels) & trials["fixed"].astype(bool)]
    fixed = fixed.sort_values("final_rel_error").drop_duplicates("label")
    return pd.concat([baseline, fixed], ignore_index=True)
