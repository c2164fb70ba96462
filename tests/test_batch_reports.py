"""What ``python -m grader batch`` reports, checked without grading: stray files are no students."""

from __future__ import annotations

from grader.course.batch import discover


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
