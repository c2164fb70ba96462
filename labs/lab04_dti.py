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

Run the whole lab with ``python -m labs.lab04_dti`` (about 10-20 s on one CPU thread; ``--epochs 5`` for a
quick look); the figures go to ``figures/lab04/``.
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

    The rows of ``x`` come ordered by subject and by class, so the split must be random: the last
    20 % of the rows would be one subject's white matter only. Every row goes to exactly one of
    the two sets, with its own label; the same seed gives the same split, another seed another.

    Args:
        x: features, (N, F) float tensor.
        y: labels, (N,) int64 tensor.
        val_fraction: share of the rows in the validation set, 0 < val_fraction < 1;
            the validation set has ``round(val_fraction * N)`` rows.
        seed: seed of the random split.

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
    """Per-feature scaling with statistics of the training set: (x - mean) / std.

    The lab z-scores (mean and standard deviation of each training feature); the lecture divides
    by the training maximum instead (then ``mean`` is 0 and ``std`` holds the maxima). Either is
    fine as long as the statistics come from the training rows only: validation and test data are
    transformed with the *training* statistics, never with their own.

    Attributes:
        mean: (F,) float tensor subtracted from every row (the training mean of each feature).
        std: (F,) float tensor, > 0, that every row is divided by (the training standard
            deviation of each feature; 1 for a constant feature, never 0 and never tiny).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std with the stored ``mean`` and ``std``, for any data (training, validation, test).

        Args:
            x: (N, F) float tensor on any device (not modified).

        Returns:
            (N, F) float tensor; row i depends on row i of x only.
        """
        # TODO: your code here
        raise NotImplementedError("labs/lab04_dti.py: implement Normalizer.transform()")


def fit_normalizer(x_train: torch.Tensor) -> Normalizer:
    """The per-feature statistics of the training set, as a :class:`Normalizer`.

    Args:
        x_train: (N, F) float tensor, the training rows only (not validation, not test; not modified).

    Returns:
        :class:`Normalizer` with ``mean`` and ``std`` of shape (F,); a feature that is constant
        on the training rows gets std 1.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement fit_normalizer()")


# --------------------------------------------------------------------------- Task 4.3: class balance


def class_weights(y: torch.Tensor, n_classes: int = 3) -> torch.Tensor:
    """Inverse-frequency class weights for ``nn.CrossEntropyLoss(weight=...)``.

    w_c proportional to 1 / n_c, n_c the number of samples of class c: every class then
    contributes the same total weight to the loss, so a small class (the CC genu) is not ignored.
    The lab uses w_c = N / (K n_c) (N samples, K classes; scikit-learn's
    ``class_weight="balanced"``); any positive factor gives the same loss, because
    ``CrossEntropyLoss`` divides by the summed weights of the batch.

    Args:
        y: (N,) int64 labels in 0..n_classes-1.
        n_classes: K.

    Returns:
        (K,) float32 tensor; a class with no samples gets weight 0 (never inf or NaN).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement class_weights()")


# --------------------------------------------------------------------------- Task 4.4: the network


