"""Pruner rules, tried offline: record unpruned curves once, then replay them through any CollapsePruner settings.

    python bench/pruning_replay.py record --seed 1 --trials 16 --out curves.json [CASE ...]
    python bench/pruning_replay.py replay curves.json [--set warmup=0.2 --set creep=1.2 ...]

``record`` runs each case's Optuna search (quick profile) without pruning and keeps every trial's per-epoch
relative error and spread, and whether it ended fixed. ``replay`` feeds each curve to the pruner at the epochs
a sweep reports (``search/trainable.py``) and prints, per case, the epochs saved and the false prunes (a pruned
trial that ended fixed), as ``bench/pruning.py`` measures them live. A replay takes a second, a live run ten
minutes: choose rules on one seed's curves, then confirm on another seed with ``bench/pruning.py --seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.engine.pruning import CollapsePruner
from search.engine.trainable import report_every


def record(cases: list[str], seed: int, trials: int, out: Path) -> None:
    from mlflow.tracking import MlflowClient

    from search.engine.sweep import SweepOptions, run_sweep
    from spaces import get_case

    curves = []
    with tempfile.TemporaryDirectory() as folder:
        options = SweepOptions.in_folder(
            folder, cases, parts=("search",), trials=trials, seed=seed, prune=False, progress=False
        )
        client = MlflowClient(options.tracking_uri)
        for summary in run_sweep(options):
            budget = get_case(summary["case"]).budget("quick").epochs
            experiment = client.get_experiment_by_name("overfit")
            query = f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'"
            for run in client.search_runs([experiment.experiment_id], query):
                history = {
                    name: {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
                    for name in ("rel_error", "spread")
                }
                curves.append(
                    {
                        "case": summary["case"],
                        "budget": budget,
                        "params": dict(run.data.params),
                        "fixed": run.data.tags.get("overfit.fixed") == "true",
                        "rel_error": sorted(history["rel_error"].items()),
                        "spread": sorted(history["spread"].items()),
                    }
                )
    out.write_text(json.dumps(curves))
    print(f"{len(curves)} curves -> {out}")


def pruned_at(curve: dict, pruner: CollapsePruner) -> int | None:
    """The epoch a sweep would have pruned this trial at, or None."""
    budget, every = curve["budget"], report_every(curve["budget"])
    all_spreads = dict(curve["spread"])
    errors: dict[int, float] = {}  # what the sweep would have reported, by epoch
    spreads: dict[int, float] = {}
    for epoch, rel_error in curve["rel_error"]:
        if epoch % every and math.isfinite(rel_error):
            continue  # not a report epoch (a non-finite epoch is always reported)
        if epoch == budget and math.isfinite(rel_error):
            return None  # the last epoch: the sweep never prunes it
        errors[epoch], spreads[epoch] = rel_error, all_spreads.get(epoch, math.nan)
        if pruner.should_stop(errors, spreads, budget):
            return epoch
    return None


def replay(curves: list[dict], pruner: CollapsePruner) -> None:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # trials, pruned, run, unpruned, false
    for curve in curves:
        stop = pruned_at(curve, pruner)
        row = totals[curve["case"]]
        row[0] += 1
        row[1] += stop is not None
        row[2] += stop or len(curve["rel_error"])
        row[3] += curve["budget"]
        row[4] += stop is not None and curve["fixed"]
        if stop is not None and curve["fixed"]:
            print(f"  false prune: {curve['case']} {curve['params']} at epoch {stop}")
    totals["all"] = [sum(row[i] for row in totals.values()) for i in range(5)]
    print(f"{'case':<24} {'trials':>6} {'pruned':>6} {'epochs run':>10} {'unpruned':>9} {'saved':>6}  false prunes")
    for case, (trials, pruned, run, unpruned, false) in totals.items():
        print(f"{case:<24} {trials:>6} {pruned:>6} {run:>10} {unpruned:>9} {1 - run / unpruned:>6.1%}  {false}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run the searches unpruned and keep every curve")
    rec.add_argument("cases", nargs="*")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--trials", type=int, default=8)
    rec.add_argument("--out", type=Path, required=True)
    rep = commands.add_parser("replay", help="replay recorded curves through the pruner")
    rep.add_argument("curves", type=Path)
    rep.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a CollapsePruner setting")
    args = parser.parse_args()
    if args.command == "record":
        from spaces import CASES

        record(args.cases or sorted(CASES), args.seed, args.trials, args.out)
    else:
        settings = {name: float(value) for name, value in (item.split("=", 1) for item in args.set)}
        replay(json.loads(args.curves.read_text()), CollapsePruner(**settings))


if __name__ == "__main__":
    main()
