"""What a batch writes for the instructor: feedback, gradebook, summary; each file atomically.

The per-check table is :mod:`grader.course.batch.items`, similarity :mod:`grader.course.batch.similarity`.
"""


from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
from collections import Counter
from pathlib import Path

from grader import scoring, textsafe
from grader.course.batch.items import possible_points
from grader.course.batch.lab_failures import clip, gradebook_notes, lab_failures, submission_paths
from grader.judge.session import LABS

# --------------------------------------------------------------------------- outputs

STATUSES = ("ok", "crashed", "timed out", "unreadable", "grader error")


def read_csv_table(path: str | Path, option: str, fix: str) -> tuple[csv.DictReader, dict[str, str]]:
    """An instructor's CSV file (``--roster``, ``--manual``): its row reader and its header, lower-cased
    and stripped -> the column as written (a BOM from a spreadsheet's export is dropped).

    Raises:
        SystemExit: the file cannot be read as UTF-8 (the message names ``option``, the file and ``fix``).
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"{option} {path}: cannot read it ({exc}): {fix}") from None
    reader = csv.DictReader(io.StringIO(text))
    return reader, {(h or "").strip().lower(): h for h in reader.fieldnames or []}


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
    if batch.get("file_notes"):  # a renamed file taken, two candidates and none graded, a link
        lines += ["", "## Your files", ""] + [f"- {md(note)}" for note in batch["file_notes"]]
    whole_labs = lab_failures(results)  # a lab file missing or not importing: one line, not one per check
    failed = [t for t in results.get("tests", []) if t["max_score"] > 0 and t["score"] < t["max_score"]
              and scoring.lab_of(t) not in whole_labs]
    if failed or whole_labs:
        lines += ["", "## What to look at", ""]
        for f in whole_labs.values():
            hidden = f", {f.hidden} of them hidden" if f.hidden else ""
            lines.append(f"- {f.lab} (0/{f.points:g}, all {f.checks} checks{hidden}): {md(f.message)}")
        for t in failed:
            hidden = " *(hidden check: shown after the grades are published)*" if t.get("visibility") != "visible" else ""
            lines.append(f"- `{t['name']}` ({t['score']:g}/{t['max_score']:g}){hidden}: "
                         f"{md(submission_paths(t['output'], results))}")
    else:
        lines += ["", "Every graded check passed."]
    info = [t for t in results.get("tests", []) if t["max_score"] == 0 and t.get("output")]
    if info:
        lines += ["", "## Information only (0 points)", ""] + [f"- `{t['name']}`: {md(submission_paths(t['output'], results))}"
                                                                   for t in info]
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


def gradebook_table(all_results: list[dict], labs: list[str]) -> tuple[list[str], list[dict]]:
    """The columns of ``gradebook.csv`` and one row per result (same order), values not yet escaped."""
    fields = [f for f in GRADEBOOK_FIELDS if f not in LABS or f in labs]
    rows = []
    possible = possible_points(all_results)
    for r in all_results:
        b = r["extra_data"]["batch"]
        points = lab_points(r)
        # Not graded (unreadable, stopped, damaged): 0 of what the others could earn, not 0 of 0.
        most = r["max_score"] if r.get("tests") else sum(possible.get(lab, 0.0) for lab in labs)
        row = {
            "student": b["student"], "email": b.get("email", ""), "entry": b["entry"],
            "total": f"{r['score']:g}", "max": f"{most:g}", "status": b["status"],
            "seconds": f"{b.get('seconds', 0):.1f}", "grader_seed": r["extra_data"].get("grader_seed", ""),
            "grader_version": b["grader_version"], "notes": "; ".join(gradebook_notes(r)),
        }
        for lab in labs:
            row[lab] = f"{points[lab][0]:g}" if lab in points else "0"
        rows.append(row)
    return fields, rows


def write_gradebook(out: Path, all_results: list[dict], labs: list[str],
                    table: tuple[list[str], list[dict]] | None = None) -> None:
    """``gradebook.csv``: one row per student, in a form spreadsheets and LMS imports read
    (``table``: the columns and rows to write, default :func:`gradebook_table`).

    Every cell goes through :func:`grader.textsafe.csv_cell`: a name, e-mail, folder name or note
    that starts like a formula (``=``, ``+``, ``-``, ``@``) is shown as text, never run.
    """
    fields, rows = table or gradebook_table(all_results, labs)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: textsafe.csv_cell(v) for k, v in row.items()})
    write_atomic(out / "gradebook.csv", buf.getvalue())


def _pattern(message: str) -> str:
    """A failure message with its numbers blanked, so that the same slip groups across students."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", first)[:300]


def check_stats(all_results: list[dict]) -> list[dict]:
    """Per check: how many graded students failed it, and the most common failure message.

    A lab whose file is missing or does not import ran none of its checks: it is counted apart
    (:func:`lab_failures`), in neither the graded nor the failed students of its checks.
    """
    stats: dict[str, dict] = {}
    for r in all_results:
        if r["extra_data"]["batch"]["status"] in ("unreadable", "grader error"):
            continue
        did_not_run = lab_failures(r)
        for t in r.get("tests", []):
            if t["max_score"] <= 0 or scoring.lab_of(t) in did_not_run:
                continue
            s = stats.setdefault(t["name"], {"name": t["name"], "graded": 0, "failed": 0, "messages": Counter(),
                                             "examples": {}, "reasons": Counter(), "hidden": t.get("visibility") != "visible",
                                             "max_score": t["max_score"]})
            s["graded"] += 1
            if t["score"] < t["max_score"]:
                s["failed"] += 1
                output = submission_paths(t.get("output", ""), r, bare=True)  # the same words for every student
                key = _pattern(output)
                s["messages"][key] += 1
                s["examples"].setdefault(key, output.strip().splitlines()[0] if output.strip() else "")
                s["reasons"][t.get("extra_data", {}).get("reason") or "wrong"] += 1
    # Slips first: a check failed because the function was not written yet teaches less.
    return sorted(stats.values(), key=lambda s: (-(s["failed"] - s["reasons"]["not implemented"]) / max(s["graded"], 1),
                                                 -s["failed"] / max(s["graded"], 1), s["name"]))


