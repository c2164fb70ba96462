"""``python -m grader``: grade the labs and print the score table.

Runs the graded tests in ``grader/`` through pytest with the grading plugin, prints one table
per lab and one line per failed check, and writes a Gradescope ``results.json`` (default
``grader-results.json``). The exit code is 0 whatever the score; it is non-zero only when the
grader itself broke (usage error, internal error, nothing collected).

Each lab is graded in its own pytest process, so student code that kills its process
(``os._exit()``, a segfault, running out of memory) costs only the check that was running: the
remaining checks of that lab are graded in a fresh process. ``--in-process`` runs everything in
this process instead (faster by a few seconds, no crash isolation).

Examples::

    python -m grader                      # grade your labs/ (student stubs until you fill them)
    python -m grader --lab 2              # only lab 2
    python -m grader --solutions          # instructors: grade the reference solutions
    python -m grader --device cuda        # only the device-parametrised checks on the GPU
    python -m grader release DEST         # instructors: write and check the student repository
    python -m grader gradescope AG.zip    # instructors: build a Gradescope autograder
    python -m grader batch SUBS --out OUT # instructors: grade a whole class (gradebook.csv)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# ``python -m`` puts the current folder first on sys.path. As root in a folder others can write
# (a class folder, /tmp), a planted ``numpy.py`` there would be imported by the grader: only the
# repository itself may come first.
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd()) or Path(p or ".").resolve() == REPO_ROOT]

from grader import scoring  # noqa: E402  (after the sys.path clean-up; imports only the standard library)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade the mri-dl-labs labs and print the score table.",
        epilog="The exit code is 0 whatever the score; non-zero only if the grader itself failed.",
    )
    parser.add_argument("--solutions", action="store_true", help="grade solutions/ instead of labs/ (instructors)")
    parser.add_argument("--labs-dir", metavar="DIR", help="grade the labNN_*.py files in DIR")
    from grader.impl import lab_numbers

    parser.add_argument(
        "--lab", type=int, action="append", choices=lab_numbers(), metavar="N",
        help="grade lab N only (repeatable: --lab 1 --lab 2)",
    )
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all", help="devices for device checks (default all)")
    parser.add_argument(
        "--gpu-points", action="store_true",
        help="GPU checks are worth their points (a GPU assignment; refused without a GPU). "
        "Default: they are 0-point information, so the maximum is the same on every machine",
    )
    parser.add_argument("--json", default="grader-results.json", metavar="PATH", help="results.json path (default %(default)s)")
    parser.add_argument("--grader-seed", type=int, default=None, metavar="N", help="grader seed (default fixed)")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="time budget in seconds of checks without their own budget (default 60, from pytest.ini)",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, metavar="K",
        help="seed robustness: grade K times with grader seeds 1..K and report per check how often it passed",
    )
    parser.add_argument(
        "--seeds-json", default="grader-seeds.json", metavar="PATH",
        help="with --seeds: where the per-check pass counts go (default %(default)s; --json is not written)",
    )
    parser.add_argument("--in-process", action="store_true", help="one pytest run in this process (no crash isolation)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's per-test output and tracebacks")
    return parser


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line that grades what ``args`` asks for."""
    argv = [
        str(REPO_ROOT / "grader"),
        "--rootdir",
        str(REPO_ROOT),
        "-c",
        str(REPO_ROOT / "pytest.ini"),
        "--grade-json",
        args.json,
        "--device",
        args.device,
    ]
    argv += ["-v", "--tb=short"] if args.verbose else ["-q", "--tb=no", "-rN", "--no-header", "-p", "no:warnings"]
    if args.solutions:
        argv.append("--solutions")
    if args.labs_dir:
        argv += ["--labs-dir", args.labs_dir]
    if args.lab:
        argv += ["-m", " or ".join(f"lab{n:02d}" for n in sorted(set(args.lab)))]
    if args.timeout is not None:
        argv += ["--timeout", str(args.timeout)]
    if args.grader_seed is not None:
        argv += ["--grader-seed", str(args.grader_seed)]
    return argv


