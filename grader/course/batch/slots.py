"""Grading submissions in *slots*: a process that has imported torch and started the student-code
zygote once, and forks a fresh judge (pytest) per submission, under a deadline."""


from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader import registry
from grader.judge.session import REPO_ROOT

DEFAULT_SUBMISSION_TIMEOUT = 3600.0
#: Imported once per slot, before judges are forked: what the checks import on first use (measured:
#: sklearn.datasets 1.2 s, torch._dynamo 1.5 s), so no submission pays for it. Not the test modules
#: or grader.plugin: pytest imports those itself, with its assertion rewriting, as in a single run.
PRELOAD = ("numpy", "pytest", "matplotlib.pyplot", "scipy.stats", "sklearn.datasets", "torch._dynamo",
           *registry.data_modules(), "grader.kit", "grader.judge.session", "grader.judge.remote")



# --------------------------------------------------------------------------- grading in slots


def grader_version() -> str:
    """Short hash of the grader's code (checks, hidden checks, plugin, worker) and configuration."""
    digest = hashlib.sha256()
    files = sorted((REPO_ROOT / "grader").rglob("*.py")) + [REPO_ROOT / "pytest.ini", REPO_ROOT / "conftest.py"]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class SubmissionTimeout(Exception):
    """The whole submission took longer than ``--submission-timeout``."""


def _fork_runner(log_path: Path, deadline: float):
    """A ``run_pytest`` for :func:`grade_isolated` that forks this (torch-importing) process."""
    import pytest

    def run(argv: list[str], quiet: bool) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the judge: a fresh pytest session, exactly as `python -m pytest argv`
            code = 3
            try:
                os.setpgid(0, 0)
                fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
                os.chdir(REPO_ROOT)
                from grader.runner import GRADING_ENV

                os.environ.update(GRADING_ENV)
                code = int(pytest.main(argv))
            except BaseException:  # noqa: BLE001 -- report anything, then leave without cleanup
                import traceback

                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.time() > deadline:
                with contextlib.suppress(Exception):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise SubmissionTimeout()
            time.sleep(0.02)

    return run


def grade_job(job: dict, runner=None) -> dict:
    """Grade one submission as ``python -m grader --labs-dir`` does; returns code and seconds.

    A job with ``pytest_argv`` instead runs that one pytest session in a forked judge (the
    project's tests grade hundreds of planted-bug variants this way, torch imported once).
    """
    if "pytest_argv" in job:
        started = time.time()
        limit = job.get("submission_timeout", DEFAULT_SUBMISSION_TIMEOUT)
        Path(job["log"]).write_text("")
        try:
            code, error = _fork_runner(Path(job["log"]), started + limit)(job["pytest_argv"], True), ""
        except SubmissionTimeout:
            code, error = -1, f"pytest took longer than {limit:g} s and was stopped"
        return {"code": code, "seconds": round(time.time() - started, 2), "error": error}
    from grader.runner import GradeOptions, grade_isolated

    options = GradeOptions(labs_dir=job["labs_dir"], json=job["json"], lab=list(job["labs"]) or None,
                           grader_seed=job.get("grader_seed"), timeout=job.get("timeout"))
    started = time.time()
    Path(job["log"]).write_text(options.command_line() + "\n")
    run = runner or _fork_runner(Path(job["log"]), started + job["submission_timeout"])
    try:
        code = grade_isolated(options, quiet=True, run_pytest=run)
        error = "" if code == 0 else f"the grader failed (exit code {code}); see the log"
    except SubmissionTimeout:
        code, error = -1, f"the submission took longer than {job['submission_timeout']:g} s in all and was stopped"
    return {"code": code, "seconds": round(time.time() - started, 2), "error": error}


