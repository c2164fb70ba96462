"""``batch --deadline``: grade each Git clone at its last commit before the deadline.

A GitHub Classroom clone (an entry with a ``.git`` folder at its top, or in the one folder it
holds, as in an LMS folder around a clone) is graded at the commit that its branch had at the
deadline: from ``HEAD``, the first-parent chain (the branch's own history, not the side branches
merged into it) is walked back to the first commit whose **committer date** is at or before the
deadline. The lab files and ``QUESTIONS.md`` of that commit are graded and collected, not the
working tree. ``work/<student>/git.json`` records the commit, its date and the commits after the
deadline (their number and the last one's date), and the gradebook shows them (columns
``commit``, ``commit_date``, ``commits_after_deadline``, and a note).

Dates: the committer date is written by the student's own machine (``git commit --date``,
``GIT_COMMITTER_DATE``, a wrong clock), as every date inside a repository is; it is evidence, not
proof. GitHub Classroom's own deadline uses the time of the *push* to GitHub, which only GitHub
knows: when a grade depends on minutes, compare with the push times GitHub shows
(the repository's activity, or ``gh api repos/OWNER/REPO/activity``).

Trust (``batch`` may run as root): no ``git`` is run on the student's folder, ever: a
repository's own configuration runs programs (``core.fsmonitor``, ``core.pager``,
``diff.external``, filters, hooks), and its files may be links to anywhere. Instead:

1. the ``.git`` folder is copied out through a reader with the guarantees of
   :mod:`grader.judge.ingest` (every folder opened with ``O_NOFOLLOW`` relative to its parent,
   regular files only, links skipped, at most :data:`MAX_GIT_BYTES` in :data:`MAX_GIT_FILES`
   files, else the entry is refused with the reason), and only what history needs: ``HEAD``,
   ``packed-refs``, ``refs/``, ``objects/`` (without ``objects/info/alternates``, which would
   point the reader at other folders of the machine) and ``shallow``; never the student's
   ``config``, hooks, index or worktree links. The copy gets a minimal ``config`` of ours;
2. that root-owned copy is read with dulwich (pure Python: no program of the repository's is
   ever run), in a child process with an address-space limit (:data:`READ_MEMORY_BYTES`) and a
   time limit (:data:`READ_SECONDS`), so that a compressed bomb in a pack costs that process, not
   the batch. Only blobs of lab files (at most :data:`grader.judge.ingest.MAX_LAB_BYTES`) and of
   QUESTIONS.md (at most :data:`grader.questions.MAX_BYTES`) come back, as bytes;
3. they are written into ``OUTDIR/git/<student>/tree/<entry>/`` and found there as in any
   folder entry (:func:`grader.course.batch.discover.discover`), so the rest of the batch grades
   them exactly as a submitted folder.

An entry with no ``.git`` folder is graded as submitted, with a note. A repository that cannot be
read (too large, no ``HEAD``, no commit before the deadline, damaged) is ``unreadable`` with the
reason, so that it is looked at by hand rather than graded from the wrong files.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from grader import questions
from grader.course.batch.discover import Entry, discover
from grader.course.batch.reports import write_atomic
from grader.judge.ingest import MAX_DEPTH, MAX_LAB_BYTES, SKIP_DIRS, IngestError, lab_of, read_fd_regular

#: A lab repository's history is a few MB; a ``.git`` folder beyond this is refused.
MAX_GIT_BYTES = 50_000_000
MAX_GIT_FILES = 20_000
#: Limits of the child process that reads the copy.
READ_MEMORY_BYTES = 2 << 30
READ_SECONDS = 120
MAX_WALK = 100_000
INFO_FILE = "git.json"
#: What is copied out of ``.git`` (first path component), and what never is, wherever it is.
KEEP = {"HEAD", "packed-refs", "refs", "objects", "shallow"}
DROP = {("objects", "info", "alternates"), ("objects", "info", "http-alternates")}
OUR_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class GitProblem(Exception):
    """The repository cannot be graded at the deadline (the message says why)."""


def parse_deadline(text: str) -> datetime:
    """``2026-12-01T23:59+01:00`` as an aware datetime.

    Raises:
        ValueError: not ISO 8601, or without a time zone offset (the message says what to write).
    """
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"--deadline {text!r}: write an ISO 8601 date and time with its offset, "
                         "e.g. --deadline 2026-12-01T23:59+01:00") from None
    if when.tzinfo is None:
        raise ValueError(f"--deadline {text!r} has no time zone: add the offset, e.g. {text}+01:00 "
                         "(or Z for UTC), so that the deadline is the same instant on every machine")
    return when


def iso(ts: int, offset: int) -> str:
    """A git date (seconds since the epoch, offset east of UTC in seconds) in ISO 8601 with its offset."""
    return datetime.fromtimestamp(ts, timezone(timedelta(seconds=offset))).isoformat()


# --------------------------------------------------------------------------- copying .git out


def find_git_dir(root: Path) -> tuple[tuple[str, ...], str] | None:
    """(path of the repository's folder inside ``root``, as parts; "" or a reason it is not usable)
    for a ``.git`` at ``root`` or in its only visible sub-folder; None if there is none."""
    def git_at(parts: tuple[str, ...]) -> str | None:
        try:
            info = os.lstat(root.joinpath(*parts, ".git"))
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode):
            return ""
        return ".git is a link or a file (a worktree or submodule pointer), not a repository folder"

    why = git_at(())
    if why is not None:
        return (), why
    try:
        subs = [e for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return None
    if len(subs) == 1:
        why = git_at((subs[0].name,))
        if why is not None:
            return (subs[0].name,), why
    return None


def _open_git_dir(root: Path, inner: tuple[str, ...]) -> int:
    """A descriptor of ``root/<inner>/.git``, each folder below ``root`` opened with ``O_NOFOLLOW``
    relative to its parent (no link followed, even one swapped in after :func:`find_git_dir`)."""
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for name in (*inner, ".git"):
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        os.close(fd)
        raise GitProblem(f".git cannot be opened without following a link ({exc.strerror})") from None
    return fd


def copy_git(root: Path, inner: tuple[str, ...], dest: Path) -> list[str]:
    """Copy the history of the ``.git`` folder of ``root/<inner>`` into ``dest`` (see the module
    docstring); returns what was skipped (links, other non-regular files).

    Raises:
        GitProblem: over :data:`MAX_GIT_BYTES` or :data:`MAX_GIT_FILES`, or unreadable.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    skipped: list[str] = []
    total = files = 0
    top = _open_git_dir(root, inner)
    stack: list[tuple[int, tuple[str, ...]]] = [(top, ())]
    try:
        while stack:
            fd, prefix = stack.pop()
            try:
                with os.scandir(fd) as it:
                    names = sorted(e.name for e in it)
                for name in names:
                    parts = prefix + (name,)
                    if (not prefix and name not in KEEP) or parts in DROP:
                        continue
                    shown = "/".join((".git",) + parts)
                    try:
                        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        try:
                            stack.append((os.open(name, _DIR_FLAGS, dir_fd=fd), parts))
                        except OSError:
                            skipped.append(shown)
                        (dest.joinpath(*parts)).mkdir(exist_ok=True)
                        continue
                    if not stat.S_ISREG(info.st_mode):
                        skipped.append(shown)
                        continue
                    files += 1
                    total += info.st_size
                    if files > MAX_GIT_FILES or total > MAX_GIT_BYTES:
                        raise GitProblem(f"its .git folder holds more than {MAX_GIT_BYTES // 1_000_000} MB or "
                                         f"{MAX_GIT_FILES} files (the limit read for a lab repository): check it by hand")
                    dest.joinpath(*parts).write_bytes(_read_regular(fd, name, shown, MAX_GIT_BYTES - total + info.st_size))
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    (dest / "config").write_text(OUR_CONFIG)
    for folder in ("refs", "objects"):
        (dest / folder).mkdir(exist_ok=True)
    return skipped


def _read_regular(dir_fd: int, name: str, shown: str, limit: int) -> bytes:
    """The bytes of the regular file ``name`` in ``dir_fd``, at most ``limit``, read as ingest reads
    lab files (:func:`grader.judge.ingest.read_fd_regular`: no link, regular files only)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise GitProblem(f"{shown} cannot be read ({exc.strerror})") from None
    try:
        if os.fstat(fd).st_size > limit:
            raise GitProblem(f"its .git folder holds more than {MAX_GIT_BYTES // 1_000_000} MB: check it by hand")
        return read_fd_regular(fd, shown, limit)
    except IngestError as exc:  # not a regular file, or grown past the limit while read
        raise GitProblem(str(exc)) from None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading the copy (child process)


def _wanted(path: str) -> str | None:
    """"lab" / "answers" for a path of the tree that discovery would look at, else None."""
    parts = path.split("/")
    if len(parts) - 1 > MAX_DEPTH + 1 or any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
        return None
    if lab_of(parts[-1]):
        return "lab"
    return "answers" if questions.is_answers_name(parts[-1]) else None


def read_at_deadline(repo_path: str, deadline_ts: float) -> dict:
    """What the child process returns: the commit graded, the commits after the deadline, and the
    lab files and QUESTIONS.md of that commit (base64)."""
    from dulwich.objects import Commit, Tree
    from dulwich.repo import Repo

    repo = Repo(repo_path, bare=True)
    try:
        head = repo.refs[b"HEAD"]
    except KeyError:
        return {"problem": "the repository has no commit (HEAD points to nothing)"}
    after: list[dict] = []
    sha, commit = head, None
    for _ in range(MAX_WALK):
        obj = repo[sha]
        if not isinstance(obj, Commit):
            return {"problem": f"HEAD is not a commit ({sha.decode()[:12]})"}
        if obj.commit_time <= deadline_ts:
            commit = obj
            break
        after.append({"commit": sha.decode(), "date": iso(obj.commit_time, obj.commit_timezone)})
        if not obj.parents:
            break
        sha = obj.parents[0]
    if commit is None:
        first = after[-1]["date"] if after else "?"
        return {"problem": f"every commit of its branch is after the deadline (the first one: {first})",
                "after": after}
    files: dict[str, str] = {}
    stack: list[tuple[bytes, str]] = [(commit.tree, "")]
    seen = 0
    while stack:
        tree_sha, prefix = stack.pop()
        tree = repo[tree_sha]
        if not isinstance(tree, Tree):
            continue
        for item in tree.iteritems():
            seen += 1
            if seen > 200_000:
                return {"problem": "the commit's tree is too large to be a lab repository"}
            name = item.path.decode("utf-8", errors="replace")
            path = f"{prefix}{name}"
            if stat.S_ISDIR(item.mode):
                if path.count("/") < MAX_DEPTH + 1 and name not in SKIP_DIRS and not name.startswith("."):
                    stack.append((item.sha, path + "/"))
                continue
            kind = _wanted(path)
            if kind is None or not stat.S_ISREG(item.mode) or stat.S_ISLNK(item.mode):
                continue  # links (mode 120000) and submodules (160000) are never taken
            limit = MAX_LAB_BYTES if kind == "lab" else questions.MAX_BYTES
            raw = repo.object_store.get_raw(item.sha)[1]
            if len(raw) > limit:
                return {"problem": f"{path} is {len(raw)} bytes at that commit, more than a lab file can be"}
            files[path] = base64.b64encode(raw).decode()
    return {"commit": commit.id.decode(), "date": iso(commit.commit_time, commit.commit_timezone),
            "after": after, "files": files}


def _limit_child() -> None:  # pragma: no cover -- runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (READ_MEMORY_BYTES, READ_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (READ_SECONDS, READ_SECONDS))


def read_in_child(repo_copy: Path, deadline: datetime) -> dict:
    """:func:`read_at_deadline` in a child process under memory and time limits.

    Raises:
        GitProblem: dulwich is not installed, or the child failed (a damaged repository, a limit).
    """
    from grader.judge.session import REPO_ROOT

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT), "LC_ALL": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
    code = "import sys; from grader.course.batch.gitsnap import _child_main; sys.exit(_child_main(sys.argv[1:]))"
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(repo_copy), str(deadline.timestamp())],
                              cwd=REPO_ROOT, env=env, capture_output=True,
                              timeout=READ_SECONDS + 30, preexec_fn=_limit_child)
    except subprocess.TimeoutExpired:
        raise GitProblem(f"reading its history took more than {READ_SECONDS} s: check it by hand") from None
    if proc.returncode == 3:
        raise GitProblem("--deadline needs the dulwich package: pip install -r requirements.txt")
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1][:300]
        raise GitProblem(f"its history cannot be read (damaged, or over the reader's limits: {last})")
    return json.loads(proc.stdout)


def _child_main(argv: list[str]) -> int:  # pragma: no cover -- runs in the child
    try:
        import dulwich  # noqa: F401
    except ImportError:
        return 3
    sys.stdout.write(json.dumps(read_at_deadline(argv[0], float(argv[1]))))
    return 0


# --------------------------------------------------------------------------- the batch's side


def apply_deadline(entries: list[Entry], deadline: datetime | None, out: Path) -> None:
    """With a deadline, point every Git clone among ``entries`` at the files of its last commit before
    it (see the module docstring); without one, forget what an earlier run with a deadline recorded.

    Raises:
        SystemExit: a deadline is given and dulwich is not installed.
    """
    if deadline is not None:
        import importlib.util

        if importlib.util.find_spec("dulwich") is None:
            raise SystemExit("python -m grader batch --deadline: the dulwich package reads the clones' history: "
                             "install it with pip install -r requirements.txt")
    for entry in entries:
        info_path = out / "work" / entry.student / INFO_FILE
        info_path.unlink(missing_ok=True)
        if deadline is None or entry.source.is_symlink() or not entry.source.is_dir():
            if deadline is not None and not entry.problem:
                entry.notes.append("not a Git clone (no .git folder): graded as submitted; --deadline not applied")
            continue
        found = find_git_dir(entry.source)
        if found is None:
            entry.notes.append("not a Git clone (no .git folder): graded as submitted; --deadline not applied")
            continue
        inner, why = found
        if why:
            entry.notes.append(f"{why}: graded as submitted; --deadline not applied")
            continue
        try:
            snapshot(entry, inner, deadline, out)
        except GitProblem as exc:
            entry.problem = f"--deadline {deadline.isoformat()}: {exc}"
            entry.files = {}


def snapshot(entry: Entry, inner: tuple[str, ...], deadline: datetime, out: Path) -> None:
    """Copy, read and materialise one clone at the deadline; re-point ``entry`` at the result."""
    base = out / "git" / entry.student
    skipped = copy_git(entry.source, inner, base / "repo.git")
    got = read_in_child(base / "repo.git", deadline)
    info = {"deadline": deadline.isoformat(), "commit": got.get("commit", ""), "date": got.get("date", ""),
            "after": len(got.get("after", [])), "last_after": (got.get("after") or [{}])[0].get("date", ""),
            "skipped": skipped}
    write_atomic(out / "work" / entry.student / INFO_FILE, json.dumps(info))
    if "problem" in got:
        raise GitProblem(got["problem"])
    tree = base / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    root = tree / entry.source.name
    root.mkdir(parents=True)
    for rel, data in got["files"].items():
        path = root.joinpath(*inner, *rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    (found,) = discover(tree)
    entry.source = root
    entry.files = found.files
    short = info["commit"][:12]
    entry.notes = list(found.notes)  # the working tree's notes do not apply to the commit
    entry.file_notes = list(found.file_notes)
    entry.problem = f"{found.problem} at commit {short}, the last before the deadline" if found.problem else ""
    if skipped:
        entry.notes.append(f"{len(skipped)} link(s) or special file(s) in .git not read ({', '.join(skipped[:3])})")


def git_info(out: Path, student: str) -> dict | None:
    """What :func:`snapshot` recorded for ``student`` (None: not graded at a deadline)."""
    try:
        return json.loads((out / "work" / student / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None


def describe(info: dict) -> str:
    """The gradebook's note on a clone graded at a deadline."""
    if not info.get("commit"):
        return ""
    text = f"graded at commit {info['commit'][:12]} of {info['date']} (committer date), the last before {info['deadline']}"
    if info.get("after"):
        text += f"; {info['after']} commit(s) after the deadline, not graded (last {info['last_after']})"
    return text
