"""``labs/QUESTIONS.md``: the written questions of each lab, and a student's answers to them.

The template (``labs/QUESTIONS.md`` of this repository) has one section per lab, ``## Lab N: ...``,
and in it numbered questions, each a paragraph that starts at the margin (``1. ...``) and is
followed by an ``Answer:`` line. A student writes the answer after ``Answer:``, on that line or
below it. :func:`parse` reads that back, robust to what students do to the file:

* a question starts at a line ``K. ...`` at the margin; when an answer itself holds a numbered
  list (``2. my second point``), the line that equals the template's first line of question K is
  taken, else the last ``K.`` line before the next ``Answer:`` line;
* ``Answer:`` may be written ``**Answer:**`` or ``answer:``; without it, the answer is what
  follows the question's paragraph;
* an answer that is empty, or the same as the template's (white space aside), is *missing*.

Students' files are read as bytes through :mod:`grader.judge.ingest` (no link followed, regular
files only, at most :data:`MAX_BYTES`) and decoded with ``errors="replace"``; the text is the
student's, so every writer escapes it (:mod:`grader.textsafe`).

``python -m grader.questions SUBMISSION RESULTS_JSON [MODULE ...]`` is what Gradescope's
``run_autograder`` runs after grading: it adds to ``results.json`` one visible 0-point test per
graded lab, "labNN: written answers (QUESTIONS.md)", whose output (Markdown, ``output_format``
``md`` of Gradescope's results format) lists each question and the student's answer, escaped,
so that a TA grading by hand reads the answers beside the code and the checks.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader import scoring, textsafe
from grader.judge.ingest import MAX_DEPTH, SKIP_DIRS, IngestError, read_beneath, scan_folder

#: The file's name (matched case-insensitively: ``questions.md`` is found too).
FILE_NAME = "QUESTIONS.md"
#: The template is about 12 kB; a file of answers is refused beyond this.
MAX_BYTES = 1_000_000
TEMPLATE = Path(__file__).resolve().parent.parent / "labs" / FILE_NAME

_LAB = re.compile(r"^##\s+Lab\s+(\d+)\b", re.IGNORECASE)
_QUESTION = re.compile(r"^(\d+)\.\s+\S")
_ANSWER = re.compile(r"^\s*(?:[*_]{1,2})?answer\s*:\s*(?:[*_]{1,2})?\s*(.*)$", re.IGNORECASE)


@dataclass
class Question:
    """One question of one lab, with the text written after it (the answer, "" if none)."""

    lab: int
    number: int
    text: str
    answer: str = ""


def _sections(text: str) -> dict[int, list[str]]:
    """lab number -> the lines of its ``## Lab N`` section, up to the next ``## Lab`` heading (the
    first section, if one is repeated; other headings belong to the answers)."""
    sections: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        m = _LAB.match(line)
        if m:
            n = int(m.group(1))
            current = [] if n not in sections else None
            if current is not None:
                sections[n] = current
            continue
        if current is not None:
            current.append(line)
    return sections


def _paragraph_end(lines: list[str], start: int, stop: int) -> int:
    k = start
    while k < stop and lines[k].strip():
        k += 1
    return k


def _parse_section(lab: int, lines: list[str], template: dict[int, Question] | None) -> dict[int, Question]:
    candidates: dict[int, list[int]] = {}
    answers = [i for i, line in enumerate(lines) if _ANSWER.match(line)]
    for i, line in enumerate(lines):
        m = _QUESTION.match(line)
        if m:
            candidates.setdefault(int(m.group(1)), []).append(i)
    numbers = sorted(template) if template else []
    if not template:
        k = 1
        while k in candidates:
            numbers.append(k)
            k += 1
    starts: dict[int, int] = {}
    pos = 0
    for k in numbers:
        cands = [i for i in candidates.get(k, []) if i >= pos]
        if not cands:
            continue
        first_line = template[k].text.split("\n", 1)[0].strip() if template and k in template else None
        exact = [i for i in cands if first_line is not None and lines[i].strip() == first_line]
        if exact:
            start = exact[0]
        else:
            marker = next((a for a in answers if a > cands[0]), len(lines))
            start = max(i for i in cands if i <= marker)
        starts[k] = start
        pos = start + 1
    out: dict[int, Question] = {}
    ordered = sorted(starts.items(), key=lambda kv: kv[1])
    for j, (k, start) in enumerate(ordered):
        stop = ordered[j + 1][1] if j + 1 < len(ordered) else len(lines)
        para = _paragraph_end(lines, start, stop)
        marker = next((a for a in answers if start <= a < stop), None)
        question_end = min(para, marker) if marker is not None else para
        text = "\n".join(line.strip() for line in lines[start:question_end]).strip()
        text = re.sub(r"^\d+\.\s+", "", text)
        if marker is not None:
            body = [_ANSWER.match(lines[marker]).group(1)] + lines[marker + 1:stop]
        else:
            body = lines[para:stop]
        out[k] = Question(lab, k, text, _dedent("\n".join(body)).strip())
    return out


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def parse(text: str, template: dict[int, dict[int, Question]] | None = None) -> dict[int, dict[int, Question]]:
    """lab number -> question number -> :class:`Question` (its text and the answer written to it).

    ``template``: the parsed template (:func:`template`), whose questions' first lines mark where
    each question starts; without it, questions are numbered 1, 2, ... as found.
    """
    return {lab: _parse_section(lab, lines, (template or {}).get(lab))
            for lab, lines in _sections(text).items()}


def template(path: Path = TEMPLATE) -> dict[int, dict[int, Question]]:
    """The questions of the course's ``labs/QUESTIONS.md`` (answers empty)."""
    return parse(path.read_text(encoding="utf-8"))


