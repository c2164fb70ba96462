"""Lab 4's answer key: the grader's own MLP, its forward pass and metrics, the reference runs of the
student's pipeline, its own Adam and the replays of train(), the data of the function checks and the
slips in words (labs/lab04_dti.py; the rubric is grader/test_lab04_dti.py).

Everything here is the judge's: it computes outcomes from plain data the worker reports (the
parameter tensors of the trained model, the normalised features) and never trusts a number the
student's code returns. The points are the rubric's. The compound checks the rubric calls
(``check_*``: a split, the model's structure, the normaliser's statistics) assert with their own
messages; the ``*_slip`` functions return words for a failure the rubric words. The bars of the
rubric's experiment checks live in the calibration block below, where the bench that measured them
reads them too."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from grader.judge import remote
from grader.kit import samples_seen

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


def check_structure(lab, args: tuple, sizes: list[int], seed: int) -> None:
    """build_dti_mlp(*args): the worker's module report as evidence, the grader's rebuild as proof.

    The Linear layers, ReLU modules and last layer come from the worker's report of
    named_modules(); the grader then rebuilds its own ReLU MLP of ``sizes`` from the reported
    parameter tensors (exact shapes) and compares its outputs with the model's own forward pass.
    """
    model = lab.build_dti_mlp(*args)
    call = f"build_dti_mlp{args if args else '()'}"
    params = lab.grader.parameters(model)
    n_params = sum(int(np.prod(tuple(t.shape))) for _, t, _ in params)
    want = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    modules = lab.grader.modules(model)
    linears = [m for m in modules if m.get("nn_type") == "Linear"]
    shapes = [(m.get("in_features"), m.get("out_features")) for m in linears]
    assert shapes == list(zip(sizes[:-1], sizes[1:])), (
        f"{call}: the Linear layers map {shapes}, expected {list(zip(sizes[:-1], sizes[1:]))} "
        f"({'-'.join(map(str, sizes))}: n_hidden hidden layers of width units)"
    )
    assert n_params == want, f"{call} has {n_params} parameters, expected {want} (weights and biases of every layer)"
    layers = [m for m in modules if m.get("nn_type") != "Sequential"]
    assert layers and layers[-1].get("nn_type") == "Linear", (
        f"{call}: the last layer is {layers[-1].get('type') if layers else 'missing'}, expected the Linear output "
        "layer with no activation: the outputs are logits, nn.CrossEntropyLoss applies the softmax itself"
    )
    relus = sum(m.get("nn_type") == "ReLU" for m in layers)
    assert relus == len(sizes) - 2, (
        f"{call} has {relus} ReLU modules, expected one after each of the {len(sizes) - 2} hidden layers"
    )
    x = torch.randn(64, sizes[0], generator=torch.Generator().manual_seed(seed))
    out = torch.as_tensor(lab.grader.forward(model, x[:4].clone()))
    assert tuple(out.shape) == (4, sizes[-1]), f"{call} maps (4, {sizes[0]}) to {tuple(out.shape)}, expected (4, {sizes[-1]})"
    mine = rebuild([t for _, t, _ in params], sizes, call)
    out = torch.as_tensor(lab.grader.forward(model, x.clone())).detach().float().cpu()
    with torch.no_grad():
        want_out = mine(x)
    assert tuple(out.shape) == tuple(want_out.shape) and torch.allclose(out, want_out, rtol=1e-4, atol=1e-5), (
        f"{call}: model(x) differs from Linear and ReLU layers applied in order with the model's own parameters "
        f"({'-'.join(map(str, sizes))}: Linear, ReLU, ..., Linear): forward() must apply every layer once, in "
        "order, a ReLU after each hidden layer and no activation on the output (logits)"
    )


# --------------------------------------------------------------------------- the grader's data and checks of the functions


def identified_rows(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x of shape (n, 5) whose row i is (i, 2i, 0, 1, -i), and labels ordered by class (like the data)."""
    ids = torch.arange(n, dtype=torch.float32)
    return torch.stack([ids, 2 * ids, torch.zeros(n), torch.ones(n), -ids], dim=1), torch.arange(n) * 3 // n


