"""Seed robustness of the verdicts (issue: "verdicts that hold").

1. ``python -m grader --solutions --seeds K``: every check must pass on K/K grader seeds.
2. Every planted bug in ``tests/bugs_labNN.py`` graded with grader seeds 1..K: its aimed checks
   must lose points on K/K seeds.

Run: ``.venv/bin/python bench/bench_seed_robustness.py [--seeds 20] [--labs 1 2 3 4 5]``.
Writes ``bench/results/seed_robustness.md``. Slow: about K x (full grading + one graded run
per planted bug); use fewer seeds or labs for a quick look.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from grader.judge.session import LABS  # noqa: E402
from tests.planted import base_name, module_file, patched_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--labs", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--skip-solutions", action="store_true", help="only the planted bugs")
    parser.add_argument("--bug", default=None, help="only the planted bug with this name (prints, writes no file)")
    args = parser.parse_args()
    labs = [f"lab{n:02d}" for n in args.labs]
    lines = [f"# Seed robustness ({args.seeds} grader seeds, labs {', '.join(labs)})", ""]
    started = time.time()

    checks = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seeds.json"
        if args.skip_solutions:
            out.write_text(json.dumps({"checks": {}}))
        cmd = [sys.executable, "-m", "grader", "--solutions", "--seeds", str(args.seeds), "--json", str(out)]
        for n in args.labs:
            cmd += ["--lab", str(n)]
        if not args.skip_solutions:
            subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, text=True)
        checks = json.loads(out.read_text())["checks"]
    lines += ["## Solutions", "", "| check | passed |", "|---|---|"]
    lines += [f"| {name} | {c['passed']}/{c['seeds']} |" for name, c in checks.items()]
    print("\n".join(lines[-len(checks):]), flush=True)

    lines += ["", "## Planted bugs (aimed checks lose points)", "", "| bug | aimed at | lost points on |", "|---|---|---|"]
    # All planted-bug gradings run in this one process (pytest.main per bug and seed), which
    # saves the ~5 s start-up (torch import) of a fresh process per grading.
    import pytest

    os.environ["GRADER_NO_SUMMARY"] = "1"
    for lab in labs:
        try:
            bugs = importlib.import_module(f"tests.bugs_{lab}").BUGS
        except ModuleNotFoundError:
            continue
        for bug in bugs:
            if args.bug and bug.name != args.bug:
                continue
            caught = 0
            with tempfile.TemporaryDirectory() as tmp:
                impl = Path(tmp) / "impl"
                impl.mkdir()
                (impl / module_file(lab)).write_text(patched_source(bug))
                for seed in range(1, args.seeds + 1):
                    out = Path(tmp) / f"r{seed}.json"
                    pytest.main([
                        str(REPO_ROOT / "grader" / f"test_{LABS[lab]}.py"), "--labs-dir", str(impl), "--grade-json", str(out),
                        "--grader-seed", str(seed), "--device", "cpu", "-k", " or ".join(bug.aimed_at),
                        "-q", "--tb=no", "-p", "no:cacheprovider",
                    ])
                    results = {t["name"].split(": ", 1)[1]: t for t in json.loads(out.read_text())["tests"]}
                    caught += all(
                        sum(t["max_score"] - t["score"] for n, t in results.items() if base_name(n) == aimed) > 0
                        for aimed in bug.aimed_at
                    )
            row = f"| {lab} {bug.name} | {', '.join(bug.aimed_at)} | {caught}/{args.seeds} |"
            print(row, flush=True)
            lines.append(row)
    lines += ["", f"Total wall time: {time.time() - started:.0f} s."]
    if args.bug:
        return
    dest = REPO_ROOT / "bench" / "results" / f"seed_robustness{'_bugs' if args.skip_solutions else ''}.md"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text("\n".join(lines) + "\n")
    print(f"written to {dest}")


if __name__ == "__main__":
    main()
