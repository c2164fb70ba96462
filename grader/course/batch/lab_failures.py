"""Labs that did not run in a submission, worded once per lab, and paths as the student knows them.

A lab file that is missing or does not import fails every check of its lab with the same message
(:class:`grader.judge.session.LabImportError`). ``results.json`` keeps that message on every check,
as a single ``python -m grader`` run writes it; the batch's own outputs (feedback, gradebook notes,
summary) give it once per lab (:func:`lab_failures`).

The grader imports a copy of the student's file (``OUTDIR/work/<student>/labs/lab01_autograd.py``),
so its messages name that copy, with the instructor's absolute path. :func:`submission_paths`
gives the path of the file inside the submission instead (``mri-dl-labs/labs/lab01_autograd.py``,
what ``extra_data.batch.files`` records), or the bare file name where messages of several students
are grouped (the class summary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from grader import report, scoring
from grader.judge.session import LABS, REPO_ROOT

#: The advice that ends an import-error message (:func:`grader.judge.session._import_error_message`).
_ADVICE = (". Fix the file so that ", ". This lab's tests score 0 until the file imports")


def clip(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters, cut between words (``…`` marks a cut).

    Cut at the last space before ``width``; a text with no space in its second half (a long path
    or check name) is cut after the last ``_ / . -`` there, and only a text without either is cut
    inside a word.
    """
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)  # the word before it is whole, and "…" fits
    if cut >= width // 2:
        return text[:cut].rstrip(" ,;:") + "…"
    head = text[: width - 1]
    cut = max(head.rfind(c) for c in "_/.-")
    if cut >= width // 2:
        return head[: cut + 1] + "…"
    return head + "…"


def _shown_dirs(results: dict) -> list[str]:
    """How the grader wrote the folder it graded: absolute, and relative to the repository if inside it."""
    impl = results.get("extra_data", {}).get("graded_implementation")
    if not impl or impl in ("labs", "solutions"):
        return []
    shown = [str(impl)]
    try:
        shown.append(Path(impl).relative_to(REPO_ROOT).as_posix())
    except ValueError:
        pass
    return shown


def submission_paths(text: str, results: dict, bare: bool = False) -> str:
    """``text`` with the grader's copies of the lab files named as in the submission.

    ``OUTDIR/work/grace/labs/lab01_autograd.py`` becomes ``labs/lab01_autograd.py`` (the path
    inside grace's folder or zip), or ``lab01_autograd.py`` with ``bare`` (the same text for every
    student, so that messages group across the class).
    """
    files = results.get("extra_data", {}).get("batch", {}).get("files") or {}
    for shown in _shown_dirs(results):  # absolute first: the relative form is its tail
        for lab, module in LABS.items():
            text = text.replace(f"{shown}/{module}.py", f"{module}.py" if bare else files.get(lab, f"{module}.py"))
    return text


@dataclass
class LabFailure:
    """One lab of a submission that did not run: its file is missing or does not import."""

    lab: str
    kind: str  # "missing" or "import error"
    message: str  # for the student: the grader's message, paths as in the submission
    error: str  # the error alone: "SyntaxError at labs/lab01_autograd.py, line 64: expected ':'"
    checks: int  # graded checks it failed (all of the lab's)
    hidden: int  # of which hidden
    points: float  # the lab's possible points


def _error_of(message: str, path: str) -> str:
    """The error of an import-error message, without "could not import PATH: " and the advice."""
    prefix = f"could not import {path}: "
    error = message[len(prefix):] if message.startswith(prefix) else message
    for advice in _ADVICE:
        if advice in error:
            error = error[: error.index(advice)]
    return error.strip()


def lab_failures(results: dict, bare: bool = False) -> dict[str, LabFailure]:
    """lab id -> :class:`LabFailure` for every lab of ``results`` whose file is missing or does not import.

    Found as the student's own report finds them (:func:`grader.report.whole_lab_failure`). With
    ``bare``, paths are bare file names (see :func:`submission_paths`).
    """
    files = results.get("extra_data", {}).get("batch", {}).get("files") or {}
    found: dict[str, LabFailure] = {}
    for t in results.get("tests", []):
        if t.get("max_score", 0) <= 0 or t.get("score", 0) >= t["max_score"]:
            continue
        output = t.get("output") or ""
        if not report.whole_lab_failure(output):
            continue
        lab = scoring.lab_of(t)
        if lab not in found:
            module = f"{LABS.get(lab, lab)}.py"
            if output.startswith("could not import"):
                message = submission_paths(output, results, bare)
                path = module if bare else files.get(lab, module)
                found[lab] = LabFailure(lab, "import error", message, _error_of(message, path), 0, 0, 0.0)
            else:
                found[lab] = LabFailure(lab, "missing", f"no {module} in the submission: this lab scores 0",
                                        "file missing", 0, 0, 0.0)
        failure = found[lab]
        failure.checks += 1
        failure.hidden += t.get("visibility") != "visible"
    for lab, failure in found.items():
        failure.points = sum(t["max_score"] for t in results.get("tests", [])
                             if t.get("max_score", 0) > 0 and scoring.lab_of(t) == lab)
    return found


_IMPORT_NOTE = re.compile(r"(lab\d\d): import error in \d+ check\(s\): ")


def gradebook_notes(results: dict, width: int = 200) -> list[str]:
    """The notes of a gradebook row: one per lab that does not import, paths as in the submission,
    each note at most ``width`` characters, cut between words."""
    failures = lab_failures(results)
    notes = []
    for note in results.get("extra_data", {}).get("batch", {}).get("notes", []):
        m = _IMPORT_NOTE.match(note)
        if m and m.group(1) in failures and failures[m.group(1)].kind == "import error":
            note = f"{m.group(1)}: does not import: {failures[m.group(1)].error}"
        notes.append(clip(submission_paths(note, results), width))
    return notes
