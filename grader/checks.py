"""Reusable checks for the graded tests: errors in words, device hygiene, output contracts."""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap
from typing import Callable, Iterator

import numpy as np
import torch


def rel_error(received, expected) -> float:
    """||received - expected||_2 / max(||expected||_2, 1e-300), computed in float64."""
    r = np.asarray(received, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return float(np.linalg.norm(r - e) / max(np.linalg.norm(e), 1e-300))


def as_float(value, what: str) -> float:
    """``value`` as a Python float, or an AssertionError that says what was returned instead."""
    if isinstance(value, torch.Tensor):
        assert value.numel() == 1, f"{what} must be a single number, got a tensor of shape {tuple(value.shape)}"
        value = value.detach().cpu().item()
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be a number, got {type(value).__name__}: {value!r}") from None
    assert np.isfinite(out), f"{what} is {out}: check for a division by zero or a diverging update"
    return out


def _device_literals(func: Callable) -> list[str]:
    """Places in ``func``'s source that hard-code CUDA: ``"cuda"`` strings and ``.cuda()`` calls."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return []
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = []
    first_line = inspect.getsourcelines(func)[1]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "cuda" in node.value.lower()
            and id(node) not in docstrings
        ):
            found.append(f'"{node.value}" at line {first_line + node.lineno - 1}')
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            found.append(f".cuda() at line {first_line + node.lineno - 1}")
    return found


def assert_no_hard_coded_device(func: Callable, name: str) -> None:
    """Fail if ``func``'s source names CUDA directly instead of using its ``device`` argument."""
    found = _device_literals(func)
    assert not found, (
        f"{name}() hard-codes a device ({', '.join(found)}): create tensors and models with "
        "`device=device` / `.to(device)` using the function's `device` argument, so the same code "
        "runs on a CPU-only machine and on a GPU"
    )


@contextlib.contextmanager
def cuda_reported_unavailable() -> Iterator[None]:
    """Pretend there is no GPU: ``torch.cuda.is_available()`` is False and ``.cuda()`` raises.

    A student function called with ``device="cpu"`` inside this block must never touch CUDA.
    """
    def refuse(*_args, **_kwargs):
        raise AssertionError(
            ".cuda() was called although device='cpu' was asked for: use .to(device) with the "
            "function's `device` argument instead of .cuda()"
        )

    saved = (torch.cuda.is_available, torch.Tensor.cuda, torch.nn.Module.cuda)
    torch.cuda.is_available = lambda: False
    torch.Tensor.cuda = refuse
    torch.nn.Module.cuda = refuse
    try:
        yield
    finally:
        torch.cuda.is_available, torch.Tensor.cuda, torch.nn.Module.cuda = saved