def check_split(out, x: torch.Tensor, y: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """split_train_val's result on rows from :func:`identified_rows` is a split: two disjoint sets that
    hold every row once, the validation set of round(fraction * n) rows, labels with their rows.
    Returns (x_train, validation row ids)."""
    n = x.shape[0]
    assert len(out) == 4, f"split_train_val must return (x_train, y_train, x_val, y_val), got {len(out)} values"
    x_tr, y_tr, x_val, y_val = (torch.as_tensor(t) for t in out)
    tr, val = x_tr[:, 0].long(), x_val[:, 0].long()
    assert len(y_tr) == len(tr) and len(y_val) == len(val), "split_train_val: x and y of a set differ in length"
    overlap = set(tr.tolist()) & set(val.tolist())
    assert not overlap, (
        f"split_train_val(val_fraction={fraction}): {len(overlap)} rows are in both the training and the "
        "validation set; validation samples must never be trained on (the validation accuracy would be too optimistic)"
    )
    assert sorted(tr.tolist() + val.tolist()) == list(range(n)), (
        f"split_train_val(val_fraction={fraction}): the two sets together must hold every row exactly once "
        f"(got {len(tr)} + {len(val)} rows of {n})"
    )
    assert abs(len(val) - fraction * n) <= 1, (
        f"split_train_val(val_fraction={fraction}): the validation set has {len(val)} of {n} rows, expected {round(fraction * n)}"
    )
    assert torch.equal(y_tr.long(), y[tr]) and torch.equal(y_val.long(), y[val]), (
        "split_train_val: the labels no longer belong to their rows: shuffle x and y with the same permutation"
    )
    assert torch.equal(x_tr, x[tr]) and torch.equal(x_val, x[val]), "split_train_val: the rows of x were changed"
    return x_tr, val


def grader_split(dti, seed: int):
    """The grader's own 80/20 split of the training subjects' features (no labels): (x_train, x_val)."""
    perm = np.random.default_rng(seed).permutation(dti.x_trainval.shape[0])
    n_val = int(round(0.2 * perm.size))
    return dti.x_trainval[perm[n_val:]].clone(), dti.x_trainval[perm[:n_val]].clone()


def predict_problem(seed: int):
    """A 5-16-3 ReLU MLP with the grader's weights, 300 rows of features, and the grader's labels for
    them (argmax of the logits): (model, x, labels)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(300, 5)
    with torch.no_grad():
        want = model(x).argmax(dim=1)
    return model, x, want


def check_transform_alone(normalizer, x: torch.Tensor, name: str) -> None:
    """Normalizer.transform on the ``name`` set's features ``x`` leaves them unchanged and normalises
    each row the same whether it comes alone, with other rows (3 x + 100 appended) or with fewer (the
    first 50): otherwise transform() uses statistics of the data it is given, which leak into the input."""
    kept = x.clone()
    alone = torch.as_tensor(normalizer.transform(x)).float()
    assert torch.equal(x, kept), f"Normalizer.transform changed the {name} features in place: return a new tensor"
    mixed = torch.as_tensor(normalizer.transform(torch.cat([x, 3.0 * x + 100.0]))).float()[: x.shape[0]]
    few = torch.as_tensor(normalizer.transform(x[:50].clone())).float()
    same = torch.allclose(mixed, alone, rtol=1e-5, atol=1e-5) and torch.allclose(few, alone[:50], rtol=1e-5, atol=1e-5)
    assert same, (
        f"Normalizer.transform: the normalised {name} rows change when other rows are passed with them, so "
        f"transform() uses statistics of the data it is given ({name}-set statistics leak into the model's "
        "input): normalise with the statistics that fit_normalizer computed on the training set only"
    )


def check_stored_statistics(normalizer, x_val: torch.Tensor) -> None:
    """The Normalizer's stored mean and std (read back from the worker) have one entry per feature, a
    finite positive std, and transform(x_val) is the grader's own (x_val - mean) / std with them; a
    transform that divides by std without subtracting the mean is named."""
    mean = torch.as_tensor(normalizer.mean.fetch()).detach().double().cpu()
    std = torch.as_tensor(normalizer.std.fetch()).detach().double().cpu()
    assert tuple(mean.shape) == (5,) and tuple(std.shape) == (5,), (
        f"fit_normalizer: the Normalizer's mean and std must have one entry per feature, shape (5,); "
        f"got {tuple(mean.shape)} and {tuple(std.shape)}"
    )
    assert torch.isfinite(std).all() and (std > 0).all(), f"fit_normalizer: std must be finite and > 0, got {std.tolist()}"
    z_val = torch.as_tensor(normalizer.transform(x_val.clone())).double()
    want = (x_val.double() - mean) / std
    if not torch.allclose(z_val, want, rtol=1e-4, atol=1e-4 * float(want.abs().max())):
        hint = ""
        if torch.allclose(z_val, x_val.double() / std, rtol=1e-4, atol=1e-4 * float(want.abs().max())):
            hint = ": it divides by std but does not subtract the stored mean"
        pytest.fail("Normalizer.transform(x) differs from (x - mean) / std with the Normalizer's own mean and std "
                    f"(the attributes fit_normalizer stored){hint}")


def class_weights_slip(w: torch.Tensor, counts: list[int]) -> str:
    """Words for class weights ``w`` (float64, one per class) that are not proportional to 1 / n_c."""
    n = torch.tensor(counts, dtype=torch.float64)
    ratio = w / n
    if torch.allclose(ratio, ratio.mean().expand(len(counts)), rtol=1e-4):
        return "they are proportional to the class frequency n_c; invert it: w_c = N / (K n_c)"
    if torch.allclose(w, w.mean().expand(len(counts)), rtol=1e-4):
        return "they are all equal; the small class must get the largest weight"
    return "expected w_c proportional to 1 / n_c, e.g. N / (K n_c)"


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


def predict_agreement(lab, run: Run) -> float:
    """Share of the test voxels on which the student's predict() (the trained model in the worker, the
    normalised features on the CPU) agrees with the grader's own forward pass; 0 if the shapes differ."""
    x_test = torch.as_tensor(run.x_test).detach().float().cpu()
    got = torch.as_tensor(np.asarray(lab.predict(run.handle, x_test.clone()))).long().reshape(-1)
    want = torch.from_numpy(grader_predict(run.model, x_test))
    return float((got == want).double().mean()) if got.shape == want.shape else 0.0


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


