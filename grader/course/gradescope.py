"""``python -m grader gradescope [--lab N ...] [--gpu-points] [--data-secret-file PATH] DEST.zip``: build a Gradescope autograder.

One autograder per assignment: ``--lab 1`` builds the one for a weekly lab 1 assignment (its
maximum is lab 1's points), ``--lab 4 --lab 5`` one for both, no ``--lab`` one for all labs of
:data:`grader.judge.session.LABS`. ``--gpu-points`` makes GPU checks worth points (a GPU assignment on a
GPU autograder image; grading is refused on a machine without a GPU); by default they are
0-point information, so the maximum is the same on every image (README, "GPU checks").

The zip holds the student release (stubs, public tests, plugin, data code) plus the hidden tests
in ``grader/hidden/`` (never ``solutions/``), restricted to the chosen labs, the grader's data
secret and Gradescope's two scripts:

* ``grader-secret``: the grader's data secret (:mod:`data.secret`), 64 hex digits from
  :func:`secrets.token_hex` unless ``--data-secret-file`` gives one (so that several
  autograders share one), recorded with mode 600. The held-out data (MNIST's test split, lab 4's
  test subject, lab 5's grader subset) are drawn from it, so the student release cannot rebuild
  them; a local grade uses the public default and is advice.
* ``setup.sh``: written for :data:`BASE_IMAGE` (Gradescope's default, Ubuntu 22.04, whose python3
  is 3.10). It makes a virtual environment, :data:`VENV` (``--system-site-packages``; with
  ``python3-venv`` from apt where Ubuntu left it out), installs PyTorch and ``requirements.txt``
  into it, never into the image's Python (so a PEP 668 "externally managed" Python does not stop
  pip), and prepares the grading datasets of this assignment's labs only (``python -m data
  prepare grader --datasets dti`` for lab 4; nothing for labs 1 and 2; :func:`grader_datasets`),
  once, when the autograder image is built, with ``GRADER_DATA_SECRET_FILE`` set to the
  ``grader-secret`` beside it (made root-only first; setup.sh stops if it is missing), and makes
  the data cache root-only. Without a GPU (no working ``nvidia-smi``)
  it installs the CPU build of torch from ``TORCH_INDEX_URL`` (default
  ``https://download.pytorch.org/whl/cpu``), not the default wheel that pulls several GB of CUDA
  libraries; a torch of the pinned version that is already importable is kept as it is.
  What was checked, and what was not: ``tests/test_gradescope.py`` checks the script's syntax
  (``bash -n``), runs it with a stand-in Python that logs what it is asked (the venv, the pip
  installs, the one data prepare command) and parses every Python file of the project as
  Python 3.10; no Gradescope image build was run from here (Gradescope cannot be reached).
* ``run_autograder``: reads the submission's lab files of the chosen labs once, as bytes
  (:mod:`grader.judge.ingest`: no link followed, regular files only, at most 2 MB; a refused file is
  named in the output; a lone renamed file such as ``lab04_dti (1).py`` is taken, and said, when
  none has the exact name; a lab with no file is named in the first lines of the output with
  the submission's files, and its checks say "file missing", not the stub's "not implemented"),
  writes them over a clean copy of the grader, grades them with
  ``python -m grader`` (with the options baked in at build time) and writes
  ``/autograder/results/results.json``. Nothing else of the submission is used, so a modified
  grader test in the submission has no effect. If the grader itself fails, a results.json with
  score 0 and the reason is still written. It must run as root with the user ``grader-worker``
  that ``setup.sh`` creates, and fails closed otherwise (score 0, the reason, no student code
  run): student code runs as that user in a grading area root owns, inside bubblewrap where it
  starts, with an allow-listed environment, and cannot read the grader, the hidden tests, the
  data caches, the data secret or the results (see README, "Trust boundary"). Last, it adds one
  visible 0-point test per lab, "labNN: written answers (QUESTIONS.md, graded by hand)", with
  each question and the submission's answer (:mod:`grader.questions`: read as bytes through the
  trusted reader, escaped, Markdown output), so that a TA who grades the answers by hand (a
  manually graded question of the same assignment) reads them beside the code.

Environment variables, for running the scripts by hand (Gradescope sets none of them):
``AUTOGRADER_ROOT`` (default ``/autograder``) and ``PYTHON`` (setup.sh: the Python that makes the
virtual environment, default ``python3``; run_autograder: the Python that grades, default the
virtual environment's) let both scripts run locally against a fake submission folder
(``tests/test_gradescope.py`` does that); ``GRADER_VENV`` puts the virtual environment elsewhere;
``GRADER_ARGS`` appends ``python -m grader`` options to run_autograder's baked-in ones (e.g.
``--lab 1`` to grade one lab of an all-labs autograder in a test); ``TORCH_INDEX_URL`` is
setup.sh's index for the CPU build of torch; ``GRADER_WORKER_USER`` names another worker user;
``GRADER_SANDBOX`` (``auto``, ``bwrap``, ``none``) chooses bubblewrap (:mod:`grader.judge.sandbox`);
``GRADER_UNSAFE_SAME_USER=1`` lets a non-root run by hand grade with no user switch.
"""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

