"""Every docstring example in the packages runs and shows what it says."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in ("spaces", "search", "analysis")
    for path in (ROOT / package).rglob("*.py")
    if path.name != "__main__.py" and ">>>" in path.read_text()
)


def test_the_examples_are_found():
    assert {"search.trainer.training", "analysis.report", "spaces.cases.lstm_mean_prediction"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    examples = [line for line in Path(module.__file__).read_text().splitlines() if ">>>" in line]
    assert result.attempted or all("doctest: +SKIP" in line for line in examples)  # found, unless all are skipped
