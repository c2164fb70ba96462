"""The cost of closing the file-system holes (issue 19), side by side with the commit before.

1. Start-up of one zygote (the process every worker is forked from) as the worker user: the user
   switch alone (``GRADER_SANDBOX=none``: a fresh root-owned area, allow-listed environment) and
   inside bubblewrap; and the end of a student (kill every process of the user, sweep /tmp).
2. Grading all five labs (the solutions) through the built Gradescope autograder's own
   ``run_autograder``, as root with the worker user, in a checkout of ``--before`` and in this
   tree, alternating runs, median of ``--repeats``.
3. ``python -m grader batch --worker-user`` on a small class (labs 1-2), before and after: seconds
   per submission, alternating, median.

Run as root on a quiet machine: ``.venv/bin/python bench/bench_sandbox.py [--before REV]
[--repeats 3]``; writes ``bench/results/sandbox.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

BEFORE = "de90a6f"  # the last commit before issue 19's file-system changes
USER = "grader-worker"


def zygote_starts(repeats: int) -> list[str]:
    from grader.judge import remote
    from grader.judge import sandbox

    lines = []
    for mode in ("none", "bwrap"):
        os.environ["GRADER_SANDBOX"] = mode
        sandbox.bwrap_usable.cache_clear()
        if mode == "bwrap" and not sandbox.bwrap_usable(USER):
            lines.append("zygote in bubblewrap: bubblewrap does not start here")
            continue
        starts, ends = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            z = remote.Zygote(cwd=REPO_ROOT, user=USER)
            z.wait_ready()
            starts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            z.close()
            ends.append(time.perf_counter() - t0)
        lines.append(f"zygote start as {USER}, {'bubblewrap' if mode == 'bwrap' else 'user switch alone'}: "
                     f"median {statistics.median(starts):.2f} s {[round(s, 2) for s in starts]}; "
                     f"end of student (kill, sweep, area removed): median {1000 * statistics.median(ends):.0f} ms")
    os.environ.pop("GRADER_SANDBOX", None)
    # bubblewrap's own start, as the issue measured it (a command that does nothing)
    if shutil.which("bwrap"):
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            subprocess.run(["runuser", "-u", USER, "--", "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc",
                            "/proc", "--tmpfs", "/tmp", "--unshare-net", "--die-with-parent", "true"], check=True)
            times.append(time.perf_counter() - t0)
        lines.append(f"runuser + bwrap + true: median {1000 * statistics.median(times):.0f} ms (10 runs)")
    return lines


VICTIM = "import time\nt = time.perf_counter()\ns = 0\nfor i in range(10**7):\n    s += i\nprint(time.perf_counter() - t)"


def cpu_between_slots(n_busy: int = 200) -> list[str]:
    """A classmate's CPU-bound work (10^7 Python additions, as grader-worker2) while a student of the
    other slot keeps ``n_busy`` busy processes running (as grader-worker): quiet, then without and
    with one CPU cgroup per slot user."""
    from grader.judge import sandbox

    users = (USER, USER + "2")
    for user in users:
        if subprocess.run(["id", "-u", user], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                            "/usr/sbin/nologin", user], check=True)
    if sandbox.cpu_group_base() is None:
        return ["CPU between slots: no writable CPU cgroup here"]

    def victim(group: bool) -> float:
        proc = subprocess.Popen(["runuser", "-u", users[1], "--", sys.executable, "-c", VICTIM], stdout=subprocess.PIPE,
                                text=True)
        if group:
            sandbox.cpu_group(users[1], proc.pid)
        return float(proc.communicate()[0])

    lines = [f"CPU between slots: a classmate's 10^7 additions while the other slot's student runs {n_busy} busy processes"]
    quiet = statistics.median(victim(False) for _ in range(3))
    lines.append(f"  quiet: {quiet:.2f} s")
    for group in (False, True):
        busy = subprocess.Popen(["runuser", "-u", users[0], "--", "sh", "-c",
                                 f"for i in $(seq {n_busy}); do (while :; do :; done) & done; wait"])
        time.sleep(1.0)
        if group:
            for pid in sandbox.live_processes(users[0]):  # as if they were a zygote's descendants
                sandbox.cpu_group(users[0], pid)
        took = victim(group)
        sandbox.kill_user_processes(users[0])
        busy.wait()
        lines.append(f"  {n_busy} busy, {'one CPU cgroup per slot' if group else 'no cgroups'}: {took:.2f} s "
                     f"({took / quiet:.1f}x)")
    for user in users:
        sandbox.remove_cpu_group(user)
    return lines


BEFORE_ZYGOTE = """
import os, statistics, sys, tempfile, time, pwd
from pathlib import Path
from grader.judge import remote
user = sys.argv[1]
times = []
for _ in range(int(sys.argv[2])):
    sandbox = Path(tempfile.mkdtemp())
    entry = pwd.getpwnam(user)
    os.chown(sandbox, entry.pw_uid, entry.pw_gid)
    t0 = time.perf_counter()
    z = remote.Zygote(cwd=Path.cwd(), user=user, sandbox=sandbox)
    z.wait_ready()
    times.append(time.perf_counter() - t0)
    z.close()
