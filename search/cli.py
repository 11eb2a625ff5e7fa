"""The ``overfit`` command line: list cases, run one trial, diagnose a case's baseline, sweep, rank, report.

Every bad input (an option out of range, an unknown case, a bad factor value, a store or folder that cannot be
used) ends in one line on stderr that names the option, says what must hold and echoes the value, with exit
status 2, before any training starts or anything is recorded.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import gc
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from spaces import CASES, PROFILES, Case, CaseError, FactorError, get_case

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the command itself, not a caller in a longer-lived process
        # At exit, the objects torch, Ray and MLflow leave behind are exempted from the interpreter's final
        # garbage collection, which otherwise takes 1-2 s after the work is done.
        atexit.register(gc.freeze)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (one line already printed), or --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.run(args)
    except (CaseError, FactorError, ValueError) as exc:
        print(f"overfit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("overfit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (head, a pager) stopped reading: the rest is not wanted, and says nothing
        _discard_stdout()
        return 1
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _discard_stdout()
        # A file that could not be written names itself; stdout does not.
        print(f"overfit: error: could not write {exc.filename or 'the output'} ({exc.strerror})", file=sys.stderr)
        return 1


def _discard_stdout() -> None:
    # Python flushes stdout again at exit, which would fail and print a traceback of its own.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line like every other bad input: no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"overfit: error: {_plain(message)}\n")


def _plain(message: str) -> str:
    """argparse's "argument --x: invalid int value: 'v'" as "--x must be an integer, got 'v'"."""
    found = re.fullmatch(r"argument (\S+?)(?:/\S+)?: (.*)", message)
    if not found:
        return message
    option, said = found.groups()
    kinds = {"int": "an integer", "float": "a number"}
    if invalid := re.fullmatch(r"invalid (\w+) value: (.*)", said):
        return f"{option} must be {kinds.get(invalid[1], invalid[1])}, got {invalid[2]}"
    if choice := re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", said):
        return f"{option} must be one of {choice[2]}, got {choice[1]}"
    if said.startswith("expected one argument"):
        return f"{option} must be followed by a value"
    return f"{option}: {said}"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="overfit", description="Find which change lets a failing autoencoder memorise its data.")
    parser.add_argument("--version", action="version", version=_version())
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
    sweep.add_argument(
        "--trials",
        type=int,
        default=12,
        help="Optuna trials per case after the ablation (default 12; 0: the ablation alone)",
    )
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
    sweep.add_argument(
        "--results-dir",
        default="overfit-results",
        help="Ray Tune's results and the sweep's trial log, which --resume reads (default overfit-results)",
    )
    sweep.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted sweep of each case; starts nothing new (a finished case is skipped)",
    )
    sweep.add_argument(
        "--store-patience",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for an unreachable tracking store before stopping (default 600)",
    )
    sweep.add_argument("--quiet", action="store_true", help="no live progress")
    sweep.add_argument(
        "--rank", action="store_true", help="then print each case's factor ranking, as overfit rank does"
    )
    sweep.add_argument("--json", action="store_true", help="print the summaries (rankings included) as JSON")
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
    parser.add_argument("cases", nargs="*", metavar="CASE", help="cases to read (default: every case swept)")
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
        if not sep or not name.strip():
            raise ValueError(f"--set must be FACTOR=VALUE, got {item!r}")
        if name.strip() in overrides:  # which one was meant is not for us to guess
            raise ValueError(f"--set must give each factor once, got {name.strip()} twice")
        try:
            overrides[name.strip()] = case.factor(name.strip()).validate(value)
        except ValueError as exc:  # the factor's own message, said of the option it came from
            raise ValueError(f"--set {exc}") from None
    return overrides


def _check_run_options(args: argparse.Namespace) -> None:
    """What ``trial`` and ``diagnose`` need before training: threads, seed and a device that exists here."""
    from search.engine.preflight import SEED_MAX

    if args.threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {args.threads}")
    if not 0 <= args.seed <= SEED_MAX:
        raise ValueError(f"--seed must be an integer in [0, {SEED_MAX}], got {args.seed}")
    if args.device is not None:
        _check_device(args.device)


def _check_device(text: str) -> None:
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be a torch device such as cpu or cuda:0, got {text!r}") from None
    if device.type == "cpu":
        return
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.mps, torch.xpu, ...
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        raise ValueError(
            f"--device must be cpu or an accelerator present here, got {text!r} (no {device.type} device here)"
        )
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if device.index is not None and device.index >= count:
        raise ValueError(f"--device must be one of the {count} {device.type} devices here, got {text!r}")


