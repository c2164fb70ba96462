"""``python -m grader batch SUBMISSIONS --out OUTDIR``: grade a whole class.

SUBMISSIONS is a folder with one entry per student: a folder or a ``.zip`` (a GitHub Classroom
clone, an LMS download, a Gradescope export). In each entry the lab files (``labNN_*.py``) are
found at its top level, in ``labs/``, or nested up to three folders deeper (a repository clone in
a zip, an LMS folder around it). The student is named after the entry (for a Gradescope export,
after ``submission_metadata.yml``). An entry with no lab file, or a zip that cannot be read, is
listed in the gradebook as ``unreadable`` with the reason; nothing is silently dropped.

Every submission is graded exactly as ``python -m grader --labs-dir DIR`` grades it: the same
function (:func:`grader.runner.grade_isolated`), checks, grader seed, time budgets and crash
handling. Only the lab files are copied out of a submission (to ``OUTDIR/work/<student>/labs``),
never run in this process. ``--workers N`` submissions are graded at a time, each in a *slot*: a
process that has imported torch and started the student-code zygote once, and forks a fresh
judge (pytest) per submission, so torch is imported once per slot, not once per submission.

OUTDIR receives, each file written atomically:

* ``gradebook.csv``: one row per student (points per lab, total, max, status ``ok`` / ``crashed``
  / ``timed out`` / ``unreadable`` / ``grader error``, seconds, grader seed, grader version, notes);
* ``results/<student>.json``: the Gradescope results (what ``python -m grader`` writes), plus
  ``extra_data.batch`` (grader version, seed, submission hash, status);
* ``feedback/<student>.md``: the report the student sees, hidden checks marked as hidden;
* ``logs/<student>.log``: the judge's pytest output, for the instructor;
* ``summary.md`` and ``summary.png``: score distribution per lab, and per check the share of the
  class that failed it with the most common failure message;
* with ``--similarity``: ``similarity.html`` (copydetect's side-by-side report) and
  ``similarity.md`` (pairs above the threshold per lab, linked to the files).

An interrupted batch is resumed by running the same command: a student whose results were
written by the same grader version and seed from the same files is not graded again (unless
``--regrade``). ``--shard K/N`` grades every N-th student (K = 1..N) so that N machines or CI jobs
can split a class; ``--merge OUT1 OUT2 ... --out OUT`` joins their outputs into one gradebook.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader import textsafe
from grader import registry, scoring
from grader.impl import LABS, REPO_ROOT
from grader.ingest import MAX_DEPTH, MAX_LAB_BYTES, SKIP_DIRS, IngestError, read_beneath  # noqa: F401
from grader.ingest import choose as _choose
from grader.ingest import lab_of as _lab_of
from grader.ingest import scan_folder as _scan_folder
from grader.sandbox import bwrap_usable, kill_user_processes, live_processes  # noqa: F401  (used by tests and benches)

STATUSES = ("ok", "crashed", "timed out", "unreadable", "grader error")
DEFAULT_SUBMISSION_TIMEOUT = 3600.0
#: Imported once per slot, before judges are forked: what the checks import on first use (measured:
#: sklearn.datasets 1.2 s, torch._dynamo 1.5 s), so no submission pays for it. Not the test modules
#: or grader.plugin: pytest imports those itself, with its assertion rewriting, as in a single run.
PRELOAD = ("numpy", "pytest", "matplotlib.pyplot", "scipy.stats", "sklearn.datasets", "torch._dynamo",
           *registry.data_modules(), "grader.checks", "grader.impl", "grader.remote")


class Unreadable(Exception):
    """A submission entry in which no gradable lab file could be found (the message says why)."""


# --------------------------------------------------------------------------- finding submissions


@dataclass
class Entry:
    """One student's submission as found in SUBMISSIONS."""

    student: str  # file-system-safe, unique in the class
    source: Path  # the folder or zip in SUBMISSIONS
    email: str = ""
    files: dict[str, str] = field(default_factory=dict)  # lab id -> path inside the entry
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why it is unreadable; "" when it can be graded


def safe_name(name: str) -> str:
    """``name`` as a file name: letters, digits and ``._-@+`` kept, anything else ``_``."""
    name = re.sub(r"\.zip$", "", name, flags=re.I)
    name = re.sub(r"_assignsubmission_(file|onlinetext)_?$", "", name)  # Moodle's folder suffix
    cleaned = re.sub(r"[^\w.@+-]+", "_", name, flags=re.ASCII).strip("._")
    return cleaned or "student"