print(statistics.median(times), [round(t, 2) for t in times])
"""


def zygote_start_before(tree: Path, repeats: int) -> str:
    proc = subprocess.run([sys.executable, "-c", BEFORE_ZYGOTE, USER, str(repeats)], cwd=tree, capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)
    if proc.returncode:
        return f"zygote start before: failed ({proc.stderr[-300:]})"
    median, times = proc.stdout.split(" ", 1)
    return f"zygote start as {USER} before (sandbox folder of the user's, no area): median {float(median):.2f} s {times.strip()}"


def grade_plain(tree: Path, out: Path, cache: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MRI_DL_LABS_CACHE=str(cache))
    for k in ("GRADER_WORKER_USER", "LABS_IMPL", "GRADER_SANDBOX"):
        env.pop(k, None)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "--solutions", "--json", str(out), "--device", "cpu"], cwd=tree,
                   env=env, capture_output=True, check=True)
    return time.perf_counter() - t0


def checkout(rev: str, where: Path) -> Path:
    tree = where / f"tree-{rev}"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    return tree


def build_autograder(tree: Path, where: Path, cache: Path) -> Path:
    root = where / "autograder"
    zip_path = where / "ag.zip"
    subprocess.run([sys.executable, "-m", "grader", "gradescope", str(zip_path)], cwd=tree, check=True,
                   capture_output=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copytree(cache, root / "source" / "data" / "cache", dirs_exist_ok=True)
    sub = root / "submission" / "labs"
    sub.mkdir(parents=True)
    for f in sorted((REPO_ROOT / "solutions").glob("lab*.py")):
        shutil.copyfile(f, sub / f.name)
    return root


def run_autograder(root: Path) -> tuple[float, str]:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable, OMP_NUM_THREADS="1")
    for k in ("GRADER_SANDBOX", "LABS_IMPL", "MRI_DL_LABS_CACHE"):
        env.pop(k, None)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    results = json.loads((root / "results" / "results.json").read_text())
    if proc.returncode:
        raise SystemExit(f"run_autograder failed in {root}: {proc.stderr[-1000:]}")
    return seconds, f"{results['score']:g}/{results['max_score']:g}"


def run_batch(tree: Path, subs: Path, out: Path, cache: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MRI_DL_LABS_CACHE=str(cache))
    env.pop("GRADER_SANDBOX", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out), "--lab", "1",
                           "--lab", "2", "--workers", "1", "--worker-user", USER, "-q"], cwd=tree, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"batch failed in {tree}: {proc.stderr[-1000:]}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=6)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "sandbox.txt")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_sandbox.py: run as root (the worker user is root's to switch to)")
    sys.path.insert(0, str(REPO_ROOT))
    from data.cache import cache_dir
    from tests.autograder import enable_user_switch

    why = enable_user_switch()
    if why:
        raise SystemExit(why)
    lines = [f"bench_sandbox.py, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load "
             f"{os.getloadavg()[0]:.1f}"]
    lines += zygote_starts(args.repeats)
    lines += cpu_between_slots()
    cache = cache_dir()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        tmp = Path(tmp)
        before = checkout(args.before, tmp)
        try:
            trees = {"before": before, "after": REPO_ROOT}
            roots = {name: build_autograder(tree, tmp / name, cache) for name, tree in trees.items()}
            subs = tmp / "class"
            alt = (REPO_ROOT / "tests" / "alt").glob("lab0[12]_*.py")
            files = {f.name: f.read_text() for f in alt}
            for k in range(args.class_size):
                (subs / f"student{k:02d}").mkdir(parents=True)
                for name, text in files.items():
                    (subs / f"student{k:02d}" / name).write_text(text)
            runs: dict[str, dict[str, list[float]]] = {k: {"before": [], "after": []} for k in ("ag", "plain", "batch")}
            scores: dict[str, set] = {"before": set(), "after": set()}
            for _ in range(args.repeats):
                for name in ("before", "after"):
                    seconds, score = run_autograder(roots[name])
                    runs["ag"][name].append(seconds)
                    scores[name].add(score)
                    runs["plain"][name].append(grade_plain(trees[name], tmp / f"plain-{name}.json", cache))
                    runs["batch"][name].append(run_batch(trees[name], subs, tmp / f"out-{name}", cache) / args.class_size)
            titles = {
                "ag": f"all five labs (solutions) through run_autograder as root with {USER}, seconds",
                "plain": "all five labs (solutions), python -m grader --solutions, no user switch (the checks alone), seconds",
                "batch": f"batch --worker-user, {args.class_size} submissions of labs 1-2, 1 slot, seconds per submission",
            }
            for key, title in titles.items():
                lines.append(f"\n{title}, alternating, median of {args.repeats}:")
                for name in ("before", "after"):
                    rev = args.before if name == "before" else "HEAD"
                    score = f"  scores {sorted(scores[name])}" if key == "ag" else ""
                    lines.append(f"  {name:6} ({rev}): median {statistics.median(runs[key][name]):.2f} s "
                                 f"{[round(v, 2) for v in runs[key][name]]}{score}")
            med = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in runs.items()}
            sandbox_cost = (med["ag"]["after"] - med["plain"]["after"]) - (med["ag"]["before"] - med["plain"]["before"])
            lines.append(f"\nthe user-switch path's own cost, after minus before (run_autograder minus plain): "
                         f"{sandbox_cost:+.2f} s")
            lines.append(zygote_start_before(before, args.repeats))
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(before)],
                           capture_output=True)
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
