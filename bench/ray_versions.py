"""Which Ray releases `overfit` runs on: a virtualenv per Ray version, and the head-node sweep test in each.

    python bench/ray_versions.py [2.50.1 2.60.0 ...] [--venvs /tmp/overfit-ray] [--test EXPRESSION]

For each version: a virtualenv (kept under ``--venvs`` and reused), torch 2.13.0 (the CPU wheel on these machines),
this project editable with its test extra, and ``ray[tune]`` at that version; then the slow test that runs a
two-case sweep through a real ``ray start --head`` node (``-k head_node`` by default) with that venv's Ray, head and
driver alike. Prints one line per version: passed or failed, the install and test times, and the failure's last
line. A driver must run the same Ray as the cluster it joins, so the project's Ray requirement is the range these
runs support (README, "Ray versions").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import machine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VERSIONS = ["2.50.1", "2.55.1", "2.59.0", "2.60.0"]


def venv_for(version: str, root: Path) -> tuple[Path, float]:
    """The venv's python with ``version`` of Ray installed (built when missing), and the seconds it took."""
    folder = root / f"ray-{version}"
    python = folder / "bin" / "python"
    started = time.perf_counter()
    if not (folder / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # the local CPU wheel: a range would pull CUDA builds
        subprocess.run([*pip, "-e", f"{ROOT}[test]", f"ray[tune]=={version}"], check=True)
        (folder / ".installed").touch()
    return python, time.perf_counter() - started


def run_test(python: Path, expression: str) -> tuple[bool, float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-m", "pytest", "tests/search/engine/test_sweep.py", "-k", expression, "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("E ")), lines[-1] if lines else done.stderr[-200:])
    return done.returncode == 0, time.perf_counter() - started, reason.strip()[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=DEFAULT_VERSIONS)
    parser.add_argument("--venvs", default="/tmp/overfit-ray", help="where the virtualenvs are kept")
    parser.add_argument("--test", default="head_node", help="pytest -k expression of the tests to run")
    args = parser.parse_args()
    root = Path(args.venvs)
    root.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    for version in args.versions:
        python, installed = venv_for(version, root)
        passed, seconds, reason = run_test(python, args.test)
        verdict = "passed" if passed else f"FAILED: {reason}"
        print(f"ray {version:<8} install {installed:5.0f} s  test {seconds:5.0f} s  {verdict}", flush=True)


if __name__ == "__main__":
    main()
