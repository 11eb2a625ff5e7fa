"""Shared fixtures. ``slow`` marks tests that train real models or start real services."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first. ``make test`` hands whole modules and classes to two workers in this order
    (``--no-loadscope-reorder``), a worker taking the next one as it runs short of work. The slow ones go out by
    the seconds their ``slow`` mark states (the main job's module leads), then the fast ones fill the gaps: the
    two workers end close together, instead of one taking a long class late while the other has run out of work
    (xdist's own order is most tests first)."""
    items.sort(key=lambda item: -_stated_seconds(item))


def _stated_seconds(item: pytest.Item) -> float:
    """The seconds a slow test's module or class takes in ``make test`` (rough; only the order matters); -1 if fast."""
    mark = item.get_closest_marker("slow")
    return -1.0 if mark is None else mark.kwargs.get("seconds", 0.0)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside each other on 2 cores; a trial's threads are set by run_trial anyway.
    torch.set_num_threads(1)


@pytest.fixture
def example_case_ref() -> str:
    return f"{ROOT / 'examples' / 'my_case.py'}:NarrowCode"