def _gradescope_names(root: Path) -> dict[str, tuple[str, str]]:
    """submission folder -> (name, email) from a Gradescope export's ``submission_metadata.yml``."""
    import yaml

    try:
        text = read_beneath(root, "submission_metadata.yml", limit=50_000_000).decode(errors="replace")
        data = yaml.safe_load(text) or {}
    except (IngestError, OSError, yaml.YAMLError):
        return {}
    names = {}
    for key, info in data.items() if isinstance(data, dict) else []:
        submitters = (info or {}).get(":submitters") or []
        if submitters and isinstance(submitters, list):
            people = [s for s in submitters if isinstance(s, dict)]
            name = "+".join(str(p.get(":name", "")) for p in people).strip("+")
            email = ";".join(str(p.get(":email", "")) for p in people).strip(";")
            names[str(key)] = (name or str(key), email)
    return names


def _scan_zip(zf: zipfile.ZipFile) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for info in zf.infolist():
        parts = info.filename.replace("\\", "/").split("/")
        if info.is_dir() or len(parts) - 1 > MAX_DEPTH or ".." in parts or parts[0] == "":
            continue
        if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
            continue
        lab_id = _lab_of(parts[-1])
        if lab_id:
            found.setdefault(lab_id, []).append("/".join(parts))
    return found


def discover(submissions: Path) -> list[Entry]:
    """Every entry of SUBMISSIONS, with the lab files found in it (or why none can be graded).

    Raises:
        SystemExit: SUBMISSIONS is not a folder.
    """
    if not submissions.is_dir():
        raise SystemExit(
            f"python -m grader batch: {submissions} is not a folder: give the folder that holds one "
            "folder or .zip per student (unzip an LMS or Gradescope export first)"
        )
    names = _gradescope_names(submissions)
    entries: list[Entry] = []
    used: set[str] = set()
    for path in sorted(submissions.iterdir()):
        if path.name.startswith(".") or path.name in ("__MACOSX", "submission_metadata.yml"):
            continue
        display, email = names.get(path.name, (path.name, ""))
        student = safe_name(display)
        base, k = student, 2
        while student.lower() in used:
            student, k = f"{base}-{k}", k + 1
        used.add(student.lower())
        entry = Entry(student=student, source=path, email=email)
        entries.append(entry)
        try:
            if path.is_symlink():
                raise Unreadable(f"{path.name} is a symbolic link: links are not followed, put the files themselves there")
            links: list[str] = []
            if path.is_dir():
                found = _scan_folder(path, links=links)
                for rel in links:
                    if _lab_of(rel.rsplit("/", 1)[-1]) not in found:
                        entry.notes.append(f"{rel} is a symbolic link: not followed, not graded")
            elif path.suffix.lower() == ".zip" and path.is_file():
                try:
                    with zipfile.ZipFile(path) as zf:
                        found = _scan_zip(zf)
                except (zipfile.BadZipFile, OSError) as exc:
                    raise Unreadable(f"{path.name} is not a readable zip file ({exc})") from None
            else:
                raise Unreadable(f"{path.name} is neither a folder nor a .zip: put each student's files in a folder or a zip")
            if not found and links:
                raise Unreadable(f"the lab files in {path.name} are symbolic links ({', '.join(links)}): links are "
                                 "not followed; submit the files themselves")
            if not found:
                wanted = ", ".join(f"{m}.py" for m in LABS.values())
                raise Unreadable(f"no lab file found in {path.name} (looked for {wanted} up to {MAX_DEPTH} folders deep)")
            for lab_id in sorted(found):
                rel, note = _choose(lab_id, found[lab_id])
                if rel:  # "": several renamed files could be it, none with the exact name (the note says so)
                    entry.files[lab_id] = rel
                if note:
                    entry.notes.append(note)
        except Unreadable as exc:
            entry.problem = str(exc)
    return entries


