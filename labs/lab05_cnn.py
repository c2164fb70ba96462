"""Lab 5: a CNN that tells fully sampled MR images from 4x accelerated PI-CS reconstructions.

Source: F. Knoll, "How to jump-start your deep learning research", ISMRM 2018 educational
lecture, part "Classification of image quality of accelerated reconstructions": 320x320 brain
images, 260 fully sampled references (label 0) and 260 PI-CS (TGV) reconstructions from R = 4
undersampled k-space (label 1), 2/3 for training and 1/3 for validation. Three models show
over- and underfitting:

* ``fc``:   4 x [3x3 conv, 4 filters, ReLU, 2x2 max-pool], flatten, dense 16 + ReLU,
  dense 1 + sigmoid: 26117 parameters at 320x320 (the dense layers hold 25633 of them);
* ``gap1``: one 3x3 conv with 4 filters + ReLU, global average pooling, dense 1 + sigmoid:
  45 parameters;
* ``gap4``: the four conv blocks of ``fc``, global average pooling, dense 1 + sigmoid:
  489 parameters.

All three are trained with Adam on the binary cross-entropy, batch size 10. Global average
pooling (M. Lin, Q. Chen, S. Yan, "Network in network", ICLR 2014) replaces the large dense
layer by the mean of each feature map, so the parameter count no longer grows with the image.

The images: simulated from the MNI152 template (``data.recon``): the reference combines 8
fully sampled coils with their sensitivities, the accelerated image is a TGV-regularised
parallel-imaging compressed-sensing reconstruction (F. Knoll, K. Bredies, T. Pock,
R. Stollberger, MRM 65:480-491, 2011) from 1/4 of the phase-encode lines, with the same
sensitivities.

Over- and underfitting, honestly. On these images one global number (the background noise
that TGV removes, the blur along phase-encode that R = 4 leaves) separates the classes, so ``fc``
generalises on the true labels as well as ``gap4``: there is nothing to memorise that the true
feature does not already give. Overfitting is shown as capacity to memorise instead (Zhang et
al., ICLR 2017): trained on randomly permuted labels (:func:`randomize_labels`), ``fc`` reaches
training accuracy near 1 at chance validation accuracy, its validation loss exploding, while
``gap4`` cannot memorise them.

``python -m labs.lab05_cnn`` shows the three lessons (``gap1`` underfits, ``gap4`` generalises,
``fc`` memorises random labels and ``gap4`` cannot): 260 simulated pairs at 96x96 (made once,
under a minute, then cached), 120 epochs of each of five runs: about 5 minutes on one CPU thread
(4 with the set cached; bench/results/lab05_calibration.md, "Session 4").
``--full`` is the lecture's run (the 520-image set at 320x320, 30 epochs, the three models on their
true labels): about 13 min on one CPU thread (about 25 s per epoch of the three models), less on a
GPU; it needs the set made once by ``python -m data prepare recon`` (about 8 min with 2 processes).
``--quick`` tries the code out in seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

VARIANTS = ("fc", "gap1", "gap4")
#: Trainable parameters of each variant at 320x320 (lecture slides).
LECTURE_PARAMETERS = {"fc": 26117, "gap1": 45, "gap4": 489}
N_FILTERS = 4  # filters of every conv layer
N_HIDDEN = 16  # units of the hidden dense layer of "fc"
FIGURES = Path("figures/lab05")


# --------------------------------------------------------------------------- Task 5.1: the models


def global_average_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling: the mean of every feature map over its spatial positions.

    out[n, c] = 1 / (H W) sum_{i, j} x[n, c, i, j]   (Lin et al. 2014, "Network in network").

    Args:
        x: (N, C, H, W) float tensor (not modified).

    Returns:
        (N, C) tensor of the same dtype as ``x``.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement global_average_pool()")


class QualityCNN(nn.Module):
    """The lecture's image-quality classifiers: ``fc``, ``gap1`` or ``gap4`` (see the module docstring).

    Layers, in this order (every conv: 3x3 kernel, 4 filters, stride 1, padding 1 = "same", with bias;
    every max-pool: 2x2, stride 2; ReLU after every conv and after the hidden dense layer):

    * ``fc``:   [conv(1->4), ReLU, pool], 3 x [conv(4->4), ReLU, pool], flatten,
      dense(4 (H/16)(W/16) -> 16), ReLU, dense(16 -> 1), sigmoid;
    * ``gap1``: conv(1->4), ReLU, global average pool, dense(4 -> 1), sigmoid;
    * ``gap4``: the four conv blocks of ``fc``, global average pool, dense(4 -> 1), sigmoid.

    H/16 is the size after four pools, rounded down at every pool: 320 -> 20, 64 -> 4. The conv
    and dense layers are ``nn.Conv2d`` and ``nn.Linear`` modules, created in the order the data
    flows, so that ``model.parameters()`` lists them in that order (pooling and ReLU may be
    modules or functions).

    The initialisation is not graded (the grader loads its own weights where it matters). The
    lab uses He-normal weights and zero biases (He et al., ICCV 2015), made for ReLU networks.

    Args:
        variant: "fc", "gap1" or "gap4".
        image_size: H = W of the input images (the dense layer of "fc" depends on it).
    """

    def __init__(self, variant: str = "fc", image_size: int = 320):
        # TODO: your code here
        raise NotImplementedError("labs/lab05_cnn.py: implement QualityCNN.__init__()")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability that each image is the accelerated reconstruction.

        Args:
            x: (N, 1, H, W) float32 images.

        Returns:
            (N, 1) probabilities sigmoid(z) in (0, 1), z the output of the last dense layer.
        """
        # TODO: your code here
        raise NotImplementedError("labs/lab05_cnn.py: implement QualityCNN.forward()")


