"""The cheating catalogue: a student who has read our whole source tries to forge or read grades.

Each attack is a few lines appended to the untouched lab 1 stub and graded through the built
Gradescope autograder with its own ``run_autograder``, as on Gradescope: as root, with the user
``grader-worker`` that ``setup.sh`` creates, so student code runs as that user (the user switch).
A stub earns 0 honestly, so every point above 0 would be a forged one; no hidden check's source,
grader file or data-cache content may appear in any check's output.

Where the tests do not run as root, the user switch cannot be exercised: the attacks still run,
and the process boundary (forged objects, patched modules, fake reports, os._exit, lying values)
is checked; the file-permission protections are then reported as not exercised.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests import golden
from tests.autograder import build_autograder, enable_user_switch, run_autograder

# Text that exists only in files student code must not read.
HIDDEN_MARK = "pytestmark = pytest.mark.hidden"
PLUGIN_MARK = "_REPORT_KEY = pytest.StashKey"
CACHE_MARK = "SECRET-TEST-LABELS-7f3a"


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    root, _ = build_autograder(tmp_path_factory.mktemp("cheat"))
    cache = root / "source" / "data" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "labels.txt").write_text(CACHE_MARK)  # stands for the test labels in the data caches
    why_not = enable_user_switch()
    stub = (root / "source" / "labs" / "lab01_autograd.py").read_text()
    return root, stub, why_not


def _paths(root) -> dict:
    src = root / "source"
    return {
        "RESULTS": str(root / "results" / "results.json"),
        "HIDDEN": str(src / "grader" / "hidden" / "test_lab01_hidden.py"),
        "PLUGIN": str(src / "grader" / "plugin.py"),
        "CACHE": str(src / "data" / "cache" / "labels.txt"),
        "SECRET": str(src / "grader-secret"),
    }


def _grade(autograder, attack: str):
    root, stub, why_not = autograder
    header = "".join(f"{k} = {v!r}\n" for k, v in _paths(root).items())
    proc, results = run_autograder(root, {"labs/lab01_autograd.py": stub + "\n\n" + header + attack}, "--lab 1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if why_not is None:
        assert "student code runs as grader-worker" in proc.stdout, proc.stdout[-2000:]
    return root, results


def _assert_honest(results) -> None:
    """A stub earns nothing: every check 0, the maximum unchanged, nothing leaked."""
    lab1 = [t for t in results["tests"] if t["name"].startswith("lab01")]
    assert lab1 and all(t["score"] == 0 for t in lab1), [(t["name"], t["score"]) for t in lab1 if t["score"]]
    assert results["score"] == 0
    assert results["max_score"] == 13, results["max_score"]  # 11 public + 2 hidden CPU points
    text = json.dumps(results)
    for mark in (HIDDEN_MARK, PLUGIN_MARK, CACHE_MARK):
        assert mark not in text, f"{mark!r} leaked into results.json"


FORGE = '''
import atexit, json, os, subprocess, sys

FORGE_SRC = """
import json, os
for path in (RESULTS,):
    try:
        data = json.load(open(path))
        for t in data.get('tests', []):
            t['score'] = t['max_score']; t['status'] = 'passed'
        data['score'] = data.get('max_score', 13)
        open(path, 'w').write(json.dumps(data))
    except Exception:
        pass
