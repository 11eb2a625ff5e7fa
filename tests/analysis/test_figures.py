"""The figure functions on hand-made data: the right kind of axes for each data shape, labels, clipping, and the
trials a comparison shows."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import rank_case
from analysis.figures import comparison_trials, curves_figure, effects_figure, reconstruction_figure
from tests.analysis.handmade import ablation_of_a_dying_relu, frame, info, trial


def _legend(figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_curves_clip_a_runaway_trial_and_mark_it():
    curves = {
        "baseline": [(e, 1.0) for e in range(1, 21)],
        "lr=1": [(e, 1.0 if e < 5 else 4.5e11) for e in range(1, 21)],
        "fix": [(e, 0.5**e) for e in range(1, 21)],
    }
    figure = curves_figure(curves, threshold=0.01, title="runaway")
    axis = figure.axes[0]
    low, high = axis.get_ylim()
    assert axis.get_yscale() == "log" and high <= 2e3 and low <= 0.5**20
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("epoch", "relative error (MSE / variance)")
    legend = _legend(figure)
    assert legend[:3] == ["baseline", "lr=1", "fix"]
    assert {"predicting the mean (1)", "fixed below 0.01"} <= set(legend)
    assert any(label.startswith("off the scale") for label in legend)
    runaway = axis.get_lines()[1]
    assert max(runaway.get_ydata()) < high  # drawn in the band under the top, not at 4.5e11
    markers = [line for line in axis.get_lines() if line.get_marker() == "^" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in markers] == [[5.0]]  # one mark, where it left the scale


def test_curves_without_runaway_are_not_clipped():
    figure = curves_figure({"this trial": [(1, 3.0), (2, 2.0), (3, float("nan"))]}, threshold=None, title="t")
    assert figure.axes[0].get_ylim()[1] >= 3.0
    assert not any(label.startswith("fixed below") for label in _legend(figure))


@pytest.mark.parametrize("shape", [(1, 1024), (1024,), (84,)])
def test_one_dimensional_samples_are_one_line_each(shape):
    data = np.random.default_rng(0).normal(size=(3, *shape))
    figure = reconstruction_figure({"input": data + 1, "target": data, "output": 0 * data}, title="signal")
    axes = figure.axes
    assert len(axes) == 3 * 3  # three samples, input / target / output
    assert [a.get_title() for a in axes[:3]] == ["input", "target", "output (target dashed)"]
    assert all(len(a.get_lines()) == 1 for a in axes[:2]) and len(axes[2].get_lines()) == 2
    assert len(axes[0].get_lines()[0].get_ydata()) == max(shape)
    assert axes[-1].get_xlabel() == "position" and axes[0].get_ylabel() == "sample 0\nvalue"


def test_an_output_of_nan_alone_leaves_the_axis_to_the_target():
    target = np.linspace(10.0, 11.0, 64)[None]
    figure = reconstruction_figure({"target": target, "output": np.full_like(target, np.nan)}, title="signal")
    low, high = figure.axes[1].get_ylim()
    assert 9.9 < low < 10.0 and 11.0 < high < 11.1  # not widened to a made-up (0, 1)


def test_a_sequence_is_one_line_per_feature_over_time_and_a_mean_output_looks_flat():
    steps = np.arange(14)[:, None]
    sequence = np.sin(steps / 3 + np.arange(5)) * np.arange(1, 6)  # (14, 5): time x features
    batch = sequence[None]
    mean = np.broadcast_to(sequence.mean(axis=0), sequence.shape)[None]  # what the LSTM baseline outputs
    figure = reconstruction_figure({"input": batch, "target": batch, "output": mean}, time_dim=1, title="lstm")
    target, output = figure.axes  # the input is the target: one panel shows both
    assert len(target.get_lines()) == 5 and len(output.get_lines()) == 5
    assert all(len(line.get_ydata()) == 14 for line in target.get_lines())
    assert all(np.ptp(line.get_ydata()) == 0 for line in output.get_lines())  # flat, not a sawtooth
    assert target.get_ylim() == output.get_ylim() and target.get_xlabel() == "time step"


def test_a_volume_is_slices_as_images():
    grid = np.linspace(-1, 1, 16)
    z, y, x = np.meshgrid(grid, grid, grid, indexing="ij")
    volume = np.clip(1 - (z**2 + y**2 + x**2) / 0.3, 0, None)[None, None]  # (1, 1, 16, 16, 16)
    figure = reconstruction_figure({"input": volume, "target": volume, "output": 0.5 * volume}, title="volume")
    panels = [a for a in figure.axes if a.get_images()]
    assert len(panels) == 2 and not any(a.get_lines() for a in panels)  # target (= input) and output
    image = panels[0].get_images()[0].get_array()
    assert image.shape[0] == 16 and image.shape[1] == 3 * 16 + 2  # three slices, a blank column between
    assert "slices z =" in panels[0].get_xlabel() and panels[0].get_ylabel() == "sample 0\ny"


def test_a_volume_output_below_the_targets_range_gets_colours_of_its_own():
    grid = np.linspace(-1, 1, 16)
    z, y, x = np.meshgrid(grid, grid, grid, indexing="ij")
    target = np.clip(1 - (z**2 + y**2 + x**2) / 0.3, 0, None)[None, None]

    def limits_and_arrows(output: np.ndarray) -> tuple[tuple[float, float], str]:
        figure = reconstruction_figure({"target": target, "output": output}, title="volume")
        image = [a for a in figure.axes if a.get_images()][1].get_images()[0]
        colour_bar = next(a for a in figure.axes if not a.get_images() and a.get_ylabel() == "value")
        return image.get_clim(), colour_bar._colorbar.extend  # matplotlib keeps the Colorbar on its axes

    # Empty voxels pushed below zero: drawn at the target's black, they would look like an empty, nearly right volume.
    assert limits_and_arrows(target - 0.4) == ((-0.4, target.max()), "neither")
    # Far away: the target keeps most of the colours (one span of its own below it), the arrow says what is cut off.
    (low, high), arrows = limits_and_arrows(target - 100.0)
    assert low == -target.max() and high == target.max() and arrows == "min"
    # Diverged to NaN and infinity: the target's own range, and an arrow for the infinite voxels.
    assert limits_and_arrows(np.full_like(target, np.nan)) == ((0.0, target.max()), "neither")
    assert limits_and_arrows(np.where(target > 0, np.inf, np.nan)) == ((0.0, target.max()), "max")


def test_an_autoencoders_input_is_not_drawn_again_beside_its_target():
    data = np.random.default_rng(0).normal(size=(2, 64))
    figure = reconstruction_figure({"input": data, "target": data.copy(), "output": 0 * data}, title="ae")
    assert len(figure.axes) == 2 * 2
    assert [a.get_title() for a in figure.axes[:2]] == ["target (= input)", "output (target dashed)"]


def test_samples_without_inputs_show_target_and_output():
    figure = reconstruction_figure({"target": [[0.0, 1.0, 0.0]], "output": [[0.3, 0.3, 0.3]]}, title="old")
    assert [a.get_title() for a in figure.axes] == ["target", "output (target dashed)"]
    with pytest.raises(ValueError, match="samples must hold 'target' and 'output'"):
        reconstruction_figure({"target": [[0.0]]}, title="x")


def _ranking_with_a_task_factor():
    rows = ablation_of_a_dying_relu(seeds=2)  # batch_size=1 fixes with the lowest error, but changes the task
    rows.append(trial("search 0: batch_size=1 lr=0.01", 0, 1e-7, part="search", batch_size=1, lr=0.01))
    rows.append(trial("search 1: hidden_size=64 lr=0.01", 0, 0.01, part="search", hidden_size=64, lr=0.01))
    trials = frame(rows)
    return rank_case(trials, info(task_factors=("batch_size",))), trials


def test_the_comparison_shows_the_baseline_the_documented_fix_and_fixes_never_a_task_factor():
    ranking, trials = _ranking_with_a_task_factor()
    chosen = comparison_trials(ranking, trials)
    assert list(chosen["role"]) == ["baseline", "documented fix", "fix"]
    assert list(chosen["label"]) == ["baseline", "activation=elu", "lr=0.01"]
    assert list(chosen["seed"]) == [0, 0, 0]
    assert not (chosen["batch_size"] != 16).any()


def test_the_comparison_without_a_documented_fix_trial_shows_the_fixes():
    ranking, trials = _ranking_with_a_task_factor()
    ranking.documented_fix = {"activation": "selu"}  # never tried
    chosen = comparison_trials(ranking, trials, count=1)
    assert list(chosen["label"]) == ["baseline", "activation=elu"]


def test_effects_figure_labels_and_hatches_task_factors():
    ranking, _ = _ranking_with_a_task_factor()
    figure = effects_figure(ranking, threshold=0.1)
    axis = figure.axes[0]
    labels = [t.get_text() for t in axis.get_yticklabels()]
    assert "batch_size=1 (task)" in labels and "activation=elu" in labels
    assert axis.get_xlabel().startswith("final relative error") and axis.get_xscale() == "log"
    hatched = [bar.get_hatch() for bar in axis.patches if bar.get_hatch()]
    assert hatched == ["//"]
