"""Reusable checks for the graded tests: errors in words, device hygiene, output contracts."""

from __future__ import annotations

import ast
import contextlib
from typing import Iterator

import numpy as np
import pytest
import torch

from grader.judge import remote


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


def _find_def(tree: ast.AST, qualname: str):
    """The ``def``/``class`` node named ``qualname`` (``"train"``, ``"Normalizer.transform"``)."""
    node = tree
    for part in qualname.split("."):
        body = getattr(node, "body", [])
        found = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
        if found is None:
            return None
        node = found
    return node


def _device_literals(func) -> list[str]:
    """Places in the source of ``func`` (a remote lab function) that hard-code CUDA.

    The judge reads the student file as text and parses it with :mod:`ast`; it never imports it.
    """
    from grader.judge.session import lab_path

    try:
        source = lab_path(func._worker.lab_id).read_text(errors="replace")
        tree = ast.parse(source)
    except (OSError, SyntaxError, AttributeError):
        return []
    node = _find_def(tree, func.qualname)
    if node is None:
        return []
    docstrings = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and "cuda" in n.value.lower() and id(n) not in docstrings:
            found.append(f'"{n.value}" at line {n.lineno}')
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "cuda":
            found.append(f".cuda() at line {n.lineno}")
    return found


def assert_no_hard_coded_device(func, name: str) -> None:
    """Fail if ``func``'s source names CUDA directly instead of using its ``device`` argument."""
    found = _device_literals(func)
    assert not found, (
        f"{name}() hard-codes a device ({', '.join(found)}): create tensors and models with "
        "`device=device` / `.to(device)` using the function's `device` argument, so the same code "
        "runs on a CPU-only machine and on a GPU"
    )


@contextlib.contextmanager
def cuda_reported_unavailable() -> Iterator[None]:
    """Pretend there is no GPU in the worker: ``torch.cuda.is_available()`` is False and ``.cuda()`` raises.

    A student function called with ``device="cpu"`` inside this block must never touch CUDA.
    """
    from grader.judge import remote

    with remote.options(cuda_hidden=True):
        yield