def _normal(text: str) -> str:
    return " ".join(text.split())


def is_missing(answer: str, template_answer: str = "") -> bool:
    """True when ``answer`` is empty or the template's own text (white space aside)."""
    return not answer.strip() or _normal(answer) == _normal(template_answer)


def answers_of(text: str, tmpl: dict[int, dict[int, Question]]) -> dict[int, dict[int, str | None]]:
    """lab -> question -> the student's answer, or None where it is missing, for every question of ``tmpl``."""
    got = parse(text, tmpl)
    out: dict[int, dict[int, str | None]] = {}
    for lab, questions in tmpl.items():
        out[lab] = {}
        for k, q in questions.items():
            found = got.get(lab, {}).get(k)
            out[lab][k] = None if found is None or is_missing(found.answer, q.answer) else found.answer
    return out


def decode(data: bytes) -> str:
    """A student's file as text: UTF-8 (a BOM dropped), undecodable bytes replaced."""
    return data.decode("utf-8-sig", errors="replace")


# --------------------------------------------------------------------------- finding the file


def _rank(rel: str) -> tuple:
    parts = rel.split("/")
    return (0 if len(parts) > 1 and parts[-2] == "labs" else 1, len(parts), rel)


def choose(paths: list[str]) -> str | None:
    """The file to read among several (one in ``labs/`` first, then the shallowest), as lab files are chosen."""
    return min(paths, key=_rank) if paths else None


def is_answers_name(name: str) -> bool:
    return name.lower() == FILE_NAME.lower()


def zip_candidates(names: list[str]) -> list[str]:
    """Members of a zip that are a QUESTIONS.md at most :data:`MAX_DEPTH` folders deep (no ``..``,
    no skipped or hidden folder), as lab files are looked for."""
    found = []
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.endswith("/") or len(parts) - 1 > MAX_DEPTH or ".." in parts or parts[0] == "":
            continue
        if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
            continue
        if is_answers_name(parts[-1]):
            found.append("/".join(parts))
    return found


def folder_candidates(root: Path) -> list[str]:
    """Relative paths of the regular QUESTIONS.md files under ``root``, found by the walk that finds
    lab files (:func:`grader.judge.ingest.scan_folder`: no link followed, the same skipped folders)."""
    return scan_folder(root, match=lambda name: "answers" if is_answers_name(name) else None).get("answers", [])


