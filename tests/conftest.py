"""Shared fixtures. ``slow`` marks tests that train real models or start real services."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, in their files' order (the main job's module leads). ``make test`` hands whole modules and
    classes to two workers in this order (``--no-loadscope-reorder``): the long ones start at once and the fast
    ones fill the gaps at the end, instead of the long ones coming last (xdist's own order: most tests first)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside each other on 2 cores; a trial's threads are set by run_trial anyway.
    torch.set_num_threads(1)


@pytest.fixture
def example_case_ref() -> str:
    return f"{ROOT / 'examples' / 'my_case.py'}:NarrowCode"
