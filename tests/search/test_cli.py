"""The ``overfit`` command as users run it: a real process, real exit codes, one-line errors."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from search.cli import main
from spaces import CASES


def overfit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=300)


def test_cases_json_lists_the_documented_cases():
    done = overfit("cases", "--json")
    assert done.returncode == 0, done.stderr
    cases = {c["name"]: c for c in json.loads(done.stdout)}
    assert set(cases) == set(CASES) and len(cases) == 5
    assert cases["conv1d_dying_relu"]["baseline"]["activation"] == "relu"
    assert cases["lstm_mean_prediction"]["symptom"] == "collapsed"


def test_cases_table_names_symptom_and_fix():
    done = overfit("cases")
    assert "identity_tiny_variance" in done.stdout and "transform=standardize" in done.stdout


def test_cases_table_wraps_its_titles_between_words_in_a_narrow_terminal(capsys, monkeypatch):
    from search.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["cases"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "    1-D conv autoencoder cannot overfit a batch of signals (dying ReLU)" in lines  # whole words


def test_trial_and_diagnose_wrap_between_words_in_a_narrow_terminal(capsys, monkeypatch, example_case_ref):
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["trial", example_case_ref, "--set", "hidden_size=16"]) == 0
    assert main(["diagnose", example_case_ref, "--no-fix"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 60, lines
    config = next(i for i, line in enumerate(lines) if line.startswith("  config    "))
    assert lines[config + 1].startswith(" " * 12) and lines[config + 1].strip()  # continued under its value
    words = {word for line in lines for word in line.split()}
    assert "hidden_size=16" in words and "baseline" in words  # no word cut at the edge


def test_a_documented_fix_of_several_changes_is_not_listed_as_one_change(capsys):
    from search.cli import _print_summaries

    tallies = {"baseline": {"fixed": 0, "seeds": 1}, "lr=0.002": {"fixed": 1, "seeds": 1}}
    tallies["fix: lr=0.002 loss_terms=mse"] = {"fixed": 1, "seeds": 1}
    outcomes = {"fixed": 2, "diverged": 1}
    _print_summaries(
        [{"case": "volume", "trials": 3, "outcomes": outcomes, "parent_run_id": "0" * 32, "ablation": tallies}]
    )
    out = capsys.readouterr().out
    assert "  one change that fixed it: lr=0.002 (1/1 seeds)\n" in out
    assert "  the documented fix, whole (lr=0.002 loss_terms=mse): fixed it (1/1 seeds)\n" in out


def test_a_task_factor_that_fits_is_a_diagnostic_not_a_change_that_fixed_it(capsys):
    from search.cli import _print_summaries

    tallies = {
        "baseline": {"fixed": 0, "seeds": 1},
        "activation=elu": {"fixed": 1, "seeds": 1},
        "batch_size=1": {"fixed": 1, "seeds": 1},
        "batch_size=4": {"fixed": 1, "seeds": 1},
    }
    summary = {"case": "conv1d", "trials": 4, "outcomes": {"fixed": 3}, "parent_run_id": "0" * 32}
    _print_summaries([{**summary, "ablation": tallies, "task_factors": ["batch_size"]}])
    out = capsys.readouterr().out
    assert "  one change that fixed it: activation=elu (1/1 seeds)\n" in out
    assert "  fits another task (a diagnostic, not a fix): batch_size=1 (1/1 seeds), batch_size=4 (1/1 seeds)\n" in out


def test_trial_json_of_a_user_case(example_case_ref):
    done = overfit("trial", example_case_ref, "--set", "hidden_size=16", "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"case", "config", "rel_error", "mse", "fixed", "symptoms", "epochs", "seconds"} <= set(result)
    assert result["case"] == "narrow_code" and result["config"]["hidden_size"] == 16 and result["seed"] == 1
    assert result["fixed"] is True and result["outcome"] == "fixed"


def test_diagnose_runs_baseline_and_fix(example_case_ref):
    done = overfit("diagnose", example_case_ref, "--json")
    assert done.returncode == 0, done.stderr
    baseline, fix = json.loads(done.stdout)
    assert (baseline["role"], fix["role"]) == ("baseline", "fix")
    assert not baseline["fixed"] and fix["fixed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trial", "nope"), "unknown case 'nope'; choose from ['conv1d_dying_relu'"),
        (("trial", "conv1d_dying_relu", "--set", "activation=swish"), "--set activation must be one of ["),
        (("trial", "conv1d_dying_relu", "--set", "lr=fast"), "got 'fast'"),
        (("trial", "conv1d_dying_relu", "--set", "width=3"), "unknown factor 'width' for case 'conv1d_dying_relu'"),
        (("trial", "conv1d_dying_relu", "--set", "lr"), "--set must be FACTOR=VALUE, got 'lr'"),
        (("diagnose",), "name the cases to diagnose or pass --all"),
        (("diagnose", "ghost", "--no-fix"), "unknown case 'ghost'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert main(list(args)) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert err.count("\n") == 1 and out == ""


def test_bad_input_from_a_real_process():
    done = overfit("trial", "conv1d_dying_relu", "--set", "optimizer=lion")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "overfit: error: --set optimizer must be one of ['adam', 'sgd_momentum', 'rmsprop'], got 'lion'\n"
    )


def test_output_cut_short_ends_quietly_or_in_one_line():
    # A reader that stops early (`overfit rank | head -1`) is no error worth a traceback; a full disk is one line.
    # `true` reads nothing and is gone long before the command, which imports for a second or two, writes.
    command = f"{shlex.quote(sys.executable)} -m search cases --json"
    done = subprocess.run(f"{command} | true", shell=True, capture_output=True, text=True, timeout=300)
    assert done.stderr == ""
    full = subprocess.run(f"{command} > /dev/full", shell=True, capture_output=True, text=True, timeout=300)
    assert full.returncode == 1
    assert full.stderr == "overfit: error: could not write the output (No space left on device)\n"


def test_version_names_the_libraries_a_cluster_must_match(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("overfit ") and "ray 2." in out and "mlflow " in out
