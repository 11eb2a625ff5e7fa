"""Which epochs a trial measures: what the judges read, a readable curve, nothing that the budget cannot afford."""

from __future__ import annotations

import itertools
import math

import pytest

from search.trainer.cadence import POINTS, Cadence
from spaces import CASES


def measured(cadence: Cadence) -> list[int]:
    return [e for e in range(1, cadence.epochs + 1) if cadence.due(e)]


@pytest.mark.parametrize("epochs", [100, 150, 300, 400, 800, 1000, 5000])
def test_what_the_judges_read_is_always_measured(epochs):
    every = math.ceil(epochs / 30)  # the engine's cadence of reports
    epochs_measured = measured(Cadence(epochs, report_every=every))
    assert epochs_measured[:5] == [1, 2, 3, 4, 5]  # the first epochs
    assert epochs_measured[-5:] == list(range(epochs - 4, epochs + 1))  # the end, the last epoch above all
    assert set(range(every, epochs + 1, every)) <= set(epochs_measured)  # every report
    gaps = [b - a for a, b in itertools.pairwise(epochs_measured)]
    assert max(gaps) <= max(1, epochs // POINTS)  # a regular grid: the curve has no hole


@pytest.mark.parametrize("name", sorted(CASES))
def test_built_in_budgets_get_a_readable_curve_at_a_fraction_of_the_cost(name):
    for budget in CASES[name].budgets.values():
        count = len(measured(Cadence(budget.epochs, report_every=math.ceil(budget.epochs / 30))))
        assert min(budget.epochs, 50) <= count <= 130, (name, budget.epochs, count)
        if budget.epochs >= 300:
            assert count <= 0.3 * budget.epochs


def test_a_short_budget_is_measured_whole():
    assert measured(Cadence(40)) == list(range(1, 41))
    assert measured(Cadence(1)) == [1]


def test_early_stopping_measures_every_epoch():
    assert measured(Cadence(1000, every_epoch=True)) == list(range(1, 1001))


def test_a_jump_in_the_loss_makes_it_look_closer_from_there():
    cadence = Cadence(1000)  # grid step 20
    assert not cadence.due(45)
    cadence.watch(40, reference=0.1, losses=[0.12, 0.15])  # noise: no closer look
    assert not cadence.due(45)
    cadence.watch(40, reference=0.1, losses=[0.12, 0.5, 0.3])  # a jump seen at epoch 40
    assert all(cadence.due(e) for e in range(41, 61))
    assert not cadence.due(61)


def test_report_every_must_be_positive():
    with pytest.raises(ValueError, match="report_every must be None or >= 1, got 0"):
        Cadence(100, report_every=0)
