"""docs/writing-a-lab.md is complete: a toy lab 6 added by touching only the places it lists is graded,
released and batch-graded (issue 20).

In a temporary copy of the repository (the tracked files), lab 6 is: one `LabSpec` line in
`grader/registry.py`, `solutions/lab06_toy.py`, the stub written by `python -m grader.course.stubs`,
`grader/test_lab06_toy.py` and a line in `student/README.md`. Nothing else of the grader changes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

SOLUTION = '''"""Lab 6 (toy): doubling numbers. Run ``python -m labs.lab06_toy``."""

from __future__ import annotations


def double(x: float) -> float:
    """2 x (the toy lab's only formula).

    Args:
        x: a number.

    Returns:
        ``2 * x`` as a float.
    """
    return 2.0 * float(x)


def main() -> None:
    print(double(21))


if __name__ == "__main__":
    main()
'''

RUBRIC = '''"""Grading of lab 6 (toy): labs/lab06_toy.py. Rubric: double 1."""

import pytest

from grader.judge.session import lab_fixture

lab = lab_fixture("lab06")


@pytest.mark.points(1)
def test_double(lab, grader_seed):
    x = float(grader_seed % 97)
    assert lab.double(x) == 2 * x, "double(x) must return 2 x"
'''


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    for k in ("LABS_IMPL", "GRADER_DATA_SECRET", "GRADER_DATA_SECRET_FILE"):
        env.pop(k, None)
    from data.cache import cache_dir

    env["MRI_DL_LABS_CACHE"] = str(cache_dir())
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(900)
def test_a_toy_lab_added_where_the_guide_says_is_graded_released_and_batch_graded(tmp_path):
    guide = (REPO_ROOT / "docs" / "writing-a-lab.md").read_text()
    for place in ("grader/registry.py", "solutions/lab06_name.py", "python -m grader.course.stubs", "grader/test_lab06_name.py",
                  "student/README.md"):
        assert place in guide, f"docs/writing-a-lab.md does not name {place}"
    copy = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, files.split("\0")):
        src = REPO_ROOT / rel
        if src.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / rel)
    # The places the guide names, and nothing else:
    registry = copy / "grader" / "registry.py"
    text = registry.read_text()
    anchor = '    LabSpec("lab05", "lab05_cnn", data_modules=("data.recon",), data_folders=("recon_classification",)),\n'
    assert anchor in text
    registry.write_text(text.replace(anchor, anchor + '    LabSpec("lab06", "lab06_toy"),\n'))
    (copy / "solutions" / "lab06_toy.py").write_text(SOLUTION)
    (copy / "grader" / "test_lab06_toy.py").write_text(RUBRIC)
    readme = copy / "student" / "README.md"
    readme.write_text(readme.read_text() + "\n- Lab 6 (toy): `labs/lab06_toy.py`, doubling numbers.\n")
    proc = _run(["-m", "grader.course.stubs"], copy)
    assert proc.returncode == 0 and (copy / "labs" / "lab06_toy.py").is_file(), proc.stderr[-2000:]

    # graded: the solution earns the point, the stub does not
    for impl, want in (("--solutions", 1.0), (None, 0.0)):
        out = tmp_path / f"results-{impl}.json"
        proc = _run(["-m", "grader", "--lab", "6", "--json", str(out), *([impl] if impl else [])], copy)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results = json.loads(out.read_text())
        assert results["max_score"] == 1.0 and results["score"] == want, proc.stdout[-2000:]

    # released: the release check (stubs 0, solutions full marks, README names the file) passes
    dest = tmp_path / "release"
    proc = _run(["-m", "grader", "release", str(dest)], copy)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (dest / "labs" / "lab06_toy.py").is_file() and (dest / "grader" / "test_lab06_toy.py").is_file()

    # batch-graded: a class of one, lab 6 only
    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "ada").mkdir(parents=True)
    (subs / "ada" / "lab06_toy.py").write_text(SOLUTION)
    proc = _run(["-m", "grader", "batch", str(subs), "--out", str(out), "--lab", "6", "-q"], copy)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert rows[0]["lab06"] == "1" and rows[0]["total"] == rows[0]["max"] == "1", rows
