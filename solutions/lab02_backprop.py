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

Run the whole lab with ``python -m labs.lab02_backprop`` (figures go to ``figures/lab02/``);
then answer the lab 2 questions in ``labs/QUESTIONS.md``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURES = Path("figures") / "lab02"

Params = list[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- Task 2.1: activation


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^-z), elementwise; float64 array of the shape of ``z``."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """sigma'(z) = sigma(z) (1 - sigma(z)), elementwise; float64 array of the shape of ``z``."""
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
        x: batch of inputs, float64 (N, n_0), one sample per row.

    Returns:
        (zs, activations): zs = [z^1, ..., z^L], each float64 (N, n_l); activations = [a^0 = x,
        a^1, ..., a^L], each float64 (N, n_l).

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
    """C0 = 1/(2N) sum_x ||y_x - a^L_x||^2 for a batch of N rows (a^L, y: (N, n_L)); a Python float."""
    a_L, y = np.asarray(a_L, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(0.5 * np.sum((y - a_L) ** 2) / a_L.shape[0])


# --------------------------------------------------------------------------- Task 2.3: backward


def backward(params: Params, x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gradients of the mean quadratic cost C0 of the batch with respect to every W^l and b^l.

    By backpropagation, equations BP1-BP4 of Nielsen ch. 2 (see the module docstring), for a
    whole batch at once; no autograd. ``params``, ``x`` and ``y`` are not modified.

    Args:
        params: [(W^l, b^l)].
        x: inputs, float64 (N, n_0).
        y: targets, float64 (N, n_L).

    Returns:
        [(dC/dW^1, dC/db^1), ..., (dC/dW^L, dC/db^L)], float64 with the shapes of W^l and b^l.
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
    """One gradient-descent step W^l <- W^l - lr dC/dW^l, b^l <- b^l - lr dC/db^l for every layer.

    Args:
        params: [(W^l, b^l)]; grads: [(dC/dW^l, dC/db^l)] of the same shapes; lr: learning rate.

    Returns:
        The new parameters [(W^l, b^l)] as new arrays; ``params`` and ``grads`` are not modified
        (the caller may still need the old values).
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
    """Mini-batch stochastic gradient descent on C0 (Nielsen ch. 1, "stochastic gradient descent").

    Every epoch visits each of the N samples exactly once, in a new random order, in mini-batches
    of ``batch_size`` samples (only the last one may be smaller), with one gradient-descent step
    on C0 of the mini-batch per mini-batch. The orders come from a random generator seeded by
    ``seed``: the same seed gives the same result, and the global random state is not used.

    Args:
        params: initial [(W^l, b^l)] (not modified).
        x: inputs, float64 (N, n_0); y: targets, float64 (N, n_L) (not modified).
        lr: learning rate; epochs: passes over the data; batch_size: samples per step.
        seed: seed of the shuffling.

    Returns:
        (params, cost_history): the trained parameters (new arrays) and C0 on the whole (x, y)
        after each epoch, np.ndarray float64 (epochs,).
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
    """||dC0/db^l||_2 for l = 1 ... L at (params, x, y), input side first: np.ndarray float64 (L,).

    Nielsen ch. 5 uses these norms to measure how fast each layer learns (the vanishing gradient
    problem).
    """
    return np.array([np.linalg.norm(db) for _, db in backward(params, x, y)])


# --------------------------------------------------------------------------- figures (given)


def plot_decision_boundary(params: Params, x: np.ndarray, labels: np.ndarray, cost_history: np.ndarray,  # keep
                           path: str | Path) -> Path:
    """Two panels: C0 per epoch (log scale), and a^L over the plane with the 0.5 contour and the data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_c, ax_b) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1, 1.3]})
    ax_c.semilogy(np.arange(1, len(cost_history) + 1), cost_history)
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("quadratic cost C0 on all samples")
    ax_c.set_title("training cost")
    ax_c.grid(alpha=0.3, which="both")
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    a_L = forward(params, np.column_stack([g1.ravel(), g2.ravel()]))[1][-1][:, 0].reshape(g1.shape)
    im = ax_b.contourf(g1, g2, a_L, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax_b.contour(g1, g2, a_L, levels=[0.5], colors="k", linewidths=1.5)
    for c, marker in ((0, "o"), (1, "^")):
        ax_b.scatter(*x[labels == c].T, s=12, marker=marker, edgecolors="k", linewidths=0.3,
                     color="tab:blue" if c == 0 else "tab:red", label=f"class {c}")
    acc = np.mean((forward(params, x)[1][-1][:, 0] > 0.5) == labels)
    fig.colorbar(im, ax=ax_b, label="network output a^L (class 1 if > 0.5)")
    ax_b.set_xlabel("x_1 (arbitrary units)")
    ax_b.set_ylabel("x_2 (arbitrary units)")
    ax_b.set_title(f"decision boundary a^L = 0.5 (black), training accuracy {acc:.3f}")
    ax_b.legend(fontsize="small", loc="upper right")
    fig.suptitle("Lab 2: a 2-16-1 sigmoid network on two moons")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_gradient_norms(norms: dict[str, np.ndarray], path: str | Path) -> Path:  # keep
    """||dC/db^l|| per layer on a log scale, one line per network ({label: norms}), aligned at the
    output layer (x = l - L); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, values in norms.items():
        values = np.asarray(values, dtype=np.float64)
        ax.semilogy(np.arange(1, len(values) + 1) - len(values), values, marker="o", label=label)
    n_layers = max(len(v) for v in norms.values())
    ax.set_xticks(np.arange(1 - n_layers, 1))
    ax.set_xlabel("l - L: layers below the output layer (0 = output, 1 - L = first hidden layer)")
    ax.set_ylabel("||dC0/db^l||_2 (log scale)")
    ax.set_title("Lab 2: bias gradients per layer at initialisation")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    """Run the lab: gradient check against finite differences, training, vanishing gradients, figures."""
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
    written = [plot_decision_boundary(params, xm, ym, history, FIGURES / "two_moons.png")]

    xs, ys = rng.random((100, 784)), np.eye(10)[rng.integers(0, 10, 100)]
    print("||dC/db^l|| at initialisation, 100 random inputs (l = 1 ... L; ratio = ||dC/db^1|| / ||dC/db^L||):")
    curves = {}
    for sizes in ([784, 30, 10], [784, 30, 30, 30, 10], [784, 30, 30, 30, 30, 10]):
        name = "-".join(str(n) for n in sizes)
        norms = bias_gradient_norms(init_params(sizes, seed=0), xs, ys)
        curves[f"{name} sigmoid net"] = norms
        print(f"  {name:<24}" + " ".join(f"{v:.2e}" for v in norms) + f"   ratio {norms[0] / norms[-1]:.2e}"
              + f", {(norms[-1] / norms[0]) ** (1 / (len(norms) - 1)):.1f}x smaller per layer")
    written.append(plot_gradient_norms(curves, FIGURES / "gradient_norms.png"))
    print("figures: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
