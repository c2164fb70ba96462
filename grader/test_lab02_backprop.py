"""Grading of lab 2: backpropagation by hand (labs/lab02_backprop.py).

Every gradient is checked against torch autograd of the same forward pass in float64
(relative error < 1e-7; a correct implementation is at ~1e-15). A wrong gradient is reported
with the layer, the parameter and, where the grader can tell, the slip: a flipped sign, a
missing or extra factor 1/N, a transposed dW, or a missing sigma'(z) in a layer.

Functions that must not modify their inputs get them as handles kept in the worker
(``lab.grader.keep``), and the grader reads them back after the call: a plain argument is a
copy in the worker, on which an in-place change would go unseen.

Rubric (21 points): sigmoid 1, init 1, init distribution and errors 1, forward 2, cost 1,
backward for depths 1-5 5x1 plus batch of one 1, sgd_step 1, mini-batches and reshuffling of
train 2, training on two moons 3, vanishing gradients 2, bias-gradient norms 1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.kit import rel_error
from grader.judge.session import lab_fixture
from grader.oracle.lab02 import (  # the answer key: the grader's own backprop, training and sample orders
    bias_norms, check_backward, cost, epoch_tree, kept, match, minibatch_slip, moons_accuracy,
    ordered_partitions, random_problem, reference_forward, replay, unchanged,
)

lab = lab_fixture("lab02")


@pytest.mark.points(1)
def test_sigmoid_and_sigmoid_prime(lab, grader_seed):
    z = np.random.default_rng(grader_seed).uniform(-8, 8, size=(5, 7))
    s = torch.sigmoid(torch.tensor(z)).numpy()
    for name, got, want, formula in (
        ("sigmoid", lab.sigmoid(z), s, "1 / (1 + exp(-z))"),
        ("sigmoid_prime", lab.sigmoid_prime(z), s * (1 - s), "sigma(z) (1 - sigma(z))"),
    ):
        assert isinstance(got, np.ndarray) and got.shape == z.shape and got.dtype == np.float64, (
            f"{name}(z) on a float64 array of shape {z.shape} must return a float64 np.ndarray of the same shape, got "
            f"{type(got).__name__} {getattr(got, 'dtype', '')} {getattr(got, 'shape', '')}"
        )
        assert rel_error(got, want) < 1e-12, f"{name}(z) must be {formula} elementwise"


@pytest.mark.points(1)
def test_init_params_shapes_and_seed(lab):
    sizes = [4, 7, 3, 2]
    params = lab.init_params(sizes, seed=3)
    assert len(params) == 3, f"init_params({sizes}) must return one (W, b) per layer (3), got {len(params)}"
    for l, ((W, b), (n_in, n_out)) in enumerate(zip(params, zip(sizes[:-1], sizes[1:])), start=1):
        assert np.shape(W) == (n_out, n_in), f"W^{l} must have shape (n_l, n_(l-1)) = {(n_out, n_in)}, got {np.shape(W)}"
        assert np.shape(b) == (n_out,), f"b^{l} must have shape ({n_out},), got {np.shape(b)}"
        assert np.asarray(W).dtype == np.float64 and np.asarray(b).dtype == np.float64, (
            f"W^{l} and b^{l} must be float64, got {np.asarray(W).dtype} and {np.asarray(b).dtype}"
        )
        assert np.std(W) > 0, f"W^{l} is constant: weights must be random to break the symmetry"
    again = lab.init_params(sizes, seed=3)
    other = lab.init_params(sizes, seed=4)
    assert all(np.array_equal(W, W2) for (W, _), (W2, _) in zip(params, again)), "init_params is not deterministic by seed"
    assert not all(np.array_equal(W, W2) for (W, _), (W2, _) in zip(params, other)), "init_params ignores its seed"


@pytest.mark.points(1)
def test_init_params_distribution_and_errors(lab, grader_seed):
    """W^l ~ N(0, 1/n_(l-1)), b^l ~ N(0, 1) (Nielsen ch. 3), measured on large layers.

    Tolerances: std of W within 10 % (120000 and 60000 draws: ~0.3 % expected), std of b within
    25 % (300 and 200 draws: ~5 % expected), means within 0.1 std of W and 0.35 for b.
    """
    sizes = [400, 300, 200]
    params = lab.init_params(sizes, seed=grader_seed % 2**31)
    for l, ((W, b), n_in) in enumerate(zip(params, sizes[:-1]), start=1):
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        want = 1.0 / np.sqrt(n_in)
        hint = ""
        if abs(W.std() - 1.0) < 0.1:
            hint = f" (it looks like N(0, 1): divide by sqrt(n_(l-1)) = sqrt({n_in}))"
        elif abs(W.std() - 1.0 / n_in) < 0.1 / n_in:
            hint = f" (std 1/n_(l-1): the variance is 1/n_(l-1), so the std is 1/sqrt({n_in}))"
        assert abs(W.std() / want - 1.0) < 0.1 and abs(W.mean()) < 0.1 * want, (
            f"init_params({sizes}): W^{l} has mean {W.mean():.3g} and std {W.std():.3g}; W^l ~ N(0, 1/n_(l-1)) has "
            f"mean 0 and std 1/sqrt({n_in}) = {want:.3g}{hint}"
        )
        assert abs(b.std() - 1.0) < 0.25 and abs(b.mean()) < 0.35, (
            f"init_params({sizes}): b^{l} has mean {b.mean():.3g} and std {b.std():.3g}; b^l ~ N(0, 1) has mean 0, std 1"
        )
    for bad in ([5], [], [3, 0, 2], [4, -1]):
        with pytest.raises(ValueError):
            lab.init_params(bad, seed=0)
            raise AssertionError(
                f"init_params({bad}) must raise ValueError: a network needs at least two layer sizes, all positive"
            )


@pytest.mark.points(2)
def test_forward_shapes_and_values(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    sizes, n = [5, 8, 6, 3], 4
    params, x, _ = random_problem(rng, sizes, n)
    zs, activations = lab.forward(params, x)
    assert len(zs) == 3 and len(activations) == 4, (
        f"forward() must return L = 3 pre-activations z^l and L + 1 = 4 activations (a^0 = x first), "
        f"got {len(zs)} and {len(activations)}"
    )
    assert np.array_equal(activations[0], x), "activations[0] must be the input x itself"
    for l, (z, a) in enumerate(reference_forward(params, x), start=1):
        assert np.shape(zs[l - 1]) == (n, sizes[l]), f"z^{l} must have shape (N, n_l) = {(n, sizes[l])}, got {np.shape(zs[l - 1])}"
        assert np.asarray(zs[l - 1]).dtype == np.float64 and np.asarray(activations[l]).dtype == np.float64, (
            f"z^{l} and a^{l} must be float64 arrays, got {np.asarray(zs[l - 1]).dtype} and {np.asarray(activations[l]).dtype}"
        )
        assert rel_error(zs[l - 1], z) < 1e-12, f"z^{l} is wrong: z^l = a^(l-1) W^l^T + b^l (one sample per row)"
        assert rel_error(activations[l], a) < 1e-12, f"a^{l} is wrong: a^l = sigma(z^l)"
    for bad in (x[0], x[:, :4], x.T, x[None]):
        with pytest.raises(ValueError):
            lab.forward(params, bad)
            raise AssertionError(
                f"forward() with x of shape {bad.shape} for a net with n_0 = {sizes[0]} inputs must raise ValueError: "
                "x must be 2-D, (N, n_0), one sample per row"
            )


@pytest.mark.points(1)
def test_quadratic_cost(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for n in (1, 6):
        a_L, y = rng.random((n, 3)), rng.random((n, 3))
        want = 0.5 * np.sum((y - a_L) ** 2) / n
        got = lab.quadratic_cost(a_L, y)
        assert isinstance(got, float), f"quadratic_cost must return a Python float, got {type(got).__name__}"
        hint = " (the sum over the batch must be divided by N)" if n > 1 and abs(got - want * n) < 1e-12 else ""
        assert abs(got - want) < 1e-12, f"quadratic_cost with N={n}: got {got:.6f}, expected C0 = {want:.6f}{hint}"


TOL = 1e-7  # relative error of every gradient against the grader's autograd (a correct backward: ~1e-15)


@pytest.mark.points(1)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_backward_matches_autograd(lab, grader_seed, depth):
    rng = np.random.default_rng(grader_seed)
    for n in (7, 16):
        sizes = [int(rng.integers(2, 9)) for _ in range(depth + 1)]
        check_backward(lab, sizes, n, rng, TOL)


@pytest.mark.points(1)
def test_backward_batch_of_one(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for sizes in ([3, 1], [4, 5, 2], [2, 6, 6, 6, 3]):
        check_backward(lab, sizes, 1, rng, TOL)


@pytest.mark.points(1)
def test_sgd_step(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    params, _, _ = random_problem(rng, [3, 4, 2], 1)
    grads = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in params]
    params_h, before = kept(lab, params)
    grads_h, grads_before = kept(lab, grads)
    new = lab.sgd_step(params_h, grads_h, 0.1)
    assert len(new) == len(before), f"sgd_step must return one (W, b) per layer ({len(before)}), got {len(new)}"
    for l, ((W, b), (dW, db), (W1, b1)) in enumerate(zip(before, grads, new), start=1):
        assert rel_error(W1, W - 0.1 * dW) < 1e-12 and rel_error(b1, b - 0.1 * db) < 1e-12, (
            f"sgd_step: layer {l} must become W - lr dC/dW and b - lr dC/db"
        )
    assert unchanged(lab, params_h, before), (
        "sgd_step changed the arrays of `params` in place (W -= ...): return new arrays (W - lr * dW) and leave "
        "`params` as it was; the caller may still need the old parameters"
    )
    assert unchanged(lab, grads_h, grads_before), "sgd_step changed the arrays of `grads` in place: leave them as they were"


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_train_is_minibatch_sgd_with_reshuffling(lab, grader_seed):
    """train() against every possible sample order, computed by the grader's own steps.

    (1) N = 7, batch_size = 3, one epoch: the result must be one of the 140 ways to cut a
    permutation into mini-batches of 3, 3, 1, with one step per mini-batch; the cost history is
    C0 of that state; params, x, y unchanged. (2) N = 4, batch_size = 2, 3 epochs, 4 seeds: each
    epoch's partition is identified among the 6 possible; the same seed must give the same result,
    the order must change between epochs and between seeds (a correct train fails this by chance
    with probability below 1e-6).
    """
    rng = np.random.default_rng(grader_seed)
    lr = 0.8
    params, x, y = random_problem(rng, [3, 4, 2], 7)
    params_h, saved = kept(lab, params)
    x_h, y_h = lab.grader.keep(x), lab.grader.keep(y)
    call = "train(params, x, y, lr=0.8, epochs=1, batch_size=3) on N = 7 samples"
    got, history = lab.train(params_h, x_h, y_h, lr=lr, epochs=1, batch_size=3, seed=grader_seed % 2**31)
    candidates = replay(params, x, y, ordered_partitions(7, (3, 3, 1)), lr)  # the 140 possible epochs
    best, dist, second = match(got, candidates)
    if not dist < 1e-8:
        why = minibatch_slip(got, params, x, y, lr)
        raise AssertionError(f"{call}: the parameters are not those of mini-batch gradient descent: {why}")
    assert second > 1e-6, "the grader could not tell the sample orders apart on this problem"  # the grader's own sanity
    assert isinstance(history, np.ndarray) and history.dtype == np.float64 and history.shape == (1,), (
        f"{call} must return the cost history as an np.ndarray of float64 with one value per epoch, got "
        f"{type(history).__name__} {getattr(history, 'dtype', '')} {getattr(history, 'shape', '')}"
    )
    want = cost(candidates[best], x, y)
    assert abs(history[0] - want) < 1e-10 * max(1.0, want), (
        f"{call}: the history holds {history[0]:.8f}, but C0 of the returned parameters on all of (x, y) is "
        f"{want:.8f}: record C0 on the whole data set after each epoch's steps"
    )
    assert unchanged(lab, params_h, saved), (
        "train() changed the arrays of the initial `params` in place: work on new arrays (sgd_step returns them); "
        "the caller's initial parameters must stay as they were"
    )
    assert unchanged(lab, x_h, x) and unchanged(lab, y_h, y), "train() changed x or y in place"

    # (2) a new order every epoch, drawn from a generator seeded by `seed`.
    params, x, y = random_problem(rng, [2, 3, 2], 4)
    x_h, y_h = lab.grader.keep(x), lab.grader.keep(y)
    partitions = list(ordered_partitions(4, (2, 2)))
    tree = epoch_tree(params, x, y, partitions, lr, epochs=3)
    leaves = [k for k in tree if len(k) == 3]
    seeds = [int(v) for v in np.random.default_rng(grader_seed + 1).integers(0, 2**31, 4)]
    orders = []
    for seed in seeds:
        got = lab.train(params, x_h, y_h, lr=lr, epochs=3, batch_size=2, seed=seed)[0]
        best, dist, _ = match(got, [tree[k] for k in leaves])
        assert dist < 1e-8, (
            f"train(lr=0.8, epochs=3, batch_size=2, seed={seed}) on N = 4 samples: the parameters match no sequence of "
            "3 epochs of mini-batch gradient descent (each epoch: every sample once, in mini-batches of 2)"
        )
        orders.append(leaves[best])
    again = lab.train(params, x_h, y_h, lr=lr, epochs=3, batch_size=2, seed=seeds[0])[0]
    assert match(again, [tree[orders[0]]])[1] < 1e-8, (
        f"train(seed={seeds[0]}) called twice gives different results: draw the sample orders from a generator "
        "seeded by `seed` (e.g. np.random.default_rng(seed)), not from the global random state"
    )
    words = [" | ".join(str(partitions[j]) for j in o) for o in orders]
    assert any(j != 0 for o in orders for j in o), (
        "train(): every epoch uses the samples in their given order (mini-batches (0, 1), (2, 3)): shuffle the samples "
        "with a new random permutation every epoch"
    )
    assert any(len(set(o)) > 1 for o in orders), (
        f"train(): every epoch uses the same sample order ({words[0]}): draw a new random order every epoch, "
        "not once before the loop"
    )
    assert len(set(orders)) > 1, f"train(): seeds {seeds} all give the same sample orders: the seed is ignored"



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
    acc = moons_accuracy(params, x, labels)  # the grader's own forward pass
    assert acc >= 0.95, f"after training, accuracy on two moons is {acc:.3f}, expected >= 0.95 (check backward and sgd_step)"


@pytest.mark.points(1)
def test_bias_gradient_norms(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    params, x, y = random_problem(rng, [6, 5, 4, 3], 9)
    got = np.asarray(lab.bias_gradient_norms(params, x, y), dtype=np.float64)
    want = bias_norms(params, x, y)
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
    want = bias_norms(params, x, y)
    ratio = want[0] / want[-1]
    assert ratio < 1e-1, (
        f"with your init_params, ||dC/db^1|| / ||dC/db^5|| = {ratio:.3g} at initialisation; a sigmoid net "
        "this deep should show vanishing gradients (< 0.1): use W ~ N(0, 1/n_in), b ~ N(0, 1)"
    )
    got = np.asarray(lab.bias_gradient_norms(params, x, y), dtype=np.float64)
    assert rel_error(got, want) < TOL, f"bias_gradient_norms on the 5-layer net: got {got}, expected {want}"
