"""The Gradescope autograder zip, run locally against fake submission folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader.impl import REPO_ROOT
from tests.autograder import build_autograder, run_autograder


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    root, names = build_autograder(tmp_path_factory.mktemp("ag"))
    assert "setup.sh" in names and "run_autograder" in names
    assert not any(n.startswith("solutions/") for n in names)
    assert any(n.startswith("grader/hidden/test_lab") for n in names), "hidden tests belong in the autograder"
    return root, names


def _run(root, submission_files, extra_args="--lab 1 --lab 2"):
    return run_autograder(root, submission_files, extra_args)


@pytest.mark.timeout(300)
def test_run_autograder_grades_only_the_submitted_lab_files(autograder):
    root, _ = autograder
    sol1 = (REPO_ROOT / "solutions" / "lab01_autograd.py").read_text()
    # The submission also carries a "modified grader test" that must be ignored.
    proc, results = _run(root, {"labs/lab01_autograd.py": sol1, "grader_test_hack.py": "assert False"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lab1 = [t for t in results["tests"] if t["name"].startswith("lab01")]
    lab2 = [t for t in results["tests"] if t["name"].startswith("lab02")]
    assert sum(t["score"] for t in lab1) == sum(t["max_score"] for t in lab1) > 0
    assert sum(t["score"] for t in lab2) == 0 and all("not implemented" in t["output"] for t in lab2 if t["max_score"])
    assert results["extra_data"]["integrity"] == {"checked": True, "problems": []}
    hidden = [t for t in lab1 if "hidden" in t["extra_data"]["nodeid"]]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)


@pytest.mark.timeout(300)
def test_run_autograder_accepts_top_level_files(autograder):
    root, _ = autograder
    sol2 = (REPO_ROOT / "solutions" / "lab02_backprop.py").read_text()
    proc, results = _run(root, {"lab02_backprop.py": sol2}, extra_args="--lab 2")
    assert results["score"] == results["max_score"] > 0


def test_classroom_summary(tmp_path):
    results = {
        "score": 3.0, "max_score": 5.0,
        "tests": [
            {"name": "lab01: test_a", "score": 3.0, "max_score": 3.0, "output": "", "visibility": "visible"},
            {"name": "lab01: test_b", "score": 0.0, "max_score": 2.0, "output": "de/db is off", "visibility": "visible"},
        ],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", str(path)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "| lab01 | 3 | 5 |" in proc.stdout and "de/db is off" in proc.stdout
    assert proc.stdout.strip().endswith("Points 3/5")
