"""Screenshots of a sweep where people review it: MLflow's UI, optuna-dashboard and the report, in headless Chromium.

Runs a small sweep in a temporary folder (or reuses one), starts ``mlflow ui`` and ``optuna-dashboard`` on free
ports of 127.0.0.1, writes the report with its run links pointing at that UI, and saves what a person sees:

====================================  ======================================================================
file                                  what it shows
====================================  ======================================================================
``01-experiment-opens.png``           the page the ``overfit`` experiment opens on in a new browser
``02-runs-expanded.png``              the experiment's runs, every parent run expanded
``03-parent-run.png``                 a case's parent run (description, metrics, params, tags)
``04-pruned-run.png``                 a pruned trial's run (why it stopped)
``05-fixed-run-figures.png``          a fixed trial's figures (its artifacts tab)
``06-optuna-study.png``               the case's study in optuna-dashboard
``07-report.png``                     the report's HTML, whole page
``report/``                           the report itself
====================================  ======================================================================

Usage (from the project's root, after ``make``)::

    .venv/bin/python bench/ui_screenshots.py                           # sweeps identity_tiny_variance, ~3 minutes
    .venv/bin/python bench/ui_screenshots.py --case lstm_mean_prediction --out shots
    .venv/bin/python bench/ui_screenshots.py --from DIR                # reuses DIR/mlflow.db and DIR/optuna.log

Needs the ``ui`` extra (``make`` installs it), Debian's ``chromium`` (installed with ``apt-get`` when
``/usr/bin/chromium`` is missing: run as root) and Playwright for Python (``pip``-installed when missing). Playwright
drives the system's Chromium; its own browser download is never used. The services listen on 127.0.0.1 only and are
stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1500, "height": 950}
CLASSIC = "?workflowType=machine_learning"  # MLflow 3.17 shows GenAI pages to a browser that never chose otherwise
SETTLE_MS = 5000  # the UIs render after their API calls return; long enough for both on 2 busy cores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case",
        help="the case to sweep and show (default: identity_tiny_variance, a cheap one; with --from, the case with the"
        " most fixed trials)",
    )
    parser.add_argument("--from", dest="source", type=Path, help="a folder holding mlflow.db and optuna.log to reuse")
    parser.add_argument("--out", type=Path, default=Path("ui-screenshots"), help="folder for the screenshots")
    args = parser.parse_args(argv)
    _ensure_browser()
    args.out.mkdir(parents=True, exist_ok=True)
    with _sweep_folder(args.source, args.case or "identity_tiny_variance") as folder:
        store = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow_port, dashboard_port = _free_port(), _free_port()
        ui = f"http://127.0.0.1:{mlflow_port}"
        dashboard = f"http://127.0.0.1:{dashboard_port}"
        mlflow_cmd = [BIN / "mlflow", "ui", "--backend-store-uri", store, "--host", "127.0.0.1"]
        dashboard_cmd = [BIN / "optuna-dashboard", folder / "optuna.log", "--host", "127.0.0.1"]
        with (
            _service([*mlflow_cmd, "--port", str(mlflow_port)], f"{ui}/health", args.out / "mlflow-ui.log"),
            _service([*dashboard_cmd, "--port", str(dashboard_port)], dashboard, args.out / "dashboard.log"),
        ):
            report = args.out / "report"
            shutil.rmtree(report, ignore_errors=True)
            _run([BIN / "overfit", "report", "--tracking-uri", ui, "--optuna-storage", folder / "optuna.log",
                  "--out", report], cwd=folder)  # fmt: skip
            _screenshots(store, ui, dashboard, folder / "optuna.log", report / "report.html", args.out, args.case)
    print(f"screenshots in {args.out.resolve()}")
    return 0


def _ensure_browser() -> None:
    """Debian's Chromium and Playwright's Python driver, installed when missing."""
    if not CHROMIUM.exists():
        print("installing Debian's chromium (apt-get)", file=sys.stderr)
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "install", "-y", "-qq", "chromium"])
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("installing playwright (pip)", file=sys.stderr)
        _run([sys.executable, "-m", "pip", "install", "--quiet", "playwright"])


@contextlib.contextmanager
def _sweep_folder(source: Path | None, case: str) -> Iterator[Path]:
    """The folder with the stores: ``source``, or a temporary one where a small sweep of ``case`` just ran."""
    if source is not None:
        for name in ("mlflow.db", "optuna.log"):
            if not (source / name).is_file():
                raise SystemExit(f"--from must name a folder holding {name}, got {str(source)!r}")
        yield source.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="overfit-ui-") as scratch:
        folder = Path(scratch)
        print(f"sweeping {case} in {folder} (1 seed, 4 search trials)", file=sys.stderr)
        _run([BIN / "overfit", "sweep", case, "--seeds", "1", "--trials", "4", "--quiet"], cwd=folder)
        yield folder


@contextlib.contextmanager
def _service(command: list, ready_url: str, log: Path) -> Iterator[None]:
    """A server started in its own process group, ready when ``ready_url`` answers; stopped on leaving."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(c) for c in command], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{command[0]} did not start; see {log}") from None
                time.sleep(1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _screenshots(
    store: str, ui: str, dashboard: str, journal: Path, report: Path, out: Path, case: str | None = None
) -> None:
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    from analysis.records import Tag

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("overfit").experiment_id
    runs = client.search_runs([experiment], max_results=5000)
    parents = [r for r in runs if r.data.tags.get(Tag.ROLE) == "sweep"]
    # The case asked for, or the one with the most to show.
    parents.sort(key=lambda r: (r.data.tags.get(Tag.CASE) != case, -r.data.metrics.get("fixed", 0)))
    if case is not None and not any(p.data.tags.get(Tag.CASE) == case for p in parents):
        print(f"--case {case!r} has no sweep in {store}: showing the case with the most fixed trials", file=sys.stderr)
    case = parents[0].data.tags.get(Tag.CASE) if parents else None
    pruned = min(
        (r for r in runs if r.data.tags.get(Tag.PRUNED) == "true"),
        key=lambda r: r.data.tags.get(Tag.CASE) != case,
        default=None,
    )
    fixed = sorted(
        (r for r in runs if r.data.tags.get(Tag.FIXED) == "true"), key=lambda r: r.data.tags.get(Tag.CASE) != case
    )
    run_page = f"{ui}/#/experiments/{experiment}/runs"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)

        def shoot(url: str, name: str, full_page: bool = False) -> None:
            page.goto(url)
            page.wait_for_timeout(SETTLE_MS)
            _close_assistant(page)
            page.screenshot(path=out / name, full_page=full_page)
            print(f"{name}: {page.url}", file=sys.stderr)

        shoot(f"{ui}/#/experiments/{experiment}", "01-experiment-opens.png")
        page.goto(f"{run_page}{CLASSIC}")
        page.wait_for_timeout(SETTLE_MS)
        _close_assistant(page)
        expanders = page.locator("button[data-component-id*='runnamecellrenderer']")
        for index in reversed(range(expanders.count())):  # bottom up: the parents above keep their place,
            expanders.nth(index).click()  # and the table ends scrolled to its top
            page.wait_for_timeout(500)
        page.screenshot(path=out / "02-runs-expanded.png")
        if parents:
            shoot(f"{run_page}/{parents[0].info.run_id}{CLASSIC}", "03-parent-run.png", full_page=True)
        if pruned is not None:
            shoot(f"{run_page}/{pruned.info.run_id}{CLASSIC}", "04-pruned-run.png", full_page=True)
        if fixed:
            run_id = fixed[0].info.run_id
            figure = next((p for p in _artifacts(client, run_id) if p.endswith(".png")), "")
            shoot(f"{run_page}/{run_id}/artifacts/{figure}{CLASSIC}", "05-fixed-run-figures.png")
        study = parents[0].data.tags.get(Tag.STUDY) if parents else None
        page.goto(f"{dashboard}/dashboard/studies/{_study_id(journal, study)}")
        page.wait_for_timeout(SETTLE_MS)
        with contextlib.suppress(Exception):  # the dashboard's own answer to runaway values
            page.get_by_text("Log y scale").click(timeout=2000)
            page.wait_for_timeout(1000)
        page.screenshot(path=out / "06-optuna-study.png", full_page=True)
        shoot(report.resolve().as_uri(), "07-report.png", full_page=True)
        browser.close()


def _close_assistant(page) -> None:
    """MLflow 3.17 opens its assistant's panel beside every page; a reader closes it first."""
    close = page.locator("button[aria-label='Close']")
    if close.count():
        with contextlib.suppress(Exception):
            close.first.click(timeout=2000)
            page.wait_for_timeout(300)


def _artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def _study_id(journal: Path, name: str | None) -> int:
    """The dashboard's id of the study ``name`` (the first study's when it is not found)."""
    from analysis.records import open_journal

    storage = open_journal(journal)
    with contextlib.suppress(KeyError):
        return storage.get_study_id_from_name(name or "")
    studies = storage.get_all_studies()
    return storage.get_study_id_from_name(studies[0].study_name) if studies else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: list, cwd: Path | None = None) -> None:
    subprocess.run([str(c) for c in command], cwd=cwd, check=True)


if __name__ == "__main__":
    sys.exit(main())