def did_not_run_lines(graded: list[dict], labs: list[str]) -> list[str]:
    """The summary's section on labs whose file is missing or does not import, counted apart from
    check failures: per lab how many, the most common error, and who (for import errors)."""
    counts: dict[str, Counter] = {lab: Counter() for lab in labs}
    errors: dict[str, Counter] = {lab: Counter() for lab in labs}
    examples: dict[str, str] = {}
    who = []
    for r in graded:
        student = r["extra_data"]["batch"]["student"]
        for lab, f in lab_failures(r).items():
            if lab not in counts:
                continue
            counts[lab][f.kind] += 1
            if f.kind == "import error":
                bare = lab_failures(r, bare=True)[lab].error  # the same words for every student
                errors[lab][_pattern(bare)] += 1
                examples.setdefault(_pattern(bare), bare)
                who.append((lab, student, f.error))
    if not any(counts.values()):
        return []
    lines = ["", "## Labs that did not run", "",
             "A lab file that is missing or does not import scores 0 in every check of its lab; such labs are "
             "counted here, apart from the checks that failed.", "",
             "| lab | file missing | does not import | most common import error |", "|---|---:|---:|---|"]
    for lab in labs:
        if counts[lab]:
            common = errors[lab].most_common(1)
            text = f"{textsafe.markdown_cell(clip(examples[common[0][0]], 160))} ({common[0][1]})" if common else "-"
            lines.append(f"| {lab} | {counts[lab]['missing']} | {counts[lab]['import error']} | {text} |")
    if who:
        lines += ["", "Lab files that do not import (the error is also in the gradebook's notes and the student's feedback):", ""]
        lines += [f"- {lab}, {textsafe.markdown(student)}: {textsafe.markdown(clip(error, 240))}"
                  for lab, student, error in sorted(who)]
    return lines


STRAY_FILE = "stray.json"


def load_stray(out: Path) -> list[str]:
    """The names of the files at the top of SUBMISSIONS that are no student's entry (``OUT/stray.json``)."""
    try:
        names = json.loads((out / STRAY_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


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
    lines += did_not_run_lines(graded, labs)
    stats = check_stats(all_results)
    lines += ["", "## Checks the class failed most", "",
              "Per check: the share of graded submissions that failed it, how many of those had not implemented "
              "the function yet, and the most common message among the others (numbers blanked to group them) "
              "with the share of the failures it covers. A lab whose file is missing or does not import ran none "
              "of its checks: it is counted above, apart, not here.", "",
              "| check | failed | not implemented | most common other message | share |", "|---|---:|---:|---|---:|"]
    for s in stats:
        if not s["failed"]:
            continue
        todo = s["reasons"]["not implemented"]
        others = [(m, c) for m, c in s["messages"].most_common() if not s["examples"][m].startswith("not implemented")]
        if others:
            msg, count = others[0]
            text, share = textsafe.markdown_cell(clip(s["examples"][msg], 240)), f"{100 * count / s['failed']:.0f} %"
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
    stray = load_stray(out)
    if stray:
        lines += ["", "## Not a submission", "",
                  "Files at the top of the submissions folder that are neither a folder nor an archive: no "
                  "student's entry, so not in the gradebook. Move a student's file into a folder of its own to grade it.",
                  ""] + [f"- {textsafe.markdown_code(name)}" for name in stray]
    write_atomic(out / "summary.md", "\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, len(labs) + 1, figsize=(3.2 * (len(labs) + 1) + 3, 3.6),
                             gridspec_kw={"width_ratios": [1] * len(labs) + [2.2]})
    not_run = Counter((lab, f.kind) for r in graded for lab, f in lab_failures(r).items())
    for ax, lab in zip(axes, labs):
        mx = possible.get(lab, 1) or 1
        ax.hist(per_lab[lab], bins=np.linspace(0, mx, min(int(mx), 20) + 1), color="tab:blue", edgecolor="white")
        apart = ", ".join(f"{not_run[lab, kind]} {words}" for kind, words in
                          (("import error", "did not import"), ("missing", "missing")) if not_run[lab, kind])
        ax.set_title(f"{lab}: points (of {mx:g})" + (f"\n{apart}" if apart else ""), fontsize=10)
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    worst = [s for s in stats if s["failed"]][:12][::-1]
    ax = axes[-1]
    ax.barh([clip(s["name"], 56) for s in worst], [100 * s["failed"] / s["graded"] for s in worst], color="tab:red")
    ax.set_xlabel("students who failed it (%)")
    ax.set_xlim(0, 100)
    ax.set_title("checks failed most\n(of the students whose lab file imported)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{len(graded)} graded submissions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(out / "summary.png", buf.getvalue())
