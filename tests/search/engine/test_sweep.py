"""End-to-end sweeps with real parts: a local Ray instance, a real MLflow store, a real Optuna journal file.

Each class is one unit of work for the test runner's two workers (``pytest -n 2 --dist loadscope``: a class stays on
one worker, so its tests share what the class starts).

The cluster, tracking-server, resume and fault tests start what users start: ``ray start --head`` (and a second
node with ``ray start --address``), ``mlflow server``, and driver processes killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psutil
import pytest
import torch
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from analysis.records import ARTIFACTS, Tag, open_journal
from search.engine.plan import ablation
from search.engine.sweep import SweepOptions, run_sweep
from search.engine.trainable import FIGURES_MIN_SECONDS
from spaces import get_case

CASE_FILE = Path(__file__).resolve().parents[2] / "sweep_case.py"
TINY = f"{CASE_FILE}:TinyCollapse"
OTHER = f"{CASE_FILE}:OtherTinyCollapse"
SLOW = f"{CASE_FILE}:SlowTinyCollapse"
LONG = f"{CASE_FILE}:LongTinyCollapse"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runs(db: Path, role: str = "trial", experiment: str = "overfit") -> list:
    client = MlflowClient(f"sqlite:///{db}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], f"tags.`{Tag.ROLE}` = '{role}'", max_results=5000)


def studies(path: Path) -> dict[str, list]:
    storage = open_journal(path)
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
    }


def finished_trials(db: Path) -> int:
    """Trial runs written so far, read with plain SQL: an MLflow client here would race the driver's set-up."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
                "WHERE runs.status = 'FINISHED' AND tags.key = 'overfit.role' AND tags.value = 'trial'"
            ).fetchone()
            return count
    except sqlite3.Error:
        return 0


def overfit_cli(*args: str, cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "overfit"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the sweep ended before {what}"
        assert time.time() < deadline, f"timed out waiting until {what}"
        time.sleep(0.3)


def assert_one_run_per_trial(db: Path, journal: Path, expected: dict[str, int]) -> None:
    """Every case: its parent FINISHED, one run per key, none left running, Optuna and MLflow one to one."""
    parents = {p.data.tags[Tag.CASE]: p for p in runs(db, "sweep")}
    children = runs(db)
    trials_by_study = studies(journal)
    for case, count in expected.items():
        parent = parents[case]
        assert parent.info.status == "FINISHED", case
        mine = [r for r in children if r.data.tags[Tag.PARENT] == parent.info.run_id]
        keys = [r.data.tags[Tag.KEY] for r in mine]
        assert len(keys) == len(set(keys)) == count, f"{case}: a trial recorded twice or missing"
        assert {r.info.status for r in mine} <= {"FINISHED", "FAILED"}, "a run was left RUNNING"
        assert parent.data.metrics["trials"] == count
        search_runs = {
            int(r.data.tags[Tag.OPTUNA_TRIAL]): r.info.run_id for r in mine if r.data.tags[Tag.PART] == "search"
        }
        trials = trials_by_study[parent.data.tags[Tag.STUDY]]
        assert TrialState.RUNNING not in {t.state for t in trials}
        told = {t.number: t for t in trials if "retry_of" not in t.user_attrs or t.state != TrialState.FAIL}
        recorded = {n: t for n, t in told.items() if t.state != TrialState.FAIL or t.user_attrs.get("key")}
        assert set(recorded) == set(search_runs), f"{case}: Optuna and MLflow disagree"
        assert all(recorded[n].user_attrs.get("mlflow_run_id") in (None, run) for n, run in search_runs.items())


def start_driver(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "overfit"), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@contextlib.contextmanager
def ray_head(tmp_path: Path, cpus: int, gpus: int = 0) -> Iterator[str]:
    port = free_port()
    # As the README starts a cluster: token authentication on (Ray 2.60 turns it on by itself when a token exists;
    # earlier releases only when asked). The driver, run by `overfit`, sends the token it finds in ~/.ray.
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], capture_output=True, timeout=60)
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token"}
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: a socket path must fit 107 bytes
    started = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--num-cpus={cpus}",
            f"--num-gpus={gpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_ray(temp_dir)


