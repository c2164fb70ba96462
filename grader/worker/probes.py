"""Grader code that runs inside the worker, next to student code: probes that report evidence.

Everything here runs in the untrusted process, so a student who rewrites it in memory can make it
report anything. The judge uses it only for facts that are then re-checked (parameters are used
to rebuild the model in the judge) or for *how* code ran (global state, figures, train mode,
sample order), which is named as forgeable in the threat model (README, "Trust boundary").

Probes are looked up by name: ``"parameters"`` here, ``"lab03.order_probe"`` in
``probes_lab03.py``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import sys

import torch
from torch import nn

# --------------------------------------------------------------------------- call options


@contextlib.contextmanager
def call_options(opts: dict, figures: list):
    """Options the judge sets around one call: ``cuda_hidden``, ``capture_figures``, ``seed``."""
    with contextlib.ExitStack() as stack:
        if opts.get("seed") is not None:
            import random

            import numpy as np

            seed = int(opts["seed"])
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
        if opts.get("cuda_hidden"):
            stack.enter_context(_cuda_hidden())
        if opts.get("capture_figures"):
            stack.enter_context(_capture_figures(figures))
        yield


@contextlib.contextmanager
def _cuda_hidden():
    """``torch.cuda.is_available()`` is False and ``.cuda()`` raises, as on a CPU-only machine."""

    def refuse(*_args, **_kwargs):
        raise AssertionError(
            ".cuda() was called although device='cpu' was asked for: use .to(device) with the "
            "function's `device` argument instead of .cuda()"
        )

    saved = (torch.cuda.is_available, torch.Tensor.cuda, torch.nn.Module.cuda)
    torch.cuda.is_available = lambda: False
    torch.Tensor.cuda = refuse
    torch.nn.Module.cuda = refuse
    try:
        yield
    finally:
        torch.cuda.is_available, torch.Tensor.cuda, torch.nn.Module.cuda = saved


@contextlib.contextmanager
def _capture_figures(figures: list):
    """Record every figure saved with ``savefig``: its axes, lines (data, label) and titles."""
    import matplotlib.figure

    original = matplotlib.figure.Figure.savefig

    def capture(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        figures.append(describe_figure(self))
        return result

    matplotlib.figure.Figure.savefig = capture
    try:
        yield
    finally:
        matplotlib.figure.Figure.savefig = original


def describe_figure(fig) -> dict:
    import numpy as np

    axes = []
    for ax in fig.axes:
        lines = []
        for line in ax.get_lines():
            lines.append({
                "label": str(line.get_label()),
                "x": np.asarray(line.get_xdata(), dtype=np.float64),
                "y": np.asarray(line.get_ydata(), dtype=np.float64),
            })
        axes.append({"title": str(ax.get_title()), "xlabel": str(ax.get_xlabel()), "ylabel": str(ax.get_ylabel()),
                     "lines": lines})
    return {"suptitle": str(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) else "", "axes": axes}


# --------------------------------------------------------------------------- global state


class GlobalState:
    """Snapshot of process-wide settings that student code must leave alone."""

    MODULES = ("torch", "torch.nn.functional", "torch.nn", "numpy", "torch.optim")

    def __init__(self) -> None:
        self.dtype = torch.get_default_dtype()
        self.threads = torch.get_num_threads()
        self.grad_enabled = torch.is_grad_enabled()
        self.attrs = {}
        for name in self.MODULES:
            module = importlib.import_module(name)
            self.attrs[name] = (module, {k: v for k, v in vars(module).items() if callable(v)})
        self.tensor_attrs = {k: v for k, v in vars(torch.Tensor).items() if callable(v)}
        self.module_attrs = {k: v for k, v in vars(torch.nn.Module).items() if callable(v)}

    def restore_and_diff(self) -> list[str]:
        """Put everything back; return what had been changed, in words."""
        changed = []
        if torch.get_default_dtype() != self.dtype:
            changed.append(f"torch.set_default_dtype({torch.get_default_dtype()})")
            torch.set_default_dtype(self.dtype)
        if torch.get_num_threads() != self.threads:
            changed.append(f"torch.set_num_threads({torch.get_num_threads()})")
            torch.set_num_threads(self.threads)
        if torch.is_grad_enabled() != self.grad_enabled:
            changed.append(f"torch.set_grad_enabled({torch.is_grad_enabled()}) left on")
            torch.set_grad_enabled(self.grad_enabled)
        for name, (module, saved) in self.attrs.items():
            for key, value in saved.items():
                now = vars(module).get(key)
                if now is value:
                    continue
                if getattr(now, "__wrapped__", None) is value and "torch._dynamo" in sys.modules:
                    saved[key] = now  # torch's own lazy wrap of manual_seed: the new baseline
                    continue
                changed.append(f"{name}.{key} was replaced")
                setattr(module, key, value)
        for owner, saved, label in ((torch.Tensor, self.tensor_attrs, "torch.Tensor"),
                                    (torch.nn.Module, self.module_attrs, "torch.nn.Module")):
            for key, value in saved.items():
                if vars(owner).get(key) is not value:
                    changed.append(f"{label}.{key} was replaced")
                    setattr(owner, key, value)
        return changed


# --------------------------------------------------------------------------- models


def parameters(model) -> list:
    """``[(name, tensor, requires_grad), ...]`` in ``model.parameters()`` order."""
    return [(name, p.detach().to("cpu").clone(), bool(p.requires_grad)) for name, p in model.named_parameters()]


def gradients(model) -> list:
    """``[(name, grad or None), ...]`` in ``model.parameters()`` order."""
    return [(name, None if p.grad is None else p.grad.detach().to("cpu").clone()) for name, p in model.named_parameters()]


def buffers(model) -> list:
    return [(name, b.detach().to("cpu").clone()) for name, b in model.named_buffers()]


_ATTRS = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding",
          "dilation", "groups", "dim", "start_dim", "end_dim", "p", "output_size", "negative_slope", "inplace",
          "padding_mode", "ceil_mode")


def modules(model) -> list:
    """Every submodule in ``model.modules()`` order: path, class, nearest torch.nn class, sizes."""
    out = []
    for path, m in model.named_modules():
        nn_type = next((c.__name__ for c in type(m).__mro__ if c.__module__.startswith("torch.nn")), "")
        info = {"path": path, "type": type(m).__name__, "nn_type": nn_type, "training": bool(m.training),
                "children": len(list(m.children())), "has_bias": getattr(m, "bias", None) is not None}
        for a in _ATTRS:
            v = getattr(m, a, None)
            if isinstance(v, (int, float, str, bool, tuple)):
                info[a] = v
        out.append(info)
    return out


def forward(model, x, train_mode: bool | None = None, grad: bool = False):
    """``model(x)`` on the grader's input (under ``no_grad`` unless ``grad``)."""
    if train_mode is not None:
        model.train(train_mode)
    with torch.set_grad_enabled(grad):
        return model(x)


