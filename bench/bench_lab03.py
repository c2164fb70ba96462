"""Benchmark of lab 3: grading time and the input pipeline's cost per epoch.

1. Wall time of ``python -m grader --solutions --lab 3`` (a fresh process each time, as a
   student or the autograder runs it): median of ``--repeats`` runs (default 5).
2. Seconds per epoch of the 784-30-10 sigmoid net on 60000 images: the real full-MNIST
   training set when it is prepared (``python -m data prepare mnist``), else the 5000 offline
   digits tiled 12x, for
   (a) our in-memory pipeline: ``solutions.lab03_mnist.train`` (normalised float tensors,
       ``torch.randperm`` mini-batches), and
   (b) the classic per-sample pipeline: a Dataset that returns ``PIL.Image.fromarray(uint8)``
       through ``transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`` and a
       ``DataLoader(batch_size=64, shuffle=True, num_workers=0)``, with the same model, SGD
       and NLL loss.
   Both in one process, one thread; the ratio (b) / (a) is reported.
3. With the full set prepared: seconds for ``load_mnist("full")`` (idx files -> normalised
   tensors, torch already imported), median of 3.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_lab03.py [--repeats 5] [--epochs 2] [--skip-grading]

Prints a table and writes ``bench/results/lab03.json`` (with ``--skip-grading`` the grading
entry of the previous JSON is kept and marked as such). Timings on a shared machine vary: the
JSON records the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
RESULTS = REPO_ROOT / "bench" / "results" / "lab03.json"


def tiled_images(copies: int = 12):
    """The 5000 offline digits as uint8 (N, 28, 28) and int64 labels, tiled ``copies`` times."""
    import numpy as np

    from data.mnist import prepare_offline

    with np.load(prepare_offline()) as z:
        images = np.concatenate([z["x_train"], z["x_test"]])
        labels = np.concatenate([z["y_train"], z["y_test"]]).astype(np.int64)
    return np.tile(images, (copies, 1, 1)), np.tile(labels, copies)


def bench_images():
    """(uint8 (N, 28, 28), int64 (N,), description): full MNIST's 60000 training digits when
    prepared, else the offline digits tiled 12x."""
    import numpy as np

    from data import mnist

    if mnist.full_mnist_available():
        raw = mnist.raw_folder()
        images = mnist.read_idx(raw / "train-images-idx3-ubyte")
        labels = mnist.read_idx(raw / "train-labels-idx1-ubyte").astype(np.int64)
        return images, labels, "full MNIST training set, 60000 real digits"
    images, labels = tiled_images()
    return images, labels, "5000 offline digits x 12 (full MNIST not prepared)"


def time_full_load(repeats: int = 3) -> dict | None:
    """Seconds for ``load_mnist("full")`` (torch already imported), or None if not prepared."""
    from data import mnist

    if not mnist.full_mnist_available():
        return None
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        d = mnist.load_mnist("full")
        seconds.append(time.perf_counter() - start)
        del d
    return {"seconds": seconds, "median_s": statistics.median(seconds), "origin": mnist.full_origin()}


def time_pipelines(epochs: int) -> dict:
    """Seconds per epoch (median of ``epochs`` timed epochs after a warm-up) of (a) and (b)."""
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from data.mnist import MEAN, STD
    from solutions.lab03_mnist import build_mlp, train

    torch.set_num_threads(1)
    images, labels, description = bench_images()
    n = len(labels)

    # (a) in-memory: one vectorised conversion, then solutions' train() one epoch at a time.
    start = time.perf_counter()
    x = torch.from_numpy(images).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    y = torch.from_numpy(labels)
    prep_a = time.perf_counter() - start
    torch.manual_seed(0)
    model = build_mlp(1)
    train(model, x[:4000], y[:4000], epochs=1)  # warm-up (first SGD() imports torch._dynamo)
    a = []
    for e in range(epochs):
        start = time.perf_counter()
        train(model, x, y, epochs=1, seed=e)
        a.append(time.perf_counter() - start)

    # (b) classic per-sample PIL + torchvision transforms through a DataLoader.
    class PilMnist(Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = images, labels
            self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

    loader = DataLoader(PilMnist(images, labels), batch_size=64, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = build_mlp(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)
    loss_fn = nn.NLLLoss()

    def epoch(limit: int | None = None) -> None:
        model.train()
        for i, (xb, yb) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    epoch(limit=50)  # warm-up
    b = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        b.append(time.perf_counter() - start)
    med_a, med_b = statistics.median(a), statistics.median(b)
    return {
        "n_images": n,
        "images": description,
        "a_in_memory_s_per_epoch": a,
        "a_median_s": med_a,
        "a_prep_s": prep_a,
        "b_pil_dataloader_s_per_epoch": b,
        "b_median_s": med_b,
        "ratio_b_over_a": med_b / med_a,
        "a_us_per_sample": med_a / n * 1e6,
        "b_us_per_sample": med_b / n * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="grading runs (median reported), default 5")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per pipeline, default 2")
    parser.add_argument("--skip-grading", action="store_true", help="only the pipeline comparison")
    args = parser.parse_args(argv)

    import torch

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_before": os.getloadavg()[0],
    }
    if not args.skip_grading:
        result["grading"] = time_grading(3, repeats=args.repeats)
        g = result["grading"]
        print(f"python -m grader --solutions --lab 3: median {g['median_s']:.1f} s over {args.repeats} runs "
              f"({', '.join(f'{t:.1f}' for t in g['seconds'])} s; scores {', '.join(g['scores'])})")
    p = result["pipelines"] = time_pipelines(args.epochs)
    print(f"\nseconds per epoch, 784-30-10 sigmoid, {p['n_images']} images ({p['images']}), 1 thread:")
    print(f"  (a) in-memory tensors + torch.randperm batches:   {p['a_median_s']:.2f} s  ({p['a_us_per_sample']:.1f} us/sample)")
    print(f"  (b) PIL + ToTensor/Normalize + DataLoader(64):    {p['b_median_s']:.2f} s  ({p['b_us_per_sample']:.1f} us/sample)")
    print(f"  ratio (b) / (a): {p['ratio_b_over_a']:.1f}x")
    load = result["load_full_mnist"] = time_full_load()
    if load:
        print(f"\nload_mnist(\"full\") from data/MNIST/raw: median {load['median_s']:.2f} s "
              f"({', '.join(f'{t:.2f}' for t in load['seconds'])} s)")
    if args.skip_grading and RESULTS.is_file():
        previous = json.loads(RESULTS.read_text()).get("grading")
        if previous:
            result["grading"] = {**previous, "note": "not rerun (--skip-grading): from the previous run"}
    result["load_after"] = os.getloadavg()[0]
    print(f"\n1-min load average: {result['load_before']:.2f} before, {result['load_after']:.2f} after")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(f".{RESULTS.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, RESULTS)
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
