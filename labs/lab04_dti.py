"""Lab 4: brain-tissue classification from DTI features with a multilayer perceptron.

Source: F. Knoll, "How to jump-start your deep learning research", ISMRM 2018 educational
lecture: classify voxels into thalamus, genu of the corpus callosum and subcortical white matter
from x = [T1w, FA, MD, AD, RD]. Train on 3 subjects (80 % training / 20 % validation, drawn at
random), test on a 4th subject that is never used in training; normalise the features with
training statistics; check the class balance; MLP 5-100-100-100-100-3 with ReLU (31203
parameters), Adam (lr 0.001), batch 1024, cross-entropy loss.

Data: :func:`data.dti.load_dti` returns raw features (MD, AD, RD in um^2/ms, FA unitless, T1w in
scanner units) and labels 0..2 that index :data:`CLASSES` (the CSV files store 1..3). Without the
lecture's CSV files in ``data/dti/`` it uses a simulated data set (dipy tensor fit, see
``data/dti.py``).

Run the whole lab with ``python -m labs.lab04_dti`` (figures go to ``figures/lab04/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

FEATURES = ("T1w", "FA", "MD", "AD", "RD")
CLASSES = ("thalamus", "genu of the corpus callosum", "subcortical white matter")
EPOCHS = 30  # training budget of main(); the curves flatten after about 10 epochs (the grader trains 15)
FIGURES = Path("figures") / "lab04"


# --------------------------------------------------------------------------- Task 4.1: split


def split_train_val(
    x: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random split of the training subjects' voxels into a training and a validation set.

    The rows of ``x`` come ordered by subject and by class, so the split must be random (a random
    permutation drawn with ``torch.Generator().manual_seed(seed)``): the last 20 % of the rows
    would be one subject's white matter only. Every row goes to exactly one of the two sets, with
    its own label.

    Args:
        x: features, (N, F) float tensor.
        y: labels, (N,) int64 tensor.
        val_fraction: share of the rows in the validation set, 0 < val_fraction < 1;
            the validation set has ``round(val_fraction * N)`` rows.
        seed: seed of the permutation.

    Returns:
        (x_train, y_train, x_val, y_val), disjoint, together exactly the rows of (x, y).

    Raises:
        ValueError: x and y differ in length, or val_fraction is not in (0, 1).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement split_train_val()")


# --------------------------------------------------------------------------- Task 4.2: normalisation


@dataclass
class Normalizer:
    """Per-feature z-scoring with statistics of the training set: (x - mean) / std.

    The lecture divides each feature by its training maximum; we z-score instead (T1w is ~900
    and FA ~0.3, and both end up with mean 0 and standard deviation 1). Either is fine as long as
    the statistics come from the training set only: validation and test data are transformed with
    the *training* mean and standard deviation, never with their own (that would leak information
    about the test subject into the model's input, and make a voxel's features depend on the
    other voxels it is normalised with).

    Attributes:
        mean: (F,) float tensor, the training mean of each feature.
        std: (F,) float tensor, the training standard deviation of each feature; a constant
            feature gets std 1 (not 0), so it is only centred, never divided by zero.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std, row by row with the stored training statistics.

        Args:
            x: (N, F) float tensor on any device (not modified).

        Returns:
            (N, F) float tensor on x's device; row i depends on row i of x only.
        """
        # TODO: your code here
        raise NotImplementedError("labs/lab04_dti.py: implement Normalizer.transform()")


def fit_normalizer(x_train: torch.Tensor) -> Normalizer:
    """The per-feature mean and standard deviation of the training set.

    Args:
        x_train: (N, F) float tensor, the training rows only (not validation, not test).

    Returns:
        :class:`Normalizer` with mean and std of shape (F,); a std of 0 (constant feature) is
        replaced by 1.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement fit_normalizer()")


# --------------------------------------------------------------------------- Task 4.3: class balance


