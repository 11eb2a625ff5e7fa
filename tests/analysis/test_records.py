"""The storage contract's store checks, credentials and locks: what the sweep and the analysis both rely on."""

from __future__ import annotations

import base64
import fcntl
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from analysis import records
from analysis.records import (
    JournalLock,
    StoreError,
    check_journal,
    check_tracking_uri,
    open_journal,
    ready_tracking_store,
    redact,
    tracking_client_uri,
)

RECORDS = Path(records.__file__)


class _FakeMlflow(http.server.BaseHTTPRequestHandler):
    """Answers MLflow's experiments/search as MLflow does, and remembers the headers it was sent."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # the check's handshake
        self.do_POST()

    def do_POST(self) -> None:  # MLflow's client
        type(self).seen.append({"path": self.path, **self.headers})
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"experiments": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_mlflow() -> Iterator[str]:
    _FakeMlflow.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_passwords_are_never_shown():
    assert redact("http://ann:s3cret@host:5000/x") == "http://ann:***@host:5000/x"
    assert redact("https://ann:p@ss@host") == "https://ann:***@host"  # an unescaped @ in the password
    assert redact("http://host:5000") == "http://host:5000" and redact("sqlite:///a.db") == "sqlite:///a.db"
    with pytest.raises(StoreError, match=r"got 'http://ann:\*\*\*@127\.0\.0\.1:9'") as caught:
        check_tracking_uri("http://ann:s3cret@127.0.0.1:9", writer=True, timeout=1)
    assert "s3cret" not in str(caught.value)


def test_a_uri_with_credentials_works_and_connects_to_the_host_alone(fake_mlflow, clean_env):
    check_tracking_uri(f"http://ann:p%40ss@{fake_mlflow}", writer=True)
    (request,) = _FakeMlflow.seen
    assert request["path"] == "/api/2.0/mlflow/experiments/search?max_results=1"  # MLflow's REST API, not /health
    assert request["Host"] == fake_mlflow  # resolved and connected without the credentials
    assert request["Authorization"] == "Basic " + base64.b64encode(b"ann:p@ss").decode()


def test_mlflow_gets_the_credentials_from_the_environment(fake_mlflow, clean_env):
    from mlflow.tracking import MlflowClient

    uri = tracking_client_uri(f"http://ann:s3cret@{fake_mlflow}")
    assert uri == f"http://{fake_mlflow}"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("ann", "s3cret")
    check_tracking_uri(uri, writer=False)  # the check sends them too
    assert list(MlflowClient(uri).search_experiments()) == []
    expected = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert len(_FakeMlflow.seen) == 2 and all(r["Authorization"] == expected for r in _FakeMlflow.seen)


def test_a_new_store_is_made_under_a_lock_and_an_existing_one_is_left_alone(tmp_path: Path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    check_tracking_uri(uri, writer=True)
    ready_tracking_store(uri)
    check_tracking_uri(uri, writer=False)  # now a store the analysis can read
    size = (tmp_path / "mlflow.db").stat().st_size
    ready_tracking_store(uri)
    assert (tmp_path / "mlflow.db").stat().st_size == size
    assert (tmp_path / "mlflow.db.lock").exists()


@pytest.mark.slow
def test_two_commands_readying_one_new_store_at_once_both_succeed(tmp_path: Path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = f"from analysis.records import ready_tracking_store; ready_tracking_store({uri!r})"
    both = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in both]
    assert [p.returncode for p in both] == [0, 0], errors
    check_tracking_uri(uri, writer=False)


def test_a_journal_is_checked_line_by_line(tmp_path: Path):
    journal = tmp_path / "optuna.log"
    study = optuna.create_study(storage=open_journal(journal), study_name="s")
    study.tell(study.ask(), 1.0)
    check_journal(journal, writer=True)
    whole = journal.read_text()
    journal.write_text(whole + whole.splitlines()[0][:15])  # a writer killed mid-line
    check_journal(journal, writer=False)  # Optuna reads it, skipping the cut line
    with pytest.raises(StoreError, match="must end in a whole entry"):
        check_journal(journal, writer=True)  # the next entry would be glued to the cut line
    journal.write_text("[1, 2]\n" + whole)
    with pytest.raises(StoreError, match=r"must be an Optuna journal \(a JSON entry per line\), got .* \(line 1\)"):
        check_journal(journal, writer=False)


def _hold_lock(lock: Path) -> subprocess.Popen:
    """A process that takes the journal's lock, as a driver does while it writes, and then waits."""
    code = (
        "import importlib.util, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('records', {str(RECORDS)!r})\n"
        "records = importlib.util.module_from_spec(spec)\n"
        "sys.modules['records'] = records\n"
        "spec.loader.exec_module(records)\n"
        f"records.JournalLock({str(lock)!r}).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_killed_holder_of_the_journal_lock_does_not_delay_the_next_write(tmp_path: Path):
    journal = tmp_path / "optuna.log"
    holder = _hold_lock(Path(f"{journal}.flock"))
    with open(f"{journal}.flock") as probe, pytest.raises(BlockingIOError):
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while its holder lives
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    start = time.monotonic()
    study = optuna.create_study(storage=open_journal(journal), study_name="after-the-kill")
    study.tell(study.ask(), 0.5)
    assert time.monotonic() - start < 1.0
    assert [t.value for t in study.trials] == [0.5]


def test_an_old_optuna_symlink_lock_is_ignored(tmp_path: Path):
    """Optuna's own lock is a symlink ``optuna.log.lock`` that a killed driver leaves; Optuna waits out its grace
    period before breaking it. The journal is locked with flock now, so the old link is no obstacle."""
    journal = tmp_path / "optuna.log"
    journal.touch()
    os.symlink(journal, f"{journal}.lock")
    start = time.monotonic()
    study = optuna.create_study(storage=open_journal(journal), study_name="beside-a-stale-lock")
    study.tell(study.ask(), 0.5)
    assert time.monotonic() - start < 1.0


def test_the_journal_lock_is_exclusive_between_processes(tmp_path: Path):
    lock = tmp_path / "optuna.log.flock"
    holder = _hold_lock(lock)
    second = JournalLock(lock)
    try:
        waiting = threading.Thread(target=second.acquire, daemon=True)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked while the other process holds it
    finally:
        holder.kill()
        holder.wait(timeout=10)
    waiting.join(5)
    assert not waiting.is_alive()  # the kernel released the killed holder's lock
    second.release()
