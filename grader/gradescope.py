"""``python -m grader gradescope DEST.zip``: build a Gradescope autograder.

The zip holds the student release (stubs, public tests, plugin, data code) plus the hidden tests
in ``grader/hidden/`` (never ``solutions/``), and Gradescope's two scripts:

* ``setup.sh``: installs Python and ``requirements.txt`` and prepares the offline datasets once,
  when the autograder image is built;
* ``run_autograder``: copies the submission's ``labNN_*.py`` files (from ``labs/`` or the top
  level of the submission) over a clean copy of the grader, grades them with
  ``python -m grader`` and writes ``/autograder/results/results.json``. Nothing else of the
  submission is used, so a modified grader test in the submission has no effect. If the grader
  itself fails, a results.json with score 0 and the reason is still written. Run as root (as on
  Gradescope) with the user ``grader-worker`` that ``setup.sh`` creates, student code runs as that
  user in a sandbox folder, under resource limits, and cannot read the grader, the hidden tests,
  the data caches or the results (see README, "Trust boundary").

``AUTOGRADER_ROOT`` (default ``/autograder``) and ``PYTHON`` let the scripts run locally against
a fake submission folder (``tests/test_gradescope.py`` does that).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from grader.impl import REPO_ROOT
from grader.release import write_release

SETUP_SH = """#!/usr/bin/env bash
# Gradescope: runs once when the autograder image is built.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then
  apt-get update && apt-get install -y python3 python3-pip python3-venv
fi
"$PYTHON" -m pip install -r "$ROOT/source/requirements.txt"
cd "$ROOT/source"
OMP_NUM_THREADS=1 "$PYTHON" -m data prepare grader
# Student code runs as this unprivileged user (run_autograder); the grader and results stay root's.
if [ "$(id -u)" = 0 ] && ! id -u grader-worker >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin grader-worker
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope: runs for every submission. Grades only the submission's lab files.
# Trust boundary: the judge (pytest + graded tests, as root) never imports student code; the
# student code runs in worker processes as the user grader-worker, in a sandbox folder that holds
# a copy of the lab files only. The grader, the hidden tests, the data caches and the results
# folder are not readable by that user; only the judge writes results.json.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-python3}"
SRC="$ROOT/source"
SUB="$ROOT/submission"
RES="$ROOT/results"
mkdir -p "$RES"
WORK="$(mktemp -d)"
cp -r "$SRC/." "$WORK/"
found=0
for name in lab01_autograd lab02_backprop lab03_mnist lab04_dti lab05_cnn; do
  f="$(find "$SUB" -name "$name.py" -not -path '*/__pycache__/*' | head -n 1)"
  if [ -n "$f" ]; then cp "$f" "$WORK/labs/$name.py"; found=$((found + 1)); fi
done
echo "found $found lab files in the submission"
if [ "$(id -u)" = 0 ] && id -u "${GRADER_WORKER_USER:-grader-worker}" >/dev/null 2>&1; then
  export GRADER_WORKER_USER="${GRADER_WORKER_USER:-grader-worker}"
  SANDBOX="$(mktemp -d /tmp/grader-sandbox.XXXXXX)"
  chown "$GRADER_WORKER_USER" "$SANDBOX"
  chmod 700 "$SANDBOX" "$WORK" "$RES"
  chmod -R go-rwx "$SRC" "$SUB" "$WORK" "$RES"
  export GRADER_WORKER_SANDBOX="$SANDBOX"
  # memory (address space, bytes), CPU seconds, processes of that user, file size, no core dumps
  LIMITS='{"as": 17179869184, "cpu": 3600, "nproc": 512, "fsize": 1073741824, "core": 0}'
  export GRADER_WORKER_LIMITS="${GRADER_WORKER_LIMITS:-$LIMITS}"
  echo "student code runs as $GRADER_WORKER_USER in $SANDBOX"
else
  echo "WARNING: not root or no user grader-worker: student code runs as $(id -un) (no user switch)"
fi
cd "$WORK"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg MRI_DL_LABS_CACHE="$SRC/data/cache"
if ! "$PYTHON" -m grader --json "$RES/results.json" ${GRADER_ARGS:-}; then
  "$PYTHON" - "$RES/results.json" <<'PY'
import json, sys
json.dump({"score": 0, "output": "The grader failed to run on this submission; please contact the course staff.",
           "tests": []}, open(sys.argv[1], "w"))
PY
fi
if [ -n "${GRADER_WORKER_USER:-}" ]; then
  pkill -KILL -u "$GRADER_WORKER_USER" 2>/dev/null || true  # anything student code left running
fi
rm -rf "$WORK" "${SANDBOX:-}"
"""


def build(dest_zip: Path) -> Path:
    """Write the autograder zip to ``dest_zip``; returns its path.

    Raises:
        FileExistsError: ``dest_zip`` exists.
    """
    dest_zip = Path(dest_zip).resolve()
    if dest_zip.exists():
        raise FileExistsError(f"{dest_zip} exists: remove it or choose another name")
    with tempfile.TemporaryDirectory() as tmp:
        root = write_release(Path(tmp) / "source")
        hidden = REPO_ROOT / "grader" / "hidden"
        if hidden.is_dir():
            shutil.copytree(hidden, root / "grader" / "hidden", ignore=shutil.ignore_patterns("__pycache__"))
            # The hidden tests are part of this grader: refresh the manifest to include them.
            import json

            from grader.release import _hash_tree

            files = _hash_tree(root / "grader")
            (root / "grader" / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=1, sort_keys=True))
        (root / "setup.sh").write_text(SETUP_SH)
        (root / "run_autograder").write_text(RUN_AUTOGRADER)
        dest_zip.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, str(path.relative_to(root)))
                    if path.name in ("setup.sh", "run_autograder"):
                        info.external_attr = 0o755 << 16
                    zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return dest_zip


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grader gradescope", description="Build a Gradescope autograder zip.")
    parser.add_argument("dest", type=Path, help="the zip to write, e.g. autograder.zip")
    args = parser.parse_args(argv)
    try:
        path = build(args.dest)
    except FileExistsError as exc:
        print(f"python -m grader gradescope: {exc}", file=sys.stderr)
        return 2
    print(f"Gradescope autograder written to {path}: upload it as the assignment's autograder (Ubuntu base image).")
    return 0