def extract(entry: Entry, labs_dir: Path) -> str:
    """Copy the entry's lab files (only those) into ``labs_dir``; return their SHA-256.

    Raises:
        Unreadable: a member of the zip cannot be read or is larger than a lab file can be.
    """
    if labs_dir.exists():
        shutil.rmtree(labs_dir)
    labs_dir.mkdir(parents=True)
    digest = hashlib.sha256()
    zf = zipfile.ZipFile(entry.source) if entry.source.is_file() and not entry.source.is_symlink() else None
    try:
        for lab_id, rel in sorted(entry.files.items()):
            try:
                if zf is not None:
                    info = zf.getinfo(rel)
                    if info.file_size > MAX_LAB_BYTES:
                        raise Unreadable(f"{rel} is {info.file_size} bytes, too large for a lab file")
                    data = zf.read(info)
                else:
                    data = read_beneath(entry.source, rel, MAX_LAB_BYTES)  # no link followed, bounded
            except IngestError as exc:
                raise Unreadable(str(exc)) from None
            except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:  # RuntimeError: encrypted zip
                raise Unreadable(f"{rel} cannot be read ({exc})") from None
            (labs_dir / f"{LABS[lab_id]}.py").write_bytes(data)
            digest.update(f"{lab_id}\0".encode() + hashlib.sha256(data).digest())
    finally:
        if zf is not None:
            zf.close()
    return digest.hexdigest()


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
    from grader import remote

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
    from grader.sandbox import check_user

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
            [sys.executable, "-c", "import sys; from grader.batch import slot_main; sys.exit(slot_main())"],
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


# --------------------------------------------------------------------------- outputs


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``path`` through a temporary file and a rename, so it is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if isinstance(text, bytes):
            tmp.write_bytes(text)
        else:
            tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


MAX_LOG_BYTES = 5_000_000  # a judge's log is a few kB; student output in it is capped by the worker


def clean_log(path: Path) -> None:
    """Rewrite a judge's log without escape sequences or control characters (:func:`textsafe.terminal`).

    The grader already strips them from what it writes there about the student's code (messages,
    captured output); this pass also catches what reached the file some other way, so that
    ``cat logs/<student>.log`` cannot drive the instructor's terminal. A log over
    :data:`MAX_LOG_BYTES` is cut there.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LOG_BYTES + 1)
    except OSError:
        return
    text = data[:MAX_LOG_BYTES].decode("utf-8", errors="replace")
    cleaned = textsafe.terminal(text) + ("\n[log cut here]\n" if len(data) > MAX_LOG_BYTES else "")
    if cleaned.encode() != data:
        write_atomic(path, cleaned)


lab_points = scoring.lab_totals  # lab id -> (points, max points)


def feedback_markdown(student: str, results: dict) -> str:
    """The report a student sees: points per lab and why each check failed (hidden ones marked).

    Names and messages are student text: escaped with :mod:`grader.textsafe` (no raw HTML).
    """
    md = textsafe.markdown
    lines = [f"# Feedback for {md(student)}", ""]
    batch = results.get("extra_data", {}).get("batch", {})
    if batch.get("status") == "unreadable":
        return "\n".join(lines + [md(f"Your submission could not be graded: {results.get('output', '')}"), ""])
    lines += [f"**{results['score']:g} / {results['max_score']:g} points**", "",
              "| lab | points | possible |", "|---|---:|---:|"]
    for lab, (got, possible) in lab_points(results).items():
        lines.append(f"| {lab} | {got:g} | {possible:g} |")
    failed = [t for t in results.get("tests", []) if t["max_score"] > 0 and t["score"] < t["max_score"]]
    if failed:
        lines += ["", "## What to look at", ""]
        for t in failed:
            hidden = " *(hidden check: shown after the grades are published)*" if t.get("visibility") != "visible" else ""
            lines.append(f"- `{t['name']}` ({t['score']:g}/{t['max_score']:g}){hidden}: {md(t['output'])}")
    else:
        lines += ["", "Every graded check passed."]
    info = [t for t in results.get("tests", []) if t["max_score"] == 0 and t.get("output")]
    if info:
        lines += ["", "## Information only (0 points)", ""] + [f"- `{t['name']}`: {md(t['output'])}" for t in info]
    lines += ["", f"Graded with grader seed {results.get('extra_data', {}).get('grader_seed')}"
              f" (grader version {batch.get('grader_version', '?')}).", ""]
    return "\n".join(lines)


GRADEBOOK_FIELDS = ["student", "email", "entry", *LABS, "total", "max", "status", "seconds",
                    "grader_seed", "grader_version", "notes"]


def load_results(out: Path) -> list[dict]:
    """Every ``results/<student>.json`` of OUTDIR, sorted by student."""
    rows = []
    for path in sorted((out / "results").glob("*.json")):
        try:
            results = json.loads(path.read_text())
            results["extra_data"]["batch"]["student"]
        except (OSError, ValueError, KeyError, TypeError):  # never drop a student: say it is damaged
            results = {"score": 0.0, "max_score": 0.0, "tests": [], "output": "damaged results file",
                       "extra_data": {"batch": {"student": path.stem, "entry": "?", "status": "grader error",
                                                "grader_version": "?", "notes": [
                                                    f"{path.name} is damaged: run the batch again to regrade it"]}}}
        rows.append(results)
    return sorted(rows, key=lambda r: r["extra_data"]["batch"]["student"].lower())


def write_gradebook(out: Path, all_results: list[dict], labs: list[str]) -> None:
    """``gradebook.csv``: one row per student, in a form spreadsheets and LMS imports read.

    Every cell goes through :func:`grader.textsafe.csv_cell`: a name, e-mail, folder name or note
    that starts like a formula (``=``, ``+``, ``-``, ``@``) is shown as text, never run.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[f for f in GRADEBOOK_FIELDS if f not in LABS or f in labs],
                            lineterminator="\n")
    writer.writeheader()
    for r in all_results:
        b = r["extra_data"]["batch"]
        points = lab_points(r)
        row = {
            "student": b["student"], "email": b.get("email", ""), "entry": b["entry"],
            "total": f"{r['score']:g}", "max": f"{r['max_score']:g}", "status": b["status"],
            "seconds": f"{b.get('seconds', 0):.1f}", "grader_seed": r["extra_data"].get("grader_seed", ""),
            "grader_version": b["grader_version"], "notes": "; ".join(b.get("notes", [])),
        }
        for lab in labs:
            row[lab] = f"{points[lab][0]:g}" if lab in points else "0"
        writer.writerow({k: textsafe.csv_cell(v) for k, v in row.items()})
    write_atomic(out / "gradebook.csv", buf.getvalue())


