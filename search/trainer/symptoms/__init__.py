"""Symptom detectors: small rules over a trial's history, one module each.

Every detector is a frozen dataclass (its thresholds are fields, documented with the published detector they
come from) called as ``detector(history, threshold) -> evidence or None``. :func:`detect` runs them all;
:func:`outcome` names the one that best explains a failure; ``search.trainer.judge`` puts them together.

A history holds a trial's measured epochs only, each with its own number (``search.trainer.cadence`` says which):
a rule that looks at a stretch of the run takes it in epochs, never in records.

Example:
    >>> from search.trainer.metrics import Epoch
    >>> flat = [Epoch(epoch=e, loss=0.5, mse=0.5, rel_error=1.0, spread=0.01, power_error=0.5) for e in range(1, 11)]
    >>> [s.name for s in detect(flat, threshold=0.05)]
    ['collapsed', 'plateau']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.trainer.metrics import Epoch
from search.trainer.symptoms.collapse import Collapse
from search.trainer.symptoms.dead_units import DeadUnits
from search.trainer.symptoms.divergence import Divergence
from search.trainer.symptoms.gradients import ExplodingGradient, VanishingGradient
from search.trainer.symptoms.plateau import Plateau
from search.trainer.symptoms.scale_blind import ScaleBlind

__all__ = [
    "DETECTORS",
    "OUTCOMES",
    "Collapse",
    "DeadUnits",
    "Divergence",
    "ExplodingGradient",
    "Plateau",
    "ScaleBlind",
    "Symptom",
    "VanishingGradient",
    "detect",
    "outcome",
]


@dataclass(frozen=True)
class Symptom:
    """A detected symptom and the evidence for it, in words."""

    name: str
    evidence: str


DETECTORS = (Divergence(), DeadUnits(), ScaleBlind(), Collapse(), VanishingGradient(), ExplodingGradient(), Plateau())

# What a trial ended as. Order is precedence when several symptoms hold: causes before their consequences
# (dead units make the output collapse), specific before generic (a plateau is what any failure looks like).
OUTCOMES = ("fixed", "error", "diverged", "dead_units", "scale_blind", "collapsed", "plateau")


def detect(history: Sequence[Epoch], threshold: float) -> list[Symptom]:
    """Every symptom the history shows, in :data:`DETECTORS` order."""
    found = []
    for detector in DETECTORS:
        evidence = detector(history, threshold)
        if evidence:
            found.append(Symptom(detector.name, evidence))
    return found


def outcome(fixed: bool, symptoms: Sequence[Symptom], error: str | None = None) -> str:
    """One word for how a trial ended: ``fixed``, ``error``, or its most telling symptom (``plateau`` if none)."""
    if error:
        return "error"
    if fixed:
        return "fixed"
    names = {s.name for s in symptoms}
    return next((o for o in OUTCOMES[2:] if o in names), "plateau")
