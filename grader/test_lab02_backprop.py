"""Grading of lab 2: backpropagation by hand (labs/lab02_backprop.py).

Every gradient is checked against torch autograd of the same forward pass in float64
(relative error < 1e-7; a correct implementation is at ~1e-15). A wrong gradient is reported
with the layer, the parameter and, where the grader can tell, the slip: a flipped sign, a
missing or extra factor 1/N, a transposed dW, or a missing sigma'(z) in a layer.

Rubric (18 points): sigmoid 1, init 1, forward 2, cost 1, backward for depths 1-5 5x1 plus
batch of one 1, sgd_step 1, training on two moons 3, vanishing gradients 2, bias-gradient
norms 1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.checks import rel_error
from grader.impl import lab_fixture

lab = lab_fixture("lab02")

TOL = 1e-7


# --------------------------------------------------------------------------- the grader's own reference


def _torch_params(params):
    return [
        (torch.tensor(np.asarray(W), dtype=torch.float64, requires_grad=True),
         torch.tensor(np.asarray(b), dtype=torch.float64, requires_grad=True))
        for W, b in params
    ]


def _autograd_grads(params, x, y, straight_through: int | None = None):
    """dC0/dW^l, dC0/db^l by torch autograd; ``straight_through=l`` drops sigma'(z^l) (0-based)."""
    tp = _torch_params(params)
    a = torch.tensor(x, dtype=torch.float64)
    for l, (W, b) in enumerate(tp):
        z = a @ W.T + b
        s = torch.sigmoid(z)
        a = z + (s - z).detach() if l == straight_through else s
    cost = 0.5 * ((torch.tensor(y, dtype=torch.float64) - a) ** 2).sum() / x.shape[0]
    cost.backward()
    return [(W.grad.numpy(), b.grad.numpy()) for W, b in tp]


