"""Lab 5 benchmarks: grading time, epoch time at 320x320, and the calibration of the accuracy check.

    python bench/bench_lab05.py                   # `python -m grader --solutions --lab 5`, median of 3
    python bench/bench_lab05.py --runs 5
    python bench/bench_lab05.py --epoch-times     # one epoch of each variant at 320x320, 347 images
    python bench/bench_lab05.py --calibrate 20    # the accuracy check over 20 grader seeds
    python bench/bench_lab05.py --calibrate 10 --variant gap1 --pairs 48 --size 64 --epochs 30
    python bench/bench_lab05.py --calibrate 20 --impl tests/alt          # the alternative implementation
    python bench/bench_lab05.py --calibrate 20 --bug labels_swapped      # a planted bug must fail every seed

The calibration runs the grader's own pipeline (grader/oracle/lab05_runs.py: train_on_subset) on the
reference solution with the seeds that grader seeds 20181, 20182, ... give the test
``test_trained_gap4_reaches_validation_accuracy``, and prints min / median / max of the
validation accuracy: the numbers in the test's docstring. The epoch times train on random
tensors of the full training set's shape (347 = 2/3 of 520 images, 1 x 320 x 320, batch 10),
plus the per-epoch evaluation of :func:`train` on 347 + 173 images. One thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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

ACCURACY_TEST = "grader/test_lab05_cnn.py::test_trained_gap4_reaches_validation_accuracy"


def epoch_times(n_train: int = 347, n_val: int = 173, size: int = 320, repeats: int = 1) -> dict:
    """Seconds per epoch of :func:`solutions.lab05_cnn.train` for each variant, on random tensors."""
    import torch

    import solutions.lab05_cnn as lab  # the solution's own speed: no grading, no worker

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_train, 1, size, size, generator=g)
    y = (torch.arange(n_train) % 2).float()
    xv = torch.rand(n_val, 1, size, size, generator=g)
    yv = (torch.arange(n_val) % 2).float()
    result = {}
    for variant in lab.VARIANTS:
        times = []
        for _ in range(repeats):
            model = lab.build_cnn(variant, image_size=size)
            start = time.perf_counter()
            lab.train(model, x, y, xv, yv, epochs=1, batch_size=10, device="cpu", seed=0)
            times.append(time.perf_counter() - start)
        result[variant] = {"epoch_s": round(statistics.median(times), 2), "parameters": lab.count_parameters(model)}
        print(f"{variant}: {result[variant]['epoch_s']:.2f} s per epoch ({n_train} + {n_val} images at {size}x{size}, "
              f"{result[variant]['parameters']} parameters)", flush=True)
    return result


def calibrate(n_seeds: int, variant: str, pairs: int, size: int, epochs: int, impl_dir: str | None = None,
              bug: str | None = None) -> dict:
    """The accuracy check's pipeline over ``n_seeds`` grader seeds, on the reference solution, on
    the lab files in ``impl_dir`` (e.g. tests/alt), or on the solution with the planted bug ``bug``
    of tests/bugs_lab05.py applied."""
    import tempfile

    import numpy as np
    import torch

    torch.set_num_threads(1)
    import grader.oracle.lab05_runs as oracle  # the accuracy check's subset run and calibration, as the rubric uses them
    from grader.judge import session

    folder = Path(impl_dir) if impl_dir else session.REPO_ROOT / "solutions"
    if bug:
        from tests.bugs_lab05 import BUGS
        from tests.planted import module_file, patched_source

        chosen = [b for b in BUGS if b.name == bug]
        if not chosen:
            raise SystemExit(f"--bug {bug!r}: no such planted bug; choose from {[b.name for b in BUGS]}")
        folder = Path(tempfile.mkdtemp(prefix="lab05_bug_"))
        (folder / module_file("lab05")).write_text(patched_source(chosen[0]))
    session.set_impl_dir(folder)
    lab = session.load_lab("lab05")
    from data.recon import load_recon_subset
    from grader.plugin import DEFAULT_SEED, seed_for_test

    data = load_recon_subset(n_pairs=pairs, image_size=size, seed=0)
    print(data, flush=True)
    rows = []
    for k in range(n_seeds):
        grader_seed = DEFAULT_SEED + k
        seed = seed_for_test(grader_seed, ACCURACY_TEST)
        torch.manual_seed(seed)
        start = time.perf_counter()
        acc, _ = oracle.train_on_subset(lab, data, seed, variant=variant, epochs=epochs)
        rows.append({"grader_seed": grader_seed, "accuracy": acc, "time_s": time.perf_counter() - start})
        print(f"grader seed {grader_seed}: validation accuracy {acc:.3f} ({rows[-1]['time_s']:.1f} s)", flush=True)
    acc = np.array([r["accuracy"] for r in rows])
    t = np.array([r["time_s"] for r in rows])
    summary = {"min": round(float(acc.min()), 4), "median": round(float(np.median(acc)), 4),
               "max": round(float(acc.max()), 4), "time_median_s": round(float(np.median(t)), 2)}
    if variant == "gap4" and (pairs, size, epochs) == (oracle.SUBSET_PAIRS, oracle.SUBSET_SIZE, oracle.SUBSET_EPOCHS):
        summary["threshold"] = oracle.MIN_VAL_ACCURACY
        summary["margin"] = round(summary["min"] - oracle.MIN_VAL_ACCURACY, 4)
    summary["passed"] = int((acc >= oracle.MIN_VAL_ACCURACY).sum())
    return {"variant": variant, "pairs": pairs, "size": size, "epochs": epochs, "seeds": n_seeds,
            "impl": str(impl_dir or "solutions"), "bug": bug, "summary": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    import grader.oracle.lab05_runs as oracle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="gradings to time (default 3)")
    parser.add_argument("--epoch-times", action="store_true", help="time one epoch of each variant at 320x320")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N", help="calibrate over N grader seeds instead")
    parser.add_argument("--variant", default="gap4", help="variant for --calibrate (default gap4)")
    parser.add_argument("--pairs", type=int, default=oracle.SUBSET_PAIRS, help="subset pairs for --calibrate")
    parser.add_argument("--size", type=int, default=oracle.SUBSET_SIZE, help="image size for --calibrate")
    parser.add_argument("--epochs", type=int, default=oracle.SUBSET_EPOCHS, help="epochs for --calibrate")
    parser.add_argument("--impl", metavar="DIR", help="calibrate the lab files in DIR (e.g. tests/alt) instead of the solution")
    parser.add_argument("--bug", metavar="NAME", help="calibrate the solution with this planted bug (tests/bugs_lab05.py)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.calibrate:
        result = calibrate(args.calibrate, args.variant, args.pairs, args.size, args.epochs, args.impl, args.bug)
        print(f"{result['impl']}{' + bug ' + args.bug if args.bug else ''}: {args.variant}, {args.pairs} pairs at {args.size} px, {args.epochs} epochs: "
              + ", ".join(f"{k} {v}" for k, v in result["summary"].items()))
    elif args.epoch_times:
        result = epoch_times()
    else:
        result = time_grading(5, repeats=args.runs)
        print(f"python -m grader --solutions --lab 5: median {result['median_s']:.1f} s over "
              f"{len(result['seconds'])} runs {result['seconds']}, scores {result['scores']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
