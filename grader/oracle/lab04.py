"""Lab 4's answer key: the grader's own MLP, its forward pass and metrics, the reference runs of the
student's pipeline, and its own Adam (labs/lab04_dti.py; the rubric is grader/test_lab04_dti.py).

Everything here is the judge's: it computes outcomes from plain data the worker reports (the
parameter tensors of the trained model, the normalised features) and never trusts a number the
student's code returns. The points and messages are the rubric's; the bars of its experiment checks
live in the calibration block below, where the bench that measured them reads them too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from grader import remote

N_CLASSES = 3
N_FEATURES = 5
CC = 1  # genu of the corpus callosum: the smallest class (19 % of the voxels)
SHORT = ("thalamus", "CC genu", "subcortical WM")
SIZES = [5, 100, 100, 100, 100, 3]  # the lecture's MLP, 31203 parameters
EPOCHS = 15  # graded budget of the full pipeline: Adam lr 1e-3, batch 1024
IMBALANCED_EPOCHS = 15  # budget of each of the two runs on the imbalanced training set
CC_KEEP = 0.03  # share of the CC genu training voxels the grader keeps in the imbalanced set


# --------------------------------------------------------------------------- calibration
# The bars of the rubric's experiment checks (grader/test_lab04_dti.py imports them by name), calibrated
# with bench/bench_lab04.py --calibrate 10 (and --normalizer max), which reads them from here to print
# its margins; the measured numbers are in the docstrings of the checks that use them.
MIN_TEST_ACCURACY = 0.85  # accuracy on the test subject after the full pipeline
MIN_TEST_BALANCED = 0.81  # balanced accuracy on the test subject after the full pipeline
MIN_WEIGHT_GAIN = 0.01  # gain in balanced accuracy from the class weights on the imbalanced set
MIN_IMBALANCED_BALANCED = 0.78  # balanced accuracy with the class weights on the imbalanced set


# --------------------------------------------------------------------------- the grader's own model


class ReferenceMLP(nn.Module):
    """The grader's MLP: Linear layers of ``sizes`` with ReLU between them, logits out."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def layer_shapes(sizes: list[int]) -> list[tuple[int, ...]]:
    """Parameter shapes of the MLP of ``sizes`` in parameters() order: weight (out, in), bias (out,)."""
    return [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((b, a), (b,))]


def rebuild(tensors: list, sizes: list[int], who: str) -> ReferenceMLP:
    """The grader's MLP of ``sizes`` holding the reported parameter tensors (shapes must match exactly)."""
    tensors = [torch.as_tensor(t).detach().float().cpu() for t in tensors]
    got, want = [tuple(t.shape) for t in tensors], layer_shapes(sizes)
    assert got == want, (
        f"{who}: the model's parameters have shapes {got}, expected {want}: the {'-'.join(map(str, sizes))} MLP "
        "(weight (out, in) and bias (out,) of each Linear layer, from the input to the output, nothing else)"
    )
    assert all(torch.isfinite(t).all() for t in tensors), f"{who}: the model's parameters hold NaN or inf"
    model = ReferenceMLP(sizes)
    with torch.no_grad():
        for p, t in zip(model.parameters(), tensors):
            p.copy_(t)
    return model.eval()


def judge_model(lab, handle, who: str, sizes: list[int] = SIZES) -> ReferenceMLP:
    """The grader's copy of the student's model in the worker, rebuilt from its reported parameters."""
    return rebuild(lab.grader.tensors(handle), sizes, who)


# --------------------------------------------------------------------------- the grader's pipeline


def grader_predict(model: nn.Module, x) -> np.ndarray:
    """The grader's own forward pass on the CPU: argmax of the logits, int64 (N,)."""
    x = torch.as_tensor(x).detach().float().cpu()
    assert x.ndim == 2 and x.shape[1] == N_FEATURES, (
        f"Normalizer.transform returned shape {tuple(x.shape)} for the test subject's (N, {N_FEATURES}) "
        "features: it must keep the shape"
    )
    assert torch.isfinite(x).all(), "Normalizer.transform gives NaN or inf on the test subject's features"
    model = model.to("cpu").eval()
    with torch.no_grad():
        logits = model(x)
    assert tuple(logits.shape) == (x.shape[0], N_CLASSES), (
        f"the model maps {tuple(x.shape)} features to outputs of shape {tuple(logits.shape)}; "
        f"expected one logit per class, ({x.shape[0]}, {N_CLASSES})"
    )
    return logits.argmax(dim=1).numpy()


