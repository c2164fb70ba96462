"""Benchmark of the data layer: DTI simulation time, MNIST offline load, DTI MLP difficulty.

Run from the repo root (uses a temporary cache, never the real one)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_data.py [--seeds 3] [--epochs 40] [--json out.json]

MLP: 5-100-100-100-100-3 ReLU, Adam lr 1e-3, batch 1024, CrossEntropyLoss, inputs
standardised with the trainval statistics; trained on subjects 105620/107725/112314, tested
on subject 100206 (the simulated data of ``load_dti("offline")``), 1 torch thread.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def make_mlp() -> torch.nn.Sequential:
    """5-100-100-100-100-3 ReLU network (4 hidden layers)."""
    layers, d = [], 5
    for _ in range(4):
        layers += [torch.nn.Linear(d, 100), torch.nn.ReLU()]
        d = 100
    return torch.nn.Sequential(*layers, torch.nn.Linear(d, 3))


def train_mlp(x_tr, y_tr, x_te, y_te, seed: int, epochs: int) -> dict:
    """Train as in the module docstring; returns train/test accuracy and wall time."""
    torch.manual_seed(seed)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    net = make_mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x_tr), generator=g)
        for i in range(0, len(x_tr), 1024):
            b = perm[i : i + 1024]
            opt.zero_grad()
            loss_fn(net(x_tr[b]), y_tr[b]).backward()
            opt.step()
    with torch.no_grad():
        acc_tr = (net(x_tr).argmax(1) == y_tr).float().mean().item()
        pred = net(x_te).argmax(1)
    conf = torch.zeros(3, 3, dtype=torch.int64)
    conf.index_put_((y_te, pred), torch.ones_like(y_te), accumulate=True)
    return {"seed": seed, "train_acc": acc_tr, "test_acc": (pred == y_te).float().mean().item(),
            "seconds": time.perf_counter() - t0, "confusion": conf.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MRI_DL_LABS_CACHE"] = tmp
        from data import dti, mnist

        res: dict = {"load_avg_1min": os.getloadavg()[0]}
        dti.simulate_subjects(seed=0)  # warm imports (dipy)
        gen = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            dti.simulate_dti(Path(tmp) / f"dti{r}", seed=0)
            gen.append(time.perf_counter() - t0)
        res["dti_generate_s"] = gen

        t0 = time.perf_counter()
        mnist.load_mnist("offline")
        res["mnist_cold_s"] = time.perf_counter() - t0  # includes the sklearn import
        warm = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            mnist.load_mnist("offline")
            warm.append(time.perf_counter() - t0)
        res["mnist_warm_s"] = warm

        d = dti.load_dti("offline")
        runs = [train_mlp(d.x_trainval, d.y_trainval, d.x_test, d.y_test, s, args.epochs)
                for s in range(args.seeds)]
        res["mlp"] = runs

    med = statistics.median
    print(f"load average (1 min) at start: {res['load_avg_1min']:.2f}")
    print("| measure | median s | all |")
    print("|---|---|---|")
    print(f"| DTI simulate + write 4 CSVs (23699 voxels) | {med(gen):.2f} | {', '.join(f'{t:.2f}' for t in gen)} |")
    print(f"| MNIST offline load, cold (build cache) | {res['mnist_cold_s']:.2f} | |")
    print(f"| MNIST offline load, warm | {med(warm):.3f} | {', '.join(f'{t:.3f}' for t in warm)} |")
    print()
    print(f"MLP 5-100-100-100-100-3, {args.epochs} epochs, test subject {dti.TEST_SUBJECT}:")
    print("| seed | train acc | test acc | s |")
    print("|---|---|---|---|")
    for r in runs:
        print(f"| {r['seed']} | {r['train_acc']:.3f} | {r['test_acc']:.3f} | {r['seconds']:.1f} |")
    accs = [r["test_acc"] for r in runs]
    print(f"test acc mean {np.mean(accs):.3f}, min {min(accs):.3f}, max {max(accs):.3f}")
    print("confusion (rows true, cols predicted; thalamus, CC, WM), seed 0:", runs[0]["confusion"])
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
