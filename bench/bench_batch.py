"""Class grading speed: ``python -m grader batch`` on 60 submissions of all five labs.

The class is the generated one of ``tests/fake_class.py`` (correct, partly done, stubs, planted
bug, a hang, ``os._exit``, a syntax error, unreadable entries, near-copies, misnamed uploads,
Git clones with late commits, written answers), repeated to 60 entries, with its roster. Graded
as docs/grading-a-class.md grades a class (``--roster``, ``--deadline``, ``--similarity``), with
1 and 2 workers from an empty OUTDIR; for each run:

* wall time, and seconds per submission;
* the sum of the submissions' own check times (``duration`` of every check in their results),
  divided by the workers: the time grading would take with no per-submission overhead;
* the overhead over that (goal <= 10 %).

Then the last run once more with nothing left to grade, with and without ``--similarity``: the
time of what does not depend on the workers (finding the entries, reading the clones at the
deadline, collecting the answers, the reports), and of the similarity report, whose pairs grow
with the square of the class. The projection for a class of :data:`PROJECTED` students scales
the grading time per graded submission linearly, the reports linearly and the similarity report
quadratically; their fixed costs (a Python start, the figures) are scaled with them, so it is an
upper bound, close to the mark from 60 submissions on (a smoke run of 6 overstates the similarity).

For scale, a few submissions are also graded one by one with ``python -m grader --labs-dir``
(what a shell loop does: a new Python, torch import and zygote per submission).

Usage: ``python bench/bench_batch.py [--size 60] [--workers 1 2]``; writes bench/results/batch.txt.
A smoke run: ``python bench/bench_batch.py --size 6 --workers 1 --singles 0 --out /tmp/batch.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.fake_class import DEADLINE, make_class, make_roster  # noqa: E402

#: The class size the bench projects its measurements to.
PROJECTED = 200


def check_seconds(out: Path) -> tuple[float, list[float], int]:
    """(sum of check durations, per-submission batch seconds, graded count) of a batch OUTDIR."""
    total, per = 0.0, []
    for path in (out / "results").glob("*.json"):
        r = json.loads(path.read_text())
        if r["extra_data"]["batch"]["status"] == "unreadable":
            continue
        total += sum(t["extra_data"].get("duration", 0.0) for t in r["tests"])
        per.append(r["extra_data"]["batch"]["seconds"])
    return total, per, len(per)


def timed_batch(subs: Path, out: Path, env: dict, *flags: str) -> tuple[float, subprocess.CompletedProcess]:
    """(wall seconds, the process) of one ``python -m grader batch SUBS --out OUT FLAGS -q``."""
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out), *flags, "-q"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    return time.time() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--singles", type=int, default=4, help="submissions graded one by one for comparison")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results" / "batch.txt"))
    opts = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    lines = [f"python -m grader batch, {opts.size} generated submissions (tests/fake_class.py), labs 1-5, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        subs = Path(tmp) / "subs"
        kinds = make_class(subs, opts.size)
        roster = Path(tmp) / "roster.csv"
        make_roster(roster, kinds)
        course = ["--roster", str(roster), "--deadline", DEADLINE]
        lines.append(f"  {sum(1 for s in kinds.values() if s[1] == 'unreadable')} unreadable, "
                     f"{sum(1 for s in kinds.values() if s[1] == 'timed out')} hanging, "
                     f"{sum(1 for s in kinds.values() if s[1] == 'crashed')} crashing; "
                     f"flags {' '.join(course).replace(str(roster), 'roster.csv')} --similarity")
        measured: dict[int, tuple[float, int]] = {}
        for workers in opts.workers:
            out = Path(tmp) / f"out{workers}"
            wall, proc = timed_batch(subs, out, env, "--workers", str(workers), *course, "--similarity")
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            checks, per, graded = check_seconds(out)
            measured[workers] = (wall, graded)
            ideal = checks / workers
            line = (f"workers {workers}: wall {wall:.0f} s for {graded} graded submissions ({wall / graded:.2f} s each); "
                    f"their checks {checks:.0f} s, / {workers} = {ideal:.0f} s; overhead {100 * (wall / ideal - 1):+.1f} % "
                    f"(goal <= +10 %); per submission in its slot {sum(per) / graded:.2f} s, "
                    f"of which not in checks {(sum(per) - checks) / graded:.2f} s")
            print(line, flush=True)
            lines.append("  " + line)
        # what does not depend on the workers: the last run again, nothing left to grade
        reports = {}
        for name, extra in (("with --similarity", ["--similarity"]), ("without", [])):
            reports[name], proc = timed_batch(subs, out, env, "--workers", str(opts.workers[-1]), *course, *extra)
            if proc.returncode or "0 to grade" not in proc.stderr:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
        similarity = max(0.0, reports["with --similarity"] - reports["without"])
        line = (f"the same run again, nothing to grade (entries, clones at the deadline, answers, reports): "
                f"{reports['without']:.1f} s; similarity report {similarity:.1f} s more")
        print(line, flush=True)
        lines.append("  " + line)
        grow, projection = PROJECTED / opts.size, []
        for workers, (wall, graded) in measured.items():
            grading = max(0.0, wall - reports["with --similarity"]) / graded
            total = PROJECTED * grading + reports["without"] * grow + similarity * grow ** 2
            line = (f"projection for {PROJECTED} students, workers {workers}: {PROJECTED} x {grading:.2f} s grading per "
                    f"submission + reports {reports['without'] * grow:.0f} s (x {grow:.2f}) + similarity "
                    f"{similarity * grow ** 2:.0f} s (x {grow ** 2:.1f}, pairs grow as n^2) = {total / 60:.0f} min "
                    f"({total / 3600:.1f} h), with this class's share of hanging and crashing submissions")
            projection.append(line)
        # the shell loop, for scale: a few submissions, one process each
        picked = ["classroom-alice", "carol.zip", "Dave Smith_1234_assignsubmission_file_", "classroom-bob"][: opts.singles]
        walls, checks = 0.0, 0.0
        from grader.course.batch.discover import safe_name

        for entry in picked:
            labs = Path(tmp) / f"out{opts.workers[0]}" / "work" / safe_name(entry) / "labs"
            single = Path(tmp) / "single.json"
            started = time.time()
            subprocess.run([sys.executable, "-m", "grader", "--labs-dir", str(labs), "--json", str(single)],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
            walls += time.time() - started
            checks += sum(t["extra_data"].get("duration", 0.0) for t in json.loads(single.read_text())["tests"])
        if picked:
            line = (f"one by one (python -m grader --labs-dir, {len(picked)} submissions): {walls / len(picked):.2f} s each, "
                    f"of which not in checks {(walls - checks) / len(picked):.2f} s")
            print(line)
            lines.append("  " + line)
        for line in projection:  # at the end: what an instructor reads first
            print(line)
            lines.append("  " + line)
    out_path = Path(opts.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n")
    print(f"written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
