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
    from grader.gradescope import build

    zip_path = build(root / "autograder.zip", labs=labs, gpu_points=gpu_points)
    source = root / "autograder" / "source"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(source)
    return root / "autograder", names


def enable_user_switch() -> str | None:
    """As root, do what setup.sh does (create the worker's user) and let it run this Python.

    Returns None when the user switch works, else the reason it cannot be exercised here.
    """
    if os.geteuid() != 0:
        return "not running as root: the worker cannot be switched to another user"
    if subprocess.run(["id", "-u", WORKER_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", WORKER_USER], check=True)
    # This machine's Python lives under /root (pyenv): the worker's user must be able to traverse
    # to it, as it can to /usr/bin/python3 on Gradescope's image. Traversal only (o+x), no listing.
    real = Path(os.path.realpath(sys.executable))
    for folder in [*reversed(real.parents)]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            os.chmod(folder, mode | 0o001)
    probe = subprocess.run(["runuser", "-u", WORKER_USER, "--", sys.executable, "-c", "import torch"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the user {WORKER_USER} cannot run {sys.executable}: {probe.stderr[-300:]}"
    return None


def run_autograder(root: Path, files: dict[str, str], grader_args: str = "",
                   timeout: int = 280) -> tuple[subprocess.CompletedProcess, dict]:
    """Write a submission of ``{path: text}`` and run ``run_autograder``; (process, results.json).

    ``grader_args`` go to run_autograder as ``GRADER_ARGS``: options added to the ones baked in
    at build time (``--lab 1`` grades lab 1 only of an autograder built for every lab).
    """
    sub = root / "submission"
    shutil.rmtree(sub, ignore_errors=True)
    (sub / "labs").mkdir(parents=True)
    for name, text in files.items():
        (sub / name).write_text(text)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable, GRADER_ARGS=grader_args)
    env.pop("LABS_IMPL", None)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc, json.loads((root / "results" / "results.json").read_text())
