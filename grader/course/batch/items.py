"""The class check by check: ``checks.csv`` (student x check points, for item analysis) and the
points a lab is worth, read from the graded submissions."""


from __future__ import annotations

import csv
import io

from grader import scoring, textsafe
from grader.course.batch.lab_failures import lab_failures

#: The label of the row of ``checks.csv`` that holds each check's possible points (no student is
#: named so: student names are file-system-safe names, without parentheses or spaces).
POSSIBLE_ROW = "(possible points)"


def possible_points(all_results: list[dict]) -> dict[str, float]:
    """lab id -> the most points a graded submission of the class could earn in it.

    Every graded submission has every check of the labs graded (a lab not submitted scores 0 of
    its possible points), so this is the lab's maximum; a submission that was not graded
    (unreadable, stopped, damaged) has no checks and is given these.
    """
    possible: dict[str, float] = {}
    for r in all_results:
        for lab, (_, most) in scoring.lab_totals(r).items():
            possible[lab] = max(possible.get(lab, 0.0), most)
    return possible


def check_columns(all_results: list[dict]) -> dict[str, float]:
    """Every graded check of the class (information checks left out) -> its points, in lab order."""
    columns: dict[str, float] = {}
    for r in all_results:
        for t in r.get("tests", []):
            if t.get("max_score", 0) > 0:
                columns[t["name"]] = max(columns.get(t["name"], 0.0), float(t["max_score"]))
    order = {name: i for i, name in enumerate(columns)}
    return dict(sorted(columns.items(), key=lambda kv: (scoring.CheckName.parse(kv[0]).lab, order[kv[0]])))


def checks_csv(all_results: list[dict]) -> str:
    """The text of ``checks.csv``: one row per student, one column per graded check, the points earned.

    The first row (student :data:`POSSIBLE_ROW`) holds each check's possible points. A cell is
    empty where the check did not measure anything: the submission was not graded, or the lab's
    file is missing or does not import (its checks score 0, counted in the gradebook; item
    statistics such as a check's difficulty leave those students out). Every cell goes through
    :func:`grader.textsafe.csv_cell`.
    """
    columns = check_columns(all_results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "status", *columns])
    writer.writerow([POSSIBLE_ROW, "", *(f"{p:g}" for p in columns.values())])
    for r in all_results:
        batch = r["extra_data"]["batch"]
        did_not_run = lab_failures(r)
        scores = {t["name"]: t["score"] for t in r.get("tests", [])
                  if scoring.lab_of(t) not in did_not_run}
        writer.writerow([textsafe.csv_cell(batch["student"]), textsafe.csv_cell(batch["status"]),
                         *(f"{scores[name]:g}" if name in scores else "" for name in columns)])
    return buf.getvalue()