def metrics(y_true, y_pred, n_classes: int = N_CLASSES) -> dict:
    """The grader's own accuracy, balanced accuracy and per-class recalls."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    return {"accuracy": float(np.trace(cm) / cm.sum()), "balanced": float(recall.mean()), "recall": recall, "cm": cm}


def describe(m: dict) -> str:
    return "recall per class " + ", ".join(f"{name} {r:.2f}" for name, r in zip(SHORT, m["recall"]))


@dataclass
class Run:
    """One training run of the student's pipeline, evaluated by the grader."""

    history: dict
    epochs: int
    model: nn.Module  # the grader's MLP rebuilt from the trained parameters
    test: dict  # grader metrics on the test subject
    device: str  # where the worker reports the trained parameters (evidence)
    handle: object = None  # the trained model in the worker
    x_val: torch.Tensor | None = None  # the validation features as the student's Normalizer returned them
    y_val: torch.Tensor | None = None
    weights: torch.Tensor | None = None  # what class_weights returned (passed to train())
    x_test: torch.Tensor | None = None  # the test subject's features, normalised by the student's Normalizer


def train_student(lab, x_tr, y_tr, x_val, y_val, seed: int, weights, epochs: int, device: str = "cpu"):
    """build_dti_mlp() and train() in the worker on the student's normalised features.

    Returns (model handle, history). The worker's random generators are seeded with ``seed``
    before each call (the student's code may draw from them), so two runs are comparable.
    """
    with remote.options(seed=seed):
        model = lab.build_dti_mlp()
    with remote.options(seed=seed):
        history = lab.train(model, x_tr, y_tr, x_val, y_val, epochs=epochs, class_weights=weights,
                            device=device, seed=seed)
    return model, history


def run_pipeline(lab, data, seed: int, epochs: int = EPOCHS, device: str = "cpu", val_fraction: float = 0.2,
                 rows=None) -> Run:
    """The lecture's experiment with the student's functions; metrics by the grader.

    ``rows``: the training-subject rows to use (default all). The test subject's labels stay here.
    """
    x, y = data.x_trainval, data.y_trainval
    if rows is not None:
        x, y = x[rows], y[rows]
    x_tr, y_tr, x_val, y_val = lab.split_train_val(x.clone(), y.clone(), val_fraction, seed=seed)
    normalizer = lab.fit_normalizer(torch.as_tensor(x_tr).clone())
    weights = lab.class_weights(torch.as_tensor(y_tr).clone(), N_CLASSES)
    x_val_n = normalizer.transform(torch.as_tensor(x_val).clone())
    model, history = train_student(lab, normalizer.transform(torch.as_tensor(x_tr).clone()), y_tr,
                                   x_val_n, y_val, seed, weights, epochs, device)
    on_device = lab.grader.probe("lab04.device_of", model)
    mine = judge_model(lab, model, "after train(), build_dti_mlp()")
    x_test_n = normalizer.transform(data.x_test.clone())
    pred = grader_predict(mine, x_test_n)
    return Run(history=history, epochs=epochs, model=mine, test=metrics(data.y_test, pred), device=str(on_device),
               handle=model, x_val=x_val_n, y_val=torch.as_tensor(y_val), weights=weights, x_test=x_test_n)


def imbalanced_split(data, seed: int):
    """The grader's own 80/20 split of the training subjects, then most CC genu voxels dropped
    from the training part (CC_KEEP of them stay): about 100 CC voxels against 11,000 others."""
    rng = np.random.default_rng(seed)
    n = data.x_trainval.shape[0]
    perm = rng.permutation(n)
    n_val = int(round(0.2 * n))
    val, tr = perm[:n_val], perm[n_val:]
    y = data.y_trainval.numpy()
    tr = tr[(y[tr] != CC) | (rng.random(tr.size) < CC_KEEP)]
    tr, val = torch.from_numpy(np.sort(tr)), torch.from_numpy(val)
    return data.x_trainval[tr].clone(), data.y_trainval[tr].clone(), data.x_trainval[val].clone(), data.y_trainval[val].clone()