def _lab_files(args: argparse.Namespace) -> list[Path]:
    wanted = {f"lab{n:02d}" for n in args.lab} if args.lab else None
    files = sorted((REPO_ROOT / "grader").glob("test_lab*.py")) + sorted((REPO_ROOT / "grader" / "hidden").glob("test_lab*.py"))
    return [f for f in files if wanted is None or scoring.lab_of_test_file(f) in wanted]


def grade_seeds(args: argparse.Namespace) -> int:
    """Grade with grader seeds 1..K; print per check how many seeds it passed on.

    The per-check counts are written atomically to ``args.seeds_json`` as
    ``{"seeds": K, "checks": {name: {"passed": n, "seeds": K}}}``; ``args.json`` (the results.json
    of a single run) is left alone. Information checks (0 points) are not counted.
    """
    import copy
    import json
    import tempfile

    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="grader-seeds-") as tmp:
        for seed in range(1, args.seeds + 1):
            one = copy.copy(args)
            one.grader_seed, one.seeds, one.json = seed, None, str(Path(tmp) / f"seed{seed}.json")
            code = grade_isolated(one, quiet=True)
            if code:
                return code
            results = json.loads(Path(one.json).read_text())
            for t in results["tests"]:
                if t["max_score"] > 0:
                    counts.setdefault(t["name"], []).append(int(t["score"] >= t["max_score"]))
            passed_all = sum(1 for v in counts.values() if v[-1])
            print(f"grader seed {seed:>3}: {results['score']:g}/{results['max_score']:g} points, {passed_all}/{len(counts)} checks passed")
    print(f"\n{'passed':>8}  check (over {args.seeds} grader seeds)")
    for name, v in counts.items():
        flag = "" if sum(v) in (0, len(v)) else "   <- depends on the seed"
        print(f"{sum(v):>4}/{len(v):<3}  {name}{flag}")
    summary = {name: {"passed": sum(v), "seeds": len(v)} for name, v in counts.items()}
    out = Path(args.seeds_json).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp_out.write_text(json.dumps({"seeds": args.seeds, "checks": summary}, indent=1))
    os.replace(tmp_out, out)
    print(f"\nper-check counts written to {out}")
    return 0


#: Environment of every grading pytest process (set by the runner that starts it).
GRADING_ENV = {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "GRADER_NO_SUMMARY": "1"}


def run_pytest_subprocess(argv: list[str], quiet: bool) -> int:
    """Run ``python -m pytest *argv`` in the repository root; returns its exit code."""
    import subprocess

    env = dict(os.environ, **GRADING_ENV)
    proc = subprocess.run([sys.executable, "-m", "pytest", *argv], cwd=REPO_ROOT, env=env, text=True, capture_output=quiet)
    return proc.returncode


