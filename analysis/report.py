"""Rankings as text (``overfit rank``) and as a report with figures (``overfit report --out DIR``).

The report is rendered from jinja2 templates (``analysis/templates/report.html.j2`` and ``report.md.j2``) over the
figure functions of :mod:`analysis.figures`, rather than from the executed notebook through nbconvert: it is a
command that works where only the core dependencies are installed (no Jupyter, no kernel to start, seconds instead
of the tens a kernel and its imports take), and its structure (contents, anchors, sweep settings, links to the
MLflow runs) is written once as a page instead of being faked through cell outputs. The notebook stays the place to
explore; both draw with :mod:`analysis.figures`, so they cannot disagree.

``DIR`` receives ``report.html``, ``report.md`` (the same content) and the figures they show, nothing else: names
come from the stored case names and trial labels made safe (letters, digits, ``_``, ``.`` and ``-``), and every path is
checked to stay inside ``DIR``, whatever the store holds.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from matplotlib.figure import Figure

from analysis.changes import show, show_error
from analysis.figures import comparison_trials, curves_figure, effects_figure, reconstruction_figure
from analysis.loading import Sweep
from analysis.ranking import CaseRanking
from analysis.records import ARTIFACTS, WHOLE_FIX_PREFIX

__all__ = ["format_ranking", "write_report"]

TITLE = "Which change fixed each failure"
INTRO = (
    "A trial is fixed when its final relative error (MSE over the target's variance; 1 means no better than "
    "predicting the mean) is under the case's threshold. Factors are ranked by: fixing it alone in the ablation "
    "(weight 2), belonging to a smallest fixing set of changes (1), importance over the Optuna search (1), and how "
    "far their best single change moved the error toward the threshold (0.5)."
)
CURVES = (
    "Relative error per epoch (MSE over the target's variance; 1 is no better than predicting the mean, the dotted "
    "line) of the baseline, the documented fix and the best smallest fixes: the trials the ranking names. The dashed "
    "green line is the threshold under which a trial counts as fixed; a trial that ran off the scale is drawn in the "
    "grey band at the top, marked with a triangle where it left."
)
SETTINGS_ORDER = ("profile", "seeds", "trials", "parts", "seed", "prune", "deterministic")
"""The sweep settings shown first; any other param of the parent run follows, sorted."""


def format_ranking(ranking: CaseRanking, width: int | None = None) -> str:
    """The plain-text block ``overfit rank`` prints for one case.

    ``width``: wrap the lines to this many columns (a terminal's), each continuation indented under its text;
    None keeps one line per factor (for a log, or grep).
    """
    fix = " + ".join(f"{k}={show(v)}" for k, v in ranking.documented_fix.items()) or "none recorded"
    lines = [
        (
            f"{ranking.case}: {ranking.trials} trials, {ranking.fixed_trials} fixed; baseline relative error "
            f"{show_error(ranking.baseline_error)}; documented fix: {fix}",
            "  ",
        )
    ]
    for row in ranking.table.itertuples():
        place = f"{int(row.rank)}." if row.rank is not None and not pd.isna(row.rank) else "-"
        lines.append((f"  {place:<3} {row.factor:<15} {row.score:5.2f}  {row.explanation}", " " * 29))
    if ranking.minimal_fixes:
        shown = ", ".join(f"{fix} ({show_error(fix.error)})" for fix in ranking.minimal_fixes[:5])
        lines.append((f"  smallest fixes: {shown}", " " * 4))
    if ranking.note:
        lines.append((f"  note: {ranking.note}", " " * 4))
    if width is None:
        return "\n".join(line for line, _ in lines)
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False) for line, indent in lines
    )


def write_report(sweep: Sweep, rankings: Mapping[str, CaseRanking], out: str | Path) -> Path:
    """Writes report.html and report.md with their figures into ``out``; returns the HTML's path.

    Example:
        >>> sweep = load_mlflow("sqlite:///mlflow.db")                          # doctest: +SKIP
        >>> write_report(sweep, rank(sweep), "report")                          # doctest: +SKIP
        PosixPath('report/report.html')
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = _Files(folder)
    previous = files.images_of("report.html")
    cases = [_case(sweep, ranking, files) for ranking in rankings.values()]
    keys = {key for case in cases for key in case["settings"]}
    names = [k for k in SETTINGS_ORDER if k in keys] + sorted(keys - set(SETTINGS_ORDER))
    context = {
        "title": TITLE,
        "intro": INTRO,
        "curves_text": CURVES,
        "tracking_uri": _without_credentials(sweep.tracking_uri or "-"),
        "experiment": sweep.experiment or "-",
        "cases": cases,
        "settings": [{"name": k, "values": [case["settings"].get(k, "-") for case in cases]} for k in names],
    }
    templates = _templates()
    files.write_text("report.md", templates.get_template("report.md.j2").render(context))
    page = files.write_text("report.html", templates.get_template("report.html.j2").render(context))
    for name in previous - files.used:  # the figures of an earlier report here that this one has not drawn again
        (files.folder / name).unlink(missing_ok=True)
    return page


def _case(sweep: Sweep, ranking: CaseRanking, files: _Files) -> dict[str, Any]:
    """What the templates show of one case; draws and saves its figures."""
    case, info = ranking.case, sweep.cases[ranking.case]
    slug = files.slug(case)
    fix = ", ".join(f"{k}={show(v)}" for k, v in ranking.documented_fix.items())
    ranked = ranking.table.dropna(subset=["rank"])
    fix_ranks = [int(r) for f, r in zip(ranked["factor"], ranked["rank"], strict=True) if f in ranking.documented_fix]
    view: dict[str, Any] = {
        "name": case,
        "anchor": slug,
        "title": info.title,
        "trials": ranking.trials,
        "fixed": ranking.fixed_trials,
        "top": ", ".join(ranking.top(2)) or "-",
        "fix": fix or "-",
        "fix_rank": ", ".join(map(str, sorted(fix_ranks))) or "-",
        "baseline_error": show_error(ranking.baseline_error),
        "threshold": f"{info.threshold:g}" if info.threshold else "-",
        "parent": _run(sweep, info.sweep_id),
        "note": ranking.note,
        "settings": {k: show(v) for k, v in info.settings.items() if not (k == "case_ref" and v == case)},
        "ranking": [
            {
                "rank": "-" if pd.isna(row.rank) else int(row.rank),
                "factor": row.factor,
                "change": row.change,
                "score": f"{row.score:.2f}",
                "explanation": row.explanation,
            }
            for row in ranking.table.itertuples()
        ],
        "fixes": [
            {
                "changes": str(fix),
                "count": fix.count(),
                "error": show_error(fix.error),
                "trial": _best_trial(fix.label, str(fix)),
            }
            for fix in ranking.minimal_fixes
        ],
        "effects": files.save(effects_figure(ranking, info.threshold), slug, "effects"),
        "curves": None,
        "comparison": [],
    }
    if not sweep.tracking_uri:  # per-epoch curves and samples live in MLflow only
        return view
    chosen = comparison_trials(ranking, sweep.of(case))
    history = sweep.curves(chosen["run_id"])
    curves = {
        legend: list(zip(points["epoch"], points["value"], strict=True))
        for legend, run_id in zip(chosen["legend"], chosen["run_id"], strict=True)
        if len(points := history[history["run_id"] == run_id])
    }
    if curves:
        title = f"{case}: the baseline against the fixes"
        view["curves"] = files.save(curves_figure(curves, threshold=info.threshold, title=title), slug, "curves")
    for index, row in enumerate(chosen.itertuples()):
        view["comparison"].append(
            {
                "role": row.role,
                "label": row.legend,
                "seed": row.seed,
                "outcome": row.outcome,
                "error": show_error(row.final_rel_error),
                "run": _run(sweep, row.run_id),
                "image": _reconstructions(sweep, row, f"{case}: {row.legend}", files, slug, f"{index}-{row.label}"),
            }
        )
    return view


def _best_trial(label: str, changes: str) -> str:
    """The best trial's name when it says more than the changes: ``search 3``, not ``lr=0.01`` twice."""
    if label.removeprefix(WHOLE_FIX_PREFIX) == changes.replace(" + ", " "):
        return ""
    return "best: " + (label.split(":")[0] if label.startswith("search") else label)


def _reconstructions(sweep: Sweep, row: Any, title: str, files: _Files, *name: str) -> str | None:
    """The trial's samples drawn again (its ``samples.json``), or its logged figure when it has no samples."""
    run_id = row.run_id
    samples = sweep.samples(run_id)
    if samples is not None:
        figure = reconstruction_figure(samples, time_dim=int(samples.get("time_dim", -1)), title=title)
        return files.save(figure, *name, "reconstructions")
    for stored in (ARTIFACTS["reconstructions"], "reconstructions.png"):  # sweeps recorded before samples.json
        with tempfile.TemporaryDirectory() as scratch:
            image = sweep.artifact(run_id, stored, scratch)
            if image is not None:
                return files.copy(image, *name, "reconstructions")
    return None


def _run(sweep: Sweep, run_id: str) -> dict[str, str | None]:
    return {"id": run_id, "url": sweep.run_url(run_id)}


class _Files:
    """The report's folder: every name made safe and unique, every path checked to stay inside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.used: set[str] = set()

    def slug(self, text: str) -> str:
        """Letters, digits, ``_``, ``.`` and ``-`` only, none leading: no ``/``, nothing hidden."""
        return re.sub(r"(?:[^A-Za-z0-9_.]|\.{2,})+", "-", text).strip("-_.").lower() or "x"

    def path(self, *parts: str, suffix: str = ".png") -> Path:
        stem = "-".join(self.slug(p) for p in parts)[:120]
        name, n = stem + suffix, 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}{suffix}"
        self.used.add(name)
        path = (self.folder / name).resolve()
        if path.parent != self.folder:  # cannot happen with slugs; a guard that it never does
            raise ValueError(f"report files must stay inside {self.folder}, got {path}")
        return path

    def save(self, figure: Figure, *parts: str) -> str:
        path = self.path(*parts)
        figure.savefig(path, dpi=90)
        return path.name

    def copy(self, source: Path, *parts: str) -> str:
        path = self.path(*parts, suffix=source.suffix or ".png")
        shutil.copyfile(source, path)
        return path.name

    def images_of(self, page: str) -> set[str]:
        """The figures an earlier report's ``page`` in this folder shows: files of this folder, by their names."""
        path = self.folder / page
        if not path.is_file():
            return set()
        names = set(re.findall(r'<img src="([^"/]+\.png)"', path.read_text(errors="replace")))
        return {name for name in names if (self.folder / name).is_file()}

    def write_text(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        return path


def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("analysis", "templates"),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = _markdown_text
    environment.filters["breakable"] = _breakable
    environment.globals["run_link"] = _html_run
    environment.globals["md_run"] = _markdown_run
    return environment


def _html_run(run: Mapping[str, str | None]) -> Markup:
    code = Markup("<code>{}</code>").format(run["id"])
    return Markup('<a href="{}">{}</a>').format(run["url"], code) if run["url"] else code


def _markdown_run(run: Mapping[str, str | None]) -> str:
    return f"[`{run['id']}`]({run['url']})" if run["url"] else f"`{run['id']}`"


def _breakable(value: Any) -> Markup:
    """A value (a path, a list, a snake_case name, a sum of loss terms) that may wrap after its slashes, commas,
    underscores and plus signs, and nowhere else: a narrow column breaks ``denoise_constant_output`` into its
    words, not mid-word. A value of several space-separated items (a config) keeps each item whole where it fits
    on a line (``batch_size=16``, not ``batch_`` and ``size=16``): the items are inline blocks.

    Example:
        >>> str(_breakable("/tmp/my_results,<b>"))
        '/<wbr>tmp/<wbr>my_<wbr>results,<wbr>&lt;b&gt;'
        >>> str(_breakable("lr=0.01 batch_size=8"))
        '<span class="item">lr=0.01</span> <span class="item">batch_<wbr>size=8</span>'
    """
    items = [re.sub(r"([/,_+])", r"\1<wbr>", item) for item in str(escape(value)).split(" ")]
    if len(items) == 1:
        return Markup(items[0])
    return Markup(" ".join(f'<span class="item">{item}</span>' for item in items))


def _markdown_text(value: Any) -> str:
    """Text for a Markdown line or table cell: no raw HTML, no cell breaks, no line breaks."""
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _without_credentials(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//", uri)