def class_weights(y: torch.Tensor, n_classes: int = 3) -> torch.Tensor:
    """Inverse-frequency class weights for ``nn.CrossEntropyLoss(weight=...)``.

    w_c = N / (K n_c), with n_c the number of samples of class c, N the number of samples and K
    the number of classes (scikit-learn's ``class_weight="balanced"``): every class then
    contributes the same total weight to the loss, so a small class (the CC genu) is not
    ignored. A class with no samples gets weight 0 (it has no term in the loss anyway), never
    inf.

    Args:
        y: (N,) int64 labels in 0..n_classes-1.
        n_classes: K.

    Returns:
        (K,) float32 tensor on y's device.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement class_weights()")


# --------------------------------------------------------------------------- Task 4.4: the network


def build_dti_mlp(n_features: int = 5, width: int = 100, n_hidden: int = 4, n_classes: int = 3) -> nn.Sequential:
    """The lecture's multilayer perceptron: n_hidden hidden layers of ``width`` units with ReLU.

    Linear(n_features, width), ReLU, then (n_hidden - 1) x [Linear(width, width), ReLU], then
    Linear(width, n_classes) with no activation: the outputs are logits
    (``nn.CrossEntropyLoss`` applies the softmax). With the defaults, 5-100-100-100-100-3:
    600 + 3 x 10100 + 303 = 31203 parameters.

    Returns:
        ``nn.Sequential`` of Linear and ReLU modules, PyTorch's default initialisation.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement build_dti_mlp()")


# --------------------------------------------------------------------------- Task 4.5: training


def train(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 1024,
    class_weights: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``model`` with Adam and the (class-weighted) cross-entropy loss, in place.

    Each epoch visits the training rows in a new random order (``torch.Generator`` seeded with
    ``seed``) in mini-batches of ``batch_size`` (the last one may be smaller): zero the
    gradients, loss, ``backward()``, ``step()``. Per epoch it records the training loss and
    accuracy as the averages over the epoch's mini-batches (weighted by batch size, as Keras
    reports them) and, after the epoch, the loss and accuracy on the whole validation set
    (``model.eval()``, ``torch.no_grad()``). The validation set is only evaluated, never trained on, and the model
    after the last epoch is kept (no early stopping).

    Args:
        model: the network (moved to ``device``; trained in place).
        x_train, y_train: normalised training features (N, F) float and labels (N,) int64.
        x_val, y_val: normalised validation features and labels.
        epochs: passes over the training set.
        lr: Adam's learning rate.
        batch_size: rows per mini-batch.
        class_weights: (K,) weights of ``nn.CrossEntropyLoss(weight=...)``, e.g. from
            :func:`class_weights`; None: unweighted. Used for the training and validation loss.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``: the model and every tensor go there.
        seed: seed of the mini-batch order (the initial weights are those ``model`` holds).

    Returns:
        {"train_loss", "train_acc", "val_loss", "val_acc"}: lists of ``epochs`` Python floats.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement train()")


# --------------------------------------------------------------------------- Task 4.6: evaluation


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class labels argmax_c logits_c for normalised features ``x``.

    Runs on the device of the model's parameters (``model.eval()``, ``torch.no_grad()``).

    Args:
        model: trained network.
        x: (N, F) float tensor (normalised like the training set).

    Returns:
        (N,) int64 tensor on the CPU, labels 0..K-1 that index :data:`CLASSES`.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement predict()")