def _pattern(message: str) -> str:
    """A failure message with its numbers blanked, so that the same slip groups across students."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", first)[:300]


def check_stats(all_results: list[dict]) -> list[dict]:
    """Per check: how many graded students failed it, and the most common failure message."""
    stats: dict[str, dict] = {}
    for r in all_results:
        if r["extra_data"]["batch"]["status"] in ("unreadable", "grader error"):
            continue
        for t in r.get("tests", []):
            if t["max_score"] <= 0:
                continue
            s = stats.setdefault(t["name"], {"name": t["name"], "graded": 0, "failed": 0, "messages": Counter(),
                                             "examples": {}, "reasons": Counter(), "hidden": t.get("visibility") != "visible",
                                             "max_score": t["max_score"]})
            s["graded"] += 1
            if t["score"] < t["max_score"]:
                s["failed"] += 1
                key = _pattern(t.get("output", ""))
                s["messages"][key] += 1
                s["examples"].setdefault(key, t.get("output", "").strip().splitlines()[0] if t.get("output", "").strip() else "")
                s["reasons"][t.get("extra_data", {}).get("reason") or "wrong"] += 1
    # Slips first: a check failed because the function was not written yet teaches less.
    return sorted(stats.values(), key=lambda s: (-(s["failed"] - s["reasons"]["not implemented"]) / max(s["graded"], 1),
                                                 -s["failed"] / max(s["graded"], 1), s["name"]))


def write_summary(out: Path, all_results: list[dict], labs: list[str]) -> None:
    """``summary.md`` and ``summary.png``: what the class got right and wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    statuses = Counter(r["extra_data"]["batch"]["status"] for r in all_results)
    graded = [r for r in all_results if r["extra_data"]["batch"]["status"] not in ("unreadable", "grader error")]
    lines = ["# Class summary", "",
             f"{len(all_results)} submissions: " + ", ".join(f"{statuses[s]} {s}" for s in STATUSES if statuses[s]), ""]
    lines += ["## Points per lab", "", "| lab | mean | median | min | max | possible | full marks |", "|---|---:|---:|---:|---:|---:|---:|"]
    per_lab = {lab: [] for lab in labs}
    possible = {}
    for r in graded:
        for lab, (got, mx) in lab_points(r).items():
            if lab in per_lab:
                per_lab[lab].append(got)
                possible[lab] = max(possible.get(lab, 0), mx)
    for lab in labs:
        v = np.array(per_lab[lab] or [0.0])
        full = sum(1 for x in per_lab[lab] if x >= possible.get(lab, 0) > 0)
        lines.append(f"| {lab} | {v.mean():.1f} | {np.median(v):g} | {v.min():g} | {v.max():g} | "
                     f"{possible.get(lab, 0):g} | {full}/{len(per_lab[lab])} |")
    stats = check_stats(all_results)
    lines += ["", "## Checks the class failed most", "",
              "Per check: the share of graded submissions that failed it, how many of those had not implemented "
              "the function yet, and the most common message among the others (numbers blanked to group them) "
              "with the share of the failures it covers.", "",
              "| check | failed | not implemented | most common other message | share |", "|---|---:|---:|---|---:|"]
    for s in stats:
        if not s["failed"]:
            continue
        todo = s["reasons"]["not implemented"]
        others = [(m, c) for m, c in s["messages"].most_common() if not s["examples"][m].startswith("not implemented")]
        if others:
            msg, count = others[0]
            text, share = textsafe.markdown_cell(s["examples"][msg][:240]), f"{100 * count / s['failed']:.0f} %"
        else:
            text, share = "-", "-"
        hidden = " (hidden)" if s["hidden"] else ""
        lines.append(f"| `{s['name']}`{hidden} | {100 * s['failed'] / s['graded']:.0f} % ({s['failed']}/{s['graded']}) "
                     f"| {todo} | {text} | {share} |")
    passed_all = [s["name"] for s in stats if not s["failed"]]
    if passed_all:
        lines += ["", f"Passed by every graded submission: {len(passed_all)} checks."]
    unreadable = [r for r in all_results if r["extra_data"]["batch"]["status"] == "unreadable"]
    if unreadable:
        lines += ["", "## Not graded", ""]
        lines += [f"- {textsafe.markdown(r['extra_data']['batch']['student'])} "
                  f"({textsafe.markdown_code(r['extra_data']['batch']['entry'])}): {textsafe.markdown(r['output'])}"
                  for r in unreadable]
    write_atomic(out / "summary.md", "\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, len(labs) + 1, figsize=(3.2 * (len(labs) + 1) + 3, 3.6),
                             gridspec_kw={"width_ratios": [1] * len(labs) + [2.2]})
    for ax, lab in zip(axes, labs):
        mx = possible.get(lab, 1) or 1
        ax.hist(per_lab[lab], bins=np.linspace(0, mx, min(int(mx), 20) + 1), color="tab:blue", edgecolor="white")
        ax.set_title(f"{lab}: points (of {mx:g})")
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    worst = [s for s in stats if s["failed"]][:12][::-1]
    ax = axes[-1]
    ax.barh([s["name"][:48] for s in worst], [100 * s["failed"] / s["graded"] for s in worst], color="tab:red")
    ax.set_xlabel("students who failed it (%)")
    ax.set_xlim(0, 100)
    ax.set_title("checks failed most")
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{len(graded)} graded submissions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(out / "summary.png", buf.getvalue())


