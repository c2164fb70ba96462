"""Where student code runs on an autograder: a grading area root owns, and a sandbox around it.

When the judge runs as root with a worker user (``GRADER_WORKER_USER``: Gradescope's
``run_autograder``, ``python -m grader batch --worker-user``), each zygote gets a fresh
:class:`Area`, made by root in a private temporary folder::

    grader-area-XXXX/        root, 0711: the worker may pass through, not list or write
      code/                  root, 0755: the worker code and the graded lab files (0644), copied
                             in by root; the worker can read and import them, never replace them
      scratch/               the worker user, 0700: its working folder, HOME and TMPDIR

Root never writes into ``scratch/`` and never reads from it except through
:func:`grader.judge.ingest.read_beneath` (no link followed, the worker's own files only). Nothing that
root imports or runs sits in a folder the worker can write.

Where bubblewrap (``bwrap``, Flatpak's sandbox; Debian package ``bubblewrap``) can start as the
worker user, the zygote runs inside it: a read-only view of the file system, a private empty
``/tmp`` and ``/dev/shm``, no network and no System V IPC shared with the host. Where it cannot
(Gradescope's Docker containers usually forbid the user namespaces it needs), the user switch
alone runs, hardened: a private ``TMPDIR``, an environment built from an allow-list, and between
two students every process of the worker user is killed and its files in ``/tmp``, ``/var/tmp``
and ``/dev/shm`` are removed (:func:`end_of_student`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Variables a worker may inherit from the judge (values the libraries need, nothing of the
#: grader's or the instructor's own: no tokens, no GRADER_*, no paths to the grader).
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "LD_LIBRARY_PATH",
             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
             "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
#: Set for every worker: one thread (2-core graders), plots to files, no .pyc written next to labs.
ENV_FIXED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
#: Folders everybody can write: what a student leaves there is removed between two students.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
AREA_PREFIX = "grader-area-"


def worker_env(home: str | None, tmpdir: str | None = None) -> dict:
    """The environment of a worker: the allow-listed variables of this process plus the fixed ones.

    Args:
        home: HOME for the worker (its scratch folder on an autograder; None keeps this one's).
        tmpdir: TMPDIR for the worker (None: not set).
    """
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(ENV_FIXED)
    if home is None:
        home = os.environ.get("HOME")
    if home:
        env["HOME"] = home
        env["MPLCONFIGDIR"] = os.path.join(home, ".mplconfig")
    if tmpdir:
        env["TMPDIR"] = tmpdir
    return env


class Area:
    """A fresh grading area for one zygote of ``user`` (see the module docstring).

    Raises:
        KeyError: ``user`` does not exist.
    """

    def __init__(self, user: str) -> None:
        entry = pwd.getpwnam(user)
        self.user, self.uid, self.gid = user, entry.pw_uid, entry.pw_gid
        self.root = Path(tempfile.mkdtemp(prefix=AREA_PREFIX))
        os.chmod(self.root, 0o711)
        self.code = self.root / "code"
        self.scratch = self.root / "scratch"
        for folder, mode in ((self.code, 0o755), (self.code / "labs", 0o755), (self.scratch, 0o700),
                             (self.scratch / "tmp", 0o700)):
            folder.mkdir()
            os.chmod(folder, mode)  # whatever the umask
        os.chown(self.scratch / "tmp", self.uid, self.gid)
        os.chown(self.scratch, self.uid, self.gid)  # last: root made everything inside first

    @property
    def tmpdir(self) -> Path:
        return self.scratch / "tmp"

    def install(self, src: Path, subdir: str, name: str | None = None) -> Path:
        """Copy root's file ``src`` into ``code/subdir`` (read-only for the worker); its new path."""
        from grader.judge.ingest import write_new

        folder = self.code / subdir
        if not folder.is_dir():
            folder.mkdir()
            os.chmod(folder, 0o755)
        return write_new(folder, name or src.name, Path(src).read_bytes())

    def remove(self) -> None:
        """Delete the area (links inside are removed, never followed: ``shutil.rmtree`` works on fds)."""
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- bubblewrap


@functools.lru_cache(maxsize=None)
def bwrap_usable(user: str) -> bool:
    """Whether ``bwrap`` starts as ``user`` here (needs unprivileged user namespaces).

    ``GRADER_SANDBOX=none`` turns bubblewrap off, ``GRADER_SANDBOX=bwrap`` makes its absence an
    error (raises RuntimeError) instead of a fall-back to the user switch alone.
    """
    choice = os.environ.get("GRADER_SANDBOX", "auto")
    if choice == "none":
        return False
    exe = shutil.which("bwrap")
    ok = False
    if exe:
        entry = pwd.getpwnam(user)
        try:
            ok = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-net", "--die-with-parent", "true"],
                                user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                                capture_output=True, timeout=20).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    if choice == "bwrap" and not ok:
        raise RuntimeError(f"GRADER_SANDBOX=bwrap, but bubblewrap does not start as {user} here "
                           "(install the package bubblewrap; Docker may forbid user namespaces)")
    return ok


