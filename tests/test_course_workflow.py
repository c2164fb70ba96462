"""The course around the checks (issue 21, items 2, 4, 5, 6): written answers, manual points, roster,
LMS files, deadlines for Git submissions, the written answers on Gradescope.

Units on small generated folders, and the report stage on made-up results (no grading). The
end-to-end run of every option together is the class of ``tests/test_batch.py`` (``tests/fake_class.py``).
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path

import pytest

from grader import questions
from grader.course import gradescope
from grader.course.batch import answers, command, discover, gitsnap, manual, roster
from tests.fake_class import TEMPLATE, filled, make_clone, run_git

REPO_ROOT = Path(__file__).resolve().parent.parent
TMPL = questions.template()


# --------------------------------------------------------------------------- parsing QUESTIONS.md


def test_the_template_parses_into_every_question_with_no_answer():
    assert {lab: len(qs) for lab, qs in TMPL.items()} == {1: 5, 2: 6, 3: 5, 4: 6, 5: 7}
    assert TMPL[1][2].text.startswith("`fit.png`: how close")
    got = questions.answers_of(TEMPLATE, TMPL)
    assert all(a is None for qs in got.values() for a in qs.values()), "the template itself must count as unanswered"


def test_answers_are_read_whatever_the_student_did_to_the_file():
    text = filled({1: {1: "two paths:\n1. via c\n2. via d\n\n## My own heading <script>alert(1)</script>",
                       3: "   \n"}, 2: {6: "comparing learning rates"}})
    text = text.replace("   Answer: comparing", "   **Answer:** comparing").replace("   Answer: two paths", "answer: two paths")
    got = questions.answers_of(text, TMPL)
    assert got[1][1].startswith("two paths:\n1. via c\n2. via d") and "My own heading" in got[1][1]
    assert got[1][2] is None and got[1][3] is None, "a blank answer is missing"
    assert got[2][6] == "comparing learning rates"
    # Without the Answer: line, what follows the question's paragraph is the answer.
    text = TEMPLATE.replace("   Answer:\n\n2. `fit.png`", "   My answer without the marker.\n\n2. `fit.png`", 1)
    assert questions.answers_of(text, TMPL)[1][1] == "My answer without the marker."
    assert questions.answers_of("no sections at all\n", TMPL)[1] == {k: None for k in TMPL[1]}


# --------------------------------------------------------------------------- collecting answers


def _entry(path: Path) -> discover.Entry:
    return discover.Entry(student=path.stem, source=path)


def test_answers_are_collected_from_folders_and_zips_through_the_trusted_reader(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "ann" / "repo" / "labs").mkdir(parents=True)
    (subs / "ann" / "repo" / "labs" / "QUESTIONS.md").write_text(filled({1: {1: "ann's answer <b>x</b>"}}))
    (subs / "ann" / "QUESTIONS.md").write_text(filled({1: {1: "a stray copy"}}))  # labs/ is preferred
    with zipfile.ZipFile(subs / "bea.zip", "w") as zf:
        zf.writestr("mri-dl-labs-main/labs/questions.md", filled({1: {2: "bea on q2"}}))
    (subs / "cid").mkdir()
    (tmp_path / "secret.md").write_text(filled({1: {1: "not cid's"}}))
    os.symlink(tmp_path / "secret.md", subs / "cid" / "QUESTIONS.md")  # never followed
    (subs / "dan").mkdir()
    (subs / "dan" / "QUESTIONS.md").write_bytes(b"x" * (questions.MAX_BYTES + 1))
    for name in ("ann", "bea.zip", "cid", "dan"):
        answers.collect(_entry(subs / name), out / "work" / Path(name).stem)
    assert json.loads((out / "work" / "ann" / "answers.json").read_text())["path"] == "repo/labs/QUESTIONS.md"
    assert "no QUESTIONS.md" in json.loads((out / "work" / "cid" / "answers.json").read_text())["problem"]
    assert "more than" in json.loads((out / "work" / "dan" / "answers.json").read_text())["problem"]
    got = answers.write_answer_files(out, ["ann", "bea", "cid", "dan"], ["lab01"], TMPL)
    assert got["ann"]["lab01"] == {1: True, 2: False, 3: False, 4: False, 5: False}
    assert got["bea"]["lab01"][2] and not any(got["cid"]["lab01"].values())
    q1 = (out / "answers" / "lab01_q1.md").read_text()
    assert q1.startswith("# Lab 1, question 1\n\n> The printed derivatives")
    assert "> ann's answer &lt;b>x&lt;/b>" in q1 and "<b>" not in q1, "student text must be escaped"
    assert "not cid's" not in q1 and "## cid\n\n*(no answer: no QUESTIONS.md in the submission)*" in q1
    assert "1 of 4 students answered it" in q1
    assert sorted(p.name for p in (out / "answers").iterdir()) == [f"lab01_q{k}.md" for k in range(1, 6)]


# --------------------------------------------------------------------------- manual points


def _points(tmp_path: Path, rows: list[list], header=("student", "lab", "question", "max", "points", "comment")) -> Path:
    path = tmp_path / "points.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_manual_points_are_checked_row_by_row_with_the_fix(tmp_path):
    students, labs = ["ann", "bea"], ["lab01", "lab02"]
    good = manual.read_points(_points(tmp_path, [["ann", "lab01", 1, 2, 2, "right"], ["ANN", "1", 2, "", 0.5, ""],
                                                 ["bea", "lab1", 1, 2, "", ""]]), students, labs, TMPL)
    assert good.of("ann", "lab01", TMPL)[:3] == (2.5, 10.0, 3)  # 5 questions x max 2; 3 not graded
    assert good.of("bea", "lab01", TMPL)[:3] == (0.0, 10.0, 5) and good.labs == {"lab01"}
    bad = [["zed", "lab01", 1, 2, 1, ""], ["ann", "lab03", 1, 2, 1, ""], ["ann", "lab01", 9, 2, 1, ""],
           ["ann", "lab01", 1, 2, "full", ""], ["ann", "lab01", 2, 2, 3, ""], ["ann", "lab01", 3, 2, 1, ""],
           ["bea", "lab01", 3, 4, 1, ""], ["ann", "lab01", 3, 2, 1, ""], ["ann", "lab01", 4, -1, 0, ""]]
    with pytest.raises(SystemExit) as err:
        manual.read_points(_points(tmp_path, bad), students, labs, TMPL)
    msg = str(err.value)
    for expected in ("row 2: student 'zed' is not in this batch: use the student column of gradebook.csv",
                     "row 3: lab 'lab03' is not a lab graded in this batch (lab01, lab02)",
                     "row 4: lab01 has no question '9' (questions 1 to 5",
                     "row 5: points 'full' is not a number", "row 6: points 3 out of range for lab01 question 2: give 0 to 2",
                     "row 8: max 4 for lab01 question 3 differs from row 7", "row 9: ann lab01 question 3 is also on row 7",
                     "row 10: max '-1' is not a positive number", "nothing merged"):
        assert expected in msg, (expected, msg)
    with pytest.raises(SystemExit, match="no points column .* start from manual-template.csv"):
        manual.read_points(_points(tmp_path, [], header=("student", "lab", "question")), students, labs, TMPL)


def test_the_template_lists_every_student_lab_and_question_with_what_is_known(tmp_path):
    answered = {"ann": {"lab01": {k: k == 1 for k in TMPL[1]}}, "bea": {"lab01": {k: False for k in TMPL[1]}}}
    merged = manual.read_points(_points(tmp_path, [["ann", "lab01", 1, 3, 2.5, "good"]]), ["ann", "bea"], ["lab01"], TMPL)
    path = manual.write_template(tmp_path, ["ann", "bea"], ["lab01"], TMPL, answered, merged)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * 5 and list(rows[0]) == manual.TEMPLATE_COLUMNS
    assert rows[0] == {"student": "ann", "lab": "lab01", "question": "1", "max": "3", "points": "2.5", "comment": "good",
                       "answered": "yes"}
    assert rows[1]["points"] == "0" and rows[1]["comment"] == "no answer" and rows[1]["max"] == "2"
    # the template read back as it is merges cleanly
    again = manual.read_points(path, ["ann", "bea"], ["lab01"], TMPL)
    assert again.of("ann", "lab01", TMPL)[:3] == (2.5, 11.0, 0)


# --------------------------------------------------------------------------- roster and LMS files


def _roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def test_a_roster_without_the_needed_columns_is_refused_with_what_to_add(tmp_path):
    with pytest.raises(SystemExit, match=r"no id column \(columns found: name, folder\); a roster needs the columns id"):
        roster.read_roster(_roster(tmp_path, "name,folder\nAnn,ann\n"))
    with pytest.raises(SystemExit, match="no column naming the entries .* folder, username or github"):
        roster.read_roster(_roster(tmp_path, "ID,Name\n1,Ann\n"))
    with pytest.raises(SystemExit, match="row 3: id 1 is also on row 2"):
        roster.read_roster(_roster(tmp_path, "id,name,github\n1,Ann,ann\n1,Bea,bea\n"))


def test_entries_are_matched_by_folder_handle_or_email(tmp_path):
    people = roster.read_roster(_roster(tmp_path, "\ufeffId,Name,Email,GitHub,Folder\n"
                                        "1,Ann,ann@u.edu,jo,\n2,Bea,bea@u.edu,anna-jo,\n3,Cid,cid@u.edu,,Cid Moodle_77_assignsubmission_file_\n"
                                        "4,Dan,DAN@u.edu,,\n5,Eve,eve@u.edu,eve,\n6,Fay,fay@u.edu,fay,\n"))
    got = roster.match(people, [("lab1-jo", "lab1-jo", ""), ("lab1-anna-jo", "lab1-anna-jo", ""),
                                ("Cid_Moodle_77", "Cid Moodle_77_assignsubmission_file_", ""),
                                ("Dan_D", "submission_9", "dan@u.edu"), ("zed", "zed.zip", "zed@x.org"),
                                ("lab1-eve", "lab1-eve", ""), ("lab1-eve-2", "lab1-EVE.zip", "")])
    assert {s: r.id for s, r in got.by_student.items()} == {"lab1-jo": "1", "lab1-anna-jo": "2", "Cid_Moodle_77": "3",
                                                            "Dan_D": "4", "lab1-eve": "5", "lab1-eve-2": "5"}
    assert [r.id for r in got.missing] == ["6"] and got.unmatched == ["zed"]
    assert "not on the roster" in got.notes["zed"] and "two submissions for one student" in got.notes["lab1-eve"]


def test_lms_files_have_the_formats_canvas_and_moodle_import(tmp_path):
    rows = [{"student_id": "S1", "name": "Ann Lee", "email": "ann@u.edu", "section": "A", "lab01": 19.5, "lab02": 22},
            {"student_id": "S2", "name": "=cmd()", "email": "b@u.edu", "section": "", "lab01": 0, "lab02": 1.25}]
    canvas_path, moodle_path = roster.write_lms(tmp_path, ["lab01", "lab02"], rows, {"lab01": 29, "lab02": 22})
    canvas = list(csv.reader(canvas_path.open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "lab01_autograd", "lab02_backprop"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "29", "22"]
    assert canvas[2] == ["Ann Lee", "", "S1", "ann@u.edu", "A", "19.5", "22"]
    assert canvas[3][0] == "'=cmd()", "a formula in a name is shown as text"
    moodle = list(csv.reader(moodle_path.open()))
    assert moodle[0] == ["ID number", "Email address", "Full name", "lab01_autograd", "lab02_backprop"]
    assert moodle[1] == ["S1", "ann@u.edu", "Ann Lee", "19.5", "22"] and len(moodle) == 3


# --------------------------------------------------------------------------- deadlines for Git clones


def test_a_deadline_is_an_instant_with_its_offset():
    assert gitsnap.parse_deadline("2026-12-01T23:59+01:00").isoformat() == "2026-12-01T23:59:00+01:00"
    with pytest.raises(ValueError, match="has no time zone: add the offset"):
        gitsnap.parse_deadline("2026-12-01T23:59")
    with pytest.raises(SystemExit):
        command.build_parser().parse_args(["x", "--out", "o", "--deadline", "tomorrow"])


def test_a_clone_is_graded_at_its_last_commit_before_the_deadline_without_running_git(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    clone = make_clone(subs / "lab1-ann", [
        ("2026-11-30T10:00:00+01:00", {"labs/lab01_autograd.py": "ON TIME\n", "labs/QUESTIONS.md": filled({1: {1: "early"}})}),
        ("2026-12-02T09:00:00+01:00", {"labs/lab01_autograd.py": "LATE\n", "labs/QUESTIONS.md": filled({1: {1: "late"}})}),
        ("2026-12-03T09:00:00+01:00", {"notes.txt": "later still\n"})])
    marker = tmp_path / "student-program-ran"
    hook = clone / ".git" / "hooks" / "fsmonitor"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    run_git(clone, "config", "core.fsmonitor", str(hook))  # what `git status` as root would run
    os.symlink("/etc/hostname", clone / ".git" / "refs" / "heads" / "stolen")  # never followed
    (clone / ".git" / "objects" / "info" / "alternates").write_text(f"{tmp_path}/elsewhere/objects\n")
    (subs / "bob").mkdir()
    (subs / "bob" / "lab01_autograd.py").write_text("NO GIT\n")
    entries = discover.discover(subs)
    gitsnap.apply_deadline(entries, gitsnap.parse_deadline("2026-12-01T23:59+01:00"), out)
    bob, ann = entries
    assert (ann.source / ann.files["lab01"]).read_text() == "ON TIME\n" and not ann.problem
    assert ann.source == out / "git" / "lab1-ann" / "tree" / "lab1-ann"
    answers.collect(ann, out / "work" / ann.student)
    assert questions.answers_of((out / "work" / ann.student / "QUESTIONS.md").read_text(), TMPL)[1][1] == "early"
    info = gitsnap.git_info(out, ann.student)
    assert info["date"] == "2026-11-30T10:00:00+01:00" and info["after"] == 2
    assert info["last_after"] == "2026-12-03T09:00:00+01:00" and "refs/heads/stolen" in info["skipped"][0]
    assert "2 commit(s) after the deadline, not graded (last 2026-12-03T09:00:00+01:00)" in gitsnap.describe(info)
    copy = out / "git" / "lab1-ann" / "repo.git"
    assert (copy / "config").read_text() == gitsnap.OUR_CONFIG and not (copy / "hooks").exists()
    assert not (copy / "objects" / "info" / "alternates").exists() and not marker.exists()
    assert "not a Git clone" in bob.notes[0] and (bob.source / bob.files["lab01"]).read_text() == "NO GIT\n"
    # Every commit after the deadline: unreadable, with the reason; a .git over the limit: refused.
    entries = discover.discover(subs)
    gitsnap.apply_deadline(entries, gitsnap.parse_deadline("2026-11-01T00:00Z"), out)
    assert "every commit of its branch is after the deadline (the first one: 2026-11-30T10:00:00+01:00)" in entries[1].problem


def test_a_git_folder_over_the_limit_is_refused(tmp_path, monkeypatch):
    make_clone(tmp_path / "subs" / "big", [("2026-11-30T10:00:00Z", {"lab01_autograd.py": os.urandom(4000).hex()})])
    monkeypatch.setattr(gitsnap, "MAX_GIT_BYTES", 2000)
    entries = discover.discover(tmp_path / "subs")
    gitsnap.apply_deadline(entries, gitsnap.parse_deadline("2026-12-01T00:00Z"), tmp_path / "out")
    assert "its .git folder holds more than" in entries[0].problem and "check it by hand" in entries[0].problem


# --------------------------------------------------------------------------- the reports, on made-up results


def _results(student: str, entry: str, points: dict[str, tuple[float, float]], status: str = "ok", email: str = "") -> dict:
    tests = [{"name": f"{lab}: test_all", "score": got, "max_score": mx, "visibility": "visible", "output": ""}
             for lab, (got, mx) in points.items()]
    return {"score": sum(g for g, _ in points.values()), "max_score": sum(m for _, m in points.values()), "tests": tests,
            "output": "", "extra_data": {"grader_seed": 20181, "batch": {
                "student": student, "email": email, "entry": entry, "status": status, "notes": [],
                "grader_version": "v", "seconds": 1.0}}}


def test_reports_carry_answers_manual_points_roster_and_lms_files(tmp_path):
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    made = {"lab1-ann": _results("lab1-ann", "lab1-ann", {"lab01": (20, 29), "lab02": (22, 22)}),
            "lab1-bea": _results("lab1-bea", "lab1-bea", {"lab01": (29, 29), "lab02": (10, 22)}),
            "stray": _results("stray", "stray.zip", {"lab01": (0, 29), "lab02": (0, 22)})}
    for s, r in made.items():
        (out / "results" / f"{s}.json").write_text(json.dumps(r))
        (out / "feedback").mkdir(exist_ok=True)
        (out / "work" / s).mkdir(parents=True)
        (out / "work" / s / "answers.json").write_text('{"path": "QUESTIONS.md", "problem": ""}')
    (out / "work" / "lab1-ann" / "QUESTIONS.md").write_text(filled({1: {k: f"ann {k}" for k in range(1, 6)}}))
    roster_csv = _roster(tmp_path, "id,name,email,github,section\nS1,Ann Lee,ann@u.edu,ann,A\nS2,Bea Ray,bea@u.edu,bea,B\n"
                                   "S3,Cid Poe,cid@u.edu,cid,A\n")
    opts = command.build_parser().parse_args(["--out", str(out), "--roster", str(roster_csv)])
    command.write_reports(out, ["lab01", "lab02"], opts)
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["student"] for r in rows] == ["lab1-ann", "lab1-bea", "stray", ""]
    assert list(rows[0])[:3] == ["student", "student_id", "name"] and "lab01_manual" not in rows[0]
    assert (rows[0]["student_id"], rows[0]["name"], rows[0]["lab01"]) == ("S1", "Ann Lee", "20")
    assert rows[3]["status"] == "missing" and rows[3]["student_id"] == "S3" and "no submission found" in rows[3]["notes"]
    assert "not on the roster" in rows[2]["notes"]
    template = list(csv.DictReader((out / "manual-template.csv").open()))
    assert len(template) == 3 * (5 + 6), "student x graded lab x question"
    summary = (out / "summary.md").read_text()
    assert "## Written answers (QUESTIONS.md)" in summary and "- lab01: 1 of 3 students answered all 5 questions" in summary
    assert "1 roster student(s) submitted nothing" in summary and "- missing: Cid Poe (id S3)" in summary
    assert "- not matched: stray" in summary
    canvas = list(csv.reader((out / "lms" / "canvas.csv").open()))
    assert canvas[1][5:] == ["29", "22"] and [r[2] for r in canvas[2:]] == ["S1", "S2"]

    # Manual points merged: gradebook columns, feedback, LMS totals; kept for the next run.
    points = tmp_path / "points.csv"
    lines = (out / "manual-template.csv").read_text().splitlines()
    edited = [lines[0]] + [line.replace(",2,,", ",2,2,nice") if line.startswith("lab1-ann,lab01,") else line
                           for line in lines[1:]]
    points.write_text("\n".join(edited) + "\n")
    opts = command.build_parser().parse_args(["--out", str(out), "--roster", str(roster_csv), "--manual", str(points)])
    command.write_reports(out, ["lab01", "lab02"], opts)
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    ann = rows["lab1-ann"]
    assert (ann["lab01"], ann["lab01_manual"], ann["lab01_total"], ann["lab02_manual"]) == ("20", "10", "30", "0")
    assert (ann["total"], ann["manual"], ann["manual_max"], ann["total_with_manual"], ann["max_with_manual"]) == \
        ("42", "10", "22", "52", "73")
    assert rows["lab1-bea"]["lab01_manual"] == "0" and "not graded yet" not in rows["lab1-bea"]["notes"]
    feedback = (out / "feedback" / "lab1-ann.md").read_text()
    assert "## Written answers (QUESTIONS.md, graded by hand)" in feedback and "**10 / 22 points**" in feedback
    assert "| 1 | 2 | 2 | nice |" in feedback
    assert list(csv.reader((out / "lms" / "canvas.csv").open()))[1][5:] == ["39", "34"]
    assert (out / "manual-points.csv").read_text() == points.read_text()
    opts = command.build_parser().parse_args(["--out", str(out)])
    command.write_reports(out, ["lab01", "lab02"], opts)
    assert {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}["lab1-ann"]["manual"] == "10"
    assert not (out / "lms").exists(), "LMS files without a roster would be stale"
    command.write_reports(out, ["lab02"], opts)  # the kept points name lab01: reported, not merged, no stop
    assert "manual" not in next(csv.DictReader((out / "gradebook.csv").open()))


# --------------------------------------------------------------------------- Gradescope


def test_gradescope_shows_the_written_answers_as_visible_zero_point_tests(tmp_path):
    sub = tmp_path / "submission"
    (sub / "labs").mkdir(parents=True)
    (sub / "labs" / "QUESTIONS.md").write_text(filled({2: {1: "eps <img src=x onerror=alert(1)>"}}))
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"score": 5, "tests": [{"name": "lab02: test_x", "score": 5, "max_score": 5}]}))
    assert questions.main([str(sub), str(results), "lab02_backprop"]) == 0
    tests = json.loads(results.read_text())["tests"]
    assert [t["name"] for t in tests] == ["lab02: test_x", "lab02: written answers (QUESTIONS.md, graded by hand)"]
    shown = tests[1]
    assert (shown["score"], shown["max_score"], shown["visibility"], shown["output_format"]) == (0, 0, "visible", "md")
    assert shown["output"].startswith("1 of 6 questions answered") and "> eps &lt;img src=x" in shown["output"]
    assert "<img" not in shown["output"] and shown["output"].count("*(no answer)*") == 5
    (sub / "labs" / "QUESTIONS.md").unlink()
    results.write_text(json.dumps({"score": 0, "tests": []}))
    questions.main([str(sub), str(results), "lab01_autograd"])
    assert "No QUESTIONS.md was found in your submission" in json.loads(results.read_text())["tests"][0]["output"]
    script = gradescope.run_autograder_sh(["lab04"])
    assert 'cd "$SRC" && "$PYTHON" -m grader.questions "$SUB" "$RES/results.json" lab04_dti' in script


def test_instructor_csv_files_are_read_with_a_bom_and_refused_with_the_fix(tmp_path):
    """reports.read_csv_table, shared by --roster and --manual: a spreadsheet's UTF-8 BOM is dropped, header names
    are matched stripped and lower-cased, and a file that is not UTF-8 stops with the option, the file and the fix."""
    from grader.course.batch.reports import read_csv_table

    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffID, Name \nS1,Ann\n".encode("utf-8"))
    reader, header = read_csv_table(path, "--roster", "save it as UTF-8")
    assert header == {"id": "ID", "name": " Name "}
    assert [row["ID"] for row in reader] == ["S1"]
    path.write_bytes(b"id,name\nS1,\xff\xfe\n")
    with pytest.raises(SystemExit, match=r"--roster .*roster.csv: cannot read it .*: save it as UTF-8"):
        read_csv_table(path, "--roster", "save it as UTF-8")
