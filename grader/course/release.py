"""``python -m grader release DEST``: write the student repository, and check it.

The release holds what students get: the stubs and ``QUESTIONS.md`` in ``labs/``, the public
graded tests and the grading plugin in ``grader/`` (without ``grader/hidden/`` and the
instructor tools), the ``data/`` code (no caches, no real data), ``conftest.py``, ``pytest.ini``
and ``requirements.txt``, plus three files that exist only for students, kept in ``student/`` of
the instructor repository:

* ``student/README.md`` becomes the release's ``README.md`` (set-up, the labs, working on a lab,
  grading; no solution statistics or planted bugs: those stay in the instructor README);
* ``student/Makefile`` becomes ``Makefile`` (``make grade``, ``make lab N``, ``make data``,
  ``make clean``; no instructor targets);
* ``student/gitignore`` becomes ``.gitignore`` (``.venv/``, caches, data, figures, reports).

It never holds ``solutions/``, hidden tests, the grader's own tests, benchmarks, caches or
``docs/`` (instructor material: writing a lab, grading a class, GitHub Classroom set-up).

The release check (run by the command, and by ``tests/test_release.py``):

1. no file in the release contains a function body of ``solutions/`` or a hidden test's name,
   and none is a ``grader-secret`` file or holds the grader's data secret of this environment
   (:mod:`data.secret`: the held-out data are drawn from it; it lives only in the autograder);
2. the layout (:func:`layout_problems`): the student README, Makefile and .gitignore are there
   and complete, no instructor file or wording is;
3. grading the release gives 0 points, every check saying "not implemented";
4. the release with ``solutions/`` copied over ``labs/`` gets full marks on the public tests.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from data.secret import SECRET_FILE_NAME, grader_secret
from grader import registry, scoring
from grader.judge.session import LABS, REPO_ROOT

INCLUDE = ["labs", "grader", "data", "conftest.py", "pytest.ini", "requirements.txt"]
#: The files that exist only in the release: ``student/<source>`` -> ``<name in the release>``.
STUDENT_DIR = REPO_ROOT / "student"
STUDENT_FILES = {"README.md": "README.md", "Makefile": "Makefile", "gitignore": ".gitignore"}
EXCLUDE_NAMES = {"__pycache__", ".pytest_cache", ".mplconfig", SECRET_FILE_NAME}  # the grader's data secret: autograders only
#: Folders left out by their path in the repository: the instructor tools (``grader/course/``), the
#: hidden tests, the data cache and each lab's real data (``grader/registry.py``): never shipped.
EXCLUDE_PATHS = {"grader/course", "grader/hidden", "data/cache", *(f"data/{f}" for f in registry.data_folders())}
EXCLUDE_SUFFIXES = {".pyc", ".npz", ".png", ".csv", ".json", ".tmp"}

#: Never in a release: instructor code, tests, docs, and what is generated.
FORBIDDEN = ["solutions", "tests", "bench", "docs", "student", ".ci", ".venv", *sorted(EXCLUDE_PATHS)]
#: Lines the release's .gitignore must have (a student must not commit a 6 GB .venv or the data cache).
GITIGNORE_LINES = [".venv/", "__pycache__/", ".pytest_cache/", ".mplconfig/", "data/cache/", "figures/", "grader-results.json"]
#: Targets of the student Makefile, and instructor targets it must not have.
MAKE_TARGETS = ["grade", "lab", "data", "clean"]
INSTRUCTOR_TARGETS = ["solutions", "stubs", "test", "bench"]
#: Instructor wording the student README must not contain.
INSTRUCTOR_WORDS = ["planted", "solutions/", "--solutions", "make test", "make solutions", "make stubs",
                    "grader.course.stubs", "writing-a-lab", "grading-a-class", "github-classroom", "over 20 seeds"]
#: Paths a README may name that only exist once the student has run something.
GENERATED = (".venv", "figures", "data/cache", "grader-results.json")


def _ignore(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).resolve().relative_to(REPO_ROOT).as_posix()
    return {n for n in names if n in EXCLUDE_NAMES or Path(n).suffix in EXCLUDE_SUFFIXES
            or f"{here}/{n}" in EXCLUDE_PATHS}


def write_release(dest: Path) -> Path:
    """Copy the student-facing files to ``dest`` (which must not exist or be empty).

    Raises:
        FileExistsError: ``dest`` exists and is not empty.
        FileNotFoundError: a source file of ``student/`` is missing.
    """
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty: choose a new folder for the release")
    missing = [f"student/{src}" for src in STUDENT_FILES if not (STUDENT_DIR / src).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} missing: the release's README/Makefile/.gitignore come from student/")
    dest.mkdir(parents=True, exist_ok=True)
    for name in INCLUDE:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=_ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    for src, name in STUDENT_FILES.items():
        shutil.copy2(STUDENT_DIR / src, dest / name)
    # A hash manifest of the released grader: the plugin reports any file that differs.
    files = _hash_tree(dest / "grader")
    (dest / "grader" / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=1, sort_keys=True))
    return dest


def _hash_tree(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _function_bodies(source: str) -> dict[str, str]:
    """{qualified name: normalised body} of every function with a real body (docstring dropped)."""
    bodies = {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = list(node.body)
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            if not body or all(isinstance(s, (ast.Raise, ast.Pass)) for s in body):
                continue
            text = "\n".join(ast.unparse(s) for s in body)
            bodies[node.name] = text
    return bodies


def _hidden_test_names() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "grader" / "hidden").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def leaks(dest: Path) -> list[str]:
    """Solution bodies, hidden test names or the grader's data secret found in the release (empty list: clean).

    The secret: a file named ``grader-secret``, or any file that holds the secret of this
    environment (``$GRADER_DATA_SECRET`` or the file ``$GRADER_DATA_SECRET_FILE``), where one is set.
    """
    problems = []
    solution_bodies = {}
    for sol in sorted((REPO_ROOT / "solutions").glob("lab*.py")):
        for name, body in _function_bodies(sol.read_text()).items():
            if name != "main" and len(body.splitlines()) >= 1:
                solution_bodies[(sol.name, name)] = body
    kept = set()
    for stub in (REPO_ROOT / "labs").glob("lab*.py"):  # functions marked `# keep` are meant to ship
        for name, body in _function_bodies(stub.read_text()).items():
            kept.add(body)
    hidden = _hidden_test_names()
    secret = grader_secret()
    if (dest / "solutions").exists():
        problems.append("solutions/ is in the release")
    if (dest / "grader" / "hidden").exists():
        problems.append("grader/hidden/ is in the release")
    for path in dest.rglob("*"):
        if path.name == SECRET_FILE_NAME:
            problems.append(f"{path.relative_to(dest)} is a grader data secret file (autograders only)")
        if not path.is_file():
            continue
        if secret is not None and secret in path.read_bytes():
            problems.append(f"{path.relative_to(dest)} holds the grader's data secret")
        text = path.read_text(errors="replace")
        for name in hidden:
            if name in text:
                problems.append(f"{path.relative_to(dest)} names the hidden test {name}")
        if path.suffix == ".py":
            try:
                release_bodies = set(_function_bodies(text).values())
            except SyntaxError:
                continue
            for (sol_file, func), body in solution_bodies.items():
                if body in release_bodies and body not in kept:
                    problems.append(f"{path.relative_to(dest)} contains the solution body of {sol_file}:{func}()")
    return problems


def _make_targets(makefile: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", makefile, flags=re.MULTILINE))


def _named_paths(readme: str) -> set[str]:
    """Paths a README names in `backticks`: tokens with a slash or a file suffix, no wildcards."""
    names = set()
    for token in re.findall(r"`([\w./-]+)`", readme):
        if token.startswith("-") or "NN" in token or token.startswith("."):
            continue
        if "/" in token or re.search(r"\.(py|md|txt|ini|json|cfg|toml)$", token):
            names.add(token)
    return names


def layout_problems(dest: Path) -> list[str]:
    """What the student repository in ``dest`` lacks or should not have (empty list: all good).

    Checks that the README, Makefile and .gitignore are the ones of ``student/``; the README names
    every lab file and ``labs/QUESTIONS.md``, every path it names exists, and it has no instructor
    wording (:data:`INSTRUCTOR_WORDS`); the Makefile has the targets :data:`MAKE_TARGETS` and none
    of :data:`INSTRUCTOR_TARGETS` (and, where ``make`` is installed, ``make -n lab N`` runs lab N's
    module); .gitignore has :data:`GITIGNORE_LINES`; nothing of :data:`FORBIDDEN` is there.
    """
    dest = Path(dest)
    problems = []
    for name in FORBIDDEN:
        if (dest / name).exists():
            problems.append(f"{name} is in the release (instructor material or generated)")
    required = ["README.md", "Makefile", ".gitignore", "requirements.txt", "conftest.py", "pytest.ini",
                "labs/QUESTIONS.md", "grader/MANIFEST.json", *(f"labs/{m}.py" for m in LABS.values())]
    problems += [f"{name} is missing" for name in required if not (dest / name).is_file()]
    for src, name in STUDENT_FILES.items():
        if (dest / name).is_file() and (dest / name).read_bytes() != (STUDENT_DIR / src).read_bytes():
            problems.append(f"{name} is not student/{src}")
    readme = (dest / "README.md").read_text() if (dest / "README.md").is_file() else ""
    if readme:
        for word in INSTRUCTOR_WORDS:
            if word in readme:
                problems.append(f"README.md has instructor material: {word!r} (keep it in the instructor README)")
        for needed in [*(f"labs/{m}.py" for m in LABS.values()), "labs/QUESTIONS.md", "make lab"]:
            if needed not in readme:
                problems.append(f"README.md does not mention {needed}")
        for path in sorted(_named_paths(readme)):
            if not path.startswith(GENERATED) and not (dest / path.rstrip("/")).exists():
                problems.append(f"README.md names {path}, which is not in the release")
    gitignore = (dest / ".gitignore").read_text().split() if (dest / ".gitignore").is_file() else []
    problems += [f".gitignore does not ignore {line}" for line in GITIGNORE_LINES if line not in gitignore]
    if (dest / "Makefile").is_file():
        targets = _make_targets((dest / "Makefile").read_text())
        problems += [f"Makefile has no target {t!r}" for t in MAKE_TARGETS if t not in targets]
        problems += [f"Makefile has the instructor target {t!r}" for t in INSTRUCTOR_TARGETS if t in targets]
        if shutil.which("make") and "lab" in targets:
            for lab_id, module in LABS.items():
                number = str(scoring.lab_number(lab_id))
                proc = subprocess.run(["make", "-n", "-C", str(dest), "lab", number], capture_output=True, text=True)
                if f"-m labs.{module}" not in proc.stdout:
                    problems.append(f"`make lab {number}` does not run labs.{module}: {(proc.stdout + proc.stderr)[-300:]}")
    return problems


def _grade(folder: Path, labs_dir: Path | None = None) -> dict:
    out = Path(tempfile.mkdtemp()) / "results.json"
    # Reuse this checkout's data cache so that checking never writes a cache into the release.
    from data.cache import cache_dir

    env = dict(os.environ, OMP_NUM_THREADS="1", MRI_DL_LABS_CACHE=str(cache_dir()))
    env.pop("LABS_IMPL", None)
    cmd = [sys.executable, "-m", "grader", "--json", str(out), "--device", "cpu"]
    if labs_dir is not None:
        cmd += ["--labs-dir", str(labs_dir)]
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"grading {folder} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def check_release(dest: Path) -> list[str]:
    """Run the release check on ``dest``; returns the problems found (empty list: all good)."""
    dest = Path(dest).resolve()
    problems = leaks(dest) + layout_problems(dest)
    with tempfile.TemporaryDirectory() as tmp:  # graded in a copy: the release stays as written
        copy = Path(tmp) / "release"
        shutil.copytree(dest, copy)
        stub_report = _grade(copy)
    if stub_report["score"] != 0:
        problems.append(f"the release's stubs score {stub_report['score']} instead of 0")
    for t in stub_report["tests"]:
        if t["max_score"] > 0 and "not implemented" not in t["output"]:
            problems.append(f"against the stubs, {t['name']} does not say 'not implemented': {t['output'][:200]}")
    with tempfile.TemporaryDirectory() as tmp:
        overlay = Path(tmp) / "release"
        shutil.copytree(dest, overlay)
        for sol in (REPO_ROOT / "solutions").glob("lab*.py"):
            shutil.copy2(sol, overlay / "labs" / sol.name)
        full = _grade(overlay)
        if full["score"] != full["max_score"]:
            lost = [t["name"] for t in full["tests"] if t["score"] < t["max_score"]]
            problems.append(f"with the solutions over labs/, the release scores {full['score']}/{full['max_score']}: {lost}")
    return problems


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grader release", description="Write and check the student release.")
    parser.add_argument("dest", type=Path, help="new folder for the student repository")
    parser.add_argument("--no-check", action="store_true", help="only write it, skip the release check")
    args = parser.parse_args(argv)
    try:
        dest = write_release(args.dest)
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"python -m grader release: {exc}", file=sys.stderr)
        return 2
    print(f"release written to {dest}")
    if args.no_check:
        return 0
    print("checking: no solution code or hidden test names; student README, Makefile and .gitignore; "
          "stubs score 0; solutions score full marks ...")
    problems = check_release(dest)
    for p in problems:
        print(f"  PROBLEM: {p}")
    print("release check passed" if not problems else f"release check FAILED ({len(problems)} problems)")
    return 0 if not problems else 1
