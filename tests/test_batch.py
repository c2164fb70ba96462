"""``python -m grader batch``: a generated class of 15 submissions graded end to end.

The class (``tests/fake_class.py``) holds every layout instructors get and every way a
submission goes wrong: Git clones with commits after the deadline, misnamed uploads, written
answers filled in, left as the template or missing, a roster with a student who submitted
nothing and an entry that matches nobody. It is graded once per session (lab 1 only, 10 s check
budget, two slots, with the roster, the deadline and similarity, as docs/grading-a-class.md
runs it); the tests read that one run, grade four submissions again on their own with
``python -m grader --labs-dir`` to check the gradebook against them, resume the batch, and merge
a TA's manual points with a second run that grades nothing again.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.course.batch import command, discover, reports
from grader.judge.sandbox import live_processes
from tests.fake_class import (
    ALICE_COMMITS,
    ALICE_LATE,
    ANSWERS,
    BOB_COMMITS,
    CLASS,
    DAVE_COMMITS,
    DEADLINE,
    IVAN,
    MISSING,
    NAMES,
    STRAY,
    UNMATCHED,
    lab_files,
    make_class,
    make_roster,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--lab", "1", "--timeout", "10"]
pytestmark = pytest.mark.timeout(900)  # the class is graded in the first test's set-up


def run_batch(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "grader", "batch", *argv], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def workflow(subs: Path) -> list[str]:
    """The course's options of every run of the class: its roster (beside SUBMISSIONS) and deadline."""
    return ["--roster", str(subs.parent / "roster.csv"), "--deadline", DEADLINE]


