"""The rank and report commands on a recorded sweep (a real MLflow sqlite store, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import load_mlflow, rank
from analysis.report import format_ranking, write_report
from search.cli import main
from tests.analysis.handmade import TINY_RESULTS, record_sweep, tiny_case


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module: the tests only read it (a new MLflow store takes seconds to create)."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # where MLflow puts the store's artifacts
        record_sweep(uri, TINY_RESULTS)
    return uri


def test_report_writes_html_markdown_and_figures_and_nothing_else(store: str, tmp_path: Path):
    sweep = load_mlflow(store)
    page = write_report(sweep, rank(sweep), tmp_path / "report")
    names = {p.name for p in page.parent.iterdir()}
    assert names == {
        "report.md",
        "report.html",
        "tiny_collapse-effects.png",
        "tiny_collapse-curves.png",
        "tiny_collapse-0-baseline-reconstructions.png",  # drawn again from the trial's samples.json
        "tiny_collapse-1-lr-0.01-reconstructions.png",
    }
    html = page.read_text()
    assert '<a href="#tiny_collapse">tiny_collapse</a>' in html  # the contents list
    assert "<tr><td>profile</td><td>quick</td></tr>" in html and "<td>ablation,<wbr>search</td>" in html  # settings
    assert '<h3 id="tiny_collapse-curves">Loss curves</h3>' in html and "Relative error per epoch" in html
    assert "<h4>lr=0.01 (documented fix)</h4>" in html and "<h4>baseline</h4>" in html
    markdown = (page.parent / "report.md").read_text()
    assert "lr 1e-06→0.01 alone fixes it in 1/1 seeds" in markdown
    assert "- lr=0.01: 1 trial, best relative error 0.01\n" in markdown  # the label is not repeated


def test_a_report_written_again_removes_the_figures_it_no_longer_shows_and_nothing_else(store: str, tmp_path: Path):
    sweep = load_mlflow(store)
    out = tmp_path / "report"
    page = write_report(sweep, rank(sweep), out)
    drawn = {p.name for p in out.glob("*.png")}
    (out / "old-case-curves.png").write_bytes(b"png")  # as an earlier report of another case left it
    (out / "notes.png").write_bytes(b"png")  # the user's own, never shown by a report
    page.write_text(page.read_text().replace("</body>", '<img src="old-case-curves.png"></body>'))
    write_report(sweep, rank(sweep), out)
    assert {p.name for p in out.glob("*.png")} == drawn | {"notes.png"}


def test_runs_link_to_a_tracking_server_without_its_credentials(store: str):
    sweep = load_mlflow(store)
    sweep.tracking_uri = "http://user:secret@127.0.0.1:5000/"
    page = f"http://127.0.0.1:5000/#/experiments/{sweep.experiment_id}/runs/abc?workflowType=machine_learning"
    assert sweep.run_url("abc") == page
    sweep.tracking_uri = "sqlite:///mlflow.db"
    assert sweep.run_url("abc") is None


def test_stored_names_cannot_write_outside_the_report_folder(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record_sweep(uri, TINY_RESULTS, case=tiny_case("../evil"))
    record_sweep(uri, TINY_RESULTS, case=tiny_case("<b>/../../x"))
    sweep = load_mlflow(uri)
    out = tmp_path / "deep" / "report"
    before = set(tmp_path.rglob("*"))
    page = write_report(sweep, rank(sweep), out)
    written = sorted(p.relative_to(tmp_path) for p in set(tmp_path.rglob("*")) - before if p.is_file())
    assert written and all(p.parts[:2] == ("deep", "report") for p in written), written
    assert {p.name for p in out.iterdir()} >= {"evil-effects.png", "b-x-effects.png"}
    assert "&lt;b&gt;/../../x" in page.read_text() and "<b>" not in page.read_text()


def test_rank_prints_one_block_per_case(store: str, capsys):
    assert main(["rank", "--tracking-uri", store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny_collapse: 4 trials, 2 fixed; baseline relative error 1; documented fix: lr=0.01")
    assert "  1.  lr " in out and "smallest fixes: lr=0.01 (0.01)" in out
    assert format_ranking(rank(load_mlflow(store))["tiny_collapse"]) in out


def test_rank_json_and_report_command(store: str, tmp_path: Path, capsys):
    assert main(["rank", "--tracking-uri", store, "--json"]) == 0
    (case,) = json.loads(capsys.readouterr().out)
    assert case["ranking"][0]["factor"] == "lr" and case["minimal_fixes"][0]["changes"] == {"lr": 0.01}
    assert main(["report", "--tracking-uri", store, "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rank", "nope"], "overfit: error: case must be one of the swept ['tiny_collapse'], got 'nope'\n"),
        (["rank", "--experiment", "x"], "overfit: error: experiment (--experiment) must exist in"),
        (
            ["rank", "--optuna-storage", "missing.log"],
            "overfit: error: --optuna-storage must be an existing Optuna journal, got 'missing.log'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(store: str, argv, message, capsys):
    assert main([*argv, "--tracking-uri", store]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_a_configs_items_wrap_between_them_each_whole_where_it_fits():
    from analysis.report import _breakable

    assert str(_breakable("denoise_constant_output")) == "denoise_<wbr>constant_<wbr>output"  # one name: no span
    config = str(_breakable("batch_size=16 loss_terms=mse+frobenius"))
    assert config == (
        '<span class="item">batch_<wbr>size=16</span> <span class="item">loss_<wbr>terms=mse+<wbr>frobenius</span>'
    )
