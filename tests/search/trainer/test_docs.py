"""The trainer's docstring examples run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "search.trainer.cadence",
    "search.trainer.check",
    "search.trainer.judge",
    "search.trainer.metrics",
    "search.trainer.symptoms",
    "search.trainer.training",
    "search.trainer.trial",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