from data.secret import ENV_SECRET_FILE, SECRET_FILE_NAME, new_secret
from grader import registry, scoring
from grader.judge.session import LABS, REPO_ROOT, lab_numbers
from grader.course.release import _hash_tree, write_release

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

#: Gradescope's default base image, the one setup.sh is written for (Ubuntu 22.04 "Base": python3 is 3.10).
BASE_IMAGE = "Ubuntu 22.04 (Gradescope's default base image)"
#: Where setup.sh makes the virtual environment that run_autograder's Python comes from.
VENV = "/opt/mri-dl-labs-venv"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope: runs once when the autograder image is built.
# Written for: @BASE_IMAGE@; its python3 is 3.10.
# The grader is tested on Python 3.11; its code is checked to parse as 3.10 (tests/test_gradescope.py).
# Everything is installed into a virtual environment of its own, @VENV@, never into the
# image's Python, so an "externally managed" Python (PEP 668: Ubuntu 23.04 and later, Debian 12)
# does not stop pip; run_autograder runs that environment's python.
set -euo pipefail
umask 022  # the installed packages must be readable by the unprivileged user that runs student code
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-python3}"  # the image's Python: it only makes the virtual environment
VENV="${GRADER_VENV:-@VENV@}"
if ! command -v "$PYTHON" >/dev/null; then
  apt-get update && apt-get install -y python3 python3-venv
fi
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \\
  || { echo "setup.sh: $PYTHON is older than Python 3.10: choose a newer base image" >&2; exit 1; }
# --system-site-packages: a torch that the image ships (a GPU image) is seen, and kept below.
if ! "$PYTHON" -m venv --system-site-packages "$VENV"; then
  echo "setup.sh: $PYTHON -m venv failed: installing python3-venv (Ubuntu leaves it out)"
  apt-get update && apt-get install -y python3-venv
  rm -rf "$VENV"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --upgrade pip
# PyTorch first: the pinned versions of requirements.txt (filled in when the zip is built).
TORCH_REQS=(@TORCH_REQS@)
if "$PY" - "${TORCH_REQS[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for req in sys.argv[1:]:  # "torch==2.14.1": the installed version, without "+cpu", must match
    name, _, want = req.partition("==")
    assert want and version(name).split("+")[0] == want
PY
then
  echo "setup.sh: ${TORCH_REQS[*]} already installed: kept"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup.sh: GPU found: installing the default (CUDA) build of ${TORCH_REQS[*]}"
  "$PY" -m pip install "${TORCH_REQS[@]}"
else
  INDEX="${TORCH_INDEX_URL:-@CPU_TORCH_INDEX@}"
  echo "setup.sh: no GPU: installing the CPU build of ${TORCH_REQS[*]} from $INDEX"
  "$PY" -m pip install "${TORCH_REQS[@]}" --index-url "$INDEX"
