"""Lab 5's training runs, the grader's side: its own reference trainings (Adam on the binary
cross-entropy, and the slips the training checks name), the replays of the student's training in
the order the worker reports, the small problems the training checks set, the slips of the
training checks in words, and the accuracy check's subset run with its calibration
(labs/lab05_cnn.py; the rubric is grader/test_lab05_cnn.py, the models grader/oracle/lab05.py,
apart to keep each file short: that one rebuilds and calls the models, this one trains them).

How the rubric judges training: on the grader's own small model (an ``nn.Sequential`` sent with
``lab.grader.to_worker``), the trained parameters are compared with the grader's own Adam; the
accuracy check measures the trained gap4 with the grader's own forward pass on validation images
that never leave the grader. Train mode and the mini-batch order are outcomes too: the grader's
model with a layer that behaves differently in training mode (``lab05.mode_net``), and the
grader's own replay of the training in the order the worker reports, must give the trained
parameters. Probes in the worker (``lab05.watch_modes``, ``lab05.watch_batches``,
``lab05.devices``) word failures, check how predict_proba runs, and the device after
``train(device="cuda")`` (GPU check).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from data.recon import GRADER_SUBSET
from grader.judge import remote
from grader.kit import as_float, max_abs_diff, samples_seen
from grader.oracle.lab05 import build, forward, forward_matches, he_model, own_proba, rebuild, tiny_net, toy_images


# --------------------------------------------------------------------------- calibration of the accuracy check
# Measured by bench/bench_lab05.py --calibrate 20 (numbers in the docstring of
# test_trained_gap4_reaches_validation_accuracy); the bench reads these very names.
SUBSET_PAIRS, SUBSET_SIZE = GRADER_SUBSET  # 60 pairs at 64 px: 40 training pairs (80 images), 20 validation pairs (40 images)
SUBSET_EPOCHS = 40
SUBSET_LR = 3e-3
MIN_VAL_ACCURACY = 0.75
HISTORY_IMAGES = 10  # training images given to train() as its x_val / y_val in the accuracy check


# --------------------------------------------------------------------------- reference runs and replays


def reference_params(model: nn.Module, x, y, lr: float, steps: int, kind: str,
                     batches: list[list[list[int]]] | None = None) -> list[torch.Tensor]:
    """Parameters after training with the grader's own optimisation variant ``kind``: ``steps``
    full-batch epochs, or, with ``batches``, one step per mini-batch of sample indices (one list
    of mini-batches per epoch, in the order the judge was told). The model keeps its mode (a
    model with a :class:`TrainFlip` trains differently in training mode)."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD if kind == "sgd" else torch.optim.Adam

    def make():
        return optimizer(model.parameters(), lr=lr)

    opt = make()
    target = 1.0 - y if kind == "swapped" else y
    epochs = batches if batches is not None else [[list(range(len(y)))]] * steps
    for epoch in epochs:
        if kind == "adam_reset":
            opt = make()
        for batch in epoch:
            idx = torch.as_tensor(batch, dtype=torch.long)
            opt.zero_grad()
            p = model(x[idx]).reshape(-1)
            if kind == "logits":
                loss = F.binary_cross_entropy_with_logits(p, target[idx])
            elif kind == "mse":
                loss = F.mse_loss(p, target[idx])
            else:
                loss = F.binary_cross_entropy(p, target[idx])
            loss.backward()
            opt.step()
    return [p.detach().clone() for p in model.parameters()]


# The slips the training checks name (and tolerate where another check grades them: the train-mode
# and order checks replay the student's training with each of these, so a wrong optimiser or loss
# costs the points of the Adam and loss checks only).
TRAINING_SLIPS = {
    "swapped": "the labels are swapped (the loss uses 1 - y): label 0 = fully sampled reference, 1 = accelerated",
    "logits": "the loss applies a second sigmoid: BCEWithLogitsLoss expects logits, but the model outputs "
              "probabilities; use nn.BCELoss / F.binary_cross_entropy",
    "sgd": "the optimizer is SGD; the lecture uses Adam",
    "adam_reset": "Adam is created anew every epoch, which resets its moment estimates: create it once before the loop",
    "mse": "the loss is the mean squared error; the lecture's loss is the binary cross-entropy (nn.BCELoss)",
}


