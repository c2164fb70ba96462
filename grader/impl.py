"""Which implementation of the labs is graded, and how it is imported.

One switch decides it for every graded test:

* ``labs`` (default): the student stubs in ``labs/``;
* ``solutions``: the reference solutions (``pytest --solutions``, ``LABS_IMPL=solutions``,
  ``python -m grader --solutions``);
* any other folder that holds ``labNN_*.py`` files (``--labs-dir DIR`` or ``LABS_IMPL=DIR``),
  used for planted-bug variants in ``tests/`` and for submissions on an autograder.

A graded test never imports a lab itself; it asks for the lab through :func:`lab_fixture`, so
the switch is the only thing that changes between a student run and an instructor run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Lab id -> module name, in the order of the course.
LABS = {
    "lab01": "lab01_autograd",
    "lab02": "lab02_backprop",
    "lab03": "lab03_mnist",
    "lab04": "lab04_dti",
    "lab05": "lab05_cnn",
}

_impl_dir: Path = REPO_ROOT / "labs"
_cache: dict[str, ModuleType | "LabImportError"] = {}


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


def _import_error_message(lab_id: str, exc: BaseException) -> str:
    shown = _display(lab_path(lab_id))
    if isinstance(exc, SyntaxError):
        where = f"{_display(exc.filename or shown)}, line {exc.lineno}"
        return (
            f"could not import {shown}: {type(exc).__name__} at {where}: {exc.msg}. "
            "Fix the file so that `python -c 'import ...'` works; the other labs are graded normally."
        )
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_impl_file(f.filename)]
    where = f" at {_display(frames[-1].filename)}, line {frames[-1].lineno}" if frames else ""
    return (
        f"could not import {shown}: {type(exc).__name__}{where}: {exc}. "
        "This lab's tests score 0 until the file imports; the other labs are graded normally."
    )


def _is_impl_file(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(_impl_dir)
        return True
    except ValueError:
        return False


def load_lab(lab_id: str) -> ModuleType:
    """Import the graded implementation of one lab, once per session.

    Args:
        lab_id: ``"lab01"`` ... ``"lab05"``.

    Returns:
        The imported module (``labs.lab01_autograd``, ``solutions.lab01_autograd`` or a module
        loaded from the ``--labs-dir`` folder).

    Raises:
        LabImportError: the file is missing or raises while importing (SyntaxError,
            ImportError, ``sys.exit()`` at import time, ...); the message names file and line.
    """
    if lab_id in _cache:
        cached = _cache[lab_id]
        if isinstance(cached, LabImportError):
            raise cached
        return cached
    path = lab_path(lab_id)
    try:
        if not path.is_file():
            raise LabImportError(
                f"{_display(path)} is missing: restore it from the release (the file name must stay "
                f"{path.name})"
            )
        package = _impl_dir.name if _impl_dir.parent == REPO_ROOT else None
        if package in ("labs", "solutions"):
            module = importlib.import_module(f"{package}.{LABS[lab_id]}")
        else:
            name = f"graded_{LABS[lab_id]}_{abs(hash(str(path)))}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except LabImportError as exc:
        _cache[lab_id] = exc
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import must not end grading
        if isinstance(exc, KeyboardInterrupt):
            raise
        err = LabImportError(_import_error_message(lab_id, exc))
        _cache[lab_id] = err
        raise err from None
    _cache[lab_id] = module
    return module


def lab_fixture(lab_id: str):
    """A module-scoped fixture that yields the graded module of ``lab_id``.

    Use it at the top of a graded test file: ``lab = lab_fixture("lab01")``.
    """

    @pytest.fixture(scope="module", name="lab")
    def _lab() -> ModuleType:
        return load_lab(lab_id)

    return _lab


def env_impl() -> str | None:
    """The ``LABS_IMPL`` environment variable, if set."""
    return os.environ.get("LABS_IMPL") or None
