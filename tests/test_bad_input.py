"""Every bad input, as a hostile new user types it: one line on stderr naming the option (or file) and what must
hold, exit status 2, no traceback, no hang, nothing created that was not there and no run left RUNNING.

Most run ``overfit`` in-process in a fresh folder; a few through the real console script. Servers that are not
MLflow or Ray are a local HTTP server and a listening socket that never answers.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import analysis.records
import search.engine.preflight
from search.cli import main

pytestmark = pytest.mark.timeout(60)

OVERFIT = Path(sys.executable).parent / "overfit"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_case.py"
TRIAL = ["trial", "conv1d_dying_relu"]
DIAGNOSE = ["diagnose", "conv1d_dying_relu"]
SWEEP = ["sweep", "conv1d_dying_relu"]
TWIN = """
import torch
from torch import nn

from spaces import FACTORS, Budget, Case, Data


class Twin(Case):
    name = "twin"  # both files declare it
    title = "a case whose name another file uses too"
    symptom = "plateau"
    space = {"lr": FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-2,))}
    baseline = {"lr": 1e-3}
    fix = {"lr": 1e-2}
    budgets = {"quick": Budget(epochs=2, samples=8), "full": Budget(epochs=2, samples=8)}

    def make_data(self, seed, budget, config):
        x = torch.zeros(8, 4)
        return Data(x, x)

    def build_model(self, config):
        return nn.Linear(4, 4)
"""

NARROW = """

class Narrow(Twin):
    def build_model(self, config):
        return nn.Linear(4, 1)  # one output a row for four targets: broadcast, it would train and look collapsed
"""
HOLEY = """

class Holey(Twin):
    def make_data(self, seed, budget, config):
        x = torch.zeros(8, 4)
        x[0, 0] = float("nan")
        return Data(x, x)
