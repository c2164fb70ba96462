"""Outcomes and points: the results records and the rules that turn a check's run into points.

Every reader and writer of ``results.json`` (Gradescope's format) goes through these records;
no other module slices a check's name (``"lab01: test_x[cpu]"``) or a test file's name. The
rules that decide a check's status, its points and a submission's status live here too:

* :func:`gradescope_status`: what Gradescope is told of a check (an information check is
  ``passed`` whatever happened, since Gradescope shows a 0-point ``failed`` as a red failure);
* :func:`crashed`: a check that was running when its grading process died scores 0 and says why;
* :func:`lab_totals`: points per lab;
* :func:`submission_status`: ``ok`` / ``crashed`` / ``timed out`` of a whole submission (batch);
* :func:`is_graded`: the GPU policy, and information checks (never worth points);
* :func:`passed`, :func:`failed`, :func:`not_run`, :func:`did_not_run`: a check's verdict and
  points, which the plugin (``grader/plugin.py``) records from pytest's phases.

The words of a failure (why it failed) come from the plugin and :mod:`grader.report`; the points
are decided here only. This module imports nothing of the grader's.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TEST_FILE = re.compile(r"test_(lab\d\d)_")


@dataclass(frozen=True)
class CheckName:
    """A check's name in results.json: ``"<lab>: <test>"`` (``"lab01: test_fit_recovers_line[cpu]"``)."""

    lab: str
    test: str

    @classmethod
    def parse(cls, name: str) -> "CheckName":
        """Raises ValueError: ``name`` has no ``"labNN: "`` prefix."""
        lab, sep, test = name.partition(": ")
        if not sep or not re.fullmatch(r"lab\d\d", lab):
            raise ValueError(f"{name!r} is not a check name of the form 'labNN: test_name'")
        return cls(lab, test)

    @property
    def base(self) -> str:
        """The test function's name, without the parameters: ``test_fit_recovers_line``."""
        return self.test.split("[", 1)[0]

    def __str__(self) -> str:
        return f"{self.lab}: {self.test}"

    def plain(self) -> str:
        """``"lab01 test_x"``: for prose and the score table."""
        return f"{self.lab} {self.test}"


def lab_of(test: dict) -> str:
    """The lab id of a results.json test entry."""
    return CheckName.parse(test["name"]).lab


def lab_of_test_file(path: str | Path) -> str | None:
    """``"lab03"`` for ``grader/test_lab03_mnist.py`` or ``grader/hidden/test_lab03_hidden.py``; else None."""
    match = _TEST_FILE.search(Path(path).name)
    return match.group(1) if match else None


def lab_number(lab_id: str) -> int:
    """``3`` for ``"lab03"`` (the number of ``--lab N``)."""
    if not re.fullmatch(r"lab\d\d", lab_id):
        raise ValueError(f"{lab_id!r} is not a lab id of the form 'labNN'")
    return int(lab_id[3:])


# --------------------------------------------------------------------------- a check's verdict


@dataclass
class Check:
    """One graded test's outcome, as it goes into the report."""

    nodeid: str
    lab: str
    name: str
    max_score: float  # the points of the check (what it is worth when graded)
    score: float = 0.0
    status: str = "pending"  # pending | running | passed | failed | not run
    output: str = ""
    visibility: str = "visible"
    duration: float = 0.0
    graded: bool = True  # False: a GPU check outside a GPU assignment (information, 0 points)
    evidence: bool = False  # an @pytest.mark.information check: never graded, reported as information
    reason: str = ""  # why it failed, as a category (plugin.failure_reason); "" when it did not fail



def is_graded(gpu_points: bool, gpu_check: bool, information: bool) -> bool:
    """Whether a check is worth its points: the GPU policy (README, "GPU checks").

    An ``@pytest.mark.information`` check never is; a GPU check only in a GPU assignment
    (``gpu_points``), so that the maximum never depends on the machine; every other check is.
    """
    return (gpu_points or not gpu_check) and not information


def passed(check: Check) -> None:
    """The check passed: its points if graded, 0 of 0 if information."""
    check.status, check.output = "passed", ""
    check.score = check.max_score if check.graded else 0.0


def failed(check: Check, message: str, reason: str) -> None:
    """The check failed (its first failing phase says why): 0 points, the message, the category."""
    check.status, check.score, check.output, check.reason = "failed", 0.0, message, reason