def describe(user: str) -> str:
    """One line for the grading log: which sandbox runs ``user``'s code here."""
    cpu = "; a CPU cgroup per slot" if cpu_group_base() else ""
    if bwrap_usable(user):
        return "inside bubblewrap: read-only file system, private /tmp, no network" + cpu
    return "with the user switch alone (bubblewrap off or not starting here): private TMPDIR, files swept" + cpu


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def private_paths() -> list[str]:
    """Folders of the grader student code must never read: the grader (hidden tests), the solutions,
    the grader's own tests and the data caches (held-out labels)."""
    from grader.registry import REPO_ROOT

    paths = [REPO_ROOT / name for name in ("grader", "solutions", "tests", "data")]
    with contextlib.suppress(Exception):
        from data.cache import cache_dir

        paths.append(cache_dir())
    return sorted({os.path.realpath(p) for p in paths})


def make_private(paths: list[str] | None = None) -> list[str]:
    """``chmod -R go-rwx`` the :func:`private_paths` (no link followed; the owner keeps access):
    where no sandbox hides them, the worker users' permissions must. Returns those changed."""
    changed = []
    for top in paths if paths is not None else private_paths():
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames, None]:
                path = dirpath if name is None else os.path.join(dirpath, name)
                info = os.lstat(path)
                if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                    os.chmod(path, info.st_mode & ~0o077 & 0o7777)
                    if top not in changed:
                        changed.append(top)
    return changed


def bwrap_prefix(area: Area) -> list[str]:
    """The bwrap command line that runs a command in ``area`` (everything read-only but scratch).

    The host's ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are replaced by empty private ones; the
    area and this Python are bound back in where they live under them (a venv in /tmp, say).
    No PID namespace: the judge kills workers by the pids the zygote reports, which must be
    the host's; what a student starts is killed by user instead (:func:`kill_user_processes`).
    """
    argv = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in SHARED_TMP:
        if os.path.isdir(folder):
            argv += ["--tmpfs", folder]
    keep = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)))}
    keep |= {os.path.dirname(os.path.abspath(sys.executable))}
    for path in sorted(keep):
        if _under(path, SHARED_TMP) and os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in private_paths():  # hidden even where their modes would let the worker read them
        if os.path.isdir(path) and not any(_under(k, (path,)) for k in keep):
            argv += ["--tmpfs", path]
    argv += ["--ro-bind", str(area.code), str(area.code), "--bind", str(area.scratch), str(area.scratch),
             "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--chdir", str(area.scratch), "--"]
    return argv


# --------------------------------------------------------------------------- CPU between slots


def cpu_group_base() -> Path | None:
    """Where a CPU cgroup for student code can be made here, or None.

    cgroup v1's ``cpu`` hierarchy (``/sys/fs/cgroup/cpu``), or a cgroup v2 tree whose
    ``cgroup.subtree_control`` already enables ``cpu``; it must be writable (root, and a container
    that mounts cgroups read-write). Gradescope's containers usually have neither.
    """
    for base, control in ((Path("/sys/fs/cgroup/cpu"), "cpu.shares"), (Path("/sys/fs/cgroup"), "cgroup.subtree_control")):
        try:
            if not (base / control).is_file() or not os.access(base / "cgroup.procs", os.W_OK):
                continue
            if control == "cgroup.subtree_control" and "cpu" not in (base / control).read_text().split():
                continue
            return base
        except OSError:
            continue
    return None


def cpu_group(user: str, pid: int) -> Path | None:
    """Put ``pid`` (a zygote: its workers follow) in the CPU cgroup of ``user`` (one per batch slot).

    In a cgroup of its own, everything a student starts weighs as much as one process of the
    judges' (v1 ``cpu.shares`` 1024; v2 the default weight): 200 busy processes share one slot's
    part of the cores instead of crowding out the classmates graded in the other slots. Returns
    the group's folder, or None where cgroups cannot be written (then nothing changes).
    """
    base = cpu_group_base()
    if base is None:
        return None
    group = base / f"grader-{user}"
    try:
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(f"{pid}\n")
    except OSError:
        return None
    return group