fi
"$PY" -m pip install -r "$ROOT/source/requirements.txt"
cd "$ROOT/source"
# The held-out data are drawn from the grader's data secret (data/secret.py): root-only, read by
# data prepare here and by the judge at grading time, never by student code.
SECRET="$ROOT/source/@SECRET_FILE@"
if [ ! -s "$SECRET" ]; then
  echo "setup.sh: $SECRET is missing or empty: rebuild the autograder with python -m grader gradescope" >&2
  exit 1
fi
chmod 600 "$SECRET"
export @ENV_SECRET_FILE@="$SECRET"
# Only this assignment's datasets (@LAB_IDS@; grader/registry.py says which each lab uses).
@DATA_PREPARE@
if [ -d "$ROOT/source/data/cache" ]; then chmod -R go-rwx "$ROOT/source/data/cache"; fi  # held-out data: the judge's only
# Student code runs as this unprivileged user (run_autograder); the grader and results stay root's.
if [ "$(id -u)" = 0 ] && ! id -u grader-worker >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin grader-worker
fi
# bubblewrap, where the image lets it start (private /tmp, no network); without it the user switch
# alone runs (grader/judge/sandbox.py says which, in the first lines of each grading).
if [ "$(id -u)" = 0 ] && ! command -v bwrap >/dev/null; then
  (apt-get install -y bubblewrap || (apt-get update && apt-get install -y bubblewrap)) >/dev/null 2>&1 || true
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope: runs for every submission. Grades only the submission's lab files of this assignment.
# Trust boundary: the judge (pytest + graded tests, as root) never imports student code; the
# student code runs in worker processes as the user grader-worker, in a grading area root owns
# (grader/judge/sandbox.py; inside bubblewrap where it starts). Student files are bytes, never paths:
# grader.judge.ingest reads the lab files once (no link followed, regular files only, bounded size)
# into root's own copy of the grader. The grader, the hidden tests, the data caches and the
# results folder are not readable by that user; only the judge writes results.json.
set -u
umask 077
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-${GRADER_VENV:-@VENV@}/bin/python}"  # setup.sh's virtual environment
SRC="$ROOT/source"
SUB="$ROOT/submission"
RES="$ROOT/results"
USER_W="${GRADER_WORKER_USER:-grader-worker}"
mkdir -p "$RES"
fail() {  # fail closed: a results.json that says what is wrong, score 0, nothing of the student's run
  "$PYTHON" - "$RES/results.json" "$1" <<'PY'
import json, sys
json.dump({"score": 0, "output": sys.argv[2], "tests": []}, open(sys.argv[1], "w"))
PY
  echo "$1" >&2
  exit 1
}
if ! "$PYTHON" -c "" >/dev/null 2>&1; then
  MISSING="$PYTHON"
  PYTHON=python3
  fail "The autograder is misconfigured ($MISSING does not run: setup.sh makes it); please contact the course staff."
fi
if [ "$(id -u)" = 0 ]; then
  id -u "$USER_W" >/dev/null 2>&1 || fail "The autograder is misconfigured (no user $USER_W: setup.sh creates it); please contact the course staff."
  chmod 700 "$RES"
  chmod -R go-rwx "$SRC" "$SUB" "$RES"
  why="$(cd "$SRC" && "$PYTHON" -m grader.judge.sandbox check "$USER_W" 2>&1)" || fail "The autograder is misconfigured: $why"
  export GRADER_WORKER_USER="$USER_W"
  # memory (address space, bytes), CPU seconds, processes of that user, file size, no core dumps
  LIMITS='{"as": 17179869184, "cpu": 3600, "nproc": 512, "fsize": 1073741824, "core": 0}'
  export GRADER_WORKER_LIMITS="${GRADER_WORKER_LIMITS:-$LIMITS}"
  echo "student code runs as $GRADER_WORKER_USER, $(cd "$SRC" && "$PYTHON" -m grader.judge.sandbox describe "$USER_W")"
elif [ "${GRADER_UNSAFE_SAME_USER:-}" = 1 ]; then
  echo "WARNING: not root: student code runs as $(id -un), with no user switch (GRADER_UNSAFE_SAME_USER=1)"
