"""Planted bugs: patched copies of a solution that the grader must catch.

A :class:`Bug` is a text patch of one solution file (``old`` must occur exactly once) and the
graded tests it is aimed at. :func:`grade_variant` writes the patched file to a fresh folder and
grades it in a subprocess with ``--labs-dir``, returning the checks of the JSON report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bug:
    """A slip a student could make, as a patch of the reference solution."""

    lab: str  # "lab01"
    name: str  # short id, used as the test id
    old: str  # text in the solution (must occur exactly once)
    new: str  # what the student wrote instead
    aimed_at: tuple[str, ...]  # graded test names (without parameters) that must lose points
    message: str = ""  # a word the failure message must contain (case-insensitive), if any


def module_file(lab: str) -> str:
    from grader.impl import LABS

    return f"{LABS[lab]}.py"


def patched_source(bug: Bug) -> str:
    """The solution with ``bug`` applied; AssertionError if the patch no longer applies."""
    source = (REPO_ROOT / "solutions" / module_file(bug.lab)).read_text()
    count = source.count(bug.old)
    assert count == 1, f"bug {bug.name}: the patched text occurs {count} times in solutions/{module_file(bug.lab)}"
    return source.replace(bug.old, bug.new)


def grade_variant(files: dict[str, str], tmp_path: Path, test_file: str, select: list[str] | None = None,
                  extra: list[str] | None = None, timeout: int = 600) -> dict[str, dict]:
    """Grade lab files ``{file name: source}`` written to ``tmp_path/impl``.

    Returns ``{test name: gradescope test entry}`` from the JSON report (names without the
    ``labNN: `` prefix).
    """
    impl = tmp_path / "impl"
    impl.mkdir(exist_ok=True)
    for name, text in files.items():
        (impl / name).write_text(text)
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "pytest", str(REPO_ROOT / "grader" / test_file), "--labs-dir", str(impl),
           "--grade-json", str(out), "-q", "--tb=no", "-p", "no:cacheprovider", "--device", "cpu"]
    if select:
        cmd += ["-k", " or ".join(select)]
    cmd += extra or []
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("LABS_IMPL", None)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.is_file(), f"no report written; pytest said:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    return {t["name"].split(": ", 1)[1]: t for t in report["tests"]}


def base_name(test_name: str) -> str:
    """``test_x[cpu]`` -> ``test_x``."""
    return test_name.split("[", 1)[0]
