"""Repository-wide pytest set-up: one thread per process and the grading plugin.

OMP_NUM_THREADS must be set before torch is imported to take effect; on the 2-core machines we
grade on, two threads were measured 3-8x slower than one for these small models under load.

Run by a Python without the course's packages (the system ``python3`` instead of ``.venv``), it
stops with one line that says what to run instead, not with an internal error.
"""

import importlib.util
import os
import sys

_missing = [m for m in ("torch", "numpy", "pytest_timeout") if importlib.util.find_spec(m) is None]
if _missing:
    sys.stderr.write(
        f"mri-dl-labs: {sys.executable} has no {', '.join(_missing)}, so it is not the course's .venv: "
        "run `make grade` (creates .venv the first time), or `.venv/bin/python -m grader` / `.venv/bin/python -m pytest`\n"
    )
    raise SystemExit(4)

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

pytest_plugins = ["grader.plugin"]
