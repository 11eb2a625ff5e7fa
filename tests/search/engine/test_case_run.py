from types import SimpleNamespace

from search.engine.case_run import CaseRun, Done
from search.engine.plan import ablation
from spaces import get_case


def test_summary_lists_the_ablation_in_the_plans_order_whatever_finished_first():
    case = get_case("volume_divergence")
    labels = [spec.label for spec in ablation(case, seeds=1)]
    run = CaseRun(
        case=case,
        parent_id="parent",
        search=SimpleNamespace(study=None),
        expected=len(labels),
        recorder=None,
        writer=None,
        log=None,
        display=None,
        budget=150,
    )
    for label in reversed(labels):  # the last planned trial finished first
        run.done[label] = Done("ablation", label, "fixed", fixed=True, pruned=False, rel_error=0.01)

    summary = run.summary()

    assert list(summary["ablation"]) == labels
    assert labels[-1].startswith("fix: ")  # the whole documented fix, last in the plan and in the summary