def build_cnn(variant: str = "fc", image_size: int = 320) -> nn.Module:
    """Build one of the lecture's three classifiers (:class:`QualityCNN`).

    Args:
        variant: "fc" (26117 parameters at 320x320), "gap1" (45) or "gap4" (489).
        image_size: H = W of the input images, >= 16 for "fc" and "gap4" (four 2x2 pools).

    Returns:
        The model: input (N, 1, H, W) float32 images, output (N, 1) probabilities.

    Raises:
        ValueError: an unknown variant (the message names the allowed ones), or an image too
            small for four pools.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement build_cnn()")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``) of ``model``.

    Returns:
        a Python int; 26117, 45 and 489 for "fc", "gap1" and "gap4" at 320x320.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement count_parameters()")


# --------------------------------------------------------------------------- Task 5.2: training


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """Probabilities of the "accelerated" class, in evaluation mode and without gradients.

    The model runs on the device of its parameters, in evaluation mode, on at most
    ``batch_size`` images at a time (memory: 50 images of 320x320 are about 80 MB of
    activations), and stays in evaluation mode afterwards.

    Args:
        model: a model from :func:`build_cnn`.
        x: (N, 1, H, W) float32 images, on any device.
        batch_size: most images per forward pass.

    Returns:
        (N,) float32 tensor of probabilities p_n = model(x_n).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement predict_proba()")


