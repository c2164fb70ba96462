"""The student release: what it holds, and the release check (stubs 0, solutions full, no leaks)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader.impl import REPO_ROOT
from grader.release import leaks, write_release


def test_release_holds_student_files_only(tmp_path):
    dest = write_release(tmp_path / "rel")
    for name in ("labs", "grader", "data", "conftest.py", "pytest.ini", "README.md", "requirements.txt", "Makefile"):
        assert (dest / name).exists(), name
    for name in ("solutions", "tests", "bench", ".ci", "grader/hidden", "grader/release.py", "data/cache"):
        assert not (dest / name).exists(), name
    assert json.loads((dest / "grader" / "MANIFEST.json").read_text())["files"]
    assert leaks(dest) == []


def test_leak_check_finds_solution_code(tmp_path):
    dest = write_release(tmp_path / "rel")
    sol = (REPO_ROOT / "solutions" / "lab02_backprop.py").read_text()
    (dest / "labs" / "lab02_backprop.py").write_text(sol)
    found = leaks(dest)
    assert any("lab02_backprop.py" in p and "backward" in p for p in found), found


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