"""


# ---- what a folder holds before the command runs ------------------------------------------------------------


Setup = Callable[[Path, Callable[[], Path]], None]
"""Puts something in the command's folder; its second argument gives the module's real MLflow store."""


def _write(name: str, content: bytes | str) -> Setup:
    def make(folder: Path, store: Callable[[], Path]) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return make


def _folder(name: str) -> Setup:
    return lambda folder, store: (folder / name).mkdir(parents=True)


def _store(name: str = "mlflow.db", cut: bool = False) -> Setup:
    """A real MLflow store (made once per module), whole or cut to half its length."""

    def make(folder: Path, store: Callable[[], Path]) -> None:
        data = store().read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2] if cut else data)

    return make


def _other_sqlite(folder: Path, store: Callable[[], Path]) -> None:
    with sqlite3.connect(folder / "other.db") as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")


ENTRY = '{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\n'


@dataclass
class Bad:
    """One bad input: ``argv`` (``{tmp}``, ``{http}``, ``{silent}``, ``{closed}``, ``{ro}`` filled in), what stderr
    must say, and what the folder holds first."""

    argv: list[str]
    says: str
    setup: tuple[Setup, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    needs: str = ""  # "ro": an unwritable folder; "no-cuda": a machine without CUDA


BAD: dict[str, Bad] = {
    # ---- trial ----
    "trial set twice": Bad(
        [*TRIAL, "--set", "lr=0.01", "--set", "lr=0.1"], "--set must give each factor once, got lr twice"
    ),
    "trial threads -1": Bad([*TRIAL, "--threads", "-1"], "--threads must be an integer >= 1, got -1"),
    "trial threads 0": Bad([*TRIAL, "--threads", "0"], "--threads must be an integer >= 1, got 0"),
    "trial threads text": Bad([*TRIAL, "--threads", "two"], "--threads must be an integer, got 'two'"),
    "trial threads no value": Bad([*TRIAL, "--threads"], "--threads must be followed by a value"),
    "trial device bogus": Bad([*TRIAL, "--device", "bogus"], "--device must be a torch device"),
    "trial device cuda": Bad([*TRIAL, "--device", "cuda"], "--device must be cpu or an accelerator", needs="no-cuda"),
    "trial device cuda:3": Bad([*TRIAL, "--device", "cuda:3"], "--device must be cpu or an accel", needs="no-cuda"),
    "trial device meta": Bad([*TRIAL, "--device", "meta"], "--device must be cpu or an accelerator present here"),
    "trial seed -1": Bad([*TRIAL, "--seed", "-1"], "--seed must be an integer in [0, 4294967295], got -1"),
    "trial seed 2**32": Bad([*TRIAL, "--seed", str(2**32)], "--seed must be an integer in [0, 4294967295]"),
    "trial seed 1.5": Bad([*TRIAL, "--seed", "1.5"], "--seed must be an integer, got '1.5'"),
    "trial profile": Bad([*TRIAL, "--profile", "huge"], "--profile must be one of 'quick', 'full', got 'huge'"),
    "trial set no =": Bad([*TRIAL, "--set", "lr"], "--set must be FACTOR=VALUE, got 'lr'"),
    "trial set no name": Bad([*TRIAL, "--set", "=0.1"], "--set must be FACTOR=VALUE, got '=0.1'"),
    "trial set text": Bad([*TRIAL, "--set", "lr=fast"], "--set lr must be a number in"),
    "trial set nan": Bad([*TRIAL, "--set", "lr=nan"], "--set lr must lie in"),
    "trial set inf": Bad([*TRIAL, "--set", "lr=inf"], "--set lr must lie in"),
    "trial set unknown": Bad([*TRIAL, "--set", "width=3"], "--set unknown factor 'width'"),
    "trial set choice": Bad([*TRIAL, "--set", "activation=swish"], "--set activation must be one of"),
    "trial unknown case": Bad(["trial", "nope"], "unknown case 'nope'; choose from"),
    "trial missing file": Bad(["trial", "missing.py:Case"], "case file 'missing.py' does not exist"),
    "trial missing class": Bad(["trial", f"{EXAMPLE}:Nope"], "defines no 'Nope'"),
    "trial file, no class": Bad(["trial", str(EXAMPLE)], "cases found there: ['NarrowCode']"),
    # ---- diagnose ----
    "diagnose nothing": Bad(["diagnose"], "name the cases to diagnose or pass --all"),
    "diagnose both": Bad(["diagnose", "--all", "conv1d_dying_relu"], "pass --all, not both"),
    "diagnose unknown": Bad(["diagnose", "ghost"], "unknown case 'ghost'"),
    "diagnose threads": Bad([*DIAGNOSE, "--threads", "0"], "--threads must be an integer >= 1, got 0"),
    "diagnose device": Bad([*DIAGNOSE, "--device", "bogus"], "--device must be a torch device"),
    "diagnose seed": Bad([*DIAGNOSE, "--seed", "-3"], "--seed must be an integer in [0, 4294967295], got -3"),
    "diagnose same case twice": Bad([*DIAGNOSE, "conv1d_dying_relu"], "cases must be named once each"),
    "diagnose same name": Bad(
        ["diagnose", "one.py:Twin", "two.py:Twin"],
        "cases must have distinct names, got 'twin' from both 'one.py:Twin' and 'two.py:Twin'",
        (_write("one.py", TWIN), _write("two.py", TWIN)),
    ),
    # ---- sweep: options ----
    "sweep cpus nan": Bad(
        [*SWEEP, "--cpus-per-trial", "nan"], "--cpus-per-trial must be a finite number >= 0.0001, got nan"
    ),
    "sweep cpus inf": Bad(
        [*SWEEP, "--cpus-per-trial", "inf"], "--cpus-per-trial must be a finite number >= 0.0001, got inf"
    ),
    "sweep cpus 0": Bad(
        [*SWEEP, "--cpus-per-trial", "0"], "--cpus-per-trial must be a finite number >= 0.0001, got 0.0"
    ),
    "sweep cpus -1": Bad(
        [*SWEEP, "--cpus-per-trial", "-1"], "--cpus-per-trial must be a finite number >= 0.0001, got -1"
    ),
    "sweep cpus tiny": Bad([*SWEEP, "--cpus-per-trial", "1e-5"], "--cpus-per-trial must be a finite number >= 0.0001"),
    "sweep cpus text": Bad([*SWEEP, "--cpus-per-trial", "one"], "--cpus-per-trial must be a number, got 'one'"),
    # A local instance's request beyond this machine: refused before Ray starts, not once it is up.
    "sweep cpus beyond machine": Bad([*SWEEP, "--cpus-per-trial", "4096"], "(this machine's CPUs), got 4096"),
    "sweep gpus none here": Bad(
        [*SWEEP, "--gpus-per-trial", "1"],
        "--gpus-per-trial must be 0 on this machine without GPUs, got 1",
        needs="no-cuda",
    ),
    "sweep gpus inf": Bad([*SWEEP, "--gpus-per-trial", "inf"], "--gpus-per-trial must be 0 or a finite number"),
    "sweep gpus nan": Bad([*SWEEP, "--gpus-per-trial", "nan"], "--gpus-per-trial must be 0 or a finite number"),
    "sweep gpus -1": Bad(
        [*SWEEP, "--gpus-per-trial", "-1"], "--gpus-per-trial must be 0 or a finite number >= 0.0001, got -1"
    ),
    "sweep seed -1": Bad([*SWEEP, "--seed", "-1"], "--seed must be an integer in [0, 4294967295], got -1"),
    "sweep seed 2**32": Bad(
        [*SWEEP, "--seed", str(2**32)], "--seed must be an integer in [0, 4294967295], got 4294967296"
    ),
    "sweep trials -1": Bad([*SWEEP, "--trials", "-1"], "--trials must be an integer >= 0, got -1"),
    "sweep seeds 0": Bad([*SWEEP, "--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
    "sweep max-concurrent 0": Bad([*SWEEP, "--max-concurrent", "0"], "--max-concurrent must be an integer >= 1, got 0"),
    "sweep max-concurrent 1.5": Bad(
        [*SWEEP, "--max-concurrent", "1.5"], "--max-concurrent must be an integer, got '1.5'"
    ),
    "sweep parts bogus": Bad([*SWEEP, "--parts", "grid"], "--parts must be a comma-separated subset of"),
    "sweep parts empty": Bad(
        [*SWEEP, "--parts", ","], "--parts must be a comma-separated subset of ['ablation', 'search'], got ''"
    ),
    "sweep profile": Bad([*SWEEP, "--profile", "huge"], "--profile must be one of 'quick', 'full', got 'huge'"),
    "sweep experiment": Bad([*SWEEP, "--experiment", " "], "--experiment must be a name, got ' '"),
    "sweep unknown option": Bad([*SWEEP, "--bogus", "2"], "unrecognized arguments: --bogus 2"),
    # ---- sweep: cases ----
    "sweep nothing": Bad(["sweep"], "name the cases to sweep or pass --all"),
    "sweep both": Bad(["sweep", "--all", "conv1d_dying_relu"], "pass --all, not both"),
    "sweep unknown case": Bad(["sweep", "ghost"], "unknown case 'ghost'"),
    "sweep same case twice": Bad(
        [*SWEEP, "conv1d_dying_relu"], "cases must be named once each, got 'conv1d_dying_relu' twice"
    ),
    "sweep same name": Bad(
        ["sweep", "one.py:Twin", "two.py:Twin"],
        "cases must have distinct names, got 'twin' from both 'one.py:Twin' and 'two.py:Twin'",
        (_write("one.py", TWIN), _write("two.py", TWIN), _store()),
    ),
    "sweep case output shape": Bad(
        ["sweep", "bad.py:Narrow"],
        "case 'twin': the model's output must have the target's shape, got (8, 1) against (8, 4)",
        (_write("bad.py", TWIN + NARROW),),
    ),
    "sweep case nan data": Bad(["sweep", "bad.py:Holey"], "case 'twin'", (_write("bad.py", TWIN + HOLEY),)),
    # ---- sweep: tracking store ----
    "sweep tracking scheme": Bad(
        [*SWEEP, "--tracking-uri", "foo://bar"], "--tracking-uri must be sqlite:///PATH or http(s)://"
    ),
    "sweep tracking sqlite:/": Bad([*SWEEP, "--tracking-uri", "sqlite:/x.db"], "--tracking-uri must be sqlite:///PATH"),
    "sweep tracking path": Bad([*SWEEP, "--tracking-uri", "mlruns"], "--tracking-uri must be sqlite:///PATH or http"),
    "sweep tracking no folder": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///no/x.db"], "--tracking-uri must be in an existing folder"
    ),
    "sweep tracking folder": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///{tmp}/runs"],
        "--tracking-uri must name a file, got the folder",
        (_folder("runs"),),
    ),
    "sweep tracking unwritable": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///{ro}/x.db"], "--tracking-uri must be writable", needs="ro"
    ),
    "sweep tracking garbage": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///bad.db"],
        "--tracking-uri must be an SQLite file",
        (_write("bad.db", b"\x00garbage" * 99),),
    ),
    "sweep tracking cut": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///cut.db"],
        "--tracking-uri must be a whole SQLite file",
        (_store("cut.db", cut=True),),
    ),
    "sweep tracking not mlflow": Bad(
        [*SWEEP, "--tracking-uri", "sqlite:///other.db"],
        "--tracking-uri must be an MLflow store, got the SQLite file",
        (_other_sqlite,),
    ),
    "sweep tracking bad port": Bad(
        [*SWEEP, "--tracking-uri", "http://127.0.0.1:port"], "--tracking-uri must be a well-formed URI"
    ),
    "sweep tracking no host": Bad([*SWEEP, "--tracking-uri", "http://:5000"], "--tracking-uri must be http(s)://HOST"),
    "sweep tracking down": Bad(
        [*SWEEP, "--tracking-uri", "http://127.0.0.1:{closed}"], "--tracking-uri must be a reachable MLflow"
    ),
    "sweep tracking 404": Bad(
        [*SWEEP, "--tracking-uri", "{http}/health-only"], "--tracking-uri must be an MLflow tracking server"
    ),
    "sweep tracking html": Bad([*SWEEP, "--tracking-uri", "{http}/html"], "its API answer is not MLflow's"),
    "sweep tracking json": Bad([*SWEEP, "--tracking-uri", "{http}/json"], "its API answer is not MLflow's"),
    "sweep tracking 401": Bad(
        [*SWEEP, "--tracking-uri", "http://ann:s3cret@{hostport}/auth"],
        "must be a server that accepts your credentials, got 'http://ann:***@",
    ),
    "sweep tracking https down": Bad(
        [*SWEEP, "--tracking-uri", "https://ann:s3cret@127.0.0.1:{closed}"], "got 'https://ann:***@127.0.0.1:"
    ),
    # ---- sweep: Optuna journal and results folder ----
    "sweep journal no folder": Bad(
        [*SWEEP, "--optuna-storage", "no/optuna.log"], "--optuna-storage must be in an existing folder"
    ),
    "sweep journal folder": Bad(
        [*SWEEP, "--optuna-storage", "logs"], "--optuna-storage must name a file", (_folder("logs"),)
    ),
    "sweep journal unwritable": Bad(
        [*SWEEP, "--optuna-storage", "{ro}/optuna.log"], "--optuna-storage must be writable", needs="ro"
    ),
    "sweep journal corrupt": Bad(
        [*SWEEP],
        "--optuna-storage must be an Optuna journal (a JSON entry per line), got 'optuna.log' (line 2)",
        (_write("optuna.log", ENTRY + "Expecting value\n" + ENTRY), _store()),
    ),
    "sweep journal cut": Bad(
        [*SWEEP], "--optuna-storage must end in a whole entry", (_write("optuna.log", ENTRY + ENTRY[:20]),)
    ),
    "sweep journal url": Bad(
        [*SWEEP, "--optuna-storage", "sqlite:///o.db"], "--optuna-storage must be a journal file path"
    ),
    "sweep results file": Bad(
        [*SWEEP, "--results-dir", "res"], "--results-dir must be a folder, got the file 'res'", (_write("res", "x"),)
    ),
    "sweep results under file": Bad([*SWEEP, "--results-dir", "res/sub"], "(under the file", (_write("res", "x"),)),
    "sweep results unwritable": Bad(
        [*SWEEP, "--results-dir", "{ro}/results"], "--results-dir must be writable", needs="ro"
    ),
    # ---- sweep: Ray address ----
    "sweep address down": Bad([*SWEEP, "--address", "127.0.0.1:{closed}"], "--address must be a running Ray head node"),
    "sweep address http": Bad(
        [*SWEEP, "--address", "{hostport}"], "(a web server answers there, not Ray's gRPC)", (_store(),)
    ),
    "sweep address silent": Bad([*SWEEP, "--address", "127.0.0.1:{silent}"], "(no answer to a gRPC handshake in 1 s)"),
    "sweep address no port": Bad([*SWEEP, "--address", "nowhere"], "--address must be HOST:PORT of a Ray head node"),
    "sweep address bad port": Bad([*SWEEP, "--address", "127.0.0.1:99999"], "--address must be HOST:PORT"),
    "sweep RAY_ADDRESS http": Bad(SWEEP, "RAY_ADDRESS must be a Ray head node", env={"RAY_ADDRESS": "{hostport}"}),
    # ---- rank ----
    "rank empty file": Bad(
        ["rank", "--tracking-uri", "sqlite:///empty.db"],
        "--tracking-uri must be an MLflow store, got the empty file",
        (_write("empty.db", b""),),
    ),
    "rank no store": Bad(["rank"], "--tracking-uri must be an existing MLflow store, got 'sqlite:///mlflow.db'"),
    "rank garbage": Bad(
        ["rank", "--tracking-uri", "sqlite:///bad.db"], "must be an SQLite file", (_write("bad.db", "not sqlite"),)
    ),
    "rank cut": Bad(
        ["rank", "--tracking-uri", "sqlite:///cut.db"], "must be a whole SQLite file", (_store("cut.db", cut=True),)
    ),
    "rank not mlflow": Bad(
        ["rank", "--tracking-uri", "sqlite:///other.db"], "without MLflow's tables", (_other_sqlite,)
    ),
    "rank folder": Bad(
        ["rank", "--tracking-uri", "sqlite:///{tmp}"], "--tracking-uri must name a file, got the folder"
    ),
    "rank scheme": Bad(["rank", "--tracking-uri", "foo://bar"], "--tracking-uri must be sqlite:///PATH or http"),
    "rank not mlflow server": Bad(
        ["rank", "--tracking-uri", "{http}/health-only"], "must be an MLflow tracking server"
    ),
    "rank journal missing": Bad(
        ["rank", "--optuna-storage", "missing.log"], "--optuna-storage must be an existing Optuna journal", (_store(),)
    ),
    "rank journal folder": Bad(
        ["rank", "--optuna-storage", "logs"], "--optuna-storage must name a file", (_folder("logs"), _store())
    ),
    "rank journal corrupt": Bad(
        ["rank", "--optuna-storage", "o.log"], "(line 1)", (_write("o.log", "{oops\n" + ENTRY), _store())
    ),
    "rank default journal corrupt": Bad(
        ["rank"], "got 'optuna.log' (line 2)", (_write("optuna.log", ENTRY + '{"not": "optuna"}\n' + ENTRY), _store())
    ),
    # ---- report ----
    "report out file": Bad(
        ["report", "--out", "r.html"],
        "--out must be a folder, got the file 'r.html'",
        (_write("r.html", "x"), _store()),
    ),
    "report out under file": Bad(
        ["report", "--out", "r.html/sub"], "(under the file", (_write("r.html", "x"), _store())
    ),
    "report out unwritable": Bad(["report", "--out", "{ro}/report"], "--out must be writable", (_store(),), needs="ro"),
    "report no out": Bad(["report"], "the following arguments are required: --out"),
    "report out empty": Bad(["report", "--out", ""], "--out must name a folder, got ''", (_store(),)),
    "report out no parent": Bad(
        ["report", "--out", "missing/report"],
        "--out must be a folder in an existing folder, got 'missing/report' (no folder ",
        (_store(),),
    ),
    "sweep results dir no parent": Bad(
        [*SWEEP, "--results-dir", "runs/today"],
        "--results-dir must be a folder in an existing folder, got 'runs/today'",
    ),
    "report empty file": Bad(
        ["report", "--out", "r", "--tracking-uri", "sqlite:///empty.db"],
        "got the empty file",
        (_write("empty.db", b""),),
    ),
}


# ---- fixtures -----------------------------------------------------------------------------------------------


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    """A web server that is not MLflow: /health answers 200, the API path 404, HTML, other JSON or 401."""

    def do_GET(self) -> None:
        if self.path.startswith("/html"):
            self._answer(200, "text/html", b"<html>hello</html>")
        elif self.path.startswith("/json"):
            self._answer(200, "application/json", b'{"status": "ok"}')
        elif self.path.startswith("/auth"):
            self._answer(401, "text/plain", b"who are you")
        elif self.path.endswith("/health"):
            self._answer(200, "text/plain", b"OK")
        else:
            self._answer(404, "text/plain", b"not found")

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep stderr for the command under test
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """An HTTP server that is not MLflow nor Ray, a port that accepts and never answers, and a closed port."""
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes connections; nobody ever reads or writes
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    hostport = f"127.0.0.1:{web.server_address[1]}"
    yield {
        "http": f"http://{hostport}",
        "hostport": hostport,
        "silent": str(silent.getsockname()[1]),
        "closed": str(closed_port),
    }
    web.shutdown()
    silent.close()


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> Path:
    """A real MLflow store with one finished run, made once (MLflow's schema migration takes seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    analysis.records.ready_tracking_store(f"sqlite:///{path}")
    client = MlflowClient(f"sqlite:///{path}")
    run = client.create_run(client.create_experiment("overfit"))
    client.set_terminated(run.info.run_id)
    return path


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write to: by its mode, or, for root, by the immutable attribute."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("no unwritable folder: root, and chattr +i is not supported here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture(autouse=True)
def _short_handshakes(monkeypatch):
    monkeypatch.setattr(search.engine.preflight, "HANDSHAKE_TIMEOUT", 1.0)
    monkeypatch.setattr(analysis.records, "HANDSHAKE_TIMEOUT", 1.0)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # importing a case file writes no __pycache__
    for name in ("RAY_ADDRESS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


# ---- the checks ---------------------------------------------------------------------------------------------


def _prepare(bad: Bad, request, tmp_path: Path, servers: dict[str, str], monkeypatch) -> list[str]:
    if bad.needs == "no-cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    fill = {**servers, "tmp": str(tmp_path)}
    if bad.needs == "ro":
        fill["ro"] = str(request.getfixturevalue("unwritable"))
    for make in bad.setup:
        make(tmp_path, lambda: request.getfixturevalue("mlflow_store"))
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value.format(**fill))
    monkeypatch.chdir(tmp_path)
    return [arg.format(**fill) for arg in bad.argv]


def _contents(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time: what "nothing created" compares."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _running_runs(folder: Path) -> int:
    count = 0
    for db in folder.glob("*.db"):
        try:
            with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
                count += connection.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
        except sqlite3.Error:  # not an MLflow store (the bad input itself)
            pass
    return count


def _assert_one_line(err: str, says: str) -> None:
    assert says in err, err
    assert err.startswith("overfit: error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "s3cret" not in err, err


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name, request, tmp_path, servers, monkeypatch, capsys):
    bad = BAD[name]
    argv = _prepare(bad, request, tmp_path, servers, monkeypatch)
    capsys.readouterr()  # what making the module's MLflow store logged
    before = _contents(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    _assert_one_line(err, bad.says.format(**servers))
    assert out == ""
    assert _contents(tmp_path) == before, "the refused command created or changed a file"
    assert _running_runs(tmp_path) == 0
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized(), "Ray was started"


def test_there_are_at_least_60_distinct_bad_inputs():
    assert len({tuple(bad.argv) + tuple(bad.env.items()) for bad in BAD.values()}) >= 60
    assert {bad.argv[0] for bad in BAD.values()} >= {"trial", "diagnose", "sweep", "rank", "report"}


@pytest.mark.parametrize(
    "name", ["trial threads -1", "sweep cpus nan", "rank empty file", "sweep address http", "report out file"]
)
def test_bad_input_through_the_console_script(name, request, tmp_path, servers, monkeypatch):
    bad = BAD[name]
    argv = _prepare(bad, request, tmp_path, servers, monkeypatch)
    before = _contents(tmp_path)
    done = subprocess.run([str(OVERFIT), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    _assert_one_line(done.stderr, bad.says)
    assert _contents(tmp_path) == before


def test_a_reader_accepts_what_a_writer_refuses(tmp_path: Path, mlflow_store: Path):
    """A journal whose last line a killed writer cut short still reads (Optuna skips it); an empty file is a new
    store for the sweep, but no store for the analysis."""
    journal = tmp_path / "optuna.log"
    journal.write_text(ENTRY + ENTRY[:20])
    analysis.records.check_journal(journal, writer=False)
    (tmp_path / "empty.db").touch()
    analysis.records.check_tracking_uri(f"sqlite:///{tmp_path}/empty.db", writer=True)
    analysis.records.check_tracking_uri(f"sqlite:///{mlflow_store}", writer=False)
    shutil.copy(mlflow_store, tmp_path / "copy.db")
    analysis.records.check_tracking_uri(f"sqlite:///{tmp_path}/copy.db", writer=True)
    assert json.loads(ENTRY)["op_code"] == 0
