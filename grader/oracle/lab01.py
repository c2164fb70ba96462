"""Lab 1's answer key: the graph's gradients by autograd, the lab's data, the grader's own per-sample
gradient descent in float64, and the lines the grader draws (labs/lab01_autograd.py; the rubric is
grader/test_lab01_autograd.py)."""

from __future__ import annotations

import numpy as np
import torch

X = (1.0, 2.0, 3.0, 4.0, 5.0)
Y = (3.0, 5.0, 7.0, 9.0, 11.0)


def autograd_gradients(a: float, b: float) -> tuple[float, float]:
    """(de/da, de/db) of e = (a + b)(b + 1) by torch autograd in float64."""
    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ((a_t + b_t) * (b_t + 1.0)).backward()
    return a_t.grad.item(), b_t.grad.item()


def per_sample_gd(k: float, d: float, lr: float, epochs: int, accumulate: bool = False, x=X, y=Y):
    """The grader's own per-sample gradient descent on (x, y) (default the lab's data) in float64,
    optionally without zeroing.

    Returns (k, d, mean loss of each epoch, each sample's loss taken before its update).
    """
    gk = gd = 0.0
    losses = []
    for _ in range(epochs):
        total = 0.0
        for x_i, y_i in zip(x, y):
            r = k * x_i + d - y_i
            total += r * r
            gk, gd = (gk + 2 * r * x_i, gd + 2 * r) if accumulate else (2 * r * x_i, 2 * r)
            k, d = k - lr * gk, d - lr * gd
        losses.append(total / len(x))
    return k, d, np.array(losses)


def grader_line(rng: np.random.Generator):
    """A line y = k x + d the student code never saw: slope 0.5..3 in size (either sign), intercept
    -2..2, 5 to 8 points in [-2, 3] (spread >= 2, values exact in float32), start k0, d0 in [-1, 1].

    With lr 0.02 and 600 epochs the grader's own descent ends within 1e-7 of the line (worst of
    300 seeds: 3.2e-8); the reference solution (float32) within 1.3e-6 of that descent.
    """
    k = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0))
    d = float(rng.uniform(-2.0, 2.0))
    n = int(rng.integers(5, 9))
    x = np.sort(rng.uniform(-2.0, 3.0, n))
    while x.max() - x.min() < 2.0:
        x = np.sort(rng.uniform(-2.0, 3.0, n))
    x = x.astype(np.float32).astype(np.float64)
    y = (k * x + d).astype(np.float32).astype(np.float64)
    k0, d0 = (float(v) for v in rng.uniform(-1.0, 1.0, 2))
    return k, d, [float(v) for v in x], [float(v) for v in y], k0, d0
