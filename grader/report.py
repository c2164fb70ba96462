"""Words: the score table, the "what to look at" lines and the text of information checks.

Everything a person reads about a grading run is worded here, from a ``results.json`` dict (or,
for an information check's output, from its outcome): the plugin prints it at the end of a pytest
run, ``python -m grader`` after merging its per-lab runs, and the classroom summary and the batch
feedback reuse :func:`failure_lines`. Every line that can quote student text goes through
:func:`grader.textsafe.terminal`. Points are not decided here (:mod:`grader.scoring`).
"""

from __future__ import annotations

from grader import scoring, textsafe

NO_GPU = "not run here (no GPU)"
GPU_INFO = "GPU check, information only, 0 points"
EVIDENCE_INFO = "how-code-runs check, information only, 0 points (it rests on evidence the worker reports)"


def gpu_policy_line(gpu_points: bool) -> str:
    """One sentence on how GPU checks count in this run (printed and written to results.json)."""
    if gpu_points:
        return "GPU checks are graded (a GPU assignment): they count in the maximum."
    return (
        "GPU checks are information only (0 points): the maximum is the same with and without a GPU; "
        "they run where there is a GPU."
    )


def info_output(check) -> str:
    """The results.json output line of an information (0-point GPU) check."""
    if check.evidence:
        what = {"passed": "passed", "failed": f"failed: {check.output}" if check.output else "failed"}.get(
            check.status, "did not run")
        return f"{EVIDENCE_INFO}: {what}"
    if check.status == "passed":
        what = "passed on the GPU"
    elif check.status == "not run":
        what = NO_GPU if check.output == NO_GPU else "not run"
    elif check.status == "failed":
        what = f"failed on the GPU: {check.output}" if check.output else "failed on the GPU"
    else:
        what = "did not run"
    points = f"{check.max_score:g} point" + ("s" if check.max_score != 1 else "")
    return f"{GPU_INFO} ({points} in a GPU assignment): {what}"


def render_report(results: dict) -> list[str]:
    """The score table and the "what to look at" lines, from a ``results.json`` dict.

    Used by the plugin at the end of a pytest run and by ``python -m grader`` after merging the
    per-lab runs, so both print the same report. It starts with ``extra_data.submission_notes``
    (a lab file not found, a renamed file taken), the first lines of results.json's ``output`` too. Every line is passed through
    :func:`grader.textsafe.terminal`: a message quoting student text cannot drive the terminal.
    """
    return [textsafe.terminal(line) for line in _report_lines(results)]


def _report_lines(results: dict) -> list[str]:
    tests = results["tests"]
    extra = results.get("extra_data", {})
    notes = extra.get("submission_notes", [])
    info = [t for t in tests if is_info_test(t)]
    evidence = [t for t in info if t.get("output", "").startswith(EVIDENCE_INFO)]
    header = "GPU checks (information, 0 points)" if not evidence else "information checks (0 points)"
    lines = [*notes, ""] if notes else []  # a lab file not found, a renamed one taken: first
    lines.append(f"{'lab':<8}{'earned':>8}{'possible':>10}" + (f"   {header}" if info else ""))
    labs = sorted({scoring.lab_of(t) for t in tests})
    for lab in labs:
        mine = [t for t in tests if scoring.lab_of(t) == lab]
        earned, possible = sum(t["score"] for t in mine), sum(t["max_score"] for t in mine)
        line = f"{lab:<8}{earned:>8g}{possible:>10g}"
        if info:
            states = [t.get("extra_data", {}).get("state", "") for t in mine if is_info_test(t)]
            counts = [f"{states.count(s)} {s}" for s in ("passed", "failed", "not run") if states.count(s)]
            line += "   " + (", ".join(counts) if counts else "-")
        lines.append(line)
    lines.append(f"{'total':<8}{results['score']:>8g}{results['max_score']:>10g}")
    failed = [t for t in tests if t["max_score"] > 0 and t["score"] < t["max_score"]]
    if failed:
        lines += ["", "What to look at:"]
        for lab, name, points, output in failure_lines(failed):
            if name is None:
                lines.append(f"  {lab}: all checks: {output}")
            else:
                pts = f"{points:g} pt" + ("s" if points != 1 else "")
                lines.append(f"  {lab} {name} [{pts}]: {output}")
    if info:
        lines += ["", gpu_policy_line(False)]
        if evidence:
            lines.append("How-code-runs checks that rest on evidence the worker reports are information only (0 points).")
        not_run = [scoring.CheckName.parse(t["name"]).plain() for t in info
                   if t.get("extra_data", {}).get("state") == "not run"]
        if not_run:
            lines.append(f"  {NO_GPU}: " + ", ".join(not_run))
        for t in info:
            if t.get("extra_data", {}).get("state") == "failed":
                lines.append(f"  {scoring.CheckName.parse(t['name']).plain()}: {t['output'].split('): ', 1)[-1]}")
    for problem in extra.get("integrity", {}).get("problems", []):
        lines += ["", f"WARNING: {problem}"]
    return lines


def is_info_test(test: dict) -> bool:
    """True for a results.json test that is information only (a 0-point GPU check)."""
    extra = test.get("extra_data", {})
    if "graded" in extra:
        return not extra["graded"]
    return test.get("max_score", 0) == 0 and "(no GPU)" in test.get("output", "")  # older reports


def whole_lab_failure(output: str) -> bool:
    """True when a failure hits every check of a lab: its file is missing or does not import."""
    return output.startswith(("could not import", "file missing: ")) or " is missing: " in output


def failure_lines(failed: list[dict]) -> list[tuple[str, str | None, float, str]]:
    """(lab, check name, points, output) per failed results.json test, in order.

    A failure that hits every check of a lab (:func:`whole_lab_failure`) is given once per lab,
    with the name ``None``, instead of once per check.
    """
    lines: list[tuple[str, str | None, float, str]] = []
    whole_lab: set[str] = set()
    for t in failed:
        check = scoring.CheckName.parse(t["name"])
        lab, name = check.lab, check.test
        if whole_lab_failure(t["output"]):
            if lab not in whole_lab:
                whole_lab.add(lab)
                lines.append((lab, None, 0.0, t["output"]))
            continue
        lines.append((lab, name, float(t["max_score"]), t["output"]))
    return lines
