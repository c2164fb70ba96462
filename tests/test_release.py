"""The student release: what it holds, and the release check (stubs 0, solutions full, no leaks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from grader.judge.session import LABS, REPO_ROOT
from data import secret
from grader.course.release import GITIGNORE_LINES, _ignore, layout_problems, leaks, write_release


def test_release_holds_student_files_only(tmp_path):
    dest = write_release(tmp_path / "rel")
    for name in ("labs", "grader", "data", "conftest.py", "pytest.ini", "README.md", "requirements.txt", "Makefile",
                 ".gitignore", "labs/QUESTIONS.md", "grader/classroom.py"):
        assert (dest / name).exists(), name
    for name in ("solutions", "tests", "bench", ".ci", "docs", "student", "grader/hidden", "grader/course/release.py",
                 "grader/course/gradescope.py", "grader/course/stubs.py", "data/cache"):
        assert not (dest / name).exists(), name
    assert json.loads((dest / "grader" / "MANIFEST.json").read_text())["files"]
    assert leaks(dest) == []
    assert layout_problems(dest) == []


def test_release_has_the_student_readme_makefile_and_gitignore(tmp_path):
    dest = write_release(tmp_path / "rel")
    readme = (dest / "README.md").read_text()
    assert readme == (REPO_ROOT / "student" / "README.md").read_text() != (REPO_ROOT / "README.md").read_text()
    for word in ("planted", "solutions/", "make test", "Trust boundary"):
        assert word not in readme, word
    for needed in ("labs/QUESTIONS.md", "make lab", "make grade", "make data", *(f"labs/{m}.py" for m in LABS.values())):
        assert needed in readme, needed
    gitignore = (dest / ".gitignore").read_text().split()
    assert all(line in gitignore for line in GITIGNORE_LINES) and ".venv/" in gitignore
    makefile = (dest / "Makefile").read_text()
    assert "solutions" not in makefile and "stubs" not in makefile and "pytest --solutions" not in makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_student_makefile_runs_lab_n(tmp_path):
    dest = write_release(tmp_path / "rel")
    for lab_id, module in LABS.items():
        for goal in (["lab", str(int(lab_id[3:]))], ["lab", f"N={int(lab_id[3:])}"]):
            proc = subprocess.run(["make", "-n", *goal], cwd=dest, capture_output=True, text=True)
            assert f"-m labs.{module}" in proc.stdout, (goal, proc.stdout, proc.stderr)
    proc = subprocess.run(["make", "lab", "9"], cwd=dest, capture_output=True, text=True)
    assert proc.returncode != 0 and "make lab 9: no such lab; the labs are lab01_autograd.py" in proc.stdout
    assert not (dest / ".venv").exists(), "a wrong lab number is refused before .venv is created"
    for target in ("solutions", "stubs", "test"):
        proc = subprocess.run(["make", "-n", target], cwd=dest, capture_output=True, text=True)
        assert proc.returncode != 0 and "No rule to make target" in proc.stderr, target


def test_layout_check_finds_instructor_material(tmp_path):
    dest = write_release(tmp_path / "rel")
    shutil.copy2(REPO_ROOT / "README.md", dest / "README.md")
    (dest / "docs").mkdir()
    shutil.copy2(REPO_ROOT / "docs" / "writing-a-lab.md", dest / "docs" / "writing-a-lab.md")
    (dest / ".gitignore").write_text((dest / ".gitignore").read_text().replace(".venv/\n", ""))
    (dest / "Makefile").write_text((dest / "Makefile").read_text() + "\nsolutions:\n\tpython -m grader --solutions\n")
    (dest / "labs" / "QUESTIONS.md").unlink()
    found = "\n".join(layout_problems(dest))
    for expected in ("docs is in the release", "README.md is not student/README.md", "instructor material: 'planted'",
                     ".gitignore does not ignore .venv/", "Makefile has the instructor target 'solutions'",
                     "labs/QUESTIONS.md is missing", "Makefile is not student/Makefile"):
        assert expected in found, (expected, found)


def test_layout_check_finds_readme_naming_missing_files(tmp_path):
    dest = write_release(tmp_path / "rel")
    readme = dest / "README.md"
    readme.write_text(readme.read_text().replace("labs/lab04_dti.py", "labs/lab04_tissue.py"))
    found = layout_problems(dest)
    assert "README.md names labs/lab04_tissue.py, which is not in the release" in found
    assert "README.md does not mention labs/lab04_dti.py" in found


def test_leak_check_finds_solution_code(tmp_path):
    dest = write_release(tmp_path / "rel")
    sol = (REPO_ROOT / "solutions" / "lab02_backprop.py").read_text()
    (dest / "labs" / "lab02_backprop.py").write_text(sol)
    found = leaks(dest)
    assert any("lab02_backprop.py" in p and "backward" in p for p in found), found


def test_release_never_holds_the_data_secret(tmp_path, monkeypatch):
    """The held-out data are drawn from the grader's data secret: it lives in autograders only."""
    monkeypatch.setenv(secret.ENV_SECRET, "a-secret-only-the-autograder-holds-0123456789")
    dest = write_release(tmp_path / "rel")
    assert not [p for p in dest.rglob("*") if p.name == secret.SECRET_FILE_NAME]
    assert leaks(dest) == []
    assert _ignore("data", [secret.SECRET_FILE_NAME, "mnist.py"]) == {secret.SECRET_FILE_NAME}, "never copied"
    (dest / "data" / secret.SECRET_FILE_NAME).write_text("some other secret\n")
    (dest / "labs" / "notes.txt").write_text("secret: a-secret-only-the-autograder-holds-0123456789\n")
    found = leaks(dest)
    assert "data/grader-secret is a grader data secret file (autograders only)" in found, found
    assert "labs/notes.txt holds the grader's data secret" in found, found


def test_modified_grader_file_is_reported(tmp_path):
    dest = write_release(tmp_path / "rel")
    test_file = dest / "grader" / "test_lab01_autograd.py"
    test_file.write_text(test_file.read_text().replace("@pytest.mark.points(2)", "@pytest.mark.points(20)", 1))
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--lab", "1", "--json", str(tmp_path / "r.json")],
        cwd=dest, capture_output=True, text=True, timeout=200,
    )
    assert "grader/test_lab01_autograd.py differs from the released grader" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["extra_data"]["integrity"]["problems"]


@pytest.mark.timeout(900)
def test_release_check_passes(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "release", str(tmp_path / "rel")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=880,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "release check passed" in proc.stdout
    # The check grades copies: the release is left as written (no .mplconfig font cache, no bytecode).
    rel = tmp_path / "rel"
    left = sorted(str(p.relative_to(rel)) for p in rel.rglob("*") if p.name in (".mplconfig", "__pycache__", ".pytest_cache"))
    assert not left, f"the release check left files in the release: {left}"


def test_every_labs_data_folders_stay_out_of_the_release():
    """A lab's data folders come from the registry (grader/registry.py), not a hand-kept list."""
    from grader import registry
    from grader.course import release

    folders = registry.data_folders()
    assert folders and set(folders) <= release._ignore("data", [*folders, "mnist.py", "cache"])
    assert "mnist.py" not in release._ignore("data", ["mnist.py"])
