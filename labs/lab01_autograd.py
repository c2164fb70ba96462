"""Lab 1: automatic differentiation and linear regression with PyTorch.

Source: F. Knoll, "How to jump-start your deep learning research", ISMRM 2018 educational
lecture: the computational graph e = (a + b)(b + 1) and gradient descent for f(x) = kx + d on
x = [1, 2, 3, 4, 5], y = [3, 5, 7, 9, 11] (the line y = 2x + 1).

Run the whole lab with ``python -m labs.lab01_autograd`` (figures go to ``figures/lab01/``);
then answer the lab 1 questions in ``labs/QUESTIONS.md``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

X_DATA = (1.0, 2.0, 3.0, 4.0, 5.0)
Y_DATA = (3.0, 5.0, 7.0, 9.0, 11.0)
FIGURES = Path("figures") / "lab01"


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
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement graph_forward()")


def graph_backward(a: float, b: float) -> tuple[float, float]:
    """de/da and de/db of e = (a + b)(b + 1), derived by hand with the chain rule over the
    nodes c and d of :func:`graph_forward` (no autograd, no torch in this function).

    Args:
        a, b: the two inputs (Python floats).

    Returns:
        (de_da, de_db) as Python floats, exact for every real a, b.

    Source: Knoll, ISMRM 2018, "computational graph" slide; Olah 2015, "Factoring paths".
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement graph_backward()")


def graph_autograd(a: float, b: float) -> tuple[float, float]:
    """The same derivatives as :func:`graph_backward`, computed by torch autograd.

    Args:
        a, b: the two inputs (Python floats).

    Returns:
        (de_da, de_db) as Python floats, to float64 precision (relative error ~1e-16).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement graph_autograd()")


# --------------------------------------------------------------------------- Task 1.2: regression


def linear_model(x: torch.Tensor, k: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The model f(x) = k x + d, elementwise.

    Args:
        x: inputs, any shape, float tensor.
        k, d: slope and intercept, 0-d tensors (usually with ``requires_grad=True``).

    Returns:
        f(x), same shape as ``x``.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement linear_model()")


def squared_error(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error sum (y_pred - y)^2 over all elements (for one sample: just the square).

    Args:
        y_pred, y: tensors of the same shape.

    Returns:
        0-d tensor (differentiable with respect to ``y_pred``).

    Raises:
        ValueError: the shapes differ (broadcasting would silently compute the wrong loss).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement squared_error()")


def fit_linear_regression(
    x,
    y,
    lr: float = 0.005,
    epochs: int = 1000,
    k0: float = 0.1,
    d0: float = -0.1,
    device: str | torch.device = "cpu",
) -> tuple[float, float, np.ndarray]:
    """Fit f(x) = kx + d by per-sample gradient descent, with the gradients from autograd.

    Each epoch visits the samples in their given order; each sample (x_i, y_i) gives the loss
    L_i = (f(x_i) - y_i)^2 and one update k <- k - lr dL_i/dk, d <- d - lr dL_i/dd (the gradient
    of this sample's loss only), before the next sample is used.

    Args:
        x, y: 1-D sequences or tensors of the same length N (floats).
        lr: learning rate.
        epochs: passes over the data.
        k0, d0: initial slope and intercept.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``: every tensor is created there.

    Returns:
        (k, d, losses): the fitted slope and intercept as Python floats, and per epoch the mean
        over its N samples of L_i taken before that sample's update, np.ndarray float64 of
        shape (epochs,).

    Raises:
        ValueError: x and y differ in length or are empty.

    Source: Knoll, ISMRM 2018, "linear regression with autograd" slides.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab01_autograd.py: implement fit_linear_regression()")


# --------------------------------------------------------------------------- Task 1.3: figures (given)


def plot_loss_curves(curves: dict[str, np.ndarray], path: str | Path) -> Path:  # keep
    """Mean loss per epoch on log-log axes, one curve per run ({label: losses}); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, losses in curves.items():
        losses = np.asarray(losses, dtype=np.float64)
        ax.loglog(np.arange(1, len(losses) + 1), losses, label=label)
    ax.set_ylim(1e-14, 1e6)  # a diverging run leaves the plot at the top
    ax.set_xlabel("epoch (one pass over the 5 samples, log scale)")
    ax.set_ylabel("mean squared error per sample (y units$^2$)")
    ax.set_title("Lab 1: per-sample gradient descent on f(x) = kx + d")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fit(x, y, k: float, d: float, k0: float, d0: float, path: str | Path) -> Path:  # keep
    """The data, the initial line k0 x + d0 and the fitted line k x + d; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x, dtype=np.float64)
    grid = np.linspace(x.min() - 0.5, x.max() + 0.5, 50)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(x, np.asarray(y, dtype=np.float64), "o", color="k", label="data (x_i, y_i)")
    ax.plot(grid, k0 * grid + d0, "--", color="tab:gray", label=f"start: f(x) = {k0:.2f} x {d0:+.2f}")
    ax.plot(grid, k * grid + d, color="tab:red", label=f"fit: f(x) = {k:.4f} x {d:+.4f}")
    ax.set_xlabel("x (arbitrary units)")
    ax.set_ylabel("y (arbitrary units)")
    ax.set_title("Lab 1: fitted line over the data (truth: y = 2x + 1)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    """Run the lab: the graph's derivatives, the regression fit at four learning rates, figures."""
    a, b = 2.0, 1.0
    print(f"graph at a={a}, b={b}: (c, d, e) = {graph_forward(a, b)}")
    print(f"  by hand:  de/da, de/db = {graph_backward(a, b)}")
    print(f"  autograd: de/da, de/db = {graph_autograd(a, b)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    k0, d0 = 0.1, -0.1
    curves, fits = {}, {}
    for lr in (0.001, 0.005, 0.05):
        k, d, losses = fit_linear_regression(X_DATA, Y_DATA, lr=lr, k0=k0, d0=d0, device=device)
        curves[f"lr = {lr}"], fits[lr] = losses, (k, d)
        print(f"lr {lr:<6}: k = {k:.4f}, d = {d:.4f} (truth 2, 1); mean loss in epochs 1, 10, 100, 1000: "
              + ", ".join(f"{losses[e - 1]:.2e}" for e in (1, 10, 100, 1000)))
    k, d, losses = fit_linear_regression(X_DATA, Y_DATA, lr=0.15, epochs=20, k0=k0, d0=d0, device=device)
    curves["lr = 0.15 (20 epochs)"] = losses
    print(f"lr 0.15  : mean loss in epochs 1, 5, 10, 20: "
          + ", ".join(f"{losses[e - 1]:.2e}" for e in (1, 5, 10, 20)))
    written = [
        plot_loss_curves(curves, FIGURES / "loss_curves.png"),
        plot_fit(X_DATA, Y_DATA, *fits[0.005], k0, d0, FIGURES / "fit.png"),
    ]
    print("figures: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
