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
* names come from an allow-list (the lab modules of :data:`grader.registry.LABS`), or are one of
  the usual renames of such a name (:func:`renamed_lab_of`: ``lab04_dti (1).py``, ``lab04_dti -
  Copy.py``, ``Lab04_DTI.py``, ...), taken only when no file of the lab has the exact name and
  exactly one has a renamed one, and always said (:func:`choose`);
* what is read is written into folders the reader owns, never into the student's.

Everything after ingestion works on the bytes. ``python -m grader.judge.ingest SUBMISSION LABS_DIR``
is what Gradescope's ``run_autograder`` runs as root: besides the lab files it writes
:data:`MARKER` into LABS_DIR, what the judge says about the submission (the lines at the top of
the results, the message of a lab whose file is missing), and it removes the release's stub of a
lab the submission has no file for, so that lab is graded as missing, not as the stub
(:func:`graded_folder_notes` reads the marker back, or, without one, looks at a local folder).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import textsafe

#: A lab file is 10-40 kB; anything over this is not one (and is never read whole).
MAX_LAB_BYTES = 2_000_000
#: Folders never searched for lab files (tooling, caches, macOS zip debris).
SKIP_DIRS = {".git", ".venv", "venv", "env", "__pycache__", "__MACOSX", "node_modules", "site-packages",
             ".pytest_cache", "data", "figures", "grader", "tests", "solutions"}
#: entry/<clone>/<repo>/labs/labNN.py is depth 3; one more for an LMS folder around it.
MAX_DEPTH = 4
#: Folders visited at most in one submission (a tree of a million empty folders is not a lab).
MAX_FOLDERS = 2000
#: Names of a submission's files kept for the "your submission has: ..." line, and shown in it.
MAX_LISTED, MAX_SHOWN = 200, 12
#: What ``python -m grader.judge.ingest`` writes into LABS_DIR for the judge (:func:`graded_folder_notes`).
MARKER = ".submission.json"

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


def exact_lab_of(name: str) -> str | None:
    """The lab id (``"lab01"``) whose module file is exactly ``name`` (``"lab01_autograd.py"``), else None."""
    from grader.registry import LABS

    for lab_id, module in LABS.items():
        if name == f"{module}.py":
            return lab_id
    return None


# The usual renames of a file downloaded or copied twice, at the end of its stem (lower case):
# browsers " (1)", Windows " - Copy" / " - Copy (2)", macOS " copy" / " copy 2", GNOME " (copy)",
# "_copy" / "-copy", Canvas's resubmission "-1". Removed repeatedly ("x (1) (1)").
_COPY_SUFFIX = re.compile(r"(?:\s*\((?:\d{1,3}|copy)\)|\s*[-_ ]\s*copy(?:\s*\(?\d{1,3}\)?)?|-\d{1,3})$")


def renamed_lab_of(name: str) -> str | None:
    """The lab id whose module file ``name`` is a usual rename of (not the exact name), else None.

    Recognised, alone or together: another case (``Lab04_DTI.py``, ``.PY``); ``-`` for ``_``
    (``lab04-dti.py``); a copy suffix (``lab04_dti (1).py``, ``lab04_dti - Copy.py``,
    ``lab04_dti copy 2.py``, ``lab04_dti_copy.py``, ``lab04_dti-1.py``); a prefix joined by ``_``,
    ``-`` or a space (a flattened folder ``labs_lab04_dti.py``, an LMS's ``doe_123_lab04_dti.py``,
    ``Copy of lab04_dti.py``). Never a hidden name (``._lab04_dti.py``, macOS zip debris) or a
    test file (``test_lab04_dti.py``).
    """
    from grader.registry import LABS

    if exact_lab_of(name) or name.startswith(".") or not name.lower().endswith(".py"):
        return None
    stem = name[:-3].strip().lower()
    if stem.startswith("test_"):
        return None
    previous = None
    while stem != previous:
        previous, stem = stem, _COPY_SUFFIX.sub("", stem).rstrip()
    stem = stem.replace("-", "_")
    for lab_id, module in LABS.items():
        if stem == module or (stem.endswith(module) and stem[-len(module) - 1] in "_ "):
            return lab_id
    return None


