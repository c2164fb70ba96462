"""A generated class of fake submissions, in the layouts instructors get, for ``grader batch``.

:func:`make_class` writes one entry per student into a folder: GitHub Classroom clones (real Git
repositories, one with commits after :data:`DEADLINE`), LMS downloads, zips of repositories,
files at the top level; correct, partly done, stub-only, buggy, hanging, ``os._exit``-ing,
syntax errors, an unreadable zip, two near-copies, a lab file uploaded twice by a browser
(``lab01_autograd (1).py``) and one with two such candidates; each with its ``QUESTIONS.md``
filled in, left as the template, or missing (:data:`ANSWERS`). :func:`make_roster` writes the
course's roster for it: one student who submitted nothing, one entry that matches nobody. Each
variant patches a lab by *appending* a new definition of one function, so the variants keep
working when the reference solution's text changes.

Used by ``tests/test_batch.py``, ``tests/test_course_workflow.py`` and ``bench/bench_batch.py``.
The Git clones need the ``git`` program (to make them; the batch itself never runs it).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from grader.judge.session import LABS, REPO_ROOT

ALT = REPO_ROOT / "tests" / "alt"
SOLUTIONS = REPO_ROOT / "solutions"
STUBS = REPO_ROOT / "labs"
TEMPLATE = (STUBS / "QUESTIONS.md").read_text()

#: The deadline of the class's Git clones (``batch --deadline``).
DEADLINE = "2026-12-01T23:59+01:00"

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


def filled(answers_by_lab: dict[int, dict[int, str]], text: str = TEMPLATE) -> str:
    """The template with the given answers written after the k-th ``Answer:`` of each lab section."""
    out, lab, k = [], 0, 0
    for line in text.split("\n"):
        if line.startswith("## Lab "):
            lab, k = int(line.split()[2].rstrip(":")), 0
        if line.strip() == "Answer:":
            k += 1
            given = answers_by_lab.get(lab, {}).get(k)
            if given is not None:
                line = line + " " + given
        out.append(line)
    return "\n".join(out)


def run_git(repo: Path, *args: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    if date:
        env.update(GIT_COMMITTER_DATE=date, GIT_AUTHOR_DATE=date)
    subprocess.run(["git", "-c", "user.name=s", "-c", "user.email=s@u.edu", "-c", "init.defaultBranch=main", *args],
                   cwd=repo, env=env, check=True, capture_output=True)


def make_clone(path: Path, versions: list[tuple[str, dict[str, str]]]) -> Path:
    """A Git repository at ``path`` with one commit per (committer date, {relative path: text})."""
    path.mkdir(parents=True)
    run_git(path, "init", "-q")
    for date, files in versions:
        for rel, text in files.items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        run_git(path, "add", "-A")
        run_git(path, "commit", "-qm", f"work of {date}", date=date)
    return path


def _tree(files: dict[str, str], labs_sub: str = "labs", extra: bool = True,
          answers: str | None = None) -> dict[str, str]:
    """{relative path: text} of a submission folder: the lab files in ``labs_sub``, what else a
    repository clone holds (``extra``), and ``answers`` as QUESTIONS.md beside the lab files."""
    prefix = f"{labs_sub}/" if labs_sub else ""
    tree = {f"{prefix}{name}": text for name, text in files.items()}
    if answers is not None:
        tree[f"{prefix}QUESTIONS.md"] = answers
    if extra:
        tree["README.md"] = "# mri-dl-labs\n"
        tree["grader/test_lab01_autograd.py"] = "# a student's copy of the public tests\n"
    return tree


def _write_tree(root: Path, files: dict[str, str], labs_sub: str = "labs", extra: bool = True,
                answers: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in _tree(files, labs_sub, extra, answers).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _write_zip(path: Path, files: dict[str, str], prefix: str, answers: str | None = None) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{prefix}{name}", text)
        if answers is not None:
            zf.writestr(f"{prefix}QUESTIONS.md", answers)
        zf.writestr(f"{prefix.split('labs/')[0]}README.md", "# mri-dl-labs\n")
        zf.writestr("__MACOSX/._README.md", "junk")


#: student -> what their submission is, and the status the batch must give.
CLASS = {
    "classroom-alice": ("alt, GitHub Classroom clone: graded at its last commit before the deadline "
                        "(two later commits, one with a bug)", "ok"),
    "classroom-bob": ("partly done (labs 1-2), a clone with files at the top level, every commit on time", "ok"),
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
    "rupert": ("alt, lab 1 uploaded as `lab01_autograd (1).py` (a second download): taken", "ok"),
    "sybil": ("two renamed candidates for lab 1, `lab01_autograd (1).py` and `lab01_autograd - Copy.py`: "
              "neither graded", "ok"),
}

#: The students' written answers to lab 1 as graded ({question: answer}), "template" (QUESTIONS.md
#: handed in as released) or None (no QUESTIONS.md in the submission, or an unreadable one).
IVAN = {1: "Through c = a + b (d = 2) and through d = b + 1 (c = 3): 2 + 3 = 5. One path gives 2 or 3; "
           "the chain rule sums over every path from b to e.",
        2: "d is learned fast, k slowly: the residual of every sample moves d, k mostly from the large x.",
        3: "One update on x = 5 changes r by -2 lr (x^2 + 1) r: beyond 1 the residual changes sign and grows.",
        4: "float64: a relative precision of about 1e-16, so the squared residuals stop at about 1e-12.",
        5: "backward() adds to .grad: without zeroing, the i-th update would use the sum of i gradients."}
ANSWERS: dict[str, dict[int, str] | str | None] = {
    "classroom-alice": {1: "Two paths, via c and via d: 2 + 3.", 2: "k slowly, d fast."},
    "classroom-bob": "template",
    "carol.zip": {1: "Both paths <b>add</b> up."},
    "Dave Smith_1234_assignsubmission_file_": {k: f"Dave's answer to question {k}." for k in range(1, 6)},
    "erin": "template",
    "frank.zip": {3: "The update overshoots."},
    "grace": "template",
    "heidi.zip": None,
    "ivan": IVAN,
    "judy": IVAN,  # a copier copies the answers too
    "mallory": None,
    "oscar": None,
    "peggy": {1: "Two paths.", 2: "d fast."},
    "rupert": {1: "Rupert wrote questions.md in lower case."},
    "sybil": "template",
}
#: What classroom-alice changed in QUESTIONS.md after the deadline (never collected).
ALICE_LATE = {1: "Rewritten after the deadline.", 3: "Added after the deadline."}

#: Commits of the class's Git clones (committer dates); those after :data:`DEADLINE` are not graded.
#: 2026-12-01T23:30:00+00:00 is 00:30 on 2 December at the deadline's offset (+01:00): late.
ALICE_COMMITS = ("2026-11-20T09:00:00+01:00", "2026-11-30T18:00:00+01:00", "2026-12-01T23:30:00+00:00",
                 "2026-12-03T08:00:00+01:00")
BOB_COMMITS = ("2026-11-20T09:00:00+01:00", "2026-11-29T21:30:00+01:00")
DAVE_COMMITS = ("2026-12-01T23:58:00+01:00",)


def answers_text(entry: str) -> str | None:
    """The QUESTIONS.md of ``entry`` (:data:`ANSWERS`), None when it has none."""
    given = ANSWERS.get(entry)
    if given is None:
        return None
    return TEMPLATE if given == "template" else filled({1: given})


#: Files at the top of the class folder that are no student's entry: listed apart, never graded.
STRAY = {"notes.txt": "a file the LMS put there"}

#: The roster's readable names; the entry that is on no roster row, and the roster student who
#: submitted nothing (:func:`make_roster`).
NAMES = {"classroom-alice": "Alice Adams", "classroom-bob": "Bob Brown", "carol.zip": "Carol Chen",
         "Dave Smith_1234_assignsubmission_file_": "Dave Smith", "erin": "Erin Evans", "frank.zip": "Frank Fox",
         "grace": "Grace Green", "heidi.zip": "Heidi Hill", "ivan": "Ivan Ito", "judy": "Judy Jones",
         "mallory": "Mallory Moore", "oscar": "Oscar Ortiz", "peggy": "Peggy Park", "rupert": "Rupert Reed",
         "sybil": "Sybil Stone"}
UNMATCHED = "peggy"
MISSING = {"id": "S0999", "name": "Trent Tardy", "email": "trent@uni.example", "section": "B", "github": "trent"}


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
        shutil.rmtree(part)
        copy += 1
    return made


def base_entry(name: str) -> tuple[str, int]:
    """(the entry of :data:`CLASS` that ``name`` copies, which copy: 1 for the entry itself)."""
    if name in CLASS:
        return name, 1
    for base in CLASS:
        stem, dot, ext = base.partition(".") if base.endswith(".zip") else (base, "", "")
        head, _, k = name.removesuffix(f"{dot}{ext}").rpartition("-")
        if head == stem and k.isdigit():
            return base, int(k)
    raise KeyError(name)


def make_roster(path: Path, entries) -> list[dict[str, str]]:
    """Write the course's roster for the class ``entries`` (names as :func:`make_class` made them) to
    ``path`` and return its rows: every student but :data:`UNMATCHED` (and its copies), matched by
    their GitHub handle (the clones ``classroom-<handle>``), the LMS folder or zip name, or their
    username (the other folders), and :data:`MISSING`, who submitted nothing."""
    rows = []
    for i, name in enumerate(entries):
        base, copy = base_entry(name)
        if base == UNMATCHED:
            continue
        suffix = f" {copy}" if copy > 1 else ""
        row = {"id": f"S{1001 + i}", "name": NAMES[base] + suffix, "section": "AB"[i % 2], "github": "",
               "username": "", "folder": ""}
        if name.startswith("classroom-"):
            row["github"] = name.removeprefix("classroom-")
        elif name.endswith(".zip") or "_assignsubmission_" in name:
            row["folder"] = name
        else:
            row["username"] = name
        row["email"] = NAMES[base].split()[0].lower() + (f"{copy}" if copy > 1 else "") + "@uni.example"
        rows.append(row)
    rows.append({"username": "", "folder": "", **MISSING})
    with Path(path).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "name", "email", "section", "github", "username", "folder"])
        w.writeheader()
        w.writerows(rows)
    return rows


def _make_one(dest: Path) -> dict[str, tuple[str, str]]:
    dest.mkdir(parents=True, exist_ok=True)
    alt, stubs = lab_files("alt"), lab_files("stubs")
    # GitHub Classroom clones: the starter commit (the release), the student's work, late commits.
    make_clone(dest / "classroom-alice", list(zip(ALICE_COMMITS, [
        _tree(stubs, answers=TEMPLATE),
        _tree(alt, answers=answers_text("classroom-alice")),
        _tree(lab_files("alt", BUG), answers=filled({1: ALICE_LATE})),
        {"notes.txt": "to do after the deadline\n"}])))
    make_clone(dest / "classroom-bob", list(zip(BOB_COMMITS, [
        _tree(stubs, labs_sub="", extra=False, answers=TEMPLATE),
        _tree(lab_files("partly"), labs_sub="", extra=False, answers=answers_text("classroom-bob"))])))
    _write_zip(dest / "carol.zip", stubs, "mri-dl-labs-main/labs/", answers_text("carol.zip"))
    dave = "Dave Smith_1234_assignsubmission_file_"
    make_clone(dest / dave / "mri-dl-labs", list(zip(DAVE_COMMITS, [
        _tree(lab_files("alt", BUG), answers=answers_text(dave))])))
    _write_tree(dest / "erin", lab_files("alt", HANG), answers=answers_text("erin"))
    _write_zip(dest / "frank.zip", lab_files("alt", EXIT), "", answers_text("frank.zip"))
    _write_tree(dest / "grace", lab_files("alt", SYNTAX), answers=answers_text("grace"))
    (dest / "heidi.zip").write_bytes(b"this is not a zip file\n")
    ivan = lab_files("solutions")
    _write_tree(dest / "ivan", ivan, answers=answers_text("ivan"))
    _write_tree(dest / "judy", near_copy(ivan), answers=answers_text("judy"))
    (dest / "mallory").mkdir(exist_ok=True)
    (dest / "mallory" / "README.md").write_text("I could not finish\n")
    (dest / "notes.txt").write_text("a file the LMS put here\n")  # STRAY: not in CLASS
    _write_tree(dest / "oscar", {f"{LABS['lab02']}.py": alt[f"{LABS['lab02']}.py"]})
    _write_tree(dest / "peggy" / "a" / "b", alt, extra=False, answers=answers_text("peggy"))
    # Uploads of single files, as a browser names a second download.
    _write_tree(dest / "rupert", {"lab01_autograd (1).py": alt["lab01_autograd.py"]}, labs_sub="", extra=False)
    (dest / "rupert" / "questions.md").write_text(answers_text("rupert"))
    _write_tree(dest / "sybil", {"lab01_autograd (1).py": alt["lab01_autograd.py"],
                                 "lab01_autograd - Copy.py": stubs["lab01_autograd.py"],
                                 "lab02_backprop.py": alt["lab02_backprop.py"]}, labs_sub="", extra=False,
                answers=answers_text("sybil"))
    return CLASS