else
  fail "The autograder must run as root to keep student code away from the grader (or set GRADER_UNSAFE_SAME_USER=1 for a run by hand)."
fi
WORK="$(mktemp -d)"
cp -r "$SRC/." "$WORK/"
cd "$WORK"
"$PYTHON" -m grader.judge.ingest "$SUB" "$WORK/labs" @LAB_MODULES@
export OMP_NUM_THREADS=1 MPLBACKEND=Agg MRI_DL_LABS_CACHE="$SRC/data/cache"
# The held-out sets are drawn from this autograder's secret (data/secret.py): the path, never the text,
# is in the judge's environment, and the worker's environment is an allow-list without it.
export GRADER_DATA_SECRET_FILE="$SRC/grader-secret"
# This assignment's options (python -m grader gradescope); GRADER_ARGS only for runs by hand.
if ! "$PYTHON" -m grader --json "$RES/results.json" @GRADER_OPTIONS@ ${GRADER_ARGS:-}; then
  "$PYTHON" - "$RES/results.json" <<'PY'
import json, sys
json.dump({"score": 0, "output": "The grader failed to run on this submission; please contact the course staff.",
           "tests": []}, open(sys.argv[1], "w"))
PY
fi
if [ -n "${GRADER_WORKER_USER:-}" ]; then
  "$PYTHON" -m grader.judge.sandbox cleanup "$GRADER_WORKER_USER" || true  # anything student code left
fi
# Written answers: one visible 0-point test per lab showing the submission's QUESTIONS.md (read as bytes,
# no link followed, escaped), so that a TA grading them by hand sees them beside the code. Run from the
# pristine source, after student code is gone.
(cd "$SRC" && "$PYTHON" -m grader.questions "$SUB" "$RES/results.json" @LAB_MODULES@) || true
cd /
rm -rf "$WORK"
"""


def selected_labs(labs: list[int] | None) -> list[str]:
    """The lab ids (``"lab01"``, ...) of ``labs`` (lab numbers; None or empty: every lab), in course order.

    Raises:
        ValueError: a number that is not a lab of :data:`grader.judge.session.LABS`.
    """
    if not labs:
        return list(LABS)
    unknown = sorted(set(labs) - set(lab_numbers()))
    if unknown:
        raise ValueError(
            f"--lab {unknown[0]}: there is no such lab; the labs are {', '.join(map(str, lab_numbers()))} "
            "(grader/judge/session.py, LABS)"
        )
    wanted = {f"lab{n:02d}" for n in labs}
    return [lab_id for lab_id in LABS if lab_id in wanted]


def torch_requirements(requirements: Path) -> list[str]:
    """The ``torch`` and ``torchvision`` lines of requirements.txt (``["torch==2.14.1", ...]``).

    Raises:
        ValueError: either is missing or not pinned with ``==`` (setup.sh installs exactly these).
    """
    found = {}
    for line in requirements.read_text().splitlines():
        req = line.split("#", 1)[0].strip().replace(" ", "")
        name = req.split("==", 1)[0].split(">", 1)[0].split("<", 1)[0].split("~", 1)[0].split("!", 1)[0].lower()
        if name in ("torch", "torchvision"):
            if "==" not in req:
                raise ValueError(f"{requirements}: pin {name} with == ({req!r}): setup.sh installs that exact version")
            found[name] = req
    missing = [n for n in ("torch", "torchvision") if n not in found]
    if missing:
        raise ValueError(f"{requirements} has no {' or '.join(missing)} line: add torch==X and torchvision==Y")
    return [found["torch"], found["torchvision"]]


def grader_datasets(lab_ids: list[str]) -> list[str]:
    """The datasets of ``python -m data prepare grader`` that the labs ``lab_ids`` need, in course
    order (``["dti"]`` for lab 4; none for labs 1 and 2), from each lab's data modules in
    :data:`grader.registry.SPECS` (``data.dti`` -> ``dti``).

    Raises:
        ValueError: a lab's data module is not a dataset ``prepare grader`` knows.
    """
    from data.__main__ import GRADER_DATASETS

    names: list[str] = []
    for spec in registry.SPECS:
        if spec.lab_id not in lab_ids:
            continue
        for module in spec.data_modules:
            name = module.rpartition(".")[2]
            if name not in GRADER_DATASETS:
                raise ValueError(f"{spec.lab_id} uses {module}, which `python -m data prepare grader` does not prepare "
                                 f"(it knows {', '.join(GRADER_DATASETS)}: data/__main__.py)")
            if name not in names:
                names.append(name)
    return names


def setup_sh(requirements: Path, lab_ids: list[str] | None = None) -> str:
    """Gradescope's setup.sh, with the torch pins of ``requirements``, preparing the datasets of the
    labs ``lab_ids`` only (None: every lab)."""
    lab_ids = list(LABS) if lab_ids is None else lab_ids
    reqs = " ".join(shlex.quote(r) for r in torch_requirements(requirements))
    datasets = grader_datasets(lab_ids)
    if datasets:
        prepare = f'OMP_NUM_THREADS=1 "$PY" -m data prepare grader --datasets {" ".join(datasets)}'
    else:
        prepare = 'echo "setup.sh: no dataset to prepare (the labs of this assignment use none)"'
    return (SETUP_SH.replace("@TORCH_REQS@", reqs).replace("@CPU_TORCH_INDEX@", CPU_TORCH_INDEX)
            .replace("@SECRET_FILE@", SECRET_FILE_NAME).replace("@ENV_SECRET_FILE@", ENV_SECRET_FILE)
            .replace("@BASE_IMAGE@", BASE_IMAGE).replace("@VENV@", VENV)
            .replace("@LAB_IDS@", ", ".join(lab_ids)).replace("@DATA_PREPARE@", prepare))


def run_autograder_sh(lab_ids: list[str], gpu_points: bool = False) -> str:
    """Gradescope's run_autograder for the labs ``lab_ids``: which files it takes and the grader options."""
    options = [f"--lab {scoring.lab_number(lab_id)}" for lab_id in lab_ids] if lab_ids != list(LABS) else []
    if gpu_points:
        options.append("--gpu-points")
    modules = " ".join(LABS[lab_id] for lab_id in lab_ids)
    return (RUN_AUTOGRADER.replace("@LAB_MODULES@", modules).replace("@GRADER_OPTIONS@", " ".join(options))
            .replace("@VENV@", VENV))


