"""The grading plugin: points, per-test seeds, devices, the score table and ``results.json``.

Loaded by the repository's ``conftest.py`` (``pytest_plugins``), so a plain ``pytest`` run grades
too. What it adds to pytest:

* ``@pytest.mark.points(n)`` on a graded test; ``labNN`` markers added from the file name, so
  ``pytest -m lab02`` grades one lab; ``@pytest.mark.cuda`` for GPU-only checks;
  ``@pytest.mark.hidden`` for tests whose result students see only after publication.
* options ``--solutions`` / ``--labs-dir DIR`` (which implementation is graded, see
  :mod:`grader.judge.session`), ``--grader-seed N``, ``--device {all,cpu,cuda}``, ``--gpu-points`` and
  ``--grade-json PATH``.
* the GPU policy: the maximum never depends on the machine. By default a GPU check (marked
  ``cuda``, including the ``cuda`` case of the ``device`` fixture) is information worth 0 points:
  it runs where there is a GPU and is reported either way, never as a failure in results.json.
  With ``--gpu-points`` (or ``GRADER_GPU_POINTS=1``; a GPU assignment) GPU checks are worth their
  points, and grading without a GPU is refused.
* an autouse fixture that seeds ``random``, NumPy and torch before every test from the grader
  seed and the test id (order-independent), and a ``device`` fixture (``cpu``, plus ``cuda``).
* a report: one table per lab (earned / possible) and one line per failed check that says why in
  words; the JSON report (Gradescope's format) is rewritten after every test, so it survives a
  crash or a hang of student code.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import re
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pytest

from grader import scoring, textsafe
from grader.judge import context
from grader.judge import session as labs_session  # not pytest's Session
from grader.scoring import Check  # noqa: F401  (re-exported: tests build reports from it)
from grader.report import (  # noqa: F401  (the plugin's public words: re-exported for rubric files and tests)
    EVIDENCE_INFO, GPU_INFO, NO_GPU, failure_lines, gpu_policy_line, info_output, is_info_test, render_report,
    whole_lab_failure,
)

DEFAULT_SEED = 20181  # fixed default grader seed (ISMRM 2018 lecture)
GPU_POINTS_ENV = "GRADER_GPU_POINTS"


@dataclass
class Report:
    """The whole grading run; written as Gradescope ``results.json``."""

    checks: dict[str, Check] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    seed: int = DEFAULT_SEED
    device: str = "cpu"
    impl: str = "labs"
    json_path: Path | None = None
    integrity: dict = field(default_factory=dict)
    gpu_points: bool = False
    notes: list[str] = field(default_factory=list)  # about the graded files (labs_session.folder_notes): output's first lines

    def labs(self) -> list[str]:
        """The lab ids that have checks in this run, sorted."""
        return sorted({c.lab for c in self.checks.values()})

    def totals(self, lab: str | None = None) -> tuple[float, float]:
        """(earned, possible) over the graded checks (of ``lab``); information checks count 0 of 0."""
        return scoring.totals(self.checks.values(), lab)

    def to_gradescope(self) -> dict:
        """The run as Gradescope's results.json dict.

        A graded check is ``passed`` or ``failed`` with its points. An information check (a GPU
        check outside a GPU assignment) has score 0 of 0 and status ``passed`` whatever happened
        (Gradescope shows a 0-point ``failed`` test as a red failure): its output starts with
        :data:`GPU_INFO` and says what happened, ``extra_data.graded`` is false and
        ``extra_data.state`` is ``passed``, ``failed`` or ``not run``.
        """
        import torch

        score, max_score = self.totals()
        tests = []
        for c in self.checks.values():
            status = scoring.gradescope_status(c.status, c.graded)
            output = c.output if c.graded else info_output(c)
            earned, worth = scoring.points(c)
            tests.append(
                {
                    "name": str(scoring.CheckName(c.lab, c.name)),
                    "score": earned,
                    "max_score": worth,
                    "status": status,
                    "output": output,
                    "visibility": c.visibility,
                    "extra_data": {
                        "nodeid": c.nodeid, "points_if_graded": c.max_score, "state": c.status,
                        "graded": c.graded, "duration": round(c.duration, 3), "reason": c.reason,
                    },
                }
            )
        extra = {
            "integrity": self.integrity,
            "fingerprint": environment_fingerprint(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "device": self.device,
            "cuda_available": bool(torch.cuda.is_available()),
            "grader_seed": self.seed,
            "graded_implementation": self.impl,
            "gpu_checks": "graded" if self.gpu_points else "information",
            "submission_notes": self.notes,
        }
        return {
            "score": round(score, 4),
            "max_score": round(max_score, 4),
            "execution_time": round(time.time() - self.started, 2),
            "output": "\n".join([
                *self.notes,
                f"Graded {self.impl} with grader seed {self.seed} on {self.device} "
                f"(torch {torch.__version__}). {gpu_policy_line(self.gpu_points)}",
            ]),
            "tests": tests,
            "extra_data": extra,
        }

    def write_json(self) -> None:
        """Write the JSON report atomically (temp file + rename), so it is never half written."""
        if self.json_path is None:
            return
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_name(f".{self.json_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_gradescope(), indent=2))
        os.replace(tmp, self.json_path)


def environment_fingerprint() -> dict:
    """Python, torch, NumPy, machine, device and the data caches' checksums (for the report)."""
    import hashlib

    import torch

    data = {}
    try:
        from data.cache import cache_dir

        for manifest in sorted(cache_dir().rglob("manifest.json")):
            rel = str(manifest.parent.relative_to(cache_dir()))
            try:
                params = json.loads(manifest.read_text()).get("params", {})
            except ValueError:
                params = {}
            data[rel] = {
                "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                "source": params.get("source", "offline"),
            }
    except Exception as exc:  # noqa: BLE001 - a fingerprint must never break grading
        data = {"error": repr(exc)}
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "data_caches": data,
    }