def write_similarity(out: Path, threshold: float) -> list[tuple]:
    """Pairwise similarity of the students' lab files with copydetect (stub text as boilerplate).

    Writes ``similarity.html`` and ``similarity.md``; returns (lab, student A, student B,
    similarity A, similarity B) of the pairs above ``threshold``. Not a verdict: a list to read.
    """
    from copydetect import CopyDetector

    work = out / "work"
    detector = CopyDetector(extensions=["py"], display_t=threshold, same_name_only=True, ignore_leaf=True,
                            autoopen=False, silent=True, out_file=str(out / "similarity.html"))
    for path in sorted(work.glob("*/labs/*.py")):
        detector.add_file(str(path))
    for module in LABS.values():
        stub = REPO_ROOT / "labs" / f"{module}.py"
        if stub.is_file():
            detector.add_file(str(stub), type="boilerplate")
    pairs = []
    if len(detector.test_files) >= 2:
        detector.run()
        for item in detector.get_copied_code_list():
            sim_a, sim_b, file_a, file_b = item[0], item[1], Path(item[2]), Path(item[3])
            lab = _lab_of(file_a.name) or file_a.stem
            pairs.append((lab, file_a.parent.parent.name, file_b.parent.parent.name, float(sim_a), float(sim_b),
                          file_a.relative_to(out).as_posix(), file_b.relative_to(out).as_posix()))
        detector.generate_html_report()
        # copydetect escapes the HTML of the code it shows, but keeps the control characters in it.
        html_report = out / "similarity.html"
        write_atomic(html_report, textsafe.terminal(html_report.read_text(encoding="utf-8", errors="replace")))
    pairs.sort(key=lambda p: (p[0], -max(p[3], p[4])))
    lines = ["# Code similarity", "",
             f"Pairs of students whose lab files share more than {threshold:.0%} of their code after the stub text is "
             "removed (copydetect, MOSS-style winnowing). Not a verdict: short labs have few ways to be written, "
             "so read the files side by side in similarity.html before concluding anything.", ""]
    if not pairs:
        lines.append("No pair above the threshold.")
    for lab in sorted({p[0] for p in pairs}):
        lines += [f"## {lab}", "", "| student A | student B | A in B | B in A |", "|---|---|---:|---:|"]
        for p in pairs:
            if p[0] == lab:
                # Folder names are safe_name()s (letters, digits, ._-@+): escaped all the same.
                a, b = (f"[{textsafe.markdown_cell(name)}]({textsafe.markdown_cell(path)})"
                        for name, path in ((p[1], p[5]), (p[2], p[6])))
                lines.append(f"| {a} | {b} | {p[3]:.0%} | {p[4]:.0%} |")
        lines.append("")
    write_atomic(out / "similarity.md", "\n".join(lines) + "\n")
    return pairs


