"""Run every benchmark in bench/ one after the other (``make bench``). Slow; use a quiet machine."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all.py", "timing.py", "bench_seed_robustness.py", "bench_lab05_calibration.py"}  # run those on their own (long)

if __name__ == "__main__":
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name in SKIP:
            continue
        print(f"== {script.name}", flush=True)
        subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
