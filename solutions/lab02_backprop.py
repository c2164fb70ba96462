"""Lab 2: backpropagation by hand for a sigmoid multilayer perceptron (NumPy, float64, no autograd).

Source: Computational MRI lecture "Training neural networks with backpropagation", after
M. Nielsen, *Neural Networks and Deep Learning*, ch. 2 (the four equations of backpropagation)
and ch. 5 (vanishing gradients).

Notation (l = 1 ... L):
    z^l = W^l a^(l-1) + b^l,   a^l = sigma(z^l),   a^0 = x
    C0  = 1/(2N) sum_x ||y_x - a^L_x||^2                       (quadratic cost, mean over the batch)
    delta^L = (a^L - y) * sigma'(z^L) / N
    delta^l = (W^(l+1)^T delta^(l+1)) * sigma'(z^l)
    dC/dW^l = delta^l a^(l-1)^T,   dC/db^l = delta^l           (summed over the batch)

Shapes: W^l is (n_l, n_(l-1)), b^l is (n_l,), a batch x is (N, n_0) with one sample per row, so
in code z^l = a^(l-1) @ W^l.T + b^l has shape (N, n_l).

Run the whole lab with ``python -m labs.lab02_backprop``.
"""

from __future__ import annotations

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- Task 2.1: activation


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^-z), elementwise; any shape, float64."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """sigma'(z) = sigma(z) (1 - sigma(z)), elementwise; any shape, float64."""
    s = sigmoid(z)
    return s * (1.0 - s)


# --------------------------------------------------------------------------- Task 2.2: forward


def init_params(layer_sizes: list[int], seed: int = 0) -> Params:
    """Random initial weights and biases.

    W^l ~ N(0, 1/n_(l-1)) and b^l ~ N(0, 1) (Nielsen ch. 3, "Weight initialization").

    Args:
        layer_sizes: [n_0, n_1, ..., n_L], at least two entries, all positive.
        seed: seed of ``np.random.default_rng``.

    Returns:
        [(W^1, b^1), ..., (W^L, b^L)], W^l float64 (n_l, n_(l-1)), b^l float64 (n_l,).

    Raises:
        ValueError: fewer than two layers or a non-positive size.
    """
    if len(layer_sizes) < 2 or any(int(n) < 1 for n in layer_sizes):
        raise ValueError(f"layer_sizes must list at least two positive sizes, got {layer_sizes}")
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        W = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        b = rng.standard_normal(n_out)
        params.append((W, b))
    return params


