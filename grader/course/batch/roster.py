"""``batch --roster roster.csv``: who is in the course, who submitted, and grades an LMS imports.

The roster is a CSV file (UTF-8, a BOM from Excel is fine; column names in any case and order):

* ``id`` (required): the student's ID at the institution (the LMS's "SIS User ID" / "ID number");
* ``name`` (required): the name the gradebook and the LMS files show;
* ``email``: the e-mail address (matches a Gradescope export; Moodle can match on it);
* at least one column that names the student's entry in SUBMISSIONS: ``folder``, ``username``
  or ``github`` (``email`` alone also works for a Gradescope export);
* ``section`` (optional): the Canvas section.

**Matching an entry to a roster student** (the first rule that finds one student decides):

1. ``folder``: the entry's name equals it (case aside; ``.zip`` and Moodle's
   ``_assignsubmission_file_`` suffix ignored);
2. ``username`` or ``github``: the entry's name equals the handle or ends with ``-<handle>``, as
   GitHub Classroom names clones ``<assignment>-<handle>`` (case aside; the longest handle wins
   when several fit, so ``jo`` does not take ``lab1-anna-jo`` from ``anna-jo``);
3. ``email``: the entry's e-mail (from a Gradescope export's metadata) equals it (case aside).

An entry that matches several roster students is left unmatched with a note naming them. The
gradebook then carries ``student_id`` and ``name``; a roster student no entry matched gets a row
with status ``missing``; an entry that matches nobody keeps its row, with the note "not on the
roster"; both are listed in ``summary.md``.

**LMS files** (``OUTDIR/lms/``), one column per graded lab holding its points (automatic, plus
manual points where merged), for the roster students who submitted something. Students with no
submission are left out, so the LMS keeps whatever it holds for them (Moodle reads an empty cell
as "no grade" and would clear a grade; Canvas reads it as no score); the gradebook lists them.

* ``canvas.csv``, the Canvas gradebook import format: the header ``Student,ID,SIS User ID,SIS
  Login ID,Section,<assignments>``, then a ``Points Possible`` row, then one row per student.
  Canvas (``app/models/gradebook_importer.rb`` of instructure/canvas-lms: ``row_has_student_headers?``,
  ``update_column_count``, ``check_for_non_student_row``, ``process_student``) needs "Student"
  and "ID" first and "Section" last among the student columns, reads a row whose first cell is
  "Points Possible" as the assignments' points, and finds each student by the Canvas ``ID``, then
  the ``SIS User ID``, then the ``SIS Login ID``, then the name. We leave ``ID`` (Canvas's internal
  number) empty and write the roster's ``id`` as SIS User ID and its ``email`` as SIS Login ID. A
  column whose title matches no assignment creates a new one with those points possible; rename
  the columns to your assignments' titles to fill existing ones.
* ``moodle.csv``, for Moodle's "Import grades: CSV file" (docs.moodle.org, "Grade import";
  ``grade/import/csv/classes/load_data.php``): columns ``ID number``, ``Email address``, ``Full
  name``, then one per lab. At import, map "ID number" to ``useridnumber`` (or "Email address" to
  ``useremail``; Moodle compares e-mails case-sensitively) under "Identify user by", and each lab
  column to its grade item (or "new grade item"). Every row must name a user Moodle knows, or the
  whole import stops.

Every cell goes through :func:`grader.textsafe.csv_cell`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader import textsafe
from grader.course.batch.reports import read_csv_table, write_atomic
from grader.judge.session import LABS

REQUIRED = ("id", "name")
MATCH_COLUMNS = ("folder", "username", "github", "email")
COLUMNS_HELP = ("a roster needs the columns id and name, and one that names each student's entry: folder, "
                "username or github (or email, for a Gradescope export); optional: email, section")


@dataclass
class RosterStudent:
    """One row of the roster."""

    id: str
    name: str
    email: str = ""
    section: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # match column -> value
    line: int = 0


def read_roster(path: Path) -> list[RosterStudent]:
    """The students of ``path``.

    Raises:
        SystemExit: the file cannot be read, lacks a needed column, or has a row without an id
            or with an id seen before (the message names the row and the fix).
    """
    reader, header = read_csv_table(path, "--roster", "save the roster as a UTF-8 CSV file")
    missing = [c for c in REQUIRED if c not in header]
    if missing or not any(c in header for c in MATCH_COLUMNS):
        found = ", ".join(h for h in header if h) or "none"
        what = f"no {' or '.join(missing)} column" if missing else "no column naming the entries"
        raise SystemExit(f"--roster {path}: {what} (columns found: {found}); {COLUMNS_HELP}")
    students: list[RosterStudent] = []
    seen: dict[str, int] = {}
    errors = []
    for row in reader:
        def get(col: str, row=row) -> str:
            return (row.get(header[col]) or "").strip() if col in header else ""
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        sid = get("id")
        if not sid:
            errors.append(f"row {line}: no id: give every student their institution ID (or remove the row)")
            continue
        if sid in seen:
            errors.append(f"row {line}: id {sid} is also on row {seen[sid]}: one row per student")
            continue
        seen[sid] = line
        keys = {c: get(c) for c in MATCH_COLUMNS if get(c)}
        students.append(RosterStudent(id=sid, name=get("name"), email=get("email"), section=get("section"),
                                      keys=keys, line=line))
    if errors:
        raise SystemExit(f"--roster {path}: " + "; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else ""))
    return students


def _entry_key(entry: str) -> str:
    name = re.sub(r"\.zip$", "", entry, flags=re.IGNORECASE)
    name = re.sub(r"_assignsubmission_(file|onlinetext)_?$", "", name)
    return name.strip().lower()


@dataclass
class Matching:
    """Who is who: gradebook student -> roster student, and what is left over."""

    by_student: dict[str, RosterStudent] = field(default_factory=dict)
    missing: list[RosterStudent] = field(default_factory=list)  # on the roster, no entry
    unmatched: list[str] = field(default_factory=list)  # gradebook students on no roster row
    notes: dict[str, str] = field(default_factory=dict)  # gradebook student -> note


def match(roster: list[RosterStudent], entries: list[tuple[str, str, str]]) -> Matching:
    """Match ``entries`` (gradebook student, entry name, e-mail) to ``roster`` (rules: module docstring)."""
    result = Matching()
    for student, entry, email in entries:
        key = _entry_key(entry)
        found: list[RosterStudent] = []
        folder = [r for r in roster if r.keys.get("folder") and _entry_key(r.keys["folder"]) == key]
        if folder:
            found = folder
        if not found:
            best = 0
            for r in roster:
                for col in ("username", "github"):
                    handle = r.keys.get(col, "").lower()
                    if handle and (key == handle or key.endswith("-" + handle)):
                        if len(handle) > best:
                            best, found = len(handle), [r]
                        elif len(handle) == best and r not in found:
                            found.append(r)
        if not found and email:
            mails = {m.strip().lower() for m in email.split(";") if m.strip()}
            found = [r for r in roster if r.keys.get("email", "").lower() in mails]
        if len(found) == 1:
            result.by_student[student] = found[0]
        elif len(found) > 1:
            result.unmatched.append(student)
            result.notes[student] = (f"matches several roster students (ids {', '.join(r.id for r in found)}): "
                                     "make the roster's folder/username/github column tell them apart")
        else:
            result.unmatched.append(student)
            result.notes[student] = "not on the roster: no folder, username, github or email of roster.csv matches this entry"
    counts: dict[str, list[str]] = {}
    for student, r in result.by_student.items():
        counts.setdefault(r.id, []).append(student)
    for sid, students in counts.items():
        if len(students) > 1:
            for s in students:
                others = ", ".join(o for o in students if o != s)
                result.notes[s] = f"roster id {sid} also matches {others}: two submissions for one student"
    matched = {r.id for r in result.by_student.values()}
    result.missing = [r for r in roster if r.id not in matched]
    return result


# --------------------------------------------------------------------------- LMS files


def _number(x: float) -> str:
    return f"{round(x, 4):g}"


def write_lms(out: Path, labs: list[str], rows: list[dict], possible: dict[str, float]) -> list[Path]:
    """``OUTDIR/lms/canvas.csv`` and ``moodle.csv``; ``rows``: per student with a submission,
    ``student_id``, ``name``, ``email``, ``section`` and one lab id -> points; ``possible``: lab id
    -> points possible. Returns the files written."""
    titles = [LABS[lab] for lab in labs]
    canvas = io.StringIO()
    w = csv.writer(canvas, lineterminator="\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *titles])
    w.writerow(["Points Possible", "", "", "", "", *(_number(possible.get(lab, 0.0)) for lab in labs)])
    for r in rows:
        w.writerow([textsafe.csv_cell(v) for v in (r["name"], "", r["student_id"], r["email"], r.get("section", ""),
                                                     *(_number(r[lab]) for lab in labs))])
    moodle = io.StringIO()
    w = csv.writer(moodle, lineterminator="\n")
    w.writerow(["ID number", "Email address", "Full name", *titles])
    for r in rows:
        w.writerow([textsafe.csv_cell(v) for v in (r["student_id"], r["email"], r["name"],
                                                     *(_number(r[lab]) for lab in labs))])
    paths = [out / "lms" / "canvas.csv", out / "lms" / "moodle.csv"]
    write_atomic(paths[0], canvas.getvalue())
    write_atomic(paths[1], moodle.getvalue())
    return paths
