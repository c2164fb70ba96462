"""Hidden checks of lab 1: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values.
"""

import numpy as np
import pytest

from grader.kit import as_float
from grader.judge.session import lab_fixture
from grader.oracle.lab01 import autograd_gradients, per_sample_gd

lab = lab_fixture("lab01")
pytestmark = pytest.mark.hidden


@pytest.mark.points(1)
def test_graph_backward_special_points(lab):
    for a, b in ((0.0, -1.0), (-1.0, 0.0), (1e3, -1e3), (0.5, 0.5)):
        got = [as_float(v, "derivative") for v in lab.graph_backward(a, b)]
        want = autograd_gradients(a, b)
        assert np.allclose(got, want, rtol=1e-9, atol=1e-9), (
            "graph_backward is wrong at some of the hidden points (zeros, negatives, large values): "
            "check both derivatives for all real inputs"
        )


@pytest.mark.points(1)
def test_fit_accepts_tensors_and_other_lines(lab):
    """A hidden line given as float32 tensors; k, d and the per-epoch losses must follow the grader's
    own per-sample gradient descent (float64), not only land near the line."""
    import torch

    x = torch.linspace(-2, 2, 9)
    y = -0.5 * x + 0.25
    k, d, losses = lab.fit_linear_regression(x, y, lr=0.02, epochs=300, k0=0.0, d0=0.0)
    k, d = as_float(k, "k"), as_float(d, "d")
    assert abs(k + 0.5) < 1e-2 and abs(d - 0.25) < 1e-2, (
        "fit_linear_regression does not recover a hidden line given as tensors: it must work for any "
        "1-D x, y (tensors or sequences), not only the lab's data"
    )
    want_k, want_d, want_losses = per_sample_gd(0.0, 0.0, 0.02, 300, x=x.double().tolist(), y=y.double().tolist())
    losses = np.asarray(losses, dtype=np.float64)
    assert (abs(k - want_k) < 1e-4 and abs(d - want_d) < 1e-4 and losses.shape == want_losses.shape
            and np.allclose(losses, want_losses, rtol=1e-3, atol=1e-6)), (
        "fit_linear_regression on a hidden line given as tensors: k, d or the per-epoch losses do not follow "
        "per-sample gradient descent from k0, d0 (one update per sample, mean loss before the updates per epoch)"
    )
