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

from grader import runner  # noqa: E402  (after the sys.path clean-up; imports only the standard library and itself)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade the mri-dl-labs labs and print the score table.",
        epilog="The exit code is 0 whatever the score; non-zero only if the grader itself failed.",
    )
    parser.add_argument("--solutions", action="store_true", help="grade solutions/ instead of labs/ (instructors)")
    parser.add_argument("--labs-dir", metavar="DIR", help="grade the labNN_*.py files in DIR")
    from grader.judge.session import lab_numbers

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


#: Instructor commands: ``python -m grader NAME ...`` runs ``grader.course.NAME.main(argv)``.
COURSE_COMMANDS = ("release", "gradescope", "batch")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COURSE_COMMANDS:
        import importlib

        try:
            command = importlib.import_module(f"grader.course.{argv[0]}")
        except ModuleNotFoundError as err:
            if err.name not in ("grader.course", f"grader.course.{argv[0]}"):
                raise
            print(f"python -m grader {argv[0]}: an instructor command; this copy of the grader has no grader/course/ "
                  "(the student release leaves it out): run it in the course repository", file=sys.stderr)
            return 2
        return command.main(argv[1:])
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
    options = runner.GradeOptions.from_namespace(args)
    if options.seeds:
        return runner.grade_seeds(options)
    if not options.in_process:
        return runner.grade_isolated(options)
    import pytest

    code = pytest.main(runner.pytest_args(options))
    # 0: all passed, 1: some checks failed -- both are a successful grading run.
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return 0
    print(f"python -m grader: the grader itself failed (pytest exit code {int(code)})", file=sys.stderr)
    return int(code) or 1


if __name__ == "__main__":
    sys.exit(main())
