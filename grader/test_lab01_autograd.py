"""Grading of lab 1: autograd and linear regression (labs/lab01_autograd.py).

Rubric (11 points on a CPU machine, +1 on a GPU):
    graph forward 1, hand-derived gradients 2, autograd gradients 1, model and loss 1,
    one epoch equals per-sample gradient descent 2, fit rejects bad data (after a correct fit of
    valid data) 1, fit recovers k = 2, d = 1 and a line drawn by the grader, by the grader's own
    gradient descent 2, no hard-coded device 1, cuda result equals cpu 1 (GPU only).
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch

from grader.kit import as_float, assert_no_hard_coded_device, cuda_reported_unavailable
from grader.kit import _find_def
from grader.judge.session import lab_fixture, lab_path
from grader.oracle.lab01 import X, Y, autograd_gradients, grader_line, per_sample_gd

lab = lab_fixture("lab01")

def _points(rng: np.random.Generator, n: int = 5) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in rng.uniform(-3.0, 3.0, size=(n, 2))]


def _names_in(func) -> set[str]:
    """Every name and attribute used in the body of a lab function (the judge parses the file as text)."""
    try:
        node = _find_def(ast.parse(lab_path(func._worker.lab_id).read_text(errors="replace")), func.qualname)
    except (OSError, SyntaxError):
        return set()
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _python_float(value, what: str) -> float:
    assert isinstance(value, float), (
        f"{what} must be a Python float, got {type(value).__name__}: {value!r} (use float(...) or tensor.item())"
    )
    return value


def _check_fit_is_own_descent(result, x, y, lr: float, epochs: int, k0: float, d0: float, call: str):
    """The returned (k, d, losses) equal the grader's own per-sample gradient descent from (k0, d0):
    k and d within 1e-4, every per-epoch loss within 0.1 % (or 1e-6 absolute, near 0).

    The reference solution (float32) is within 1.3e-6 (k, d) and 6.5e-5 relative (losses) of it.
    Returns (k, d).
    """
    assert len(result) == 3, f"{call} must return (k, d, losses), got {len(result)} values"
    k, d, losses = result
    k, d = as_float(k, "k"), as_float(d, "d")
    losses = np.asarray(losses, dtype=np.float64)
    assert losses.shape == (epochs,), f"{call}: expected {epochs} per-epoch losses, got shape {losses.shape}"
    want_k, want_d, want_losses = per_sample_gd(k0, d0, lr, epochs, x=x, y=y)
    assert abs(k - want_k) < 1e-4 and abs(d - want_d) < 1e-4, (
        f"{call} gave k={k:.5f}, d={d:.5f}; the grader's own per-sample gradient descent (k0={k0:.3f}, d0={d0:.3f}, "
        f"lr={lr}, {epochs} epochs) ends at k={want_k:.5f}, d={want_d:.5f}: fit by per-sample gradient descent "
        "with autograd, one update per sample (see the one-epoch check)"
    )
    bad = ~np.isclose(losses, want_losses, rtol=1e-3, atol=1e-6)
    assert not bad.any(), (
        f"{call}: k and d are right, but the per-epoch losses differ from the grader's own gradient descent in "
        f"{int(bad.sum())} of {epochs} epochs (first in epoch {int(np.argmax(bad)) + 1}: "
        f"{losses[bad][0]:.6g} instead of {want_losses[bad][0]:.6g}): return the mean over the samples of the loss "
        "taken before each update, for every epoch"
    )
    return k, d


@pytest.mark.points(1)
def test_graph_forward_values(lab, grader_seed):
    for a, b in _points(np.random.default_rng(grader_seed)):
        got = lab.graph_forward(a, b)
        assert len(got) == 3, f"graph_forward(a, b) must return (c, d, e), got {len(got)} values"
        c, d, e = (_python_float(v, f"graph_forward: {n}") for v, n in zip(got, ("c", "d", "e")))
        for name, value, want in (("c = a + b", c, a + b), ("d = b + 1", d, b + 1), ("e = c * d", e, (a + b) * (b + 1))):
            assert abs(value - want) < 1e-9, f"graph_forward({a:.3f}, {b:.3f}): {name} is {value}, expected {want}"


@pytest.mark.points(2)
def test_graph_backward_matches_autograd(lab, grader_seed):
    for a, b in _points(np.random.default_rng(grader_seed)):
        got = lab.graph_backward(a, b)
        assert len(got) == 2, f"graph_backward(a, b) must return (de_da, de_db), got {len(got)} values"
        de_da, de_db = _python_float(got[0], "graph_backward: de_da"), _python_float(got[1], "graph_backward: de_db")
        want_a, want_b = autograd_gradients(a, b)
        assert abs(de_da - want_a) < 1e-9, (
            f"graph_backward({a:.3f}, {b:.3f}): de/da is {de_da:.6f}, autograd gives {want_a:.6f}; "
            "a reaches e only through c = a + b"
        )
        hint = ""
        if abs(de_db + want_b) < 1e-9:
            hint = " (the sign is flipped)"
        elif abs(de_db - (b + 1)) < 1e-9 or abs(de_db - (a + b)) < 1e-9:
            hint = " (only one path counted: b reaches e through both c and d, and the two add up)"
        assert abs(de_db - want_b) < 1e-9, (
            f"graph_backward({a:.3f}, {b:.3f}): de/db is {de_db:.6f}, autograd gives {want_b:.6f}{hint}"
        )
    used = _names_in(lab.graph_backward) & {"torch", "backward", "autograd", "graph_autograd"}
    assert not used, (
        f"graph_backward uses {', '.join(sorted(used))}: derive de/da and de/db by hand with the chain rule over the "
        "nodes c and d (local derivatives multiplied along each path from b to e, paths added), without autograd"
    )


@pytest.mark.points(1)
def test_graph_autograd_matches(lab, grader_seed):
    for a, b in _points(np.random.default_rng(grader_seed)):
        got = lab.graph_autograd(a, b)
        want = autograd_gradients(a, b)
        for name, value, w in zip(("de/da", "de/db"), got, want):
            value = _python_float(value, f"graph_autograd: {name}")
            if abs(value - w) < 1e-5:
                assert abs(value - w) <= 1e-12 * max(1.0, abs(w)), (
                    f"graph_autograd({a!r}, {b!r}): {name} is {value!r}, float64 autograd gives {w!r}: close, but not to "
                    "float64 precision; float32 tensors round a and b (create the leaf tensors with dtype=torch.float64)"
                )
            assert abs(value - w) < 1e-5, (
                f"graph_autograd({a:.3f}, {b:.3f}): {name} is {value:.6f}, expected {w:.6f}; "
                "build e from leaf tensors with requires_grad=True and call e.backward()"
            )
    used = _names_in(lab.graph_autograd) & {"backward", "autograd"}
    assert used, (
        "graph_autograd gives the right numbers but never calls backward() or torch.autograd.grad: the point of "
        "this task is to let autograd compute the derivatives"
    )


@pytest.mark.points(1)
def test_linear_model_and_squared_error(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    x = torch.randn(7, generator=g)
    k, d = torch.randn((), generator=g), torch.randn((), generator=g)
    y_pred = lab.linear_model(x, k, d)
    assert tuple(y_pred.shape) == (7,), f"linear_model(x, k, d) must keep the shape of x (7,), got {tuple(y_pred.shape)}"
    assert torch.allclose(y_pred, k * x + d), "linear_model(x, k, d) must return k * x + d"
    x2 = torch.randn(3, 4, generator=g)
    out2 = lab.linear_model(x2, k, d)
    assert isinstance(out2, torch.Tensor) and tuple(out2.shape) == (3, 4) and torch.allclose(out2, k * x2 + d), (
        "linear_model(x, k, d) on a (3, 4) tensor x must return k * x + d elementwise, shape (3, 4)"
    )
    y = torch.randn(7, generator=g)
    loss = lab.squared_error(y_pred, y)
    want = ((y_pred - y) ** 2).sum()
    assert isinstance(loss, torch.Tensor) and tuple(loss.shape) == (), (
        f"squared_error must return a 0-d tensor (a differentiable scalar), got "
        f"{type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}"
    )
    assert torch.allclose(loss.to(want.dtype), want, rtol=1e-5), (
        f"squared_error: got {float(loss):.6f}, expected the sum of (y_pred - y)^2 = {want.item():.6f}"
    )
    for shape_a, shape_b in (((7,), (7, 1)), ((5,), (4,)), ((2, 3), (3, 2))):
        with pytest.raises(ValueError):
            lab.squared_error(torch.randn(shape_a, generator=g), torch.randn(shape_b, generator=g))
            raise AssertionError(
                f"squared_error(y_pred of shape {shape_a}, y of shape {shape_b}) must raise ValueError: with different "
                "shapes, (y_pred - y) broadcasts and silently sums the wrong squares"
            )


@pytest.mark.points(2)
@pytest.mark.timeout(30)
def test_fit_one_epoch_is_per_sample_gradient_descent(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for epochs in (1, 3):
        k0, d0 = (float(v) for v in rng.uniform(-1, 1, 2))
        lr = 0.004
        k, d, losses = lab.fit_linear_regression(X, Y, lr=lr, epochs=epochs, k0=k0, d0=d0, device="cpu")
        k, d = _python_float(k, "fit_linear_regression: k"), _python_float(d, "fit_linear_regression: d")
        want_k, want_d, want_losses = per_sample_gd(k0, d0, lr, epochs)
        if abs(k - want_k) > 1e-4 or abs(d - want_d) > 1e-4:
            acc_k, acc_d, _ = per_sample_gd(k0, d0, lr, epochs, accumulate=True)
            if abs(k - acc_k) < 1e-4 and abs(d - acc_d) < 1e-4:
                why = "the gradients are not zeroed after each update, so they accumulate (k.grad.zero_())"
            else:
                why = "expected one update k -= lr * dL/dk, d -= lr * dL/dd per sample, in order"
            pytest.fail(
                f"fit_linear_regression(epochs={epochs}, lr={lr}, k0={k0:.3f}, d0={d0:.3f}) gave "
                f"k={k:.5f}, d={d:.5f}; per-sample gradient descent gives k={want_k:.5f}, d={want_d:.5f}: {why}"
            )
        assert np.shape(losses) == (epochs,), (
            f"fit_linear_regression must return one mean loss per epoch, shape ({epochs},), got {np.shape(losses)}"
        )
        assert isinstance(losses, np.ndarray) and losses.dtype == np.float64, (
            f"fit_linear_regression must return the per-epoch losses as an np.ndarray of float64, got "
            f"{type(losses).__name__} of dtype {getattr(losses, 'dtype', None)}"
        )
        assert np.allclose(losses, want_losses, rtol=1e-4), (
            f"per-epoch losses {np.round(losses, 5)} differ from the mean over the 5 samples of the loss "
            f"before each update, {np.round(want_losses, 5)}"
            + (": the sum was not divided by the number of samples" if np.allclose(losses, want_losses * len(X), rtol=1e-4) else "")
        )


@pytest.mark.points(1)
@pytest.mark.timeout(30)
def test_fit_rejects_bad_data(lab, grader_seed):
    """First a valid fit (two samples) that must equal the grader's own gradient descent, then three
    bad data sets that must raise ValueError: a function that only raises earns nothing."""
    k0, d0 = (float(v) for v in np.random.default_rng(grader_seed).uniform(-1, 1, 2))
    call = "fit_linear_regression on valid data (2 samples, 3 epochs)"
    try:
        result = lab.fit_linear_regression(X[:2], Y[:2], lr=0.004, epochs=3, k0=k0, d0=d0, device="cpu")
    except ValueError as exc:
        pytest.fail(f"{call} raised ValueError ({str(exc).strip()[:200]}): only data of different lengths or no "
                    "samples are bad; two samples make a valid fit")
    _check_fit_is_own_descent(result, X[:2], Y[:2], 0.004, 3, k0, d0, call)
    for x, y, what in ((X, Y[:4], "5 x values and 4 y values"), ([], [], "no samples"), (X[:1], [], "1 x value, no y")):
        with pytest.raises(ValueError):
            lab.fit_linear_regression(x, y, epochs=2, device="cpu")
            raise AssertionError(
                f"fit_linear_regression with {what} must raise ValueError (check len(x) == len(y) > 0 first: zip() "
                "would silently drop the unmatched samples)"
            )


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_fit_recovers_line(lab, device, grader_seed):
    """Two fits, each compared step by step with the grader's own per-sample gradient descent
    (float64; k, d and every per-epoch loss): the lab's data y = 2x + 1 with the default arguments
    (lr 0.005, 1000 epochs, k0 0.1, d0 -0.1), and a line drawn from the grader seed that the
    student code never saw (lr 0.02, 600 epochs). Returning k = 2, d = 1 and a made-up loss curve,
    or a closed-form least-squares fit, earns nothing."""
    call = f"fit_linear_regression(x, y, device={device!r}) on the lab's data"
    k, d = _check_fit_is_own_descent(lab.fit_linear_regression(X, Y, device=device), X, Y, 0.005, 1000, 0.1, -0.1, call)
    assert abs(k - 2.0) < 1e-2 and abs(d - 1.0) < 1e-2, (
        f"{call} gave k={k:.4f}, d={d:.4f}; the data lie on y = 2x + 1 "
        "(should be within 0.01 after 1000 epochs at lr 0.005)"
    )
    k_true, d_true, x, y, k0, d0 = grader_line(np.random.default_rng(grader_seed))
    call = (f"fit_linear_regression on the grader's line through {len(x)} points (lr=0.02, epochs=600, "
            f"k0={k0:.3f}, d0={d0:.3f}, device={device!r})")
    k, d = _check_fit_is_own_descent(
        lab.fit_linear_regression(x, y, lr=0.02, epochs=600, k0=k0, d0=d0, device=device), x, y, 0.02, 600, k0, d0, call
    )
    assert abs(k - k_true) < 1e-2 and abs(d - d_true) < 1e-2, (
        f"{call} gave k={k:.4f}, d={d:.4f}; the points lie on y = {k_true:.4f} x {d_true:+.4f}"
    )


@pytest.mark.points(1)
def test_no_hard_coded_device(lab):
    assert_no_hard_coded_device(lab.fit_linear_regression, "fit_linear_regression")
    with cuda_reported_unavailable():
        k, d, _ = lab.fit_linear_regression(X, Y, lr=0.004, epochs=2, k0=0.0, d0=0.0, device="cpu")
    # The run must be a real fit, not just return without touching CUDA.
    want_k, want_d, _ = per_sample_gd(0.0, 0.0, 0.004, 2)
    assert abs(as_float(k, "k") - want_k) < 1e-4 and abs(as_float(d, "d") - want_d) < 1e-4, (
        "fit_linear_regression(device='cpu') with CUDA unavailable does not give the per-sample gradient descent "
        "result (see the one-epoch check)"
    )


@pytest.mark.cuda
@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_fit_cuda_matches_cpu(lab):
    k_cpu, d_cpu, l_cpu = lab.fit_linear_regression(X, Y, epochs=50, device="cpu")
    k_gpu, d_gpu, l_gpu = lab.fit_linear_regression(X, Y, epochs=50, device="cuda")
    assert abs(as_float(k_gpu, "k") - as_float(k_cpu, "k")) < 1e-4 and abs(as_float(d_gpu, "d") - as_float(d_cpu, "d")) < 1e-4, (
        f"cuda result (k={k_gpu}, d={d_gpu}) differs from cpu (k={k_cpu}, d={d_cpu})"
    )
    assert np.allclose(np.asarray(l_gpu), np.asarray(l_cpu), rtol=1e-3, atol=1e-6), "per-epoch losses differ between cuda and cpu"