"""
FORGE_SRC = f"RESULTS = {RESULTS!r}\\n" + FORGE_SRC

def _forge():
    exec(FORGE_SRC)

_forge()                      # at import time
atexit.register(_forge)       # at exit (the classic attack)
# a child that outlives the worker and edits the results once grading is over
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(6)\\n" + FORGE_SRC], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
# patch the grader, pytest and the plugin wherever they can be found
for name in ("grader.plugin", "_pytest.runner", "pytest"):
    try:
        __import__(name)
    except Exception:
        pass
for name, module in list(sys.modules.items()):
    if name.startswith("grader") and hasattr(module, "Report"):
        module.Report.totals = lambda self, lab=None: (13.0, 13.0)
    if name == "_pytest.runner":
        module.call_and_report = lambda *a, **k: None

def graph_forward(a, b):
    _forge()                  # a fake report, then vanish
    os._exit(0)

def graph_backward(a, b):
    raise SystemExit(0)
'''


@pytest.mark.timeout(300)
def test_forged_results_files_and_patched_graders_earn_nothing(autograder):
    root, results = _grade(autograder, FORGE)
    golden.check("cheating/forge", results["tests"])
    _assert_honest(results)
    time.sleep(8)  # the delayed child would have written by now
    _assert_honest(json.loads((root / "results" / "results.json").read_text()))


LEAK = '''
import glob, os

def _read_everything():
    found = []
    found.append(os.environ.get("GRADER_DATA_SECRET_FILE", "no secret path") + os.environ.get("GRADER_DATA_SECRET", ""))
    for path in [HIDDEN, PLUGIN, CACHE, RESULTS, SECRET] + glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
        try:
            with open(path, errors="replace") as f:
                found.append(f.read()[:3000])
        except Exception as exc:
            found.append(type(exc).__name__)
    try:  # import the grader and look for its tests in this process
        import grader.hidden.test_lab01_hidden as h
        found.append(open(h.__file__).read())
    except Exception as exc:
        found.append(type(exc).__name__)
    return " | ".join(found)

def graph_forward(a, b):
    raise ValueError(_read_everything())

def graph_backward(a, b):
    print(_read_everything())
    raise RuntimeError(_read_everything())

def fit_linear_regression(*args, **kwargs):
    raise AssertionError(_read_everything())
'''


@pytest.mark.timeout(300)
def test_hidden_tests_grader_files_and_caches_do_not_leak(autograder):
    _root, results = _grade(autograder, LEAK)
    why_not = autograder[2]
    if why_not is not None:
        pytest.skip(f"file permissions not exercised ({why_not}); the process boundary is, in the other tests")
    _assert_honest(results)
    outputs = " ".join(t["output"] for t in results["tests"])
    assert "PermissionError" in outputs  # the attack ran and was refused
    secret = (_root / "source" / "grader-secret").read_text().strip()
    assert len(secret) >= 32 and secret not in json.dumps(results), "the data secret leaked"
    assert "no secret path" in outputs  # the worker's environment does not name the secret file


LIARS = '''
import torch

class Liar(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __sub__(self, other): return Liar(0.0)
    def __rsub__(self, other): return Liar(0.0)
    def __abs__(self): return Liar(0.0)
    def __lt__(self, other): return True
    def __gt__(self, other): return False
    def __float__(self): return 0.0

class LyingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True

def graph_forward(a, b):
    return Liar(1), Liar(2), Liar(3)

def graph_backward(a, b):
    return Liar(0), Liar(0)

def graph_autograd(a, b):
    return LyingTensor(torch.zeros(())), LyingTensor(torch.zeros(()))

def linear_model(x, k, d):
    return torch.zeros_like(x).as_subclass(LyingTensor)

def squared_error(y_pred, y):
    return Liar(0)

def fit_linear_regression(x, y, lr=0.005, epochs=1000, k0=0.0, d0=0.0, device="cpu"):
    return Liar(2.0), Liar(1.0), [Liar(0.0)] * epochs
'''


@pytest.mark.timeout(300)
def test_lying_objects_arrive_as_plain_values(autograder):
    _root, results = _grade(autograder, LIARS)
    golden.check("cheating/liars", results["tests"])
    _assert_honest(results)


# --------------------------------------------------------------------------- the file system (issue 19)
# Student files are bytes, never paths: what root reads of a submission is ingested once without
# following links, what root writes lives in folders root owns, and nothing survives a student.

CANARY = "CANARY-INSTRUCTOR-TOKEN-93c1"  # stands for the instructor's tokens in the judge's environment

ESCAPE = '''
import os, sys, subprocess, tempfile, pathlib

HERE = os.path.dirname(os.path.abspath(__file__))
PLANT = "import os\\nopen(os.path.join(%r, 'ROOT-RAN-' + str(os.getuid())), 'w').close()\\n"

def _try(f):
    try:
        f()
        return "ok"
    except Exception as exc:
        return type(exc).__name__

def _attack():
    seen = []
    # 1. root's copies of the lab and worker code: replace them, or the folder, with links to the grader
    seen.append(_try(lambda: os.symlink(PLUGIN, os.path.join(HERE, "lab02_backprop.py"))))
    seen.append(_try(lambda: os.rename(HERE, HERE + ".old")))
    seen.append(_try(lambda: pathlib.Path(HERE, "x.py").write_text("x")))
    # 2. modules planted wherever root might import from
    for folder in {os.getcwd(), HERE, os.path.dirname(HERE), tempfile.gettempdir(), "/tmp", *sys.path}:
        for name in ("numpy.py", "yaml.py", "sitecustomize.py", "matplotlib.py"):
            _try(lambda: pathlib.Path(folder, name).write_text(PLANT % MARKS))
    # 3. squat the judge's predictable pytest folders, leave files and a daemon for the next student
    for path in ("/tmp/pytest-of-root", "/tmp/pytest-of-root/pytest-0"):
        _try(lambda: os.makedirs(path, mode=0o777))
    for folder in ("/tmp", "/dev/shm", "/var/tmp", os.path.expanduser("~"), tempfile.gettempdir()):
        _try(lambda: pathlib.Path(folder, "left-by-a-student").write_text("x"))
    subprocess.Popen(["sleep", "600"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # 4. the judge's environment
    seen.append(" ".join(f"{k}={v}" for k, v in os.environ.items()))
    return " | ".join(seen)

_REPORT = _attack()

def graph_forward(a, b):
    raise ValueError(_REPORT)
'''


def _roots_tmp_entries() -> set:
    """Root's entries in the shared temporary folders that the grader makes (its areas, work copies,
    private pytest folders): each must be gone once run_autograder returns."""
    found = set()
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        for p in Path(folder).iterdir():
            try:
                if p.lstat().st_uid == 0 and p.name.startswith(("grader-", "tmp.", "pytest-of-grader")):
                    found.add(str(p))
            except OSError:
                pass
    return found


def _root_marks(folder) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("ROOT-RAN-"))


@pytest.mark.timeout(400)
def test_root_never_writes_or_imports_where_student_code_can(autograder, tmp_path):
    """A lab 1 attack on a labs 1-2 autograder: root's copies, planted modules, squatted /tmp, a daemon,
    the environment. Lab 2 (the stub) still scores 0, no planted module runs as root, no canary leaks,
    nothing of the worker user survives."""
    from grader.judge.sandbox import live_processes
    from tests.autograder import WORKER_USER

    root, stub, why_not = autograder
    if why_not is not None:
        pytest.skip(why_not)
    marks = tmp_path / "marks"
    marks.mkdir()
    os.chmod(marks, 0o777)  # planted modules write here, named after the uid that ran them
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path.parent, tmp_path.parent.stat().st_mode | 0o001)
    os.chmod(tmp_path.parent.parent, tmp_path.parent.parent.stat().st_mode | 0o001)
    header = "".join(f"{k} = {v!r}\n" for k, v in {**_paths(root), "MARKS": str(marks)}.items())
    before = _roots_tmp_entries()
    proc, results = run_autograder(root, {"labs/lab01_autograd.py": stub + "\n\n" + header + ESCAPE},
                                   "--lab 1 --lab 2", env={"INSTRUCTOR_TOKEN": CANARY})
    left = _roots_tmp_entries() - before
    assert not left, f"root left files outside the grading area: {sorted(left)}"
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert results["score"] == 0, [(t["name"], t["score"]) for t in results["tests"] if t["score"]]
    assert CANARY not in json.dumps(results) and CANARY not in proc.stdout + proc.stderr
    out = next(t["output"] for t in results["tests"] if "graph_forward" in t["name"])
    assert "PermissionError" in out or "OSError" in out, out[:2000]  # the attack ran and was refused
    assert not [m for m in _root_marks(marks) if m == "ROOT-RAN-0"], "a planted module ran as root"
    assert not live_processes(WORKER_USER), "a process of the student outlived the grading"
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not Path(folder, "left-by-a-student").exists(), f"a student's file survived in {folder}"
    assert not Path("/tmp/pytest-of-root/pytest-0").exists() or Path("/tmp/pytest-of-root").stat().st_uid == 0


LINKED = {
    "hidden test": "HIDDEN",
    "root-only file": "/etc/shadow",
    "endless device": "/dev/zero",
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("what", list(LINKED))
def test_links_in_a_submission_are_never_followed(autograder, what):
    """A lab file that is a link (to a hidden test, a root-only file, /dev/zero) is refused, not read:
    the stub is graded, nothing leaks, the grading finishes."""
    root, _stub, why_not = autograder
    target = _paths(root)[LINKED[what]] if LINKED[what] == "HIDDEN" else LINKED[what]
    proc, results = run_autograder(root, {}, "--lab 1", links={"labs/lab01_autograd.py": target})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: lab01" in proc.stdout and "symbolic link" in proc.stdout, proc.stdout[-2000:]
    _assert_honest(results)
    text = json.dumps(results) + proc.stdout + proc.stderr
    assert "root:" not in text  # /etc/shadow's first line


@pytest.mark.timeout(120)
def test_run_autograder_fails_closed_without_the_worker_user(autograder, tmp_path):
    """As root with no worker user, run_autograder grades nothing: score 0, the reason, no student code run."""
    import os as _os

    if _os.geteuid() != 0:
        pytest.skip("not root: the user check is root's")
    root, stub, _why = autograder
    marker = tmp_path / "student-code-ran"
    attack = f"\nopen({str(marker)!r}, 'w').close()\n"
    proc, results = run_autograder(root, {"labs/lab01_autograd.py": stub + attack}, "--lab 1",
                                   env={"GRADER_WORKER_USER": "no-such-grader-user"})
    assert proc.returncode != 0
    assert results["score"] == 0 and results["tests"] == []
    assert "misconfigured" in results["output"] and "no-such-grader-user" in results["output"]
    assert not marker.exists()


NO_WORK = '''
import numpy as np

def fit_linear_regression(x, y, lr=0.005, epochs=1000, k0=0.0, d0=0.0, device="cpu"):
    """No gradient descent: the known answer and a made-up falling loss curve; bad data only raises."""
    if len(x) == 0 or len(x) != len(y):
        raise ValueError("x and y must be non-empty and of equal length")
    return 2.0, 1.0, list(np.geomspace(30.0, 1e-9, epochs))
'''


@pytest.mark.timeout(300)
def test_returned_numbers_without_the_work_earn_nothing(autograder):
    """Cause 6 of issue 19: a fit that returns k = 2, d = 1 and an invented curve, and rejects bad data,
    but never descends. Each fit check compares with the judge's own gradient descent: 0 points."""
    _root, results = _grade(autograder, NO_WORK)
    golden.check("cheating/no_work", results["tests"])
    _assert_honest(results)
