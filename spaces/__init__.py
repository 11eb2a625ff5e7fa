"""WHAT is searched: the factor vocabulary and the failure cases (data, model, baseline, documented fix).

``spaces`` imports neither ``search`` nor ``analysis``.
"""

# Last: the case modules import the names above; importing them here fills CASES.
from spaces import cases as _cases  # noqa: F401
from spaces.case import PROFILES, Budget, Case, Data
from spaces.factors import FACTORS, Factor, FactorError, optuna_space, tune_space
from spaces.registry import CASES, CaseError, get_case, register

__all__ = [
    "CASES",
    "FACTORS",
    "PROFILES",
    "Budget",
    "Case",
    "CaseError",
    "Data",
    "Factor",
    "FactorError",
    "get_case",
    "optuna_space",
    "register",
    "tune_space",
]