def build_dti_mlp(n_features: int = 5, width: int = 100, n_hidden: int = 4, n_classes: int = 3) -> nn.Sequential:
    """The lecture's multilayer perceptron: n_hidden hidden layers of ``width`` units with ReLU.

    Layers n_features -> width -> ... -> width -> n_classes (n_hidden hidden layers), a ReLU
    after every hidden layer and no activation on the output: the outputs are logits
    (``nn.CrossEntropyLoss`` applies the log-softmax itself). With the defaults,
    5-100-100-100-100-3: 31203 parameters.

    Returns:
        ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` modules, in the order the data flows;
        input (N, n_features) float, output (N, n_classes) logits.
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

    One Adam step per mini-batch of ``batch_size`` training rows (the last one may be smaller);
    every epoch visits each training row exactly once, in a new random order. The same model,
    data and ``seed`` give the same trained weights. The validation set is only evaluated, never
    trained on, and the model after the last epoch is kept (no early stopping).

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
        ``val_*``: the mean (weighted) cross-entropy and the accuracy of the model on the whole
        validation set after each epoch. ``train_*``: the same on the training set, either
        after the epoch or as the mean over the epoch's mini-batches (as Keras reports it).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement train()")


# --------------------------------------------------------------------------- Task 4.6: evaluation


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class labels argmax_c logits_c for normalised features ``x``.

    Runs on the device of the model's parameters, whatever the device of ``x``.

    Args:
        model: trained network.
        x: (N, F) float tensor (normalised like the training set).

    Returns:
        (N,) torch.int64 tensor of labels 0..K-1 that index :data:`CLASSES`.
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
        (K, K) np.ndarray of dtype int64, K x K whatever classes occur.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab04_dti.py: implement confusion_matrix()")


# --------------------------------------------------------------------------- figures


def plot_history(history: dict, path: Path, title: str = "DTI tissue classification") -> None:  # keep
    """Loss and accuracy per epoch, training and validation, with the epoch of the lowest validation loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    best = int(np.argmin(history["val_loss"])) + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = {"loss": "class-weighted cross-entropy (nats)", "acc": "accuracy (fraction of voxels)"}
    for ax, key in zip(axes, ("loss", "acc")):
        ax.plot(epochs, history[f"train_{key}"], label="training")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.axvline(best, color="grey", ls="--", lw=1, label=f"lowest validation loss (epoch {best})")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(labels[key])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    gap = history["train_acc"][-1] - history["val_acc"][-1]
    fig.suptitle(f"{title}: training {history['train_acc'][-1]:.3f}, validation {history['val_acc'][-1]:.3f} "
                 f"accuracy after epoch {len(epochs)} (gap {gap:+.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_recall_comparison(recalls: dict[str, np.ndarray], path: Path, title: str) -> None:  # keep
    """Recall per class (bars) for each run in ``recalls`` ({run name: (K,) recalls})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = ["thalamus", "CC genu", "subcort. WM"]
    width = 0.8 / len(recalls)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (name, recall) in enumerate(recalls.items()):
        pos = np.arange(len(short)) + (k - (len(recalls) - 1) / 2) * width
        bars = ax.bar(pos, recall, width, label=f"{name} (balanced accuracy {np.mean(recall):.3f})")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(short)), short)
    ax.set_xlabel("true class")
    ax.set_ylabel("recall (fraction of the class found)")
    ax.set_ylim(0, 1.3)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", fontsize=8)
    ax.set_title(title)
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
    axes[0].set_ylabel("density (1 / unit of the feature)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(CLASSES), frameon=False)
    fig.suptitle("Features per class (training subjects, raw units)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the lecture's experiment: class balance, training, train / validation / test accuracy."""
    import argparse

    from data.dti import SOURCE_REAL, load_dti

    parser = argparse.ArgumentParser(prog="python -m labs.lab04_dti", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs of each training run (default {EPOCHS})")
    args = parser.parse_args(argv)

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
    results, recalls, histories = {}, {}, {}
    for run, w in (("with class weights", weights), ("without class weights", None)):
        torch.manual_seed(0)  # the same initial weights for both runs
        model = build_dti_mlp()
        print(f"\nMLP 5-100-100-100-100-3 {run}: {sum(p.numel() for p in model.parameters())} parameters, "
              f"{args.epochs} epochs on {device}")
        histories[run] = train(model, x_train_n, y_train, x_val_n, y_val, epochs=args.epochs, class_weights=w,
                               device=device, seed=0)
        h = histories[run]
        best = int(np.argmin(h["val_loss"]))
        print(f"  lowest validation loss {h['val_loss'][best]:.4f} at epoch {best + 1}; last epoch: training loss "
              f"{h['train_loss'][-1]:.4f}, validation loss {h['val_loss'][-1]:.4f}")
        for name, x, y in (("train", x_train_n, y_train), ("validation", x_val_n, y_val),
                           ("test", x_test_n, data.y_test)):
            cm = confusion_matrix(y, predict(model, x), len(CLASSES))
            recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
            print(f"  {name:>10} accuracy {np.trace(cm) / cm.sum():.3f}, balanced accuracy {recall.mean():.3f}, "
                  "recall " + ", ".join(f"{r:.3f}" for r in recall))
            results[run, name] = cm
        recalls[run] = np.diag(results[run, "test"]) / np.maximum(results[run, "test"].sum(axis=1), 1)
    cm = results["with class weights", "test"]
    print("\nconfusion matrix, test subject, with class weights (rows true, columns predicted):")
    print(cm)

    # The lecture's CSV files hold subject 100206; without them the test subject is simulated.
    test_name = "Test subject 100206" if data.source.startswith(SOURCE_REAL) else "Simulated test subject"
    FIGURES.mkdir(parents=True, exist_ok=True)
    plot_history(histories["with class weights"], FIGURES / "accuracy_curves.png",
                 "MLP with class weights")
    rates = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    plot_confusion(cm, FIGURES / "confusion_matrix_test.png",
                   f"{test_name}\naccuracy {np.trace(cm) / cm.sum():.3f}, balanced {rates.mean():.3f}")
    plot_recall_comparison(recalls, FIGURES / "class_weights_recall.png",
                           f"{test_name}: recall per class, same seed and initial weights")
    plot_feature_histograms(data.x_trainval, data.y_trainval, FIGURES / "feature_histograms.png")
    print(f"figures written to {FIGURES}/ (accuracy_curves.png, confusion_matrix_test.png, "
          "class_weights_recall.png, feature_histograms.png)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
