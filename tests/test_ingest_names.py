"""Lab files under another name (issue 21): a second download ``lab04_dti (1).py``, a copy, another case.

The trusted ingest (:mod:`grader.judge.ingest`) takes a renamed file when it is the only candidate of
its lab and no file has the exact name, says what it took, refuses to guess between two, and
keeps every bytes-not-paths rule for renamed names (no link followed, regular files only). A lab
with no file is named at the top of the results with the submission's files, and its checks say
"file missing" instead of grading the release's stub. Units only: the end-to-end runs are in
``tests/test_gradescope.py`` and ``tests/test_plugin.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.judge import ingest
from grader.registry import LABS

RENAMES = [
    "lab04_dti (1).py", "lab04_dti(2).py", "lab04_dti (1) (1).py",  # browsers: a second download
    "lab04_dti - Copy.py", "lab04_dti - Copy (2).py",  # Windows
    "lab04_dti copy.py", "lab04_dti copy 2.py",  # macOS
    "lab04_dti (copy).py",  # GNOME
    "lab04_dti-copy.py", "lab04_dti_copy.py", "lab04_dti-1.py",  # by hand; Canvas's resubmission
    "Lab04_DTI.py", "LAB04_DTI.PY", "lab04-dti.py",  # case, - for _
    "labs_lab04_dti.py", "doe_123_456_lab04_dti.py", "Copy of lab04_dti.py",  # a flattened folder, an LMS prefix
]
NOT_LAB_FILES = ["lab04_dti_old.py", "xlab04_dti.py", "lab04_dti.py.txt", "lab04_dti.ipynb",
                 "._lab04_dti.py", "test_lab04_dti.py", "lab04.py", "dti.py"]


@pytest.mark.parametrize("name", RENAMES)
def test_each_usual_rename_is_recognised(name):
    assert ingest.exact_lab_of(name) is None
    assert ingest.renamed_lab_of(name) == ingest.lab_of(name) == "lab04"


@pytest.mark.parametrize("name", NOT_LAB_FILES)
def test_other_names_are_not_lab_files(name):
    assert ingest.lab_of(name) is None


def test_the_exact_name_is_not_a_rename():
    for lab_id, module in LABS.items():
        assert ingest.exact_lab_of(f"{module}.py") == ingest.lab_of(f"{module}.py") == lab_id
        assert ingest.renamed_lab_of(f"{module}.py") is None


def _submission(tmp_path: Path, files: dict[str, str], name: str = "sub") -> Path:
    sub = tmp_path / name
    for name, text in files.items():
        (sub / name).parent.mkdir(parents=True, exist_ok=True)
        (sub / name).write_text(text)
    sub.mkdir(exist_ok=True)
    return sub


def test_a_renamed_file_is_taken_and_said(tmp_path):
    sub = _submission(tmp_path, {"lab04_dti (1).py": "mine = 1\n", "notes.txt": "hi"})
    got = ingest.ingest_submission(sub, ["lab04"])
    assert got.files == {"lab04": ("lab04_dti (1).py", b"mine = 1\n")}
    assert got.notes == ["took `lab04_dti (1).py` as labs/lab04_dti.py"] and not got.missing and not got.refused
    assert got.lines["lab04"] == got.notes


def test_the_exact_name_wins_and_the_renamed_one_is_named(tmp_path):
    sub = _submission(tmp_path, {"lab04_dti (1).py": "newer\n", "labs/lab04_dti - Copy.py": "copy\n",
                                 "lab04_dti.py": "exact\n"})
    got = ingest.ingest_submission(sub, ["lab04"])
    assert got.files["lab04"] == ("lab04_dti.py", b"exact\n")
    assert got.notes == ["lab04: graded lab04_dti.py; not graded (not named lab04_dti.py): "
                         "`labs/lab04_dti - Copy.py`, `lab04_dti (1).py`"]


def test_two_renamed_files_and_no_exact_one_are_ambiguous(tmp_path):
    sub = _submission(tmp_path, {"lab04_dti (1).py": "a\n", "lab04_dti (2).py": "b\n"})
    got = ingest.ingest_submission(sub, ["lab04"])
    assert got.files == {} and got.notes == []
    assert got.missing["lab04"] == ("lab04_dti.py not found; 2 files could be it: `lab04_dti (1).py`, "
                                    "`lab04_dti (2).py`: none was graded (name the one to grade lab04_dti.py)")
    assert ingest.choose("lab04", ["lab04_dti (1).py", "lab04_dti (2).py"])[0] == ""


def test_renamed_links_and_non_regular_files_are_refused(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("the hidden tests\n")
    sub = _submission(tmp_path, {"notes.txt": "hi"})
    os.symlink(secret, sub / "lab04_dti (1).py")  # a link under a renamed name: never followed
    os.mkfifo(sub / "Lab01_Autograd.py")  # a FIFO: not a regular file, never opened
    got = ingest.ingest_submission(sub, ["lab01", "lab04"])
    assert got.files == {}
    assert got.refused == ["lab04: lab04_dti (1).py is a symbolic link: submit the file itself, links are not followed"]
    assert "lab04" not in got.missing  # refused, and said so, not "not found"
    assert got.missing["lab01"].startswith("lab01_autograd.py not found; your submission has: Lab01_Autograd.py, ")
    with pytest.raises(ingest.IngestError, match="symbolic link"):
        ingest.read_beneath(sub, "lab04_dti (1).py")  # O_NOFOLLOW, whatever the name


def test_the_missing_line_lists_the_submission_bounded_and_escaped(tmp_path):
    files = {f"file{k:02d}.txt": "" for k in range(30)}
    files["evil\x1b[2J\nname.txt"] = ""
    sub = _submission(tmp_path, files)
    line = ingest.ingest_submission(sub, ["lab02"]).missing["lab02"]
    assert line.startswith("lab02_backprop.py not found; your submission has: evil name.txt, file00.txt, ")
    assert line.endswith(", ... (31 files in all)") and line.count(",") == ingest.MAX_SHOWN
    assert "\x1b" not in line and "\n" not in line
    (tmp_path / "empty").mkdir()
    assert ingest.ingest_submission(tmp_path / "empty", ["lab02"]).missing["lab02"].endswith("has: no files")


def test_main_removes_the_stub_of_a_missing_lab_and_tells_the_judge(tmp_path, capsys):
    sub = _submission(tmp_path, {"lab01_autograd (1).py": "a = 1\n", "notes.txt": "hi"})
    labs = tmp_path / "labs"
    labs.mkdir()
    for module in LABS.values():
        (labs / f"{module}.py").write_text("raise NotImplementedError  # the release's stub\n")
    assert ingest.main([str(sub), str(labs), "lab01_autograd", "lab02_backprop"]) == 0
    out = capsys.readouterr().out
    assert "note: took `lab01_autograd (1).py` as labs/lab01_autograd.py" in out
    assert "missing: lab02_backprop.py not found; your submission has: lab01_autograd (1).py, notes.txt" in out
    assert (labs / "lab01_autograd.py").read_text() == "a = 1\n"
    assert not (labs / "lab02_backprop.py").exists(), "the stub is not graded as the student's work"
    assert (labs / "lab04_dti.py").exists(), "labs this assignment does not grade are left alone"
    lines, missing = ingest.graded_folder_notes(labs, ["lab01", "lab02"], "labs")
    assert lines == ["took `lab01_autograd (1).py` as labs/lab01_autograd.py",
                     "lab02_backprop.py not found; your submission has: lab01_autograd (1).py, notes.txt"]
    assert missing == {"lab02": "file missing: lab02_backprop.py was not found in your submission"}
    assert ingest.graded_folder_notes(labs, ["lab01"], "labs") == (lines[:1], {})


def test_a_student_file_named_like_the_marker_never_reaches_the_judge(tmp_path):
    sub = _submission(tmp_path, {ingest.MARKER: '{"labs": {"lab01": {"lines": ["full marks"]}}}',
                                 "lab01_autograd.py": "a = 1\n"})
    labs = tmp_path / "labs"
    labs.mkdir()
    ingest.main([str(sub), str(labs), "lab01_autograd"])
    assert ingest.graded_folder_notes(labs, ["lab01"], "labs") == ([], {})


def test_a_local_folder_names_a_renamed_file(tmp_path):
    labs = tmp_path / "labs"
    labs.mkdir()
    (labs / "lab01_autograd (1).py").write_text("")
    (labs / "lab02_backprop.py").write_text("")
    (labs / "lab02_backprop copy.py").write_text("")
    lines, missing = ingest.graded_folder_notes(labs, ["lab01", "lab02", "lab03"], "labs")
    assert lines == [
        "lab01_autograd.py not found in labs/; it has: lab01_autograd (1).py, lab02_backprop copy.py, lab02_backprop.py",
        "labs/ also has `lab02_backprop copy.py`: only lab02_backprop.py is graded",
        "lab03_mnist.py not found in labs/; it has: lab01_autograd (1).py, lab02_backprop copy.py, lab02_backprop.py",
    ]
    assert missing == {
        "lab01": "file missing: lab01_autograd.py was not found in labs/ "
                 "(labs/ has `lab01_autograd (1).py`: rename it to lab01_autograd.py)",
        "lab03": "file missing: lab03_mnist.py was not found in labs/ "
                 "(restore it from the release; the file name must stay lab03_mnist.py)",
    }


def test_batch_inherits_the_matching(tmp_path):
    from grader.course.batch.discover import discover

    subs = tmp_path / "subs"
    for student, files in {"ann": {"lab01_autograd (1).py": "a\n"},
                           "bob": {"lab01_autograd (1).py": "a\n", "lab01_autograd (2).py": "b\n",
                                   "lab02_backprop.py": "c\n"}}.items():
        _submission(subs, files, student)
    ann, bob = discover(subs)
    assert ann.files == {"lab01": "lab01_autograd (1).py"} and ann.notes == [
        "took `lab01_autograd (1).py` as labs/lab01_autograd.py"]
    assert bob.files == {"lab02": "lab02_backprop.py"} and "none was graded" in bob.notes[0]
