"""Grading runs: the options of one, the pytest command line, the child process with crash restart.

``python -m grader`` parses its command line into a :class:`GradeOptions` and calls
:func:`grade_isolated` (or :func:`grade_seeds`); ``python -m grader batch`` builds the same options
for every submission and calls the same function, with a ``run_pytest`` that forks a judge from
a slot that has imported torch already. No argv is built only to be parsed again.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader import scoring
from grader.registry import REPO_ROOT


@dataclass
class GradeOptions:
    """What one grading run grades and how (the options of ``python -m grader``).

    Attributes:
        solutions: grade ``solutions/`` instead of ``labs/``.
        labs_dir: grade the ``labNN_*.py`` files of this folder instead.
        lab: lab numbers to grade (None or empty: every lab).
        device: ``all``, ``cpu`` or ``cuda``: devices of the device-parametrised checks.
        gpu_points: GPU checks are worth their points (a GPU assignment).
        json: where results.json goes.
        grader_seed: the grader seed (None: the fixed default).
        timeout: seconds of the checks without a budget of their own (None: pytest.ini's).
        seeds: grade with grader seeds 1..K (seed robustness), or None.
        seeds_json: where those per-check counts go.
        in_process: one pytest run in this process (no crash restart).
        verbose: pytest's own output, with tracebacks.
    """

    solutions: bool = False
    labs_dir: str | None = None
    lab: list[int] | None = field(default=None)
    device: str = "all"
    gpu_points: bool = False
    json: str = "grader-results.json"
    grader_seed: int | None = None
    timeout: float | None = None
    seeds: int | None = None
    seeds_json: str = "grader-seeds.json"
    in_process: bool = False
    verbose: bool = False

    @classmethod
    def from_namespace(cls, args) -> "GradeOptions":
        """The options of a parsed ``python -m grader`` command line."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def command_line(self) -> str:
        """The ``python -m grader ...`` command that grades the same (for logs)."""
        argv = ["python -m grader"]
        if self.solutions:
            argv.append("--solutions")
        if self.labs_dir:
            argv += ["--labs-dir", self.labs_dir]
        argv += ["--json", self.json]
        argv += [a for n in self.lab or [] for a in ("--lab", str(n))]
        if self.grader_seed is not None:
            argv += ["--grader-seed", str(self.grader_seed)]
        if self.timeout is not None:
            argv += ["--timeout", str(self.timeout)]
        return " ".join(argv)


def pytest_args(args: GradeOptions) -> list[str]:
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


def _lab_files(args: GradeOptions) -> list[Path]:
    wanted = {f"lab{n:02d}" for n in args.lab} if args.lab else None
    files = sorted((REPO_ROOT / "grader").glob("test_lab*.py")) + sorted((REPO_ROOT / "grader" / "hidden").glob("test_lab*.py"))
    return [f for f in files if wanted is None or scoring.lab_of_test_file(f) in wanted]


def grade_seeds(args: GradeOptions) -> int:
    """Grade with grader seeds 1..K; print per check how many seeds it passed on.

    The per-check counts are written atomically to ``args.seeds_json`` as
    ``{"seeds": K, "checks": {name: {"passed": n, "seeds": K}}}``; ``args.json`` (the results.json
    of a single run) is left alone. Information checks (0 points) are not counted.
    """
    import json
    import tempfile

    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="grader-seeds-") as tmp:
        for seed in range(1, args.seeds + 1):
            one = dataclasses.replace(args, grader_seed=seed, seeds=None, json=str(Path(tmp) / f"seed{seed}.json"))
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


def grade_isolated(args: GradeOptions, quiet: bool = False, run_pytest=run_pytest_subprocess) -> int:
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

    from grader.report import gpu_policy_line, render_report

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
    notes: list[str] | None = None  # from the first run, which has every selected lab
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
            if notes is None:
                notes = list(extra.get("submission_notes", []))
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
    extra = {**extra, "submission_notes": notes or []}
    results = {
        "score": round(sum(t["score"] for t in merged), 4),
        "max_score": round(sum(t["max_score"] for t in merged), 4),
        "execution_time": round(time.time() - started, 2),
        "output": "\n".join([*extra["submission_notes"], f"Graded with grader seed {extra.get('grader_seed')} on "
                              f"{extra.get('device')}. " + gpu_policy_line(extra.get("gpu_checks") == "graded")]),
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