def remove_cpu_group(user: str) -> None:
    """Remove ``user``'s CPU cgroup once its processes are gone (an error is ignored: it is reused)."""
    base = cpu_group_base()
    if base is not None:
        with contextlib.suppress(OSError):
            (base / f"grader-{user}").rmdir()


# --------------------------------------------------------------------------- between two students


def live_processes(user: str) -> list[int]:
    """Pids of ``user``'s processes that still run (zombies excluded: they run no code and wait
    only for init to reap them; a student's orphan becomes one once killed)."""
    uid, pids = pwd.getpwnam(user).pw_uid, []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            # /proc/PID/stat: "pid (comm) state ...", comm may hold spaces or parentheses.
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # exited meanwhile
        if state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def kill_user_processes(user: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of ``user`` and wait until none runs, so that nothing a student
    started (a daemon in a new session, a fork loop) meets the next student's code. Returns the
    pids still running after ``timeout`` seconds (empty when all are gone)."""
    deadline = time.monotonic() + timeout
    while True:
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        left = live_processes(user)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)  # SIGKILL is delivered asynchronously; a fork loop may still be spawning


def remove_user_files(user: str, folders: tuple[str, ...] = SHARED_TMP) -> list[str]:
    """Delete what ``user`` owns at the top of the shared temporary folders; the names removed.

    Links are removed as links (``lstat``), folders with ``shutil.rmtree`` (no link followed).
    Only entries owned by ``user`` are touched: a folder of the user's holding root's files can
    only be an attack, and goes as a whole.
    """
    uid, removed = pwd.getpwnam(user).pw_uid, []
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if info.st_uid != uid:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed.append(path)
    return removed


def end_of_student(user: str) -> list[int]:
    """Kill every process of ``user`` and remove its files in the shared temporary folders; the
    pids that survived (empty when all are gone)."""
    left = kill_user_processes(user)
    remove_user_files(user)
    return left


def check_user(user: str, python: str | None = None) -> None:
    """Refuse a worker user that cannot run this Python, or whose home would outlive a student.

    Raises:
        SystemExit: one line naming the problem and the fix (the first folder on the way to the
            interpreter that other users cannot enter, for instance).
    """
    python = python or sys.executable
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SystemExit(f"the worker user {user} does not exist: create it (useradd --system --no-create-home "
                         f"--home-dir /nonexistent --shell /usr/sbin/nologin {user})") from None
    if entry.pw_uid == 0:
        raise SystemExit(f"the worker user {user} is root: student code must run as an unprivileged user")
    if os.path.isdir(entry.pw_dir) and os.stat(entry.pw_dir).st_uid == entry.pw_uid:
        raise SystemExit(f"the worker user {user} has a home folder {entry.pw_dir} of its own, where a student could "
                         "leave files for the next: use a user without one (home /nonexistent)")
    try:
        probe = subprocess.run([python, "-c", "import torch"], user=entry.pw_uid, group=entry.pw_gid,
                               extra_groups=[], capture_output=True, text=True, cwd="/",
                               env=worker_env(home="/nonexistent"))
        if probe.returncode == 0:
            return
        why = probe.stderr.strip()[-300:] or (f"killed by signal {-probe.returncode}" if probe.returncode < 0
                                              else f"exit code {probe.returncode}")
    except OSError as exc:  # the user cannot even start it
        why = str(exc)
    for path in (os.path.abspath(python), os.path.realpath(python)):
        for folder in [*reversed(Path(path).parents)]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                raise SystemExit(
                    f"the worker user {user} cannot run {python}: the folder {folder} (mode {stat.filemode(mode)}) "
                    f"does not let other users through; fix: `chmod o+x {folder}` (passing through only, no listing), "
                    "or put the course's Python where every user can run it (e.g. /opt)"
                )
    raise SystemExit(f"the worker user {user} cannot run {python}: {why}".replace("\n", " "))


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.judge.sandbox check USER`` (exit 1 with one line when USER cannot grade),
    ``describe USER`` (which sandbox runs USER's code here) and ``cleanup USER`` (end of a
    grading: kill, remove files and areas)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("check", "cleanup", "describe"):
        print("usage: python -m grader.judge.sandbox check|describe|cleanup USER", file=sys.stderr)
        return 2
    if argv[0] == "describe":
        print(describe(argv[1]))
        return 0
    if argv[0] == "check":
        try:
            check_user(argv[1])
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    left = end_of_student(argv[1])
    for path in Path(tempfile.gettempdir()).glob(AREA_PREFIX + "*"):
        if path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)
    if left:
        print(f"processes of {argv[1]} survived SIGKILL: {left}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