def lab_of(name: str) -> str | None:
    """The lab id (``"lab01"``) whose module file is ``name`` (``"lab01_autograd.py"``) or a usual
    rename of it (:func:`renamed_lab_of`), else None."""
    return exact_lab_of(name) or renamed_lab_of(name)


def shown(name: str, limit: int = 80) -> str:
    """A student's file name for a line a person reads: no control character or line break
    (:func:`grader.textsafe.terminal`), at most ``limit`` characters."""
    text = textsafe.terminal(name).replace("\n", " ").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def scan_folder(root: Path, max_depth: int = MAX_DEPTH, links: list[str] | None = None,
                files: list[str] | None = None, match=None) -> dict[str, list[str]]:
    """lab id -> relative paths of the regular lab files under ``root``, exact names and renamed
    ones (:func:`lab_of`; :func:`choose` picks one). Links are not followed; lab files that are
    links go to ``links`` if given, and the relative paths of all files seen (at most
    :data:`MAX_LISTED`) to ``files``. Skipped folders: :data:`SKIP_DIRS` and hidden ones.

    ``match`` (default :func:`lab_of`) maps a file name to the key it is found under, or None:
    another kind of file (``QUESTIONS.md``) is found by the same walk.

    Raises:
        IngestError: ``root`` itself cannot be opened as a folder.
    """
    match = match or lab_of
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
                    if files is not None and len(files) < MAX_LISTED and not e.is_dir(follow_symlinks=False):
                        files.append("/".join(prefix + (e.name,)))
                    if e.is_symlink():
                        if links is not None and match(e.name):
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
                        key = match(e.name)
                        if key:
                            found.setdefault(key, []).append("/".join(prefix + (e.name,)))
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return found


def choose(lab_id: str, candidates: list[str]) -> tuple[str, str]:
    """The lab file to grade among the paths of one lab in one submission (:func:`scan_folder`), and
    a note when there was a choice ("" when there was none).

    A file with the exact name wins over renamed ones; among several exact ones, the one in
    ``labs/``, then the shallowest. Without an exact name, the one renamed file is taken
    ("took `lab04_dti (1).py` as labs/lab04_dti.py"); two or more are ambiguous: none is taken,
    the path returned is ``""`` and the note says why.
    """
    from grader.registry import LABS

    module = LABS[lab_id]

    def rank(path: str) -> tuple:
        parts = path.split("/")
        return (0 if len(parts) > 1 and parts[-2] == "labs" else 1, len(parts), path)

    exact = sorted((c for c in candidates if exact_lab_of(c.rsplit("/", 1)[-1])), key=rank)
    renamed = sorted((c for c in candidates if not exact_lab_of(c.rsplit("/", 1)[-1])), key=rank)
    listed = ", ".join(f"`{shown(c)}`" for c in renamed[:MAX_SHOWN]) + (", ..." if len(renamed) > MAX_SHOWN else "")
    if exact:
        best = exact[0]
        notes = [f"{lab_id}: {len(exact)} copies of {module}.py, graded {shown(best)}"] if len(exact) > 1 else []
        if renamed:
            notes.append(f"{lab_id}: graded {shown(best)}; not graded (not named {module}.py): {listed}")
        return best, "; ".join(notes)
    if len(renamed) == 1:
        return renamed[0], f"took `{shown(renamed[0])}` as labs/{module}.py"
    return "", (f"{module}.py not found; {len(renamed)} files could be it: {listed}: none was graded "
                f"(name the one to grade {module}.py)")


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
    """What :func:`ingest_submission` found.

    Attributes:
        files: lab id -> (relative path, bytes) of the files taken.
        notes: what was chosen, when there was a choice (:func:`choose`).
        refused: lab files that are links, not regular or too long, with the reason.
        missing: lab id -> the line that says why a wanted lab has no file
            ("lab04_dti.py not found; your submission has: ...").
        lines: lab id -> the lines a student reads about that lab (notes, refusals, missing).
    """

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)


