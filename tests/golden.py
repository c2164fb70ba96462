"""Golden results: what the grader gave each scenario, kept as files, so a refactor that changes a
point or a message is caught (issue 20: "a refactor changes no point and no message").

Scenarios are graded where the suite grades them anyway (the solutions, the stubs, ``tests/alt``,
every planted bug, the cheating catalogue) and their ``results.json`` entries are compared with
``tests/golden/<scenario>.json``. Per check: points, maximum, status, state, whether it is graded,
the reason, the visibility and the message.

Messages are compared with their numbers masked by default (``0.873`` -> ``#``): training on another
CPU may round a last digit differently, and CI must not turn red on that. ``GOLDEN_EXACT=1``
compares every character, for a refactor on one machine. ``GOLDEN_UPDATE=1`` writes the files
instead of comparing (after a deliberate change of checks or messages; review the diff).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")
_TMP = re.compile(r"/(tmp|var/tmp|dev/shm)/[^\s'\"),:]*")


def normalize(tests: list[dict] | dict[str, dict], exact: bool = False) -> dict[str, dict]:
    """name -> the graded fields of one check (see the module docstring); tmp paths as ``<tmp>``."""
    items = tests.items() if isinstance(tests, dict) else ((t["name"], t) for t in tests)
    out = {}
    for name, t in sorted(items):
        extra = t.get("extra_data", {})
        message = _TMP.sub("<tmp>", t.get("output", "") or "")
        out[name] = {
            "score": t["score"], "max_score": t["max_score"], "status": t.get("status"),
            "visibility": t.get("visibility"), "state": extra.get("state"), "graded": extra.get("graded"),
            "reason": extra.get("reason", ""), "output": message if exact else _NUMBER.sub("#", message),
        }
    return out


def check(scenario: str, tests: list[dict] | dict[str, dict]) -> None:
    """Compare the results of ``scenario`` with its golden file (or write it with ``GOLDEN_UPDATE=1``).

    Raises:
        AssertionError: the file is missing, or a check's points, status or message differ (the
            message shows a unified diff of the two).
    """
    path = GOLDEN_DIR / f"{scenario}.json"
    exact = os.environ.get("GOLDEN_EXACT") == "1"
    got = normalize(tests, exact=True)
    if os.environ.get("GOLDEN_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return
    assert path.is_file(), (
        f"no golden results for {scenario} ({path}): record them with GOLDEN_UPDATE=1 and review the new file"
    )
    want = json.loads(path.read_text())
    if not exact:
        want = {name: dict(t, output=_NUMBER.sub("#", t["output"])) for name, t in want.items()}
        got = {name: dict(t, output=_NUMBER.sub("#", t["output"])) for name, t in got.items()}
    if got != want:
        a = json.dumps(want, indent=1, sort_keys=True).splitlines()
        b = json.dumps(got, indent=1, sort_keys=True).splitlines()
        diff = "\n".join(list(difflib.unified_diff(a, b, "golden", "now", lineterm="", n=1))[:80])
        raise AssertionError(
            f"the results of {scenario} differ from tests/golden/{scenario}.json (a point, a status or a message "
            f"changed; if that is intended, rerun with GOLDEN_UPDATE=1 and review the diff):\n{diff}"
        )
