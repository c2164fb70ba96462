"""Every planted bug loses points in the graded test aimed at it, with a telling message."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.planted import Bug, base_name, grade_variant, module_file, patched_source

BUG_MODULES = sorted(p.stem for p in Path(__file__).parent.glob("bugs_lab*.py"))
ALL_BUGS: list[Bug] = [bug for mod in BUG_MODULES for bug in importlib.import_module(f"tests.{mod}").BUGS]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("bug", ALL_BUGS, ids=[f"{b.lab}-{b.name}" for b in ALL_BUGS])
def test_planted_bug_loses_points(bug: Bug, tmp_path):
    from grader.judge.session import LABS

    results = grade_variant(
        {module_file(bug.lab): patched_source(bug)}, tmp_path, f"test_{LABS[bug.lab]}.py", select=list(bug.aimed_at),
        golden=f"bugs/{bug.lab}-{bug.name}",
    )
    outputs = []
    for aimed in bug.aimed_at:
        hits = {name: t for name, t in results.items() if base_name(name) == aimed and t["max_score"] > 0}
        if not hits:  # a how-code-runs check that is information only (0 points): it must report the slip
            info = {name: t for name, t in results.items() if base_name(name) == aimed and _evidence_info(t)}
            assert info, f"{bug.name}: no graded test named {aimed} ran"
            assert all(t["extra_data"]["state"] == "failed" for t in info.values()), (
                f"{bug.name}: the information check {aimed} did not report the slip ({', '.join(info)})"
            )
            outputs += [t["output"] for t in info.values()]
            continue
        lost = sum(t["max_score"] - t["score"] for t in hits.values())
        assert lost > 0, f"{bug.name}: {aimed} still earned all its points ({', '.join(hits)})"
        outputs += [t["output"] for t in hits.values() if t["score"] < t["max_score"]]
        assert not any("not implemented" in out for out in outputs)
    if bug.message:
        assert any(bug.message.lower() in out.lower() for out in outputs), (
            f"{bug.name}: a failure message should mention {bug.message!r}, got: " + " | ".join(outputs)
        )


def _evidence_info(test: dict) -> bool:
    """A results.json entry of an ``@pytest.mark.information`` check (never graded, 0 points)."""
    from grader.plugin import EVIDENCE_INFO

    return not test.get("extra_data", {}).get("graded", True) and test.get("output", "").startswith(EVIDENCE_INFO)


def test_at_least_five_bugs_per_lab():
    from collections import Counter

    counts = Counter(b.lab for b in ALL_BUGS)
    assert all(n >= 5 for n in counts.values()), counts