def replayed(got, start: nn.Module, x, y, lr: float, steps: int, batches=None, tol: float | None = None) -> str | None:
    """The optimisation variant (``"adam"`` or a key of TRAINING_SLIPS) whose replay by the
    grader gives the parameters ``got`` (within 0.05 lr), or None."""
    tol = 0.05 * lr if tol is None else tol
    for kind in ("adam", *TRAINING_SLIPS):
        if max_abs_diff(got, reference_params(start, x, y, lr, steps, kind, batches)) <= tol:
            return kind
    return None


# --------------------------------------------------------------------------- the problems the training checks set


class TrainFlip(nn.Module):
    """The grader's copy of the worker's probe layer ``lab05.TrainFlip``: identity in evaluation
    mode, negation in training mode (a deterministic stand-in for dropout)."""

    def forward(self, x):
        return -x if self.training else x


def mode_net() -> nn.Sequential:
    """:func:`tiny_net` with a :class:`TrainFlip` after the activation (same parameters)."""
    net = tiny_net()
    return nn.Sequential(net[0], net[1], TrainFlip(), *list(net)[2:])


def saturated_problem(seed: int):
    """The grader's small model with a large output weight (confident, partly wrong predictions)
    and toy images: the binary cross-entropy and the squared error pull some parameters in
    opposite directions there, so their Adam trajectories part (>= 0.4 lr on seeds 1-10)."""
    for attempt in range(10):
        g = torch.Generator().manual_seed(seed + 7919 * attempt)
        x, y = toy_images(g, 10)
        torch.manual_seed(seed + 7919 * attempt)
        start = tiny_net()
        with torch.no_grad():
            start[4].weight.mul_(20.0)
            start[4].bias.add_(3.0)
        bce = reference_params(start, x, y, 0.05, 3, "adam")
        if max_abs_diff(bce, reference_params(start, x, y, 0.05, 3, "mse")) >= 0.25 * 0.05:
            break
    return start, x, y


def labelled_images(g: torch.Generator, n: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Toy images whose first pixel is k / n for image k: the probe's record names the images."""
    x, y = toy_images(g, n, size)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32) / n
    return x, y


# --------------------------------------------------------------------------- the training checks in words
# The slips of the checks whose trained parameters are not the grader's replay, how predict_proba ran,
# the history's format.


NOT_TRAINED = "train(): the model's parameters did not change (optimizer.step() on model.parameters()?)"


def unchanged(got, start: nn.Module) -> bool:
    """Whether the parameters ``got`` are exactly those of ``start``."""
    return max_abs_diff(got, [p.detach() for p in start.parameters()]) == 0


def adam_slip(got, start: nn.Module, x, y, lr: float, epochs: int, tol: float) -> str:
    """Full-batch training that is not the grader's Adam on the BCE: not at all, a slip of
    :data:`TRAINING_SLIPS` within ``tol`` (the squared error is the loss check's), or otherwise."""
    if unchanged(got, start):
        return NOT_TRAINED
    for kind, hint in TRAINING_SLIPS.items():
        if kind != "mse" and max_abs_diff(got, reference_params(start, x, y, lr, epochs, kind)) <= tol:
            return f"train(): after {epochs} full-batch epochs at lr={lr} the parameters match a slip: {hint}"
    return (
        f"train(): after {epochs} full-batch epochs (batch_size >= N) at lr={lr} the parameters differ from "
        f"torch.optim.Adam(lr={lr}) on the binary cross-entropy of model(x) and y by up to "
        f"{max_abs_diff(got, reference_params(start, x, y, lr, epochs, 'adam')):.2e}: one optimizer for the whole "
        "training, zero_grad, loss, backward, step per batch"
    )


