"""The student stubs: generated from the solutions, same API, and every graded check says
"not implemented" against them."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from tests import golden

from grader.judge.session import LABS, REPO_ROOT
from grader.course.stubs import expected_stubs, make_stub


def test_labs_are_up_to_date_with_solutions():
    stale = [str(p.relative_to(REPO_ROOT)) for p, text in expected_stubs().items() if not p.is_file() or p.read_text() != text]
    assert not stale, f"{stale} differ from what `python -m grader.course.stubs` generates from solutions/"


@pytest.mark.parametrize("module", [m for m in LABS.values() if (REPO_ROOT / "solutions" / f"{m}.py").is_file()])
def test_stub_and_solution_share_signatures_and_docstrings(module):
    def api(path):
        tree = ast.parse(path.read_text())
        out = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                args = ast.unparse(node.args) if isinstance(node, ast.FunctionDef) else ""
                out[node.name] = (args, ast.get_docstring(node))
        return out

    stub, solution = api(REPO_ROOT / "labs" / f"{module}.py"), api(REPO_ROOT / "solutions" / f"{module}.py")
    assert stub == solution


def test_make_stub_replaces_bodies_and_keeps_marked_functions():
    source = '''
def f(x: int) -> int:
    """Doc."""
    # a hint that must not survive
    return x + 1


def g():  # keep
    return 2


class N:
    def transform(self, x):
        return x * 3


def main():
    print(f(1))
'''
    stub = make_stub(source, "labs/labXX.py")
    assert "return x + 1" not in stub and "a hint" not in stub and "x * 3" not in stub
    assert 'raise NotImplementedError("labs/labXX.py: implement f()")' in stub
    assert 'implement N.transform()' in stub
    assert "return 2" in stub and "print(f(1))" in stub
    ns: dict = {}
    exec(compile(stub, "stub", "exec"), ns)
    with pytest.raises(NotImplementedError, match="implement f"):
        ns["f"](1)


@pytest.mark.timeout(300)
def test_every_graded_check_fails_with_not_implemented_on_the_stubs(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("LABS_IMPL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--labs-dir", str(REPO_ROOT / "labs"), "--json", str(out), "--device", "cpu"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["score"] == 0 and report["max_score"] > 0
    graded = [t for t in report["tests"] if t["max_score"] > 0]
    assert graded
    bad = [t["name"] for t in graded if "not implemented" not in t["output"]]
    assert not bad, f"these checks do not say 'not implemented' against the stubs: {bad}"
    assert "not implemented yet" in proc.stdout
    golden.check("stubs", report["tests"])
