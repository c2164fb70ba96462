"""Lab 1: automatic differentiation and linear regression with PyTorch.

Source: F. Knoll, "How to jump-start your deep learning research", ISMRM 2018 educational
lecture: the computational graph e = (a + b)(b + 1) and gradient descent for f(x) = kx + d on
x = [1, 2, 3, 4, 5], y = [3, 5, 7, 9, 11] (the line y = 2x + 1).

Run the whole lab with ``python -m labs.lab01_autograd``.
"""

from __future__ import annotations

import numpy as np
import torch

X_DATA = (1.0, 2.0, 3.0, 4.0, 5.0)
Y_DATA = (3.0, 5.0, 7.0, 9.0, 11.0)


# --------------------------------------------------------------------------- Task 1.1: the graph


def graph_forward(a: float, b: float) -> tuple[float, float, float]:
    """Forward pass of the computational graph c = a + b, d = b + 1, e = c * d.

    Args:
        a, b: the two inputs (Python floats).

    Returns:
        (c, d, e) as Python floats.

    Source: Knoll, ISMRM 2018, "computational graph" slide (after C. Olah, "Calculus on
    computational graphs: backpropagation", 2015).
    """
    c = a + b
    d = b + 1.0
    e = c * d
    return float(c), float(d), float(e)


def graph_backward(a: float, b: float) -> tuple[float, float]:
    """Derivatives of e = (a + b)(b + 1), derived by hand with the chain rule (no autograd).

    Go through the intermediate nodes: de/da = de/dc dc/da, and b reaches e along two paths
    (through c and through d), whose contributions add up.

    Args:
        a, b: the two inputs (Python floats).

    Returns:
        (de_da, de_db) as Python floats.
    """
    c, d, _ = graph_forward(a, b)
    de_da = d * 1.0
    de_db = d * 1.0 + c * 1.0
    return float(de_da), float(de_db)


def graph_autograd(a: float, b: float) -> tuple[float, float]:
    """The same derivatives as :func:`graph_backward`, computed by torch autograd.

    Args:
        a, b: the two inputs (Python floats).

    Returns:
        (de_da, de_db) as Python floats, from ``e.backward()`` on float64 leaf tensors.
    """
    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    e = (a_t + b_t) * (b_t + 1.0)
    e.backward()
    return float(a_t.grad), float(b_t.grad)


# --------------------------------------------------------------------------- Task 1.2: regression


def linear_model(x: torch.Tensor, k: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The model f(x) = k x + d.

    Args:
        x: inputs, any shape, float tensor.
        k, d: slope and intercept, 0-d tensors (usually with ``requires_grad=True``).

    Returns:
        f(x), same shape as ``x``.
    """
    return k * x + d


def squared_error(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error (y_pred - y)^2, summed over all elements (one sample: just the square).

    Args:
        y_pred, y: tensors of the same shape.

    Returns:
        0-d tensor.

    Raises:
        ValueError: the shapes differ (broadcasting would silently compute the wrong loss).
    """
    if y_pred.shape != y.shape:
        raise ValueError(f"squared_error: y_pred has shape {tuple(y_pred.shape)} but y has {tuple(y.shape)}")
    return ((y_pred - y) ** 2).sum()


def fit_linear_regression(
    x,
    y,
    lr: float = 0.005,
    epochs: int = 1000,
    k0: float = 0.1,
    d0: float = -0.1,
    device: str | torch.device = "cpu",
) -> tuple[float, float, np.ndarray]:
    """Fit f(x) = kx + d by per-sample gradient descent, with gradients from autograd.

    For each epoch and each sample (x_i, y_i) in order: loss = (f(x_i) - y_i)^2, ``backward()``,
    then the manual update k <- k - lr dL/dk, d <- d - lr dL/dd under ``torch.no_grad()``, and the
    gradients are zeroed after each update (otherwise they accumulate across samples).

    Args:
        x, y: 1-D sequences or tensors of the same length N (floats).
        lr: learning rate.
        epochs: passes over the data.
        k0, d0: initial slope and intercept.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``: every tensor is created there.

    Returns:
        (k, d, losses): the fitted slope and intercept as Python floats, and the mean loss over
        the samples of each epoch, np.ndarray float64 of shape (epochs,).

    Raises:
        ValueError: x and y differ in length or are empty.

    Source: Knoll, ISMRM 2018, "linear regression with autograd" slides.
    """
    x_t = torch.as_tensor(x, dtype=torch.float32).to(device).flatten()
    y_t = torch.as_tensor(y, dtype=torch.float32).to(device).flatten()
    if x_t.numel() == 0 or x_t.numel() != y_t.numel():
        raise ValueError(f"x and y must be non-empty and of equal length, got {x_t.numel()} and {y_t.numel()}")
    k = torch.tensor(k0, dtype=torch.float32, device=x_t.device, requires_grad=True)
    d = torch.tensor(d0, dtype=torch.float32, device=x_t.device, requires_grad=True)
    losses = np.zeros(epochs, dtype=np.float64)
    for epoch in range(epochs):
        total = 0.0
        for x_i, y_i in zip(x_t, y_t):
            loss = squared_error(linear_model(x_i, k, d), y_i)
            loss.backward()
            with torch.no_grad():
                k -= lr * k.grad
                d -= lr * d.grad
            k.grad.zero_()
            d.grad.zero_()
            total += loss.item()
        losses[epoch] = total / x_t.numel()
    return float(k.item()), float(d.item()), losses


def main() -> None:
    """Run the lab: the graph's derivatives, then the regression fit (prints the results)."""
    a, b = 2.0, 1.0
    print(f"graph at a={a}, b={b}: (c, d, e) = {graph_forward(a, b)}")
    print(f"  by hand:  de/da, de/db = {graph_backward(a, b)}")
    print(f"  autograd: de/da, de/db = {graph_autograd(a, b)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    k, d, losses = fit_linear_regression(X_DATA, Y_DATA, device=device)
    print(f"fit on {device}: k = {k:.4f}, d = {d:.4f} (truth 2, 1), final loss {losses[-1]:.2e}")


if __name__ == "__main__":
    main()