def _drop_other_labs(root: Path, lab_ids: list[str]) -> None:
    """Remove the stubs and graded tests (public and hidden) of the labs not in ``lab_ids``."""
    for lab_id, module in LABS.items():
        if lab_id in lab_ids:
            continue
        for path in [root / "labs" / f"{module}.py", *(root / "grader").glob(f"test_{lab_id}_*.py"),
                     *(root / "grader" / "hidden").glob(f"test_{lab_id}_*.py")]:
            path.unlink(missing_ok=True)


#: Fewest characters of a data secret given with ``--data-secret-file`` (``new_secret()`` gives 64).
MIN_SECRET_CHARS = 32


def read_secret_file(path: Path) -> str:
    """The data secret in ``path`` (surrounding white space dropped).

    Raises:
        ValueError: the file cannot be read, or holds fewer than :data:`MIN_SECRET_CHARS`
            characters or a line break (make one with ``python -c "import secrets; print(secrets.token_hex(32))"``).
    """
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--data-secret-file {path}: cannot read it ({exc})") from None
    if len(secret) < MIN_SECRET_CHARS or any(c.isspace() for c in secret):
        raise ValueError(
            f"--data-secret-file {path}: a data secret is one line of at least {MIN_SECRET_CHARS} characters without "
            'spaces; make one with python -c "import secrets; print(secrets.token_hex(32))"'
        )
    return secret


