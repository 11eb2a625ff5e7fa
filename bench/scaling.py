"""Scaling: how well a sweep keeps many slots busy, and how many near-free trials the driver turns over a second.

    python bench/scaling.py replay [--from mlflow.db] [--slots 2 8 16] [--speed 1.0]
    python bench/scaling.py throughput [--trials 200] [--slots 2 8 16]

``replay`` reads the main job's trial durations (the ``seconds`` of every trial run in an ``overfit sweep --all``
store, by default ``./mlflow.db`` after ``make run``) and replays them through the real sweep engine, on a local Ray
instance with ``--slots`` logical CPUs (16 on a 2-core machine is fine: the replayed trials sleep for their
recorded time instead of using the CPU). Each recorded case becomes a bench-only case whose ablation holds one
trial per recorded duration. It runs them the old way (one sweep per case, one after another) and the new way (one
sweep for all cases, longest trials first) and prints, per slot count,
``utilisation = sum of recorded trial seconds / (wall from the first trial's start to the last one's end x slots)``.
Target (issue "Cluster-scale sweeps"): at least 0.9 at 16 slots for the new schedule.

``throughput`` runs ``--trials`` near-free trials (a Linear(4, 4) autoencoder of 30 epochs) through the engine and
through a bare Tune loop of no-op trials (Ray's own floor on this machine), and prints trials per second from the
first trial's start to the last one's end, and the overhead inside the actor per trial (the trial's time in its
actor less its training time). Targets: at least 15 trials/s at 16 logical slots; at most 0.1 s of overhead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import machine

ROOT = Path(__file__).resolve().parents[1]


# ---- replay ------------------------------------------------------------------------------------------------


def recorded_durations(store: Path) -> dict[str, list[float]]:
    """Per case of the store's latest sweeps, the recorded seconds of each of its trials."""
    from analysis import load_mlflow

    sweep = load_mlflow(f"sqlite:///{store.resolve()}")
    return {case: sorted(sweep.of(case)["seconds"].dropna().tolist(), reverse=True) for case in sweep.cases}


def replay_cases(durations: dict[str, list[float]], speed: float, folder: Path) -> list[str]:
    """Writes a module of bench-only cases, one per recorded case, whose trials sleep their recorded time."""
    lines = [
        "import time",
        "import torch",
        "from torch import nn",
        "from spaces import Budget, Case, Data, Factor",
        "",
        "class Sleeper(nn.Module):",
        "    def __init__(self, ms):",
        "        super().__init__()",
        "        self.seconds, self.layer = ms / 1000, nn.Linear(2, 2)",
        "    def forward(self, x):",
        "        if self.training:  # the training step takes the recorded time; measuring it is free",
        "            time.sleep(self.seconds)",
        "        return self.layer(x)",
        "",
    ]
    refs = []
    for index, (case, seconds) in enumerate(durations.items()):
        # One trial per recorded duration: the baseline's and the ablation grid's values, kept distinct.
        values: list[int] = []  # in milliseconds: whole numbers keep every label (and so every trial's key) distinct
        for s in seconds:
            ms = round(s * speed * 1000)
            while ms in values:
                ms += 1
            values.append(ms)
        lines += textwrap.dedent(
            f"""
            class Replay{index}(Case):
                name = "replay_{case}"
                title = "the recorded trials of {case}"
                space = {{"ms": Factor("ms", "sleep", low=0, high=10**9, integer=True, grid={tuple(values[1:])!r})}}
                baseline = {{"ms": {values[0]!r}}}
                budgets = {{"quick": Budget(epochs=1), "full": Budget(epochs=1)}}
                def make_data(self, seed, budget, config):
                    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(seed))
                    return Data(x, x.clone())
                def build_model(self, config):
                    return Sleeper(config["ms"])
            """
        ).splitlines()
        refs.append(f"{folder / 'replay_cases.py'}:Replay{index}")
    (folder / "replay_cases.py").write_text("\n".join(lines) + "\n")
    return refs


