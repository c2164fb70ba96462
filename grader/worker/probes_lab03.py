"""Lab 3 probes: grader models and tensors that record *how* student code ran, in the worker.

They run next to student code, so what they report is evidence a student could forge (README,
"Trust boundary"); the judge uses them only for checks of how ``train()`` / ``accuracy()`` run:

* :class:`OrderProbe` records the sample ids of every training forward pass (shuffling, seed);
* :class:`DeviceProbe` with :class:`Tagged` tensors records whether the model and every batch
  were sent somewhere with ``.to(device)`` (visible on a CPU-only machine too), and the train
  mode and grad mode of every forward pass;
* :class:`EpochRecorder` is an ``on_epoch_end`` callback that records the epoch number and the
  model's parameters at each call (the judge compares them with its own trajectory);
* :func:`path` builds the ``pathlib.Path`` argument of ``plot_losses``, :func:`text` reports
  the path it returned as a string, :func:`open_figures` counts matplotlib's open figures.

This module must not import anything from ``grader`` (only torch, the standard library and its
sibling ``probes``).
"""

from __future__ import annotations

import os

import torch
from torch import nn

UNMOVED = "not moved"


# --------------------------------------------------------------------------- sample order


class OrderProbe(nn.Module):
    """A tiny model that records the sample ids (column 0 of x) of every training forward pass."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.lin = nn.Linear(1, n_classes)
        self.batches: list[torch.Tensor] = []

    def forward(self, x):
        if torch.is_grad_enabled():
            self.batches.append(x[:, 0].detach().to("cpu").round().long())
        return torch.log_softmax(self.lin(x[:, 1:]), dim=1)


def order_probe(n_classes: int) -> OrderProbe:
    return OrderProbe(int(n_classes))


def batches(probe: OrderProbe) -> list:
    """The recorded batches of sample ids, as plain tensors."""
    return [torch.Tensor.as_subclass(b, torch.Tensor).clone() for b in probe.batches]


# --------------------------------------------------------------------------- device moves

# A CPU tensor that remembers where it was last sent with .to(): the CPU-only grader can see
# whether train() / accuracy() move their batches with .to(device) (on a GPU a forgotten .to
# is a device-mismatch error; on a CPU it would go unnoticed).


def _find_tag(obj):
    if isinstance(obj, Tagged):
        return getattr(obj, "_graded_device", UNMOVED)
    if isinstance(obj, (list, tuple)):
        for item in obj:
            tag = _find_tag(item)
            if tag is not None:
                return tag
    if isinstance(obj, dict):
        return _find_tag(list(obj.values()))
    return None


def _set_tag(obj, tag):
    if isinstance(obj, Tagged):
        obj._graded_device = tag
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _set_tag(item, tag)


class Tagged(torch.Tensor):
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


class DeviceProbe(nn.Sequential):
    """Records, for every forward pass, where its input was sent and where the model was sent.

    An ``nn.Sequential`` of one ``nn.Linear`` (and a log-softmax in ``forward``), so code that
    walks the layers of a Sequential (``layer_gradient_norms``) sees a normal model.
    """

    def __init__(self, n_in: int, n_classes: int):
        super().__init__(nn.Linear(n_in, n_classes))
        self.sent_to = UNMOVED
        self.calls: list[tuple] = []

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:
            self.sent_to = torch.device(device)
        return super().to(*args, **kwargs)

    def forward(self, x):
        self.calls.append((getattr(x, "_graded_device", UNMOVED) if isinstance(x, Tagged) else UNMOVED, self.sent_to,
                           bool(self.training), bool(torch.is_grad_enabled()), int(x.shape[0])))
        return torch.log_softmax(self[0](x), dim=1)


def device_probe(n_in: int, n_classes: int, seed: int) -> DeviceProbe:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return DeviceProbe(int(n_in), int(n_classes))


def tagged(x) -> Tagged:
    """A copy of the grader's tensor that remembers where it was sent (keep it as a handle)."""
    return x.detach().clone().as_subclass(Tagged)


