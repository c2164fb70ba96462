"""Planted bugs: patched copies of a solution that the grader must catch.

A :class:`Bug` is a text patch of one solution file (``old`` must occur exactly once) and the
graded tests it is aimed at. :func:`grade_variant` writes the patched file to a fresh folder and
grades it with ``--labs-dir`` in a judge process of its own (forked from one slot that imported
torch once, as ``python -m grader batch`` does), returning the checks of the JSON report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bug:
    """A slip a student could make, as a patch of the reference solution."""

    lab: str  # "lab01"
    name: str  # short id, used as the test id
    old: str  # text in the solution (must occur exactly once)
    new: str  # what the student wrote instead
    aimed_at: tuple[str, ...]  # graded test names (without parameters) that must lose points
    message: str = ""  # a word the failure message must contain (case-insensitive), if any


def module_file(lab: str) -> str:
    from grader.judge.session import LABS

    return f"{LABS[lab]}.py"


def patched_source(bug: Bug) -> str:
    """The solution with ``bug`` applied; AssertionError if the patch no longer applies."""
    source = (REPO_ROOT / "solutions" / module_file(bug.lab)).read_text()
    count = source.count(bug.old)
    assert count == 1, f"bug {bug.name}: the patched text occurs {count} times in solutions/{module_file(bug.lab)}"
    return source.replace(bug.old, bug.new)


_judge = None


def judge_slot():
    """One :class:`grader.course.batch.slots.Slot` for the whole test session: torch imported and the worker
    zygote started once, then a fresh pytest judge forked per variant (instead of a new Python,
    torch import and zygote for each of the ~100 planted bugs)."""
    global _judge
    if _judge is None:
        import atexit

        from grader.course.batch.slots import Slot

        _judge = Slot()
        _judge.start()
        atexit.register(_judge.close)
    return _judge


def grade_variant(files: dict[str, str], tmp_path: Path, test_file: str, select: list[str] | None = None,
                  extra: list[str] | None = None, timeout: int = 600, golden: str | None = None) -> dict[str, dict]:
    """Grade lab files ``{file name: source}`` written to ``tmp_path/impl``.

    The judge is ``pytest grader/<test_file> --labs-dir tmp_path/impl`` in its own process, forked
    from :func:`judge_slot` (what ``python -m grader batch`` does per submission).

    Returns ``{test name: gradescope test entry}`` from the JSON report (names without the
    ``labNN: `` prefix). With ``golden``, the results are also compared with the golden file of
    that scenario (:mod:`tests.golden`).
    """
    impl = tmp_path / "impl"
    impl.mkdir(exist_ok=True)
    for name, text in files.items():
        (impl / name).write_text(text)
    out = tmp_path / "results.json"
    argv = [str(REPO_ROOT / "grader" / test_file), "--labs-dir", str(impl),
            "--grade-json", str(out), "-q", "--tb=no", "-p", "no:cacheprovider", "--device", "cpu"]
    if select:
        argv += ["-k", " or ".join(select)]
    argv += extra or []
    log = tmp_path / "judge.log"
    reply = judge_slot().grade({"pytest_argv": argv, "log": str(log), "submission_timeout": timeout})
    assert out.is_file(), f"no report written ({reply}); pytest said:\n{log.read_text()[-3000:]}"
    report = json.loads(out.read_text())
    results = {t["name"].split(": ", 1)[1]: t for t in report["tests"]}
    if golden:
        from tests import golden as golden_files

        golden_files.check(golden, results)
    return results


def base_name(test_name: str) -> str:
    """``test_x[cpu]`` -> ``test_x``."""
    return test_name.split("[", 1)[0]
