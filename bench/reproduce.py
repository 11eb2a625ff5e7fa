"""Runs each thread's documented experiment on the full profile and writes the numbers side by side.

    python bench/reproduce.py [--out docs/reproduction.md] [CASE ...]

Every row is one real trial (seed 0, one CPU thread); the thread's number is quoted from the thread (each
case's ``source``). The Markdown written to ``--out`` is what docs/reproduction.md holds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import machine

from search.trainer.trial import TrialResult, run_trial
from spaces import Budget, Data, get_case
from spaces.cases.identity_tiny_variance import IdentityTinyVariance


class UniformIdentity(IdentityTinyVariance):
    """The answer's control in seed 003: the same layer on uniform [0, 1) data, 100 epochs, batch 80."""

    name = "identity_uniform_control"
    budgets = {"full": Budget(epochs=100, samples=100_000)}

    def make_data(self, seed: int, budget: Budget, config: dict) -> Data:
        x = torch.rand(int(budget.samples * 0.7), 84, generator=torch.Generator().manual_seed(seed))
        return Data(x, x.clone(), batch_size=config["batch_size"])


@dataclass
class Row:
    label: str
    thread: str
    overrides: dict[str, Any] = field(default_factory=dict)
    profile: str = "full"
    show: str = "mse"  # which of our figures answers the thread's: mse, epochs, rel
    seed: int = 0


EXPERIMENTS: dict[str, list[Row]] = {
    "conv1d_dying_relu": [
        Row("n = 1, ReLU", "fits", {"batch_size": 1}),
        Row("n = 16, ReLU (baseline)", "loss 0.2727", {}),
        Row("n = 16, LeakyReLU", "loss 0.000476", {"activation": "leaky_relu"}),
        Row("n = 16, ELU", "named as a fix", {"activation": "elu"}),
        Row("n = 16, fully connected decoder", "memorises more", {"decoder": "fc"}),
        Row("n = 16, ELU, quick profile (300 epochs)", "-", {"activation": "elu"}, profile="quick"),
    ],
    "denoise_constant_output": [
        Row("no normalisation (baseline), 200 steps", "constant output, about 0.5", {}, show="constant"),
        Row("BatchNorm1d, 200 steps", "fixed", {"normalization": "batch"}, show="rel"),
        Row("no normalisation, quick profile (800 steps)", "-", {}, profile="quick", show="constant"),
        Row("BatchNorm1d, quick profile (800 steps)", "-", {"normalization": "batch"}, profile="quick", show="rel"),
    ],
    "volume_divergence": [
        Row("AdamW lr 2e-4, beta1 0.5, three loss terms (baseline)", "improves, then diverges", {}, show="curve"),
        Row("the same, seed 1", "-", {}, show="curve", seed=1),
        Row("SGD with momentum", "more stable", {"optimizer": "sgd_momentum"}, show="curve"),
        Row("RMSProp", "more stable", {"optimizer": "rmsprop"}, show="curve"),
        Row("lr 2e-5", "lower lr helps", {"lr": 2e-5}, show="curve"),
        Row("MSE only", "fewer loss terms", {"loss_terms": "mse"}, show="curve"),
        Row("MSE only, lr 2e-3 (the case's fix)", "-", {"loss_terms": "mse", "lr": 2e-3}, show="curve"),
        Row("early stopping", "stop before it diverges", {"early_stopping": True}, show="curve"),
        Row("weight decay 0.1", "L2 regularisation", {"weight_decay": 0.1}, show="curve"),
    ],
    "identity_tiny_variance": [
        Row("raw data (baseline)", "loss about 1e-6, output unlike the input", {}, show="blind"),
        Row("per-sample standardisation", "fixed", {"transform": "standardize"}, show="blind"),
    ],
    "lstm_mean_prediction": [
        Row("hidden 5, Adam lr 1e-3 (baseline)", "never (1000 iterations, flat line)", {}, show="epochs"),
        Row("hidden 100", "942 iterations", {"hidden_size": 100}, show="epochs"),
        Row(
            "hidden 100, differenced", "215 iterations", {"hidden_size": 100, "transform": "difference"}, show="epochs"
        ),
        Row("hidden 5, lr 1e-6 (the asker's)", "flat line", {"lr": 1e-6}, show="epochs"),
    ],
}


def ours(result: TrialResult, show: str) -> str:
    verdict = f"{result.outcome}, rel {result.rel_error:.3g}"
    if show == "epochs":
        reached = "reached" if result.stopped == "stop_loss" else "never reached"
        return f"{reached} loss < 1e-4: {result.epochs} iterations (loss {result.history[-1].loss:.2e}); {verdict}"
    if show == "constant":
        last = result.history[-1]
        return f"output spread {last.spread:.3f} of the targets', mse {result.mse:.3g}; {verdict}"
    if show == "curve":
        best = min(result.history, key=lambda r: r.rel_error)
        return (
            f"rel {result.history[0].rel_error:.3g} -> best {best.rel_error:.3g} (epoch {best.epoch}) -> "
            f"final {result.rel_error:.3g}; {result.outcome}"
        )
    if show == "blind":
        return f"mse {result.mse:.2e}; {verdict}"
    if show == "rel":
        return verdict
    return f"mse {result.mse:.3g}; {verdict}"


def run_rows(name: str, rows: list[Row]) -> list[str]:
    case = get_case(name)
    lines = [f"### `{name}`", "", "| run | thread | ours | epochs | seconds |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        result = run_trial(case, row.overrides, seed=row.seed, profile=row.profile, device="cpu", threads=1)
        lines.append(
            f"| {row.label} | {row.thread} | {ours(result, row.show)} | {result.epochs} | {result.seconds:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(EXPERIMENTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.time()
    sections = []
    for name in args.cases:
        sections += [*run_rows(name, EXPERIMENTS[name]), ""]
    if "identity_tiny_variance" in args.cases:
        control = run_trial(UniformIdentity(), {"batch_size": 80}, seed=0, profile="full", device="cpu", threads=1)
        sections += [
            "Control (the answer's): the same layer on uniform [0, 1) data, 70,000 rows, batch 80, 100 epochs: "
            f"thread loss 0.2092 -> 0.0051; ours {control.history[0].loss:.4f} -> {control.history[-1].loss:.4f} "
            f"(rel {control.rel_error:.3g}, {control.seconds:.0f} s).",
            "",
        ]
        print(sections[-2], flush=True)
    footer = f"Machine: {machine()}; seed 0, one torch thread per trial; {time.time() - started:.0f} s in all."
    print(footer)
    if args.out:
        args.out.write_text("\n".join([*sections, footer, ""]))


if __name__ == "__main__":
    main()