def _cmd_cases(args: argparse.Namespace) -> int:
    cases = [get_case(name) for name in _builtin_names()]
    if args.json:
        print(json.dumps([case.describe() for case in cases], indent=2))
        return 0
    names = max(len(case.name) for case in cases)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for case in cases:
        fix = " ".join(f"{k}={v}" for k, v in case.fix.items())
        head = f"{case.name:<{names}}  {case.symptom:<11}  fix: {fix:<28}"
        if width is None or len(head) + 2 + len(case.title) <= width:
            print(f"{head}  {case.title}")
        else:  # a narrow terminal: the title on its own lines, wrapped between words
            print(head.rstrip())
            print(textwrap.fill(case.title, width, initial_indent="    ", subsequent_indent="    "))
    return 0


def _cmd_trial(args: argparse.Namespace) -> int:
    from search.trainer.trial import run_trial

    _check_run_options(args)
    case = get_case(args.case)
    overrides = dict(case.fix) if args.fix else {}
    overrides.update(parse_overrides(case, args.overrides))
    result = run_trial(case, overrides, seed=args.seed, profile=args.profile, device=args.device, threads=args.threads)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(_wrapped(_describe(result, case)))
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from search.engine.preflight import check_cases
    from search.trainer.trial import run_trial

    if args.all and args.cases:
        raise ValueError("name the cases to diagnose or pass --all, not both")
    if not (args.all or args.cases):
        raise ValueError("name the cases to diagnose or pass --all")
    _check_run_options(args)
    cases = check_cases(args.cases or _builtin_names(), "diagnose")
    reports = []
    for case in cases:
        runs = [("baseline", {})] + ([] if args.no_fix else [("fix", dict(case.fix))])
        for role, overrides in runs:
            result = run_trial(
                case, overrides, seed=args.seed, profile=args.profile, device=args.device, threads=args.threads
            )
            reports.append({"role": role, **result.to_json()})
            if not args.json:
                print(_wrapped(_describe_line(result, case, role)), flush=True)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from analysis.records import tracking_client_uri
    from search.engine.preflight import validate

    if args.all and args.cases:
        raise ValueError("name the cases to sweep or pass --all, not both")
    if not (args.all or args.cases):
        raise ValueError("name the cases to sweep or pass --all")
    settings = dict(
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
        store_patience=args.store_patience,
        progress=not args.quiet,  # on stderr: stdout stays the results (pure JSON under --json)
    )
    cases = validate(SimpleNamespace(**settings))  # before the engine's import: Ray's alone takes seconds
    settings["tracking_uri"] = tracking_client_uri(args.tracking_uri)  # credentials out of the URI
    _ray_environment(args.address)
    # On a server's URI MLflow prints two links to stdout for every run it ends: two lines per trial among the
    # results, and no longer JSON under --json. The summaries name each case's parent run instead. The switch is
    # MLflow's documented environment variable; a user who sets it keeps their choice.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from search.engine.sweep import SweepAborted, SweepOptions, run_sweep

    try:
        summaries = run_sweep(SweepOptions(**settings), cases)
    except KeyboardInterrupt:
        print("overfit: sweep interrupted; continue it with --resume", file=sys.stderr)
        return 130
    except SweepAborted as exc:
        print(f"overfit: sweep stopped: {exc}", file=sys.stderr)
        return 1
    rankings = [summary.pop("ranking") for summary in summaries]
    if args.json:
        for summary, ranking in zip(summaries, rankings, strict=True):
            summary["ranking"] = ranking.to_dict() if ranking is not None else None
        print(json.dumps(summaries, indent=2))
        return 0
    _print_summaries(summaries)
    if args.rank:  # the rankings the sweep wrote to its parent runs: no second process reloading the stores
        print()
        _print_rankings([s["case"] for s in summaries], rankings)
    return 0


