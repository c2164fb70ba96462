"""Lab 5 probes: evidence from inside the worker (forgeable; see probes.py).

Called by the judge as ``lab.grader.probe("lab05.<name>", ...)``. The judge never takes a verdict
from these: the structure, outputs, gradients and accuracies of the student's models are
recomputed by the judge (its own reference model rebuilt from the reported parameter tensors,
finite differences of the loss for gradients). What is observed here is *how* the student's
code ran (train mode during training, the device of the parameters) and the words for a failure
message (which layer is called with which shapes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from probes import BatchRecorder, watch_batches  # noqa: F401 -- the probe labNN.watch_batches, shared

_CONV_ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
_DENSE_ATTRS = ("in_features", "out_features")


def is_module(obj) -> bool:
    """Whether ``obj`` is an ``nn.Module`` (for the words of a failure message)."""
    return isinstance(obj, nn.Module)


def trace(model, x, values: bool = False):
    """``model(x)`` without gradients, with every ``nn.Conv2d`` / ``nn.Linear`` call recorded in order.

    Returns ``(calls, out)``: ``calls`` = one dict per call: ``name`` (module path), ``type``
    ("Conv2d" or "Linear"), the layer's sizes (``in_channels``, ``kernel_size``, ``padding``, ...,
    ``in_features``, ``out_features``), ``has_bias``, ``input_shape`` and ``output_shape``, and
    with ``values`` the ``input`` and ``output`` tensors themselves; ``out`` = model(x).
    """
    calls: list[dict] = []
    handles = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue

        def hook(mod, inputs, output, name=name):
            conv = isinstance(mod, nn.Conv2d)
            rec = {"name": name or "model", "type": "Conv2d" if conv else "Linear",
                   "has_bias": getattr(mod, "bias", None) is not None,
                   "input_shape": tuple(inputs[0].shape), "output_shape": tuple(output.shape)}
            for attr in _CONV_ATTRS if conv else _DENSE_ATTRS:
                value = getattr(mod, attr, None)
                if isinstance(value, (int, str, tuple)):
                    rec[attr] = value
            if values:
                rec["input"] = inputs[0].detach().to("cpu").clone()
                rec["output"] = output.detach().to("cpu").clone()
            calls.append(rec)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return calls, out


class ModeRecorder:
    """A forward pre-hook on a model: ``calls`` = [(model.training, grad enabled)] per call."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[bool, bool]] = []
        self._hook = model.register_forward_pre_hook(self._record)

    def _record(self, module, inputs) -> None:
        self.calls.append((bool(module.training), bool(torch.is_grad_enabled())))

    def remove(self) -> None:
        self._hook.remove()


def watch_modes(model) -> ModeRecorder:
    """Record the training flag and grad mode of every forward call of ``model`` from now on."""
    return ModeRecorder(model)


def bce_gradients(model, x, y) -> list:
    """Zero the gradients, ``BCE(model(x).reshape(-1), y).backward()``; ``[(name, grad or None)]``.

    The judge checks every reported gradient against finite differences of the loss (the model's
    forward outputs at perturbed parameters), so these numbers are evidence only.
    """
    for p in model.parameters():
        p.grad = None
    with torch.enable_grad():
        p = model(x)
        loss = F.binary_cross_entropy(p.reshape(-1), y.to(p.device, p.dtype))
        loss.backward()
    return [(name, None if q.grad is None else q.grad.detach().to("cpu").clone()) for name, q in model.named_parameters()]


def devices(model) -> list[str]:
    """The device type of every parameter (``"cpu"``, ``"cuda"``), in parameter order."""
    return [p.device.type for p in model.parameters()]



class TrainFlip(nn.Module):
    """Identity in evaluation mode; in training mode it negates its input.

    A deterministic stand-in for dropout: a model that contains it trains to other parameters in
    training mode than in evaluation mode, so the judge sees the mode in the *trained parameters*
    (which it recomputes with its own optimiser), not in anything reported from here.
    """

    def forward(self, x):
        return -x if self.training else x


def mode_net(state: list):
    """The judge's small classifier with a :class:`TrainFlip` after the activation, with the
    judge's parameters ``state`` (in order), in evaluation mode (as after an evaluation)."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), TrainFlip(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 1), nn.Sigmoid())
    with torch.no_grad():
        for p, t in zip(model.parameters(), state):
            p.copy_(t.to(p.dtype))
    return model.eval()