def epoch_orders(batches: list[list[int]], n: int, batch_size: int, epochs: int, unit: str) -> list[list[int]]:
    """Check the mini-batches a training loop fed (the sample ids of each forward pass with
    gradients on, in order) and return the order of the samples in each epoch.

    Each epoch must be ceil(n / batch_size) mini-batches of ``batch_size`` samples (the last one
    smaller) that visit every sample exactly once. One extra pass over the whole set with
    gradients on (an evaluation) is ignored. ``unit`` names the samples in the messages
    ("rows", "images").

    Raises:
        AssertionError: naming the slip (no mini-batch, wrong sizes, a sample missed or repeated).
    """
    per_epoch = -(-n // batch_size)
    want_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    sizes = [len(b) for b in batches]
    if sizes != want_sizes * epochs:  # an evaluation of the whole training set with gradients on is fine
        steps = [b for b in batches if len(b) < n]
        if [len(b) for b in steps] == want_sizes * epochs:
            batches, sizes = steps, [len(b) for b in steps]
    assert batches, (
        f"train(batch_size={batch_size}) on {n} {unit}: the model never saw a mini-batch with gradients enabled; "
        f"one forward pass, loss, backward and Adam step per mini-batch of batch_size {unit}"
    )
    assert sizes == want_sizes * epochs, (
        f"train(batch_size={batch_size}, epochs={epochs}) on {n} {unit} fed mini-batches of sizes {sizes}; expected "
        f"{want_sizes} in every epoch: batch_size {unit} per step (use the argument, not a fixed number), the last "
        "batch of an epoch smaller"
    )
    orders = [sum(batches[e * per_epoch:(e + 1) * per_epoch], []) for e in range(epochs)]
    one = unit[:-1] if unit.endswith("s") else unit
    for e, order in enumerate(orders, start=1):
        assert sorted(order) == list(range(n)), (
            f"train(): epoch {e} does not visit every training {one} exactly once ({len(set(order))} distinct of {n})"
        )
    return orders


#: Errors of the worker itself (it exited, died or broke the wire format): a check re-raises them, so
#: the report names the crash instead of the check's own expectation.
PASS_THROUGH = (remote.StudentExit, remote.WorkerDied, remote.ProtocolError)


def expect_value_error(call, what: str, why: str) -> None:
    """``call()`` must raise ValueError in the worker; otherwise a failure that says ``why``.

    ``NotImplementedError`` and the worker's own crashes (:data:`PASS_THROUGH`) pass through, so a
    stub reads "not implemented" and a crash reads as one.
    """
    try:
        call()
    except ValueError:
        return
    except (NotImplementedError, *PASS_THROUGH):
        raise
    except remote.StudentError as exc:
        pytest.fail(f"{what} raised {exc.type_name}: {str(exc).strip()[:200]}; expected ValueError ({why})")
    pytest.fail(f"{what} returned normally; expected ValueError ({why})")


def samples_seen(calls, n: int, grad: bool | None = None) -> list[tuple[bool, bool, list[int]]]:
    """Decode what a ``labNN.watch_batches`` probe recorded while the judge's samples went through the
    student's model: (training flag, grad enabled, sample indices) of every recorded forward call on
    samples of the judge's set of ``n``, in order. Sample i is known by its first value, i / n (the
    judge builds its data that way); calls on other data (a validation set whose first values are
    >= 1, a call without a tensor) are left out. ``grad`` keeps only the calls with that grad mode.
    The result is evidence of the order only: a check that passes on it must also recompute the
    outcome (the trained parameters) itself.
    """
    out = []
    for training, grad_on, first in calls:
        if first is None or (grad is not None and grad_on != grad):
            continue
        ids = torch.round(torch.as_tensor(first).double() * n).long()
        if len(ids) and int(ids.min()) >= 0 and int(ids.max()) < n:
            out.append((training, grad_on, ids.tolist()))
    return out


def same_tensors(got, want: list[torch.Tensor], tol: float = 1e-4) -> bool:
    """Whether ``got`` (what the worker reported: anything) is a list of tensors of ``want``'s length
    and shapes, each within relative error ``tol`` (:func:`rel_error`) of its counterpart in ``want``."""
    return (isinstance(got, list) and len(got) == len(want)
            and all(isinstance(p, torch.Tensor) and p.shape == q.shape and rel_error(p, q) < tol for p, q in zip(got, want)))


def is_stale(handle) -> bool:
    """Whether a kept handle (``lab.grader.keep(...)``) belongs to a worker that has been replaced
    since (after a crash or a timeout): data kept in the old worker must be sent again."""
    worker = handle._worker
    return worker.sock is None or handle._generation != worker.generation


def kept_in_worker(lab, **data):
    """A getter ``get() -> (handle, ...)`` of ``data`` (name -> tensor) kept in ``lab``'s worker, in the
    order given: sent at the first call (``lab.grader.keep``), again only when the worker has been
    replaced since (:func:`is_stale`), so large data crosses the socket once per worker."""
    kept: dict = {}

    def get():
        if not kept or any(is_stale(kept[name]) for name in data):
            kept.update({name: lab.grader.keep(value) for name, value in data.items()})
        return tuple(kept[name] for name in data)

    return get


def remembered(make):
    """``make`` with its outcome remembered per arguments, a failure too: ``get(*key)`` calls
    ``make(*key)`` once per key, then returns its result or raises its exception again, so a slow
    run that several checks share (or a broken one, or a timeout) costs its time once."""
    cache: dict[tuple, object] = {}

    def get(*key):
        if key not in cache:
            try:
                cache[key] = make(*key)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - includes pytest-timeout's Failed
                cache[key] = exc
        result = cache[key]
        if isinstance(result, BaseException):
            raise result
        return result

    return get


def max_abs_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """The largest absolute difference between two lists of tensors taken pairwise (e.g. the
    parameters the worker reports and the grader's own replay), in float64 on the CPU; ``inf`` if
    the lists differ in length or a pair in shape."""
    if len(a) != len(b) or any(tuple(u.shape) != tuple(v.shape) for u, v in zip(a, b)):
        return float("inf")
    return max(float((u.detach().cpu().double() - v.double()).abs().max()) for u, v in zip(a, b))
