"""Manual points for the written answers: a template to fill in, and ``batch --manual POINTS.csv``.

Every batch writes ``OUTDIR/manual-template.csv``, one row per student x graded lab x question
of ``labs/QUESTIONS.md``, with the columns

* ``student``: as in the gradebook's ``student`` column;
* ``lab``: ``lab01`` ... (``1`` or ``lab1`` are read too);
* ``question``: its number in QUESTIONS.md;
* ``max``: the question's maximum, ``--manual-max`` (default :data:`DEFAULT_MAX`: 0 wrong,
  1 partly, 2 right) unless changed; it must be the same on every row of a question;
* ``points``: empty (not graded yet), or a number from 0 to ``max``;
* ``comment``: shown to the student in the feedback;
* ``answered``: ``yes`` / ``no``, for the TA's eyes only (not read back).

Questions left unanswered start with ``points`` 0 and the comment "no answer"; points merged
before are filled in, so the template is always the current state. Fill in a copy (a
spreadsheet, or the files of ``OUTDIR/answers/`` beside it, one question at a time) and merge it
with ``batch ... --manual points.csv``: the batch checks every row (unknown student, lab or
question, points that are not a number or out of range, a question's ``max`` that differs between
rows, a row given twice) and stops on the first problems with the row numbers and the fix, before
writing anything. The file is kept as ``OUTDIR/manual-points.csv`` and merged again by later runs
without ``--manual`` (delete it to drop the manual points); extra columns are ignored.

A lab has a manual part once the file has a row for it; its maximum is then the sum of its
questions' ``max`` (a question with no row counts ``--manual-max``). The gradebook gains, per
graded lab, ``labNN_manual`` (manual points; empty without a manual part) and ``labNN_total``
(automatic + manual), and ``manual``, ``manual_max``, ``total_with_manual``,
``max_with_manual``; the columns ``labNN``, ``total`` and ``max`` stay the automatic points.
Each ``feedback/<student>.md`` gains a table of the manual points with the comments.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader import scoring, textsafe
from grader.course.batch.reports import read_csv_table, write_atomic

DEFAULT_MAX = 2.0
TEMPLATE_FILE = "manual-template.csv"
KEPT_FILE = "manual-points.csv"
TEMPLATE_COLUMNS = ["student", "lab", "question", "max", "points", "comment", "answered"]
REQUIRED = ("student", "lab", "question", "points")


@dataclass
class ManualPoints:
    """The merged points: (student, lab id, question) -> (points or None, comment); maxima per question."""

    source: Path
    default_max: float
    points: dict[tuple[str, str, int], tuple[float | None, str]] = field(default_factory=dict)
    maxima: dict[tuple[str, int], float] = field(default_factory=dict)
    labs: set[str] = field(default_factory=set)

    def question_max(self, lab: str, q: int) -> float:
        return self.maxima.get((lab, q), self.default_max)

    def lab_max(self, lab: str, tmpl: dict) -> float:
        return sum(self.question_max(lab, q) for q in tmpl.get(scoring.lab_number(lab), {})) if lab in self.labs else 0.0

    def of(self, student: str, lab: str, tmpl: dict) -> tuple[float, float, int, list[tuple[int, float | None, float, str]]]:
        """(points, possible, questions not graded yet, per question (q, points, max, comment)) of one lab."""
        if lab not in self.labs:
            return 0.0, 0.0, 0, []
        rows, got, todo = [], 0.0, 0
        for q in tmpl.get(scoring.lab_number(lab), {}):
            pts, comment = self.points.get((student, lab, q), (None, ""))
            rows.append((q, pts, self.question_max(lab, q), comment))
            if pts is None:
                todo += 1
            else:
                got += pts
        return got, self.lab_max(lab, tmpl), todo, rows


def _lab_id(text: str) -> str | None:
    m = re.fullmatch(r"(?:lab\s*)?0*(\d+)", text.strip(), flags=re.IGNORECASE)
    return f"lab{int(m.group(1)):02d}" if m else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_points(path: Path, students: list[str], labs: list[str], tmpl: dict,
                default_max: float = DEFAULT_MAX) -> ManualPoints:
    """The points of ``path`` for the ``students`` and graded ``labs``.

    Raises:
        SystemExit: a needed column is missing, or rows are wrong (each named with its row
            number and the fix; nothing is merged then).
    """
    reader, header = read_csv_table(path, "--manual", f"give the CSV file made from {TEMPLATE_FILE}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SystemExit(f"--manual {path}: no {', '.join(missing)} column (columns found: "
                         f"{', '.join(h for h in header if h) or 'none'}): start from {TEMPLATE_FILE}, which has "
                         f"the columns {', '.join(TEMPLATE_COLUMNS)}")
    by_lower = {s.lower(): s for s in students}
    result = ManualPoints(source=Path(path), default_max=default_max)
    first_row: dict[tuple[str, str, int], int] = {}
    max_row: dict[tuple[str, int], int] = {}
    errors: list[str] = []
    for row in reader:
        line = reader.line_num

        def get(col: str, row=row) -> str:
            return (row.get(header[col]) or "").strip() if col in header else ""

        if not any(get(c) for c in REQUIRED):
            continue
        student = by_lower.get(get("student").lower())
        if student is None:
            errors.append(f"row {line}: student {get('student')!r} is not in this batch: use the student column of "
                          f"gradebook.csv (e.g. {students[0] if students else '?'})")
            continue
        lab = _lab_id(get("lab"))
        if lab is None or lab not in labs:
            errors.append(f"row {line}: lab {get('lab')!r} is not a lab graded in this batch ({', '.join(labs)})")
            continue
        try:
            q = int(get("question"))
        except ValueError:
            q = -1
        if q not in tmpl.get(scoring.lab_number(lab), {}):
            errors.append(f"row {line}: {lab} has no question {get('question')!r} (questions 1 to "
                          f"{len(tmpl.get(scoring.lab_number(lab), {}))} of labs/QUESTIONS.md)")
            continue
        qmax = default_max
        if get("max"):
            value = _number(get("max"))
            if value is None or value <= 0:
                errors.append(f"row {line}: max {get('max')!r} is not a positive number: write e.g. 2, or leave it "
                              f"empty for --manual-max ({default_max:g})")
                continue
            qmax = value
        if (lab, q) in result.maxima and result.maxima[(lab, q)] != qmax:
            errors.append(f"row {line}: max {qmax:g} for {lab} question {q} differs from row {max_row[(lab, q)]} "
                          f"({result.maxima[(lab, q)]:g}): give one max per question")
            continue
        result.maxima[(lab, q)], max_row[(lab, q)] = qmax, max_row.get((lab, q), line)
        pts: float | None = None
        if get("points"):
            pts = _number(get("points"))
            if pts is None:
                errors.append(f"row {line}: points {get('points')!r} is not a number: write e.g. 1.5 (a dot for "
                              "decimals), or leave it empty if not graded yet")
                continue
            if not 0 <= pts <= qmax:
                errors.append(f"row {line}: points {pts:g} out of range for {lab} question {q}: give 0 to {qmax:g} "
                              "(or raise this question's max on all its rows)")
                continue
        key = (student, lab, q)
        if key in first_row:
            errors.append(f"row {line}: {student} {lab} question {q} is also on row {first_row[key]}: keep one row")
            continue
        first_row[key] = line
        result.points[key] = (pts, get("comment"))
        result.labs.add(lab)
    if errors:
        more = f"\n  ... and {len(errors) - 15} more" if len(errors) > 15 else ""
        raise SystemExit(f"--manual {path}: {len(errors)} row(s) to fix, nothing merged (fix them and run the same "
                         "command again: graded submissions are not graded again):\n  " + "\n  ".join(errors[:15]) + more)
    return result


def write_template(out: Path, students: list[str], labs: list[str], tmpl: dict,
                   answered: dict[str, dict[str, dict[int, bool]]], merged: ManualPoints | None,
                   default_max: float = DEFAULT_MAX) -> Path:
    """``OUTDIR/manual-template.csv`` (see the module docstring); returns its path."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TEMPLATE_COLUMNS)
    for student in students:
        for lab in labs:
            for q in tmpl.get(scoring.lab_number(lab), {}):
                did = answered.get(student, {}).get(lab, {}).get(q, False)
                qmax = merged.question_max(lab, q) if merged else default_max
                if merged and (student, lab, q) in merged.points:
                    pts, comment = merged.points[(student, lab, q)]
                    cell = "" if pts is None else f"{pts:g}"
                elif not did:
                    cell, comment = "0", "no answer"
                else:
                    cell, comment = "", ""
                w.writerow([textsafe.csv_cell(v) for v in (student, lab, q, f"{qmax:g}", cell, comment,
                                                             "yes" if did else "no")])
    path = out / TEMPLATE_FILE
    write_atomic(path, buf.getvalue())
    return path


def feedback_section(manual: ManualPoints, student: str, labs: list[str], tmpl: dict) -> str:
    """The feedback's part on the manual points (empty when no graded lab has a manual part)."""
    lines: list[str] = []
    total = possible = 0.0
    for lab in labs:
        got, mx, todo, rows = manual.of(student, lab, tmpl)
        if not rows:
            continue
        total, possible = total + got, possible + mx
        lines += ["", f"### {lab}: {got:g} / {mx:g}" + (f" ({todo} not graded yet)" if todo else ""), "",
                  "| question | points | possible | comment |", "|---:|---:|---:|---|"]
        for q, pts, qmax, comment in rows:
            shown = "not graded yet" if pts is None else f"{pts:g}"
            lines.append(f"| {q} | {shown} | {qmax:g} | {textsafe.markdown_cell(comment)} |")
    if not lines:
        return ""
    return "\n".join(["## Written answers (QUESTIONS.md, graded by hand)", "",
                      f"**{total:g} / {possible:g} points** for the written answers.", *lines, ""])
