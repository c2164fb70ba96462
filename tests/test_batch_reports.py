"""What ``python -m grader batch`` reports, checked on synthetic results (no grading here).

Feedback, gradebook, summary, ``checks.csv`` and similarity from hand-made ``results.json``
dicts: a lab file that does not import is one line per lab with the path inside the submission,
import errors are counted apart from check failures, an unreadable row carries the class's
maximum, notes are cut between words, stray files are no students, and similarity comes in
groups with names. The batch run of ``tests/test_batch.py`` checks the same on a graded class.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from grader.course.batch import discover, items, lab_failures, reports, similarity
from grader.judge.session import REPO_ROOT

OUT = Path("/grading/out")  # where the grader's copies lie: only a string in these results
ADVICE = "Fix the file so that `python -c 'import ...'` works; the other labs are graded normally."


def check(name: str, score: float, max_score: float, output: str = "", reason: str = "", visible: bool = True) -> dict:
    return {"name": name, "score": score, "max_score": max_score, "output": output,
            "visibility": "visible" if visible else "after_published",
            "extra_data": {"reason": reason} if reason else {}}


def results(student: str, tests: list[dict], status: str = "ok", notes=(), files=None, impl=None) -> dict:
    impl = str(OUT / "work" / student / "labs") if impl is None else impl
    files = {"lab01": "repo/labs/lab01_autograd.py", "lab02": "repo/labs/lab02_backprop.py"} if files is None else files
    return {"score": sum(t["score"] for t in tests), "max_score": sum(t["max_score"] for t in tests), "tests": tests,
            "output": "",
            "extra_data": {"grader_seed": 20181, "graded_implementation": impl, "batch": {
                "student": student, "email": "", "entry": student, "status": status, "notes": list(notes),
                "grader_version": "abc", "seconds": 1.0, "files": files}}}


def import_error(student: str, impl: str | None = None) -> str:
    shown = f"{impl or OUT / 'work' / student / 'labs'}/lab01_autograd.py"
    return f"could not import {shown}: SyntaxError at {shown}, line 64: expected ':'. {ADVICE}"


LAB02 = [check("lab02: test_a", 2, 2), check("lab02: test_b", 0, 3, "wrong: de/db is 3.5, expected 4.5", "wrong")]


def grace() -> dict:
    """lab 1 does not import (19 identical messages in the old feedback); lab 2 graded."""
    lab01 = [check(f"lab01: test_{k}", 0, 1 + k % 2, import_error("grace"), "import error", visible=k < 8)
             for k in range(10)]
    return results("grace", lab01 + LAB02, "crashed",
                   notes=[f"lab01: import error in 10 check(s): {import_error('grace')[:200]}"])


def ivan() -> dict:
    lab01 = [check(f"lab01: test_{k}", 1 + k % 2, 1 + k % 2) for k in range(10)]
    return results("ivan", lab01 + [check("lab02: test_a", 2, 2), check("lab02: test_b", 3, 3)])


def oscar() -> dict:
    """No lab 1 file in the submission."""
    missing = f"{OUT}/work/oscar/labs/lab01_autograd.py is missing: restore it from the release"
    lab01 = [check(f"lab01: test_{k}", 0, 1 + k % 2, missing, "import error") for k in range(10)]
    return results("oscar", lab01 + LAB02, notes=["lab01: no file submitted"], files={"lab02": "lab02_backprop.py"})


def heidi() -> dict:
    r = results("heidi", [], "unreadable", notes=["heidi.zip is not a readable zip file"], files={}, impl="")
    r["output"] = "heidi.zip is not a readable zip file"
    return r


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize("width", [8, 12, 20, 33, 60])
def test_clip_cuts_between_words(width):
    text = "lab01: crashed in 3 check(s): your code called os._exit(3) while being graded: return a value instead"
    clipped = lab_failures.clip(text, width)
    assert len(clipped) <= width and clipped.endswith("…")
    kept = clipped[:-1]
    assert text.startswith(kept) and (text[len(kept)] in " ,:" or not kept[-1].isalnum()), clipped
    assert lab_failures.clip("short note", 20) == "short note"
    assert lab_failures.clip("test_backward_wide_net_large_batch", 20) == "test_backward_wide_…"


def test_paths_are_given_as_in_the_submission():
    r = grace()
    text = r["tests"][0]["output"]
    assert lab_failures.submission_paths(text, r).startswith(
        "could not import repo/labs/lab01_autograd.py: SyntaxError at repo/labs/lab01_autograd.py, line 64")
    assert "lab01_autograd.py: SyntaxError at lab01_autograd.py" in lab_failures.submission_paths(text, r, bare=True)
    # an OUTDIR inside the repository is written relative to it by the grader
    inside = str(REPO_ROOT / "out" / "work" / "grace" / "labs")
    r = results("grace", [], impl=inside)
    assert lab_failures.submission_paths(import_error("grace", "out/work/grace/labs"), r).startswith(
        "could not import repo/labs/lab01_autograd.py: SyntaxError at repo/labs/lab01_autograd.py")


def test_a_lab_that_does_not_run_is_one_failure():
    failures = lab_failures.lab_failures(grace())
    assert list(failures) == ["lab01"]
    f = failures["lab01"]
    assert (f.kind, f.checks, f.hidden, f.points) == ("import error", 10, 2, 15)
    assert f.error == "SyntaxError at repo/labs/lab01_autograd.py, line 64: expected ':'"
    assert lab_failures.lab_failures(oscar())["lab01"].kind == "missing"
    assert lab_failures.lab_failures(ivan()) == {}


def test_feedback_gives_an_import_error_once_with_the_submission_path():
    text = reports.feedback_markdown("grace", grace())
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(bullets) == 2, text  # lab 1 once, lab 2's one failed check
    assert bullets[0].startswith("- lab01 (0/15, all 10 checks, 2 of them hidden): could not import "
                                 "repo/labs/lab01_autograd.py: SyntaxError at repo/labs/lab01_autograd.py, line 64")
    assert str(OUT) not in text and "lab02: test_b" in bullets[1]
    oscar_text = reports.feedback_markdown("oscar", oscar())
    assert "- lab01 (0/15, all 10 checks): no lab01_autograd.py in the submission" in oscar_text
    assert "restore it from the release" not in oscar_text


def test_feedback_says_which_file_was_graded_when_it_was_renamed():
    """What discovery noted about the student's files (a renamed file taken, two candidates, a link),
    escaped; nothing when there was no choice."""
    r = oscar()
    r["extra_data"]["batch"]["file_notes"] = [
        "lab01_autograd.py not found; 2 files could be it: `lab01_autograd (1).py`, `<img src=x>.py`: none was graded"]
    text = reports.feedback_markdown("oscar", r)
    assert "## Your files\n\n- lab01_autograd.py not found; 2 files could be it: `lab01_autograd (1).py`" in text
    assert "<img" not in text and "&lt;img src=x>.py" in text
    assert "## Your files" not in reports.feedback_markdown("ivan", ivan())


def test_gradebook_notes_maxima_and_statuses(tmp_path):
    long_exit = "your code called os._exit(3) while being graded: return a value instead " * 5
    crashed = results("frank", [check("lab01: test_a", 0, 15, long_exit, "exit"), *LAB02], "crashed",
                      notes=[f"lab01: exit in 1 check(s): {long_exit[:200]}"])
    everyone = [grace(), heidi(), ivan(), oscar(), crashed]
    reports.write_gradebook(tmp_path, everyone, ["lab01", "lab02"])
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "gradebook.csv").open())}
    assert rows["grace"]["notes"] == "lab01: does not import: SyntaxError at repo/labs/lab01_autograd.py, line 64: expected ':'"
    assert (rows["heidi"]["total"], rows["heidi"]["max"], rows["heidi"]["lab01"]) == ("0", "20", "0")
    assert rows["heidi"]["max"] == rows["ivan"]["max"]
    note = rows["frank"]["notes"]
    assert len(note) <= 200 and note.endswith("…") and note[:-1] == note[:-1].rstrip() and " ".join(note.split()) == note
    assert long_exit.startswith(note.split(": ", 2)[2][:-1])  # cut where a word ends
    assert rows["oscar"]["notes"] == "lab01: no file submitted"


def test_check_stats_count_import_errors_apart():
    stats = {s["name"]: s for s in reports.check_stats([grace(), ivan(), oscar(), heidi()])}
    # lab 1 ran only for ivan: grace's import error and oscar's missing file are no check failures
    assert (stats["lab01: test_0"]["graded"], stats["lab01: test_0"]["failed"]) == (1, 0)
    assert (stats["lab02: test_b"]["graded"], stats["lab02: test_b"]["failed"]) == (3, 2)


def test_summary_counts_labs_that_did_not_run_and_lists_stray_files(tmp_path):
    (tmp_path / reports.STRAY_FILE).write_text(json.dumps(["notes.txt", "<b>grades</b>.csv"]))
    reports.write_summary(tmp_path, [grace(), heidi(), ivan(), oscar()], ["lab01", "lab02"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| lab01 | 1 | 1 | SyntaxError at lab01_autograd.py, line 64: expected ':' (1) |" in summary
    assert "- lab01, grace: SyntaxError at repo/labs/lab01_autograd.py, line 64: expected ':'" in summary
    failed_most = summary.split("## Checks the class failed most")[1]
    assert "`lab01: test_" not in failed_most.split("## Not graded")[0], "an import error counted as check failures"
    assert "| `lab02: test_b` | 67 % (2/3) |" in failed_most
    stray = summary.split("## Not a submission")[1]
    assert "- `notes.txt`" in stray and "- `<b>grades</b>.csv`" in stray  # a code span shows HTML as text
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_checks_csv_is_a_student_by_check_table():
    rows = list(csv.reader(io.StringIO(items.checks_csv([grace(), heidi(), ivan(), oscar()]))))
    header, possible, table = rows[0], rows[1], {row[0]: row for row in rows[2:]}
    assert header[:3] == ["student", "status", "lab01: test_0"] and len(header) == 2 + 12
    assert possible[0] == items.POSSIBLE_ROW and possible[2:4] == ["1", "2"]
    assert table["ivan"][2:] == possible[2:]
    assert table["grace"][2:12] == [""] * 10 and table["grace"][12:] == ["2", "0"]  # lab 1 did not run
    assert table["heidi"][1:] == ["unreadable"] + [""] * 12


def test_a_stray_file_is_no_student(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "lab01_autograd.py").write_text("x = 1\n")
    (subs / "notes.txt").write_text("grading notes\n")
    (subs / "bob.tar.gz").write_bytes(b"not read")  # an archive: a student's entry, unreadable
    (subs / "carol_lab01_autograd.py").write_text("x = 1\n")  # code an LMS left without a folder
    assert discover.stray_files(subs) == ["notes.txt"]
    entries = {e.source.name: e for e in discover.discover(subs)}
    assert set(entries) == {"alice", "bob.tar.gz", "carol_lab01_autograd.py"}
    assert entries["bob.tar.gz"].problem and entries["carol_lab01_autograd.py"].problem


# --------------------------------------------------------------------------- similarity

BASE = '''
def graph_forward(a, b):
    total = 0.0
    for k in range(10):
        total = total + a * k - b / (k + 1)
    values = [total * j for j in range(5)]
    return sum(values), max(values), min(values)


def squared_error(y_pred, y):
    diff = [(p - t) ** 2 for p, t in zip(y_pred, y)]
    return sum(diff) / len(diff)
'''
OTHER = '''
def graph_forward(a, b):
    c = a + b
    d = b + 1
    e = c * d
    return c, d, e


def squared_error(prediction, target):
    import numpy as np

    return float(np.mean((np.asarray(prediction) - np.asarray(target)) ** 2))
'''


def test_five_copies_are_one_group_of_five():
    students = ["a1", "a2", "a3", "a4", "a5", "b", "c"]
    code = [f"# copy {k}\n" + BASE for k in range(5)] + [OTHER, "x = 1\n"]
    sim = similarity.compare_lab("lab01", students, code, 0.6)
    assert [[students[i] for i in g] for g in sim.groups] == [["a1", "a2", "a3", "a4", "a5"]]
    high, low = sim.group_range(sim.groups[0])
    assert high == low == pytest.approx(1.0)
    assert len(sim.closest_pairs(sim.groups[0])) == 4  # shown as four pairs, not ten
    assert sim.pair_similarity(0, 5) < 0.6


def write_work(out: Path, files: dict[str, dict[str, str]]) -> list[dict]:
    everyone = []
    for student, labs in files.items():
        folder = out / "work" / student / "labs"
        folder.mkdir(parents=True)
        for module, text in labs.items():
            (folder / f"{module}.py").write_text(text)
        everyone.append(results(student, []))
    return everyone


def test_similarity_compares_only_graded_labs_offline_with_names(tmp_path):
    stub2 = (REPO_ROOT / "labs" / "lab02_backprop.py").read_text()
    name = "x<script>y"
    everyone = write_work(tmp_path, {
        "ann": {"lab01_autograd": BASE, "lab02_backprop": stub2},
        "ben": {"lab01_autograd": "# mine\n" + BASE, "lab02_backprop": stub2},
        name: {"lab01_autograd": "# again\n" + BASE, "lab02_backprop": stub2 + "\n# done\n"},
        "dan": {"lab01_autograd": OTHER, "lab02_backprop": stub2},
    })
    groups = similarity.write_similarity(tmp_path, 0.6, ["lab01"], everyone)
    assert [(g.lab, sorted(g.students)) for g in groups] == [("lab01", ["ann", "ben", name])]
    md = (tmp_path / "similarity.md").read_text()
    assert "## lab01" in md and "lab02" not in md, "a lab not graded in this batch was compared"
    assert "[ann](work/ann/labs/lab01_autograd.py), [ben](work/ben/labs/lab01_autograd.py)" in md
    assert "<script>" not in md
    page = (tmp_path / "similarity.html").read_text()
    assert not re.search(r"<link|<script|https?://|//cdn", page), "the report must work offline"
    assert "x&lt;script&gt;y" in page and "data:image/png;base64," in page and "<mark>" in page
    assert (tmp_path / "similarity.png").read_bytes()[:4] == b"\x89PNG"
    # stubs of other labs never show up, even as the only files of a lab
    assert similarity.write_similarity(tmp_path, 0.6, ["lab02"], everyone) == []


def test_heat_map_has_the_students_names_on_its_axes():
    import matplotlib.pyplot as plt

    students = ["ann", "ben", "$x$"]
    sim = similarity.compare_lab("lab01", students, [BASE, "# b\n" + BASE, OTHER], 0.6)
    fig = similarity.heat_map_figure([sim], 0.6)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ann", "ben", "x"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ann", "ben", "x"]
    plt.close(fig)
