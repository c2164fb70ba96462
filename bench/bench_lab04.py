"""Lab 4 benchmarks: grading time, and the calibration of the graded thresholds.

    python bench/bench_lab04.py                 # `python -m grader --solutions --lab 4`, median of 3
    python bench/bench_lab04.py --runs 5
    python bench/bench_lab04.py --calibrate 10  # the reference pipeline over 10 grader seeds
    python bench/bench_lab04.py --calibrate 10 --normalizer max   # the lecture's max scaling

The calibration runs the grader's own pipeline functions (grader/oracle/lab04.py: run_pipeline,
run_imbalanced) on the reference solution with the seeds that grader seeds 20181, 20182, ...
give, and prints min / median / max of the test-subject accuracy, balanced accuracy and the
class-weight gain on the imbalanced training set: the numbers in the tests' docstrings, with the
margins to the graded bars (the oracle's calibration block, which the rubric imports).
``--normalizer max`` replaces the reference's z-scoring by division by the training maximum
(the lecture's choice), which a student may use as well. Runs with one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
from timing import time_grading  # noqa: E402


MAX_SCALING = """

def fit_normalizer(x_train):  # the lecture's normaliser: x / max over the training set of |x|
    scale = x_train.abs().amax(dim=0)
    scale[scale == 0] = 1.0
    return Normalizer(mean=0.0 * scale, std=scale)
"""


def graded_lab(normalizer: str):
    """The reference lab as the grader sees it (in a worker); ``"max"``: with the lecture's normaliser."""
    import tempfile

    from grader.judge import session

    folder = session.REPO_ROOT / "solutions"
    if normalizer == "max":
        folder = Path(tempfile.mkdtemp(prefix="lab04-max-"))
        source = (session.REPO_ROOT / "solutions" / "lab04_dti.py").read_text()
        (folder / "lab04_dti.py").write_text(source + MAX_SCALING)
    session.set_impl_dir(folder)
    session.close_lab("lab04")
    return session.load_lab("lab04")


def calibrate(n_seeds: int, normalizer: str) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from grader.oracle import lab04 as oracle
    from data.dti import load_dti
    from grader.plugin import DEFAULT_SEED, seed_for_test

    lab = graded_lab(normalizer)
    data = load_dti("offline")
    rows = []
    for k in range(n_seeds):
        grader_seed = DEFAULT_SEED + k
        start = time.perf_counter()
        run = oracle.run_pipeline(lab, data, seed_for_test(grader_seed, "lab04:pipeline"))
        t_full = time.perf_counter() - start
        seed = seed_for_test(grader_seed, "lab04:imbalanced")
        start = time.perf_counter()
        weighted = oracle.run_imbalanced(lab, data, seed, weighted=True)
        plain = oracle.run_imbalanced(lab, data, seed, weighted=False)
        t_imb = time.perf_counter() - start
        row = {"grader_seed": grader_seed, "accuracy": run.test["accuracy"], "balanced": run.test["balanced"],
               "imbalanced_weighted": weighted["balanced"], "imbalanced_plain": plain["balanced"],
               "gain": weighted["balanced"] - plain["balanced"], "time_full_s": t_full, "time_imbalanced_s": t_imb}
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    summary = {}
    for key in ("accuracy", "balanced", "imbalanced_weighted", "imbalanced_plain", "gain", "time_full_s", "time_imbalanced_s"):
        values = np.array([r[key] for r in rows])
        summary[key] = {"min": round(float(values.min()), 4), "median": round(float(np.median(values)), 4),
                        "max": round(float(values.max()), 4)}
    thresholds = {"accuracy": oracle.MIN_TEST_ACCURACY, "balanced": oracle.MIN_TEST_BALANCED,
                  "imbalanced_weighted": oracle.MIN_IMBALANCED_BALANCED, "gain": oracle.MIN_WEIGHT_GAIN}
    for key, limit in thresholds.items():
        summary[key]["threshold"] = limit
        summary[key]["margin"] = round(summary[key]["min"] - limit, 4)
    return {"normalizer": normalizer, "seeds": n_seeds, "summary": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="gradings to time (default 3)")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N", help="calibrate over N grader seeds instead")
    parser.add_argument("--normalizer", choices=("z", "max"), default="z", help="normaliser for --calibrate")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.calibrate:
        result = calibrate(args.calibrate, args.normalizer)
        for key, s in result["summary"].items():
            print(f"{key:>20}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    else:
        result = time_grading(4, repeats=args.runs)
        print(f"python -m grader --solutions --lab 4: median {result['median_s']:.1f} s over "
              f"{len(result['seconds'])} runs {result['seconds']}, scores {result['scores']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