def listing(files: list[str], limit: int = MAX_SHOWN) -> str:
    """``a.py, notes.txt, ...``: at most ``limit`` names (:func:`shown`), and how many in all."""
    if not files:
        return "no files"
    names = ", ".join(shown(f) for f in files[:limit])
    if len(files) > limit:
        more = f"{len(files)} files in all" if len(files) < MAX_LISTED else f"{MAX_LISTED} files or more"
        names += f", ... ({more})"
    return names


def ingest_submission(root: Path, lab_ids: list[str] | None = None) -> Ingested:
    """Find and read the lab files of one submission folder, once, as bytes.

    Args:
        root: the submission (read without following any link inside it).
        lab_ids: the labs wanted (None: every lab of :data:`grader.registry.LABS`).

    Returns:
        :class:`Ingested`; a lab file that is a link, not regular or too long is in ``refused``
        with the reason (the other labs are still taken); a wanted lab with no file taken is in
        ``missing`` (with the submission's files named when none matched).
    """
    from grader.registry import LABS

    wanted = list(LABS) if lab_ids is None else [lab_id for lab_id in LABS if lab_id in lab_ids]
    result = Ingested()
    links: list[str] = []
    seen: list[str] = []
    found = scan_folder(root, links=links, files=seen)

    def say(lab_id: str, line: str) -> None:
        result.lines.setdefault(lab_id, []).append(line)

    for rel in links:
        lab_id = lab_of(rel.rsplit("/", 1)[-1])
        if lab_id not in found and lab_id in wanted:
            line = f"{lab_id}: {shown(rel)} is a symbolic link: submit the file itself, links are not followed"
            result.refused.append(line)
            say(lab_id, line)
    for lab_id in wanted:
        if lab_id not in found:
            continue
        rel, note = choose(lab_id, found[lab_id])
        if note:
            say(lab_id, note)
        if not rel:  # ambiguous: the note says why none was taken
            result.missing[lab_id] = note
            continue
        if note:
            result.notes.append(note)
        try:
            result.files[lab_id] = (rel, read_beneath(root, rel))
        except IngestError as exc:
            line = f"{lab_id}: {shown(str(exc), 300)}"
            result.refused.append(line)
            say(lab_id, line)
    for lab_id in wanted:
        if lab_id not in found and not any(r.startswith(f"{lab_id}: ") for r in result.refused):
            line = f"{LABS[lab_id]}.py not found; your submission has: {listing(seen)}"
            result.missing[lab_id] = line
            say(lab_id, line)
    return result


def missing_message(module: str, where: str = "your submission", why: str = "") -> str:
    """The message of every check of a lab whose file is missing (one line per lab in a report)."""
    return f"file missing: {module}.py was not found in {where}" + (f" ({why})" if why else "")


def write_marker(labs_dir: Path, got: Ingested, lab_ids: list[str], general: list[str] = ()) -> Path:
    """Write :data:`MARKER` into ``labs_dir`` (the caller's folder): per wanted lab, the lines a
    student reads about it and the message of its checks if its file is missing."""
    from grader.registry import LABS

    labs = {}
    for lab_id in lab_ids:
        missing = None
        if lab_id not in got.files:
            refused = [r for r in got.refused if r.startswith(f"{lab_id}: ")]
            missing = missing_message(LABS[lab_id], why="it was refused: see the top of the output" if refused else "")
        labs[lab_id] = {"lines": got.lines.get(lab_id, []), "missing": missing}
    data = json.dumps({"general": list(general), "labs": labs}, indent=1).encode()
    return write_new(labs_dir, MARKER, data)


