"""Collapse pruning: epochs saved and false prunes, per case.

    python bench/pruning.py [--trials 8] [--seed 0] [CASE ...]

Runs each case's Optuna search (quick profile) with the collapse pruner, then runs every pruned config to the
end without pruning, the same config and seed. Prints, per case: trials, pruned, epochs run against the epochs
the same search would have run without pruning, the share saved, and false prunes (a pruned config that, run to
the end, is fixed). Targets (issue 3): at least 40% of epochs saved, no false prune.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import machine

from search.engine.sweep import SweepOptions, run_sweep
from search.trainer.trial import run_trial
from spaces import CASES, get_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=sorted(CASES))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="the Optuna sampler's seed: another seed, other trials")
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    totals = {"run": 0, "full": 0, "pruned": 0, "false": 0, "trials": 0}
    print(f"{'case':<24} {'trials':>6} {'pruned':>6} {'epochs run':>10} {'unpruned':>9} {'saved':>6}  false prunes")
    with tempfile.TemporaryDirectory() as folder:
        options = SweepOptions.in_folder(
            folder, args.cases, parts=("search",), trials=args.trials, seed=args.seed, progress=False
        )
        summaries = run_sweep(options)
        client = MlflowClient(options.tracking_uri)
        experiment = client.get_experiment_by_name("overfit")
        for summary in summaries:
            case = get_case(summary["case"])
            budget = case.budget("quick").epochs
            runs = client.search_runs(
                [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'"
            )
            run_epochs = full_epochs = pruned = false = 0
            for run in runs:
                epochs = int(run.data.metrics.get("epochs", budget))
                full_epochs += budget
                if run.data.tags.get("overfit.pruned") != "true":
                    run_epochs += epochs
                    continue
                pruned += 1
                run_epochs += epochs
                config = {name: run.data.params[name] for name in case.space}
                to_the_end = run_trial(
                    case, config, seed=int(run.data.params["seed"]), profile="quick", device="cpu", threads=1
                )
                false += to_the_end.fixed
                if to_the_end.fixed:
                    print(
                        f"  false prune: {run.data.tags.get('overfit.label')} {config} seed {run.data.params['seed']}: "
                        f"pruned at epoch {epochs} (rel {run.data.metrics.get('final_rel_error', float('nan')):.3g}), "
                        f"to the end rel {to_the_end.rel_error:.3g}",
                        flush=True,
                    )
            saved = 1 - run_epochs / full_epochs
            print(
                f"{case.name:<24} {len(runs):>6} {pruned:>6} {run_epochs:>10} {full_epochs:>9} {saved:>6.0%}  {false}",
                flush=True,
            )
            for key, value in (
                ("run", run_epochs),
                ("full", full_epochs),
                ("pruned", pruned),
                ("false", false),
                ("trials", len(runs)),
            ):
                totals[key] += value
    print(
        f"{'all':<24} {totals['trials']:>6} {totals['pruned']:>6} {totals['run']:>10} {totals['full']:>9} "
        f"{1 - totals['run'] / totals['full']:>6.0%}  {totals['false']}"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
