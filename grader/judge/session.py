"""Which implementation of the labs is graded, and how it is imported.

One switch decides it for every graded test:

* ``labs`` (default): the student stubs in ``labs/``;
* ``solutions``: the reference solutions (``pytest --solutions``, ``LABS_IMPL=solutions``,
  ``python -m grader --solutions``);
* any other folder that holds ``labNN_*.py`` files (``--labs-dir DIR`` or ``LABS_IMPL=DIR``),
  used for planted-bug variants in ``tests/`` and for submissions on an autograder.

A graded test never imports a lab itself; it asks for the lab through :func:`lab_fixture`, so
the switch is the only thing that changes between a student run and an instructor run. The lab
runs in a worker process (:mod:`grader.judge.remote`): the grading process never imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from grader import textsafe
from grader.registry import LABS, REPO_ROOT, lab_numbers  # noqa: F401  (the one list of labs: grader/registry.py)

if TYPE_CHECKING:
    from grader.judge import remote

_impl_dir: Path = REPO_ROOT / "labs"
_cache: dict[str, object] = {}


class LabImportError(Exception):
    """The graded lab file could not be imported (syntax error, failing import, ...)."""


def resolve_impl(value: str | None) -> Path:
    """Turn ``labs``, ``solutions`` or a folder path into the folder whose lab files are graded.

    Raises:
        pytest.UsageError: the folder does not exist.
    """
    if not value or value == "labs":
        return REPO_ROOT / "labs"
    if value == "solutions":
        return REPO_ROOT / "solutions"
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise pytest.UsageError(
            f"LABS_IMPL / --labs-dir names {value!r}, which is not a folder: give 'labs', "
            "'solutions' or a folder that holds labNN_*.py files"
        )
    return path


def set_impl_dir(path: Path) -> None:
    """Select the folder that is graded (called once by the grading plugin)."""
    global _impl_dir
    _impl_dir = Path(path).resolve()
    _cache.clear()


def impl_dir() -> Path:
    """The folder whose lab files are being graded."""
    return _impl_dir


def impl_label() -> str:
    """Short name of the graded implementation for reports: ``labs``, ``solutions`` or a path."""
    for name in ("labs", "solutions"):
        if _impl_dir == (REPO_ROOT / name).resolve():
            return name
    return str(_impl_dir)


def lab_path(lab_id: str) -> Path:
    """Path of the graded file of ``lab_id`` (``"lab01"`` ... ``"lab05"``)."""
    return _impl_dir / f"{LABS[lab_id]}.py"


def _display(path: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _import_error_message(lab_id: str, info: dict) -> str:
    shown = _display(lab_path(lab_id))
    kind = textsafe.terminal(info.get("type", "Exception"))  # the student's text, shown on a terminal
    where = textsafe.terminal(info.get("where", ""))
    message = textsafe.terminal(info.get("message", ""))
    if "SyntaxError" in info.get("bases", []) or kind in ("SyntaxError", "IndentationError", "TabError"):
        return (
            f"could not import {shown}: {kind} at {where or shown}: {message}. "
            "Fix the file so that `python -c 'import ...'` works; the other labs are graded normally."
        )
    at = f" at {where}" if where else ""
    return (
        f"could not import {shown}: {kind}{at}: {message}. "
        "This lab's tests score 0 until the file imports; the other labs are graded normally."
    )


def folder_notes(lab_ids: list[str]) -> list[str]:
    """Lines for the top of the results about the graded folder's files of ``lab_ids``: a lab file
    not found, a renamed copy, what an autograder took (:func:`grader.judge.ingest.graded_folder_notes`)."""
    from grader.judge import ingest

    return ingest.graded_folder_notes(_impl_dir, lab_ids, _display(_impl_dir))[0]


def _is_impl_file(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(_impl_dir)
        return True
    except ValueError:
        return False


def worker_config(lab_id: str) -> tuple[dict, dict]:
    """(worker configuration, import request) for the graded file of ``lab_id``.

    With a worker user (``GRADER_WORKER_USER``, on an autograder) the graded file is copied by
    root into the zygote's grading area (:class:`grader.judge.sandbox.Area`, a folder the worker can
    read but not write) and imported from there, so the worker needs no access to the grader.
    """
    path = lab_path(lab_id)
    limits = os.environ.get("GRADER_WORKER_LIMITS")
    config = {
        "impl_dir": str(_impl_dir),
        "display_dir": _display(_impl_dir),
        "sys_path": [str(REPO_ROOT)],
        "block_solutions": impl_label() != "solutions",
        "rlimits": json.loads(limits) if limits else {},
    }
    request = {"op": "import", "path": str(path), "module": LABS[lab_id]}
    package = _impl_dir.name if _impl_dir.parent == REPO_ROOT else None
    if os.environ.get("GRADER_WORKER_USER"):
        from grader.judge import remote

        zygote = remote.zygote()
        copy = zygote.install_lab(path)
        config.update(impl_dir=str(copy.parent), sys_path=[str(copy.parent.parent)], cwd=str(zygote.area.scratch))
        request["path"] = str(copy)
    elif package in ("labs", "solutions"):
        request["package"] = package
    return config, request


_workers: dict[str, "remote.Worker"] = {}


def load_lab(lab_id: str) -> "remote.RemoteLab":
    """The graded implementation of one lab, running in its own worker process.

    Args:
        lab_id: ``"lab01"`` ... ``"lab05"``.

    Returns:
        A :class:`grader.judge.remote.RemoteLab`: ``lab.func(...)`` calls ``func`` of the graded file in
        the worker and returns plain data (see :mod:`grader.judge.remote`). The file is never imported
        into the grading process.

    Raises:
        LabImportError: the file is missing ("file missing: ...", worded by
            :func:`grader.judge.ingest.graded_folder_notes`: not in the submission, or a renamed copy
            in the folder) or raises while importing (SyntaxError, ImportError, ``sys.exit()`` at
            import time, ...); the message names file and line.
    """
    from grader.judge import remote

    if lab_id in _cache:
        cached = _cache[lab_id]
        if isinstance(cached, LabImportError):
            raise cached
        return cached
    path = lab_path(lab_id)
    if not path.is_file():
        from grader.judge import ingest

        _, missing = ingest.graded_folder_notes(_impl_dir, [lab_id], _display(_impl_dir))
        err = LabImportError(missing.get(lab_id) or ingest.missing_message(LABS[lab_id], f"{_display(_impl_dir)}/"))
        _cache[lab_id] = err
        raise err
    config, request = worker_config(lab_id)
    worker = remote.Worker(lab_id, config, request)
    _workers[lab_id] = worker
    try:
        worker.start()
    except remote.ImportFailed as exc:
        err = LabImportError(_import_error_message(lab_id, exc.info))
        _cache[lab_id] = err
        raise err from None
    except remote.StudentError as exc:  # the worker died or hung while importing
        err = LabImportError(f"could not import {_display(path)}: {exc}")
        _cache[lab_id] = err
        raise err from None
    except remote.WorkerTimeout:
        err = LabImportError(f"could not import {_display(path)}: importing it took longer than 120 s")
        _cache[lab_id] = err
        raise err from None
    lab = remote.RemoteLab(worker)
    _cache[lab_id] = lab
    return lab


def close_lab(lab_id: str) -> None:
    """Stop the worker of ``lab_id`` (end of its test module)."""
    worker = _workers.pop(lab_id, None)
    _cache.pop(lab_id, None)
    if worker is not None:
        worker.kill()


def close_all_labs() -> None:
    """Stop every lab's worker (end of a grading session; the zygote stays for the next one)."""
    for lab_id in list(_workers):
        close_lab(lab_id)
    _cache.clear()


def lab_source(lab_id: str) -> str:
    """The text of the graded file (read, never executed, by the judge)."""
    return lab_path(lab_id).read_text(errors="replace")


def lab_fixture(lab_id: str):
    """A module-scoped fixture that yields the graded lab of ``lab_id`` (a :class:`RemoteLab`).

    Use it at the top of a graded test file: ``lab = lab_fixture("lab01")``.
    """

    @pytest.fixture(scope="module", name="lab")
    def _lab():
        lab = load_lab(lab_id)
        lab.lab_id = lab_id
        yield lab

    return _lab


def env_impl() -> str | None:
    """The ``LABS_IMPL`` environment variable, if set."""
    return os.environ.get("LABS_IMPL") or None
