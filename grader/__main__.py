"""``python -m grader``: grade the labs and print the score table.

Runs the graded tests in ``grader/`` in-process through pytest with the grading plugin, prints
one table per lab and one line per failed check, and writes a Gradescope ``results.json``
(default ``grader-results.json``). The exit code is 0 whatever the score; it is non-zero only
when the grader itself broke (usage error, internal error, nothing collected).

Examples::

    python -m grader                      # grade your labs/ (student stubs until you fill them)
    python -m grader --lab 2              # only lab 2
    python -m grader --solutions          # instructors: grade the reference solutions
    python -m grader --device cuda        # only the device-parametrised checks on the GPU
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade the mri-dl-labs labs and print the score table.",
        epilog="The exit code is 0 whatever the score; non-zero only if the grader itself failed.",
    )
    parser.add_argument("--solutions", action="store_true", help="grade solutions/ instead of labs/ (instructors)")
    parser.add_argument("--labs-dir", metavar="DIR", help="grade the labNN_*.py files in DIR")
    parser.add_argument(
        "--lab", type=int, action="append", choices=range(1, 6), metavar="N", help="grade lab N only (repeatable: --lab 1 --lab 2)"
    )
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all", help="devices for device checks (default all)")
    parser.add_argument("--json", default="grader-results.json", metavar="PATH", help="results.json path (default %(default)s)")
    parser.add_argument("--grader-seed", type=int, default=None, metavar="N", help="grader seed (default fixed)")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="time budget in seconds of checks without their own budget (default 60, from pytest.ini)",
    )
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import pytest

    code = pytest.main(pytest_args(args))
    # 0: all passed, 1: some checks failed -- both are a successful grading run.
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return 0
    print(f"python -m grader: the grader itself failed (pytest exit code {int(code)})", file=sys.stderr)
    return int(code) or 1


if __name__ == "__main__":
    sys.exit(main())
