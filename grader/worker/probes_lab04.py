"""Lab 4 probes: evidence from inside the worker (forgeable; see probes.py).

Called by the judge as ``lab.grader.probe("lab04.<name>", ...)``. Only *how* the student's code
ran is observed here; every outcome (accuracy, structure, weights) is recomputed by the judge
from the parameter tensors the common ``parameters`` probe reports.
"""

from __future__ import annotations

from probes import BatchRecorder, watch_batches  # noqa: F401 -- the probe labNN.watch_batches, shared


def device_of(model) -> str:
    """The device of the model's first parameter (after ``train(..., device=...)``), as text."""
    for p in model.parameters():
        return str(p.device)
    return "no parameters"

