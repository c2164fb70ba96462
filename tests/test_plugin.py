"""The grading plugin itself: points, report, isolation of broken or hanging student code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from grader.plugin import GPU_INFO, NO_GPU, Check, Report, render_report, seed_for_test
from grader.judge.session import REPO_ROOT
from tests.planted import grade_variant

SOL1 = (REPO_ROOT / "solutions" / "lab01_autograd.py").read_text()
SOL2 = (REPO_ROOT / "solutions" / "lab02_backprop.py").read_text()


def _grade(tmp_path, files, *args):
    impl = tmp_path / "impl"
    impl.mkdir()
    for name, text in files.items():
        (impl / name).write_text(text)
    out = tmp_path / "results.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("LABS_IMPL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--labs-dir", str(impl), "--json", str(out), "--lab", "1", "--lab", "2", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


def _lab_score(report, lab):
    tests = [t for t in report["tests"] if t["name"].startswith(lab)]
    return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)


def test_syntax_error_costs_only_that_lab(tmp_path):
    broken = SOL2.replace("def sigmoid(z: np.ndarray) -> np.ndarray:", "def sigmoid(z: np.ndarray) -> np.ndarray\n", 1)
    stdout, report = _grade(tmp_path, {"lab01_autograd.py": SOL1, "lab02_backprop.py": broken})
    earned1, possible1 = _lab_score(report, "lab01")
    earned2, possible2 = _lab_score(report, "lab02")
    assert earned1 == possible1 > 0
    assert earned2 == 0 < possible2
    line = next(l for l in stdout.splitlines() if "lab02: all checks" in l)
    assert "SyntaxError" in line and "line " in line and "lab02_backprop.py" in line


def test_missing_lab_file_is_reported(tmp_path):
    """A lab file under another name (a second download) is not graded locally: the first line of the
    report names it, and every check of the lab says "file missing" (once per lab in the report)."""
    stdout, report = _grade(tmp_path, {"lab01_autograd.py": SOL1, "lab02_backprop (1).py": SOL2})
    assert _lab_score(report, "lab02")[0] == 0
    where = str(tmp_path / "impl")
    top = f"lab02_backprop.py not found in {where}/; it has: lab01_autograd.py, lab02_backprop (1).py"
    assert report["output"].startswith(top + "\n") and report["extra_data"]["submission_notes"] == [top]
    assert top in stdout.split("lab ")[0], stdout[:2000]
    lab2 = [t for t in report["tests"] if t["name"].startswith("lab02") and t["max_score"] > 0]
    message = (f"file missing: lab02_backprop.py was not found in {where}/ "
               f"({where}/ has `lab02_backprop (1).py`: rename it to lab02_backprop.py)")
    assert lab2 and all(t["output"] == message for t in lab2)
    assert f"lab02: all checks: {message}" in stdout and stdout.count("file missing") == 1


@pytest.mark.timeout(280)
def test_hanging_exiting_and_crashing_functions_cost_only_their_checks(tmp_path):
    bad = SOL1.replace("    c = a + b\n    d = b + 1.0\n    e = c * d\n", "    while True:\n        pass\n", 1)
    bad = bad.replace(
        "    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)\n", "    import os\n    os._exit(7)\n", 1
    )
    bad = bad.replace("    return k * x + d\n", "    import sys\n    sys.exit(3)\n", 1)
    stdout, report = _grade(tmp_path, {"lab01_autograd.py": bad, "lab02_backprop.py": SOL2}, "--timeout", "3")
    by_name = {t["name"]: t for t in report["tests"]}
    # graph_backward calls the hanging graph_forward; fit_linear_regression calls linear_model.
    assert "time budget" in by_name["lab01: test_graph_forward_values"]["output"]
    assert "time budget" in by_name["lab01: test_graph_backward_matches_autograd"]["output"]
    assert "ended the worker process" in by_name["lab01: test_graph_autograd_matches"]["output"]
    assert "sys.exit(3)" in by_name["lab01: test_linear_model_and_squared_error"]["output"]
    assert by_name["lab01: test_fit_recovers_line[cpu]"]["score"] == 0
    earned2, possible2 = _lab_score(report, "lab02")
    assert earned2 == possible2 > 0
    assert "lab01 test_graph_autograd_matches [1 pt]: your code ended the worker process" in stdout


def test_report_format_and_gpu_checks(tmp_path):
    results = grade_variant({"lab01_autograd.py": SOL1}, tmp_path, "test_lab01_autograd.py")
    report = json.loads((tmp_path / "results.json").read_text())
    for key in ("score", "max_score", "execution_time", "tests", "extra_data"):
        assert key in report
    assert {"torch_version", "device", "grader_seed"} <= set(report["extra_data"])
    assert report["extra_data"]["gpu_checks"] == "information" and "information only" in report["output"]
    for t in report["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert t["status"] in ("passed", "failed") and t["visibility"] in ("visible", "after_published")
    gpu = [t for name, t in results.items() if "cuda" in name]
    assert gpu and all(not t["extra_data"]["graded"] for t in gpu)
    # 0-point information, never a failure, whatever the machine.
    assert all(t["max_score"] == 0 and t["score"] == 0 and t["status"] == "passed" for t in gpu)
    assert all(t["output"].startswith(GPU_INFO) for t in gpu)
    import torch

    if not torch.cuda.is_available():
        assert all(t["extra_data"]["state"] == "not run" and NO_GPU in t["output"] for t in gpu)
    graded = [t for t in results.values() if t["extra_data"]["graded"]]
    assert report["score"] == report["max_score"] == sum(t["max_score"] for t in graded) > 0


def _report_with_gpu_check(state: str, gpu_points: bool = False) -> dict:
    report = Report(gpu_points=gpu_points)
    report.checks["a"] = Check("a", "lab01", "test_a", 2.0, score=2.0, status="passed")
    report.checks["g"] = Check("g", "lab01", "test_g[cuda]", 3.0, status=state, graded=gpu_points,
                               output="k differs on cuda" if state == "failed" else "")
    return report.to_gradescope()


@pytest.mark.parametrize("state", ["passed", "failed", "not run"])
def test_maximum_does_not_depend_on_gpu_checks(state):
    results = _report_with_gpu_check(state)
    assert results["score"] == results["max_score"] == 2
    gpu = results["tests"][1]
    assert gpu["max_score"] == gpu["score"] == 0 and gpu["status"] == "passed"
    assert gpu["extra_data"] == {**gpu["extra_data"], "graded": False, "state": state, "points_if_graded": 3.0}
    text = "\n".join(render_report(results))
    assert "What to look at" not in text and "GPU checks (information, 0 points)" in text
    assert f"1 {state}" in text.splitlines()[1]
    if state == "failed":
        assert "lab01 test_g[cuda]: failed on the GPU: k differs on cuda" in text


def test_gpu_points_make_gpu_checks_graded():
    results = _report_with_gpu_check("failed", gpu_points=True)
    assert results["max_score"] == 5 and results["score"] == 2
    assert results["tests"][1]["status"] == "failed" and results["tests"][1]["max_score"] == 3
    assert results["extra_data"]["gpu_checks"] == "graded"


def test_gpu_points_are_refused_without_a_gpu(tmp_path):
    import torch

    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / "lab01_autograd.py").write_text(SOL1)
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "grader", "--labs-dir", str(impl), "--lab", "1", "--json", str(out), "--gpu-points"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    if torch.cuda.is_available():
        report = json.loads(out.read_text())
        gpu = [t for t in report["tests"] if "cuda" in t["name"]]
        assert gpu and all(t["extra_data"]["graded"] and t["max_score"] > 0 for t in gpu)
    else:
        assert proc.returncode != 0 and not out.exists()
        assert "--gpu-points (a GPU assignment) but this machine has no CUDA GPU" in proc.stderr
    env = dict(os.environ, GRADER_GPU_POINTS="yes")
    proc = subprocess.run(cmd[:-1], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "GRADER_GPU_POINTS='yes': set it to 1" in proc.stderr


@pytest.mark.timeout(280)
def test_seeds_write_their_own_file(tmp_path):
    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / "lab01_autograd.py").write_text(SOL1)
    results, seeds = tmp_path / "results.json", tmp_path / "seeds.json"
    results.write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--labs-dir", str(impl), "--lab", "1", "--seeds", "2",
         "--json", str(results), "--seeds-json", str(seeds)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=270,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert results.read_text() == "{}", "--seeds must not overwrite the results.json of a grading run"
    summary = json.loads(seeds.read_text())
    assert summary["seeds"] == 2 and summary["checks"]
    assert all(v == {"passed": 2, "seeds": 2} for v in summary["checks"].values())
    assert not any("cuda" in name for name in summary["checks"]), "0-point information checks are not counted"
    assert f"per-check counts written to {seeds}" in proc.stdout


def test_outside_the_venv_one_line_says_what_to_run(tmp_path):
    # A Python without torch: this venv's, with torch hidden (None in sys.modules makes it unimportable).
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    for cmd, code in (([sys.executable, "-m", "grader", "--lab", "1"], 2),
                      ([sys.executable, "-m", "pytest", "-m", "lab01", "grader"], 4)):
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, (cmd, proc.stdout, proc.stderr)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        assert len(lines) == 1 and "has no torch" in lines[0], lines
        assert "make grade" in lines[0] and ".venv/bin/python -m grader" in lines[0]
        assert "INTERNALERROR" not in proc.stderr and "Traceback" not in proc.stderr


def test_seed_is_stable_and_depends_on_grader_seed_and_test():
    assert seed_for_test(1, "a::b") == seed_for_test(1, "a::b")
    assert seed_for_test(1, "a::b") != seed_for_test(2, "a::b")
    assert seed_for_test(1, "a::b") != seed_for_test(1, "a::c")


@pytest.mark.timeout(280)
def test_global_state_nan_solution_imports_and_floods_cost_only_their_checks(tmp_path):
    lab1 = SOL1.replace(
        "    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)\n",
        "    torch.set_default_dtype(torch.float64)\n    torch.nn.functional.relu = lambda x: x\n"
        "    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)\n", 1,
    )
    lab2 = SOL2.replace('    return float(0.5 * np.sum((y - a_L) ** 2) / a_L.shape[0])', '    return float("nan")', 1)
    lab2 = lab2.replace(
        '    return np.array([np.linalg.norm(db) for _, db in backward(params, x, y)])',
        '    from solutions.lab02_backprop import bias_gradient_norms as theirs\n    return theirs(params, x, y)', 1,
    )
    lab2 = lab2.replace('    rng = np.random.default_rng(seed)\n    params = []', '    print("x" * 5_000_000)\n    rng = np.random.default_rng(seed)\n    params = []', 1)
    stdout, report = _grade(tmp_path, {"lab01_autograd.py": lab1, "lab02_backprop.py": lab2})
    by_name = {t["name"]: t for t in report["tests"]}
    assert "changed global state" in by_name["lab01: test_graph_autograd_matches"]["output"]
    assert "set_default_dtype" in by_name["lab01: test_graph_autograd_matches"]["output"]
    others1 = [t for n, t in by_name.items() if n.startswith("lab01") and "autograd_matches" not in n and t["max_score"]]
    assert all(t["score"] == t["max_score"] for t in others1), [t["name"] for t in others1 if t["score"] < t["max_score"]]
    assert "nan" in by_name["lab02: test_quadratic_cost"]["output"].lower()
    assert "must not import the reference solutions" in by_name["lab02: test_bias_gradient_norms"]["output"]
    assert by_name["lab02: test_init_params_shapes_and_seed"]["score"] == 1
    assert len(stdout) < 100_000
