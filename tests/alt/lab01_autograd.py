"""Alternative correct lab 1: float64 tensors, index loops, gradients reset with ``grad = None``."""

import numpy as np
import torch


def graph_forward(a, b):
    nodes = {"a": a, "b": b}
    nodes["c"] = nodes["a"] + nodes["b"]
    nodes["d"] = nodes["b"] + 1
    nodes["e"] = nodes["c"] * nodes["d"]
    return nodes["c"], nodes["d"], nodes["e"]


def graph_backward(a, b):
    c, d, _ = graph_forward(a, b)
    # local derivatives along each edge, multiplied along paths and summed over paths
    paths_a = [(d, 1.0)]
    paths_b = [(d, 1.0), (c, 1.0)]
    return sum(x * y for x, y in paths_a), sum(x * y for x, y in paths_b)


def graph_autograd(a, b):
    ab = torch.tensor([a, b], dtype=torch.float64, requires_grad=True)
    e = (ab[0] + ab[1]) * (ab[1] + 1)
    (grad,) = torch.autograd.grad(e, ab)
    return grad[0].item(), grad[1].item()


def linear_model(x, k, d):
    return torch.add(torch.mul(x, k), d)


def squared_error(y_pred, y):
    if tuple(y_pred.shape) != tuple(y.shape):
        raise ValueError("squared_error: y_pred and y must have the same shape")
    diff = y_pred - y
    return (diff * diff).sum()


def fit_linear_regression(x, y, lr=0.005, epochs=1000, k0=0.1, d0=-0.1, device="cpu"):
    xs = torch.tensor(np.asarray(x, dtype=np.float64), device=device)
    ys = torch.tensor(np.asarray(y, dtype=np.float64), device=device)
    if len(xs) != len(ys) or not len(xs):
        raise ValueError("need as many y values as x values, at least one")
    k = torch.full((), k0, dtype=torch.float64, device=device, requires_grad=True)
    d = torch.full((), d0, dtype=torch.float64, device=device, requires_grad=True)
    history = []
    for _ in range(epochs):
        losses = []
        for i in range(len(xs)):
            loss = squared_error(linear_model(xs[i], k, d), ys[i])
            loss.backward()
            with torch.no_grad():
                k.sub_(lr * k.grad)
                d.sub_(lr * d.grad)
            k.grad = None
            d.grad = None
            losses.append(float(loss))
        history.append(np.mean(losses))
    return k.item(), d.item(), np.array(history)