def stop_ray(temp_dir: str) -> None:
    """Kills the Ray processes started with ``temp_dir`` (GCS, raylet, monitors) and their children (agents,
    workers). ``ray stop`` would kill every Ray on the machine, other tests' included."""
    started = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or [])]
    tree = {p for process in started for p in [process, *_children(process)]}
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(tree, timeout=30)


def _children(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return process.children(recursive=True)
    return []


def listening_sockets(driver: psutil.Process) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of the driver and the Ray processes it started
    (GCS, raylet, agents, workers)."""
    listening = set()
    for process in [driver, *_children(driver)]:
        with contextlib.suppress(psutil.Error):
            listening |= {
                (c.laddr.ip, c.laddr.port, process.name())
                for c in process.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
    return listening


def mlflow_server(folder: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on ``folder``'s sqlite store, healthy. Without MLflow's job runner (GenAI jobs, a documented
    switch): seven more processes, each importing MLflow, that nothing here uses."""
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{folder}/server.db",
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    deadline = time.time() + 120
    while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/health"], capture_output=True).returncode:
        assert time.time() < deadline and server.poll() is None, "mlflow server did not start"
        time.sleep(1)
    return server


@pytest.fixture(scope="class")
def local_ray() -> Iterator[None]:
    """One local Ray for the sweeps run in this process: a sweep joins the Ray its process already started (as in
    a notebook), and starting Ray costs seconds a sweep."""
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.mark.slow(seconds=65)
@pytest.mark.usefixtures("local_ray")
class TestInProcess:
    """Sweeps run by ``run_sweep`` in this process, on one shared local Ray."""

    def test_local_sweep_records_everything(self, tmp_path):
        options = SweepOptions.in_folder(tmp_path, [TINY], trials=8, seeds=2, progress=False)
        (summary,) = run_sweep(options)
        planned = ablation(get_case(TINY), seeds=2)
        assert summary["trials"] == len(planned) + 8
        assert summary["ablation"]["lr=0.01"] == {"fixed": 2, "seeds": 2}
        assert summary["ablation"]["baseline"] == {"fixed": 0, "seeds": 2}
        assert_one_run_per_trial(tmp_path / "mlflow.db", tmp_path / "optuna.log", {"tiny_collapse": len(planned) + 8})
        assert not list(tmp_path.glob(".optuna.log.*.lock")), "a finished sweep left its resume lock behind"

        client = MlflowClient(options.tracking_uri)
        experiment = client.get_experiment_by_name("overfit")
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on its runs
        (parent,) = runs(tmp_path / "mlflow.db", "sweep")
        assert parent.data.metrics["fixed"] >= 2 and parent.data.metrics["fix_rank"] == 1
        assert {"trials", "pruned", "errors", "baseline_rel_error", "best_rel_error"} <= set(parent.data.metrics)
        assert "| 1 | lr |" in parent.data.tags[Tag.NOTE]  # the ranking, as the run's description
        assert parent.data.params["baseline"] == "lr=1e-06 activation=relu" and parent.data.params["fix"] == "lr=0.01"
        assert [a.path for a in client.list_artifacts(parent.info.run_id, "figures")] == [
            "figures/baseline_vs_best.png"
        ]
        children = {r.data.tags[Tag.KEY]: r for r in runs(tmp_path / "mlflow.db")}

        baseline = children["ablation/baseline/seed=0"]
        assert baseline.info.run_name == "baseline · seed 0" and baseline.data.tags[Tag.OUTCOME] == "collapsed"
        assert baseline.data.params["lr"] == "1e-06" and baseline.data.params["seed"] == "0"
        assert baseline.data.tags[Tag.WHY].startswith("collapsed: outputs vary")
        assert len(client.get_metric_history(baseline.info.run_id, "rel_error")) >= 20  # a readable curve
        figures = {a.path for a in client.list_artifacts(baseline.info.run_id, "figures")}
        assert figures == {"figures/curves.png", "figures/reconstructions.png"}
        assert baseline.inputs.dataset_inputs[0].dataset.name == "tiny_collapse (seed 0)"
        fix = children["ablation/lr=0.01/seed=1"]
        assert fix.data.tags[Tag.FIXED] == "true" and fix.data.tags[Tag.OUTCOME] == "fixed"
        # A fix keeps its samples for the report and the notebook; this near-free one (well under FIGURES_MIN_SECONDS)
        # leaves drawing them to those.
        assert ARTIFACTS["samples"] in {a.path for a in client.list_artifacts(fix.info.run_id)}
        assert fix.data.metrics["seconds"] < FIGURES_MIN_SECONDS
        assert not client.list_artifacts(fix.info.run_id, "figures")

        # Every run that did not fix it says why; a pruned one names the rule and the figures it stopped at.
        for run in children.values():
            tags = run.data.tags
            assert tags[Tag.WHY] and tags[Tag.NOTE]
            if tags[Tag.FIXED] != "true":
                assert tags[Tag.EVIDENCE], run.info.run_name
        pruned = [r for r in children.values() if r.data.tags[Tag.PRUNED] == "true"]
        assert pruned and all("over epochs" in r.data.tags[Tag.PRUNED_BY] for r in pruned)
        # The ablation's collapsing change is pruned too; the baseline, the failure's record, never is.
        assert {children[f"ablation/activation=tanh/seed={s}"].data.tags[Tag.PRUNED] for s in (0, 1)} == {"true"}
        assert {children[f"ablation/baseline/seed={s}"].data.tags[Tag.PRUNED] for s in (0, 1)} == {"false"}
        search = [r for r in children.values() if r.data.tags[Tag.PART] == "search"]
        assert all(r.info.run_name.startswith(f"search {r.data.tags[Tag.OPTUNA_TRIAL]}: ") for r in search)

        (trials,) = studies(tmp_path / "optuna.log").values()
        assert len(trials) == 8 and {t.state for t in trials} <= {TrialState.PRUNED, TrialState.COMPLETE}
        by_run = {r.info.run_id: r for r in search}
        for trial in trials:  # each Optuna trial links its MLflow run, and says how it ended
            run = by_run[trial.user_attrs["mlflow_run_id"]]
            assert trial.user_attrs["outcome"] in ("pruned", run.data.tags[Tag.OUTCOME])
            assert (trial.state == TrialState.PRUNED) == (run.data.tags[Tag.PRUNED] == "true")

    def test_same_seed_same_search_configs(self, tmp_path):
        """The whole path, Tune's real finishing order included (test_searcher.py checks the searcher's rule for
        every order): beyond TPE's ten random start-up trials, --deterministic gives the same configs."""

        def search(folder: Path) -> list[dict]:
            folder.mkdir()
            options = SweepOptions.in_folder(
                folder, [TINY], parts=("search",), trials=12, seed=7, progress=False, deterministic=True
            )
            run_sweep(options)
            (trials,) = studies(folder / "optuna.log").values()
            return [t.params for t in sorted(trials, key=lambda t: t.number)]

        first = search(tmp_path / "a")
        assert len(first) == 12 and first == search(tmp_path / "b")


@pytest.mark.slow(seconds=100)
class TestOnARayCluster:
    """Sweeps through `ray start --head`: two cases in one experiment, a worker node lost mid-sweep."""

    def test_one_experiment_for_two_cases_through_a_ray_head_node(self, tmp_path):
        with ray_head(tmp_path, cpus=2, gpus=1) as address:  # the GPU is declared, not real: requests and warnings
            args = ["sweep", TINY, OTHER, "--address", address, "--seeds", "1", "--trials", "3", "--json"]
            done = overfit_cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        expected = len(ablation(get_case(TINY), seeds=1)) + 3
        # Piped, as here: stdout holds the summaries' JSON alone; stderr a line as each case ends, nothing between.
        summaries = json.loads(done.stdout)
        assert [summary["case"] for summary in summaries] == ["tiny_collapse", "other_tiny_collapse"]
        assert all(s["ranking"]["case"] == s["case"] and s["ranking"]["ranking"] for s in summaries)  # as rank --json
        progress = [line for line in done.stderr.splitlines() if not line.startswith("overfit:")]
        assert sorted(line.split(":")[0] for line in progress) == ["other_tiny_collapse", "tiny_collapse"]
        assert all(f"{expected}/{expected} trials in" in line for line in progress), done.stderr
        db = tmp_path / "mlflow.db"
        assert_one_run_per_trial(
            db, tmp_path / "optuna.log", {"tiny_collapse": expected, "other_tiny_collapse": expected}
        )
        children = runs(db)
        spans = {}
        for run in children:
            first, last = spans.get(run.data.tags[Tag.CASE], (float("inf"), 0))
            spans[run.data.tags[Tag.CASE]] = (min(first, run.info.start_time), max(last, run.info.end_time))
        (a_start, a_end), (b_start, b_end) = spans.values()
        assert b_start < a_end and a_start < b_end, "the two cases' trials did not interleave"
        # A cluster with GPUs: a quarter GPU a trial by default, Ray's GPU and torch's device on every run.
        parent = runs(db, "sweep")[0]
        assert parent.data.params["gpus_per_trial"] == "0.25" and parent.data.params["slots"] == "2"
        device = "cuda" if torch.cuda.is_available() else "cpu"
        finished = [r for r in children if r.data.tags[Tag.PRUNED] == "false"]
        assert finished and {r.data.tags[Tag.GPU_IDS] for r in finished} == {"0"}
        assert {r.data.tags[Tag.DEVICE] for r in finished} == {device}
        if device == "cpu":
            assert "torch sees no CUDA device" in done.stderr

    def test_a_sweep_survives_losing_a_worker_node(self, tmp_path):
        with ray_head(tmp_path, cpus=1) as address, contextlib.ExitStack() as cleanup:
            node_port, node_dir = free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")
            cleanup.callback(stop_ray, node_dir)
            joined = subprocess.run(
                [
                    str(BIN / "ray"),
                    "start",
                    f"--address={address}",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=1",
                    f"--node-manager-port={node_port}",
                    f"--temp-dir={node_dir}",
                    "--disable-usage-stats",
                ],
                capture_output=True,
                text=True,
                timeout=180,
                env={**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token"},
            )
            assert joined.returncode == 0, joined.stderr
            args = ["sweep", LONG, "--address", address, "--seeds", "1", "--trials", "3", "--quiet"]
            driver = start_driver(args, tmp_path)
            db = tmp_path / "mlflow.db"
            wait_for(lambda: finished_trials(db) >= 1, 300, "a trial finished", driver)
            (raylet,) = [
                p
                for p in psutil.process_iter(["name", "cmdline"])
                if p.info["name"] == "raylet"
                and f"--node_manager_port={node_port}" in " ".join(p.info["cmdline"] or [])
            ]
            raylet.kill()  # the second node is gone, with the trial running on it
            assert driver.wait(timeout=600) == 0
        expected = len(ablation(get_case(LONG), seeds=1)) + 3
        assert_one_run_per_trial(db, tmp_path / "optuna.log", {"long_tiny_collapse": expected})
        assert max(int(r.data.tags[Tag.ATTEMPTS]) for r in runs(db)) >= 2


@pytest.mark.slow(seconds=130)
class TestKilled:
    """A killed driver, resumed; a killed trial worker, run again (and what a local sweep listens on)."""

    def test_resume_a_whole_sweep_after_the_driver_is_killed(self, tmp_path):
        args = ["sweep", SLOW, OTHER, "--trials", "6", "--seeds", "2", "--max-concurrent", "2", "--quiet"]
        driver = start_driver(args, tmp_path)
        db = tmp_path / "mlflow.db"
        wait_for(lambda: finished_trials(db) >= 4, 300, "four trials finished", driver)
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        driver.wait(timeout=30)

        # Two commands continue the sweep at once: one is refused, in one line, and the other finishes it.
        second, first = start_driver([*args, "--resume"], tmp_path), None
        time.sleep(1.0)
        done = overfit_cli(*args, "--resume", "--json", cwd=tmp_path)
        first = second.wait(timeout=600)
        refused = [r for r in (done.returncode, first) if r == 2]
        assert len(refused) == 1 and 0 in (done.returncode, first), (done.returncode, first, done.stderr)
        if done.returncode == 2:
            assert "is being run by another live command" in done.stderr and done.stderr.count("\n") == 1

        planned = len(ablation(get_case(SLOW), seeds=2))
        assert_one_run_per_trial(
            db, tmp_path / "optuna.log", {"slow_tiny_collapse": planned + 6, "other_tiny_collapse": planned + 6}
        )
        for study in studies(tmp_path / "optuna.log").values():
            told = [t for t in study if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
            configs = [tuple(sorted(t.params.items())) for t in told]
            assert len(told) == 6 and len(set(configs)) == 6, "a resumed search repeated a config"

    def test_a_local_sweep_listens_on_loopback_only_and_runs_a_killed_workers_trial_again(self, tmp_path):
        args = ["sweep", LONG, "--seeds", "1", "--trials", "2", "--max-concurrent", "2", "--quiet"]
        driver = start_driver(args, tmp_path)
        db = tmp_path / "mlflow.db"
        try:
            wait_for(lambda: finished_trials(db) >= 1, 300, "a trial finished", driver)
            listening = listening_sockets(psutil.Process(driver.pid))
            assert {name for *_, name in listening} >= {"gcs_server", "raylet"}, listening
            exposed = sorted(e for e in listening if e[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"))
            assert not exposed, f"listening beyond loopback: {exposed}"
        except BaseException:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
            raise

        workers = []  # this sweep's trial workers only: other tests' sweeps may run beside it
        for process in _children(psutil.Process(driver.pid)):
            with contextlib.suppress(psutil.Error):
                if "ImplicitFunc" in " ".join(process.cmdline()):
                    workers.append(process)
        assert workers, "no trial worker found"
        workers[0].kill()
        assert driver.wait(timeout=600) == 0
        expected = len(ablation(get_case(LONG), seeds=1)) + 2
        assert_one_run_per_trial(db, tmp_path / "optuna.log", {"long_tiny_collapse": expected})
        attempts = [int(r.data.tags[Tag.ATTEMPTS]) for r in runs(db)]
        assert max(attempts) == 2 and "lost with a worker or node" in str([r.data.tags[Tag.NOTE] for r in runs(db)])


@pytest.mark.slow(seconds=30)
class TestSignalled:
    """A sweep stopped by a signal: its unfinished parents KILLED, ready for --resume (its own class: xdist shares
    classes out between workers, and the killed-process class is long enough)."""

    def test_sigterm_to_the_whole_process_group_ends_the_sweep_at_once_for_resume(self, tmp_path):
        # As `timeout` or a cancelled CI job stop a command: the signal reaches the Ray processes it started too.
        args = ["sweep", LONG, "--seeds", "1", "--parts", "ablation", "--quiet"]
        driver = subprocess.Popen(
            [str(BIN / "overfit"), *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            wait_for(lambda: finished_trials(tmp_path / "mlflow.db") >= 1, 300, "a trial was recorded", driver)
        except BaseException:
            os.killpg(driver.pid, signal.SIGKILL)
            raise
        os.killpg(driver.pid, signal.SIGTERM)
        signalled = time.time()
        _, stderr = driver.communicate(timeout=120)
        assert driver.returncode == 130 and time.time() - signalled < 30, stderr  # not Ray's minute-long GCS wait
        assert "continue it with --resume" in stderr and "Failed to connect to GCS" not in stderr, stderr
        (parent,) = runs(tmp_path / "mlflow.db", "sweep")
        assert parent.info.status == "KILLED"


@pytest.mark.slow(seconds=150)
class TestStoresAndServices:
    """MLflow as a server (and away too long), two sweeps on a new store."""

    def test_sweep_to_an_mlflow_server(self, tmp_path):
        port = free_port()
        server = mlflow_server(tmp_path, port)
        uri = f"http://127.0.0.1:{port}"
        try:
            done = overfit_cli(
                "sweep", TINY, "--tracking-uri", uri, "--parts", "ablation", "--seeds", "1", "--rank", cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            assert "one change that fixed it: lr=0.01 (1/1 seeds)" in done.stdout
            # Piped, stdout is the results: no blank line first, none of MLflow's "View run" links in between.
            assert done.stdout.startswith("tiny_collapse: ") and "View run" not in done.stdout, done.stdout[:300]
            swept = done.stdout
            client = MlflowClient(uri)
            baseline = client.search_runs(
                [client.get_experiment_by_name("overfit").experiment_id],
                "tags.`overfit.key` = 'ablation/baseline/seed=0'",
            )
            assert len(baseline) == 1
            assert {a.path for a in client.list_artifacts(baseline[0].info.run_id, "figures")} == {
                "figures/curves.png",
                "figures/reconstructions.png",
            }
            # The analysis reads the same server: `overfit rank` ranks the fix first, report images come over HTTP.
            done = overfit_cli("rank", "--tracking-uri", uri, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert "\n  1.  lr " in done.stdout
            assert swept.endswith("\n\n" + done.stdout)  # what `sweep --rank` printed
            done = overfit_cli("report", "--tracking-uri", uri, "--out", str(tmp_path / "report"), cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert (tmp_path / "report" / "report.html").is_file()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    def test_a_tracking_server_away_too_long_stops_the_sweep_and_resume_writes_what_it_missed(self, tmp_path):
        port = free_port()
        server = mlflow_server(tmp_path, port)
        args = ["sweep", LONG, "--tracking-uri", f"http://127.0.0.1:{port}", "--seeds", "1", "--trials", "3", "--quiet"]
        driver = subprocess.Popen(
            [str(BIN / "overfit"), *args, "--store-patience", "5"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_for(lambda: finished_trials(tmp_path / "server.db") >= 1, 300, "a trial was recorded", driver)
        finally:
            os.killpg(server.pid, signal.SIGKILL)  # the server is gone, for longer than the sweep waits
            server.wait(timeout=30)
        killed = time.time()
        _, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 1 and time.time() - killed < 120, stderr
        (line,) = [line for line in stderr.splitlines() if line.startswith("overfit:")]
        assert "stayed unreachable for 5 s" in line and "--resume" in line
        server = mlflow_server(tmp_path, port)  # back, with the same store
        try:
            done = overfit_cli(*args, "--resume", cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        expected = len(ablation(get_case(LONG), seeds=1)) + 3
        assert_one_run_per_trial(tmp_path / "server.db", tmp_path / "optuna.log", {"long_tiny_collapse": expected})

    def test_two_sweeps_started_at_once_on_a_new_store_both_record_everything(self, tmp_path):
        args = ["sweep", TINY, "--parts", "ablation", "--seeds", "1", "--quiet"]
        both = [start_driver(args, tmp_path) for _ in range(2)]
        assert [driver.wait(timeout=600) for driver in both] == [0, 0]
        parents = runs(tmp_path / "mlflow.db", "sweep")
        assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
        expected = len(ablation(get_case(TINY), seeds=1))
        children = runs(tmp_path / "mlflow.db")
        for parent in parents:
            keys = [r.data.tags[Tag.KEY] for r in children if r.data.tags[Tag.PARENT] == parent.info.run_id]
            assert len(keys) == len(set(keys)) == expected


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
        (("--parts", "search", "--trials", "0"), "--trials must be >= 1 when --parts is search alone"),
        (("--resume",), "--tracking-uri must be an existing MLflow store"),  # nothing to resume: none is created
    ],
)
def test_bad_sweep_input_fails_fast_in_one_line(tmp_path, capsys, monkeypatch, args, message):
    from search.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists()  # nothing started


def test_resume_continues_only_unfinished_sweeps_and_starts_none(tmp_path, capsys, monkeypatch):
    from search.cli import main
    from search.engine.progress import Progress
    from search.engine.sweep import _Sweep
    from search.engine.tracking import KILLED, Recorder

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    recorder = Recorder(uri, "overfit")
    tiny, other = get_case(TINY), get_case(OTHER)
    recorder.end_sweep(recorder.start_sweep(tiny.name, {}, {}))  # finished
    capsys.readouterr()  # MLflow's lines as it created the store
    assert main(["sweep", TINY, "--resume"]) == 2  # before Ray starts: nothing to continue, nothing new
    err = capsys.readouterr().err
    assert "--resume needs an unfinished sweep of tiny_collapse" in err and err.count("\n") == 1
    assert len(runs(tmp_path / "mlflow.db", "sweep")) == 1
    assert main(["sweep", TINY, "--resume", "--experiment", "elsewhere"]) == 2  # an unknown experiment is not created
    err = capsys.readouterr().err
    assert "--resume needs an unfinished sweep of tiny_collapse" in err and "'elsewhere'" in err
    assert recorder.client.get_experiment_by_name("elsewhere") is None

    killed = recorder.start_sweep(other.name, {}, {})
    recorder.end_sweep(killed, status=KILLED)
    sweep = _Sweep(SweepOptions(cases=[TINY, OTHER], resume=True, tracking_uri=uri), [tiny, other], Progress(False))
    try:
        sweep._find_unfinished()
    finally:
        sweep.writer.close()
    assert [case.name for case in sweep.cases] == [other.name]  # the finished case is left out, not swept anew
    assert sweep.unfinished[other.name].info.run_id == killed
    assert "tiny_collapse: no unfinished sweep; nothing to resume" in capsys.readouterr().err