def mode_slip(got, start: nn.Module, x, y, lr: float, epochs: int, modes) -> str:
    """Training of :func:`mode_net` that is not the grader's replay in training mode: not at all, in
    evaluation mode (the replay in evaluation mode gives ``got``, or ``modes``, the (training, grad
    enabled) record of the worker's probe, shows a step in evaluation mode), or otherwise."""
    if unchanged(got, start):
        return NOT_TRAINED
    with_grad = [bool(training) for training, grad in modes if grad]
    in_eval = replayed(got, start.eval(), x, y, lr, epochs) is not None or not all(with_grad)
    if in_eval:
        return (
            "train(): the model was trained in evaluation mode (model.training was False during the training "
            "steps): call model.train() at the start of every epoch; evaluating puts the model in eval mode, where "
            "dropout and batch norm behave differently (the grader's model has a layer that behaves differently in "
            "training mode, and its trained parameters show the mode)"
        )
    return (
        f"train(): after {epochs} full-batch epochs at lr={lr} on a model with a training-mode-only layer, the "
        "parameters are not those of Adam on the binary cross-entropy with the model in training mode "
        "(model.train() every epoch); see also the Adam check"
    )


def loss_slip(kind: str | None, lr: float, epochs: int) -> str:
    """Training on :func:`saturated_problem` whose replay is ``kind`` (a key of :data:`TRAINING_SLIPS`, or None)."""
    if kind == "mse":
        return (
            "train(): on a model with confident wrong predictions the trained parameters are those of Adam on the "
            "mean squared error: " + TRAINING_SLIPS["mse"] + " (the squared error of a sigmoid output hardly moves "
            "a confidently wrong prediction)"
        )
    return (
        f"train(): on a model with confident predictions, {epochs} full-batch epochs at lr={lr} end with "
        "parameters that are not those of Adam on the binary cross-entropy "
        + (f"({TRAINING_SLIPS[kind]})" if kind else "(nor of any loss the grader knows)")
        + ": the loss must be nn.BCELoss()(model(x).reshape(-1), y), the mean over the batch"
    )


def order_slip(got, start: nn.Module, x, y, lr: float, epochs: int, batch_size: int) -> str:
    """Mini-batch training that is not the grader's replay in the order the worker reports: not
    trained on the batches the model saw, or trained in the stored order."""
    n = len(y)
    in_order = [[list(range(n))[i:i + batch_size] for i in range(0, n, batch_size)]] * epochs
    moved = max_abs_diff(got, [p.detach() for p in start.parameters()]) > 0
    return (
        "train(): the trained parameters are not those of one Adam step per mini-batch in the order the model "
        "was fed the images"
        + (": the model was called on the shuffled mini-batches but not trained on them (one optimizer step "
           "per mini-batch, on the batch the model just saw)" if not moved else "")
        + (" (they are those of training in the stored order: the shuffled order must be the one trained on)"
           if moved and replayed(got, start, x, y, lr, epochs, batches=in_order) is not None else "")
    )


def check_predict_proba_run(record, n: int, batch_size: int) -> None:
    """How predict_proba(batch_size=...) ran the model on the ``n`` :func:`labelled_images`, from the
    record of the worker's ``lab05.watch_batches`` probe (evidence): every image once, at most
    ``batch_size`` per forward pass, in evaluation mode, without gradients."""
    calls = samples_seen(record, n)
    seen = sorted(i for _, _, ids in calls for i in ids)
    assert seen == list(range(n)), f"predict_proba: the model saw {len(seen)} images in total, expected each of the {n} once"
    biggest = max(len(ids) for _, _, ids in calls)
    assert biggest <= batch_size, (
        f"predict_proba(batch_size={batch_size}) ran the model on {biggest} images at once: at most batch_size per "
        "forward pass (memory at 320x320 and on a GPU)"
    )
    assert not any(training for training, _, _ in calls), (
        "predict_proba ran the model in training mode: call model.eval() first (dropout and batch norm behave "
        "differently in training mode)"
    )
    assert not any(grad for _, grad, _ in calls), (
        "predict_proba ran the model with gradients enabled: wrap it in torch.no_grad() (no graph is needed to predict)"
    )


