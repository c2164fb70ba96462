"""Finding the submissions of a class: one entry per student (folder, zip, Gradescope export), and
copying its lab files out through the trusted reader (:mod:`grader.judge.ingest`)."""


from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.judge.ingest import MAX_DEPTH, MAX_LAB_BYTES, SKIP_DIRS, IngestError
from grader.judge.ingest import choose as _choose
from grader.judge.ingest import lab_of as _lab_of
from grader.judge.ingest import read_beneath
from grader.judge.ingest import scan_folder as _scan_folder
from grader.judge.session import LABS


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
    file_notes: list[str] = field(default_factory=list)  # of notes, those the student reads: which file was graded


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


#: A file at the top of SUBMISSIONS with one of these endings is a student's entry (an archive, or
#: code an LMS put there without a folder): graded, or listed as unreadable with the reason.
ENTRY_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".gz", ".bz2", ".xz", ".rar", ".7z",
                  ".py", ".ipynb")
_SKIPPED = ("__MACOSX", "submission_metadata.yml")


def is_stray(path: Path) -> bool:
    """True for a plain file at the top of SUBMISSIONS that is no student's entry (``notes.txt``,
    a grade sheet, an LMS index): not a folder, not a link, not an archive or code file."""
    return (path.is_file() and not path.is_symlink() and not path.name.lower().endswith(ENTRY_SUFFIXES)
            and not path.name.startswith(".") and path.name not in _SKIPPED)


def stray_files(submissions: Path) -> list[str]:
    """The names of the files at the top of SUBMISSIONS that :func:`discover` leaves out (:func:`is_stray`)."""
    if not submissions.is_dir():
        return []
    return sorted(p.name for p in submissions.iterdir() if is_stray(p))


def discover(submissions: Path) -> list[Entry]:
    """Every entry of SUBMISSIONS, with the lab files found in it (or why none can be graded).

    A plain file that is no entry (``notes.txt``: :func:`is_stray`) is left out, not made a
    student; :func:`stray_files` lists those.

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
        if path.name.startswith(".") or path.name in _SKIPPED or is_stray(path):
            continue  # stray files are listed apart (stray_files)
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
                        entry.file_notes.append(entry.notes[-1])
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
                    entry.file_notes.append(note)
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
