"""Lab 2's answer key: the grader's own backpropagation by torch autograd in float64 (and the slips
it can name), its random networks, its forward pass, gradient-descent steps and cost, every order of
the samples in mini-batches and the matching of trained parameters against them, and the arrays kept
in the worker to catch in-place changes (labs/lab02_backprop.py; the rubric is
grader/test_lab02_backprop.py).

Everything here is the judge's: gradients, costs and trained parameters are recomputed from plain
arrays, never taken from the student's code. The points and tolerances are the rubric's;
:func:`check_backward` asserts with its own messages, :func:`gradient_slip` and
:func:`minibatch_slip` return words for a failure the rubric words.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from grader.kit import rel_error


# --------------------------------------------------------------------------- the grader's own backprop


def torch_params(params):
    """``params`` ((W, b) per layer) as float64 leaf tensors that collect gradients."""
    return [
        (torch.tensor(np.asarray(W), dtype=torch.float64, requires_grad=True),
         torch.tensor(np.asarray(b), dtype=torch.float64, requires_grad=True))
        for W, b in params
    ]


def autograd_grads(params, x, y, straight_through: int | None = None):
    """dC0/dW^l, dC0/db^l by torch autograd; ``straight_through=l`` drops sigma'(z^l) (0-based)."""
    tp = torch_params(params)
    a = torch.tensor(x, dtype=torch.float64)
    for l, (W, b) in enumerate(tp):
        z = a @ W.T + b
        s = torch.sigmoid(z)
        a = z + (s - z).detach() if l == straight_through else s
    cost = 0.5 * ((torch.tensor(y, dtype=torch.float64) - a) ** 2).sum() / x.shape[0]
    cost.backward()
    return [(W.grad.numpy(), b.grad.numpy()) for W, b in tp]


def bias_norms(params, x, y) -> np.ndarray:
    """||dC0/db^l||_2 of every layer, from :func:`autograd_grads`."""
    return np.array([np.linalg.norm(db) for _, db in autograd_grads(params, x, y)])


def random_problem(rng, sizes, n):
    """A sigmoid network of layer ``sizes`` (W^l ~ N(0, 1/n_(l-1)), b^l ~ N(0, 1)), ``n`` inputs
    x ~ N(0, 1) and targets y ~ U(0, 1), drawn from ``rng`` in that order: (params, x, y)."""
    params = [(rng.standard_normal((m, k)) / np.sqrt(k), rng.standard_normal(m)) for k, m in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((n, sizes[0]))
    y = rng.random((n, sizes[-1]))
    return params, x, y


def reference_forward(params, x) -> list[tuple[np.ndarray, np.ndarray]]:
    """The grader's forward pass in float64 (torch): (z^l, a^l) of every layer l = 1..L."""
    out = []
    a = torch.tensor(x)
    for W, b in params:
        z = a @ torch.tensor(W).T + torch.tensor(b)
        a = torch.sigmoid(z)
        out.append((z.numpy(), a.numpy()))
    return out


def gradient_slip(name, got, want, params, x, y, layer, param_index) -> str:
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
        slip = autograd_grads(params, x, y, straight_through=m)[layer][param_index]
        if rel_error(got, slip) < 1e-6:
            return f"{name} matches backprop without sigma'(z^{m + 1}): the factor sigma'(z) is missing in layer {m + 1}"
    return f"{name} is off (relative error {rel_error(got, want):.2e})"


def check_backward(lab, sizes, n, rng, tol: float) -> None:
    """backward() on a random problem (:func:`random_problem`) against :func:`autograd_grads`: one
    (dW, db) pair per layer, float64, each within relative error ``tol``; the layer closest to the
    output is reported first, with the slip in words (:func:`gradient_slip`)."""
    params, x, y = random_problem(rng, sizes, n)
    grads = lab.backward([(W.copy(), b.copy()) for W, b in params], x.copy(), y.copy())
    want = autograd_grads(params, x, y)
    assert len(grads) == len(want), (
        f"backward() for layer sizes {sizes} must return {len(want)} (dW, db) pairs, one per layer, got {len(grads)}"
    )
    # Report the layer closest to the output first: an error there spreads to every earlier layer.
    for l in range(len(want) - 1, -1, -1):
        for p, label in enumerate(("dW", "db")):
            name = f"dC/d{label[1]}^{l + 1}"
            assert np.asarray(grads[l][p]).dtype == np.float64, (
                f"backward(), layer sizes {sizes}: {name} must be float64, got {np.asarray(grads[l][p]).dtype}"
            )
            got = np.asarray(grads[l][p], dtype=np.float64)
            ok = got.shape == want[l][p].shape and rel_error(got, want[l][p]) < tol
            assert ok, (
                f"backward(), layer sizes {sizes}, batch N={n}: "
                + gradient_slip(name, got, want[l][p], params, x, y, l, p)
            )


# --------------------------------------------------------------------------- inputs kept in the worker


def kept(lab, params):
    """``params`` sent once and kept in the worker: (handle, the grader's own copy)."""
    copy = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in params]
    return lab.grader.keep(copy), [(W.copy(), b.copy()) for W, b in copy]


