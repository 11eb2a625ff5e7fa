"""The ``overfit`` command line: list cases, run one trial, diagnose a case's baseline.

Every bad input (unknown case, bad factor value, malformed ``--set``) ends in one line on stderr that says what
must hold and echoes the value, with exit status 2, before any training starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spaces import CASES, PROFILES, Case, CaseError, FactorError, get_case

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CaseError, FactorError, ValueError) as exc:
        print(f"overfit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("overfit: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overfit", description="Find which change lets a failing autoencoder memorise its data."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cases = commands.add_parser("cases", help="list the documented failure cases")
    cases.add_argument("--json", action="store_true", help="print JSON")
    cases.set_defaults(run=_cmd_cases)

    trial = commands.add_parser("trial", help="train one config of a case and judge it")
    trial.add_argument("case", help="a case name, or your own as file.py:NAME or module:NAME")
    trial.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FACTOR=VALUE",
        help="change one factor from the case's baseline (repeatable)",
    )
    trial.add_argument("--fix", action="store_true", help="apply the case's documented fix first")
    _common(trial)
    trial.set_defaults(run=_cmd_trial)

    diagnose = commands.add_parser("diagnose", help="run a case's baseline, name its symptoms, try the documented fix")
    diagnose.add_argument("cases", nargs="*", metavar="CASE", help="case names (or file.py:NAME)")
    diagnose.add_argument("--all", action="store_true", help="every documented case")
    diagnose.add_argument("--no-fix", action="store_true", help="run the baseline only")
    _common(diagnose)
    diagnose.set_defaults(run=_cmd_diagnose)

    sweep = commands.add_parser("sweep", help="ablation + Optuna search per case on Ray Tune, recorded in MLflow")
    sweep.add_argument("cases", nargs="*", metavar="CASE", help="case names (or file.py:NAME)")
    sweep.add_argument("--all", action="store_true", help="every documented case")
    sweep.add_argument("--parts", default="ablation,search", help="ablation, search or both (default both)")
    sweep.add_argument("--trials", type=int, default=12, help="Optuna trials per case (default 12)")
    sweep.add_argument("--seeds", type=int, default=2, help="seeds per ablation config (default 2)")
    sweep.add_argument("--profile", choices=PROFILES, default="quick", help="training budget (default quick)")
    sweep.add_argument("--seed", type=int, default=0, help="seeds the Optuna sampler (default 0)")
    sweep.add_argument("--no-prune", action="store_true", help="run every trial to the end (no collapse pruning)")
    sweep.add_argument(
        "--deterministic",
        action="store_true",
        help="ask Optuna's trials in synchronous batches: the same --seed gives the same configs (slower)",
    )
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial holds (default 1)")
    sweep.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPU share per trial, e.g. 0.25 (default: 0.25 when the cluster has GPUs, else 0)",
    )
    sweep.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: as resources allow)")
    sweep.add_argument("--address", default=None, help="join a Ray cluster at host:port (default: a local instance)")
    sweep.add_argument(
        "--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store (default sqlite:///mlflow.db)"
    )
    sweep.add_argument("--experiment", default="overfit", help="MLflow experiment (default overfit)")
    sweep.add_argument("--optuna-storage", default="optuna.log", help="Optuna journal file (default optuna.log)")
    sweep.add_argument("--results-dir", default="overfit-results", help="Ray results folder")
    sweep.add_argument("--resume", action="store_true", help="continue the interrupted sweep of each case")
    sweep.add_argument("--quiet", action="store_true", help="no live progress")
    sweep.add_argument("--json", action="store_true", help="print the summaries as JSON")
    sweep.set_defaults(run=_cmd_sweep)

    rank = commands.add_parser("rank", help="rank the factors that fixed each case of a finished sweep")
    _records(rank)
    rank.add_argument("--json", action="store_true", help="print the rankings as JSON")
    rank.set_defaults(run=_cmd_rank)

    report = commands.add_parser("report", help="write the rankings as Markdown and HTML with figures")
    _records(report)
    report.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, report.html and figures")
    report.set_defaults(run=_cmd_report)
    return parser


def _records(parser: argparse.ArgumentParser) -> None:
    """Where a finished sweep is read from (the same defaults as ``overfit sweep`` writes to)."""
    parser.add_argument("cases", nargs="*", metavar="CASE", help="cases to rank (default: every case swept)")
    parser.add_argument(
        "--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store (default sqlite:///mlflow.db)"
    )
    parser.add_argument("--experiment", default="overfit", help="MLflow experiment (default overfit)")
    parser.add_argument(
        "--optuna-storage",
        default=None,
        help="Optuna journal file or URL for the search's distributions (default optuna.log when present)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seeds data, weights and batch order (default 0)")
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="training budget (default quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as in a sweep)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def parse_overrides(case: Case, items: Sequence[str]) -> dict[str, Any]:
    """``["lr=1e-3", ...]`` as validated factor values for ``case``."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--set takes FACTOR=VALUE, got {item!r}")
        overrides[name.strip()] = case.factor(name.strip()).validate(value)
    return overrides


def _cmd_cases(args: argparse.Namespace) -> int:
    cases = [get_case(name) for name in _builtin_names()]
    if args.json:
        print(json.dumps([case.describe() for case in cases], indent=2))
        return 0
    width = max(len(case.name) for case in cases)
    for case in cases:
        fix = " ".join(f"{k}={v}" for k, v in case.fix.items())
        print(f"{case.name:<{width}}  {case.symptom:<11}  fix: {fix:<28}  {case.title}")
    return 0


