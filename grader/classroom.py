"""``python -m grader.classroom results.json``: a Markdown summary for GitHub Classroom / Actions.

Prints the score table as Markdown (append it to ``$GITHUB_STEP_SUMMARY``) and a last line
``Points X/Y`` that GitHub Classroom's autograding reporter and humans can read. Exit code 0
whatever the score. See ``docs/github-classroom.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grader import scoring, textsafe


def markdown(results: dict) -> str:
    """Markdown table (lab, earned, possible) and the failed visible checks, from a results.json dict.

    A failure that hits a whole lab (its file is missing or does not import) is listed once for
    the lab, not once per check; 0-point information checks (GPU checks) are never listed.
    """
    lines = ["| lab | earned | possible |", "|---|---:|---:|"]
    labs: dict[str, list[float]] = {}
    for t in results["tests"]:
        lab = scoring.lab_of(t)
        earned, possible = labs.setdefault(lab, [0.0, 0.0])
        labs[lab] = [earned + t["score"], possible + t["max_score"]]
    for lab, (earned, possible) in sorted(labs.items()):
        lines.append(f"| {lab} | {earned:g} | {possible:g} |")
    lines.append(f"| **total** | **{results['score']:g}** | **{results['max_score']:g}** |")
    failed = [
        t for t in results["tests"]
        if t["max_score"] > 0 and t["score"] < t["max_score"] and t.get("visibility", "visible") == "visible"
    ]
    if failed:
        from grader.report import failure_lines

        lines += ["", "What to look at:", ""]
        for lab, name, _points, output in failure_lines(failed):
            output = textsafe.markdown(output)  # may quote student text: no raw HTML
            lines.append(f"- `{lab}`: all checks: {output}" if name is None else f"- `{lab}: {name}`: {output}")
    lines += ["", f"Points {results['score']:g}/{results['max_score']:g}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m grader.classroom results.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.is_file():
        print(f"{path} does not exist: run `python -m grader --json {path}` first", file=sys.stderr)
        return 2
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