# --------------------------------------------------------------------------- the grader's replays of train()


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


def small_problem(seed: int, n: int, n_val: int = 20, scale: float = 2.0):
    """Features with row i known by its first value (i / n), the others ``scale`` times standard
    normal, labels, validation rows, a small MLP (5-16-3, the grader's initial weights) and class
    weights that are not all equal."""
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, 5, generator=g)
    x[:, 0] = torch.arange(n, dtype=torch.float32) / n
    y = torch.randint(0, 3, (n,), generator=g)
    x_val, y_val = torch.randn(n_val, 5, generator=g), torch.randint(0, 3, (n_val,), generator=g)
    x_val[:, 0] = 2.0 + torch.arange(n_val, dtype=torch.float32) / n_val
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    return x, y, x_val, y_val, model, torch.tensor([0.5, 2.0, 1.0])


def adam_slip(got: list, start: nn.Module, x, y, lr: float, batches: list[list[int]], tol: float) -> str | None:
    """The slip of the lr check that the reported parameters ``got`` match within ``tol`` (words for
    the student), or None: Adam at its default lr 1e-3 (lr ignored), SGD, a new Adam every epoch.
    The replays run without class weights, on the mini-batches ``batches``, in the order of the list."""
    slips = (
        ("lr ignored", lambda: adam_replay(start, x, y, None, 1e-3, batches)[0],
         f"train() ignores lr: the parameters match Adam at its default lr 1e-3, not at lr={lr}; pass it on: "
         "torch.optim.Adam(model.parameters(), lr=lr)"),
        ("sgd", lambda: adam_replay(start, x, y, None, lr, batches, sgd=True)[0], "the optimizer is SGD; the lecture uses Adam"),
        ("reset", lambda: adam_replay(start, x, y, None, lr, batches, reset=True)[0],
         "Adam is created anew every epoch, which resets its moment estimates: create it once before the loop"),
    )
    for _, replay, hint in slips:
        if max_difference(got, replay()) <= tol:
            return hint
    return None


def train_watched(lab, start: nn.Module, x, y, x_val, y_val, **kwargs):
    """train() in the worker on a copy of the grader's ``start`` model (from :func:`small_problem`),
    with a probe that records every forward call (``lab04.watch_batches``: evidence of the order only).

    Returns (the trained model's handle, the history, the row indices of each call with gradients on,
    in order).
    """
    model = lab.grader.to_worker(start)
    recorder = lab.grader.probe("lab04.watch_batches", model)
    history = lab.train(model, x.clone(), y.clone(), x_val.clone(), y_val.clone(), device="cpu", **kwargs)
    return model, history, [ids for _, _, ids in samples_seen(recorder.calls.fetch(), x.shape[0], grad=True)]


def epochs_of(batches: list[list[int]], n: int, batch_size: int) -> tuple[list[list[list[int]]], int]:
    """The mini-batches (row indices) fed with gradients on, cut into epochs of ``n`` rows; a pass over
    all ``n`` rows at once when batch_size < n (an evaluation with gradients on) is left out.

    Returns (the mini-batches of each epoch, the rows of the last epoch left unfinished: 0 if whole).
    """
    per_epoch: list[list[list[int]]] = []
    rows = 0
    for b in batches:
        if len(b) == n and batch_size < n:
            continue
        if rows == 0:
            per_epoch.append([])
        per_epoch[-1].append(b)
        rows = (rows + len(b)) % n
    return per_epoch, rows


