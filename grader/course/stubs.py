"""Generate the student stubs in ``labs/`` from the reference solutions in ``solutions/``.

One source of truth (as in nbgrader): a stub is its solution with the body of every public
function and method replaced by ``raise NotImplementedError("labs/<file>: implement <name>()")``.
Signatures, docstrings, constants, imports and ``main()`` stay as they are, so a stub and its
solution have the same API by construction.

A function whose ``def`` line ends with ``# keep`` is copied unchanged (plotting glue, for
example); ``main`` is always kept, so ``python -m labs.labNN_...`` runs the student's code.

Usage::

    python -m grader.course.stubs            # rewrite labs/ from solutions/
    python -m grader.course.stubs --check    # exit 1 and name the files where labs/ is out of date
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from grader.judge.session import LABS, REPO_ROOT

KEEP_MARK = "# keep"
ALWAYS_KEEP = {"main"}


def _stub_ranges(tree: ast.Module, lines: list[str]) -> list[tuple[int, int, int, str]]:
    """(first_line, last_line, indent, name) of every function body to replace (1-based, inclusive)."""
    ranges = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                def_line = lines[child.lineno - 1]
                if child.name in ALWAYS_KEEP or child.name.startswith("__") and child.name != "__init__":
                    continue
                header_end = child.body[0].lineno - 1
                if any(KEEP_MARK in lines[i] for i in range(child.lineno - 1, header_end)) or KEEP_MARK in def_line:
                    continue
                body = child.body
                has_doc = (
                    isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                )
                first = (body[0].end_lineno + 1) if has_doc else body[0].lineno
                indent = body[0].col_offset
                ranges.append((first, child.end_lineno, indent, f"{prefix}{child.name}"))

    visit(tree, "")
    return ranges


def make_stub(solution_source: str, stub_path: str) -> str:
    """Source text of the stub for one solution file.

    Args:
        solution_source: the solution's source code.
        stub_path: the stub's path as students see it (``labs/lab01_autograd.py``), used in the
            NotImplementedError messages.

    Returns:
        The stub's source code.
    """
    lines = solution_source.splitlines(keepends=True)
    tree = ast.parse(solution_source)
    out = list(lines)
    for first, last, indent, name in sorted(_stub_ranges(tree, lines), reverse=True):
        pad = " " * indent
        repl = [
            f"{pad}# TODO: your code here\n",
            f'{pad}raise NotImplementedError("{stub_path}: implement {name}()")\n',
        ]
        out[first - 1 : last] = repl
    text = "".join(out)
    return text.replace("solutions.", "labs.").replace("solutions/", "labs/")


def expected_stubs() -> dict[Path, str]:
    """{stub path: expected text} for every lab that has a solution file."""
    result = {}
    for module in LABS.values():
        solution = REPO_ROOT / "solutions" / f"{module}.py"
        if solution.is_file():
            result[REPO_ROOT / "labs" / f"{module}.py"] = make_stub(solution.read_text(), f"labs/{module}.py")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.course.stubs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that labs/ is up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_stubs().items():
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
        print(f"out of date with solutions/: {names}; run `python -m grader.course.stubs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