def device_calls(probe: DeviceProbe) -> list:
    """[(where the batch was sent, where the model was sent)] per forward pass, as strings."""
    return [[str(data), str(model)] for data, model, *_ in probe.calls]


def modes(probe: DeviceProbe) -> list:
    """[(train mode, grad mode, batch size)] per forward pass."""
    return [[training, grad, size] for _, _, training, grad, size in probe.calls]


# --------------------------------------------------------------------------- evaluation mode


class ModeProbe(nn.Module):
    """A model whose prediction shows how it was called: sample ``i`` (``x[i, 0]`` = i) is
    predicted as class ``(base[i] + shift) % n_classes``, shift = 1 in training mode + 2 with
    gradients enabled + 4 for a batch of more than ``limit`` samples. The judge, who chose
    ``base`` and the labels, reads the mode from the accuracy it gets back (an outcome); nothing
    is recorded here. A zero-weight ``nn.Linear`` gives it parameters, as a real model has."""

    def __init__(self, base, limit: int, n_classes: int = 10):
        super().__init__()
        self.lin = nn.Linear(2, n_classes)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.zero_()
        self.register_buffer("base", torch.as_tensor(base, dtype=torch.long).clone())
        self.limit = int(limit)
        self.n_classes = int(n_classes)

    def forward(self, x):
        shift = int(self.training) + 2 * int(torch.is_grad_enabled()) + 4 * int(x.shape[0] > self.limit)
        ids = x[:, 0].round().long().clamp(0, len(self.base) - 1)
        pred = (self.base.to(x.device)[ids] + shift) % self.n_classes
        scores = 10.0 * nn.functional.one_hot(pred, self.n_classes).to(x.dtype) + self.lin(x)
        return torch.log_softmax(scores, dim=1)


def mode_probe(base, limit: int) -> ModeProbe:
    """In training mode, as after ``train()``."""
    return ModeProbe(base, limit).train()


# --------------------------------------------------------------------------- epoch callback


class EpochRecorder:
    """An ``on_epoch_end(epoch, model)`` callback: records the epoch and the model's parameters.

    With ``nudge``, it then adds ``nudge * epoch`` to every parameter of the model it was given:
    the model trained on from there carries the mark of each call (when, with which epoch, on
    which model), and the judge finds it in the *trained parameters* with its own replay.
    """

    def __init__(self, nudge: float = 0.0) -> None:
        self.calls: list = []
        self.nudge = float(nudge)

    def __call__(self, epoch, model) -> None:
        params = [p.detach().to("cpu").clone() for p in model.parameters()] if isinstance(model, nn.Module) else None
        self.calls.append((epoch if isinstance(epoch, int) else repr(epoch), params))
        if self.nudge and isinstance(model, nn.Module) and isinstance(epoch, (int, float)):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(self.nudge * epoch)


def epoch_recorder(nudge: float = 0.0) -> EpochRecorder:
    return EpochRecorder(nudge)


def epoch_calls(recorder: EpochRecorder) -> list:
    """[(epoch, [parameter tensors] or None)] in call order."""
    return [(epoch, params) for epoch, params in recorder.calls]


# --------------------------------------------------------------------------- returned values


def path(text: str):
    """A ``pathlib.Path`` (keep it as a handle): the argument a student's ``plot_losses`` gets."""
    import pathlib

    return pathlib.Path(str(text))


def open_figures() -> int:
    """How many matplotlib figures are open in the worker (0 if pyplot was never imported)."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    return len(plt.get_fignums()) if plt is not None else 0


def text(obj) -> str | None:
    """A returned path (str or os.PathLike) as a string; None for anything else."""
    if isinstance(obj, (str, os.PathLike)):
        try:
            return str(os.fspath(obj))
        except Exception:  # noqa: BLE001 - a broken __fspath__ is "not a path"
            return None
    return None
