"""Wall time of ``python -m grader --solutions`` (all five labs), median of 3; goal < 90 s.

Also prints the per-lab times of the last run (from the per-lab lines of ``python -m grader``).
Run: ``.venv/bin/python bench/bench_grading_all.py`` on a quiet machine.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import REPO_ROOT, grade_command  # noqa: E402

if __name__ == "__main__":
    times, last = [], ""
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(grade_command(), cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        last = proc.stdout
    times.sort()
    print(f"python -m grader --solutions: median {times[1]:.1f} s over 3 runs ({', '.join(f'{t:.1f}' for t in times)}); goal < 90 s")
    for line in re.findall(r"^seconds spent.*$", last, flags=re.M):
        print("  " + line)
