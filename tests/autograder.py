"""Build the Gradescope autograder zip and run its ``run_autograder`` locally (shared by tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

WORKER_USER = "grader-worker"


def build_autograder(root: Path, labs: list[int] | None = None, gpu_points: bool = False) -> tuple[Path, list[str]]:
    """Build the zip (for ``labs``, None: all) in ``root`` and unpack it as ``root/autograder/source``;
    (autograder root, names in the zip)."""
    from grader.course.gradescope import build

    zip_path = build(root / "autograder.zip", labs=labs, gpu_points=gpu_points)
    source = root / "autograder" / "source"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(source)
    return root / "autograder", names


_switch_ready: list = []


def enable_user_switch() -> str | None:
    """As root, do what setup.sh does (create the worker's user) and let it run this Python.

    Returns None when the user switch works, else the reason it cannot be exercised here.
    """
    if os.geteuid() == 0 and _switch_ready:
        return None
    if os.geteuid() != 0:
        return "not running as root: the worker cannot be switched to another user"
    if subprocess.run(["id", "-u", WORKER_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", WORKER_USER], check=True)
    # This machine's Python lives under /root (pyenv), and a clone may sit in a private folder
    # (mktemp -d, a home of mode 700): the worker's user must be able to pass through to the venv's
    # interpreter and to the one it links to, as it can to /usr/bin/python3 on Gradescope's image.
    # Traversal only (o+x), no listing.
    for path in (Path(os.path.abspath(sys.executable)), Path(os.path.realpath(sys.executable))):
        for folder in [*reversed(path.parents)]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                os.chmod(folder, mode | 0o001)
    from grader.judge.sandbox import check_user

    try:
        check_user(WORKER_USER)
    except SystemExit as exc:
        return str(exc)
    _switch_ready.append(True)
    return None


def run_autograder(root: Path, files: dict[str, str], grader_args: str = "",
                   timeout: int = 280, links: dict[str, str] | None = None,
                   env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Write a submission of ``{path: text}`` and run ``run_autograder``; (process, results.json).

    ``links`` adds symbolic links ``{path: target}`` to the submission (what a cloned repository
    or an unzipped upload may hold); ``env`` adds variables to run_autograder's environment.

    ``grader_args`` go to run_autograder as ``GRADER_ARGS``: options added to the ones baked in
    at build time (``--lab 1`` grades lab 1 only of an autograder built for every lab).
    """
    sub = root / "submission"
    shutil.rmtree(sub, ignore_errors=True)
    (sub / "labs").mkdir(parents=True)
    for name, text in files.items():
        (sub / name).write_text(text)
    for name, target in (links or {}).items():
        (sub / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, sub / name)
    if os.geteuid() == 0:
        why_not = enable_user_switch()  # as setup.sh does: run_autograder refuses to grade without the user
        assert why_not is None, why_not
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable, GRADER_ARGS=grader_args,
               GRADER_UNSAFE_SAME_USER="1" if os.geteuid() != 0 else "", **(env or {}))
    env.pop("LABS_IMPL", None)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc, json.loads((root / "results" / "results.json").read_text())
