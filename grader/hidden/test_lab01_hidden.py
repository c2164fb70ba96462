"""Hidden checks of lab 1: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values.
"""

import numpy as np
import pytest

from grader.checks import as_float
from grader.impl import lab_fixture

lab = lab_fixture("lab01")
pytestmark = pytest.mark.hidden


def _autograd(a, b):
    import torch

    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ((a_t + b_t) * (b_t + 1.0)).backward()
    return a_t.grad.item(), b_t.grad.item()


@pytest.mark.points(1)
def test_graph_backward_special_points(lab):
    for a, b in ((0.0, -1.0), (-1.0, 0.0), (1e3, -1e3), (0.5, 0.5)):
        got = [as_float(v, "derivative") for v in lab.graph_backward(a, b)]
        want = _autograd(a, b)
        assert np.allclose(got, want, rtol=1e-9, atol=1e-9), (
            "graph_backward is wrong at some of the hidden points (zeros, negatives, large values): "
            "check both derivatives for all real inputs"
        )


@pytest.mark.points(1)
def test_fit_accepts_tensors_and_other_lines(lab):
    import torch

    x = torch.linspace(-2, 2, 9)
    y = -0.5 * x + 0.25
    k, d, losses = lab.fit_linear_regression(x, y, lr=0.02, epochs=300, k0=0.0, d0=0.0)
    assert abs(as_float(k, "k") + 0.5) < 1e-2 and abs(as_float(d, "d") - 0.25) < 1e-2, (
        "fit_linear_regression does not recover a hidden line given as tensors: it must work for any "
        "1-D x, y (tensors or sequences), not only the lab's data"
    )
