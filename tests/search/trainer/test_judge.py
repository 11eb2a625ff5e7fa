"""One judge for a whole trial and for a partial one rebuilt from its reports."""

from __future__ import annotations

import math

import pytest

from search.trainer.judge import Verdict, judge
from search.trainer.metrics import Epoch
from search.trainer.symptoms import Symptom

THRESHOLD = 0.1


def measured(points: dict[int, float], **fields) -> list[Epoch]:
    """Sparse measured epochs: epoch number -> relative error."""
    return [
        Epoch(epoch=e, loss=rel, mse=rel, rel_error=rel, power_error=rel, spread=1.0, **fields)
        for e, rel in points.items()
    ]


def test_a_fixed_trial():
    verdict = judge(measured({1: 1.0, 20: 0.3, 40: 0.05, 100: 0.01}), THRESHOLD)
    assert verdict == Verdict("fixed", True, [], 0.01, 0.01)


def test_the_final_epoch_decides_and_the_best_is_kept():
    verdict = judge(measured({1: 1.0, 20: 0.05, 40: 0.2}), THRESHOLD)
    assert (verdict.fixed, verdict.rel_error, verdict.best_rel_error) == (False, 0.2, 0.05)
    restored = judge(measured({1: 1.0, 20: 0.05, 40: 0.2}), THRESHOLD, final=Epoch(epoch=20, rel_error=0.05))
    assert restored.fixed and restored.outcome == "fixed" and restored.rel_error == 0.05


def test_symptoms_are_symptom_objects_with_evidence():
    flat = measured({e: 1.0 for e in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)}, dead_fraction=1.0)
    verdict = judge(flat, THRESHOLD)
    assert verdict.outcome == "dead_units"
    assert all(isinstance(s, Symptom) and s.evidence for s in verdict.symptoms)
    assert [s.name for s in verdict.symptoms] == ["dead_units", "plateau"]


def test_an_error_is_the_outcome_whatever_the_history():
    verdict = judge(measured({1: 0.01}), THRESHOLD, error="RuntimeError: boom")
    assert (verdict.outcome, verdict.fixed) == ("error", False)
    assert judge([], THRESHOLD, error="RuntimeError: boom").outcome == "error"


def test_no_history_is_not_fixed():
    verdict = judge([], THRESHOLD)
    assert not verdict.fixed and math.isnan(verdict.rel_error) and math.isnan(verdict.best_rel_error)


def test_a_partial_history_from_reports():
    # What a pruned trial reported (every 10 epochs; JSON writes NaN as null; no power error, no gradients).
    reports = [
        {"epoch": 10, "rel_error": 1.2, "spread": 0.02, "mse": 0.4, "loss": 0.4, "dead_fraction": None},
        {"epoch": 20, "rel_error": 1.0, "spread": 0.01, "mse": 0.3, "loss": 0.3, "dead_fraction": 0.0},
        {"epoch": 30, "rel_error": 1.0, "spread": 0.01, "mse": 0.3, "loss": 0.3, "finite": True},
    ]
    verdict = judge([Epoch.from_dict(r) for r in reports], THRESHOLD)
    assert verdict.outcome == "collapsed" and [s.name for s in verdict.symptoms] == ["collapsed", "plateau"]
    assert verdict.best_rel_error == 1.0
    went_nan = [*reports, {"epoch": 40, "rel_error": None, "spread": None, "mse": None, "loss": None}]
    verdict = judge([Epoch.from_dict(r) for r in went_nan], THRESHOLD)
    assert verdict.outcome == "diverged" and "epoch 40" in verdict.symptoms[0].evidence
    assert math.isnan(verdict.rel_error) and verdict.best_rel_error == 1.0


def test_verdict_is_frozen():
    verdict = judge(measured({1: 1.0}), THRESHOLD)
    with pytest.raises(AttributeError):
        verdict.fixed = True