# --------------------------------------------------------------------------- the command


def _unreadable_results(entry: Entry, version: str, seed) -> dict:
    return {
        "score": 0.0, "max_score": 0.0, "execution_time": 0.0, "output": entry.problem, "tests": [],
        "extra_data": {"grader_seed": seed, "batch": {
            "student": entry.student, "email": entry.email, "entry": entry.source.name, "status": "unreadable",
            "notes": [entry.problem], "grader_version": version, "seconds": 0.0}},
    }


def _up_to_date(path: Path, key: dict) -> bool:
    try:
        batch = json.loads(path.read_text())["extra_data"]["batch"]
    except (OSError, KeyError, json.JSONDecodeError):
        return False
    return batch.get("key") == key and batch.get("status") != "grader error"


def run_batch(opts: argparse.Namespace) -> int:
    """Grade every submission in ``opts.submissions`` into ``opts.out`` (see the module docstring)."""
    from tqdm import tqdm

    from grader.plugin import DEFAULT_SEED

    out = Path(opts.out).resolve()
    labs = [f"lab{n:02d}" for n in sorted(set(opts.lab))] if opts.lab else list(LABS)
    seed = opts.grader_seed if opts.grader_seed is not None else DEFAULT_SEED
    version = grader_version()
    entries = discover(Path(opts.submissions))
    if opts.shard:
        k, n = opts.shard
        entries = [e for i, e in enumerate(entries) if i % n == k - 1]
    for sub in ("results", "feedback", "logs", "work"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = []
    for entry in entries:
        result_path = out / "results" / f"{entry.student}.json"
        if not entry.problem:
            try:
                sha = extract(entry, out / "work" / entry.student / "labs")
            except Unreadable as exc:
                entry.problem = str(exc)
        if entry.problem:
            results = _unreadable_results(entry, version, seed)
            write_atomic(result_path, json.dumps(results, indent=1))
            write_atomic(out / "feedback" / f"{entry.student}.md", feedback_markdown(entry.student, results))
            continue
        key = {"grader_version": version, "grader_seed": seed, "submission_sha256": sha, "labs": labs,
               "timeout": opts.timeout}
        if not opts.regrade and _up_to_date(result_path, key):
            continue
        jobs.append((entry, key))
    unreadable = sum(1 for e in entries if e.problem)
    skipped = len(entries) - unreadable - len(jobs)
    workers = max(1, min(opts.workers or default_workers(), len(jobs) or 1))
    users = worker_users(opts.worker_user, workers) if opts.worker_user and jobs else None
    if users:
        os.chmod(out, 0o700)  # results, feedback and the other students' files: root's only
        from grader.sandbox import make_private

        changed = make_private()  # hidden tests, solutions and test labels: never the worker users'
        if changed:
            print(f"made {', '.join(changed)} readable by their owner only (chmod -R go-rwx): student code must "
                  "not read hidden tests, solutions or held-out labels", file=sys.stderr)
        print(f"student code runs as {', '.join(users)} (one user per slot), in a fresh grading area per submission"
              + (" inside bubblewrap" if bwrap_usable(users[0]) else " (no bubblewrap here: user switch alone)"),
              file=sys.stderr)
    elif jobs:
        print(f"note: student code runs as {_whoami()}: it cannot change a grade the judge computes, but it can "
              "read and write this user's files; for a class you do not trust, run as root with --worker-user "
              "(see docs/grading-a-class.md)", file=sys.stderr)
    print(f"{len(entries)} submissions in {opts.submissions}: {len(jobs)} to grade, {skipped} already graded "
          f"(same grader {version} and seed {seed}; --regrade to grade them again), {unreadable} unreadable; "
          f"{workers} at a time", file=sys.stderr)

    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    lock = threading.Lock()
    bar = tqdm(total=len(jobs), unit="submission", desc="grading", disable=opts.quiet or not jobs)
    times: list[float] = []
    failures: list[BaseException] = []

    def finish(entry: Entry, key: dict, reply: dict) -> None:
        json_path = out / "results" / f".{entry.student}.grading.json"
        if reply["code"] == 0 and json_path.is_file():
            results = json.loads(json_path.read_text())
            status, notes = scoring.submission_status(results, set(entry.files))
        else:
            results = {"score": 0.0, "max_score": 0.0, "execution_time": reply["seconds"], "tests": [],
                       "output": reply["error"], "extra_data": {"grader_seed": seed}}
            status = "timed out" if reply["code"] == -1 else "grader error"
            notes = [reply["error"]]
        results.setdefault("extra_data", {})["batch"] = {
            "student": entry.student, "email": entry.email, "entry": entry.source.name, "status": status,
            "notes": entry.notes + notes, "grader_version": version, "seconds": reply["seconds"], "key": key,
            "files": entry.files,
        }
        write_atomic(out / "results" / f"{entry.student}.json", json.dumps(results, indent=1))
        write_atomic(out / "feedback" / f"{entry.student}.md", feedback_markdown(entry.student, results))
        clean_log(out / "logs" / f"{entry.student}.log")
        json_path.unlink(missing_ok=True)

    def slot_loop(user: str | None) -> None:
        slot = Slot(user)
        try:
            while True:
                try:
                    entry, key = todo.get_nowait()
                except queue.Empty:
                    return
                job = {
                    "labs_dir": str(out / "work" / entry.student / "labs"),
                    "json": str(out / "results" / f".{entry.student}.grading.json"),
                    "log": str(out / "logs" / f"{entry.student}.log"),
                    "labs": [scoring.lab_number(lab) for lab in labs], "grader_seed": seed, "timeout": opts.timeout,
                    "submission_timeout": opts.submission_timeout,
                }
                reply = slot.grade(job)
                finish(entry, key, reply)
                with lock:
                    times.append(reply["seconds"])
                    bar.set_postfix_str(f"{entry.student[:20]} {reply['seconds']:.1f} s, mean {sum(times) / len(times):.1f} s")
                    bar.update(1)
        except BaseException as exc:  # noqa: BLE001 -- surfaced by the main thread
            failures.append(exc)
        finally:
            slot.close()

    threads = [threading.Thread(target=slot_loop, args=(users[k] if users else None,), daemon=True)
               for k in range(workers if jobs else 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    if failures:
        raise failures[0]
    return write_reports(out, labs, opts)


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def write_reports(out: Path, labs: list[str], opts: argparse.Namespace) -> int:
    """Gradebook, summary and (if asked) similarity from every result in ``out/results``."""
    all_results = load_results(out)
    write_gradebook(out, all_results, labs)
    write_summary(out, all_results, labs)
    print(f"gradebook: {out / 'gradebook.csv'} ({len(all_results)} students); summary: {out / 'summary.md'}", file=sys.stderr)
    if opts.similarity:
        pairs = write_similarity(out, opts.similarity_threshold)
        print(f"similarity: {len(pairs)} pair(s) above {opts.similarity_threshold:.0%}: {out / 'similarity.md'}", file=sys.stderr)
    return 0


def merge(opts: argparse.Namespace) -> int:
    """Join the OUTDIRs of several shards into ``opts.out``.

    Raises:
        SystemExit: the shards were graded by different grader versions or seeds, or grade the
            same student differently.
    """
    out = Path(opts.out).resolve()
    seen: dict[str, tuple[str, Path]] = {}
    keys = set()
    labs: set[str] = set()
    for src in map(Path, opts.merge):
        if not (src / "results").is_dir():
            raise SystemExit(f"python -m grader batch --merge: {src} has no results/ folder: give OUTDIRs of batch runs")
        for path in sorted((src / "results").glob("*.json")):
            results = json.loads(path.read_text())
            batch = results["extra_data"]["batch"]
            keys.add((batch["grader_version"], results["extra_data"].get("grader_seed")))
            labs |= set(batch.get("key", {}).get("labs", []))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if path.stem in seen and seen[path.stem][0] != digest:
                raise SystemExit(f"python -m grader batch --merge: {path.stem} is graded in both {seen[path.stem][1]} and "
                                 f"{src}, differently: merge shards of one class split with --shard K/N")
            seen[path.stem] = (digest, src)
    if len(keys) > 1:
        found = ", ".join(f"version {v} seed {s}" for v, s in sorted(keys, key=str))
        raise SystemExit(f"python -m grader batch --merge: the shards were graded differently ({found}): "
                         "regrade them with the same grader and --grader-seed")
    for sub in ("results", "feedback", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for student, (_, src) in seen.items():
        for sub, suffix in (("results", ".json"), ("feedback", ".md"), ("logs", ".log")):
            f = src / sub / f"{student}{suffix}"
            if f.is_file():
                write_atomic(out / sub / f.name, f.read_bytes())
        work = src / "work" / student
        if work.is_dir():
            shutil.copytree(work, out / "work" / student, dirs_exist_ok=True)
    return write_reports(out, sorted(labs) or list(LABS), opts)


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard {text!r}: write K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader batch",
        description="Grade a whole class: one folder or .zip per student in SUBMISSIONS -> gradebook.csv, "
        "feedback, results and a class summary in OUTDIR.",
        epilog="Run the same command again to resume an interrupted batch. Exit code 0 unless the grader itself failed.",
    )
    parser.add_argument("submissions", nargs="?", metavar="SUBMISSIONS", help="folder with one folder or .zip per student")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created; reused to resume)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="submissions graded at a time (default: cores, at most one per 3 GiB of free memory)")
    parser.add_argument("--lab", type=int, action="append", choices=range(1, len(LABS) + 1), metavar="N",
                        help="grade lab N only (repeatable)")
    parser.add_argument("--grader-seed", type=int, default=None, metavar="S", help="grader seed (default: the grader's fixed seed)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="time budget of checks without their own, as in python -m grader (default 60)")
    parser.add_argument("--submission-timeout", type=float, default=DEFAULT_SUBMISSION_TIMEOUT, metavar="S",
                        help="stop a whole submission after S seconds (default %(default)g; checks have their own budgets)")
    parser.add_argument("--worker-user", default=os.environ.get("GRADER_WORKER_USER") or None, metavar="USER",
                        help="as root: run student code as USER (USER2, ... for more slots; created if missing), "
                        "in a grading area root owns (inside bubblewrap where it starts), as on the Gradescope autograder (default $GRADER_WORKER_USER)")
    parser.add_argument("--regrade", action="store_true", help="grade again submissions already graded with this grader and seed")
    parser.add_argument("--similarity", action="store_true", help="also write similarity.html/.md (copydetect)")
    parser.add_argument("--similarity-threshold", type=float, default=0.6, metavar="F",
                        help="list pairs sharing more than this fraction of code (default %(default)g)")
    parser.add_argument("--shard", type=_shard, default=None, metavar="K/N", help="grade only every N-th student, from the K-th")
    parser.add_argument("--merge", nargs="+", metavar="OUTDIR", help="join the OUTDIRs of shards into --out (no grading)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if opts.merge:
        if opts.submissions:
            raise SystemExit("python -m grader batch: give either SUBMISSIONS or --merge OUTDIR..., not both")
        return merge(opts)
    if not opts.submissions:
        raise SystemExit("python -m grader batch: give the SUBMISSIONS folder (or --merge OUTDIR... to join shards)")
    return run_batch(opts)


if __name__ == "__main__":
    sys.exit(main())
