"""Sweep efficiency: Ray Tune against a plain ``optuna`` loop running the same trials.

    python bench/sweep_efficiency.py [--case lstm_mean_prediction] [--seeds 3] [--trials 8] [--slots 2]

Runs one case's quick sweep (its ablation over ``--seeds`` seeds and ``--trials`` Optuna trials, unpruned so both
ways run the same epochs) as an ``overfit`` sweep on a local Ray instance, then the very same configs (read back
from MLflow) through ``study.optimize(n_jobs=slots)`` in one process, and prints:

* efficiency = sum of trial training seconds / (wall seconds x slots), for the sweep's ``fit`` and for the whole
  command (Ray's start-up, MLflow records and figures included);
* wall time of the sweep over wall time of the plain loop.

Targets (issue 3): efficiency >= 0.85, wall time within 1.15x of the plain loop.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import machine

from search.engine.plan import ablation
from search.engine.sweep import SweepOptions, run_sweep
from search.trainer.trial import run_trial
from spaces import get_case


def ray_sweep(case_name: str, seeds: int, trials: int, slots: int, folder: Path) -> tuple[float, float, float, list]:
    """(whole wall, fit wall, sum of trial seconds, [(config, seed)] of its trials) of the sweep."""
    from mlflow.tracking import MlflowClient

    options = SweepOptions.in_folder(
        folder, [case_name], seeds=seeds, trials=trials, prune=False, max_concurrent=slots, progress=False
    )
    started = time.perf_counter()
    (summary,) = run_sweep(options)
    whole = time.perf_counter() - started
    client = MlflowClient(options.tracking_uri)
    experiment = client.get_experiment_by_name("overfit")
    runs = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'")
    seconds = sum(run.data.metrics["seconds"] for run in runs)
    starts = [run.info.start_time for run in runs]
    ends = [run.info.end_time for run in runs]
    fit = (max(ends) - min(starts)) / 1000  # first trial start to last trial end, as MLflow saw them
    case = get_case(case_name)
    configs = [
        ({k: v for k, v in run.data.params.items() if k in case.space}, int(run.data.params["seed"])) for run in runs
    ]
    return whole, fit, seconds, configs


def plain_loop(case_name: str, configs: list, slots: int) -> tuple[float, float]:
    """(wall, sum of trial seconds) of the same trials through ``study.optimize(n_jobs=slots)``."""
    case = get_case(case_name)
    todo: queue.Queue = queue.Queue()
    for entry in configs:
        todo.put(entry)
    seconds = []

    def objective(trial: optuna.Trial) -> float:
        config, seed = todo.get_nowait()
        result = run_trial(case, config, seed=seed, profile="quick", device="cpu", threads=1)
        seconds.append(result.seconds)
        return result.rel_error

    study = optuna.create_study()
    started = time.perf_counter()
    study.optimize(objective, n_trials=todo.qsize(), n_jobs=slots)
    return time.perf_counter() - started, sum(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="lstm_mean_prediction")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    planned = len(ablation(get_case(args.case), args.seeds))
    with tempfile.TemporaryDirectory() as folder:
        whole, fit, ray_seconds, configs = ray_sweep(args.case, args.seeds, args.trials, args.slots, Path(folder))
    loop_wall, loop_seconds = plain_loop(args.case, configs, args.slots)
    print(f"{args.case}: {planned} ablation + {args.trials} search trials (quick, unpruned), {args.slots} slots")
    print(
        f"  ray sweep   wall {whole:7.1f} s (trials running {fit:7.1f} s)  trial seconds {ray_seconds:7.1f}  "
        f"efficiency {ray_seconds / (whole * args.slots):.3f} whole, {ray_seconds / (fit * args.slots):.3f} fit"
    )
    print(
        f"  plain loop  wall {loop_wall:7.1f} s  trial seconds {loop_seconds:7.1f}  "
        f"efficiency {loop_seconds / (loop_wall * args.slots):.3f}"
    )
    print(f"  sweep wall / plain wall: {whole / loop_wall:.3f} whole, {fit / loop_wall:.3f} trials running")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