def forward(params: Params, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward pass: z^l = a^(l-1) W^l^T + b^l and a^l = sigma(z^l) for l = 1 ... L.

    Args:
        params: [(W^l, b^l)] as from :func:`init_params`.
        x: batch of inputs, float64 (N, n_0).

    Returns:
        (zs, activations): zs = [z^1, ..., z^L], each (N, n_l); activations = [a^0 = x, a^1,
        ..., a^L], each (N, n_l).

    Raises:
        ValueError: x is not 2-D or its width is not n_0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != params[0][0].shape[1]:
        raise ValueError(f"x must have shape (N, {params[0][0].shape[1]}), got {x.shape}")
    zs, activations = [], [x]
    for W, b in params:
        z = activations[-1] @ W.T + b
        zs.append(z)
        activations.append(sigmoid(z))
    return zs, activations


def quadratic_cost(a_L: np.ndarray, y: np.ndarray) -> float:
    """C0 = 1/(2N) sum_x ||y_x - a^L_x||^2 for a batch of N rows; returns a Python float."""
    a_L, y = np.asarray(a_L, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(0.5 * np.sum((y - a_L) ** 2) / a_L.shape[0])


# --------------------------------------------------------------------------- Task 2.3: backward


def backward(params: Params, x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gradients of the mean quadratic cost C0 with respect to every W^l and b^l.

    Backpropagation (Nielsen ch. 2, equations BP1-BP4, batched):
        delta^L = (a^L - y) * sigma'(z^L) / N
        delta^l = (delta^(l+1) W^(l+1)) * sigma'(z^l)
        dC/dW^l = delta^l^T a^(l-1),   dC/db^l = sum over the batch of delta^l

    Args:
        params: [(W^l, b^l)].
        x: inputs, float64 (N, n_0).
        y: targets, float64 (N, n_L).

    Returns:
        [(dC/dW^1, dC/db^1), ..., (dC/dW^L, dC/db^L)] with the shapes of the parameters.
    """
    y = np.asarray(y, dtype=np.float64)
    zs, activations = forward(params, x)
    n = activations[0].shape[0]
    grads: list[tuple[np.ndarray, np.ndarray]] = [None] * len(params)  # type: ignore[list-item]
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1]) / n
    for l in range(len(params) - 1, -1, -1):
        grads[l] = (delta.T @ activations[l], delta.sum(axis=0))
        if l > 0:
            delta = (delta @ params[l][0]) * sigmoid_prime(zs[l - 1])
    return grads


# --------------------------------------------------------------------------- Task 2.4: training


def sgd_step(params: Params, grads: list[tuple[np.ndarray, np.ndarray]], lr: float) -> Params:
    """One gradient-descent step W <- W - lr dC/dW, b <- b - lr dC/db.

    Returns new arrays; ``params`` is not modified.
    """
    return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]


def train(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int = 0,
) -> tuple[Params, np.ndarray]:
    """Mini-batch stochastic gradient descent on C0.

    Each epoch visits the N samples in a new random order (``np.random.default_rng(seed)``) in
    mini-batches of ``batch_size`` (the last one may be smaller) and takes one :func:`sgd_step` per
    mini-batch.

    Args:
        params: initial [(W^l, b^l)] (not modified).
        x: inputs, float64 (N, n_0); y: targets, float64 (N, n_L).
        lr: learning rate; epochs: passes over the data; batch_size: samples per step.
        seed: seed of the shuffling.

    Returns:
        (params, cost_history): the trained parameters and C0 on the whole (x, y) after each
        epoch, np.ndarray float64 (epochs,).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    history = np.zeros(epochs)
    for epoch in range(epochs):
        order = rng.permutation(x.shape[0])
        for start in range(0, x.shape[0], batch_size):
            batch = order[start : start + batch_size]
            params = sgd_step(params, backward(params, x[batch], y[batch]), lr)
        history[epoch] = quadratic_cost(forward(params, x)[1][-1], y)
    return params, history


# --------------------------------------------------------------------------- Task 2.5: vanishing gradients


def bias_gradient_norms(params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """||dC/db^l||_2 for l = 1 ... L, input side first: np.ndarray float64 (L,).

    In a deep sigmoid net the first layers' norms are orders of magnitude smaller than the last
    ones' (sigma'(z) <= 1/4 at every layer): the vanishing gradient problem (Nielsen ch. 5).
    """
    return np.array([np.linalg.norm(db) for _, db in backward(params, x, y)])


def main() -> None:
    """Run the lab: gradient check against finite differences, training, vanishing gradients."""
    rng = np.random.default_rng(0)
    params = init_params([2, 3, 2], seed=0)
    x, y = rng.standard_normal((4, 2)), rng.random((4, 2))
    grads = backward(params, x, y)
    eps, (W, b) = 1e-6, params[0]
    W_plus = W.copy()
    W_plus[0, 0] += eps
    numeric = (quadratic_cost(forward([(W_plus, b)] + params[1:], x)[1][-1], y)
               - quadratic_cost(forward(params, x)[1][-1], y)) / eps
    print(f"dC/dW^1[0,0]: backprop {grads[0][0][0, 0]:.8f}, finite difference {numeric:.8f}")

    from sklearn.datasets import make_moons

    xm, ym = make_moons(n_samples=400, noise=0.1, random_state=0)
    params, history = train(init_params([2, 16, 1], seed=0), xm, ym[:, None].astype(float), 2.0, 400, 16, seed=0)
    acc = np.mean((forward(params, xm)[1][-1][:, 0] > 0.5) == ym)
    print(f"two moons, 2-16-1 sigmoid net: cost {history[0]:.4f} -> {history[-1]:.4f}, accuracy {acc:.3f}")

    deep = init_params([784, 30, 30, 30, 30, 10], seed=0)
    xs, ys = rng.random((100, 784)), np.eye(10)[rng.integers(0, 10, 100)]
    norms = bias_gradient_norms(deep, xs, ys)
    print("||dC/db^l|| for a 784-30-30-30-30-10 sigmoid net:", np.array2string(norms, precision=2))


if __name__ == "__main__":
    main()