def documented_definitions(start: nn.Module, x, y, weights, lr: float, per_epoch: list[list[list[int]]]):
    """The grader's replay of train() on the mini-batches ``per_epoch`` (its own Adam, class-weighted
    cross-entropy) and from it, per documented definition of history['train_loss'] / ['train_acc'],
    the (loss, accuracy) of each epoch.

    Returns (the replayed model, {definition in words: [(loss, accuracy) per epoch]}): the whole
    training set after the epoch, the mean over the epoch's mini-batches weighted by their rows, and
    their plain mean (each mini-batch's values taken before its step).
    """
    n = x.shape[0]
    ends = np.cumsum([len(epoch) for epoch in per_epoch]) - 1
    mine, seen, after = adam_replay(start, x, y, weights, lr, sum(per_epoch, []), evaluate_after=frozenset(ends.tolist()))
    defs: dict[str, list[tuple[float, float]]] = {"after the epoch, on the whole training set": after}
    first = 0
    for epoch in per_epoch:
        part = seen[first:first + len(epoch)]
        first += len(epoch)
        losses, accs, sizes = (np.array(v, dtype=np.float64) for v in zip(*part))
        defs.setdefault("the mean over the epoch's mini-batches, weighted by their rows", []).append(
            (float(losses @ sizes / n), float(accs @ sizes / n)))
        defs.setdefault("the mean over the epoch's mini-batches", []).append((float(losses.mean()), float(accs.mean())))
    return mine, defs


def matching_definitions(values: list[float], defs: dict, col: int, atol: float | None, rtol: float) -> list[str]:
    """The definitions of :func:`documented_definitions` whose column ``col`` (0 loss, 1 accuracy)
    equals ``values`` in every epoch: within ``atol``, or if it is None within ``rtol`` relative
    (to at least 1e-3)."""
    return [name for name, pairs in defs.items()
            if all(abs(v - p[col]) <= (atol if atol is not None else rtol * max(abs(p[col]), 1e-3))
                   for v, p in zip(values, pairs))]


def definitions_in_words(defs: dict, col: int) -> str:
    """Each definition of :func:`documented_definitions` with its values of column ``col``, per epoch."""
    return "; ".join(f"{name}: {[round(p[col], 4) for p in pairs]}" for name, pairs in defs.items())


def own_evaluation(model: nn.Module, x, y, weights) -> tuple[float, float, float]:
    """The grader's evaluation of its rebuilt ``model`` on (x, y): (accuracy, the ``weights``-weighted
    cross-entropy, the unweighted cross-entropy)."""
    x = torch.as_tensor(x).detach().float().cpu()
    y = torch.as_tensor(y).long().cpu()
    weights = torch.as_tensor(weights).detach().float().cpu().reshape(-1)
    with torch.no_grad():
        logits = model(x)
    acc = float((logits.argmax(dim=1) == y).double().mean())
    return acc, float(nn.functional.cross_entropy(logits, y, weight=weights)), float(nn.functional.cross_entropy(logits, y))


def validation_problem(data, seed: int):
    """2000 training and 500 validation rows of the training subjects (the grader's own z-scoring:
    the check is about train() only) and a 5-32-32-3 ReLU MLP with the grader's initial weights."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(data.x_trainval.shape[0])
    x = data.x_trainval
    x = (x - x.mean(0)) / x.std(0)
    x_tr, y_tr = x[perm[:2000]].clone(), data.y_trainval[perm[:2000]].clone()
    x_val, y_val = x[perm[2000:2500]].clone(), data.y_trainval[perm[2000:2500]].clone()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    return x_tr, y_tr, x_val, y_val, model


def train_copy(lab, handle, x_tr, y_tr, x_val, y_val, seed: int) -> torch.Tensor:
    """train() for 2 epochs (batch 256, the worker's generators seeded with ``seed``) on a fresh copy
    of the worker's model ``handle``; the trained parameters flattened into one float32 vector."""
    m = lab.grader.probe("deepcopy", handle)
    with remote.options(seed=seed):
        lab.train(m, x_tr.clone(), y_tr.clone(), x_val.clone(), y_val.clone(), epochs=2, batch_size=256,
                  device="cpu", seed=seed)
    return torch.cat([torch.as_tensor(t).detach().float().cpu().flatten() for t in lab.grader.tensors(m)])
