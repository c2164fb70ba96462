"""The cost of the trust boundary (issue: judge and student code in separate processes).

1. Side by side: ``python -m grader --solutions`` (all five labs) in a checkout of the commit
   before the boundary and in this one, alternating runs, median of 5 each (goal: at most 20 %
   more wall time). Both use this interpreter and the same data cache.
2. Parts: zygote start (torch imported once), worker start (fork + lab import), one small call,
   sending the 4000-image MNIST training set, a model handle's parameters.

Run on a quiet machine: ``.venv/bin/python bench/bench_boundary.py [--before REV] [--repeats 5]``;
writes ``bench/results/boundary.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import REPO_ROOT  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))

BEFORE = "37a035a"  # the last commit before the boundary


def grade_once(tree: Path, out: Path) -> tuple[float, str]:
    from data.cache import cache_dir

    env = dict(os.environ, OMP_NUM_THREADS="1", MRI_DL_LABS_CACHE=str(cache_dir()))
    env.pop("LABS_IMPL", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader", "--solutions", "--json", str(out), "--device", "cpu"],
                          cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    report = json.loads(out.read_text())
    return seconds, f"{report['score']:g}/{report['max_score']:g}"


def side_by_side(before: str, repeats: int) -> list[str]:
    """Both trees as git worktrees; the after tree without the hidden checks that are new since
    ``before`` (labs 3-5), so that both grade the same checks."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-boundary-") as tmp:
        old = Path(tmp) / "before"
        new = Path(tmp) / "after"
        for tree, rev in ((old, before), (new, "HEAD")):
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO_ROOT, check=True,
                           capture_output=True)
        added = [p for p in (new / "grader" / "hidden").glob("test_*.py") if not (old / p.relative_to(new)).exists()]
        for p in added:
            p.unlink()
        lines.append(f"(new hidden check files left out of the after run: {', '.join(p.name for p in added) or 'none'})")
        try:
            times = {"before": [], "after": []}
            scores = {"before": set(), "after": set()}
            for i in range(repeats):
                for name, tree in (("before", old), ("after", new)) if i % 2 == 0 else (("after", new), ("before", old)):
                    seconds, score = grade_once(tree, Path(tmp) / f"{name}.json")
                    times[name].append(seconds)
                    scores[name].add(score)
                    print(f"  run {i + 1} {name}: {seconds:.1f} s ({score})", flush=True)
        finally:
            for tree in (old, new):
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, capture_output=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    lines.insert(0, f"python -m grader --solutions (labs 1-5, cpu), alternating runs, median of {repeats}:")
    for k in ("before", "after"):
        lines.append(f"  {k:<6} ({before if k == 'before' else 'HEAD'}): median {med[k]:.1f} s  "
                     f"[{', '.join(f'{t:.1f}' for t in times[k])}]  scores {sorted(scores[k])}")
    lines.append(f"  cost of the boundary: {100 * (med['after'] / med['before'] - 1):+.1f} % (goal <= +20 %)")
    return lines


def parts() -> list[str]:
    import torch

    from grader.judge import session
    from grader.judge import remote

    session.set_impl_dir(session.resolve_impl("solutions"))
    lines = []
    t = time.perf_counter()
    remote.zygote().wait_ready()
    lines.append(f"zygote start (python + torch + matplotlib imported once): {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    lab = session.load_lab("lab03")
    lines.append(f"worker start (fork + import of lab 3): {1000 * (time.perf_counter() - t):.0f} ms")
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        lab.grader.probe("tensor", 1.0)
    lines.append(f"one small call (round trip): {1e6 * (time.perf_counter() - t) / n:.0f} us")
    x = torch.randn(4000, 1, 28, 28)
    t = time.perf_counter()
    for _ in range(5):
        lab.grader.probe("tensor", x)
    lines.append(f"MNIST training set (4000x1x28x28 float32, 12.5 MB) there and back: "
                 f"{1000 * (time.perf_counter() - t) / 5:.0f} ms")
    model = lab.build_mlp(5, activation="relu")
    t = time.perf_counter()
    for _ in range(20):
        lab.grader.tensors(model)
    lines.append(f"parameters of a 5x30 MLP handle: {1000 * (time.perf_counter() - t) / 20:.1f} ms")
    session.close_lab("lab03")
    remote.close_zygote()
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = parts()
    if not args.parts_only:
        out += [""] + side_by_side(args.before, args.repeats)
    text = "\n".join(out)
    print(text)
    if not args.parts_only:
        (REPO_ROOT / "bench" / "results" / "boundary.txt").write_text(text + "\n")
