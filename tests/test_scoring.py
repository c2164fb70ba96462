"""grader.scoring: the results records and the rules that turn a check's run into points."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grader import scoring

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_check_names_parse_and_print():
    name = scoring.CheckName.parse("lab01: test_fit_recovers_line[cpu]")
    assert (name.lab, name.test, name.base) == ("lab01", "test_fit_recovers_line[cpu]", "test_fit_recovers_line")
    assert str(name) == "lab01: test_fit_recovers_line[cpu]" and name.plain() == "lab01 test_fit_recovers_line[cpu]"
    for bad in ("test_x", "lab1: test_x", "lab01:test_x", ""):
        with pytest.raises(ValueError, match="labNN: test_name"):
            scoring.CheckName.parse(bad)
    assert scoring.lab_of_test_file("grader/hidden/test_lab03_hidden.py") == "lab03"
    assert scoring.lab_of_test_file(Path("grader/test_lab05_cnn.py")) == "lab05"
    assert scoring.lab_of_test_file("grader/plugin.py") is None
    assert scoring.lab_number("lab04") == 4
    with pytest.raises(ValueError):
        scoring.lab_number("4")


def _test(name, score, max_score, state="passed", graded=True, reason=""):
    return {"name": name, "score": score, "max_score": max_score, "status": "passed", "output": "",
            "extra_data": {"state": state, "graded": graded, "reason": reason}}


def test_a_crashed_check_scores_nothing_and_an_information_check_stays_passed():
    t = _test("lab02: test_x", 0.0, 2.0, state="running")
    out = scoring.crashed(t, -9)
    assert out["score"] == 0 and out["status"] == "failed" and out["extra_data"]["reason"] == "crashed"
    assert "killed by signal 9" in out["output"] and t["extra_data"]["state"] == "running"  # a copy
    info = scoring.crashed(_test("lab02: test_gpu", 0.0, 0.0, state="running", graded=False), 3)
    assert info["status"] == "passed" and info["extra_data"]["state"] == "failed" and "exit code 3" in info["output"]
    assert scoring.gradescope_status("not run", True) == "failed"
    assert scoring.gradescope_status("failed", False) == "passed"


def test_lab_totals_and_the_status_of_a_submission():
    results = {"tests": [_test("lab01: a", 1.0, 1.0), _test("lab01: b", 0.0, 2.0, "failed", reason="timeout"),
                         _test("lab02: c", 0.0, 3.0, "failed", reason="import error"),
                         _test("lab03: d", 0.0, 1.0, "failed", reason="crashed"),
                         _test("lab01: gpu", 0.0, 0.0, "failed", graded=False, reason="crashed")]}
    assert scoring.lab_totals(results) == {"lab01": (1.0, 3.0), "lab02": (0.0, 3.0), "lab03": (0.0, 1.0)}
    status, notes = scoring.submission_status(results, {"lab01", "lab02"})
    assert status == "timed out"
    assert notes[0] == "lab01: 1 check(s) over their time budget" and notes[-1] == "lab03: no file submitted"
    assert any(n.startswith("lab02: import error in 1 check(s)") for n in notes)


def test_results_files_are_written_whole(tmp_path, monkeypatch):
    path = scoring.dump_results(tmp_path / "r" / "results.json", {"score": 1})
    assert scoring.load_results(path) == {"score": 1}

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError):
        scoring.dump_results(path, {"score": 2})
    assert json.loads(path.read_text()) == {"score": 1} and [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_no_module_but_scoring_slices_check_or_test_file_names():
    """The results schema is read in one place: no `name.split(":")`, `name[:5]` or `f.name[5:10]`."""
    pattern = re.compile(r"""\["name"\]\.split\(|\["name"\]\[:5\]|name\[5:10\]|name\[:5\]|lab_id\[3:\]|lab\[3:\]""")
    offenders = []
    for path in sorted((REPO_ROOT / "grader").rglob("*.py")):
        if path.name in ("scoring.py", "registry.py"):
            continue
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{k}: {line.strip()}")
    assert not offenders, "use grader.scoring (CheckName, lab_of, lab_of_test_file, lab_number):\n" + "\n".join(offenders)