def check_history(history, epochs: int) -> None:
    """train()'s history: a dict with the four keys, one number per epoch each, accuracies in [0, 1]
    and losses >= 0 (its values are compared with the grader's evaluation by the rubric)."""
    assert isinstance(history, dict), (
        f"train() must return a dict of per-epoch lists, got "
        f"{history.type_name if isinstance(history, remote.RemoteObject) else type(history).__name__}"
    )
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    missing = [k for k in keys if k not in history]
    assert not missing, f"train()'s history lacks {missing}; expected the keys {list(keys)}"
    for k in keys:
        assert len(history[k]) == epochs, f"history[{k!r}] has {len(history[k])} values, expected one per epoch ({epochs})"
        values = [as_float(v, f"history[{k!r}]") for v in history[k]]
        if k.endswith("acc"):
            assert all(0 <= v <= 1 for v in values), f"history[{k!r}] = {values} is not a fraction in [0, 1]"
        else:
            assert all(v >= 0 for v in values), f"history[{k!r}] = {values}: a binary cross-entropy is >= 0"


# --------------------------------------------------------------------------- the accuracy check's subset run


def train_on_subset(lab, data, seed: int, variant: str = "gap4", epochs: int = SUBSET_EPOCHS) -> tuple[float, torch.Tensor]:
    """The accuracy check's pipeline (also run by bench/bench_lab05.py --calibrate): build the
    variant in the worker, load the grader's He initialisation, the student's train(), then the
    grader's own model with the trained parameters on the validation images.

    The validation images and labels never leave the grader: train() gets the first
    ``HISTORY_IMAGES`` training images as its x_val / y_val (its history is not graded here, and
    what it evaluates after each epoch does not change the training).

    Returns (validation accuracy, (N_val,) predicted probabilities).
    """
    image_size = int(data.x_train.shape[-1])
    where = f"build_cnn({variant!r}, image_size={image_size})"
    why = ": the grader's initialisation and evaluation need the lecture's layers"
    model = he_model(lab, variant, image_size, seed, why)
    k = HISTORY_IMAGES
    lab.train(model, data.x_train.clone(), data.y_train.clone(), data.x_train[:k].clone(), data.y_train[:k].clone(),
              epochs=epochs, lr=SUBSET_LR, batch_size=10, device="cpu", seed=seed)
    own = rebuild(variant, image_size, lab.grader.tensors(model))
    assert own is not None, f"train(): the parameters of {where} changed shape during training"
    p = own_proba(own, data.x_val)
    return float(((p > 0.5).float() == data.y_val).float().mean()), p


def accuracy_slip(lab, data, acc: float, p: torch.Tensor) -> str:
    """Why the trained gap4 misses :data:`MIN_VAL_ACCURACY` (``acc``, probabilities ``p`` on the
    validation images): another model than the lecture's, inverted, a second sigmoid, one class
    for all, or training."""
    model = build(lab, "gap4", SUBSET_SIZE)  # does the student's gap4 compute the grader's?
    x = data.x_train[:4]
    own = rebuild("gap4", SUBSET_SIZE, lab.grader.tensors(model))
    where = f"build_cnn('gap4', image_size={SUBSET_SIZE})"
    if own is not None and not forward_matches(own, x, forward(lab, model, x, where)):
        return ("your gap4 computes something else than the lecture's gap4 with the same parameters (see the layer "
                "structure check), and the grader measures the lecture's gap4 with your trained parameters")
    if acc <= 1.0 - MIN_VAL_ACCURACY:
        return ("it is below chance: the predictions are inverted, are the labels swapped? "
                "(0 = fully sampled reference, 1 = accelerated PI-CS)")
    if float(p.min()) >= 0.5:
        return ("every probability is >= 0.5 (min {:.2f}): is the sigmoid applied twice?".format(float(p.min())))
    if bool(((p > 0.5) == (p[0] > 0.5)).all()):
        return "the model predicts the same class for every image: check train() and the model"
    return "check train() (Adam, binary cross-entropy, shuffled mini-batches) and the gap4 model"