def slot_main() -> int:
    """A slot: import torch and start the zygote once, then grade the jobs read from stdin.

    Protocol: one JSON job per line on stdin, one JSON reply per line on the original stdout
    (everything else this process or its judges print goes to the job's log or to stderr).
    """
    from grader.runner import GRADING_ENV

    os.environ.update(GRADING_ENV)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    import matplotlib

    matplotlib.use("Agg")
    import importlib

    import torch

    torch.set_num_threads(1)
    for module in PRELOAD:
        importlib.import_module(module)
    _precollect()
    from grader.judge import remote

    user = os.environ.get("GRADER_WORKER_USER") or None
    if user:
        os.environ.setdefault("GRADER_WORKER_LIMITS", json.dumps(WORKER_LIMITS))
    remote.zygote().wait_ready()
    # Every object so far is shared with the judges: keep it out of their garbage collections
    # (pytest runs gc.collect() twice at exit: 0.6 s over this heap, and copy-on-write of it all).
    import gc

    gc.collect()
    gc.freeze()
    replies.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            remote.zygote().wait_ready()  # a new one after a sandboxed submission (see below)
            reply = grade_job(job)
        except Exception as exc:  # noqa: BLE001 -- a broken submission must not stop the slot
            reply = {"code": 3, "seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"}
        if user:
            # The zygote ran as the worker's user too: the next student's code must not meet
            # anything this one left (processes, files, a tampered zygote). Closing it kills every
            # process of the user, removes its files in /tmp, /var/tmp, /dev/shm and the area.
            remote.close_zygote()
        replies.write(json.dumps(reply) + "\n")
    remote.close_zygote()
    return 0


def _precollect() -> None:
    """Import the graded test files once, through pytest and its assertion rewriting (a
    ``--collect-only`` session), so that each judge finds them imported: the same modules a
    judge would import, 0.7 s less per submission. Runs before the zygote starts: a collect-only
    session stops the zygote."""
    import pytest

    files = sorted((REPO_ROOT / "grader").glob("test_lab*.py")) + sorted((REPO_ROOT / "grader" / "hidden").glob("test_lab*.py"))
    saved = os.getcwd()
    try:
        os.chdir(REPO_ROOT)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            pytest.main([*map(str, files), "--collect-only", "-q", "-p", "no:cacheprovider"])
    finally:
        os.chdir(saved)


#: Resource limits of student code under --worker-user (as run_autograder sets them on Gradescope):
#: address space, CPU seconds, processes of that user, file size, no core dumps.
WORKER_LIMITS = {"as": 17179869184, "cpu": 3600, "nproc": 512, "fsize": 1073741824, "core": 0}


def worker_users(base: str, n: int) -> list[str]:
    """One user per slot (``base``, ``base2``, ...), created like setup.sh creates grader-worker.

    Raises:
        SystemExit: not root, or a user cannot run this Python (the message says what to fix).
    """
    if os.geteuid() != 0:
        raise SystemExit(
            "python -m grader batch --worker-user: switching student code to another user needs root: "
            "run the batch as root (sudo), or leave --worker-user out on a class you trust"
        )
    users = [base if k == 1 else f"{base}{k}" for k in range(1, n + 1)]
    for user in users:
        if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", user], check=True)
    from grader.judge.sandbox import check_user

    try:
        check_user(users[0])
    except SystemExit as exc:
        raise SystemExit(f"python -m grader batch --worker-user: {exc}") from None
    return users


class Slot:
    """One long-lived grading process (see :func:`slot_main`)."""

    def __init__(self, user: str | None = None) -> None:
        self.proc: subprocess.Popen | None = None
        self.user = user  # student code of this slot runs as this user (--worker-user)

    def start(self) -> None:
        from grader.runner import GRADING_ENV

        env = dict(os.environ, **GRADING_ENV)
        for name in ("GRADER_NO_SUMMARY", "LABS_IMPL"):  # --labs-dir decides
            env.pop(name, None)
        if self.user:
            env["GRADER_WORKER_USER"] = self.user
        else:
            env.pop("GRADER_WORKER_USER", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from grader.course.batch.slots import slot_main; sys.exit(slot_main())"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a grading slot failed to start (torch could not be imported?): see the error above")

    def grade(self, job: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:  # the slot itself died: never because of student code, but do not lose the batch
            self.proc.wait()
            self.proc = None
            return {"code": 3, "seconds": 0.0, "error": "the grading slot ended unexpectedly; run the batch again"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def default_workers() -> int:
    """As many slots as cores, at most one per 3 GiB of available memory (a slot with its
    workers takes about 1.5 GiB at its peak on lab 5)."""
    cores = os.cpu_count() or 1
    try:
        meminfo = Path("/proc/meminfo").read_text()
        avail_gib = int(re.search(r"MemAvailable:\s+(\d+)", meminfo).group(1)) / 2**20
    except (OSError, AttributeError):
        avail_gib = 3.0 * cores
    return max(1, min(cores, int(avail_gib // 3)))
