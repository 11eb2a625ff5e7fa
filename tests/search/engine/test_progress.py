"""The live display: what a person sees in a terminal 80 columns wide, and in a log when output is piped (a real
piped sweep: tests/search/engine/test_sweep.py, through a head node)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.engine.case_run import Done
from search.engine.progress import Progress, columns
from spaces import CASES

CASE_FILE = Path(__file__).resolve().parents[2] / "sweep_case.py"
OVERFIT = Path(sys.executable).parent / "overfit"
SWEEP = ["sweep", f"{CASE_FILE}:TinyCollapse", f"{CASE_FILE}:OtherTinyCollapse", "--seeds", "1", "--trials", "2"]
FIXED = Done(part="ablation", label="lr=0.01", outcome="fixed", fixed=True, pruned=False, rel_error=0.02)
PRUNED = Done(part="ablation", label="activation=tanh", outcome="collapsed", fixed=False, pruned=True, rel_error=1.0)


def test_piped_it_writes_a_line_when_a_case_ends_and_nothing_between():
    stream = io.StringIO()
    display = Progress(stream=stream, every=3600)
    display.status("starting Ray")
    display.add_case("tiny_collapse", total=2)
    display.trial_started("tiny_collapse")
    display.trial_finished("tiny_collapse", FIXED)
    assert stream.getvalue() == "overfit: starting Ray\n"
    display.trial_finished("tiny_collapse", PRUNED)
    display.close()
    (line,) = stream.getvalue().splitlines()[1:]
    assert line.startswith("tiny_collapse: 2/2 trials in 0:0") and line.endswith("1 fixed 1 pruned best 2.0e-02")


def test_piped_the_minute_summary_counts_the_running_trials_as_one_starts():
    stream = io.StringIO()
    display = Progress(stream=stream, every=0)
    display.add_case("tiny_collapse", total=3)
    display.trial_started("tiny_collapse")
    display.trial_started("tiny_collapse")
    assert stream.getvalue().splitlines()[-1] == "overfit: 0/3 trials done, 2 running, 0 fixed"
    display.trial_finished("tiny_collapse", FIXED)  # its slot is free until the next trial starts: no line here
    assert stream.getvalue().splitlines()[-1] == "overfit: 0/3 trials done, 2 running, 0 fixed"
    display.trial_started("tiny_collapse")
    assert stream.getvalue().splitlines()[-1] == "overfit: 1/3 trials done, 2 running, 1 fixed"


def test_off_it_writes_nothing_but_warnings():
    stream = io.StringIO()
    display = Progress(enabled=False, stream=stream)
    display.status("starting Ray")
    display.add_case("tiny_collapse", total=1)
    display.trial_finished("tiny_collapse", FIXED)
    display.close()
    assert stream.getvalue() == ""


def screen(session: str) -> list[str]:
    shown = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True)
    return shown.stdout.splitlines()


@pytest.mark.slow(seconds=35)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_a_terminal_80_columns_wide_each_case_keeps_one_line(tmp_path):
    session = f"overfit-{tmp_path.name}"
    command = " ".join([str(OVERFIT), *SWEEP, "; echo EXIT=$?; sleep 600"])
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "30", "-c", str(tmp_path), command],
        check=True,
    )
    seen: list[list[str]] = []
    try:
        deadline = time.time() + 300
        while not any(line.startswith("EXIT=") for line in (seen[-1] if seen else [])):
            assert time.time() < deadline, "the sweep did not end"
            time.sleep(1)
            seen.append(screen(session))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    final = seen[-1]
    assert "EXIT=0" in final
    for shown in seen:
        assert max(len(line) for line in shown) <= 80
        for case in ("tiny_collapse", "other_tiny_collapse"):  # redrawn in place: never a stale copy
            assert sum(line.lstrip(" ⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏").startswith(case + " ") for line in shown) <= 1, shown
    bars = [line for line in final if "5/5" in line]
    assert len(bars) == 2 and all("fixed" in line and "pruned" in line for line in bars), final
    summary = next(i for i, line in enumerate(final) if line.startswith("tiny_collapse: 5 trials"))
    assert final[summary - 1] == ""  # the summary, a line below the display


def test_a_documented_case_keeps_its_whole_line_in_80_columns():
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    bars = RichProgress(*columns(), console=console)
    longest = max(CASES, key=len)
    bars.add_task(longest, total=114, completed=104, counts="14 fixed 60 pruned best 3.2e-06")
    console.print(bars.make_tasks_table(bars.tasks))
    (line,) = console.file.getvalue().splitlines()
    assert longest in line and "104/114" in line and "best 3.2e-06" in line
    assert "…" not in line and len(line) <= 80, line  # no column cut short: the name and times are whole