def not_run(check: Check, message: str) -> None:
    """The check could not run here (a GPU check without a GPU): 0 points, ``not run``."""
    check.status, check.score, check.output = "not run", 0.0, message


def did_not_run(check: Check) -> None:
    """A check that never reached a verdict: a graded one scores 0 (``failed``); an information
    check is ``not run``, never ``failed``."""
    check.score = 0.0
    if check.graded:
        check.status, check.output = "failed", check.output or "did not run"
    else:
        check.status, check.output = "not run", ""


def points(check: Check) -> tuple[float, float]:
    """(score, max score) a check reports: its own if graded, 0 of 0 if information."""
    return (check.score, check.max_score) if check.graded else (0.0, 0.0)


def totals(checks: Iterable[Check], lab: str | None = None) -> tuple[float, float]:
    """(earned, possible) over the graded checks (of ``lab``); information checks count 0 of 0."""
    graded = [c for c in checks if c.graded and (lab is None or c.lab == lab)]
    return sum(c.score for c in graded), sum(c.max_score for c in graded)


# --------------------------------------------------------------------------- rules


def gradescope_status(state: str, graded: bool) -> str:
    """The status Gradescope is given for a check in ``state`` (passed / failed / not run / ...).

    A graded check is ``passed`` only when it passed; an information check (0 points) is always
    ``passed``, its real outcome in ``extra_data.state`` and its output.
    """
    if not graded:
        return "passed"
    return "passed" if state == "passed" else "failed"


def crashed(test: dict, returncode: int) -> dict:
    """The results.json entry of a check that was running when its grading process died.

    It scores 0 with a message that says so, ``extra_data.state`` ``failed`` and ``reason``
    ``crashed``; an information check stays ``passed`` for Gradescope (:func:`gradescope_status`).
    """
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    test = dict(test, extra_data=dict(test.get("extra_data", {})))
    test.update(score=0.0, output=(
        f"this check ended the grading process ({how}: os._exit(), a crash, or running out of memory); "
        "the lab's other checks were graded in a new process"
    ))
    test["status"] = gradescope_status("failed", test["extra_data"].get("graded", True))
    test["extra_data"].update(state="failed", reason="crashed")
    return test


def lab_totals(results: dict) -> dict[str, tuple[float, float]]:
    """lab id -> (points, max points) of a results.json dict, in the order the labs first appear."""
    out: dict[str, list[float]] = {}
    for t in results.get("tests", []):
        acc = out.setdefault(lab_of(t), [0.0, 0.0])
        acc[0] += t["score"]
        acc[1] += t["max_score"]
    return {lab: (round(a, 4), round(b, 4)) for lab, (a, b) in out.items()}


def submission_status(results: dict, submitted: set[str]) -> tuple[str, list[str]]:
    """Status (``ok`` / ``crashed`` / ``timed out``) and notes of one graded submission.

    ``submitted``: the lab ids whose files the submission had. A lab that was not submitted is
    noted, never a crash; information checks (0 points) never change the status.
    """
    reasons: dict[str, Counter] = {}
    messages: dict[tuple[str, str], str] = {}
    for t in results.get("tests", []):
        reason = t.get("extra_data", {}).get("reason", "")
        if reason and t.get("extra_data", {}).get("graded", True):
            lab = lab_of(t)
            reasons.setdefault(lab, Counter())[reason] += 1
            messages.setdefault((lab, reason), (t.get("output") or "").strip().split("\n")[0])
    notes, status = [], "ok"
    for lab, counts in sorted(reasons.items()):
        if lab not in submitted:
            notes.append(f"{lab}: no file submitted")
            continue
        if counts["timeout"]:
            status = "timed out"
            notes.append(f"{lab}: {counts['timeout']} check(s) over their time budget")
        for reason in ("crashed", "exit", "import error"):
            if counts[reason]:
                status = "crashed" if status == "ok" else status
                first = messages[(lab, reason)]
                notes.append(f"{lab}: {reason} in {counts[reason]} check(s): {first[:200]}")
    return status, notes


# --------------------------------------------------------------------------- files


def load_results(path: str | Path) -> dict:
    """A results.json file as a dict (raises OSError / ValueError as ``json`` does)."""
    return json.loads(Path(path).read_text())


def dump_results(path: str | Path, results: dict) -> Path:
    """Write ``results`` to ``path`` atomically (temp file + rename): whole or absent, never half."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
