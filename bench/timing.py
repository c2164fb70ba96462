"""Shared helper for the benchmarks: wall time of a command, median of N runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def time_command(cmd: list[str], repeats: int = 5, env: dict | None = None) -> tuple[float, list[float]]:
    """Run ``cmd`` from the repository root ``repeats`` times; (median seconds, all seconds).

    Raises:
        RuntimeError: the command exits with a non-zero code (its output is included).
    """
    times = []
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return statistics.median(times), times


def grade_command(*labs: int) -> list[str]:
    """``python -m grader --solutions --lab N ...`` with this interpreter."""
    cmd = [sys.executable, "-m", "grader", "--solutions", "--json", "/tmp/bench-grader-results.json"]
    for lab in labs:
        cmd += ["--lab", str(lab)]
    return cmd


def time_grading(*labs: int, repeats: int = 5) -> dict:
    """Wall seconds of ``python -m grader --solutions --lab N ...``, each run in a fresh process.

    Returns ``{"seconds": [...], "median_s": float, "scores": ["earned/possible", ...]}``.
    """
    import json
    import tempfile

    times, scores = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", "grader", "--solutions", "--json", str(out)]
        for lab in labs:
            cmd += ["--lab", str(lab)]
        for _ in range(repeats):
            _, (seconds,) = time_command(cmd, repeats=1)
            times.append(seconds)
            report = json.loads(out.read_text())
            scores.append(f"{report['score']:g}/{report['max_score']:g}")
    return {"seconds": [round(t, 2) for t in times], "median_s": round(statistics.median(times), 2), "scores": scores}
