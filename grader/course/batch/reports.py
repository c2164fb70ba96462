"""What a batch writes for the instructor: feedback, gradebook, summary, similarity; each file atomically."""


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
from grader.judge.ingest import lab_of as _lab_of
from grader.judge.session import LABS, REPO_ROOT

# --------------------------------------------------------------------------- outputs

STATUSES = ("ok", "crashed", "timed out", "unreadable", "grader error")


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
    failed = [t for t in results.get("tests", []) if t["max_score"] > 0 and t["score"] < t["max_score"]]
    if failed:
        lines += ["", "## What to look at", ""]
        for t in failed:
            hidden = " *(hidden check: shown after the grades are published)*" if t.get("visibility") != "visible" else ""
            lines.append(f"- `{t['name']}` ({t['score']:g}/{t['max_score']:g}){hidden}: {md(t['output'])}")
    else:
        lines += ["", "Every graded check passed."]
    info = [t for t in results.get("tests", []) if t["max_score"] == 0 and t.get("output")]
    if info:
        lines += ["", "## Information only (0 points)", ""] + [f"- `{t['name']}`: {md(t['output'])}" for t in info]
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
    for r in all_results:
        b = r["extra_data"]["batch"]
        points = lab_points(r)
        row = {
            "student": b["student"], "email": b.get("email", ""), "entry": b["entry"],
            "total": f"{r['score']:g}", "max": f"{r['max_score']:g}", "status": b["status"],
            "seconds": f"{b.get('seconds', 0):.1f}", "grader_seed": r["extra_data"].get("grader_seed", ""),
            "grader_version": b["grader_version"], "notes": "; ".join(b.get("notes", [])),
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
    """Per check: how many graded students failed it, and the most common failure message."""
    stats: dict[str, dict] = {}
    for r in all_results:
        if r["extra_data"]["batch"]["status"] in ("unreadable", "grader error"):
            continue
        for t in r.get("tests", []):
            if t["max_score"] <= 0:
                continue
            s = stats.setdefault(t["name"], {"name": t["name"], "graded": 0, "failed": 0, "messages": Counter(),
                                             "examples": {}, "reasons": Counter(), "hidden": t.get("visibility") != "visible",
                                             "max_score": t["max_score"]})
            s["graded"] += 1
            if t["score"] < t["max_score"]:
                s["failed"] += 1
                key = _pattern(t.get("output", ""))
                s["messages"][key] += 1
                s["examples"].setdefault(key, t.get("output", "").strip().splitlines()[0] if t.get("output", "").strip() else "")
                s["reasons"][t.get("extra_data", {}).get("reason") or "wrong"] += 1
    # Slips first: a check failed because the function was not written yet teaches less.
    return sorted(stats.values(), key=lambda s: (-(s["failed"] - s["reasons"]["not implemented"]) / max(s["graded"], 1),
                                                 -s["failed"] / max(s["graded"], 1), s["name"]))


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
    stats = check_stats(all_results)
    lines += ["", "## Checks the class failed most", "",
              "Per check: the share of graded submissions that failed it, how many of those had not implemented "
              "the function yet, and the most common message among the others (numbers blanked to group them) "
              "with the share of the failures it covers.", "",
              "| check | failed | not implemented | most common other message | share |", "|---|---:|---:|---|---:|"]
    for s in stats:
        if not s["failed"]:
            continue
        todo = s["reasons"]["not implemented"]
        others = [(m, c) for m, c in s["messages"].most_common() if not s["examples"][m].startswith("not implemented")]
        if others:
            msg, count = others[0]
            text, share = textsafe.markdown_cell(s["examples"][msg][:240]), f"{100 * count / s['failed']:.0f} %"
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
    write_atomic(out / "summary.md", "\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, len(labs) + 1, figsize=(3.2 * (len(labs) + 1) + 3, 3.6),
                             gridspec_kw={"width_ratios": [1] * len(labs) + [2.2]})
    for ax, lab in zip(axes, labs):
        mx = possible.get(lab, 1) or 1
        ax.hist(per_lab[lab], bins=np.linspace(0, mx, min(int(mx), 20) + 1), color="tab:blue", edgecolor="white")
        ax.set_title(f"{lab}: points (of {mx:g})")
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    worst = [s for s in stats if s["failed"]][:12][::-1]
    ax = axes[-1]
    ax.barh([s["name"][:48] for s in worst], [100 * s["failed"] / s["graded"] for s in worst], color="tab:red")
    ax.set_xlabel("students who failed it (%)")
    ax.set_xlim(0, 100)
    ax.set_title("checks failed most")
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{len(graded)} graded submissions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_atomic(out / "summary.png", buf.getvalue())


def write_similarity(out: Path, threshold: float) -> list[tuple]:
    """Pairwise similarity of the students' lab files with copydetect (stub text as boilerplate).

    Writes ``similarity.html`` and ``similarity.md``; returns (lab, student A, student B,
    similarity A, similarity B) of the pairs above ``threshold``. Not a verdict: a list to read.
    """
    from copydetect import CopyDetector

    work = out / "work"
    detector = CopyDetector(extensions=["py"], display_t=threshold, same_name_only=True, ignore_leaf=True,
                            autoopen=False, silent=True, out_file=str(out / "similarity.html"))
    for path in sorted(work.glob("*/labs/*.py")):
        detector.add_file(str(path))
    for module in LABS.values():
        stub = REPO_ROOT / "labs" / f"{module}.py"
        if stub.is_file():
            detector.add_file(str(stub), type="boilerplate")
    pairs = []
    if len(detector.test_files) >= 2:
        detector.run()
        for item in detector.get_copied_code_list():
            sim_a, sim_b, file_a, file_b = item[0], item[1], Path(item[2]), Path(item[3])
            lab = _lab_of(file_a.name) or file_a.stem
            pairs.append((lab, file_a.parent.parent.name, file_b.parent.parent.name, float(sim_a), float(sim_b),
                          file_a.relative_to(out).as_posix(), file_b.relative_to(out).as_posix()))
        detector.generate_html_report()
        # copydetect escapes the HTML of the code it shows, but keeps the control characters in it.
        html_report = out / "similarity.html"
        write_atomic(html_report, textsafe.terminal(html_report.read_text(encoding="utf-8", errors="replace")))
    pairs.sort(key=lambda p: (p[0], -max(p[3], p[4])))
    lines = ["# Code similarity", "",
             f"Pairs of students whose lab files share more than {threshold:.0%} of their code after the stub text is "
             "removed (copydetect, MOSS-style winnowing). Not a verdict: short labs have few ways to be written, "
             "so read the files side by side in similarity.html before concluding anything.", ""]
    if not pairs:
        lines.append("No pair above the threshold.")
    for lab in sorted({p[0] for p in pairs}):
        lines += [f"## {lab}", "", "| student A | student B | A in B | B in A |", "|---|---|---:|---:|"]
        for p in pairs:
            if p[0] == lab:
                # Folder names are safe_name()s (letters, digits, ._-@+): escaped all the same.
                a, b = (f"[{textsafe.markdown_cell(name)}]({textsafe.markdown_cell(path)})"
                        for name, path in ((p[1], p[5]), (p[2], p[6])))
                lines.append(f"| {a} | {b} | {p[3]:.0%} | {p[4]:.0%} |")
        lines.append("")
    write_atomic(out / "similarity.md", "\n".join(lines) + "\n")
    return pairs
