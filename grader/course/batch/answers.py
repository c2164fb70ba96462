"""Written answers (``labs/QUESTIONS.md``) across a class: collected per student, written per question.

During a batch, each entry's ``QUESTIONS.md`` is found as its lab files are (top level, ``labs/``,
up to :data:`grader.judge.ingest.MAX_DEPTH` folders deeper, the one in ``labs/`` first), read as
bytes through the trusted reader (:func:`grader.questions.read_from_folder`: no link followed,
regular files only, at most :data:`grader.questions.MAX_BYTES`; from a zip, the member's size is
checked first) and copied to ``OUTDIR/work/<student>/QUESTIONS.md``, with
``work/<student>/answers.json`` saying where it was found or why it was refused. Nothing of it
is graded automatically.

:func:`write_answer_files` then writes, for every question of every graded lab,
``OUTDIR/answers/labNN_qK.md``: the question (from the course's template) once, then each
student's answer as a block quote, escaped (:func:`grader.textsafe.markdown`: no raw HTML, a
heading inside an answer stays inside its quote), or *no answer* / *no QUESTIONS.md* where it is
missing. An answer that is empty or the template's own text is missing. A TA grades one question
for the whole class at a time (as nbgrader's formgrader and Gradescope's "grade by question" do)
and records the points in the manual-points file (:mod:`grader.course.batch.manual`).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from grader import questions, scoring, textsafe
from grader.course.batch.discover import Entry
from grader.course.batch.reports import write_atomic
from grader.judge.ingest import IngestError

ANSWERS_FILE = questions.FILE_NAME
INFO_FILE = "answers.json"


def collect(entry: Entry, workdir: Path) -> None:
    """Copy the entry's QUESTIONS.md to ``workdir/QUESTIONS.md`` (removing an older copy) and record
    where it came from, or why it was not read, in ``workdir/answers.json``. Never raises for a
    student's file."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ANSWERS_FILE).unlink(missing_ok=True)
    info: dict = {"path": "", "problem": ""}
    try:
        found = _read(entry)
        if found is None:
            info["problem"] = f"no {ANSWERS_FILE} in the submission"
        else:
            info["path"] = found[0]
            write_atomic(workdir / ANSWERS_FILE, found[1])
    except (IngestError, OSError, zipfile.BadZipFile, RuntimeError, KeyError) as exc:
        info["problem"] = f"{ANSWERS_FILE} not read: {exc}"
    write_atomic(workdir / INFO_FILE, json.dumps(info))


def _read(entry: Entry) -> tuple[str, bytes] | None:
    src = entry.source
    if src.is_symlink():
        return None
    if src.is_dir():
        return questions.read_from_folder(src)
    if src.is_file() and src.suffix.lower() == ".zip":
        with zipfile.ZipFile(src) as zf:
            rel = questions.choose(questions.zip_candidates(zf.namelist()))
            if rel is None:
                return None
            info = zf.getinfo(rel)
            if info.file_size > questions.MAX_BYTES:
                raise IngestError(f"{rel} is {info.file_size} bytes, more than the {questions.MAX_BYTES} read")
            return rel, zf.read(info)
    return None


def load(workdir: Path, tmpl: dict) -> tuple[dict[int, dict[int, str | None]] | None, str]:
    """(lab -> question -> answer or None, problem) of a student's collected QUESTIONS.md; the
    answers are None where no file was collected (the problem says why)."""
    try:
        info = json.loads((workdir / INFO_FILE).read_text())
    except (OSError, ValueError):
        info = {"problem": "not collected (graded before answers were collected: run the batch again)"}
    path = workdir / ANSWERS_FILE
    if not path.is_file():
        return None, str(info.get("problem") or f"no {ANSWERS_FILE}")
    return questions.answers_of(questions.decode(path.read_bytes()), tmpl), ""


def lab_numbers(labs: list[str]) -> list[int]:
    return [scoring.lab_number(lab) for lab in labs]


def write_answer_files(out: Path, students: list[str], labs: list[str], tmpl: dict) -> dict[str, dict[str, dict[int, bool]]]:
    """``OUTDIR/answers/labNN_qK.md`` for every question of the graded ``labs``; returns
    student -> lab id -> question -> answered. Older files of this folder are replaced."""
    folder = out / "answers"
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    loaded = {s: load(out / "work" / s, tmpl) for s in students}
    answered_by: dict[str, dict[str, dict[int, bool]]] = {s: {} for s in students}
    for lab in lab_numbers(labs):
        lab_id = f"lab{lab:02d}"
        for k, q in tmpl.get(lab, {}).items():
            given = {s: (a.get(lab, {}).get(k) if a is not None else None, problem) for s, (a, problem) in loaded.items()}
            answered = sum(1 for a, _ in given.values() if a is not None)
            lines = [f"# Lab {lab}, question {k}", "", *(f"> {line}" if line else ">" for line in q.text.split("\n")), "",
                     f"{answered} of {len(students)} students answered it. Each answer is the student's text, escaped; "
                     "record points in manual-template.csv (a copy of it) and merge them with --manual.", ""]
            for s in students:
                answer, problem = given[s]
                lines += [f"## {textsafe.markdown(s)}", ""]
                if answer is not None:
                    lines += [questions.quote_markdown(answer), ""]
                elif problem:
                    lines += [f"*(no answer: {textsafe.markdown(problem)})*", ""]
                else:
                    lines += ["*(no answer)*", ""]
            write_atomic(folder / f"{lab_id}_q{k}.md", "\n".join(lines))
        for s, (a, _) in loaded.items():
            answered_by[s][lab_id] = {k: (a or {}).get(lab, {}).get(k) is not None for k in tmpl.get(lab, {})}
    return answered_by
