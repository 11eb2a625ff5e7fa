"""Shared fixtures. ``slow`` marks tests that train real models or start real services."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside each other on 2 cores; a trial's threads are set by run_trial anyway.
    torch.set_num_threads(1)


@pytest.fixture
def example_case_ref() -> str:
    return f"{ROOT / 'examples' / 'my_case.py'}:NarrowCode"
