"""The grader's import layers, read from the imports themselves (``ast``; issue 20).

The layers, lowest first (a module imports only from its own layer or below)::

    registry, scoring, textsafe        leaves: the labs, the points rules, escaping
    report, judge/ingest               words; the trusted reader of student files
    judge/ (sandbox, remote, session)  the judge's side of the trust boundary
    kit, oracle/                       check helpers and each lab's answer key
    plugin, runner                     pytest hooks; the grading processes
    test_labNN_*.py, hidden/           the rubric (nothing imports it)
    course/                            instructor tooling (never shipped to students)

Rules:

* no import cycle among the grader's modules, counting imports inside functions;
* the worker (``grader/worker/``, the only code next to student code) imports nothing of the
  grader's but its own package;
* the leaves import nothing of the grader's but lower leaves;
* the judge never imports ``course``, ``plugin``, ``runner`` or ``oracle``; the kit and the oracle
  never import ``course``; only ``course`` imports ``course`` (``python -m grader`` finds a
  course command by name, so a release without ``grader/course/`` still grades);
* nothing imports a graded test file (``grader/test_*.py``, ``grader/hidden/test_*.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LEAVES = {"grader.registry": set(), "grader.scoring": set(), "grader.textsafe": set(), "grader.judge.ingest": {"grader.registry", "grader.textsafe"},
          "grader.report": {"grader.scoring", "grader.textsafe"}}
#: (importer, imported test module): rubric files used as helper libraries. Empty since issue 20's rubric
#: split; kept so that a new entry is a visible decision, never an accident.
KNOWN_DEBT: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(folders=("grader", "bench")) -> dict[str, set[str]]:
    """module -> the grader modules it imports (at any depth of the file)."""
    files = [p for folder in folders for p in sorted((REPO_ROOT / folder).rglob("*.py")) if "__pycache__" not in p.parts]
    names = {_module_name(p): p for p in files}
    grader = {n for n in names if n == "grader" or n.startswith("grader.")}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                if name.startswith("grader.worker."):  # siblings imported by path: `import wire`
                    targets += [f"grader.worker.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in grader and t not in (name, "grader")}  # the package itself is empty
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = {k: v for k, v in import_graph().items() if k.startswith("grader")}
    assert not _cycles(graph), f"import cycles in grader/: {_cycles(graph)}"


def test_the_worker_imports_only_its_own_package():
    for name, deps in import_graph().items():
        if name.startswith("grader.worker"):
            outside = {d for d in deps if not d.startswith("grader.worker")}
            assert not outside, f"{name} imports {sorted(outside)}: the worker runs next to student code"


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_leaves_and_the_judge_stay_low():
    graph = import_graph()
    for leaf, allowed in LEAVES.items():
        assert graph[leaf] <= allowed, f"{leaf} imports {sorted(graph[leaf] - allowed)}"
    judge = [n for n in graph if _in(n, "grader.judge")]
    assert {"grader.judge.remote", "grader.judge.sandbox", "grader.judge.session", "grader.judge.ingest"} <= set(judge)
    for name in judge:
        bad = {d for d in graph[name] if _in(d, "grader.course") or _in(d, "grader.oracle")
               or d in ("grader.plugin", "grader.runner", "grader.kit")}
        assert not bad, f"{name} imports {sorted(bad)}: the judge never imports the plugin, the kit, the oracle or course tools"


def test_only_course_imports_course():
    for name, deps in import_graph().items():
        if _in(name, "grader") and not _in(name, "grader.course"):
            bad = {d for d in deps if _in(d, "grader.course")}
            assert not bad, f"{name} imports {sorted(bad)}: course tools are instructor-only (not in the student release)"
    graph = import_graph()
    for name in [n for n in graph if n == "grader.kit" or _in(n, "grader.oracle")]:
        bad = {d for d in graph[name] if d in ("grader.plugin", "grader.runner")}
        assert not bad, f"{name} imports {sorted(bad)}: the kit and the oracle sit below the plugin"


def test_no_new_imports_of_graded_test_files():
    graph = import_graph()
    found = {(name, dep) for name, deps in graph.items() for dep in deps if dep.rpartition(".")[2].startswith("test_")}
    assert found <= KNOWN_DEBT, f"graded test files imported as libraries: {sorted(found - KNOWN_DEBT)}"
    assert found == KNOWN_DEBT, f"these are gone: remove them from KNOWN_DEBT: {sorted(KNOWN_DEBT - found)}"