def confusion_matrix(y_true, y_pred, n_classes: int = 3) -> np.ndarray:
    """Counts C[i, j] of samples of true class i predicted as class j (like scikit-learn).

    Rows are true classes, columns predicted classes; the diagonal holds the correct
    predictions, so accuracy = trace(C) / sum(C) and the recall of class i is C[i, i] / sum_j C[i, j].

    Args:
        y_true, y_pred: (N,) labels in 0..n_classes-1 (tensors or arrays).
        n_classes: K.

    Returns:
        (K, K) np.ndarray of int64.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement confusion_matrix()")


# --------------------------------------------------------------------------- figures


def plot_history(history: dict, path: Path) -> None:  # keep
    """Loss and accuracy curves per epoch, training and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "acc")):
        ax.plot(epochs, history[f"train_{key}"], label="training")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel({"loss": "cross-entropy loss", "acc": "accuracy"}[key])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("DTI tissue classification: training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, path: Path, title: str) -> None:  # keep
    """The confusion matrix as an image with the counts and row-normalised rates in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    short = ["thalamus", "CC genu", "subcort. WM"]
    ax.set_xticks(range(len(short)), short)
    ax.set_yticks(range(len(short)), short)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{rates[i, j]:.1%}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_feature_histograms(x: torch.Tensor, y: torch.Tensor, path: Path) -> None:  # keep
    """One histogram per feature (raw units), one colour per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = {"T1w": "T1w (a.u.)", "FA": "FA", "MD": "MD (\u00b5m\u00b2/ms)", "AD": "AD (\u00b5m\u00b2/ms)",
             "RD": "RD (\u00b5m\u00b2/ms)"}
    x, y = np.asarray(x), np.asarray(y)
    fig, axes = plt.subplots(1, len(FEATURES), figsize=(18, 3.6))
    for f, (ax, name) in enumerate(zip(axes, FEATURES)):
        bins = np.linspace(np.percentile(x[:, f], 0.5), np.percentile(x[:, f], 99.5), 50)
        for c, label in enumerate(CLASSES):
            ax.hist(x[y == c, f], bins=bins, alpha=0.5, density=True, label=label)
        ax.set_xlabel(units[name])
    axes[0].set_ylabel("density")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(CLASSES), frameon=False)
    fig.suptitle("Features per class (training subjects, raw units)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Run the lecture's experiment: class balance, training, train / validation / test accuracy."""
    from data.dti import load_dti

    torch.manual_seed(0)
    data = load_dti("auto")
    print(f"data: {data.source}")
    print(f"training subjects: {data.x_trainval.shape[0]} voxels, test subject: {data.x_test.shape[0]} voxels")
    for name, y in (("training subjects", data.y_trainval), ("test subject", data.y_test)):
        counts = torch.bincount(y, minlength=len(CLASSES)).tolist()
        balance = ", ".join(f"{c} {n} ({n / sum(counts):.1%})" for c, n in zip(CLASSES, counts))
        print(f"class balance, {name}: {balance}")

    x_train, y_train, x_val, y_val = split_train_val(data.x_trainval, data.y_trainval, 0.2, seed=0)
    normalizer = fit_normalizer(x_train)
    x_train_n, x_val_n, x_test_n = (normalizer.transform(x) for x in (x_train, x_val, data.x_test))
    weights = class_weights(y_train, len(CLASSES))
    print("class weights (inverse frequency):", np.round(weights.tolist(), 3).tolist())

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_dti_mlp()
    print(f"MLP 5-100-100-100-100-3: {sum(p.numel() for p in model.parameters())} parameters; training on {device}")
    history = train(model, x_train_n, y_train, x_val_n, y_val, epochs=EPOCHS, class_weights=weights,
                    device=device, seed=0)

    results = {}
    for name, x, y in (("train", x_train_n, y_train), ("validation", x_val_n, y_val), ("test", x_test_n, data.y_test)):
        cm = confusion_matrix(y, predict(model, x), len(CLASSES))
        accuracy = np.trace(cm) / cm.sum()
        balanced = np.mean(np.diag(cm) / np.maximum(cm.sum(axis=1), 1))
        results[name] = cm
        print(f"{name:>10} accuracy {accuracy:.3f}, balanced accuracy {balanced:.3f}")
    print("confusion matrix, test subject (rows true, columns predicted):")
    print(results["test"])

    FIGURES.mkdir(parents=True, exist_ok=True)
    plot_history(history, FIGURES / "accuracy_curves.png")
    plot_confusion(results["test"], FIGURES / "confusion_matrix_test.png", "Test subject 100206")
    plot_feature_histograms(data.x_trainval, data.y_trainval, FIGURES / "feature_histograms.png")
    print(f"figures written to {FIGURES}/")


if __name__ == "__main__":
    main()
