"""One case within a sweep: its parent run, its search, its finished trials, its line of progress and its summary.

The sweep makes one :class:`CaseRun` per case and hands every finished trial of that case to :meth:`CaseRun.finished`,
which judges nothing itself: it logs the trial, tells Optuna, queues the MLflow write and updates the display.
Once every trial of the case has finished, the case's summary (its ranking in the parent run's description, the
metrics to sort parents by, the comparison figure) is written in the background while other cases' trials run.
"""

from __future__ import annotations

import statistics
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from analysis.records import Tag, TrialLog, TrialSpec
from search.engine.plan import ablation
from search.engine.recording import TrialRecord, trial_entry
from search.engine.searcher import CaseSearch
from search.engine.tracking import Recorder, Writer
from spaces import Case

__all__ = ["CaseRun", "Done"]


@dataclass(frozen=True)
class Done:
    """How one finished trial ended: all a case's summary needs."""

    part: str
    label: str
    outcome: str
    fixed: bool
    pruned: bool
    rel_error: float | None

    @classmethod
    def from_tags(cls, tags: dict[str, str], rel_error: float | None) -> Done:
        return cls(
            part=tags.get(Tag.PART, ""),
            label=tags.get(Tag.LABEL, ""),
            outcome=tags.get(Tag.OUTCOME, "error"),
            fixed=tags.get(Tag.FIXED) == "true",
            pruned=tags.get(Tag.PRUNED) == "true",
            rel_error=rel_error,
        )


@dataclass
class CaseRun:
    """One case of a sweep.

    Attributes:
        case: the case.
        parent_id: its parent run in MLflow.
        search: its trials to hand out and its Optuna study.
        expected: how many trials the case's sweep holds in all (those finished before a resume included).
        recorder, writer, log: where finished trials go (MLflow, through the background writer; the trial log).
        display: the live display (see :class:`search.engine.progress.Progress`).
        budget: a trial's epochs.
        done: every finished trial by key, those of an interrupted run included.
        dataset: the case's data as an MLflow dataset input, logged with every trial.
        summarise: writes the case's summary to its parent run (called in the background once the case is done).
        ranking: the case's :class:`analysis.ranking.CaseRanking`, once its summary is written (None when nothing
            could be ranked).
    """

    case: Case
    parent_id: str
    search: CaseSearch
    expected: int
    recorder: Recorder
    writer: Writer
    log: TrialLog
    display: Any
    budget: int
    done: dict[str, Done] = field(default_factory=dict)
    dataset: Any = None
    summarise: Any = None
    summary_written: Future | None = None
    ranking: Any = None
    seconds_per_trial: float = 0.0  # expected, from the case's check: the sweep starts the longest trials first

    @property
    def complete(self) -> bool:
        return len(self.done) >= self.expected

    def started(self, spec: TrialSpec) -> None:
        self.display.trial_started(self.case.name)

    def finished(self, record: TrialRecord) -> None:
        """Logs, tells and records one finished trial of this case."""
        entry = trial_entry(record, self.case, self.budget)
        self.log.append({**entry, "parent": self.parent_id})
        written = self.writer.submit(
            lambda retrying: self.recorder.write_trial(
                self.parent_id, {**entry, "figures": record.figures, "dataset": self.dataset}, replace=retrying
            )
        )
        self.search.tell(record.spec, record.summary or {}, record.pruned_by is not None, link=self._link(written))
        done = Done.from_tags(entry["tags"], entry["metrics"]["final_rel_error"])
        self.done[record.spec.key] = done
        self.display.trial_finished(self.case.name, done)
        if self.complete and self.summarise is not None:
            self.summary_written = self.writer.submit(lambda retrying: self.summarise(self))

    def _link(self, written: Future):
        """The Optuna trial's link to its MLflow run: waits for the write unless the store is away."""

        def link() -> str | None:
            if self.writer.waiting_since is not None and not written.done():
                return None
            try:
                return written.result(timeout=60)
            except Exception:  # the run id is a convenience; the trial log and MLflow's tags still link them
                return None

        return link

    def summary(self) -> dict[str, Any]:
        """Counts by outcome, the ablation's single changes with how many seeds each fixed (the whole sweep's), and
        the ranking written to the parent run."""
        outcomes = Counter(d.outcome for d in self.done.values())
        # In the plan's order, not the order the trials happened to finish in: the same sweep prints the same lines.
        position = {spec.label: i for i, spec in enumerate(ablation(self.case, seeds=1))}
        singles: dict[str, dict[str, int]] = {}
        for done in sorted(self.done.values(), key=lambda d: position.get(d.label, len(position))):
            if done.part == "ablation":
                tally = singles.setdefault(done.label, {"fixed": 0, "seeds": 0})
                tally["fixed"] += done.fixed
                tally["seeds"] += 1
        return {
            "case": self.case.name,
            "parent_run_id": self.parent_id,
            "study": self.search.study.study_name if self.search.study is not None else None,
            "outcomes": dict(outcomes),
            "trials": len(self.done),
            "ablation": singles,
            "task_factors": list(self.case.task_factors),
            "ranking": self.ranking,
        }

    def counts(self) -> dict[str, int]:
        """Trials done, fixed, pruned and raised so far (those of an interrupted run included)."""
        done = list(self.done.values())
        return {
            "done": len(done),
            "fixed": sum(d.fixed for d in done),
            "pruned": sum(d.pruned for d in done),
            "errors": sum(d.outcome == "error" for d in done),
        }

    def metrics(self) -> dict[str, float]:
        """The parent run's metrics, the ones a person sorts the cases' sweeps by (the ranking adds fix_rank)."""
        done = list(self.done.values())
        baseline = [d.rel_error for d in done if d.label == "baseline" and d.rel_error is not None]
        errors = [d.rel_error for d in done if d.rel_error is not None]
        return {
            "trials": len(done),
            "fixed": sum(d.fixed for d in done),
            "pruned": sum(d.pruned for d in done),
            "errors": sum(d.outcome == "error" for d in done),
            "baseline_rel_error": statistics.median(baseline) if baseline else float("nan"),
            "best_rel_error": min(errors) if errors else float("nan"),
        }
