"""Judging a trial: fixed or not, which symptoms it shows, and the one word its outcome is.

One function for every caller: the trainer at the end of a trial, and the sweep's recorder for a trial that was
pruned or lost mid-way, whose history comes from its reports. Such a history may lack fields (power error,
gradients): they are NaN there and the rules that read them do not fire. ``loss``, ``mse`` and ``rel_error`` are
NaN only where they were non-finite (a report writes NaN as JSON's null), and then the trial diverged.

Example:
    >>> from search.trainer.metrics import Epoch
    >>> epochs = (1, 10, 20, 30, 40, 50, 60, 70, 80)
    >>> flat = [Epoch(epoch=e, loss=0.1, mse=0.1, rel_error=1.0, spread=0.01) for e in epochs]
    >>> verdict = judge(flat, threshold=0.1)
    >>> verdict.outcome, verdict.fixed, [s.name for s in verdict.symptoms]
    ('collapsed', False, ['collapsed', 'plateau'])
    >>> judge(flat, 0.1, error="RuntimeError: boom").outcome
    'error'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch
from search.trainer.symptoms import Symptom, detect, outcome

__all__ = ["Verdict", "judge"]


@dataclass(frozen=True)
class Verdict:
    """How a trial ended.

    Attributes:
        outcome: ``fixed``, ``error``, or the symptom that best explains the failure.
        fixed: the final relative error is finite and below the case's threshold, and nothing raised.
        symptoms: every symptom the history shows, with its evidence.
        rel_error: the final model's relative error (NaN when there is none).
        best_rel_error: the lowest finite relative error of the history (NaN when there is none).
    """

    outcome: str
    fixed: bool
    symptoms: list[Symptom]
    rel_error: float
    best_rel_error: float


def judge(
    history: Sequence[Epoch], threshold: float, *, error: str | None = None, final: Epoch | None = None
) -> Verdict:
    """Judges a trial from its measured epochs.

    Args:
        history: the measured epochs, in order (sparse: each keeps its epoch number).
        threshold: the case's threshold on the relative error.
        error: what the trial raised, if it did: the outcome is then ``error``.
        final: the epoch whose model the trial ended with, when not the last one (early stopping restores the
            best weights).
    """
    final = final or (history[-1] if history else Epoch())
    rel_error = final.rel_error
    fixed = error is None and math.isfinite(rel_error) and rel_error < threshold
    symptoms = detect(history, threshold) if history else []
    best = min((e.rel_error for e in history if math.isfinite(e.rel_error)), default=math.nan)
    return Verdict(outcome(fixed, symptoms, error), fixed, symptoms, rel_error, best)
