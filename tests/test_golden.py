"""The solutions' golden results (the other scenarios are checked where the suite grades them:
stubs in test_stubs, tests/alt in test_style_independence, planted bugs in test_planted_bugs, the
cheating catalogue in test_cheating). See tests/golden.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import golden

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(400)
def test_solutions_give_their_golden_results(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("LABS_IMPL", None)
    proc = subprocess.run([sys.executable, "-m", "grader", "--solutions", "--json", str(out), "--device", "cpu"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=380)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["score"] == report["max_score"] > 0
    golden.check("solutions", report["tests"])


def test_golden_messages_compare_with_numbers_masked_unless_exact(monkeypatch, tmp_path):
    monkeypatch.setattr(golden, "GOLDEN_DIR", tmp_path)
    monkeypatch.delenv("GOLDEN_EXACT", raising=False)  # this test sets it itself
    t = {"name": "lab01: t", "score": 0.0, "max_score": 1.0, "status": "failed", "output": "got 0.873 at /tmp/x/y.py",
         "visibility": "visible", "extra_data": {"state": "failed", "graded": True, "reason": ""}}
    monkeypatch.setenv("GOLDEN_UPDATE", "1")
    golden.check("s", [t])
    monkeypatch.delenv("GOLDEN_UPDATE")
    assert json.loads((tmp_path / "s.json").read_text())["lab01: t"]["output"] == "got 0.873 at <tmp>"
    golden.check("s", [dict(t, output="got 0.874 at /tmp/z")])  # a last digit: not a changed message
    with pytest.raises(AssertionError, match="differ"):
        golden.check("s", [dict(t, output="got 0.874 but expected more")])
    with pytest.raises(AssertionError, match="differ"):
        golden.check("s", [dict(t, score=1.0)])
    monkeypatch.setenv("GOLDEN_EXACT", "1")
    with pytest.raises(AssertionError, match="differ"):
        golden.check("s", [dict(t, output="got 0.874 at /tmp/z")])
    with pytest.raises(AssertionError, match="GOLDEN_UPDATE=1"):
        golden.check("missing", [t])