def _print_summaries(summaries: list[dict[str, Any]]) -> None:
    from analysis.records import WHOLE_FIX_PREFIX

    if sys.stdout.isatty():  # below the progress display (stderr) on a terminal; piped, the results start at once
        print()
    for summary in summaries:
        singles = {k: t for k, t in summary["ablation"].items() if not k.startswith(WHOLE_FIX_PREFIX)}
        wholes = {k.removeprefix(WHOLE_FIX_PREFIX): t for k, t in summary["ablation"].items() if k not in singles}
        # A task factor changes what is memorised: one that fits fits another task, it does not fix this one.
        task = set(summary.get("task_factors", ()))
        fitted = {label: f"{label} ({t['fixed']}/{t['seeds']} seeds)" for label, t in singles.items() if t["fixed"]}
        fixes = [shown for label, shown in fitted.items() if label.split("=", 1)[0] not in task]
        diagnostics = [shown for label, shown in fitted.items() if label.split("=", 1)[0] in task]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items()))
        lines = [
            f"{summary['case']}: {summary['trials']} trials ({outcomes}); parent run {summary['parent_run_id'][:8]}",
            f"  one change that fixed it: {', '.join(fixes) if fixes else 'none'}",
        ]
        if diagnostics:
            lines.append(f"  fits another task (a diagnostic, not a fix): {', '.join(diagnostics)}")
        for changes, t in wholes.items():  # a documented fix of several changes, also tried whole
            verdict = "fixed it" if t["fixed"] else "did not fix it"
            lines.append(f"  the documented fix, whole ({changes}): {verdict} ({t['fixed']}/{t['seeds']} seeds)")
        print(_wrapped("\n".join(lines)))


def _wrapped(text: str) -> str:
    """``text`` wrapped between words to the terminal (as is when piped): a continued line is indented under the
    value of its ``  label   value`` line, or by four spaces."""
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    if width is None:
        return text
    lines = []
    for line in text.splitlines():
        label = re.match(r"\s+\S+\s{2,}", line)
        indent = " " * (label.end() if label and label.end() < width // 2 else 4)
        lines.append(
            textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
        )
    return "\n".join(lines)


def _print_rankings(cases: list[str], rankings: list[Any]) -> None:
    """One block per case (``format_ranking``), wrapped to the terminal; a case without a ranking says so."""
    from analysis.report import format_ranking

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    blocks = [
        format_ranking(ranking, width) if ranking is not None else f"{case}: nothing to rank (its parent run says why)"
        for case, ranking in zip(cases, rankings, strict=True)
    ]
    print("\n\n".join(blocks))


def _ray_environment(address: str | None) -> None:
    """Ray's settings that it reads once, when imported: set here, before anything imports Ray.

    - Joining a cluster (``--address``): token mode when the head's token is at hand (``~/.ray/auth_token``, which
      ``ray start --head`` writes, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), as ``ray start --address`` does.
      Ray offers no public call to switch a process to token mode after its import.
    - A local instance: every Ray process on 127.0.0.1. ``ray.init`` has no public argument for the address its
      processes bind (its ``_node_ip_address`` is private, and a loopback one is rewritten to the machine's address).
      ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is the environment switch ``ray start`` names for single-machine Ray:
      with it Ray takes 127.0.0.1 as the node's address and binds its listeners there (checked with ``ss -ltn``).
    """
    if "ray" in sys.modules or os.environ.get("RAY_ADDRESS"):
        return  # imported already (the command run in-process, as tests do), or a cluster named by the environment
    if address:
        named = {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ)
        if (named or (Path.home() / ".ray" / "auth_token").is_file()) and "RAY_AUTH_MODE" not in os.environ:
            os.environ["RAY_AUTH_MODE"] = "token"
    else:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _load_rankings(args: argparse.Namespace):
    from analysis.records import check_journal, check_output_folder, check_tracking_uri, tracking_client_uri

    # Read-only checks, cheapest first: nothing is created or changed before every one has passed.
    if getattr(args, "out", None) is not None:
        check_output_folder(args.out, "--out")
    storage = args.optuna_storage or ("optuna.log" if Path("optuna.log").is_file() else None)
    if storage:
        check_journal(storage, writer=False)
    check_tracking_uri(args.tracking_uri, writer=False)
    from analysis import load_mlflow, rank, search_distributions

    sweep = load_mlflow(tracking_client_uri(args.tracking_uri), args.experiment, args.cases or None)
    distributions = search_distributions(storage, sweep) if storage else {}
    return sweep, rank(sweep, args.cases or None, distributions)


def _cmd_rank(args: argparse.Namespace) -> int:
    _, rankings = _load_rankings(args)
    if args.json:
        print(json.dumps([r.to_dict() for r in rankings.values()], indent=2))
        return 0
    _print_rankings(list(rankings), list(rankings.values()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    sweep, rankings = _load_rankings(args)
    page = write_report(sweep, rankings, args.out)
    print(f"wrote {page} and {page.with_suffix('.md')}")
    return 0


def _version() -> str:
    """This package's version and those of the libraries a cluster must match (a driver runs its cluster's Ray)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    libraries = ", ".join(f"{name} {of(name)}" for name in ("ray", "optuna", "mlflow", "torch"))
    return f"overfit {of('overfit')} ({libraries})"


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
