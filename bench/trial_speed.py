"""Seconds per quick trial, per case, on one CPU core (the budget a sweep slot gets).

    python bench/trial_speed.py [--profile quick] [--seed 0] [CASE ...]

Prints one row per case and trial (baseline, documented fix) with the wall seconds, seconds per epoch, the CPU
seconds, the epochs trained and measured, and the outcome, then the totals and the machine. Aim: every quick trial
under about 10 s, so one case's sweep fits minutes on 2 cores. Wall seconds count whatever else runs on the
machine; CPU seconds (this process's, one torch thread) much less so: compare those on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from search.trainer.trial import run_trial
from spaces import CASES, get_case


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=sorted(CASES))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # torch imports its compiler stack with the first optimizer (a second or more, once per process, on several
    # threads): paid here, not by the first trial.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    header = f"{'case':<24} {'trial':<9} {'seconds':>8} {'s/epoch':>8} {'cpu s':>8} {'epochs':>6} {'measured':>8}"
    print(f"{header}  outcome")
    total = total_cpu = 0.0
    for name in args.cases:
        case = get_case(name)
        for role, overrides in (("baseline", {}), ("fix", case.fix)):
            cpu = time.process_time()
            result = run_trial(case, overrides, seed=args.seed, profile=args.profile, device="cpu", threads=1)
            cpu = time.process_time() - cpu
            per_epoch = result.seconds / max(result.epochs, 1)
            total, total_cpu = total + result.seconds, total_cpu + cpu
            print(
                f"{name:<24} {role:<9} {result.seconds:8.2f} {per_epoch:8.4f} {cpu:8.2f} {result.epochs:6d} "
                f"{len(result.history):8d}  {result.outcome}",
                flush=True,
            )
    print(f"{'all':<24} {'':<9} {total:8.2f} {'':>8} {total_cpu:8.2f}")
    print(f"\nmachine: {machine()}; one torch thread per trial")


if __name__ == "__main__":
    main()