def _cmd_trial(args: argparse.Namespace) -> int:
    from search.trainer.trial import run_trial

    case = get_case(args.case)
    overrides = dict(case.fix) if args.fix else {}
    overrides.update(parse_overrides(case, args.overrides))
    result = run_trial(case, overrides, seed=args.seed, profile=args.profile, device=args.device, threads=args.threads)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(_describe(result, case))
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from search.trainer.trial import run_trial

    if args.all == bool(args.cases):
        raise ValueError("name the cases to diagnose or pass --all, not both")
    cases = [get_case(name) for name in args.cases] if args.cases else [get_case(n) for n in _builtin_names()]
    reports = []
    for case in cases:
        runs = [("baseline", {})] + ([] if args.no_fix else [("fix", dict(case.fix))])
        for role, overrides in runs:
            result = run_trial(
                case, overrides, seed=args.seed, profile=args.profile, device=args.device, threads=args.threads
            )
            reports.append({"role": role, **result.to_json()})
            if not args.json:
                print(_describe_line(result, case, role), flush=True)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    _token_mode(args.address)
    from search.engine.sweep import SweepAborted, SweepOptions, run_sweep

    if args.all == bool(args.cases):
        raise ValueError("name the cases to sweep or pass --all, not both")
    options = SweepOptions(
        cases=list(args.cases) or _builtin_names(),
        parts=tuple(p.strip() for p in args.parts.split(",") if p.strip()),
        trials=args.trials,
        seeds=args.seeds,
        profile=args.profile,
        seed=args.seed,
        prune=not args.no_prune,
        deterministic=args.deterministic,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        address=args.address,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        optuna_storage=args.optuna_storage,
        results_dir=args.results_dir,
        resume=args.resume,
        progress=not args.quiet,  # on stderr: stdout stays the results (pure JSON under --json)
    )
    try:
        summaries = run_sweep(options)
    except KeyboardInterrupt:
        print("overfit: sweep interrupted; continue it with --resume", file=sys.stderr)
        return 130
    except SweepAborted as exc:
        print(f"overfit: sweep stopped: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print()
    for summary in summaries:
        fixes = [f"{label} ({t['fixed']}/{t['seeds']} seeds)" for label, t in summary["ablation"].items() if t["fixed"]]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items()))
        print(f"{summary['case']}: {summary['trials']} trials ({outcomes}); parent run {summary['parent_run_id']}")
        print(f"  one change that fixed it: {', '.join(fixes) if fixes else 'none'}")
    return 0


def _token_mode(address: str | None) -> None:
    """Joins a token-authenticated cluster as ``ray start --address`` does.

    Ray reads ``RAY_AUTH_MODE`` when it is imported and offers no public call to switch a process to token mode
    afterwards, so it is set here, before anything imports Ray, when the head's token is at hand
    (``~/.ray/auth_token``, which ``ray start --head`` writes, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``).
    """
    if not address or "RAY_AUTH_MODE" in os.environ:
        return
    if {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ) or (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _load_rankings(args: argparse.Namespace):
    from analysis import load_mlflow, rank, search_distributions

    sweep = load_mlflow(args.tracking_uri, args.experiment, args.cases or None)
    storage = args.optuna_storage or ("optuna.log" if Path("optuna.log").is_file() else None)
    distributions = search_distributions(storage, sweep) if storage else {}
    return sweep, rank(sweep, args.cases or None, distributions)


def _cmd_rank(args: argparse.Namespace) -> int:
    from analysis.report import format_ranking

    _, rankings = _load_rankings(args)
    if args.json:
        print(json.dumps([r.to_dict() for r in rankings.values()], indent=2))
        return 0
    print("\n\n".join(format_ranking(r) for r in rankings.values()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    sweep, rankings = _load_rankings(args)
    page = write_report(sweep, rankings, args.out)
    print(f"wrote {page} and {page.with_suffix('.md')}")
    return 0


def _builtin_names() -> list[str]:
    return list(CASES)


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{value:.3g}"


def _describe(result, case: Case) -> str:
    config = " ".join(f"{k}={v}" for k, v in result.config.items())
    verdict = (
        f"fixed: relative error {_fmt(result.rel_error)} < threshold {case.threshold:g}"
        if result.fixed
        else f"not fixed: relative error {_fmt(result.rel_error)}, threshold {case.threshold:g}"
    )
    lines = [
        f"{result.case}  seed {result.seed}  profile {result.profile}  on {result.device}",
        f"  config    {config}",
        f"  outcome   {result.outcome}  ({verdict})",
        f"  error     relative {_fmt(result.rel_error)} (best {_fmt(result.best_rel_error)})  mse {_fmt(result.mse)}",
        f"  ran       {result.epochs} epochs in {result.seconds:.1f} s"
        + (f", stopped: {result.stopped}" if result.stopped else ""),
    ]
    if result.error:
        lines.append(f"  raised    {result.error}")
    for symptom in result.symptoms:
        lines.append(f"  symptom   {symptom.name}: {symptom.evidence}")
    return "\n".join(lines)


def _describe_line(result, case: Case, role: str) -> str:
    changes = " ".join(f"{k}={v}" for k, v in case.fix.items()) if role == "fix" else "baseline"
    symptoms = ", ".join(s.name for s in result.symptoms) or "-"
    return (
        f"{case.name:<24} {changes:<24} {result.outcome:<11} rel {_fmt(result.rel_error):<9} "
        f"{result.epochs:>5} ep {result.seconds:6.1f} s  symptoms: {symptoms}"
    )
