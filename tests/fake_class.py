"""A generated class of fake submissions, in the layouts instructors get, for ``grader batch``.

:func:`make_class` writes one entry per student into a folder: GitHub Classroom clones, LMS
downloads, zips of repositories, files at the top level; correct, partly done, stub-only,
buggy, hanging, ``os._exit``-ing, syntax errors, an unreadable zip and two near-copies. Each
variant patches a lab by *appending* a new definition of one function, so the variants keep
working when the reference solution's text changes.

Used by ``tests/test_batch.py`` and ``bench/bench_batch.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.judge.session import LABS, REPO_ROOT

ALT = REPO_ROOT / "tests" / "alt"
SOLUTIONS = REPO_ROOT / "solutions"
STUBS = REPO_ROOT / "labs"

#: Appended to a lab file to replace one function: (lab id, code).
HANG = ("lab01", "\n\ndef graph_autograd(a, b):\n    while True:  # an infinite loop\n        pass\n")
EXIT = ("lab01", "\n\ndef squared_error(y_pred, y):\n    import os\n\n    os._exit(3)\n")
BUG = ("lab01", "\n\ndef graph_backward(a, b):\n    return b + 1.0, a + b  # one path of de/db forgotten\n")
SYNTAX = ("lab01", "\n\ndef graph_forward(a, b)\n    return a\n")


def lab_files(kind: str, patch: tuple[str, str] | None = None) -> dict[str, str]:
    """``{file name: source}`` of all labs: ``alt`` (correct, another style), ``solutions``,
    ``stubs``, or ``partly`` (labs 1-2 correct, the rest stubs); ``patch`` appended to one lab."""
    files = {}
    for i, (lab_id, module) in enumerate(LABS.items()):
        if kind == "partly":
            src = (ALT if i < 2 else STUBS) / f"{module}.py"
        else:
            src = {"alt": ALT, "solutions": SOLUTIONS, "stubs": STUBS}[kind] / f"{module}.py"
        files[f"{module}.py"] = src.read_text()
    if patch:
        lab_id, code = patch
        files[f"{LABS[lab_id]}.py"] += code
    return files


def near_copy(files: dict[str, str]) -> dict[str, str]:
    """The same code with comments changed and a blank line added: what a copier would hand in."""
    out = {}
    for name, text in files.items():
        lines = [line.split("  #")[0] if "  #" in line and '"' not in line and "'" not in line else line
                 for line in text.splitlines()]
        out[name] = "# my own work\n\n" + "\n".join(lines) + "\n"
    return out


def _write_tree(root: Path, files: dict[str, str], labs_sub: str = "labs", extra: bool = True) -> None:
    target = root / labs_sub if labs_sub else root
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text)
    if extra:  # what else a repository clone holds
        (root / "README.md").write_text("# mri-dl-labs\n")
        (root / "grader").mkdir(exist_ok=True)
        (root / "grader" / "test_lab01_autograd.py").write_text("# a student's copy of the public tests\n")


def _write_zip(path: Path, files: dict[str, str], prefix: str) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{prefix}{name}", text)
        zf.writestr(f"{prefix.split('labs/')[0]}README.md", "# mri-dl-labs\n")
        zf.writestr("__MACOSX/._README.md", "junk")


#: student -> what their submission is, and the status the batch must give.
CLASS = {
    "classroom-alice": ("alt, GitHub Classroom clone", "ok"),
    "classroom-bob": ("partly done (labs 1-2), files at the top level", "ok"),
    "carol.zip": ("stubs, zip of a repository clone", "ok"),
    "Dave Smith_1234_assignsubmission_file_": ("planted bug in lab 1 de/db, LMS folder around a clone", "ok"),
    "erin": ("lab 1 hangs in graph_autograd", "timed out"),
    "frank.zip": ("lab 1 calls os._exit, zip with files at the top", "crashed"),
    "grace": ("syntax error in lab 1", "crashed"),
    "heidi.zip": ("not a zip file", "unreadable"),
    "ivan": ("solutions (correct)", "ok"),
    "judy": ("near-copy of ivan", "ok"),
    "mallory": ("no lab file (a README only)", "unreadable"),
    "oscar": ("only lab 2 submitted (alt)", "ok"),
    "peggy": ("alt, labs/ nested three folders deep", "ok"),
}


#: Files at the top of the class folder that are no student's entry: listed apart, never graded.
STRAY = {"notes.txt": "a file the LMS put there"}


def make_class(dest: Path, size: int | None = None) -> dict[str, tuple[str, str]]:
    """Write the class of :data:`CLASS` into ``dest``; returns :data:`CLASS` (entry -> what, status).

    With ``size``, write that many entries: copies of the class in turn (``name-2``, ...).
    """
    if size is None:
        return _make_one(dest)
    made: dict[str, tuple[str, str]] = {}
    copy = 1
    while len(made) < size:
        part = dest.parent / f".{dest.name}-copy{copy}"
        for name, info in _make_one(part).items():
            if len(made) == size:
                break
            stem, dot, ext = name.partition(".") if name.endswith((".zip", ".txt")) else (name, "", "")
            new = name if copy == 1 else f"{stem}-{copy}{dot}{ext}"
            dest.mkdir(parents=True, exist_ok=True)
            (part / name).rename(dest / new)
            made[new] = info
        import shutil

        shutil.rmtree(part)
        copy += 1
    return made


def _make_one(dest: Path) -> dict[str, tuple[str, str]]:
    dest.mkdir(parents=True, exist_ok=True)
    _write_tree(dest / "classroom-alice", lab_files("alt"))
    _write_tree(dest / "classroom-bob", lab_files("partly"), labs_sub="", extra=False)
    _write_zip(dest / "carol.zip", lab_files("stubs"), "mri-dl-labs-main/labs/")
    _write_tree(dest / "Dave Smith_1234_assignsubmission_file_" / "mri-dl-labs", lab_files("alt", BUG))
    _write_tree(dest / "erin", lab_files("alt", HANG))
    _write_zip(dest / "frank.zip", lab_files("alt", EXIT), "")
    _write_tree(dest / "grace", lab_files("alt", SYNTAX))
    (dest / "heidi.zip").write_bytes(b"this is not a zip file\n")
    ivan = lab_files("solutions")
    _write_tree(dest / "ivan", ivan)
    _write_tree(dest / "judy", near_copy(ivan))
    (dest / "mallory").mkdir(exist_ok=True)
    (dest / "mallory" / "README.md").write_text("I could not finish\n")
    (dest / "notes.txt").write_text("a file the LMS put here\n")  # STRAY: not in CLASS
    _write_tree(dest / "oscar", {f"{LABS['lab02']}.py": lab_files("alt")[f"{LABS['lab02']}.py"]})
    _write_tree(dest / "peggy" / "a" / "b", lab_files("alt"), extra=False)
    return CLASS