def sweep_spans(db: Path) -> list[tuple[int, int]]:
    """(start, end) in ms of every trial run in a sweep's store, as the driver recorded them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("overfit")
    runs = client.search_runs([experiment.experiment_id], "tags.`overfit.role` = 'trial'", max_results=50000)
    return [(r.info.start_time, r.info.end_time) for r in runs]


def utilisation(spans: list[tuple[int, int]], work: float, slots: int) -> tuple[float, float]:
    wall = (max(e for _, e in spans) - min(s for s, _ in spans)) / 1000
    return work / (wall * slots), wall


def run_replay(args: argparse.Namespace) -> None:
    import ray

    from search.engine.sweep import SweepOptions, run_sweep

    durations = recorded_durations(Path(args.store))
    work = sum(sum(s) for s in durations.values()) * args.speed
    count = sum(len(s) for s in durations.values())
    print(f"machine: {machine()}")
    print(f"replaying {count} trials of {len(durations)} cases, {work:.0f} s of trial time (speed {args.speed})")
    print(f"{'slots':>5}  {'one sweep per case':>20}  {'one sweep for all':>20}")
    for slots in args.slots:
        row = []
        for schedule in ("old", "new"):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                refs = replay_cases(durations, args.speed, folder)
                ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                try:
                    common = {"parts": ("ablation",), "seeds": 1, "prune": False, "progress": False}
                    batches = [[ref] for ref in refs] if schedule == "old" else [refs]
                    for batch in batches:
                        run_sweep(SweepOptions.in_folder(folder, batch, **common))
                finally:
                    ray.shutdown()
                share, wall = utilisation(sweep_spans(folder / "mlflow.db"), work, slots)
                row.append(f"{share:.2f} ({wall:5.0f} s)")
        print(f"{slots:>5}  {row[0]:>20}  {row[1]:>20}", flush=True)


# ---- throughput --------------------------------------------------------------------------------------------

NEAR_FREE = """
import torch
from torch import nn
from spaces import FACTORS, Budget, Case, Data

class NearFree(Case):
    name = "near_free"
    title = "a Linear(4, 4) autoencoder of 30 epochs"
    space = {"lr": FACTORS["lr"].narrow(low=1e-4, high=1e-1, grid=(1e-4, 3e-4, 1e-3, 3e-3, 2e-2, 3e-2, 5e-2, 0.1))}
    baseline = {"lr": 1e-2}
    budgets = {"quick": Budget(epochs=30), "full": Budget(epochs=30)}
    def make_data(self, seed, budget, config):
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone())
    def build_model(self, config):
        return nn.Linear(4, 4)
"""


def bare_tune(trials: int, slots: int) -> float:
    """Trials per second of no-op trials through Tune alone, with the settings the sweep uses."""
    import ray
    from ray import tune

    starts, ends = [], []

    class Times(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            starts.append(time.time())

        def on_trial_complete(self, iteration, trials, trial, **info):
            ends.append(time.time())

    def noop(config):
        tune.report({"rel_error": 1.0})

    ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tune.Tuner(
                noop,
                param_space={"i": tune.grid_search(list(range(trials)))},
                tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=slots),
                run_config=tune.RunConfig(storage_path=tmp, verbose=0, callbacks=[Times()]),
            ).fit()
    finally:
        ray.shutdown()
    return trials / (max(ends) - min(starts))


def engine_throughput(trials: int, slots: int) -> tuple[float, float]:
    """(trials per second, median overhead inside the actor per trial) of near-free trials through the engine."""
    import ray

    from analysis.records import TrialLog
    from search.engine.sweep import SweepOptions, run_sweep

    seeds = max(1, trials // 10)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "near_free.py").write_text(NEAR_FREE)
        ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            options = SweepOptions.in_folder(
                folder, [f"{folder / 'near_free.py'}:NearFree"], parts=("ablation",), seeds=seeds, progress=False
            )
            run_sweep(options)
        finally:
            ray.shutdown()
        spans = sweep_spans(folder / "mlflow.db")
        (log,) = (folder / "results").glob("sweep-*.jsonl")
        overhead = [
            e["metrics"]["actor_seconds"] - e["metrics"]["seconds"]
            for e in TrialLog(log).read()
            if e["metrics"].get("actor_seconds") is not None
        ]
    wall = (max(e for _, e in spans) - min(s for s, _ in spans)) / 1000
    return len(spans) / wall, statistics.median(overhead) if overhead else float("nan")


def run_throughput(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"{args.trials} near-free trials (Linear(4, 4), 30 epochs) per row")
    print(f"{'slots':>5}  {'Tune alone (no-op)':>18}  {'overfit sweep':>14}  {'overhead in actor':>18}")
    for slots in args.slots:
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            floor = bare_tune(args.trials, slots)
            rate, overhead = engine_throughput(args.trials, slots)
        print(f"{slots:>5}  {floor:>15.1f}/s  {rate:>11.1f}/s  {overhead:>16.3f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="replay the main job's trial durations at several slot counts")
    replay.add_argument("--from", dest="store", default="mlflow.db", help="the main job's sqlite store")
    replay.add_argument("--slots", type=int, nargs="+", default=[2, 8, 16])
    replay.add_argument("--speed", type=float, default=1.0, help="scale the recorded durations (0.5: twice as fast)")
    replay.set_defaults(run=run_replay)
    throughput = commands.add_parser("throughput", help="near-free trials per second at several slot counts")
    throughput.add_argument("--trials", type=int, default=200)
    throughput.add_argument("--slots", type=int, nargs="+", default=[2, 8, 16])
    throughput.set_defaults(run=run_throughput)
    args = parser.parse_args()
    os.environ.setdefault("RAY_ADDRESS", "")
    args.run(args)


if __name__ == "__main__":
    main()