def read_from_folder(root: Path) -> tuple[str, bytes] | None:
    """(relative path, bytes) of the submission's QUESTIONS.md, None if it has none.

    Raises:
        IngestError: the file chosen is a link, not regular, or over :data:`MAX_BYTES`.
    """
    rel = choose(folder_candidates(root))
    if rel is None:
        return None
    return rel, read_beneath(root, rel, MAX_BYTES)


# --------------------------------------------------------------------------- Gradescope


def quote_markdown(text: str) -> str:
    """Student text as a Markdown block quote, escaped (:func:`textsafe.markdown`): a heading or a
    list inside an answer stays inside the quote."""
    return "\n".join("> " + line if line.strip() else ">" for line in textsafe.markdown(text).split("\n"))


def gradescope_tests(answers: dict[int, dict[int, str | None]] | None, tmpl: dict[int, dict[int, Question]],
                     labs: list[int], problem: str = "") -> list[dict]:
    """One visible 0-point test per lab of ``labs``: each question and the student's answer.

    ``answers`` None: no QUESTIONS.md was found (``problem`` says why, if it was refused).
    """
    tests = []
    for lab in labs:
        questions = tmpl.get(lab, {})
        if not questions:
            continue
        if answers is None:
            why = problem or (f"No {FILE_NAME} was found in your submission: upload labs/{FILE_NAME} with your lab "
                              "files; your instructor reads your answers there.")
            output = textsafe.markdown(why)
        else:
            given = answers.get(lab, {})
            done = sum(1 for a in given.values() if a is not None)
            lines = [f"{done} of {len(questions)} questions answered in {FILE_NAME} (read and graded by hand).", ""]
            for k, q in questions.items():
                lines.append(f"**Question {k}.** {textsafe.markdown(' '.join(q.text.split()))}")
                lines.append("")
                lines.append(quote_markdown(given[k]) if given.get(k) is not None else "*(no answer)*")
                lines.append("")
            output = "\n".join(lines).strip()
        # An information check for scoring's rules: never graded here (the points come by hand).
        check = scoring.Check(nodeid=f"labs/{FILE_NAME}::lab{lab:02d}", lab=f"lab{lab:02d}",
                              name=f"written answers ({FILE_NAME}, graded by hand)", max_score=0.0, graded=False)
        scoring.passed(check)
        earned, worth = scoring.points(check)
        tests.append({"name": f"{check.lab}: {check.name}", "score": earned, "max_score": worth,
                      "status": scoring.gradescope_status(check.status, check.graded), "visibility": "visible",
                      "output_format": "md", "output": output,
                      "extra_data": {"nodeid": check.nodeid, "points_if_graded": check.max_score,
                                     "state": check.status, "graded": check.graded, "duration": 0.0, "reason": "",
                                     "written_answers": True}})
    return tests


def add_to_results(submission: Path, results_json: Path, modules: list[str]) -> int:
    """Append the written-answers tests of the labs whose modules are named (all: none named) to
    ``results_json``; returns how many were added. A missing or unreadable results file is left alone."""
    from grader.registry import LABS

    try:
        results = json.loads(results_json.read_text())
        tests = results.setdefault("tests", [])
    except (OSError, ValueError, AttributeError):
        return 0
    labs = [scoring.lab_number(lab_id) for lab_id, m in LABS.items() if not modules or m in modules]
    tmpl = template()
    answers, problem = None, ""
    try:
        found = read_from_folder(submission)
        if found is not None:
            answers = answers_of(decode(found[1]), tmpl)
    except (IngestError, OSError) as exc:
        problem = f"Your {FILE_NAME} could not be read: {exc}"
    added = gradescope_tests(answers, tmpl, labs, problem)
    tests.extend(added)
    tmp = results_json.with_name(f".{results_json.name}.part")
    tmp.write_text(json.dumps(results))
    os.replace(tmp, results_json)
    return len(added)


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.questions SUBMISSION RESULTS_JSON [MODULE ...]``; exit code 0 unless misused."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print("usage: python -m grader.questions SUBMISSION RESULTS_JSON [MODULE ...]", file=sys.stderr)
        return 2
    n = add_to_results(Path(argv[0]), Path(argv[1]), argv[2:])
    print(f"written answers: {n} lab(s) added to {PurePosixPath(argv[1]).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