def unchanged(lab, handle, saved) -> bool:
    """Are the worker's kept arrays still equal to ``saved`` (read back after the call)?"""
    now = lab.grader.probe("tensor", handle)
    if isinstance(saved, np.ndarray):
        return isinstance(now, np.ndarray) and np.array_equal(now, saved)
    return len(now) == len(saved) and all(
        np.array_equal(np.asarray(W), W0) and np.array_equal(np.asarray(b), b0) for (W, b), (W0, b0) in zip(now, saved)
    )


# --------------------------------------------------------------------------- the grader's own training


def step(params, x, y, batch, lr):
    """The grader's gradient-descent step on C0 of the mini-batch ``batch`` (autograd gradients)."""
    idx = list(batch)
    grads = autograd_grads(params, x[idx], y[idx])
    return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]


def cost(params, x, y) -> float:
    """C0 = 1/(2N) sum ||y - a^L||^2 of the network ``params`` on (x, y), in NumPy."""
    a = x
    for W, b in params:
        a = 1.0 / (1.0 + np.exp(-(a @ W.T + b)))
    return float(0.5 * np.sum((y - a) ** 2) / x.shape[0])


def moons_accuracy(params, x, labels) -> float:
    """The grader's own forward pass (torch, float64) of a one-output network: the share of the
    samples with a^L > 0.5 exactly when their label is 1."""
    a = torch.tensor(x)
    for W, b in params:
        a = torch.sigmoid(a @ torch.tensor(np.asarray(W, dtype=np.float64)).T + torch.tensor(np.asarray(b, dtype=np.float64)))
    return float(((a[:, 0] > 0.5).numpy() == labels).mean())


def ordered_partitions(n: int, sizes: tuple[int, ...], items: tuple[int, ...] | None = None):
    """Every way to cut range(n) into consecutive mini-batches of the given sizes, in order (a
    mini-batch as a sorted tuple of sample indices; samples left over are not used)."""
    items = tuple(range(n)) if items is None else items
    if not sizes:
        yield ()
        return
    for first in itertools.combinations(items, sizes[0]):
        left = tuple(i for i in items if i not in first)
        for tail in ordered_partitions(n, sizes[1:], left):
            yield (first,) + tail


def replay(params, x, y, partitions, lr) -> list:
    """The parameters after one epoch of :func:`step` per mini-batch, for each partition in order."""
    out = []
    for part in partitions:
        state = params
        for batch in part:
            state = step(state, x, y, batch, lr)
        out.append(state)
    return out


def epoch_tree(params, x, y, partitions, lr, epochs: int) -> dict:
    """The parameters after every sequence of up to ``epochs`` epochs, one partition each:
    {(index of the partition of epoch 1, of epoch 2, ...): parameters}, () for the start."""
    tree = {(): params}
    for depth in range(epochs):
        for key in [k for k in tree if len(k) == depth]:
            for j, state in enumerate(replay(tree[key], x, y, partitions, lr)):
                tree[key + (j,)] = state
    return tree


def flat(params) -> np.ndarray:
    """Every W and b of ``params`` in one float64 vector."""
    return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for W, b in params for a in (W, b)])


def match(params, candidates) -> tuple[int, float, float]:
    """(index of the nearest candidate, its relative distance, the second nearest's)."""
    try:
        got = flat(params)
        d = sorted((rel_error(got, flat(c)), i) for i, c in enumerate(candidates) if flat(c).shape == got.shape)
    except (TypeError, ValueError):
        return -1, np.inf, np.inf
    if not d:
        return -1, np.inf, np.inf
    return d[0][1], d[0][0], d[1][0] if len(d) > 1 else np.inf


def minibatch_slip(got, params, x, y, lr) -> str:
    """Words for trained parameters that match no epoch of mini-batch gradient descent on N = 7
    samples in mini-batches of 3, 3 and 1: mini-batches of 3, 2, 2; the last one left out; one step
    on the whole set; or none of these."""
    for sizes, words in (
        ((3, 2, 2), "the mini-batches have 3, 2 and 2 samples; all but the last must have batch_size samples"),
        ((3, 3), "the last, smaller mini-batch (1 sample) was left out: it takes a step too"),
        ((7,), "one step on the whole data set per epoch: take one step per mini-batch"),
    ):
        if match(got, replay(params, x, y, ordered_partitions(7, sizes), lr))[1] < 1e-8:
            return words
    return "it matches no order of the samples cut into mini-batches of 3, 3 and 1 with one step per mini-batch"
