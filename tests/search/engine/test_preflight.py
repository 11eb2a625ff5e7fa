"""What must hold before a sweep starts: resources against the cluster's nodes, the Ray address's handshake,
and the whole set of checks that needs no Ray."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from search.engine.preflight import PARTS, SweepError, check_address, check_cases, check_resources, validate


@pytest.mark.parametrize(
    ("nodes", "cpus", "gpus", "message"),
    [
        ([{"CPU": 2.0}], 1.0, 0.0, None),
        ([{"CPU": 2.0}], 2.0, None, None),
        ([{"CPU": 0.3}], 0.1 + 0.2, 0.0, None),  # 0.30000000000000004 CPUs fit on 0.3: Ray counts in 0.0001 steps
        ([{"CPU": 8.0}, {"CPU": 2.0, "GPU": 1.0}], 2.0, 0.25, None),
        ([], 1.0, 0.0, "the Ray cluster must have an alive node, got none"),
        ([{"CPU": 2.0}], 4.0, 0.0, "--cpus-per-trial must be at most 2 (the most CPUs of any node), got 4"),
        ([{"CPU": 2.0}], 1.0, 1.0, "--gpus-per-trial must be 0 on a cluster without GPUs, got 1"),
        ([{"CPU": 2.0, "GPU": 0.0}], 1.0, 0.5, "--gpus-per-trial must be 0 on a cluster without GPUs, got 0.5"),
        ([{"CPU": 8.0, "GPU": 1.0}], 1.0, 2.0, "--gpus-per-trial must be at most 1 (the most GPUs of any node), got 2"),
        ([{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}], 2.0, 1.0, "must fit on one node, got 2 CPUs and 1 GPUs"),
    ],
)
def test_resources_against_the_nodes(nodes, cpus, gpus, message):
    if message is None:
        check_resources(nodes, cpus, gpus)
        return
    with pytest.raises(SweepError) as caught:
        check_resources(nodes, cpus, gpus)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture
def grpc_like() -> Iterator[int]:
    """A server that answers the HTTP/2 preface with a SETTINGS frame, as a gRPC server does."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(24 + 9)
            connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_a_grpc_server_passes_the_handshake(grpc_like):
    check_address(f"127.0.0.1:{grpc_like}", timeout=2)


def test_addresses_are_parsed_before_any_connection():
    check_address("auto")  # Ray finds the cluster itself
    for address in ("nowhere", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", ":6379", "ray://host"):
        with pytest.raises(SweepError, match="--address must be HOST:PORT of a Ray head node"):
            check_address(address, timeout=1)


def _options(folder: Path, **changes) -> SimpleNamespace:
    settings = dict(
        cases=["conv1d_dying_relu"],
        parts=PARTS,
        trials=12,
        seeds=2,
        profile="quick",
        seed=0,
        cpus_per_trial=1.0,
        gpus_per_trial=None,
        max_concurrent=None,
        address=None,
        tracking_uri=f"sqlite:///{folder}/mlflow.db",
        experiment="overfit",
        optuna_storage=str(folder / "optuna.log"),
        results_dir=str(folder / "results"),
        resume=False,
    )
    return SimpleNamespace(**{**settings, **changes})


def test_validate_loads_the_cases_and_creates_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (case,) = validate(_options(tmp_path))
    assert case.name == "conv1d_dying_relu"
    assert list(tmp_path.iterdir()) == []


def test_validate_fails_cheap_checks_before_slow_ones(tmp_path: Path, monkeypatch):
    """A bad number is reported before the network is touched: the silent address would take the timeout."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        options = _options(tmp_path, seeds=0, address=f"127.0.0.1:{silent.getsockname()[1]}")
        with pytest.raises(SweepError, match="--seeds must be an integer >= 1, got 0"):
            validate(options)


@pytest.mark.slow
def test_a_real_ray_head_node_passes_the_handshake():
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = Path(sys.executable).parent / "ray"
    options = ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    head = subprocess.Popen(
        [str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_ADDRESS": ""},
        start_new_session=True,  # its processes in one group, ended below by that group's id
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_address(f"127.0.0.1:{port}", timeout=5)
                break
            except SweepError:
                assert head.poll() is None and time.monotonic() < deadline, head.stderr.read() if head.poll() else ""
                time.sleep(1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_grid_values_that_show_alike_are_refused(tmp_path: Path):
    """Two values recorded under one label would be one trial's key twice: one of them lost."""
    (tmp_path / "alike.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "from spaces import FACTORS, Budget, Case, Data\n"
        "class Alike(Case):\n"
        "    name = 'alike'\n"
        "    space = {'lr': FACTORS['lr'].narrow(low=1e-4, high=1e-1, grid=(1e-2, 1.00001e-2))}\n"
        "    baseline = {'lr': 1e-3}\n"
        "    budgets = {'quick': Budget(epochs=2, samples=8), 'full': Budget(epochs=2, samples=8)}\n"
        "    def make_data(self, seed, budget, config):\n"
        "        x = torch.randn(8, 4)\n"
        "        return Data(x, x.clone())\n"
        "    def build_model(self, config):\n"
        "        return nn.Linear(4, 4)\n"
    )
    with pytest.raises(SweepError, match=r"grid values must differ in their first 3 significant digits.*'lr=0.01'"):
        check_cases([f"{tmp_path / 'alike.py'}:Alike"])
