"""Wall time of ``python -m grader --solutions --lab 1 --lab 2`` (median of 5). Goal: < 15 s.

Run: ``.venv/bin/python bench/bench_grading_labs12.py``. Includes interpreter start, the torch
import (~1.6 s) and pytest collection: what a student waits for.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import grade_command, time_command  # noqa: E402

if __name__ == "__main__":
    median, runs = time_command(grade_command(1, 2), repeats=5)
    print(f"python -m grader --solutions --lab 1 --lab 2: median {median:.2f} s over 5 runs "
          f"({', '.join(f'{t:.2f}' for t in runs)}); goal < 15 s")
