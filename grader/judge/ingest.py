"""Student files are bytes, never paths: the one place trusted code reads what a student controls.

A submission (a Gradescope upload, a GitHub Classroom clone, an LMS folder) and a worker's scratch
folder are written by someone the grader does not trust. They may hold symbolic links to the
hidden tests or to a classmate's file, FIFOs that block a reader, ``/dev/zero`` behind a lab
file's name, or folders swapped for links while they are read. Trusted code (root on an
autograder) therefore reads them only through this module:

* every folder is opened relative to the one above it with ``O_NOFOLLOW | O_DIRECTORY`` and every
  file with ``O_NOFOLLOW | O_NONBLOCK``, so no link is ever followed, not even in the middle of a
  path (``openat(2)`` walk, as ``shutil.rmtree`` does to avoid symlink attacks);
* only regular files (``S_ISREG`` on the opened descriptor) are read, at most ``limit + 1``
  bytes, so a file that grows or lies about its size is caught;
* names come from an allow-list (the lab modules of :data:`grader.registry.LABS`);
* what is read is written into folders the reader owns, never into the student's.

Everything after ingestion works on the bytes. ``python -m grader.judge.ingest SUBMISSION LABS_DIR``
is what Gradescope's ``run_autograder`` runs as root.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: A lab file is 10-40 kB; anything over this is not one (and is never read whole).
MAX_LAB_BYTES = 2_000_000
#: Folders never searched for lab files (tooling, caches, macOS zip debris).
SKIP_DIRS = {".git", ".venv", "venv", "env", "__pycache__", "__MACOSX", "node_modules", "site-packages",
             ".pytest_cache", "data", "figures", "grader", "tests", "solutions"}
#: entry/<clone>/<repo>/labs/labNN.py is depth 3; one more for an LMS folder around it.
MAX_DEPTH = 4
#: Folders visited at most in one submission (a tree of a million empty folders is not a lab).
MAX_FOLDERS = 2000

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class IngestError(Exception):
    """A student file that trusted code refuses to read (the message says why, with its relative path)."""


class Missing(IngestError):
    """The file (or a folder on its way) does not exist."""


def _open_dir_at(parent_fd: int | None, name: str, shown: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise IngestError(f"{shown} is a link or not a folder: links are not followed") from None
        cls = Missing if exc.errno == errno.ENOENT else IngestError
        raise cls(f"{shown} cannot be opened ({exc.strerror})") from None


def read_fd_regular(fd: int, shown: str, limit: int) -> bytes:
    """Read at most ``limit`` bytes from an open descriptor of a regular file.

    Raises:
        IngestError: not a regular file (a FIFO, a device, a folder), or longer than ``limit``.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise IngestError(f"{shown} is not a regular file (a link, device, FIFO or folder): only plain files are read")
    if info.st_size > limit:
        raise IngestError(f"{shown} is {info.st_size} bytes, more than the {limit} a lab file can be")
    chunks, got = [], 0
    while got <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > limit:
        raise IngestError(f"{shown} is more than {limit} bytes, more than a lab file can be")
    return b"".join(chunks)


