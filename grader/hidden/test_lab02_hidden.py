"""Hidden checks of lab 2: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values.
"""

import numpy as np
import pytest
import torch

from grader.kit import rel_error
from grader.judge.session import lab_fixture

lab = lab_fixture("lab02")
pytestmark = pytest.mark.hidden


@pytest.mark.points(1)
def test_backward_wide_net_large_batch_and_inputs_untouched(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    sizes, n = [40, 50, 30, 10], 64
    params = [(rng.standard_normal((m, k)) / np.sqrt(k), rng.standard_normal(m)) for k, m in zip(sizes[:-1], sizes[1:])]
    x, y = rng.standard_normal((n, sizes[0])), rng.random((n, sizes[-1]))
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
    tp = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in params]
    a = torch.tensor(x)
    for W, b in tp:
        a = torch.sigmoid(a @ W.T + b)
    (0.5 * ((torch.tensor(y) - a) ** 2).sum() / n).backward()
    for l, ((dW, db), (W, b)) in enumerate(zip(grads, tp), start=1):
        assert rel_error(dW, W.grad.numpy()) < 1e-7 and rel_error(db, b.grad.numpy()) < 1e-7, (
            f"backward() is wrong for a hidden wide net with a large batch (layer {l}): check that nothing "
            "assumes small or square layers"
        )