def deepcopy(obj):
    return copy.deepcopy(obj)


def load_parameters(model, tensors: list) -> None:
    """Copy the grader's tensors into ``model.parameters()``, in order."""
    with torch.no_grad():
        for p, t in zip(model.parameters(), tensors):
            p.copy_(t.to(p.device, p.dtype))


def set_gradients(model, tensors: list) -> None:
    for p, t in zip(model.parameters(), tensors):
        p.grad = None if t is None else t.to(p.device, p.dtype).clone()


def training_flags(model) -> list:
    return [bool(m.training) for m in model.modules()]


def seed(value: int) -> None:
    """Seed ``random``, NumPy and torch in the worker (as the judge does before every check)."""
    import random

    import numpy as np

    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def tensor(x):
    """A plain tensor in the worker (for passing the same data to several calls by handle)."""
    return x


# --------------------------------------------------------------------------- grader-made modules

_LAYERS = {
    "Linear": lambda a: nn.Linear(a["in_features"], a["out_features"], bias=a.get("bias", True)),
    "Conv2d": lambda a: nn.Conv2d(a["in_channels"], a["out_channels"], tuple(a["kernel_size"]), stride=tuple(a["stride"]),
                                  padding=a["padding"] if isinstance(a["padding"], str) else tuple(a["padding"]),
                                  bias=a.get("bias", True)),
    "ReLU": lambda a: nn.ReLU(),
    "Sigmoid": lambda a: nn.Sigmoid(),
    "Tanh": lambda a: nn.Tanh(),
    "Flatten": lambda a: nn.Flatten(a.get("start_dim", 1), a.get("end_dim", -1)),
    "LogSoftmax": lambda a: nn.LogSoftmax(dim=a.get("dim")),
    "Softmax": lambda a: nn.Softmax(dim=a.get("dim")),
    "MaxPool2d": lambda a: nn.MaxPool2d(a["kernel_size"], a.get("stride")),
    "AdaptiveAvgPool2d": lambda a: nn.AdaptiveAvgPool2d(a["output_size"]),
    "Identity": lambda a: nn.Identity(),
    "Dropout": lambda a: nn.Dropout(a.get("p", 0.5)),
}


def sequential(layers: list, state: list, grads: list | None = None, train_mode: bool = True):
    """An ``nn.Sequential`` of the grader's: ``layers`` = [(name, kwargs)], ``state`` = parameters in order."""
    model = nn.Sequential(*[_LAYERS[name](dict(kwargs)) for name, kwargs in layers])
    load_parameters(model, state)
    if grads is not None:
        set_gradients(model, grads)
    model.train(train_mode)
    return model


class BatchRecorder:
    """A forward pre-hook on a model: per call, (model.training, grad enabled, the first value of
    every row of the batch: a feature for lab 4, a pixel for lab 5)."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[bool, bool, object]] = []
        self._hook = model.register_forward_pre_hook(self._record)

    def _record(self, module, inputs) -> None:
        x = inputs[0] if inputs else None
        first = x.detach().reshape(x.shape[0], -1)[:, 0].to("cpu").clone() if isinstance(x, torch.Tensor) and x.ndim >= 1 else None
        self.calls.append((bool(module.training), bool(torch.is_grad_enabled()), first))

    def remove(self) -> None:
        self._hook.remove()


def watch_batches(model) -> BatchRecorder:
    """Record every forward call of ``model`` from now on: which rows it sees (by their first
    value, which the judge makes unique), the training flag and grad mode (evidence of the
    mini-batch order and of how predictions run, never a verdict). Probes ``lab04.watch_batches``
    and ``lab05.watch_batches``."""
    return BatchRecorder(model)