def _random_problem(rng, sizes, n):
    params = [(rng.standard_normal((m, k)) / np.sqrt(k), rng.standard_normal(m)) for k, m in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((n, sizes[0]))
    y = rng.random((n, sizes[-1]))
    return params, x, y


def _diagnose(name, got, want, params, x, y, layer, param_index) -> str:
    """Words for the most likely slip behind a wrong gradient."""
    n = x.shape[0]
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        if got.shape == want.T.shape:
            return f"{name} has shape {got.shape} but must have {want.shape}: it is transposed"
        return f"{name} has shape {got.shape} but must have {want.shape}"
    if rel_error(got, -want) < 1e-6:
        return f"{name} has the wrong sign: the cost gradient is (a^L - y), not (y - a^L)"
    if n > 1 and rel_error(got, want * n) < 1e-6:
        return f"{name} is N = {n} times too large: C0 is the mean over the batch (factor 1/N), not the sum"
    if n > 1 and rel_error(got, want / n) < 1e-6:
        return f"{name} is N = {n} times too small: the factor 1/N was applied twice"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and rel_error(got.T, want) < 1e-6:
        return f"{name} is transposed: dC/dW^l = delta^l^T a^(l-1) has the shape of W^l, (n_l, n_(l-1))"
    for m in range(len(params) - 1, -1, -1):
        slip = _autograd_grads(params, x, y, straight_through=m)[layer][param_index]
        if rel_error(got, slip) < 1e-6:
            return f"{name} matches backprop without sigma'(z^{m + 1}): the factor sigma'(z) is missing in layer {m + 1}"
    return f"{name} is off (relative error {rel_error(got, want):.2e})"


def _check_backward(lab, sizes, n, rng):
    params, x, y = _random_problem(rng, sizes, n)
    grads = lab.backward([(W.copy(), b.copy()) for W, b in params], x.copy(), y.copy())
    want = _autograd_grads(params, x, y)
    assert len(grads) == len(want), (
        f"backward() for layer sizes {sizes} must return {len(want)} (dW, db) pairs, one per layer, got {len(grads)}"
    )
    # Report the layer closest to the output first: an error there spreads to every earlier layer.
    for l in range(len(want) - 1, -1, -1):
        for p, label in enumerate(("dW", "db")):
            name = f"dC/d{label[1]}^{l + 1}"
            got = np.asarray(grads[l][p], dtype=np.float64)
            ok = got.shape == want[l][p].shape and rel_error(got, want[l][p]) < TOL
            assert ok, (
                f"backward(), layer sizes {sizes}, batch N={n}: "
                + _diagnose(name, got, want[l][p], params, x, y, l, p)
            )


# --------------------------------------------------------------------------- the rubric


@pytest.mark.points(1)
def test_sigmoid_and_sigmoid_prime(lab, grader_seed):
    z = np.random.default_rng(grader_seed).uniform(-8, 8, size=(5, 7))
    s = torch.sigmoid(torch.tensor(z)).numpy()
    assert rel_error(lab.sigmoid(z), s) < 1e-12, "sigmoid(z) must be 1 / (1 + exp(-z)) elementwise"
    got = np.asarray(lab.sigmoid_prime(z))
    assert got.shape == z.shape, f"sigmoid_prime(z) must keep the shape {z.shape}, got {got.shape}"
    assert rel_error(got, s * (1 - s)) < 1e-12, "sigmoid_prime(z) must be sigma(z) (1 - sigma(z))"


@pytest.mark.points(1)
def test_init_params_shapes_and_seed(lab):
    sizes = [4, 7, 3, 2]
    params = lab.init_params(sizes, seed=3)
    assert len(params) == 3, f"init_params({sizes}) must return one (W, b) per layer (3), got {len(params)}"
    for l, ((W, b), (n_in, n_out)) in enumerate(zip(params, zip(sizes[:-1], sizes[1:])), start=1):
        assert np.shape(W) == (n_out, n_in), f"W^{l} must have shape (n_l, n_(l-1)) = {(n_out, n_in)}, got {np.shape(W)}"
        assert np.shape(b) == (n_out,), f"b^{l} must have shape ({n_out},), got {np.shape(b)}"
        assert np.asarray(W).dtype == np.float64, f"W^{l} must be float64, got {np.asarray(W).dtype}"
        assert np.std(W) > 0, f"W^{l} is constant: weights must be random to break the symmetry"
    again = lab.init_params(sizes, seed=3)
    other = lab.init_params(sizes, seed=4)
    assert all(np.array_equal(W, W2) for (W, _), (W2, _) in zip(params, again)), "init_params is not deterministic by seed"
    assert not all(np.array_equal(W, W2) for (W, _), (W2, _) in zip(params, other)), "init_params ignores its seed"


@pytest.mark.points(2)
def test_forward_shapes_and_values(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    sizes, n = [5, 8, 6, 3], 4
    params, x, _ = _random_problem(rng, sizes, n)
    zs, activations = lab.forward(params, x)
    assert len(zs) == 3 and len(activations) == 4, (
        f"forward() must return L = 3 pre-activations z^l and L + 1 = 4 activations (a^0 = x first), "
        f"got {len(zs)} and {len(activations)}"
    )
    assert np.array_equal(activations[0], x), "activations[0] must be the input x itself"
    a = torch.tensor(x)
    for l, (W, b) in enumerate(params, start=1):
        z = a @ torch.tensor(W).T + torch.tensor(b)
        a = torch.sigmoid(z)
        assert np.shape(zs[l - 1]) == (n, sizes[l]), f"z^{l} must have shape (N, n_l) = {(n, sizes[l])}, got {np.shape(zs[l - 1])}"
        assert rel_error(zs[l - 1], z.numpy()) < 1e-12, f"z^{l} is wrong: z^l = a^(l-1) W^l^T + b^l (one sample per row)"
        assert rel_error(activations[l], a.numpy()) < 1e-12, f"a^{l} is wrong: a^l = sigma(z^l)"


@pytest.mark.points(1)
def test_quadratic_cost(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for n in (1, 6):
        a_L, y = rng.random((n, 3)), rng.random((n, 3))
        want = 0.5 * np.sum((y - a_L) ** 2) / n
        got = float(lab.quadratic_cost(a_L, y))
        hint = " (the sum over the batch must be divided by N)" if n > 1 and abs(got - want * n) < 1e-12 else ""
        assert abs(got - want) < 1e-12, f"quadratic_cost with N={n}: got {got:.6f}, expected C0 = {want:.6f}{hint}"


@pytest.mark.points(1)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_backward_matches_autograd(lab, grader_seed, depth):
    rng = np.random.default_rng(grader_seed)
    for n in (7, 16):
        sizes = [int(rng.integers(2, 9)) for _ in range(depth + 1)]
        _check_backward(lab, sizes, n, rng)


@pytest.mark.points(1)
def test_backward_batch_of_one(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for sizes in ([3, 1], [4, 5, 2], [2, 6, 6, 6, 3]):
        _check_backward(lab, sizes, 1, rng)


@pytest.mark.points(1)
def test_sgd_step(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    params, _, _ = _random_problem(rng, [3, 4, 2], 1)
    grads = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in params]
    before = [(W.copy(), b.copy()) for W, b in params]
    new = lab.sgd_step(params, grads, 0.1)
    for l, ((W, b), (dW, db), (W1, b1)) in enumerate(zip(before, grads, new), start=1):
        assert rel_error(W1, W - 0.1 * dW) < 1e-12 and rel_error(b1, b - 0.1 * db) < 1e-12, (
            f"sgd_step: layer {l} must become W - lr dC/dW and b - lr dC/db"
        )


@pytest.mark.points(3)
@pytest.mark.timeout(60)
def test_train_two_moons(lab, grader_seed):
    """A 2-16-1 sigmoid net on two moons (not linearly separable): >= 95%.

    Solution over 20 seeds (lr 2, 200 epochs, batch 16): min 0.988, median 0.998, 0.36 s each.
    """
    from sklearn.datasets import make_moons

    x, labels = make_moons(n_samples=400, noise=0.1, random_state=grader_seed % 2**31)
    y = labels[:, None].astype(np.float64)
    params, history = lab.train(lab.init_params([2, 16, 1], seed=grader_seed), x, y, lr=2.0, epochs=200, batch_size=16, seed=grader_seed)
    history = np.asarray(history)
    assert history.shape == (200,), f"train() must return one cost per epoch, shape (200,), got {history.shape}"
    assert history[-1] < history[0], f"the cost did not decrease: {history[0]:.4f} -> {history[-1]:.4f}"
    # The grader computes the accuracy itself, with its own forward pass.
    a = torch.tensor(x)
    for W, b in params:
        a = torch.sigmoid(a @ torch.tensor(np.asarray(W, dtype=np.float64)).T + torch.tensor(np.asarray(b, dtype=np.float64)))
    acc = float(((a[:, 0] > 0.5).numpy() == labels).mean())
    assert acc >= 0.95, f"after training, accuracy on two moons is {acc:.3f}, expected >= 0.95 (check backward and sgd_step)"


@pytest.mark.points(1)
def test_bias_gradient_norms(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    params, x, y = _random_problem(rng, [6, 5, 4, 3], 9)
    got = np.asarray(lab.bias_gradient_norms(params, x, y), dtype=np.float64)
    want = np.array([np.linalg.norm(db) for _, db in _autograd_grads(params, x, y)])
    assert got.shape == (3,), f"bias_gradient_norms must return one norm per layer, shape (3,), got {got.shape}"
    assert rel_error(got, want) < TOL, f"bias_gradient_norms: got {got}, expected ||dC/db^l||_2 = {want}"


@pytest.mark.points(2)
def test_vanishing_gradients_in_deep_sigmoid_net(lab, grader_seed):
    """5-layer sigmoid net at initialisation: ||dC/db^1|| / ||dC/db^5|| < 1e-1.

    Solution over 20 seeds: ratio min 9.5e-4, median 1.7e-3, max 3.0e-3 (30x margin).
    """
    rng = np.random.default_rng(grader_seed)
    params = lab.init_params([784, 30, 30, 30, 30, 10], seed=grader_seed)
    x = rng.random((100, 784))
    y = np.eye(10)[rng.integers(0, 10, 100)]
    want = np.array([np.linalg.norm(db) for _, db in _autograd_grads(params, x, y)])
    ratio = want[0] / want[-1]
    assert ratio < 1e-1, (
        f"with your init_params, ||dC/db^1|| / ||dC/db^5|| = {ratio:.3g} at initialisation; a sigmoid net "
        "this deep should show vanishing gradients (< 0.1): use W ~ N(0, 1/n_in), b ~ N(0, 1)"
    )
    got = np.asarray(lab.bias_gradient_norms(params, x, y), dtype=np.float64)
    assert rel_error(got, want) < TOL, f"bias_gradient_norms on the 5-layer net: got {got}, expected {want}"