def read_beneath(base: Path, rel: str, limit: int = MAX_LAB_BYTES, owner: int | None = None) -> bytes:
    """The bytes of the regular file ``base/rel``, without following any link below ``base``.

    Args:
        base: a folder the caller trusts (its own path is opened normally).
        rel: a relative POSIX path inside ``base`` (no ``..``, not absolute).
        limit: bytes at most; a longer file is refused without being read whole.
        owner: if given, the file must belong to this uid (a worker's file, not a hard link to
            someone else's).

    Raises:
        IngestError: ``rel`` escapes ``base``, a component is a link or missing, the file is not
            regular, is too long or has another owner.
    """
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise IngestError(f"{rel} is not a path inside the submission")
    fd = os.open(base, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for k, name in enumerate(parts[:-1]):
            nxt = _open_dir_at(fd, name, "/".join(parts[: k + 1]))
            os.close(fd)
            fd = nxt
        try:
            ffd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IngestError(f"{rel} is a symbolic link: submit the file itself, links are not followed") from None
            cls = Missing if exc.errno == errno.ENOENT else IngestError
            raise cls(f"{rel} cannot be read ({exc.strerror})") from None
        try:
            if owner is not None and os.fstat(ffd).st_uid != owner:
                raise IngestError(f"{rel} does not belong to the user that wrote it")
            return read_fd_regular(ffd, rel, limit)
        finally:
            os.close(ffd)
    finally:
        os.close(fd)


def lab_of(name: str) -> str | None:
    """The lab id (``"lab01"``) whose module file is ``name`` (``"lab01_autograd.py"``), else None."""
    from grader.registry import LABS

    for lab_id, module in LABS.items():
        if name == f"{module}.py":
            return lab_id
    return None


def scan_folder(root: Path, max_depth: int = MAX_DEPTH, links: list[str] | None = None) -> dict[str, list[str]]:
    """lab id -> relative paths of the regular lab files under ``root`` (links are not followed,
    and lab files that are links go to ``links`` if given; skipped folders: :data:`SKIP_DIRS` and
    hidden ones).

    Raises:
        IngestError: ``root`` itself cannot be opened as a folder.
    """
    found: dict[str, list[str]] = {}
    top = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    stack: list[tuple[int, tuple[str, ...]]] = [(top, ())]
    visited = 0
    try:
        while stack:
            fd, prefix = stack.pop()
            visited += 1
            try:
                with os.scandir(fd) as it:
                    entries = sorted(it, key=lambda e: e.name)
                for e in entries:
                    if e.is_symlink():
                        if links is not None and lab_of(e.name):
                            links.append("/".join(prefix + (e.name,)))
                        continue
                    if e.is_dir(follow_symlinks=False):
                        if (len(prefix) < max_depth and e.name not in SKIP_DIRS and not e.name.startswith(".")
                                and visited + len(stack) < MAX_FOLDERS):
                            try:
                                stack.append((_open_dir_at(fd, e.name, e.name), prefix + (e.name,)))
                            except IngestError:
                                pass  # swapped for a link meanwhile, or unreadable: not a lab folder
                    elif e.is_file(follow_symlinks=False):
                        lab_id = lab_of(e.name)
                        if lab_id:
                            found.setdefault(lab_id, []).append("/".join(prefix + (e.name,)))
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return found


def choose(lab_id: str, candidates: list[str]) -> tuple[str, str]:
    """The lab file to grade among several paths in one submission (one in ``labs/`` first, then the
    shallowest), and a note when there was a choice."""
    from grader.registry import LABS

    def rank(path: str) -> tuple:
        parts = path.split("/")
        return (0 if len(parts) > 1 and parts[-2] == "labs" else 1, len(parts), path)

    best = sorted(candidates, key=rank)[0]
    note = f"{lab_id}: {len(candidates)} copies of {LABS[lab_id]}.py, graded {best}" if len(candidates) > 1 else ""
    return best, note


def write_new(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name`` (replacing a file there) without following a link at ``name``.

    ``folder`` must be the caller's own (not writable by student code): the file is created under
    a fresh name with ``O_EXCL`` and renamed over ``name``.
    """
    path = folder / name
    tmp = folder / f".{name}.{os.getpid()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # readable by the worker whatever the umask (run_autograder sets 077)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return path


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)


@dataclass
class Ingested:
    """What :func:`ingest_submission` found: lab id -> (relative path, bytes), notes, refusals."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def ingest_submission(root: Path, lab_ids: list[str] | None = None) -> Ingested:
    """Find and read the lab files of one submission folder, once, as bytes.

    Args:
        root: the submission (read without following any link inside it).
        lab_ids: the labs wanted (None: every lab of :data:`grader.registry.LABS`).

    Returns:
        :class:`Ingested`; a lab file that is a link, not regular or too long is in ``refused``
        with the reason (the other labs are still taken).
    """
    result = Ingested()
    links: list[str] = []
    found = scan_folder(root, links=links)
    for rel in links:
        lab_id = lab_of(rel.rsplit("/", 1)[-1])
        if lab_id not in found and (lab_ids is None or lab_id in lab_ids):
            result.refused.append(f"{lab_id}: {rel} is a symbolic link: submit the file itself, links are not followed")
    for lab_id, candidates in sorted(found.items()):
        if lab_ids is not None and lab_id not in lab_ids:
            continue
        rel, note = choose(lab_id, candidates)
        if note:
            result.notes.append(note)
        try:
            result.files[lab_id] = (rel, read_beneath(root, rel))
        except IngestError as exc:
            result.refused.append(f"{lab_id}: {exc}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.judge.ingest SUBMISSION LABS_DIR [MODULE ...]``: copy the submission's lab files
    (of the labs whose modules are named; default all) into LABS_DIR, a folder of the caller's.

    Prints one line per file taken or refused; exit code 0 (even when none is found).
    """
    from grader.registry import LABS

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("usage: python -m grader.judge.ingest SUBMISSION LABS_DIR [MODULE ...]", file=sys.stderr)
        return 2
    sub, labs_dir, modules = Path(argv[0]), Path(argv[1]), argv[2:]
    wanted = [lab_id for lab_id, m in LABS.items() if not modules or m in modules]
    try:
        got = ingest_submission(sub, wanted)
    except (OSError, IngestError) as exc:
        print(f"the submission folder cannot be read: {exc}")
        return 0
    for lab_id, (rel, data) in got.files.items():
        write_new(labs_dir, f"{LABS[lab_id]}.py", data)
        print(f"taken: {rel} ({len(data)} bytes)")
    for line in got.notes:
        print(f"note: {line}")
    for line in got.refused:
        print(f"refused: {line}")
    print(f"found {len(got.files)} lab files in the submission")
    return 0


if __name__ == "__main__":
    sys.exit(main())