MANIFEST = Path(__file__).resolve().parent / "MANIFEST.json"


def grader_files() -> dict[str, str]:
    """{path relative to the repository: sha256} of the grader's Python files (not the manifest)."""
    import hashlib

    root = MANIFEST.parent
    return {
        str(p.relative_to(root.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def check_integrity() -> dict:
    """Compare the grader's files with ``grader/MANIFEST.json`` (written into student releases).

    Returns ``{"checked": bool, "problems": [...]}``; no manifest (the instructor repository): not checked.
    """
    if not MANIFEST.is_file():
        return {"checked": False, "problems": []}
    try:
        expected = json.loads(MANIFEST.read_text())["files"]
    except (ValueError, KeyError):
        return {"checked": True, "problems": ["grader/MANIFEST.json is unreadable: the grader may have been modified"]}
    actual = grader_files()
    problems = [
        f"{name} differs from the released grader: this score is not valid; restore the file from the release"
        for name in sorted(set(expected) | set(actual))
        if expected.get(name) != actual.get(name)
    ]
    return {"checked": True, "problems": problems}


_REPORT_KEY = pytest.StashKey[Report]()
_current_report: Report | None = None


# --------------------------------------------------------------------------- options and markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "mri-dl-labs grading")
    group.addoption(
        "--solutions",
        action="store_true",
        help="grade the reference solutions in solutions/ instead of the stubs in labs/ "
        "(same as LABS_IMPL=solutions)",
    )
    group.addoption(
        "--labs-dir",
        default=None,
        metavar="DIR",
        help="grade the labNN_*.py files in DIR (LABS_IMPL=DIR does the same)",
    )
    group.addoption("--grader-seed", type=int, default=None, help=f"grader seed (default {DEFAULT_SEED})")
    group.addoption(
        "--device",
        choices=("all", "cpu", "cuda"),
        default="all",
        help="run device-parametrised checks on cpu, cuda or both (default: all; cuda only with a GPU)",
    )
    group.addoption(
        "--gpu-points",
        action="store_true",
        default=None,
        help=f"GPU checks are worth their points (a GPU assignment; needs a GPU; {GPU_POINTS_ENV}=1 does the same). "
        "Default: GPU checks are information, 0 points, so the maximum is the same on every machine",
    )
    group.addoption("--grade-json", default=None, metavar="PATH", help="write a Gradescope results.json here")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("collectonly"):
        from grader.judge import remote

        remote.zygote()  # first: the worker's zygote imports torch while this process starts up
    for line in (
        "points(n): points this graded check is worth",
        "cuda: a GPU check: information (0 points) unless --gpu-points; not run without a GPU",
        "information: a how-code-runs check that rests on evidence the worker reports (a student could forge it): "
        "always information, 0 points",
        "hidden: graded, but students see the result only after the grades are published",
        *(f"{lab}: graded check of {name}.py" for lab, name in labs_session.LABS.items()),
    ):
        config.addinivalue_line("markers", line)

    if config.getoption("solutions"):
        chosen = "solutions"
    else:
        chosen = config.getoption("labs_dir") or labs_session.env_impl() or "labs"
    labs_session.set_impl_dir(labs_session.resolve_impl(chosen))

    seed = config.getoption("grader_seed")
    if seed is None:
        seed = int(os.environ.get("GRADER_SEED", DEFAULT_SEED))
    json_path = config.getoption("grade_json")
    report = Report(seed=seed, impl=labs_session.impl_label(), json_path=Path(json_path).resolve() if json_path else None)
    report.device = _device_summary(config.getoption("device"))
    report.gpu_points = gpu_points_wanted(config)
    report.integrity = check_integrity()
    _refuse_gpu_points_without_gpu(report.gpu_points, config.getoption("device"))
    config.stash[_REPORT_KEY] = report
    global _current_report
    _current_report = report

    # Small models on 2 cores: one thread is 3-8x faster than two under load (see README).
    import torch

    torch.set_num_threads(1)


def gpu_points_wanted(config: pytest.Config) -> bool:
    """True when GPU checks are worth points: ``--gpu-points`` or ``GRADER_GPU_POINTS=1``.

    Raises:
        pytest.UsageError: ``GRADER_GPU_POINTS`` is set to something other than 0 or 1.
    """
    if config.getoption("gpu_points"):
        return True
    value = os.environ.get(GPU_POINTS_ENV, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise pytest.UsageError(f"{GPU_POINTS_ENV}={value!r}: set it to 1 (GPU checks worth points) or 0 / unset (information)")


def _refuse_gpu_points_without_gpu(gpu_points: bool, device_choice: str) -> None:
    """A GPU assignment graded where its GPU checks cannot run would lose points to the machine."""
    if not gpu_points:
        return
    if device_choice == "cpu":
        raise pytest.UsageError("--gpu-points with --device cpu: GPU checks cannot be worth points when they do not run; drop one")
    import torch

    if not torch.cuda.is_available():
        raise pytest.UsageError(
            "--gpu-points (a GPU assignment) but this machine has no CUDA GPU: grade on a GPU machine, "
            f"or drop --gpu-points / {GPU_POINTS_ENV} to report GPU checks as 0-point information"
        )


def _device_summary(choice: str) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if choice == "cpu" or not has_cuda:
        return "cpu" if choice != "cuda" else "cuda requested, none available"
    return "cuda" if choice == "cuda" else "cpu+cuda"


def _lab_of(item: pytest.Item) -> str | None:
    return scoring.lab_of_test_file(item.path)


def is_gpu_check(item: pytest.Item) -> bool:
    """A check that needs a GPU: marked ``cuda`` (also the ``cuda`` case of the ``device`` fixture)."""
    return item.get_closest_marker("cuda") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    has_cuda = torch.cuda.is_available()
    device_choice = config.getoption("device")
    kept, dropped = [], []
    for item in items:
        lab = _lab_of(item)
        if lab:
            item.add_marker(getattr(pytest.mark, lab))
        param_device = getattr(getattr(item, "callspec", None), "params", {}).get("device")
        if device_choice != "all" and param_device is not None and param_device != device_choice:
            dropped.append(item)
            continue
        if is_gpu_check(item) and not has_cuda:
            item.add_marker(pytest.mark.skip(reason=NO_GPU))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """Register the graded checks that will run (after -m / -k / --device deselection)."""
    report = session.config.stash[_REPORT_KEY]
    items = session.items
    from grader.judge import remote

    if any(_lab_of(item) for item in items) and not session.config.getoption("collectonly"):
        # Wait here, outside every check's time budget, for the zygote started in pytest_configure.
        remote.zygote().wait_ready()
    else:
        remote.close_zygote()
    for item in items:
        points = item.get_closest_marker("points")
        lab = _lab_of(item)
        if points is None or lab is None:
            continue
        hidden = item.get_closest_marker("hidden") is not None
        report.checks[item.nodeid] = Check(
            nodeid=item.nodeid,
            lab=lab,
            name=item.name,
            max_score=float(points.args[0]),
            visibility="after_published" if hidden else "visible",
            graded=scoring.is_graded(report.gpu_points, gpu_check=is_gpu_check(item),
                                     information=item.get_closest_marker("information") is not None),
            evidence=item.get_closest_marker("information") is not None,
        )
    try:
        report.notes = labs_session.folder_notes(report.labs())
    except Exception as exc:  # noqa: BLE001 - a note must never break grading
        report.notes = [f"the graded folder's files could not be listed ({textsafe.terminal(exc)})"]
    report.write_json()


# --------------------------------------------------------------------------- fixtures


def seed_for_test(grader_seed: int, nodeid: str) -> int:
    """The seed of one test: a stable mix of the grader seed and the test id (order-independent)."""
    return (grader_seed * 1_000_003 + zlib.crc32(nodeid.encode())) % 2**31


@pytest.fixture(autouse=True)
def _seed_everything(request: pytest.FixtureRequest) -> int:
    """Seed ``random``, NumPy and torch (CPU and CUDA) before every test, here and in the workers."""
    import torch

    seed = seed_for_test(request.config.stash[_REPORT_KEY].seed, request.node.nodeid)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    context.CURRENT.begin_check(seed)  # the workers are seeded with it at their first call of this check
    return seed


def grader_seed_of(config: pytest.Config) -> int:
    """The grader seed of this run (``--grader-seed``), for module-scoped fixtures."""
    return config.stash[_REPORT_KEY].seed


@pytest.fixture(scope="module")
def module_seed(request: pytest.FixtureRequest) -> int:
    """A seed for module-scoped fixtures (shared training runs): grader seed mixed with the module."""
    return seed_for_test(grader_seed_of(request.config), request.node.nodeid)


@pytest.fixture
def grader_seed(request: pytest.FixtureRequest) -> int:
    """The per-test seed (see :func:`seed_for_test`): use it to draw test data."""
    return seed_for_test(request.config.stash[_REPORT_KEY].seed, request.node.nodeid)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request: pytest.FixtureRequest) -> str:
    """``"cpu"``, and ``"cuda"`` (GPU machines only): the device a student function must use."""
    return request.param


@pytest.fixture(autouse=True)
def _check_budget(request: pytest.FixtureRequest):
    """Tell the worker client the check's time budget, so a hang inside C code is stopped too."""
    marker = request.node.get_closest_marker("timeout")
    seconds = None
    if marker is not None and marker.args:
        seconds = float(marker.args[0])
    else:
        with contextlib.suppress(Exception):
            seconds = float(request.config.getoption("timeout") or request.config.getini("timeout") or 0) or None
    context.CURRENT.set_budget(seconds)
    yield
    context.CURRENT.end_check()


# --------------------------------------------------------------------------- outcomes


def _impl_frame(tb) -> str:
    """``file, line N, in func`` of the deepest traceback frame inside the graded lab folder."""
    frames = [f for f in traceback.extract_tb(tb) if labs_session._is_impl_file(f.filename)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {labs_session._display(f.filename)}, line {f.lineno}, in {f.name})"


def explain(excinfo: pytest.ExceptionInfo) -> str:
    """One line, in words, of why a check failed: no traceback."""
    from grader.judge import remote

    exc = excinfo.value
    if isinstance(exc, labs_session.LabImportError):
        return str(exc)
    if isinstance(exc, (remote.StudentExit, remote.WorkerDied, remote.ProtocolError)):
        return str(exc)
    if isinstance(exc, remote.WorkerTimeout):
        return (
            "took longer than its time budget and was stopped: look for an infinite loop, "
            "or too many epochs / too large a batch loop"
        )
    if isinstance(exc, NotImplementedError):
        detail = str(exc).strip()
        return "not implemented yet" + (f" ({detail})" if detail else "")
    if isinstance(exc, AssertionError):
        text = str(exc).split("\nassert ")[0].strip()
        return text or "a check failed (no message)"
    text = str(exc)
    if excinfo.typename == "Failed" and text.startswith("Timeout"):
        seconds = re.search(r"Timeout \(?>?([\d.]+)s", text)
        limit = f" of {seconds.group(1)} s" if seconds else ""
        return (
            f"took longer than its time budget{limit} and was stopped: look for an infinite loop, "
            "or too many epochs / too large a batch loop"
        )
    if isinstance(exc, SystemExit):
        return f"your code called sys.exit({exc.code!r}) while being graded: return a value instead"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if isinstance(exc, remote.StudentError):
        where = f" (at {exc.where})" if exc.where else ""
        return f"{exc.type_name}: {first}{where}"
    return f"{excinfo.typename}: {first}{_impl_frame(excinfo.tb)}"


#: Categories of failure, for class analytics (``python -m grader batch``): what went wrong, not
#: which slip. ``crashed`` is set by ``python -m grader`` when a check ended the grading process.
FAILURE_REASONS = ("not implemented", "wrong", "error", "timeout", "crashed", "import error", "exit")


def failure_reason(excinfo: pytest.ExceptionInfo) -> str:
    """The category (one of :data:`FAILURE_REASONS`) of a failed check's exception."""
    from grader.judge import remote

    exc = excinfo.value
    if isinstance(exc, labs_session.LabImportError):
        return "import error"
    if isinstance(exc, remote.WorkerTimeout) or excinfo.typename == "Failed" and str(exc).startswith("Timeout"):
        return "timeout"
    if isinstance(exc, (remote.WorkerDied, remote.ProtocolError)):
        return "crashed"
    if isinstance(exc, (remote.StudentExit, SystemExit)):
        return "exit"
    if isinstance(exc, NotImplementedError):
        return "not implemented"
    if isinstance(exc, AssertionError):
        return "wrong"
    return "error"


def pytest_runtest_logstart(nodeid: str, location) -> None:
    """Mark the check as running in the JSON report: if student code kills the process
    (``os._exit()``, a segfault), ``python -m grader`` knows which check did it."""
    report = _current_report
    if report is not None and nodeid in report.checks:
        report.checks[nodeid].status = "running"
        report.write_json()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    report = item.config.stash[_REPORT_KEY]
    check = report.checks.get(item.nodeid)
    if check is None:
        return
    if rep.skipped and call.when in ("setup", "call"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        if NO_GPU in reason:
            scoring.not_run(check, NO_GPU)
        else:
            scoring.failed(check, textsafe.terminal(f"skipped: {reason}"), check.reason)
    elif rep.failed:
        if check.status != "failed":  # the first failing phase says why
            # The message may quote student text: no escape sequence reaches a terminal or results.json.
            scoring.failed(check, textsafe.terminal(explain(call.excinfo)) if call.excinfo else "failed",
                           failure_reason(call.excinfo) if call.excinfo else "error")
    elif rep.passed and call.when == "call":
        scoring.passed(check)
    check.duration += rep.duration
    if call.when == "teardown":
        if check.status in ("pending", "running"):
            scoring.did_not_run(check)
        report.write_json()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    labs_session.close_all_labs()
    report = session.config.stash.get(_REPORT_KEY, None)
    if report is not None:
        for check in report.checks.values():
            if check.status in ("pending", "running"):  # interrupted
                scoring.did_not_run(check)
        report.write_json()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not report.checks or os.environ.get("GRADER_NO_SUMMARY") or config.getoption("collectonly"):
        return
    terminalreporter.section(f"grade ({report.impl}, grader seed {report.seed}, device {report.device})")
    for line in render_report(report.to_gradescope()):
        terminalreporter.write_line(line)
    if report.json_path:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"report written to {report.json_path}")


def asdict_check(check: Check) -> dict:
    """A check as a plain dict (for tools that post-process the report)."""
    return asdict(check)