def run_imbalanced(lab, data, seed: int, weighted: bool, epochs: int = IMBALANCED_EPOCHS) -> dict:
    """The student's pipeline on the imbalanced set, with class_weights(y_train) or with None."""
    x_tr, y_tr, x_val, y_val = imbalanced_split(data, seed)
    normalizer = lab.fit_normalizer(x_tr.clone())
    weights = lab.class_weights(y_tr.clone(), N_CLASSES) if weighted else None
    model, _ = train_student(lab, normalizer.transform(x_tr.clone()), y_tr, normalizer.transform(x_val.clone()),
                             y_val, seed, weights, epochs)
    mine = judge_model(lab, model, "after train(), build_dti_mlp()")
    m = metrics(data.y_test, grader_predict(mine, normalizer.transform(data.x_test.clone())))
    m["n_cc_train"] = int((y_tr == CC).sum())
    m["n_train"] = int(y_tr.numel())
    return m


def adam_replay(start: nn.Module, x, y, weights, lr: float, batches: list[list[int]], reset: bool = False,
                sgd: bool = False, evaluate_after: frozenset = frozenset()):
    """The grader's own training: from a copy of ``start``, one Adam step (lr ``lr``) on the
    (``weights``-weighted) cross-entropy per mini-batch of ``batches`` (row indices, in order).

    Returns (the trained copy, per mini-batch (its loss before the step, its accuracy, its size),
    the loss and accuracy on all of (x, y) after each mini-batch whose index is in ``evaluate_after``).
    ``reset`` (a new Adam per mini-batch) and ``sgd`` are slips the lr check names.
    """
    model = copy.deepcopy(start).train()
    params = list(model.parameters())
    moments = None
    seen, after = [], []
    for i, b in enumerate(batches):
        if moments is None or reset:
            moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params], [0]
        logits = model(x[b])
        loss = nn.functional.cross_entropy(logits, y[b], weight=weights)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            if sgd:
                for p, g in zip(params, grads):
                    p -= lr * g
            else:  # torch.optim.Adam's update, betas (0.9, 0.999), eps 1e-8 (written out: no optimizer import)
                moments[1][0] += 1
                t = moments[1][0]
                for p, g, (m, v) in zip(params, grads, moments[0]):
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    denom = (v.sqrt() / math.sqrt(1 - 0.999**t)).add_(1e-8)
                    p.addcdiv_(m, denom, value=-lr / (1 - 0.9**t))
        seen.append((loss.item(), (logits.argmax(dim=1) == y[b]).double().mean().item(), len(b)))
        if i in evaluate_after:
            with torch.no_grad():
                logits = model(x)
            after.append((nn.functional.cross_entropy(logits, y, weight=weights).item(),
                          (logits.argmax(dim=1) == y).double().mean().item()))
    return model.eval(), seen, after


def max_difference(got: list, model: nn.Module) -> float:
    """Largest difference between reported parameter tensors and ``model``'s (inf if the shapes differ)."""
    want = [p.detach() for p in model.parameters()]
    got = [torch.as_tensor(t).detach().double().cpu() for t in got]
    if len(got) != len(want) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(got, want)):
        return float("inf")
    return max(float((a - b.double()).abs().max()) for a, b in zip(got, want))


def small_problem(seed: int, n: int, n_val: int = 20):
    """Features with row i known by its first value (i / n), labels, validation rows, a small MLP
    (5-16-3, the grader's initial weights) and class weights that are not all equal."""
    g = torch.Generator().manual_seed(seed)
    x = 2.0 * torch.randn(n, 5, generator=g)
    x[:, 0] = torch.arange(n, dtype=torch.float32) / n
    y = torch.randint(0, 3, (n,), generator=g)
    x_val, y_val = torch.randn(n_val, 5, generator=g), torch.randint(0, 3, (n_val,), generator=g)
    x_val[:, 0] = 2.0 + torch.arange(n_val, dtype=torch.float32) / n_val
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    return x, y, x_val, y_val, model, torch.tensor([0.5, 2.0, 1.0])