def graded_folder_notes(folder: Path, lab_ids: list[str], where: str) -> tuple[list[str], dict[str, str]]:
    """What the judge says about the graded folder's files: (lines for the top of the results,
    lab id -> the message of the checks of a lab whose file is missing).

    With :data:`MARKER` in ``folder`` (written by ``python -m grader.judge.ingest``, the trusted side of
    an autograder, into a folder of its own): its lines and messages. Without (a local
    ``python -m grader``, ``--labs-dir DIR``): a lab of ``lab_ids`` whose file is not in
    ``folder`` is named with the folder's files, and a renamed copy of a lab file
    (:func:`renamed_lab_of`) is named whether or not the exact one is there (only the exact name
    is graded). ``where`` names the folder in those lines (``labs``).
    """
    from grader.registry import LABS

    try:
        marker = json.loads(read_beneath(folder, MARKER, limit=MAX_LAB_BYTES))
    except Missing:
        marker = None
    except (IngestError, OSError, ValueError):
        return ([f"{MARKER} of the graded folder is unreadable: ask the course staff"],
                {lab_id: missing_message(LABS[lab_id], where) for lab_id in lab_ids})
    if isinstance(marker, dict):
        labs = marker.get("labs", {})
        lines = [shown(str(x), 2000) for x in marker.get("general", [])]
        missing = {}
        for lab_id in lab_ids:
            info = labs.get(lab_id) or {}
            lines += [shown(str(x), 2000) for x in info.get("lines", [])]
            if info.get("missing"):
                missing[lab_id] = shown(str(info["missing"]), 2000)
        return lines, missing
    seen: list[str] = []
    try:
        found = scan_folder(folder, max_depth=0, files=seen)
    except (OSError, IngestError):
        return [], {lab_id: missing_message(LABS[lab_id], where) for lab_id in lab_ids}
    lines, missing = [], {}
    for lab_id in lab_ids:
        module = LABS[lab_id]
        renamed = [c for c in found.get(lab_id, []) if not exact_lab_of(c)]
        named = ", ".join(f"`{shown(c)}`" for c in renamed[:MAX_SHOWN])
        if f"{module}.py" in found.get(lab_id, []):
            if renamed:
                lines.append(f"{where}/ also has {named}: only {module}.py is graded")
            continue
        if renamed:
            hint = f"{where}/ has {named}: rename it to {module}.py"
        else:
            hint = f"restore it from the release; the file name must stay {module}.py"
        lines.append(f"{module}.py not found in {where}/; it has: {listing(seen)}")
        missing[lab_id] = missing_message(module, f"{where}/", hint)
    return lines, missing


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.judge.ingest SUBMISSION LABS_DIR [MODULE ...]``: copy the submission's lab files
    (of the labs whose modules are named; default all) into LABS_DIR, a folder of the caller's.

    A wanted lab with no file taken has its file in LABS_DIR removed (the release's stub), so that
    it is graded as missing; :data:`MARKER` tells the judge why (:func:`write_marker`). Prints one
    line per file taken or refused and the lines of the marker; exit code 0 (even when none is found).
    """
    from grader.registry import LABS

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("usage: python -m grader.judge.ingest SUBMISSION LABS_DIR [MODULE ...]", file=sys.stderr)
        return 2
    sub, labs_dir, modules = Path(argv[0]), Path(argv[1]), argv[2:]
    wanted = [lab_id for lab_id, m in LABS.items() if not modules or m in modules]
    general: list[str] = []
    try:
        got = ingest_submission(sub, wanted)
    except (OSError, IngestError) as exc:
        general.append(f"the submission folder cannot be read: {shown(str(exc), 300)}")
        got = Ingested()
    for lab_id, (rel, data) in got.files.items():
        write_new(labs_dir, f"{LABS[lab_id]}.py", data)
        print(f"taken: {shown(rel)} ({len(data)} bytes)")
    for lab_id in wanted:
        if lab_id not in got.files:
            (labs_dir / f"{LABS[lab_id]}.py").unlink(missing_ok=True)  # the stub is not the student's work
    write_marker(labs_dir, got, wanted, general)
    for line in general:
        print(line)
    for line in got.notes:
        print(f"note: {line}")
    for line in got.refused:
        print(f"refused: {line}")
    for lab_id, line in got.missing.items():
        print(f"missing: {line}")
    print(f"found {len(got.files)} lab files in the submission")
    return 0


if __name__ == "__main__":
    sys.exit(main())
