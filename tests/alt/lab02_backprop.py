"""Alternative correct lab 2: per-sample backprop loop, RandomState init, argsort shuffling."""

import numpy as np


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s - s * s


def init_params(layer_sizes, seed=0):
    if len(layer_sizes) < 2 or min(layer_sizes) <= 0:
        raise ValueError("need two or more positive layer sizes")
    rs = np.random.RandomState(seed + 12345)
    return [
        (rs.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_out, n_in)), rs.normal(0.0, 1.0, size=n_out))
        for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
    ]


def forward(params, x):
    activations = [np.asarray(x, dtype=np.float64)]
    if activations[0].ndim != 2 or activations[0].shape[1] != params[0][0].shape[1]:
        raise ValueError("x: expected (N, n_0)")
    zs = []
    for W, b in params:
        zs.append(np.einsum("nk,mk->nm", activations[-1], W) + b)
        activations.append(sigmoid(zs[-1]))
    return zs, activations


def quadratic_cost(a_L, y):
    return float(np.mean(np.sum((np.asarray(y) - np.asarray(a_L)) ** 2, axis=1)) / 2)


def backward(params, x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    total = [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
    for xi, yi in zip(x, y):  # one sample at a time, Nielsen's ch. 2 loop
        zs, acts = forward(params, xi[None, :])
        delta = ((acts[-1] - yi) * sigmoid_prime(zs[-1]))[0]
        for l in reversed(range(len(params))):
            dW, db = total[l]
            total[l] = (dW + np.outer(delta, acts[l][0]), db + delta)
            if l:
                delta = params[l][0].T.dot(delta) * sigmoid_prime(zs[l - 1])[0]
    n = x.shape[0]
    return [(dW / n, db / n) for dW, db in total]


def sgd_step(params, grads, lr):
    out = []
    for (W, b), (dW, db) in zip(params, grads):
        out.append((W - dW * lr, b - db * lr))
    return out


def train(params, x, y, lr, epochs, batch_size, seed=0):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rs = np.random.RandomState(seed)
    costs = []
    for _ in range(epochs):
        order = np.argsort(rs.random_sample(len(x)))
        n_full = len(x) // batch_size
        batches = np.split(order[: n_full * batch_size], n_full) if n_full else []
        if len(x) % batch_size:
            batches.append(order[n_full * batch_size :])
        for idx in batches:
            params = sgd_step(params, backward(params, x[idx], y[idx]), lr)
        costs.append(quadratic_cost(forward(params, x)[1][-1], y))
    return params, np.asarray(costs)


def bias_gradient_norms(params, x, y):
    return np.sqrt([np.sum(db ** 2) for _, db in backward(params, x, y)])
