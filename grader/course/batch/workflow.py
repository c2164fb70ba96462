"""The course around the checks, at report time: written answers, manual points, roster, LMS files,
deadlines. :func:`course_reports` is called by ``write_reports`` (a batch, a resume, a merge) with
every result of OUTDIR; it writes ``answers/``, ``manual-template.csv``, ``lms/`` and the feedback
with manual points, and returns the gradebook's columns and rows with the course's columns added:

======================================  =====================================================
column                                  what
======================================  =====================================================
``student_id``, ``name``                with ``--roster``: the roster's id and name
``labNN``, ``total``, ``max``           automatic points, as without these options
``labNN_manual``, ``labNN_total``       with manual points: manual, automatic + manual
``manual``, ``manual_max``              with manual points: sum over the graded labs
``total_with_manual``,                  with manual points: automatic + manual
``max_with_manual``
``commit``, ``commit_date``,            with ``--deadline``: the commit graded, its committer
``commits_after_deadline``              date, how many commits came after the deadline
``status``                              as without these options, plus ``missing``: a roster
                                        student no entry matched (no submission)
======================================  =====================================================

:func:`summary_section` gives the lines appended to ``summary.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Module imports, not `from grader.course.batch import ...`: that imports the package, which imports
# command.py, which imports this module (a cycle for tests/test_layers.py).
import grader.course.batch.answers as answers
import grader.course.batch.gitsnap as gitsnap
import grader.course.batch.manual as manual
import grader.course.batch.roster as roster
from grader import questions
from grader.course.batch.reports import (
    feedback_markdown,
    gradebook_table,
    lab_points,
    write_atomic,
)


@dataclass
class Course:
    """What :func:`course_reports` found, for the summary."""

    table: tuple[list[str], list[dict]]
    questions: dict = field(default_factory=dict)  # the template's questions, lab -> number -> Question
    answered: dict[str, dict[str, dict[int, bool]]] = field(default_factory=dict)
    manual_points: manual.ManualPoints | None = None
    matching: roster.Matching | None = None
    late: list[tuple[str, dict]] = field(default_factory=list)
    lms: list[Path] = field(default_factory=list)


def _insert_after(fields: list[str], anchor: str, new: list[str]) -> list[str]:
    k = fields.index(anchor) + 1 if anchor in fields else len(fields)
    return fields[:k] + [f for f in new if f not in fields] + fields[k:]


def _add_note(row: dict, note: str) -> None:
    if note:
        row["notes"] = f"{row['notes']}; {note}" if row.get("notes") else note


def _manual_points(out: Path, opts: argparse.Namespace, students: list[str], labs: list[str],
                   tmpl: dict) -> manual.ManualPoints | None:
    default_max = getattr(opts, "manual_max", None) or manual.DEFAULT_MAX
    given = getattr(opts, "manual", None)
    kept = out / manual.KEPT_FILE
    if given:
        points = manual.read_points(Path(given), students, labs, tmpl, default_max)
        if Path(given).resolve() != kept.resolve():
            write_atomic(kept, Path(given).read_bytes())
        return points
    if kept.is_file():
        try:
            points = manual.read_points(kept, students, labs, tmpl, default_max)
        except SystemExit as exc:  # merged for another set of students or labs: say so, do not stop the reports
            print(f"manual points: {kept} (merged by an earlier run) does not fit this batch, not merged:\n{exc}",
                  file=sys.stderr)
            return None
        print(f"manual points: merging {kept} again (merged by an earlier run; delete it to drop them)", file=sys.stderr)
        return points
    return None


def course_reports(out: Path, all_results: list[dict], labs: list[str], opts: argparse.Namespace) -> Course:
    """Write the course's files (module docstring) and return the gradebook table with its columns.

    Raises:
        SystemExit: the manual-points file or the roster is wrong (the message names the fix).
    """
    tmpl = questions.template()
    students = [r["extra_data"]["batch"]["student"] for r in all_results]
    fields, rows = gradebook_table(all_results, labs)
    course = Course(table=(fields, rows), questions=tmpl)
    course.answered = answers.write_answer_files(out, students, labs, tmpl)
    points = _manual_points(out, opts, students, labs, tmpl)
    course.manual_points = points
    manual.write_template(out, students, labs, tmpl, course.answered, points,
                          getattr(opts, "manual_max", None) or manual.DEFAULT_MAX)

    # Deadlines: the commit each clone was graded at.
    infos = {s: gitsnap.git_info(out, s) for s in students}
    if any(infos.values()):
        fields = _insert_after(fields, "grader_version", ["commit", "commit_date", "commits_after_deadline"])
        for row, s in zip(rows, students):
            info = infos[s] or {}
            row.update(commit=info.get("commit", ""), commit_date=info.get("date", ""),
                       commits_after_deadline=str(info.get("after", "")) if info else "")
            _add_note(row, gitsnap.describe(info) if info else "")
            if info.get("after"):
                course.late.append((s, info))

    # Manual points.
    auto_possible: dict[str, float] = {}
    for r in all_results:
        for lab, (_, mx) in lab_points(r).items():
            auto_possible[lab] = max(auto_possible.get(lab, 0.0), mx)
    if points is not None:
        fields = _insert_after(fields, "max", [*(f"{lab}_manual" for lab in labs), *(f"{lab}_total" for lab in labs),
                                               "manual", "manual_max", "total_with_manual", "max_with_manual"])
        for row, r, s in zip(rows, all_results, students):
            got_all = mx_all = 0.0
            todo_all = 0
            for lab in labs:
                got, mx, todo, qrows = points.of(s, lab, tmpl)
                row[f"{lab}_manual"] = f"{got:g}" if qrows else ""
                row[f"{lab}_total"] = f"{float(row.get(lab) or 0) + got:g}"
                got_all, mx_all, todo_all = got_all + got, mx_all + mx, todo_all + todo
            row.update(manual=f"{got_all:g}", manual_max=f"{mx_all:g}",
                       total_with_manual=f"{r['score'] + got_all:g}",
                       max_with_manual=f"{sum(auto_possible.get(lab, 0.0) for lab in labs) + mx_all:g}")
            if todo_all:
                _add_note(row, f"manual: {todo_all} question(s) not graded yet")
            section = manual.feedback_section(points, s, labs, tmpl)
            if section:
                write_atomic(out / "feedback" / f"{s}.md", feedback_markdown(s, r).rstrip("\n") + "\n\n" + section)

    # Roster.
    path = getattr(opts, "roster", None)
    if path:
        people = roster.read_roster(Path(path))
        entries = [(s, r["extra_data"]["batch"].get("entry", ""), r["extra_data"]["batch"].get("email", ""))
                   for s, r in zip(students, all_results)]
        matching = roster.match(people, entries)
        course.matching = matching
        fields = _insert_after(fields, "student", ["student_id", "name"])
        for row, s in zip(rows, students):
            who = matching.by_student.get(s)
            row.update(student_id=who.id if who else "", name=who.name if who else "")
            if who and not row.get("email"):
                row["email"] = who.email
            _add_note(row, matching.notes.get(s, ""))
        for who in matching.missing:
            keys = ", ".join(f"{k} {v}" for k, v in who.keys.items())
            rows.append({"student": "", "student_id": who.id, "name": who.name, "email": who.email, "entry": "",
                         "status": "missing", "notes": f"on the roster, no submission found (roster row {who.line}: {keys})"})
        # LMS files: the roster students who submitted something.
        lms_rows, possible = [], {}
        for lab in labs:
            possible[lab] = auto_possible.get(lab, 0.0) + (points.lab_max(lab, tmpl) if points else 0.0)
        for row, s in zip(rows, students):
            who = matching.by_student.get(s)
            if not who:
                continue
            entry = {"student_id": who.id, "name": who.name, "email": who.email, "section": who.section}
            for lab in labs:
                entry[lab] = float(row.get(f"{lab}_total") or row.get(lab) or 0)
            lms_rows.append(entry)
        course.lms = roster.write_lms(out, labs, sorted(lms_rows, key=lambda e: e["name"].lower()), possible)
    elif (out / "lms").is_dir():
        shutil.rmtree(out / "lms")  # from an earlier run with --roster: stale now
    course.table = (fields, rows)
    return course


def summary_section(course: Course, labs: list[str]) -> list[str]:
    """Lines for ``summary.md``: written answers, manual points, roster, deadline."""
    lines = ["", "## Written answers (QUESTIONS.md)", ""]
    students = list(course.answered)
    if not students:
        lines.append("No submission.")
    for lab in labs:
        per = [course.answered[s].get(lab, {}) for s in students]
        n = max((len(p) for p in per), default=0)
        if not n:
            continue
        full = sum(1 for p in per if p and all(p.values()))
        none = sum(1 for p in per if not any(p.values()))
        lines.append(f"- {lab}: {full} of {len(students)} students answered all {n} questions, {none} answered none; "
                     f"one file per question in answers/{lab}_qK.md")
    if course.manual_points is not None:
        todo = sum(1 for s in students for lab in labs for (_, pts, _, _) in
                   course.manual_points.of(s, lab, course.questions)[3] if pts is None)
        lines += ["", f"Manual points merged from {course.manual_points.source.name} for "
                  f"{', '.join(sorted(course.manual_points.labs)) or 'no lab'}; {todo} answer(s) not graded yet."]
    else:
        lines += ["", "No manual points merged yet: fill in a copy of manual-template.csv and run again with --manual FILE."]
    if course.matching is not None:
        m = course.matching
        lines += ["", "## Roster", "",
                  f"{len(m.by_student)} submissions matched to the roster; {len(m.missing)} roster student(s) "
                  f"submitted nothing; {len(m.unmatched)} submission(s) match no roster student."]
        for who in m.missing:
            lines.append(f"- missing: {_md(who.name)} (id {_md(who.id)})")
        for s in m.unmatched:
            lines.append(f"- not matched: {_md(s)}: {_md(m.notes.get(s, ''))}")
        if course.lms:
            lines.append(f"- LMS files: {', '.join('lms/' + p.name for p in course.lms)}")
    if course.late:
        lines += ["", "## Commits after the deadline", "",
                  "Graded at the last commit before the deadline (committer dates, which the student's machine "
                  "writes; GitHub's push times are the ones GitHub Classroom uses):", ""]
        for s, info in course.late:
            lines.append(f"- {_md(s)}: {info['after']} commit(s) after the deadline (last {info['last_after']}); "
                         f"graded {info['commit'][:12]} of {info['date']}")
    return lines


def _md(text: str) -> str:
    from grader import textsafe

    return textsafe.markdown(text)


def append_summary(out: Path, course: Course, labs: list[str]) -> None:
    """Append :func:`summary_section` to ``summary.md`` (written just before by ``write_summary``)."""
    path = out / "summary.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Class summary\n"
    write_atomic(path, text.rstrip("\n") + "\n" + "\n".join(summary_section(course, labs)) + "\n")
