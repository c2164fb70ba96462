"""Seconds per simulated pair before and after the in-place TGV loop (issue 22), side by side.

    OMP_NUM_THREADS=1 python bench/bench_tgv_inplace.py --size 64 --pairs 6 --rounds 3
    OMP_NUM_THREADS=1 python bench/bench_tgv_inplace.py --size 320 --pairs 2 --rounds 3

``before``: `data.mrsim` with its solver swapped for the frozen copy of the old loop
(tests/tgv_reference.py); ``after``: today's `data.mrsim.tgv_pics`. The two alternate pair by
pair on the same machine (before, after, before, after, ...), so load changes hit both; each
pair's images are checked to be bit-identical. Prints the median seconds per pair (wall and
process CPU) of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import mrsim, recon  # noqa: E402
from tests import tgv_reference  # noqa: E402


def one_pair(index: int, size: int, solver) -> tuple[float, float, bytes]:
    original = mrsim.tgv_pics
    mrsim.tgv_pics = solver
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        ref, acc, _ = recon.simulate_pair(index, size, 0)
        return time.perf_counter() - w0, time.process_time() - c0, ref.tobytes() + acc.tobytes()
    finally:
        mrsim.tgv_pics = original


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    mrsim.candidate_slices(), mrsim.coil_maps(args.size)  # loaded once, outside the timings
    one_pair(0, args.size, mrsim.tgv_pics)
    times = {"before": [], "after": []}
    for _ in range(args.rounds):
        for i in range(args.pairs):
            out = {}
            for name, solver in (("before", tgv_reference.tgv_pics), ("after", mrsim.tgv_pics)):
                wall, cpu, bits = one_pair(i, args.size, solver)
                times[name].append((wall, cpu))
                out[name] = bits
            assert out["before"] == out["after"], f"pair {i}: the images differ"
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    n = len(times["before"])
    print(f"{args.size} px, {n} pairs each, alternating, bit-identical: before {med['before'][0]:.3f} s wall "
          f"({med['before'][1]:.3f} s CPU), after {med['after'][0]:.3f} s wall ({med['after'][1]:.3f} s CPU) per pair: "
          f"x{med['before'][0] / med['after'][0]:.2f} faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
