"""Lab 4 probes: evidence from inside the worker (forgeable; see probes.py).

Called by the judge as ``lab.grader.probe("lab04.<name>", ...)``. Only *how* the student's code
ran is observed here; every outcome (accuracy, structure, weights) is recomputed by the judge
from the parameter tensors the common ``parameters`` probe reports.
"""

from __future__ import annotations


def device_of(model) -> str:
    """The device of the model's first parameter (after ``train(..., device=...)``), as text."""
    for p in model.parameters():
        return str(p.device)
    return "no parameters"


class BatchRecorder:
    """A forward pre-hook on a model: per call, (model.training, grad enabled, the first input column)."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[bool, bool, object]] = []
        self._hook = model.register_forward_pre_hook(self._record)

    def _record(self, module, inputs) -> None:
        import torch

        x = inputs[0] if inputs else None
        first = x.detach().reshape(x.shape[0], -1)[:, 0].to("cpu").clone() if isinstance(x, torch.Tensor) and x.ndim >= 1 else None
        self.calls.append((bool(module.training), bool(torch.is_grad_enabled()), first))

    def remove(self) -> None:
        self._hook.remove()


def watch_batches(model) -> BatchRecorder:
    """Record every forward call of ``model`` from now on: the rows it sees (by their first
    feature, which the judge makes unique) and whether gradients were enabled (evidence of the
    mini-batch order, never a verdict)."""
    return BatchRecorder(model)
