"""Hidden checks of lab 5: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values. Every outcome is computed by
the grader: its own lecture model (grader/oracle/lab05.py: ``LectureCNN``) rebuilt from the
parameters the worker reports, its own forward pass, its own probabilities.
"""

import numpy as np
import pytest
import torch

from grader.judge.session import lab_fixture
from grader.oracle.lab05 import LectureCNN, build, expected_shapes, forward, forward_matches, he_tensors, own_proba, rebuild

lab = lab_fixture("lab05")
pytestmark = pytest.mark.hidden


@pytest.mark.points(1)
def test_build_cnn_other_image_sizes(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    g = torch.Generator().manual_seed(grader_seed)
    sizes = [int(rng.choice([80, 96, 112, 128])), int(rng.choice([44, 60, 92, 108]))]  # the second: 16 k + 12
    for size in sizes:
        for variant in ("fc", "gap1", "gap4"):
            where = f"build_cnn({variant!r}, image_size={size})"
            model = build(lab, variant, size)
            tensors = lab.grader.tensors(model)
            own = rebuild(variant, size, tensors)
            x = torch.rand(2, 1, size, size, generator=g)
            ok = own is not None and forward_matches(own, x, forward(lab, model, x, where))
            want_count = sum(p.numel() for p in LectureCNN(variant, size).parameters())
            ok = ok and int(lab.count_parameters(model)) == want_count
            assert ok, (
                f"{where} does not match the lecture's model at this image size (its parameter shapes, "
                "count_parameters or outputs): size the layers from image_size, rounding down at every pool"
            )


@pytest.mark.points(1)
def test_global_average_pool_other_shapes_and_dtypes(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    cases = [((1, 1, 1, 1), torch.float32), ((3, 2, 1, 7), torch.float64), ((2, 5, 9, 1), torch.float32),
             ((2, 3, 6, 10), torch.float16), ((4, 6, 5, 5), torch.float64)]
    for k, (shape, dtype) in enumerate(cases):
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        if k == len(cases) - 1:
            x = x.transpose(2, 3)  # a non-contiguous view
        x = x.to(dtype)
        got = lab.global_average_pool(x)
        want = x.double().mean(dim=(2, 3))
        tol = 2e-3 if dtype == torch.float16 else 1e-6
        ok = (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape) and got.dtype == dtype
              and torch.allclose(got.double(), want, atol=tol, rtol=tol))
        assert ok, (
            "global_average_pool is wrong for some inputs of other shapes or dtypes (1x1 or 1xW maps, "
            "non-contiguous tensors, float16 / float64): return the mean over H and W, shape (N, C), in the input's dtype"
        )


@pytest.mark.points(1)
def test_predict_other_thresholds_large_batch(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    size, n = 24, 123  # more images than one batch of predict_proba
    model = build(lab, "gap1", size)
    expected = expected_shapes("gap1", size)
    shapes = [tuple(t.shape) for t in lab.grader.tensors(model)]
    assert shapes == expected, "predict() could not be checked: build_cnn('gap1') is not the lecture's model"
    tensors = he_tensors(expected, grader_seed)
    tensors[2] = tensors[2] * 8.0  # spread the probabilities
    tensors[3] = torch.full_like(tensors[3], -float(tensors[2].sum()) * 0.05)
    lab.grader.probe("load_parameters", model, tensors)
    x = torch.rand(n, 1, size, size, generator=g) * torch.rand(n, 1, 1, 1, generator=g) * 2
    p = own_proba(rebuild("gap1", size, tensors), x)
    ps = p.sort().values
    thresholds = []
    for q in (0.15, 0.6, 0.85):
        near = range(max(0, int(q * (n - 1)) - 5), min(n - 1, int(q * (n - 1)) + 5))
        j = max(near, key=lambda i: float(ps[i + 1] - ps[i]))  # the widest gap nearby: no near-ties
        thresholds.append(float((ps[j] + ps[j + 1]) / 2))
    for threshold in thresholds:
        labels = lab.predict(model, x, threshold=threshold)
        ok = isinstance(labels, (torch.Tensor, np.ndarray, list, tuple))
        if ok:
            labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
            ok = tuple(labels.shape) == (n,) and torch.equal(labels.long(), (p > threshold).long())
        assert ok, (
            "predict() is wrong for some thresholds other than 0.5 or for more images than one batch: "
            "label 1 where the model's probability exceeds the threshold, one label per image"
        )
