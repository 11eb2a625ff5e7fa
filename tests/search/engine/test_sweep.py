"""End-to-end sweeps with real parts: a local Ray instance, a real MLflow store, a real Optuna journal file.

The cluster, tracking-server and resume tests start what users start: ``ray start --head``, ``mlflow server``,
and a driver process that is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from search.cli import main
from search.engine.plan import ablation
from search.engine.sweep import SweepOptions, run_sweep
from spaces import get_case

CASE_FILE = Path(__file__).resolve().parents[2] / "sweep_case.py"
TINY = f"{CASE_FILE}:TinyCollapse"
SLOW = f"{CASE_FILE}:SlowTinyCollapse"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(client: MlflowClient, parent_id: str):
    experiment = client.get_experiment_by_name("overfit")
    return client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=1000
    )


def study_trials(path: Path):
    storage = JournalStorage(JournalFileBackend(str(path)))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def finished_trials(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
                "WHERE runs.status = 'FINISHED' AND tags.key = 'overfit.role' AND tags.value = 'trial'"
            ).fetchone()
            return count
    except sqlite3.Error:
        return 0


def overfit_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "overfit"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_local_sweep_records_everything(tmp_path):
    options = SweepOptions.in_folder(tmp_path, [TINY], trials=8, seeds=2, progress=False)
    (summary,) = run_sweep(options)
    planned = ablation(get_case(TINY), seeds=2)
    assert summary["trials"] == len(planned) + 8
    assert summary["ablation"]["lr=0.01"] == {"fixed": 2, "seeds": 2}
    assert summary["ablation"]["baseline"] == {"fixed": 0, "seeds": 2}

    client = MlflowClient(options.tracking_uri)
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["overfit.role"] == "sweep"
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["baseline_vs_best.png"]
    runs = children(client, summary["parent_run_id"])
    assert len(runs) == len(planned) + 8
    assert {r.info.status for r in runs} == {"FINISHED"}
    by_key = {r.data.tags["overfit.key"]: r for r in runs}
    assert {p.key for p in planned} <= set(by_key)

    baseline = by_key["ablation/baseline/seed=0"]
    assert baseline.data.tags["overfit.outcome"] == "collapsed"
    assert baseline.data.params["lr"] == "1e-06" and baseline.data.params["seed"] == "0"
    assert len(client.get_metric_history(baseline.info.run_id, "rel_error")) == 40  # every epoch
    assert {a.path for a in client.list_artifacts(baseline.info.run_id)} == {"curves.png", "reconstructions.png"}
    fix = by_key["ablation/lr=0.01/seed=1"]
    assert fix.data.tags["overfit.fixed"] == "true" and fix.data.tags["overfit.outcome"] == "fixed"

    states = [t.state for t in study_trials(tmp_path / "optuna.log")]
    assert len(states) == 8 and TrialState.RUNNING not in states
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    pruned_runs = [r for r in runs if r.data.tags["overfit.pruned"] == "true"]
    assert len([r for r in pruned_runs if r.data.tags["overfit.part"] == "search"]) == states.count(TrialState.PRUNED)
    assert all(r.data.tags["overfit.outcome"] == "collapsed" for r in pruned_runs)
    # The ablation's collapsing change is pruned too; its baseline, the failure's record, never is.
    assert {by_key[f"ablation/activation=tanh/seed={s}"].data.tags["overfit.pruned"] for s in (0, 1)} == {"true"}
    assert {by_key[f"ablation/baseline/seed={s}"].data.tags["overfit.pruned"] for s in (0, 1)} == {"false"}


@pytest.mark.slow
def test_sweep_through_a_ray_head_node(tmp_path):
    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": ""}
    started = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--num-gpus=1",  # declared, not real: the sweep's GPU requests and its CUDA-less warning
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert started.returncode == 0, started.stderr
    try:
        done = overfit_cli(
            "sweep",
            TINY,
            "--address",
            f"127.0.0.1:{port}",
            "--parts",
            "ablation",
            "--seeds",
            "1",
            "--json",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        runs = client.search_runs(
            [client.get_experiment_by_name("overfit").experiment_id], "tags.`overfit.role` = 'trial'"
        )
        assert len(runs) == len(ablation(get_case(TINY), seeds=1))
        # A cluster with GPUs: a quarter GPU a trial by default, Ray's GPU and torch's device on every run.
        (parent,) = client.search_runs(
            [client.get_experiment_by_name("overfit").experiment_id], "tags.`overfit.role` = 'sweep'"
        )
        assert parent.data.params["gpus_per_trial"] == "0.25" and parent.data.params["slots"] == "2"
        device = "cuda" if torch.cuda.is_available() else "cpu"
        finished = [r for r in runs if r.data.tags["overfit.pruned"] == "false"]
        assert finished and {r.data.tags["overfit.gpu_ids"] for r in finished} == {"0"}
        assert {r.data.tags["overfit.device"] for r in finished} == {device}
        if device == "cpu":
            assert "torch sees no CUDA device" in done.stderr
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.slow
def test_sweep_to_an_mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while subprocess.run(["curl", "-sf", f"{uri}/health"], capture_output=True).returncode != 0:
            assert time.time() < deadline, "mlflow server did not start"
            time.sleep(1)
        done = overfit_cli("sweep", TINY, "--tracking-uri", uri, "--parts", "ablation", "--seeds", "1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "one change that fixed it: lr=0.01 (1/1 seeds)" in done.stdout
        client = MlflowClient(uri)
        runs = client.search_runs(
            [client.get_experiment_by_name("overfit").experiment_id], "tags.`overfit.key` = 'ablation/baseline/seed=0'"
        )
        assert len(runs) == 1
        assert {a.path for a in client.list_artifacts(runs[0].info.run_id)} == {"curves.png", "reconstructions.png"}
        # The analysis reads the same server: `overfit rank` ranks the fix first, report images come over HTTP.
        done = overfit_cli("rank", "--tracking-uri", uri, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "\n  1.  lr " in done.stdout
        done = overfit_cli("report", "--tracking-uri", uri, "--out", str(tmp_path / "report"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "report" / "tiny_collapse-baseline-reconstructions.png").is_file()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(tmp_path):
    args = ["sweep", SLOW, "--trials", "6", "--seeds", "2", "--max-concurrent", "2", "--quiet"]
    driver = subprocess.Popen(
        [str(BIN / "overfit"), *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    db = tmp_path / "mlflow.db"
    deadline = time.time() + 300
    while finished_trials(db) < 3:  # read with plain SQL: an MLflow client here would race the driver's schema set-up
        assert driver.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline, "no trial finished in time"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
    driver.wait(timeout=30)

    done = overfit_cli(*args, "--resume", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    client = MlflowClient(f"sqlite:///{db}")

    experiment = client.get_experiment_by_name("overfit")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`overfit.role` = 'sweep'")
    assert parent.info.status == "FINISHED"
    runs = children(client, parent.info.run_id)
    keys = [r.data.tags["overfit.key"] for r in runs]
    planned = {p.key for p in ablation(get_case(SLOW), seeds=2)}
    assert len(keys) == len(set(keys)), "a trial was recorded twice"
    assert planned <= set(keys) and len([k for k in keys if k.startswith("search/")]) == 6
    assert {r.info.status for r in runs} == {"FINISHED"}, "a run was left RUNNING"
    states = [t.state for t in study_trials(tmp_path / "optuna.log")]
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--address", "127.0.0.1:9"), "--address must be a running Ray head node, got '127.0.0.1:9'"),
        (("--address", "nowhere"), "--address must be HOST:PORT"),
        (
            ("--tracking-uri", "http://127.0.0.1:9"),
            "must be a reachable MLflow tracking server, got 'http://127.0.0.1:9'",
        ),
        (("--parts", "grid"), "--parts must be a comma-separated subset of ['ablation', 'search'], got 'grid'"),
        (("--seeds", "0"), "--seeds must be an integer >= 1, got 0"),
    ],
)
def test_bad_sweep_input_fails_fast_in_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


@pytest.mark.slow
def test_same_seed_same_search_configs(tmp_path):
    def search(folder: Path, trials: int, **options) -> list[dict]:
        folder.mkdir()
        run_sweep(
            SweepOptions.in_folder(folder, [TINY], parts=("search",), trials=trials, seed=7, progress=False, **options)
        )
        return [t.params for t in sorted(study_trials(folder / "optuna.log"), key=lambda t: t.number)]

    # Within TPE's random start-up trials the configs follow the ask order alone, whatever finishes first.
    assert search(tmp_path / "a", 6) == search(tmp_path / "b", 6)
    # Beyond them (TPE models the finished trials), --deterministic asks in synchronous batches.
    first = search(tmp_path / "c", 14, deterministic=True)
    assert len(first) == 14 and first == search(tmp_path / "d", 14, deterministic=True)
