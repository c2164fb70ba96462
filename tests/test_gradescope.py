"""The Gradescope autograder zip, run locally against fake submission folders, and the classroom summary."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from data.secret import SECRET_FILE_NAME
from grader.course.gradescope import (BASE_IMAGE, CPU_TORCH_INDEX, VENV, build, grader_datasets, main, run_autograder_sh,
                               selected_labs, setup_sh, torch_requirements)
from grader.judge.session import LABS, REPO_ROOT
from tests.autograder import build_autograder, run_autograder

SOL1 = (REPO_ROOT / "solutions" / "lab01_autograd.py").read_text()
SOL2 = (REPO_ROOT / "solutions" / "lab02_backprop.py").read_text()


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The autograder of an assignment with labs 1 and 2."""
    root, names = build_autograder(tmp_path_factory.mktemp("ag"), labs=[1, 2])
    assert "setup.sh" in names and "run_autograder" in names
    assert not any(n.startswith("solutions/") for n in names)
    assert any(n.startswith("grader/hidden/test_lab01") for n in names), "hidden tests belong in the autograder"
    return root, names


def _lab_points(results, lab):
    tests = [t for t in results["tests"] if t["name"].startswith(lab)]
    return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)


@pytest.mark.timeout(300)
def test_run_autograder_grades_only_the_submitted_lab_files(autograder):
    root, _ = autograder
    # The submission also carries a "modified grader test" that must be ignored.
    proc, results = run_autograder(root, {"labs/lab01_autograd.py": SOL1, "grader_test_hack.py": "assert False"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lab1 = [t for t in results["tests"] if t["name"].startswith("lab01")]
    lab2 = [t for t in results["tests"] if t["name"].startswith("lab02")]
    assert sum(t["score"] for t in lab1) == sum(t["max_score"] for t in lab1) > 0
    missing = "file missing: lab02_backprop.py was not found in your submission"  # not its stub's "not implemented"
    assert sum(t["score"] for t in lab2) == 0 and all(t["output"] == missing for t in lab2 if t["max_score"])
    assert {t["name"][:5] for t in results["tests"]} == {"lab01", "lab02"}, "the assignment grades labs 1 and 2 only"
    assert results["extra_data"]["integrity"] == {"checked": True, "problems": []}
    hidden = [t for t in lab1 if "hidden" in t["extra_data"]["nodeid"]]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)
    # GPU checks are 0-point information, never a red failure on Gradescope.
    gpu = [t for t in results["tests"] if not t["extra_data"]["graded"]]
    assert gpu and all(t["max_score"] == 0 and t["status"] == "passed" for t in gpu)


@pytest.mark.timeout(300)
def test_run_autograder_accepts_top_level_files(autograder):
    root, _ = autograder
    proc, results = run_autograder(root, {"lab02_backprop.py": SOL2})
    earned2, possible2 = _lab_points(results, "lab02")
    assert earned2 == possible2 > 0, proc.stdout[-2000:]
    assert _lab_points(results, "lab01")[0] == 0  # not submitted: file missing


@pytest.mark.timeout(300)
def test_run_autograder_takes_a_renamed_file_and_names_a_missing_one(autograder):
    """Issue 21: ``lab01_autograd (1).py`` (a browser's second download) earns full marks, and the
    first line of the output says it was taken; lab 2, with no file, is named on the next line with
    the files of the submission, and each of its checks says "file missing"."""
    root, _ = autograder
    proc, results = run_autograder(root, {"lab01_autograd (1).py": SOL1, "notes.txt": "my notes"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    earned1, possible1 = _lab_points(results, "lab01")
    assert earned1 == possible1 > 0, proc.stdout[-2000:]
    assert results["output"].splitlines()[:2] == [
        "took `lab01_autograd (1).py` as labs/lab01_autograd.py",
        "lab02_backprop.py not found; your submission has: lab01_autograd (1).py, notes.txt",
    ]
    lab2 = [t for t in results["tests"] if t["name"].startswith("lab02") and t["max_score"] > 0]
    assert lab2 and all(t["output"] == "file missing: lab02_backprop.py was not found in your submission" for t in lab2)


@pytest.mark.timeout(400)
def test_one_lab_autograder_grades_that_lab_only(tmp_path):
    root, names = build_autograder(tmp_path, labs=[1])
    tests = {n for n in names if n.startswith(("grader/test_lab", "grader/hidden/test_lab"))}
    assert tests and all("test_lab01_" in n for n in tests), tests
    assert not any(n.startswith("labs/lab0") and "lab01_" not in n for n in names), "other labs' stubs are not needed"
    script = (root / "source" / "run_autograder").read_text()
    assert "--lab 1 " in script and '"$WORK/labs" lab01_autograd\n' in script
    assert "--gpu-points" not in script
    proc, results = run_autograder(root, {"lab01_autograd.py": SOL1, "lab02_backprop.py": SOL2})
    assert {t["name"][:5] for t in results["tests"]} == {"lab01"}, proc.stdout[-2000:]
    graded = [t for t in results["tests"] if t["extra_data"]["graded"]]
    assert results["score"] == results["max_score"] == sum(t["max_score"] for t in graded) > 0
    assert "not implemented" not in json.dumps(results)


def test_gpu_assignment_and_lab_choice_are_baked_in(tmp_path):
    build(tmp_path / "gpu.zip", labs=[5, 4], gpu_points=True)
    with zipfile.ZipFile(tmp_path / "gpu.zip") as zf:
        script = zf.read("run_autograder").decode()
    assert "--lab 4 --lab 5 --gpu-points" in script and '"$WORK/labs" lab04_dti lab05_cnn\n' in script
    build(tmp_path / "all.zip")
    with zipfile.ZipFile(tmp_path / "all.zip") as zf:
        script = zf.read("run_autograder").decode()
        names = zf.namelist()
    assert '"$WORK/labs" ' + " ".join(LABS.values()) + "\n" in script and "--lab" not in script.split("grader.judge.ingest")[1]
    assert all(f"labs/{m}.py" in names for m in LABS.values())


def test_unknown_lab_and_existing_zip_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="--lab 9: there is no such lab"):
        selected_labs([1, 9])
    assert selected_labs([3, 1]) == ["lab01", "lab03"] and selected_labs(None) == list(LABS)
    (tmp_path / "ag.zip").write_text("old")
    assert main([str(tmp_path / "ag.zip")]) == 2
    assert "exists: remove it" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--lab", "9", str(tmp_path / "new.zip")])
    assert "invalid choice: 9" in capsys.readouterr().err


def test_torch_requirements_must_be_pinned(tmp_path):
    assert torch_requirements(REPO_ROOT / "requirements.txt")[0].startswith("torch==")
    req = tmp_path / "requirements.txt"
    req.write_text("torch>=2.0\ntorchvision==0.29.1\n")
    with pytest.raises(ValueError, match="pin torch with =="):
        torch_requirements(req)
    req.write_text("numpy\ntorch==2.14.1  # comment\n")
    with pytest.raises(ValueError, match="no torchvision line"):
        torch_requirements(req)


def _secret_member(zip_path: Path) -> tuple[str, int, list[str]]:
    """(the data secret, its recorded mode, the other members' texts) of an autograder zip."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(SECRET_FILE_NAME)
        others = [zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if n != SECRET_FILE_NAME]
        return zf.read(info).decode(), info.external_attr >> 16, others


def test_autograder_zip_holds_a_root_only_data_secret(tmp_path, capsys):
    build(tmp_path / "a.zip", labs=[1])
    build(tmp_path / "b.zip", labs=[1])
    one, mode, others = _secret_member(tmp_path / "a.zip")
    two, _, _ = _secret_member(tmp_path / "b.zip")
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
    assert len(one.strip()) == 64 and int(one, 16) and one.endswith("\n") and one != two, "a new secret per zip"
    assert not any(one.strip() in text for text in others), "the secret is in grader-secret only"
    # An instructor's secret, so that several autograders share one; a weak one is refused.
    shared = tmp_path / "shared-secret"
    shared.write_text("0123456789abcdef" * 4 + "\n")
    assert main(["--lab", "1", "--data-secret-file", str(shared), str(tmp_path / "c.zip")]) == 0
    assert _secret_member(tmp_path / "c.zip")[0] == "0123456789abcdef" * 4 + "\n"
    assert "Held-out data: drawn from the secret in" in capsys.readouterr().out
    shared.write_text("short\n")
    assert main(["--lab", "1", "--data-secret-file", str(shared), str(tmp_path / "d.zip")]) == 2
    assert "at least 32 characters" in capsys.readouterr().err and not (tmp_path / "d.zip").exists()


FAKE_PYTHON = """#!/usr/bin/env bash
# Logs what setup.sh asks of Python, as "base:" (the image's Python) or "venv:" (the virtual
# environment's); runs only the version probes, with the real Python. "-m venv DIR" makes DIR/bin/python
# a copy of this script, or fails while NEEDS_APT is set and apt-get has not run (as Ubuntu without python3-venv).
case "$0" in "$GRADER_VENV"/*) who=venv ;; *) who=base ;; esac
echo "$who: $*" >> "$LOG"
if [ "$1 $2" = "-m venv" ]; then
  if [ -n "${NEEDS_APT:-}" ] && [ ! -e "$LOG.apt" ]; then mkdir -p "${@: -1}"; exit 1; fi
  mkdir -p "${@: -1}/bin" && cp "$0" "${@: -1}/bin/python" && exit 0
fi
if [ "$1 $2" = "-m data" ]; then
  echo "data secret file: ${GRADER_DATA_SECRET_FILE:-none} $(stat -c %a "${GRADER_DATA_SECRET_FILE:-/nonexistent}" 2>&1)" >> "$LOG"
fi
if [ "$1" = -c ]; then exec "$REAL_PYTHON" "$@"; fi
if [ "$1" = - ]; then
  if [ -n "${TORCH_IMPORTABLE:-}" ]; then exec "$REAL_PYTHON" "$@"; else cat >/dev/null; exit 1; fi
fi
exit 0
"""


def _run_setup(tmp_path: Path, gpu: bool, torch_importable: bool, secret: bool = True, labs: tuple = (4,),
               needs_apt: bool = False) -> list[str]:
    root = tmp_path / f"ag-{gpu}-{torch_importable}-{secret}-{'-'.join(map(str, labs))}-{needs_apt}"
    source = root / "source"
    source.mkdir(parents=True)
    build(root / "ag.zip", labs=list(labs))
    with zipfile.ZipFile(root / "ag.zip") as zf:
        zf.extractall(source)  # zipfile ignores the recorded modes: setup.sh must make the secret root-only
    if not secret:
        (source / SECRET_FILE_NAME).unlink()
    bin_dir = root / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    # nvidia-smi lists a GPU or fails (as where the driver has none); useradd and apt-get only log.
    tools = {"nvidia-smi": "echo 'GPU 0: a GPU'" if gpu else "exit 9", "useradd": 'echo "useradd $*" >> "$LOG"',
             "apt-get": 'echo "apt-get $*" >> "$LOG"; touch "$LOG.apt"'}
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    log = root / "log"
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=str(fake), LOG=str(log), REAL_PYTHON=sys.executable,
               GRADER_VENV=str(root / "venv"), PATH=f"{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin")
    env.pop("TORCH_INDEX_URL", None)
    if torch_importable:
        env["TORCH_IMPORTABLE"] = "1"
    if needs_apt:
        env["NEEDS_APT"] = "1"
    env.pop("GRADER_DATA_SECRET", None)
    proc = subprocess.run(["bash", str(source / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    if not secret:
        assert proc.returncode != 0 and "grader-secret is missing or empty" in proc.stderr, proc.stdout + proc.stderr
        assert not any("-m data prepare" in line for line in log.read_text().splitlines())
        return []
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return log.read_text().splitlines()


def test_setup_sh_installs_cpu_torch_without_a_gpu(tmp_path):
    pins = " ".join(torch_requirements(REPO_ROOT / "requirements.txt"))
    cpu = _run_setup(tmp_path, gpu=False, torch_importable=False)
    venv = tmp_path / "ag-False-False-True-4-False" / "venv"
    # The image's Python makes the virtual environment and nothing else; pip runs in the venv only.
    assert [line for line in cpu if line.startswith("base:") and "-c " not in line] == [
        f"base: -m venv --system-site-packages {venv}"]
    assert f"venv: -m pip install {pins} --index-url {CPU_TORCH_INDEX}" in cpu
    assert any(line.startswith("venv: -m pip install -r ") for line in cpu)
    # A lab 4 autograder prepares lab 4's dataset only, not MNIST or lab 5's subset.
    assert [line for line in cpu if "-m data" in line] == ["venv: -m data prepare grader --datasets dti"]
    # The held-out data are drawn from the zip's secret, made root-only (600) before data prepare reads it.
    secret_file = venv.parent / "source" / SECRET_FILE_NAME
    assert f"data secret file: {secret_file} 600" in cpu
    _run_setup(tmp_path, gpu=False, torch_importable=True, secret=False)  # no secret: setup.sh stops
    gpu = _run_setup(tmp_path, gpu=True, torch_importable=False)
    assert f"venv: -m pip install {pins}" in gpu and not any("--index-url" in line for line in gpu)
    # The pinned torch is already installed (this venv has it): setup.sh keeps it.
    kept = _run_setup(tmp_path, gpu=False, torch_importable=True)
    assert not any(line.startswith(f"venv: -m pip install {pins}") for line in kept)
    assert any(line.startswith("venv: -m pip install -r ") for line in kept)


def test_setup_sh_installs_python3_venv_where_the_image_lacks_it_and_labs_1_2_prepare_no_data(tmp_path):
    log = _run_setup(tmp_path, gpu=False, torch_importable=True, labs=(1, 2), needs_apt=True)
    venv_calls = [line for line in log if " -m venv " in line]
    assert len(venv_calls) == 2 and "apt-get install -y python3-venv" in log, log
    assert not any("-m data" in line for line in log), "labs 1 and 2 use no dataset"
    assert any(line.startswith("venv: -m pip install -r ") for line in log)


@pytest.mark.parametrize("labs, datasets", [([1], []), ([2], []), ([3], ["mnist"]), ([4], ["dti"]), ([5], ["recon"]),
                                            ([4, 5], ["dti", "recon"]), (None, ["mnist", "dti", "recon"])])
def test_each_autograder_prepares_only_its_labs_data(labs, datasets):
    from data.__main__ import GRADER_DATASETS

    lab_ids = selected_labs(labs)
    assert grader_datasets(lab_ids) == datasets
    script = setup_sh(REPO_ROOT / "requirements.txt", lab_ids)
    prepare = [line for line in script.splitlines() if "-m data" in line]
    assert prepare == ([f'OMP_NUM_THREADS=1 "$PY" -m data prepare grader --datasets {" ".join(datasets)}'] if datasets else [])
    assert set(grader_datasets(list(LABS))) == set(GRADER_DATASETS), "every dataset prepare grader knows is some lab's"


def test_both_scripts_are_valid_bash_and_run_the_virtual_environments_python(tmp_path):
    scripts = {"setup.sh": setup_sh(REPO_ROOT / "requirements.txt", ["lab04"]),
               "run_autograder": run_autograder_sh(["lab04"])}
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
        proc = subprocess.run(["bash", "-n", str(tmp_path / name)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "@" not in "".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).replace(
            "$@", "").replace("[@]", ""), f"{name}: a placeholder left"
    assert f'PYTHON="${{PYTHON:-${{GRADER_VENV:-{VENV}}}/bin/python}}"' in scripts["run_autograder"]
    assert f'VENV="${{GRADER_VENV:-{VENV}}}"' in scripts["setup.sh"] and BASE_IMAGE in scripts["setup.sh"]
    assert " pip install" not in scripts["setup.sh"].replace('"$PY" -m pip install', ""), "pip only in the venv"


def test_run_autograder_fails_closed_without_the_virtual_environment(tmp_path):
    (tmp_path / "source").mkdir()
    script = tmp_path / "source" / "run_autograder"
    script.write_text(run_autograder_sh(["lab01"]))
    env = dict(os.environ, AUTOGRADER_ROOT=str(tmp_path), GRADER_VENV=str(tmp_path / "no-venv"))
    env.pop("PYTHON", None)
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert proc.returncode == 1 and results["score"] == 0
    assert f"{tmp_path / 'no-venv'}/bin/python does not run: setup.sh makes it" in results["output"]


def test_the_code_parses_as_python_3_10():
    """Gradescope's Ubuntu 22.04 runs Python 3.10; the grader is tested on 3.11. Every Python file
    of the project must at least parse as 3.10: ``ast``'s ``feature_version`` refuses ``except*``,
    and the two other 3.11 forms (``a[*b]``, ``*args: *Ts``) and the 3.11 standard-library names
    most likely to slip in are looked for here. Behaviour under 3.10 is not checked (no 3.10 here)."""
    import ast

    new_in_311 = {  # module -> names new in 3.11 ("": builtins; a method name anywhere)
        "typing": {"Self", "LiteralString", "Never", "assert_never", "assert_type", "reveal_type", "Required",
                   "NotRequired", "TypeVarTuple", "Unpack", "dataclass_transform"},
        "enum": {"StrEnum", "ReprEnum"}, "datetime": {"UTC"}, "hashlib": {"file_digest"}, "contextlib": {"chdir"},
        "asyncio": {"TaskGroup", "Runner"}, "math": {"cbrt", "exp2"}, "operator": {"call"},
        "inspect": {"getmembers_static"}, "": {"ExceptionGroup", "BaseExceptionGroup"},
    }
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(files) > 50
    problems = []
    for rel in files:
        tree = ast.parse((REPO_ROOT / rel).read_text(), rel, feature_version=(3, 10))  # SyntaxError: fails here
        for node in ast.walk(tree):
            found = []
            if isinstance(node, ast.Subscript) and any(isinstance(n, ast.Starred) for n in (
                    node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice])):
                found.append("a[*b]")
            elif isinstance(node, ast.arg) and isinstance(node.annotation, ast.Starred):
                found.append("*args: *Ts")
            elif isinstance(node, ast.Import):
                found += [a.name for a in node.names if a.name == "tomllib"]
            elif isinstance(node, ast.ImportFrom):
                found += [f"{node.module}.{a.name}" for a in node.names if a.name in new_in_311.get(node.module, ())]
                found += [node.module] if node.module == "tomllib" else []
            elif isinstance(node, ast.Attribute):
                module = node.value.id if isinstance(node.value, ast.Name) else None
                if node.attr in new_in_311.get(module, ()) or node.attr == "add_note":
                    found.append(f"{module or '...'}.{node.attr}")
            elif isinstance(node, ast.Name) and node.id in new_in_311[""]:
                found.append(node.id)
            problems += [f"{rel}:{node.lineno}: {what} is Python 3.11" for what in found]
    assert not problems, "\n".join(problems)


def _classroom(tmp_path, results):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", str(path)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_classroom_summary(tmp_path):
    results = {
        "score": 3.0, "max_score": 5.0,
        "tests": [
            {"name": "lab01: test_a", "score": 3.0, "max_score": 3.0, "output": "", "visibility": "visible"},
            {"name": "lab01: test_b", "score": 0.0, "max_score": 2.0, "output": "de/db is off", "visibility": "visible"},
            {"name": "lab01: test_gpu", "score": 0.0, "max_score": 0.0, "status": "passed", "visibility": "visible",
             "output": "GPU check, information only, 0 points (1 point in a GPU assignment): not run here (no GPU)",
             "extra_data": {"graded": False, "state": "not run"}},
        ],
    }
    out = _classroom(tmp_path, results)
    assert "| lab01 | 3 | 5 |" in out and "de/db is off" in out
    assert "test_gpu" not in out
    assert out.strip().endswith("Points 3/5")


def test_classroom_summary_names_a_missing_lab_once(tmp_path):
    missing = "labs/lab02_backprop.py is missing: restore it from the release (the file name must stay lab02_backprop.py)"
    tests = [{"name": f"lab02: test_{i}", "score": 0.0, "max_score": 1.0, "output": missing, "visibility": "visible"}
             for i in range(13)]
    out = _classroom(tmp_path, {"score": 0.0, "max_score": 13.0, "tests": tests})
    assert out.count("is missing") == 1 and "`lab02`: all checks: " + missing in out


@pytest.mark.timeout(600)
def test_the_autograder_grades_on_the_data_its_secret_draws(tmp_path):
    """run_autograder hands the judge the zip's grader-secret (as a file path, never the text): lab 4's
    test subject is drawn from it (only a secret cache is made), and the solution still earns full marks."""
    root, _names = build_autograder(tmp_path, labs=[4])
    script = (root / "source" / "run_autograder").read_text()
    assert 'export GRADER_DATA_SECRET_FILE="$SRC/grader-secret"' in script
    sol4 = (REPO_ROOT / "solutions" / "lab04_dti.py").read_text()
    proc, results = run_autograder(root, {"labs/lab04_dti.py": sol4}, timeout=550)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert results["score"] == results["max_score"] > 0, [t["name"] for t in results["tests"] if t["score"] < t["max_score"]]
    made = sorted(p.name for p in (root / "source" / "data" / "cache").iterdir() if p.is_dir())
    assert made and all("secret-" in name for name in made if name.startswith(("dti", "mnist"))), made
    assert any(name.startswith("dti-secret-") for name in made), made
