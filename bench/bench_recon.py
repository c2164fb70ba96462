"""Benchmark of the simulated MR image-quality dataset (`data.recon`).

1. Simulation cost: seconds per (reference, accelerated) pair at 320 px and at small sizes
   (process CPU time and wall time, one thread).
2. Separability: the 45-parameter "gap1" CNN and the 489-parameter "gap4" CNN trained on
   `load_recon_subset` (Adam lr 1e-3, BCE, batch 10) over several seeds; validation accuracy
   (min / median / max) and training time.

Run:  OMP_NUM_THREADS=1 python bench/bench_recon.py [--quick] [--settings 24x64x30 48x64x30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from data import mrsim, recon  # noqa: E402


def gap1() -> nn.Module:
    """Conv2d(1,4,3,p=1) + ReLU + global average pooling + Linear(4,1) + sigmoid: 45 parameters."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 1), nn.Sigmoid())


def gap4() -> nn.Module:
    """4 x [Conv 3x3 (4 filters), ReLU, 2x2 max-pool] + GAP + Linear(4,1) + sigmoid: 489 parameters."""
    layers, c = [], 1
    for _ in range(4):
        layers += [nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = 4
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1), nn.Sigmoid())


MODELS = {"gap1": gap1, "gap4": gap4}


def train_eval(model_name: str, data: recon.ReconData, epochs: int, seed: int, batch: int = 10,
               lr: float = 1e-3) -> tuple[float, float]:
    """Train with Adam + BCE; returns (final validation accuracy, training seconds)."""
    torch.manual_seed(seed)
    model = MODELS[model_name]()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCELoss()
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(data.x_train[idx]).squeeze(1), data.y_train[idx])
            loss.backward()
            opt.step()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        acc = ((model(data.x_val).squeeze(1) > 0.5).float() == data.y_val).float().mean().item()
    return acc, dt


def time_pairs(image_size: int, n: int) -> tuple[float, float]:
    """Mean (CPU s, wall s) per pair over pairs 100..100+n-1 (template and coil maps preloaded)."""
    mrsim.candidate_slices(), mrsim.coil_maps(image_size)
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(100, 100 + n):
        recon.simulate_pair(i, image_size)
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timings and seeds")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--settings", nargs="*", default=["24x64x60", "24x64x120", "36x64x100", "48x64x80"],
                    help="n_pairs x image_size x epochs")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load avg {os.getloadavg()}")
    if not args.no_timing:
        for size, n in ((320, 1 if args.quick else 3), (64, 8), (96, 8)):
            cpu, wall = time_pairs(size, n)
            print(f"simulate_pair {size}px: {cpu:.2f} s CPU, {wall:.2f} s wall per pair (n={n})", flush=True)
    seeds = range(3 if args.quick else args.seeds)
    for s in args.settings:
        n_pairs, size, epochs = (int(v) for v in s.split("x"))
        w0 = time.perf_counter()
        data = recon.load_recon_subset(n_pairs, size, seed=0)
        print(f"\n{data}  (load {time.perf_counter() - w0:.1f} s)", flush=True)
        for name in MODELS:
            res = [train_eval(name, data, epochs, sd, lr=args.lr) for sd in seeds]
            accs = [a for a, _ in res]
            times = [t for _, t in res]
            print(f"  {name} {epochs} ep lr {args.lr:g}: val acc min {min(accs):.3f} median {statistics.median(accs):.3f} "
                  f"max {max(accs):.3f}  | train {statistics.median(times):.1f} s median, {max(times):.1f} s max"
                  f"  | accs {[round(a, 3) for a in accs]}", flush=True)


if __name__ == "__main__":
    main()
