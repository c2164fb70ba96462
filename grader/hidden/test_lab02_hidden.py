"""Hidden checks of lab 2: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values. The gradients are the grader's
own (grader/oracle/lab02.py: torch autograd in float64).
"""

import numpy as np
import pytest

from grader.kit import rel_error
from grader.judge.session import lab_fixture
from grader.oracle.lab02 import autograd_grads, random_problem

lab = lab_fixture("lab02")
pytestmark = pytest.mark.hidden


@pytest.mark.points(1)
def test_backward_wide_net_large_batch_and_inputs_untouched(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    sizes, n = [40, 50, 30, 10], 64
    params, x, y = random_problem(rng, sizes, n)
    # Kept in the worker and read back after the call (a plain argument would be a copy there).
    params_h, x_h, y_h = lab.grader.keep(params), lab.grader.keep(x), lab.grader.keep(y)
    grads = lab.backward(params_h, x_h, y_h)
    now, x_now, y_now = (lab.grader.probe("tensor", h) for h in (params_h, x_h, y_h))
    same = len(now) == len(params) and all(
        np.array_equal(W1, W) and np.array_equal(b1, b) for (W1, b1), (W, b) in zip(now, params)
    )
    assert same and np.array_equal(x_now, x) and np.array_equal(y_now, y), (
        "backward() modified its inputs (params, x or y) in place: compute gradients without changing them"
    )
    for l, ((dW, db), (dW_want, db_want)) in enumerate(zip(grads, autograd_grads(params, x, y)), start=1):
        assert rel_error(dW, dW_want) < 1e-7 and rel_error(db, db_want) < 1e-7, (
            f"backward() is wrong for a hidden wide net with a large batch (layer {l}): check that nothing "
            "assumes small or square layers"
        )