def gradebook(out: Path) -> tuple[dict[str, dict], list[dict]]:
    """(entry -> gradebook row of each submission, the rows of roster students with no submission)."""
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    return {r["entry"]: r for r in rows if r["status"] != "missing"}, [r for r in rows if r["status"] == "missing"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "submissions", root / "out"
    make_class(subs)
    make_roster(root / "roster.csv", CLASS)
    proc = run_batch(str(subs), "--out", str(out), *ARGS, *workflow(subs), "--workers", "2", "--similarity", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows, _ = gradebook(out)
    return subs, out, rows, proc


def test_every_entry_is_in_the_gradebook_with_its_status(graded):
    _, out, rows, proc = graded
    assert set(rows) == set(CLASS), f"entries missing or extra: {set(CLASS) ^ set(rows)}"
    for entry, (what, status) in CLASS.items():
        assert rows[entry]["status"] == status, f"{entry} ({what}): {rows[entry]}"
        if status == "unreadable":
            assert rows[entry]["notes"], f"{entry}: no reason given"
    assert "15 submissions" in proc.stderr and "2 unreadable" in proc.stderr
    assert "not a submission" in proc.stderr and all(repr(name) in proc.stderr for name in STRAY)
    # points: full, a planted bug, stubs, what is left after a crash
    assert rows["ivan"]["lab01"] == rows["ivan"]["max"] == rows["classroom-alice"]["total"]
    assert rows["peggy"]["total"] == rows["ivan"]["total"], "labs/ nested three folders deep not found"
    assert 0 < float(rows["Dave Smith_1234_assignsubmission_file_"]["total"]) < float(rows["ivan"]["total"])
    assert rows["carol.zip"]["total"] == "0" and rows["carol.zip"]["status"] == "ok"
    assert rows["Dave Smith_1234_assignsubmission_file_"]["student"] == "Dave_Smith_1234"
    assert "no file submitted" in rows["oscar"]["notes"]
    assert "SyntaxError" in rows["grace"]["notes"] and "os._exit" in rows["frank.zip"]["notes"]
    assert any(note.startswith("lab01: does not import: SyntaxError at labs/lab01_autograd.py, line")
               for note in rows["grace"]["notes"].split("; ")), rows["grace"]["notes"]
    assert not any(str(out) in row["notes"] for row in rows.values()), "the instructor's paths in the notes"
    for entry in ("heidi.zip", "mallory"):  # not graded: 0 of what the others could earn
        assert rows[entry]["total"] == "0" and rows[entry]["max"] == rows["ivan"]["max"] != "0"
    assert "time budget" in rows["erin"]["notes"]
    for row in rows.values():
        assert row["grader_seed"] == "20181" and len(row["grader_version"]) == 12


def test_misnamed_uploads_are_taken_or_named(graded):
    """`lab01_autograd (1).py` alone is graded and said; two candidates: neither, and the student is told why."""
    _, out, rows, _ = graded
    rupert, sybil = rows["rupert"], rows["sybil"]
    assert rupert["total"] == rows["ivan"]["total"] and "took `lab01_autograd (1).py` as labs/lab01_autograd.py" in rupert["notes"]
    assert sybil["total"] == "0" and sybil["status"] == "ok" and "lab01: no file submitted" in sybil["notes"]
    assert ("lab01_autograd.py not found; 2 files could be it: `lab01_autograd (1).py`, `lab01_autograd - Copy.py`: "
            "none was graded (name the one to grade lab01_autograd.py)") in sybil["notes"]
    feedback = (out / "feedback" / "rupert.md").read_text()
    assert "## Your files\n\n- took `lab01_autograd (1).py` as labs/lab01_autograd.py" in feedback
    feedback = (out / "feedback" / "sybil.md").read_text()
    assert "## Your files" in feedback and "2 files could be it" in feedback and "- lab01 (0/" in feedback
    checks = [t for t in json.loads((out / "results" / "sybil.json").read_text())["tests"] if t["max_score"] > 0]
    assert checks and all(t["output"].startswith("file missing") for t in checks), "a missing file is not 'not implemented'"
    assert "## Your files" not in (out / "feedback" / "ivan.md").read_text()


def git_rev(clone: Path, rev: str) -> str:
    """The commit ``rev`` of a generated clone (git runs on the test's own repository, never in the batch)."""
    return subprocess.run(["git", "rev-parse", rev], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()


def test_clones_are_graded_at_their_last_commit_before_the_deadline(graded):
    subs, out, rows, _ = graded
    alice, bob, dave = rows["classroom-alice"], rows["classroom-bob"], rows["Dave Smith_1234_assignsubmission_file_"]
    # alice: on time at ALICE_COMMITS[1]; 23:30 UTC on 1 December is after 23:59+01:00; the bug came later
    assert (alice["commit"], alice["commit_date"], alice["commits_after_deadline"]) == (
        git_rev(subs / "classroom-alice", "HEAD~2"), ALICE_COMMITS[1], "2")
    assert alice["total"] == alice["max"] == rows["ivan"]["total"], "the late commit with the bug was graded"
    assert (f"2 commit(s) after the deadline, not graded (last {ALICE_COMMITS[3]})") in alice["notes"]
    assert (out / "work" / "classroom-alice" / "labs" / "lab01_autograd.py").read_text() == lab_files("alt")["lab01_autograd.py"]
    assert (bob["commit"], bob["commit_date"], bob["commits_after_deadline"]) == (
        git_rev(subs / "classroom-bob", "HEAD"), BOB_COMMITS[1], "0")
    assert (dave["commit_date"], dave["commits_after_deadline"]) == (DAVE_COMMITS[0], "0"), "an LMS folder around a clone"
    assert "graded at commit" in dave["notes"] and "after the deadline" not in dave["notes"]
    for entry in ("ivan", "carol.zip", "rupert"):
        assert rows[entry]["commit"] == "" and "not a Git clone (no .git folder): graded as submitted" in rows[entry]["notes"]
    summary = (out / "summary.md").read_text().split("## Commits after the deadline")[1]
    assert f"- classroom-alice: 2 commit(s) after the deadline (last {ALICE_COMMITS[3]}); graded {alice['commit'][:12]}" in summary
    assert "classroom-bob" not in summary and "Dave" not in summary


def test_written_answers_one_file_per_question(graded):
    """Filled in, the template, none; the clone's answers of the graded commit; student text escaped."""
    _, out, rows, _ = graded
    assert sorted(p.name for p in (out / "answers").iterdir()) == [f"lab01_q{k}.md" for k in range(1, 6)]
    q1 = (out / "answers" / "lab01_q1.md").read_text()
    answered = sum(1 for a in ANSWERS.values() if isinstance(a, dict) and 1 in a)
    assert q1.startswith("# Lab 1, question 1\n\n> The printed derivatives") and f"{answered} of 15 students answered it" in q1
    for student in ("ivan", "judy"):
        assert f"## {student}\n\n> {IVAN[1]}" in q1
    assert "## classroom-alice\n\n> Two paths, via c and via d" in q1, "the answers of the graded commit"
    assert "## rupert\n\n> Rupert wrote questions.md in lower case." in q1
    assert "> Both paths &lt;b>add&lt;/b> up." in q1 and "<b>" not in q1
    assert "## classroom-bob\n\n*(no answer)*" in q1 and "## sybil\n\n*(no answer)*" in q1, "the template is no answer"
    assert "## oscar\n\n*(no answer: no QUESTIONS.md in the submission)*" in q1
    assert "## heidi\n\n*(no answer: QUESTIONS.md not read" in q1
    every = "".join((out / "answers" / f"lab01_q{k}.md").read_text() for k in range(1, 6))
    assert all(late not in every for late in ALICE_LATE.values()), "an answer written after the deadline was collected"
    assert "- lab01: 3 of 15 students answered all 5 questions, 7 answered none" in (out / "summary.md").read_text()
    template = list(csv.DictReader((out / "manual-template.csv").open()))
    assert len(template) == 15 * 5 and {r["student"] for r in template} == {r["student"] for r in rows.values()}
    ivan = [r for r in template if r["student"] == "ivan"]
    assert [(r["points"], r["answered"]) for r in ivan] == [("", "yes")] * 5
    oscar = [r for r in template if r["student"] == "oscar"]
    assert [(r["points"], r["comment"], r["answered"]) for r in oscar] == [("0", "no answer", "no")] * 5


def test_roster_ids_the_missing_student_and_the_unmatched_entry(graded):
    subs, out, rows, _ = graded
    fields = next(csv.reader((out / "gradebook.csv").open()))
    assert fields[:4] == ["student", "student_id", "name", "email"]
    assert fields[fields.index("grader_version") + 1:][:3] == ["commit", "commit_date", "commits_after_deadline"]
    roster = {r["name"]: r for r in csv.DictReader((subs.parent / "roster.csv").open())}
    for entry, row in rows.items():
        if entry == UNMATCHED:
            assert row["student_id"] == row["name"] == "" and "not on the roster" in row["notes"]
        else:
            assert (row["student_id"], row["name"]) == (roster[NAMES[entry]]["id"], NAMES[entry]), entry
    _, missing = gradebook(out)
    assert [(m["student"], m["student_id"], m["name"], m["status"]) for m in missing] == [
        ("", MISSING["id"], MISSING["name"], "missing")]
    assert "on the roster, no submission found" in missing[0]["notes"]
    summary = (out / "summary.md").read_text().split("## Roster")[1]
    assert ("14 submissions matched to the roster; 1 roster student(s) submitted nothing; 1 submission(s) match no "
            "roster student.") in summary
    assert f"- missing: {MISSING['name']} (id {MISSING['id']})" in summary and f"- not matched: {UNMATCHED}: " in summary


def test_lms_files_carry_every_matched_student(graded):
    """Canvas and Moodle import files: one row per roster student with a submission (graded or not)."""
    _, out, rows, _ = graded
    canvas = list(csv.reader((out / "lms" / "canvas.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "lab01_autograd"]
    assert canvas[1] == ["Points Possible", "", "", "", "", rows["ivan"]["max"]]
    by_id = {r["student_id"]: r for r in rows.values() if r["student_id"]}
    assert sorted(r[2] for r in canvas[2:]) == sorted(by_id) and MISSING["id"] not in by_id and len(by_id) == 14
    assert [r[0] for r in canvas[2:]] == sorted(r[0] for r in canvas[2:]), "rows sorted by name"
    for name, _, sid, email, _, points in canvas[2:]:
        assert (name, email, points) == (by_id[sid]["name"], by_id[sid]["email"], by_id[sid]["lab01"])
    moodle = list(csv.reader((out / "lms" / "moodle.csv").open()))
    assert moodle[0] == ["ID number", "Email address", "Full name", "lab01_autograd"]
    assert [(r[0], r[3]) for r in moodle[1:]] == [(r[2], r[5]) for r in canvas[2:]]


@pytest.mark.parametrize("entry", ["Dave Smith_1234_assignsubmission_file_", "frank.zip", "grace", "oscar"])
def test_batch_grades_as_a_single_run_does(graded, entry, tmp_path):
    """Same checks, scores, messages and crash handling as `python -m grader --labs-dir`."""
    _, out, rows, _ = graded
    student = rows[entry]["student"]
    single = tmp_path / "single.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "grader", "--labs-dir", str(out / "work" / student / "labs"), *ARGS,
                           "--json", str(single)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    alone = json.loads(single.read_text())
    in_batch = json.loads((out / "results" / f"{student}.json").read_text())
    keys = ("name", "score", "max_score", "status", "output", "visibility")
    assert [{k: t[k] for k in keys} for t in in_batch["tests"]] == [{k: t[k] for k in keys} for t in alone["tests"]]
    assert float(rows[entry]["total"]) == alone["score"] and float(rows[entry]["max"]) == alone["max_score"]


def test_feedback_per_student_marks_hidden_checks(graded):
    _, out, rows, _ = graded
    for row in rows.values():
        assert (out / "feedback" / f"{row['student']}.md").is_file(), row["student"]
    dave = (out / "feedback" / "Dave_Smith_1234.md").read_text()
    assert "de/db" in dave and "hidden check" in dave
    results = json.loads((out / "results" / "Dave_Smith_1234.json").read_text())
    hidden_failed = [t for t in results["tests"] if t["visibility"] != "visible" and t["score"] < t["max_score"]]
    assert hidden_failed and all(f"`{t['name']}` ({t['score']:g}/{t['max_score']:g}) *(hidden check" in dave for t in hidden_failed)
    assert "could not be graded" in (out / "feedback" / "heidi.md").read_text()
    grace = (out / "feedback" / "grace.md").read_text()  # a syntax error: one line for the lab, not one per check
    assert grace.count("could not import") == 1 and str(out) not in grace
    assert "- lab01 (0/" in grace and "could not import labs/lab01_autograd.py: SyntaxError at labs/lab01_autograd.py" in grace
    assert results["extra_data"]["batch"]["status"] == "ok" and results["extra_data"]["batch"]["entry"].startswith("Dave")


def test_summary_names_the_slips_the_class_made(graded):
    _, out, _, _ = graded
    summary = (out / "summary.md").read_text()
    assert "15 submissions: 10 ok, 2 crashed, 1 timed out, 2 unreadable" in summary
    did_not_run = next(l for l in summary.split("## Labs that did not run")[1].splitlines() if l.startswith("| lab01 | "))
    assert did_not_run.startswith("| lab01 | 2 | 1 | SyntaxError at lab01_autograd.py"), did_not_run  # oscar, sybil; grace
    assert "## Not a submission" in summary and "`notes.txt`" in summary and "- notes.txt" not in summary
    line = next(l for l in summary.splitlines() if l.startswith("| `lab01: test_graph_backward_matches_autograd`"))
    assert "only one path counted" in line and "1 |" in line.split("%")[1], line  # one not implemented (carol)
    assert "heidi" in summary and "not a readable zip" in summary
    assert "could not import" not in summary.split("## Checks the class failed most")[1], "import errors counted as failures"
    png = (out / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_checks_csv_has_a_column_per_check(graded):
    _, out, rows, _ = graded
    table = list(csv.reader((out / "checks.csv").open()))
    header, possible, by_student = table[0], table[1], {r[0]: r for r in table[2:]}
    results = json.loads((out / "results" / "ivan.json").read_text())
    assert header[2:] == [t["name"] for t in results["tests"] if t["max_score"] > 0]
    assert by_student["ivan"][2:] == possible[2:] and sum(map(float, possible[2:])) == float(rows["ivan"]["max"])
    assert set(by_student["grace"][2:]) == {""}, "a lab that did not import measured nothing"
    assert set(by_student) == {r["student"] for r in rows.values()}


def test_similarity_lists_the_near_copies_not_the_stubs(graded):
    _, out, _, _ = graded
    md = (out / "similarity.md").read_text()
    assert "[ivan](work/ivan/labs/lab01_autograd.py), [judy](work/judy/labs/lab01_autograd.py) |" in md
    assert "carol" not in md, "a stub-only submission was reported as similar: the stub text is boilerplate"
    # tests/alt copied by eight students (four with one function appended): one group, not 28 pairs
    alt = next(l for l in md.splitlines() if "classroom-alice" in l)
    assert all(f"[{s}](" in alt for s in ("classroom-alice", "classroom-bob", "Dave_Smith_1234", "erin", "peggy", "rupert"))
    assert "sybil" not in md, "a lab file that was not graded is not compared"
    assert "## lab02" not in md, "only the graded labs are compared (--lab 1)"
    page = (out / "similarity.html").read_text()
    assert "judy" in page and "cdn" not in page and "<script" not in page
    assert (out / "similarity.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_grades_only_what_changed(graded):
    subs, out, rows, _ = graded
    before = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    (out / "results" / "ivan.json").unlink()  # as if the batch had been stopped before ivan
    (out / "results" / "judy.json").write_text("forged")  # damaged: listed, never dropped, then regraded
    command.write_reports(out, ["lab01"], command.build_parser().parse_args(["--out", str(out)]))
    damaged = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}["judy"]
    assert damaged["status"] == "grader error" and "damaged" in damaged["notes"]
    proc = run_batch(str(subs), "--out", str(out), *ARGS, *workflow(subs), "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 to grade, 11 already graded" in proc.stderr, proc.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    changed = {n for n in after if after[n] != before.get(n)}
    unreadable = {f"{r['student']}.json" for r in rows.values() if r["status"] == "unreadable"}
    assert changed - unreadable == {"ivan.json", "judy.json"}
    again, missing = gradebook(out)
    assert {e: {k: v for k, v in r.items() if k != "seconds"} for e, r in again.items()} == \
        {e: {k: v for k, v in r.items() if k != "seconds"} for e, r in rows.items()}
    assert [m["student_id"] for m in missing] == [MISSING["id"]]


def test_merge_of_shards_gives_the_same_gradebook(graded, tmp_path):
    subs, out, rows, _ = graded
    shards = [tmp_path / "s1", tmp_path / "s2"]
    for i, path in enumerate(sorted((out / "results").glob("*.json"))):
        dest = shards[i % 2]
        for sub, suffix in (("results", ".json"), ("feedback", ".md")):
            (dest / sub).mkdir(parents=True, exist_ok=True)
            (dest / sub / f"{path.stem}{suffix}").write_bytes((out / sub / f"{path.stem}{suffix}").read_bytes())
        shutil.copytree(out / "work" / path.stem, dest / "work" / path.stem)  # answers, the commit graded
    roster = workflow(subs)[:2]
    proc = run_batch("--merge", *map(str, shards), "--out", str(tmp_path / "merged"), *roster, "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "merged" / "gradebook.csv").read_text() == (out / "gradebook.csv").read_text()
    assert (tmp_path / "merged" / "lms" / "canvas.csv").read_text() == (out / "lms" / "canvas.csv").read_text()
    assert (tmp_path / "merged" / "answers" / "lab01_q1.md").read_text() == (out / "answers" / "lab01_q1.md").read_text()
    # shards graded with another seed are refused, naming the fix
    other = json.loads((shards[1] / "results" / "ivan.json").read_text()) if (shards[1] / "results" / "ivan.json").exists() \
        else json.loads((shards[0] / "results" / "ivan.json").read_text())
    other["extra_data"]["grader_seed"] = 7
    (shards[1] / "results" / "zz-other.json").write_text(json.dumps(other))
    proc = run_batch("--merge", *map(str, shards), "--out", str(tmp_path / "merged2"), "-q")
    assert proc.returncode != 0 and "--grader-seed" in proc.stderr


#: The TA's points for lab 1's written answers: each answered question right (2 of 2), but these.
PARTLY = {("ivan", "3"): ("1.5", "say by how much one update changes r")}
NOT_GRADED_YET = {("judy", "5")}


@pytest.fixture(scope="module")
def manual(graded, tmp_path_factory):
    """The TA's points merged by a second run of the same command with --manual, into a copy of the
    class's OUTDIR: nothing is graded again. Returns (OUTDIR, gradebook rows, points file, stderr)."""
    subs, out, _, _ = graded
    merged = tmp_path_factory.mktemp("manual") / "out"
    shutil.copytree(out, merged)
    results = {p.name: p.read_bytes() for p in (merged / "results").glob("*.json")}
    lines = list(csv.reader((merged / "manual-template.csv").open()))
    for row in lines[1:]:
        student, _, question, qmax, _, _, answered = row
        if (student, question) in PARTLY:
            row[4:6] = PARTLY[(student, question)]
        elif (student, question) in NOT_GRADED_YET:
            row[4:6] = ["", ""]
        elif answered == "yes":
            row[4:6] = [qmax, "right"]
    points = merged.parent / "points.csv"
    with points.open("w", newline="") as f:
        csv.writer(f).writerows(lines)
    proc = run_batch(str(subs), "--out", str(merged), *ARGS, *workflow(subs), "--workers", "2", "--similarity", "-q",
                     "--manual", str(points))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 to grade" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in (merged / "results").glob("*.json")} == results, "a result was rewritten"
    return merged, gradebook(merged)[0], points, proc.stderr


def test_manual_points_are_merged_beside_the_automatic_ones(graded, manual):
    _, _, rows, _ = graded
    out, merged, points, _ = manual
    fields = next(csv.reader((out / "gradebook.csv").open()))
    k = fields.index("max") + 1
    assert fields[k:k + 6] == ["lab01_manual", "lab01_total", "manual", "manual_max", "total_with_manual", "max_with_manual"]
    for entry, row in merged.items():
        answers = ANSWERS[entry] if isinstance(ANSWERS[entry], dict) else {}
        student = row["student"]
        expected = sum(float(PARTLY.get((student, str(q)), ("2",))[0]) for q in answers
                       if (student, str(q)) not in NOT_GRADED_YET)
        assert row["lab01"] == row["total"] == rows[entry]["lab01"], f"{entry}: the automatic points changed"
        assert float(row["lab01_manual"]) == float(row["manual"]) == expected, entry
        assert float(row["lab01_total"]) == float(row["total_with_manual"]) == float(row["lab01"]) + expected, entry
        assert (row["manual_max"], float(row["max_with_manual"])) == ("10", float(rows[entry]["max"]) + 10), entry
    assert "manual: 1 question(s) not graded yet" in merged["judy"]["notes"]
    assert not any("not graded yet" in r["notes"] for e, r in merged.items() if e != "judy")
    feedback = (out / "feedback" / "ivan.md").read_text()
    assert "## Written answers (QUESTIONS.md, graded by hand)" in feedback and "**9.5 / 10 points**" in feedback
    assert "| 3 | 1.5 | 2 | say by how much one update changes r |" in feedback
    assert "| 5 | not graded yet | 2 |" in (out / "feedback" / "judy.md").read_text()
    summary = (out / "summary.md").read_text()
    assert "Manual points merged from points.csv for lab01; 1 answer(s) not graded yet." in summary
    assert (out / "manual-points.csv").read_text() == points.read_text()


def test_lms_files_carry_the_manual_points(manual):
    out, merged, _, _ = manual
    canvas = list(csv.reader((out / "lms" / "canvas.csv").open()))
    assert canvas[1][5] == merged["ivan"]["max_with_manual"]
    by_id = {r["student_id"]: r for r in merged.values() if r["student_id"]}
    assert {r[2]: r[5] for r in canvas[2:]} == {sid: r["lab01_total"] for sid, r in by_id.items()}
    assert {r[0]: r[3] for r in list(csv.reader((out / "lms" / "moodle.csv").open()))[1:]} == \
        {sid: r["lab01_total"] for sid, r in by_id.items()}


def test_shards_split_the_class(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in "abcde":
        (subs / f"{name}.zip").write_bytes(b"not a zip")  # unreadable: sharding needs no grading
    for k in (1, 2):
        proc = run_batch(str(subs), "--out", str(tmp_path / f"out{k}"), "--shard", f"{k}/2", "-q")
        assert proc.returncode == 0, proc.stderr
    got = [sorted(p.stem for p in (tmp_path / f"out{k}" / "results").glob("*.json")) for k in (1, 2)]
    assert got == [["a", "c", "e"], ["b", "d"]]
    proc = run_batch(str(subs), "--out", str(tmp_path / "x"), "--shard", "3/2")
    assert proc.returncode == 2 and "1 <= K <= N" in proc.stderr


def test_discover_reads_gradescope_exports_and_refuses_tricks(tmp_path):
    subs = tmp_path / "export"
    lab = (REPO_ROOT / "labs" / "lab01_autograd.py").read_text()
    (subs / "submission_111" / "labs").mkdir(parents=True)
    (subs / "submission_111" / "labs" / "lab01_autograd.py").write_text(lab)
    (subs / "submission_222").mkdir()
    (subs / "submission_222" / "lab01_autograd.py").write_text(lab)
    (subs / "submission_metadata.yml").write_text(
        "submission_111:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1'\n    :email: ada@uni.edu\n"
        "submission_222:\n  :submitters:\n  - :name: Alan Turing\n    :email: alan@uni.edu\n"
        "  - :name: Grace Hopper\n    :email: grace@uni.edu\n")
    with zipfile.ZipFile(subs / "zed.zip", "w") as zf:  # a path out of the folder, and a huge "lab file"
        zf.writestr("../lab01_autograd.py", lab)
        zf.writestr("repo/labs/lab02_backprop.py", "x = 1\n" * 400_000)
    entries = {e.source.name: e for e in discover.discover(subs)}
    assert set(entries) == {"submission_111", "submission_222", "zed.zip"}
    assert (entries["submission_111"].student, entries["submission_111"].email) == ("Ada_Lovelace", "ada@uni.edu")
    assert entries["submission_222"].student == "Alan_Turing+Grace_Hopper"
    assert entries["submission_222"].email == "alan@uni.edu;grace@uni.edu"
    assert entries["submission_111"].files == {"lab01": "labs/lab01_autograd.py"}
    assert entries["zed.zip"].files == {"lab02": "repo/labs/lab02_backprop.py"}, "../ must never be read"
    with pytest.raises(discover.Unreadable, match="too large for a lab file"):
        discover.extract(entries["zed.zip"], tmp_path / "w")
    with pytest.raises(SystemExit, match="not a folder"):
        discover.discover(tmp_path / "nowhere")


def test_write_atomic_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "gradebook.csv"
    reports.write_atomic(path, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        reports.write_atomic(path, "new\n" * 1000)
    assert path.read_text() == "old\n"


ATTACK = '''

def graph_forward(a, b):
    import pathlib
    import subprocess

    for target in {targets!r}:
        try:
            pathlib.Path(target).write_text("forged")
        except OSError:
            pass
    subprocess.Popen(["sleep", "600"], start_new_session=True)  # left behind for the next student
    c, d = a + b, b + 1.0
    return c, d, c * d
'''


def test_worker_user_keeps_students_away_from_each_other(tmp_path):
    """As root with --worker-user, a student cannot touch results, other students' files or the grader."""
    from tests.autograder import WORKER_USER, enable_user_switch

    why = enable_user_switch()
    if why:
        pytest.skip(why)
    subs, out = tmp_path / "subs", tmp_path / "out"
    alt = (REPO_ROOT / "tests" / "alt" / "lab01_autograd.py").read_text()
    targets = [str(out / "results" / "victim.json"), str(out / "work" / "victim" / "labs" / "lab01_autograd.py"),
               str(REPO_ROOT / "grader" / "FORGED"), str(out / "gradebook.csv")]
    for name, text in (("victim", alt), ("zed", alt + ATTACK.format(targets=targets))):
        (subs / name).mkdir(parents=True)
        (subs / name / "lab01_autograd.py").write_text(text)
    proc = run_batch(str(subs), "--out", str(out), *ARGS, "--workers", "1", "--worker-user", WORKER_USER, "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"student code runs as {WORKER_USER}" in proc.stderr
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["victim"]["total"] == rows["victim"]["max"] == rows["zed"]["total"], rows
    assert (out / "work" / "victim" / "labs" / "lab01_autograd.py").read_text() == alt
    assert json.loads((out / "results" / "victim.json").read_text())["score"] == float(rows["victim"]["max"])
    assert not (REPO_ROOT / "grader" / "FORGED").exists()
    # Killed orphans may wait a moment as zombies for init to reap them: they no longer run.
    left = live_processes(WORKER_USER)
    assert not left, f"processes of {WORKER_USER} outlived the batch: {left}"


LEFTOVERS = '''
import os, pathlib, subprocess, tempfile
# A student who leaves things for the next one, and reads what the grading machine's environment holds.
for folder in ("/tmp", "/dev/shm", "/var/tmp", tempfile.gettempdir(), os.path.expanduser("~")):
    try:
        pathlib.Path(folder, "left-by-zed").write_text("x")
    except OSError:
        pass
try:
    os.makedirs("/tmp/pytest-of-root/pytest-0", mode=0o777)  # the judge's predictable pytest folder
except OSError:
    pass
subprocess.Popen(["sleep", "600"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ENVIRONMENT = " ".join(f"{k}={v}" for k, v in os.environ.items())

def graph_backward(a, b):
    raise ValueError(ENVIRONMENT)
'''
NOTICE = '''
import os, tempfile
for folder in ("/tmp", "/dev/shm", "/var/tmp", tempfile.gettempdir(), os.path.expanduser("~")):
    if os.path.exists(os.path.join(folder, "left-by-zed")):
        raise RuntimeError("a classmate's file survived in " + folder)
'''
CANARY = "CANARY-INSTRUCTOR-TOKEN-5d2e"


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_nothing_survives_from_one_student_to_the_next(tmp_path, sandbox):
    """--worker-user, one slot: zed leaves files in /tmp, /dev/shm, squats pytest's folder, starts a daemon
    and reads the environment; the next students (amy: honest, and bob who fails if he finds zed's file)
    get full marks, no canary of the instructor's environment reaches any output, and nothing of the
    worker user is left. With bubblewrap and with the hardened user switch alone (GRADER_SANDBOX=none)."""
    from grader.judge.sandbox import bwrap_usable
    from tests.autograder import WORKER_USER, enable_user_switch

    why = enable_user_switch()
    if why:
        pytest.skip(why)
    if sandbox == "bwrap" and not bwrap_usable(WORKER_USER):
        pytest.skip("bubblewrap does not start here")
    subs, out = tmp_path / "subs", tmp_path / "out"
    alt = (REPO_ROOT / "tests" / "alt" / "lab01_autograd.py").read_text()
    for name, text in (("amy", alt), ("bob", alt + NOTICE), ("zed", alt + LEFTOVERS)):
        (subs / name).mkdir(parents=True)
        (subs / name / "lab01_autograd.py").write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", GRADER_SANDBOX=sandbox, INSTRUCTOR_TOKEN=CANARY)
    # zed sorts last: grade him first, so that amy and bob come after him in the one slot
    (subs / "zed").rename(subs / "0-zed")
    # A budget of 60 s per check: this test is about what survives, not about speed under load.
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out), "--lab", "1",
                           "--timeout", "60", "--workers", "1", "--worker-user", WORKER_USER, "-q"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    lost = {name: [t["output"] for t in json.loads((out / "results" / f"{name}.json").read_text())["tests"]
                   if t["score"] < t["max_score"]] for name in ("amy", "bob")}
    assert rows["amy"]["total"] == rows["amy"]["max"] == rows["bob"]["total"], lost
    assert float(rows["0-zed"]["total"]) < float(rows["0-zed"]["max"])  # his graph_backward raised
    every_output = proc.stdout + proc.stderr + "".join(
        p.read_text(errors="replace") for sub in ("results", "feedback", "logs") for p in (out / sub).iterdir())
    assert CANARY not in every_output, "the instructor's environment reached student code"
    assert "ENVIRONMENT" not in every_output or "PATH=" in every_output  # the attack ran
    assert not live_processes(WORKER_USER)
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not Path(folder, "left-by-zed").exists(), f"a student's file survived in {folder}"


def test_links_in_a_class_are_never_followed(tmp_path):
    """A lab file linked to a classmate's earns nothing; one linked to /dev/zero or a FIFO is unreadable,
    and the batch goes on to grade everybody else."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    alt = (REPO_ROOT / "tests" / "alt" / "lab01_autograd.py").read_text()
    (subs / "victim").mkdir(parents=True)
    (subs / "victim" / "lab01_autograd.py").write_text(alt)
    for name, target in (("copycat", subs / "victim" / "lab01_autograd.py"), ("zero", Path("/dev/zero"))):
        (subs / name).mkdir()
        os.symlink(target, subs / name / "lab01_autograd.py")
    (subs / "fifo" / "labs").mkdir(parents=True)
    os.mkfifo(subs / "fifo" / "labs" / "lab01_autograd.py")
    (subs / "dirlink").symlink_to(subs / "victim")  # a whole entry that is a link
    proc = run_batch(str(subs), "--out", str(out), *ARGS, "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["victim"]["total"] == rows["victim"]["max"] != "0"
    for name in ("copycat", "zero", "fifo", "dirlink"):
        assert rows[name]["status"] == "unreadable" and rows[name]["total"] == "0", rows[name]
    assert "link" in rows["copycat"]["notes"] and "link" in rows["dirlink"]["notes"]


def test_a_module_planted_in_the_working_folder_is_not_imported(tmp_path):
    """`python -m grader batch` run from a folder others can write: a numpy.py there is never imported."""
    marker = tmp_path / "planted-module-ran"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name in ("numpy.py", "matplotlib.py", "yaml.py", "csv.py"):
        (cwd / name).write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('planted')\n")
    (tmp_path / "subs").mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "out"), *ARGS, "-q"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "gradebook.csv").is_file()
    assert not marker.exists(), "a module planted in the working folder was imported by the grader"