def grade_isolated(args: argparse.Namespace, quiet: bool = False, run_pytest=run_pytest_subprocess) -> int:
    """Grade in a pytest subprocess; if student code kills it, go on in a new one.

    All selected labs run in one child process (one torch import). When the child dies
    (``os._exit()``, a segfault, out of memory), the check that was running is failed with an
    explanation and a new child grades the checks that had not run yet.

    ``run_pytest(argv, quiet) -> exit code`` starts that child; ``python -m grader batch`` passes
    one that forks a judge which has imported torch already, so a class is graded by exactly this
    function with the same checks, seeds and crash handling.
    """
    import tempfile
    import time

    from grader.plugin import gpu_policy_line, render_report

    started = time.time()
    common = [a for a in pytest_args(args)[1:]]  # everything but the test path
    i = common.index("--grade-json")
    del common[i : i + 2]
    if not args.verbose:
        common = [a for a in common if a != "-q"]  # one progress line per test file
    files = _lab_files(args)
    if not files:
        print("python -m grader: no graded test files match --lab", file=sys.stderr)
        return 4
    done: dict[str, dict] = {}
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        for attempt in range(200):
            out = Path(tmp) / f"results-{attempt}.json"
            deselect = [f"--deselect={t['extra_data']['nodeid']}" for t in done.values()]
            # pytest's temporary folders: private to this run (never the predictable /tmp/pytest-of-USER,
            # which student code running as another user could squat).
            basetemp = ["--basetemp", str(Path(tmp) / f"basetemp-{attempt}")]
            returncode = run_pytest([*map(str, files), "--grade-json", str(out), *common, *basetemp, *deselect], quiet)
            if not out.is_file():
                if returncode in (0, 1, 5):
                    break
                print(f"python -m grader: pytest failed before any check ran (exit code {returncode})", file=sys.stderr)
                return 3
            results = scoring.load_results(out)
            extra = results.get("extra_data", extra)
            crashed = returncode not in (0, 1, 5)
            for t in results["tests"]:
                state = t["extra_data"]["state"]
                if state == "running" and crashed:
                    done[t["name"]] = scoring.crashed(t, returncode)
                elif state not in ("pending", "running"):
                    done[t["name"]] = t
            if not crashed:
                break
            if not quiet:
                print("  a check ended the grading process; the remaining checks go on in a new process")
    order: dict[str, int] = {}
    for k, f in enumerate(files):
        order.setdefault(scoring.lab_of_test_file(f), k)  # a lab's public file comes before its hidden one
    merged = sorted(done.values(), key=lambda t: order.get(scoring.lab_of(t), 99))
    results = {
        "score": round(sum(t["score"] for t in merged), 4),
        "max_score": round(sum(t["max_score"] for t in merged), 4),
        "execution_time": round(time.time() - started, 2),
        "output": f"Graded with grader seed {extra.get('grader_seed')} on {extra.get('device')}. "
        + gpu_policy_line(extra.get("gpu_checks") == "graded"),
        "tests": merged,
        "extra_data": extra,
    }
    json_path = scoring.dump_results(args.json, results)
    if quiet:
        return 0
    title = f" grade ({extra.get('graded_implementation')}, grader seed {extra.get('grader_seed')}, device {extra.get('device')}) "
    print(f"{title:=^90}")
    for line in render_report(results):
        print(line)
    times = {}
    for t in merged:
        lab = scoring.lab_of(t)
        times[lab] = times.get(lab, 0.0) + t["extra_data"].get("duration", 0.0)
    print("\nseconds spent in each lab's checks: " + ", ".join(f"{lab} {sec:.1f}" for lab, sec in times.items()))
    print(f"total {time.time() - started:.1f} s; report written to {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "release":
        from grader import release

        return release.main(argv[1:])
    if argv and argv[0] == "gradescope":
        from grader import gradescope

        return gradescope.main(argv[1:])
    if argv and argv[0] == "batch":
        from grader import batch

        return batch.main(argv[1:])
    import importlib.util

    missing = [m for m in ("torch", "numpy", "pytest") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"python -m grader: {sys.executable} has no {', '.join(missing)}, so it is not the course's .venv: "
            "run `make grade` (creates .venv the first time), or `.venv/bin/python -m grader`",
            file=sys.stderr,
        )
        return 2
    args = build_parser().parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        build_parser().error(f"--seeds {args.seeds}: give the number of grader seeds, 1 or more")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.gpu_points:
        os.environ["GRADER_GPU_POINTS"] = "1"  # read by the grading plugin in every pytest process
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    if args.seeds:
        return grade_seeds(args)
    if not args.in_process:
        return grade_isolated(args)
    import pytest

    code = pytest.main(pytest_args(args))
    # 0: all passed, 1: some checks failed -- both are a successful grading run.
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return 0
    print(f"python -m grader: the grader itself failed (pytest exit code {int(code)})", file=sys.stderr)
    return int(code) or 1


if __name__ == "__main__":
    sys.exit(main())
