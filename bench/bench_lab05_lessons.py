"""Lab 5's three lessons (issue 22): the default run of ``python -m labs.lab05_cnn`` over seeds.

    python bench/bench_lab05_lessons.py --seeds 0 1 2                 # the lab's defaults
    python bench/bench_lab05_lessons.py --seeds 0 --pairs 260 --size 64 --epochs 150 --lr 1e-3
    python bench/bench_lab05_lessons.py --seeds 0 --name trial-x --no-record   # print only

Runs :func:`solutions.lab05_cnn.run_all` (the five runs of the lab: gap1, gap4 and fc on the true
labels, gap4 and fc on ``randomize_labels(y_train, seed)``) on the lab's simulated set
(``data.recon.load_recon_subset(pairs, size)``, data seed 0), one thread, and checks the targets
of issue 22:

* gap4, true labels: validation accuracy >= 0.95;
* gap1, true labels: training accuracy <= 0.85;
* fc, random labels: training accuracy >= 0.95 and validation accuracy <= 0.65;
* gap4, random labels: training accuracy <= 0.90.

Each (setting, seed) is one line of bench/results/lab05_lessons.jsonl: the last-epoch accuracies,
the validation loss (first, minimum, last), the seconds and the per-epoch history of every run,
and the wall time. ``--at 150`` reads the targets at an earlier epoch from the recorded
histories (train() is deterministic epoch by epoch: the first 150 epochs of a 200-epoch run are
a 150-epoch run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "bench" / "results" / "lab05_lessons.jsonl"

TARGETS = {
    "gap4 val >= 0.95": lambda r: r["gap4"]["val_acc"] >= 0.95,
    "gap1 train <= 0.85": lambda r: r["gap1"]["train_acc"] <= 0.85,
    "fc random train >= 0.95": lambda r: r["fc, random labels"]["train_acc"] >= 0.95,
    "fc random val <= 0.65": lambda r: r["fc, random labels"]["val_acc"] <= 0.65,
    "gap4 random train <= 0.90": lambda r: r["gap4, random labels"]["train_acc"] <= 0.90,
}


def run(seed: int, pairs: int, size: int, epochs: int, lr: float, progress: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    import solutions.lab05_cnn as lab
    from data import recon

    data = recon.load_recon_subset(n_pairs=pairs, image_size=size, progress=progress)
    start = time.perf_counter()
    y_random = lab.randomize_labels(data.y_train, seed=seed)
    histories = lab.run_all(data, lab.RUNS, epochs, lr, seed, "cpu", y_random, progress=progress, figures=False)
    runs = {name: {"train_acc": h["train_acc"][-1], "val_acc": h["val_acc"][-1], "val_loss_first": h["val_loss"][0],
                   "val_loss_min": min(h["val_loss"]), "val_loss_last": h["val_loss"][-1],
                   "best_epoch": h["val_loss"].index(min(h["val_loss"])) + 1, "seconds": round(h["seconds"], 1),
                   "verdict": lab.verdict(h),
                   "history": {k: [round(v, 5) for v in h[k]] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}}
            for name, h in histories.items()}
    return {"seed": seed, "pairs": pairs, "size": size, "epochs": epochs, "lr": lr, "runs": runs,
            "wall_s": round(time.perf_counter() - start, 1),
            "targets": {k: bool(f(runs)) for k, f in TARGETS.items()}}


def at_epoch(record: dict, epoch: int) -> dict:
    """The runs of a recorded line as if trained for ``epoch`` epochs (from the histories)."""
    runs = {}
    for name, r in record["runs"].items():
        h = {k: v[:epoch] for k, v in r["history"].items()}
        runs[name] = {"train_acc": h["train_acc"][-1], "val_acc": h["val_acc"][-1], "val_loss_first": h["val_loss"][0],
                      "val_loss_min": min(h["val_loss"]), "val_loss_last": h["val_loss"][-1],
                      "best_epoch": h["val_loss"].index(min(h["val_loss"])) + 1}
    return {**record, "epochs": epoch, "runs": runs, "targets": {k: bool(f(runs)) for k, f in TARGETS.items()}}


def report(name: str, epoch: int | None) -> None:
    """A markdown table of the recorded lines named ``name`` (at ``epoch``, default their last)."""
    lines = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()]
    lines = [r for r in lines if r["name"] == name]
    cols = ("gap1", "gap4", "gap4, random labels", "fc", "fc, random labels")
    print("| setting | seed | " + " | ".join(f"{c} train / val" for c in cols) + " | fc random val loss | targets |")
    print("|---" * (len(cols) + 4) + "|")
    for r in lines:
        r = at_epoch(r, epoch or r["epochs"])
        runs = r["runs"]
        missed = [k for k, ok in r["targets"].items() if not ok]
        fcr = runs["fc, random labels"]
        print(f"| {r['pairs']} pairs, {r['size']} px, {r['epochs']} ep, lr {r['lr']:g} | {r['seed']} | "
              + " | ".join(f"{runs[c]['train_acc']:.3f} / {runs[c]['val_acc']:.3f}" for c in cols)
              + f" | {fcr['val_loss_first']:.2f} -> {fcr['val_loss_last']:.2f} | "
              + ("all met" if not missed else "missed: " + ", ".join(missed)) + " |")


def main() -> int:
    import solutions.lab05_cnn as lab

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pairs", type=int, default=lab.DEFAULT_PAIRS)
    ap.add_argument("--size", type=int, default=lab.DEFAULT_SIZE)
    ap.add_argument("--epochs", type=int, default=lab.DEFAULT_EPOCHS)
    ap.add_argument("--lr", type=float, default=lab.DEFAULT_LR)
    ap.add_argument("--name", default="default")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--report", action="store_true", help="print the recorded lines of --name as a table")
    ap.add_argument("--at", type=int, default=None, help="with --report: the numbers at this epoch")
    args = ap.parse_args()
    if args.report:
        report(args.name, args.at)
        return 0
    for seed in args.seeds:
        result = {"name": args.name, **run(seed, args.pairs, args.size, args.epochs, args.lr, not args.no_progress)}
        print(f"{args.name} seed {seed}: {args.pairs} pairs, {args.size} px, {args.epochs} epochs, lr {args.lr:g}, "
              f"{result['wall_s']:.0f} s", flush=True)
        for name, r in result["runs"].items():
            print(f"  {name:<20} train {r['train_acc']:.3f} val {r['val_acc']:.3f} val loss {r['val_loss_first']:.2f}"
                  f" -> min {r['val_loss_min']:.3f} (epoch {r['best_epoch']}) -> {r['val_loss_last']:.3f}"
                  f"  {r['seconds']:.0f} s", flush=True)
        print("  targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in result["targets"].items()),
              flush=True)
        if not args.no_record:
            with RESULTS.open("a") as fh:
                fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
