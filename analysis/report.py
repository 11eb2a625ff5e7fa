"""Rankings as text (``overfit rank``) and as a Markdown + HTML report with figures (``overfit report``).

The report folder holds ``report.md``, ``report.html`` (the same content, images beside them) and per case
``{case}-effects.png`` (each single change against the baseline), ``{case}-curves.png`` (baseline against
the best fixes) and, where the sweep logged them, ``{case}-{trial}-reconstructions.png`` (inputs beside
their reconstructions).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from analysis.changes import show, show_error
from analysis.loading import Sweep
from analysis.plots import best_fixes, curves_figure, effects_figure
from analysis.ranking import CaseRanking
from analysis.records import ARTIFACTS

__all__ = ["format_ranking", "write_report"]

_TABLE = {
    "rank": "#",
    "factor": "factor",
    "change": "best change",
    "score": "score",
    "explanation": "why",
}


def format_ranking(ranking: CaseRanking) -> str:
    """The plain-text block ``overfit rank`` prints for one case."""
    fix = " + ".join(f"{k}={show(v)}" for k, v in ranking.documented_fix.items()) or "none recorded"
    lines = [
        f"{ranking.case}: {ranking.trials} trials, {ranking.fixed_trials} fixed; baseline relative error "
        f"{show_error(ranking.baseline_error)}; documented fix: {fix}"
    ]
    for row in ranking.table.itertuples():
        place = f"{int(row.rank)}." if row.rank is not None and not pd.isna(row.rank) else "-"
        lines.append(f"  {place:<3} {row.factor:<15} {row.score:5.2f}  {row.explanation}")
    if ranking.minimal_fixes:
        shown = ", ".join(f"{fix} ({show_error(fix.error)})" for fix in ranking.minimal_fixes[:5])
        lines.append(f"  smallest fixes: {shown}")
    if ranking.note:
        lines.append(f"  note: {ranking.note}")
    return "\n".join(lines)


def write_report(sweep: Sweep, rankings: dict[str, CaseRanking], out: str | Path) -> Path:
    """Writes report.md and report.html with their figures into ``out``; returns the HTML's path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    sections = [_header(sweep, rankings)]
    sections += [_case_section(sweep, ranking, folder) for ranking in rankings.values()]
    markdown = "\n\n".join(sections) + "\n"
    (folder / "report.md").write_text(markdown)
    page = folder / "report.html"
    page.write_text(_html(markdown, title="overfit: which change fixed each failure"))
    return page


def _header(sweep: Sweep, rankings: dict[str, CaseRanking]) -> str:
    lines = [
        "# Which change fixed each failure",
        "",
        f"Sweep records: `{sweep.tracking_uri}`, experiment `{sweep.experiment}`. A trial is *fixed* when its final "
        "relative error (MSE over the target's variance; 1 means no better than predicting the mean) is under the "
        "case's threshold. Factors are ranked by: fixing it alone in the ablation (weight 2), belonging to a "
        "smallest fixing set of changes (1), importance over the Optuna search (1), and how far their best "
        "single change moved the error toward the threshold (0.5).",
        "",
        "| case | trials | fixed | top factors | documented fix |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, ranking in rankings.items():
        fix = ", ".join(f"{k}={show(v)}" for k, v in ranking.documented_fix.items()) or "-"
        lines.append(f"| {case} | {ranking.trials} | {ranking.fixed_trials} | {', '.join(ranking.top(2))} | {fix} |")
    return "\n".join(lines)


def _case_section(sweep: Sweep, ranking: CaseRanking, folder: Path) -> str:
    case = ranking.case
    info = sweep.cases[case]
    parts = [f"## {case}", ""]
    if info.title:
        parts += [f"*{info.title}*", ""]
    parts += [
        f"{ranking.trials} trials, {ranking.fixed_trials} fixed; the baseline's relative error is "
        f"{show_error(ranking.baseline_error)} (threshold {info.threshold}). MLflow parent run `{info.sweep_id}`.",
        "",
    ]
    if ranking.note:
        parts += [f"> {ranking.note}", ""]
    parts += [_markdown_table(ranking.table.rename(columns=_TABLE)[list(_TABLE.values())]), ""]
    if ranking.minimal_fixes:
        parts += ["Smallest sets of changes that fixed it:", ""]
        parts += [
            f"- {fix} ({fix.trials} trial{'s' if fix.trials > 1 else ''}; best relative error {show_error(fix.error)}, "
            f"{fix.label})"
            for fix in ranking.minimal_fixes
        ]
        parts.append("")
    parts += [_figure(effects_figure(ranking, info.threshold), folder / f"{case}-effects.png", "one change at a time")]
    if sweep.tracking_uri:
        parts.append(_figure(curves_figure(sweep, ranking), folder / f"{case}-curves.png", "loss curves"))
        for row in best_fixes(ranking, sweep.of(case)).itertuples():
            name = f"{case}-{_slug(str(row.label))}-reconstructions.png"
            downloaded = sweep.artifact(row.run_id, ARTIFACTS["reconstructions"], folder / ".artifacts" / row.run_id)
            if downloaded is not None:
                downloaded.replace(folder / name)
                parts.append(f"![{row.label}: inputs beside reconstructions]({name})")
    return "\n".join(parts)


def _figure(figure: plt.Figure, path: Path, alt: str) -> str:
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return f"![{alt}]({path.name})"


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def _html(markdown: str, title: str) -> str:
    """The report's Markdown as HTML: headings, paragraphs, lists, tables and images are all it uses."""
    body, table, items = [], [], []

    def flush() -> None:
        if table:
            head, *rest = table
            body.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>")
            body.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rest)
            body.append("</tbody></table>")
            table.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for line in markdown.splitlines():
        if line.startswith("| "):
            cells = [_inline(c.strip().replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        if line.startswith("- "):
            items.append(_inline(line[2:]))
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = re.match(r"!\[(.*)\]\((.*)\)", line).groups()
            body.append(f'<p><img src="{html.escape(src)}" alt="{html.escape(alt)}"></p>')
        elif line.startswith("> "):
            body.append(f"<blockquote>{_inline(line[2:])}</blockquote>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "vertical-align:top}th{background:#f3f3f3}img{max-width:100%}blockquote{color:#8a4b00}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", escaped)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