def build(dest_zip: Path, labs: list[int] | None = None, gpu_points: bool = False,
          data_secret: str | None = None) -> Path:
    """Write the autograder zip to ``dest_zip`` for the lab numbers ``labs`` (None: all); returns its path.

    ``data_secret``: the grader's data secret written to ``grader-secret`` (mode 600 in the zip);
    None: a new one (:func:`data.secret.new_secret`).

    Raises:
        FileExistsError: ``dest_zip`` exists.
        ValueError: ``labs`` names a lab that does not exist, requirements.txt does not pin torch,
            or ``data_secret`` is empty or not one line.
    """
    dest_zip = Path(dest_zip).resolve()
    if dest_zip.exists():
        raise FileExistsError(f"{dest_zip} exists: remove it or choose another name")
    secret = new_secret() if data_secret is None else data_secret.strip()
    if not secret or any(c.isspace() for c in secret):
        raise ValueError("the data secret must be one non-empty line without spaces")
    lab_ids = selected_labs(labs)
    setup = setup_sh(REPO_ROOT / "requirements.txt", lab_ids)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_release(Path(tmp) / "source")
        hidden = REPO_ROOT / "grader" / "hidden"
        if hidden.is_dir():
            shutil.copytree(hidden, root / "grader" / "hidden", ignore=shutil.ignore_patterns("__pycache__"))
        _drop_other_labs(root, lab_ids)
        # The hidden tests are part of this grader, the other labs' tests are not: refresh the manifest.
        files = _hash_tree(root / "grader")
        (root / "grader" / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=1, sort_keys=True))
        (root / "setup.sh").write_text(setup)
        (root / "run_autograder").write_text(run_autograder_sh(lab_ids, gpu_points))
        (root / SECRET_FILE_NAME).write_text(secret + "\n")
        dest_zip.parent.mkdir(parents=True, exist_ok=True)
        part = dest_zip.with_name(f".{dest_zip.name}.part")
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, str(path.relative_to(root)))
                    if path.name in ("setup.sh", "run_autograder"):
                        info.external_attr = 0o755 << 16
                    elif path.name == SECRET_FILE_NAME and path.parent == root:
                        info.external_attr = (stat.S_IFREG | 0o600) << 16  # root-only where unzip keeps modes
                    zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        part.replace(dest_zip)  # atomic: never a half-written zip under the final name
    return dest_zip


def main(argv: list[str]) -> int:
    """``python -m grader gradescope [--lab N ...] [--gpu-points] [--data-secret-file PATH] DEST.zip``; returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m grader gradescope",
        description="Build a Gradescope autograder zip for one assignment (some or all labs).",
    )
    parser.add_argument("dest", type=Path, help="the zip to write, e.g. autograder-lab01.zip")
    parser.add_argument(
        "--lab", type=int, action="append", choices=lab_numbers(), metavar="N",
        help="grade lab N only (repeatable: --lab 4 --lab 5; default: every lab)",
    )
    parser.add_argument(
        "--gpu-points", action="store_true",
        help="a GPU assignment: GPU checks are worth points (needs a GPU autograder image; "
        "default: 0-point information, the same maximum on every image)",
    )
    parser.add_argument(
        "--data-secret-file", type=Path, metavar="PATH",
        help="the grader's data secret (one line, >= 32 characters) from which the held-out data are drawn, "
        "so that several autograders share one (default: a new secret for this zip)",
    )
    args = parser.parse_args(argv)
    try:
        secret = read_secret_file(args.data_secret_file) if args.data_secret_file else None
        path = build(args.dest, labs=args.lab, gpu_points=args.gpu_points, data_secret=secret)
    except (FileExistsError, ValueError) as exc:
        print(f"python -m grader gradescope: {exc}", file=sys.stderr)
        return 2
    lab_ids = selected_labs(args.lab)
    files = ", ".join(f"{LABS[lab_id]}.py" for lab_id in lab_ids)
    print(f"Gradescope autograder written to {path}: upload it as the assignment's autograder (Ubuntu base image).")
    print(f"It grades {', '.join(lab_ids)}: students submit {files}.")
    print("GPU checks: " + ("graded (needs a GPU image)." if args.gpu_points else "0-point information (README, 'GPU checks')."))
    how = f"the secret in {args.data_secret_file}" if args.data_secret_file else "a new secret"
    print(f"Held-out data: drawn from {how} ({SECRET_FILE_NAME} in the zip, root-only on the autograder); "
          "keep the zip private.")
    return 0