def predict(model: nn.Module, x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Class labels: 1 (accelerated PI-CS) where the probability exceeds ``threshold``, else 0.

    Args:
        model: a model from :func:`build_cnn`.
        x: (N, 1, H, W) float32 images.
        threshold: decision threshold on the probability.

    Returns:
        (N,) torch.int64 tensor of labels (0 = fully sampled reference, 1 = accelerated).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement predict()")


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean binary cross-entropy and accuracy of ``model`` on (x, y), in evaluation mode.

    BCE = -1/N sum_n [y_n log p_n + (1 - y_n) log(1 - p_n)], p_n the predicted probability
    (:func:`predict_proba`); accuracy = fraction of images whose label (p_n > 0.5) equals y_n.

    Args:
        x: (N, 1, H, W) images; y: (N,) labels 0./1.

    Returns:
        (loss, accuracy) as Python floats; the model is left in evaluation mode.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement evaluate()")


def train(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 10,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``model`` with Adam on the binary cross-entropy, in mini-batches (lecture: batch 10).

    One Adam step (one optimiser for the whole run) per mini-batch of ``batch_size`` training
    images, with the model in training mode; every epoch visits each training image exactly
    once, in a new random order. The same model, data and ``seed`` give the same trained
    weights. The validation set is only evaluated, never trained on.

    Args:
        model: a model from :func:`build_cnn`; trained in place and moved to ``device``.
        x_train, x_val: (N, 1, H, W) float32 images; y_train, y_val: (N,) labels 0./1.
            (0 = fully sampled reference, 1 = accelerated), on the CPU.
        epochs: passes over the training set.
        lr: Adam learning rate.
        batch_size: images per gradient step (the last batch may be smaller).
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``: the model and each batch go there.
        seed: seed of the shuffling.

    Returns:
        {"train_loss", "train_acc", "val_loss", "val_acc"}: lists of ``epochs`` Python floats.
        ``val_*``: the mean binary cross-entropy and the accuracy (:func:`evaluate`) on the
        validation set after each epoch; ``train_*``: the same on the training set, after the
        epoch or as the mean over the epoch's mini-batches (as Keras reports it).
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement train()")


# --------------------------------------------------------------------------- Task 5.3: memorisation


def randomize_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """The labels in a random order: a permutation of ``y`` that keeps the number of each class.

    out[i] = y[perm[i]], perm a permutation of 0, ..., N-1 drawn uniformly at random from a
    generator seeded with ``seed``: the same seed and N give the same permutation, whatever the
    labels are and whatever ran before; different seeds give different permutations.

    Source: C. Zhang, S. Bengio, M. Hardt, B. Recht, O. Vinyals, "Understanding deep learning
    requires rethinking generalization", ICLR 2017: trained on images whose labels were shuffled
    this way, a network can only raise its training accuracy by memorising each image, while its
    validation accuracy (true labels) stays at chance. Whether it can is a measure of its capacity.

    Args:
        y: (N,) tensor of labels, any dtype (the lab's: float32 0. / 1.); not modified.
        seed: integer seed of the permutation.

    Returns:
        a new (N,) tensor of the dtype and device of ``y``.

    Raises:
        ValueError: ``y`` is not one-dimensional.
    """
    # TODO: your code here
    raise NotImplementedError("labs/lab05_cnn.py: implement randomize_labels()")


# --------------------------------------------------------------------------- Task 5.4: figures


#: Rules of :func:`diagnose_fit`, on the last epoch's numbers of a history.
UNDERFIT_TRAIN_ACC = 0.9  # training accuracy below this: the model does not even fit the training set
OVERFIT_ACC_GAP = 0.05  # training minus validation accuracy at least this: it fits the training set better
OVERFIT_LOSS_RISE = 0.05  # validation loss this far (absolute, in nats) and 10 % above its minimum


def diagnose_fit(history: dict) -> str:  # keep
    """One line that says from the numbers whether a model under-, over- or fits well.

    Underfits: last training accuracy < UNDERFIT_TRAIN_ACC. Overfits: training minus validation
    accuracy >= OVERFIT_ACC_GAP, or the validation loss has risen since its minimum by
    >= OVERFIT_LOSS_RISE and by >= 10 %. Otherwise: fits.
    """
    train_acc, val_acc = history["train_acc"][-1], history["val_acc"][-1]
    val_loss = np.asarray(history["val_loss"], dtype=float)
    best = int(np.argmin(val_loss))
    rise = float(val_loss[-1] - val_loss[best])
    if train_acc < UNDERFIT_TRAIN_ACC:
        return f"underfits (training accuracy {train_acc:.2f})"
    if train_acc - val_acc >= OVERFIT_ACC_GAP:
        return f"overfits (accuracy training {train_acc:.2f} > validation {val_acc:.2f})"
    if rise >= OVERFIT_LOSS_RISE and rise >= 0.1 * val_loss[best]:
        return f"overfits (validation loss up {rise:.2f} since epoch {best + 1})"
    return f"fits (accuracy training {train_acc:.2f}, validation {val_acc:.2f})"


#: Rule of :func:`diagnose_memorisation`: training accuracy on random labels at least this.
MEMORISE_TRAIN_ACC = 0.95


def diagnose_memorisation(history: dict) -> str:  # keep
    """One line that says from the numbers whether a model trained on random labels memorised them.

    Memorises: last training accuracy (on the shuffled labels) >= MEMORISE_TRAIN_ACC. Otherwise
    it cannot memorise them (in the training budget). The validation labels are the true ones, so
    a model that memorises stays near chance there (0.5).
    """
    train_acc, val_acc = history["train_acc"][-1], history["val_acc"][-1]
    loss0, loss1 = history["val_loss"][0], history["val_loss"][-1]
    if train_acc >= MEMORISE_TRAIN_ACC:
        return (f"memorises (random labels: training accuracy {train_acc:.2f}, validation {val_acc:.2f}, "
                f"validation loss {loss0:.2f} -> {loss1:.2f})")
    return f"cannot memorise (random labels: training accuracy {train_acc:.2f}, validation {val_acc:.2f})"


def verdict(history: dict) -> str:  # keep
    """:func:`diagnose_memorisation` for a random-label run (``history["random_labels"]``), else :func:`diagnose_fit`."""
    return diagnose_memorisation(history) if history.get("random_labels") else diagnose_fit(history)


LOSS_FLOOR = 1e-4  # losses below this are drawn at it (a log axis has no 0)


def plot_training_curves(histories: dict[str, dict], path: Path) -> None:  # keep
    """Per run (columns): accuracy (top) and loss (bottom, log scale), training and validation, per
    epoch, with the epoch of the lowest validation loss marked; the title gives :func:`verdict`.
    Runs on random labels (``history["random_labels"]``) are drawn with their training curves dashed."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(histories)
    fig, axes = plt.subplots(2, n, figsize=(3.9 * n, 6.6), sharex="col", squeeze=False)
    for col, (name, h) in enumerate(histories.items()):
        epochs = np.arange(1, len(h["train_acc"]) + 1)
        best = int(np.argmin(h["val_loss"])) + 1
        train_label = "training (random labels)" if h.get("random_labels") else "training"
        for row, (key, label) in enumerate((("acc", "accuracy (fraction of images)"),
                                            ("loss", "binary cross-entropy (nats, log)"))):
            ax = axes[row, col]
            values = {s: np.asarray(h[f"{s}_{key}"], dtype=float) for s in ("train", "val")}
            if key == "loss":
                values = {s: np.maximum(v, LOSS_FLOOR) for s, v in values.items()}
                ax.set_yscale("log")
            ax.plot(epochs, values["train"], label=train_label, ls="--" if h.get("random_labels") else "-")
            ax.plot(epochs, values["val"], label="validation (true labels)")
            ax.axvline(best, color="grey", ls=":", lw=1, label=f"lowest validation loss (epoch {best})")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(label)
            if row == 1:
                ax.set_xlabel("epoch")
                ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0, col].axhline(0.5, color="k", lw=0.6, alpha=0.5)
        axes[0, col].set_ylim(0.3, 1.02)
        words = "\n".join(textwrap.wrap(verdict(h), 52))
        axes[0, col].set_title(f"{name} ({h.get('parameters', '?')} parameters)\n{words}", fontsize=8)
        axes[1, col].legend(fontsize=7, loc="lower left")
    fig.suptitle("Image-quality CNNs: " + "; ".join(f"{name} {verdict(h).split(' (')[0]}"
                                                    for name, h in histories.items()), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_history(variant: str, h: dict) -> None:  # keep
    """The curves of one variant as a table (every few epochs, the best and the last one)."""
    n = len(h["val_loss"])
    best = int(np.argmin(h["val_loss"]))
    step = max(1, n // 10)
    print(f"{variant}: {'epoch':>5} {'train loss':>10} {'val loss':>9} {'train acc':>9} {'val acc':>8}")
    for e in sorted({*range(0, n, step), best, n - 1}):
        mark = "  <- lowest validation loss" if e == best else ""
        print(f"{'':{len(variant) + 1}} {e + 1:>5} {h['train_loss'][e]:>10.4f} {h['val_loss'][e]:>9.4f} "
              f"{h['train_acc'][e]:>9.3f} {h['val_acc'][e]:>8.3f}{mark}")
    print(f"{'':{len(variant) + 1}} -> {verdict(h)}")


def plot_example_pairs(x: torch.Tensor, y: torch.Tensor, path: Path, n_pairs: int = 3) -> None:  # keep
    """The first ``n_pairs`` (reference, accelerated) pairs side by side, with a zoomed crop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = [i for i in range(len(y)) if y[i] == 0][:n_pairs]
    accs = [i for i in range(len(y)) if y[i] == 1][:n_pairs]
    n = min(len(refs), len(accs))
    fig, axes = plt.subplots(n, 4, figsize=(10, 2.6 * n), squeeze=False)
    for row, (i, j) in enumerate(zip(refs, accs)):
        side = x.shape[-1]
        crop = slice(side * 3 // 8, side * 5 // 8)
        for col, (img, title) in enumerate(
            ((x[i, 0], "fully sampled (0)"), (x[j, 0], "PI-CS R=4 (1)"),
             (x[i, 0, crop, crop], "zoom: reference"), (x[j, 0, crop, crop], "zoom: PI-CS"))
        ):
            axes[row, col].imshow(np.asarray(img), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(title, fontsize=9)
            axes[row, col].axis("off")
    fig.suptitle("Validation images: fully sampled reference (label 0) and PI-CS R=4 (label 1); "
                 "grey levels 0..1 (a.u.)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(x: torch.Tensor, y: torch.Tensor, proba: torch.Tensor, path: Path, title: str,
                       n_max: int = 8) -> None:  # keep
    """Up to ``n_max`` misclassified validation images with the true label and the probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("reference", "PI-CS")
    wrong = [i for i in range(len(y)) if int(proba[i] > 0.5) != int(y[i])][:n_max]
    cols = min(max(len(wrong), 1), 4)
    rows = max(1, -(-len(wrong) // cols))
    # constrained layout keeps each row's two-line titles clear of the row above (tight_layout let them
    # overlap); at least 5.5 in wide, so that the suptitle fits above one or two images
    fig, axes = plt.subplots(rows, cols, figsize=(max(2.5 * cols, 5.5), 2.8 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(np.asarray(x[i, 0]), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"true: {names[int(y[i])]}\np(PI-CS) = {float(proba[i]):.2f}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    if not wrong:
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(f"{title} ({sum(int(proba[i] > 0.5) != int(y[i]) for i in range(len(y)))} of {len(y)})", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: The default run (the three lessons, at most 10 min on one CPU thread; chosen in
#: bench/results/lab05_calibration.md) and the lecture's run (``--full``).
DEFAULT_PAIRS, DEFAULT_SIZE, DEFAULT_EPOCHS, DEFAULT_LR = 260, 96, 120, 1e-3
FULL_EPOCHS, FULL_LR = 30, 1e-3
QUICK_PAIRS, QUICK_SIZE, QUICK_EPOCHS, QUICK_LR = 60, 64, 20, 3e-3
#: (name, variant, random labels) of the runs, in the order of the figure's columns.
RUNS = (("gap1", "gap1", False), ("gap4", "gap4", False), ("gap4, random labels", "gap4", True),
        ("fc", "fc", False), ("fc, random labels", "fc", True))


def step_costs(variant: str, x: torch.Tensor, y: torch.Tensor, device: str, batch_size: int = 10,
               lr: float = 1e-3) -> tuple[float, float]:  # keep
    """Measured seconds of one training step (batch ``batch_size``) and of predicting one image,
    on a throw-away model: the weights of the progress bar (its ETA holds when they are right)."""
    import time

    def sync() -> None:  # CUDA works asynchronously: wait for it before reading the clock
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    state = torch.random.get_rng_state()
    model = build_cnn(variant, image_size=int(x.shape[-1])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    xb, yb = x[:batch_size].to(device), y[:batch_size].float().to(device)
    times = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        optimizer.zero_grad()
        nn.functional.binary_cross_entropy(model(xb).reshape(-1), yb).backward()
        optimizer.step()
        sync()
        times.append(time.perf_counter() - start)
    sync()
    start = time.perf_counter()
    predict_proba(model, x[:50])
    sync()
    per_image = (time.perf_counter() - start) / len(x[:50])
    torch.random.set_rng_state(state)
    return float(np.median(times[2:])), per_image


def run_all(data, runs, epochs: int, lr: float, seed: int, device: str, y_random=None,
            progress: bool = True, figures: bool = True) -> dict[str, dict]:  # keep
    """Train each run (name, variant, on random labels?) of ``runs`` on ``data`` with :func:`train`;
    ``y_random``: the training labels of the random-label runs. Returns {name: history}, each
    with "parameters", "random_labels" and "seconds" added."""
    import time

    from tqdm import tqdm

    size = int(data.x_train.shape[-1])
    # One bar for all runs, in measured seconds of work: a hook ticks on every forward pass
    # (a training step, or the evaluation of a batch), weighted by what that costs for the variant.
    costs = {v: step_costs(v, data.x_train, data.y_train, device) for v in {variant for _, variant, _ in runs}}
    n_batches = -(-len(data.y_train) // 10)
    n_eval = len(data.y_train) + len(data.y_val)
    total = sum(epochs * (n_batches * costs[v][0] + n_eval * costs[v][1]) for _, v, _ in runs)
    bar = tqdm(total=total, desc="training", smoothing=0.0, disable=not progress,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, about {remaining} left")
    histories = {}
    for name, variant, shuffled in runs:
        torch.manual_seed(seed)
        model = build_cnn(variant, image_size=size)
        bar.set_description_str(f"training {name}")
        step, per_image = costs[variant]

        def tick(module, inputs, output, step=step, per_image=per_image) -> None:  # must return None
            bar.update(step if module.training else per_image * len(inputs[0]))

        hook = model.register_forward_hook(tick)
        start = time.perf_counter()
        h = train(model, data.x_train, y_random if shuffled else data.y_train, data.x_val, data.y_val,
                  epochs=epochs, lr=lr, device=device, seed=seed)
        h["seconds"] = time.perf_counter() - start
        hook.remove()
        h["parameters"] = count_parameters(model)
        h["random_labels"] = shuffled
        histories[name] = h
        if figures and not shuffled:
            proba = predict_proba(model, data.x_val)
            plot_misclassified(data.x_val, data.y_val, proba, FIGURES / f"misclassified_{variant}.png",
                               f"{variant}: misclassified validation images")
    bar.close()
    return histories


def main(argv: list[str] | None = None) -> int:
    """Train the runs, write the figures to ``figures/lab05/`` and print the table."""
    parser = argparse.ArgumentParser(prog="python -m labs.lab05_cnn", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true",
                      help="the lecture's run: the 520-image set at 320x320, 30 epochs (needs `python -m data "
                           "prepare recon` once; about 13 min on one CPU thread)")
    mode.add_argument("--quick", action="store_true",
                      help=f"tries the code out: {QUICK_PAIRS} pairs at {QUICK_SIZE} px, {QUICK_EPOCHS} epochs "
                           "(seconds; the lessons need the default run)")
    parser.add_argument("--random-labels", action=argparse.BooleanOptionalAction, default=None,
                        help="also train fc and gap4 on randomly permuted training labels (default: yes, "
                             "except with --full)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs (default {DEFAULT_EPOCHS}, --full {FULL_EPOCHS}, --quick {QUICK_EPOCHS})")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"Adam learning rate (default {DEFAULT_LR:g}, --full {FULL_LR:g}, --quick {QUICK_LR:g})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the order and the random labels")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    from data import recon

    if args.full:
        status = recon.info()
        if status["source"] == "offline" and not status["sim_ready"]:
            print(
                "The lecture's image set is not prepared yet: run `python -m data prepare recon` once "
                "(about 8 min with 2 processes), or run the default `python -m labs.lab05_cnn` (96x96).",
                file=sys.stderr,
            )
            return 1
        data = recon.load_recon()
        epochs, lr = args.epochs or FULL_EPOCHS, args.lr or FULL_LR
    else:
        pairs, size = (QUICK_PAIRS, QUICK_SIZE) if args.quick else (DEFAULT_PAIRS, DEFAULT_SIZE)
        if recon.info()["real_present"]:  # the lecture's data.zip in data/recon_classification: at this size
            data = recon.load_recon("real", image_size=size)
        else:
            data = recon.load_recon_subset(n_pairs=pairs, image_size=size, progress=True)
        epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
        lr = args.lr or (QUICK_LR if args.quick else DEFAULT_LR)
    random_labels = (not args.full) if args.random_labels is None else args.random_labels
    runs = [run for run in RUNS if random_labels or not run[2]]
    print(f"{data} on {device}, {epochs} epochs, Adam lr {lr:g}, batch 10, seed {args.seed}")
    plot_example_pairs(data.x_val, data.y_val, FIGURES / "examples.png")
    y_random = randomize_labels(data.y_train, seed=args.seed) if random_labels else None

    histories = run_all(data, runs, epochs, lr, args.seed, device, y_random)
    rows = [(name, h["parameters"], h["train_acc"][-1], h["val_acc"][-1], min(h["val_loss"]), h["val_loss"][-1])
            for name, h in histories.items()]
    for name, h in histories.items():
        print_history(name, h)
    plot_training_curves(histories, FIGURES / "training_curves.png")
    import json

    settings = {"data": str(data), "epochs": epochs, "lr": lr, "seed": args.seed, "device": device}
    (FIGURES / "histories.json").write_text(json.dumps({"settings": settings, "runs": histories}))

    print(f"{'run':<21}{'parameters':>11}{'train acc':>11}{'val acc':>9}{'val loss min':>14}{'last':>8}")
    for name, n_params, train_acc, val_acc, loss_min, loss_last in rows:
        print(f"{name:<21}{n_params:>11}{train_acc:>11.3f}{val_acc:>9.3f}{loss_min:>14.3f}{loss_last:>8.3f}")
    print("verdicts: " + "; ".join(f"{name} {verdict(h).split(' (')[0]}" for name, h in histories.items()))
    print(f"figures written to {FIGURES}/ (training_curves.png, examples.png, misclassified_*.png; the numbers: "
          "histories.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
