"""Hidden checks of lab 4: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values. As in the public checks, the
grader rebuilds its own MLP from the parameter tensors the worker reports and computes every
metric itself; the test subject's labels never reach the worker.
"""

import numpy as np
import pytest
import torch

from grader.judge.session import lab_fixture
from grader.plugin import grader_seed_of, seed_for_test
from grader.oracle.lab04 import layer_shapes, rebuild, run_pipeline

lab = lab_fixture("lab04")
pytestmark = pytest.mark.hidden

# The pipeline on two of the three training subjects, validation fraction 0.3, 10 epochs.
# Calibrated on grader seeds 1-5 and every choice of the left-out subject: reference (z-scoring)
# accuracy min 0.886, balanced min 0.856; the max-scaling implementation in tests/alt accuracy
# min 0.852, balanced min 0.821.
SUBSET_EPOCHS = 10
SUBSET_VAL_FRACTION = 0.3
MIN_SUBSET_ACCURACY = 0.80
MIN_SUBSET_BALANCED = 0.76


@pytest.fixture(scope="module")
def dti():
    from data.dti import load_dti

    return load_dti("offline")


@pytest.mark.points(1)
def test_mlp_other_sizes_computes_the_mlp(lab, grader_seed):
    gen = torch.Generator().manual_seed(grader_seed)
    for kwargs, sizes in ((dict(n_features=3, width=16, n_hidden=1, n_classes=2), [3, 16, 2]),
                          (dict(n_features=6, width=12, n_hidden=6, n_classes=5), [6] + [12] * 6 + [5])):
        model = lab.build_dti_mlp(**kwargs)
        tensors = lab.grader.tensors(model)
        assert [tuple(torch.as_tensor(t).shape) for t in tensors] == layer_shapes(sizes), (
            "build_dti_mlp with other arguments (hidden sizes): the layers do not follow n_features, width, "
            "n_hidden and n_classes (n_hidden hidden layers of width units, then the output layer)"
        )
        mine = rebuild(tensors, sizes, "build_dti_mlp")
        x = torch.randn(32, sizes[0], generator=gen)
        out = torch.as_tensor(lab.grader.forward(model, x.clone())).detach().float().cpu()
        with torch.no_grad():
            want = mine(x)
        assert out.shape == want.shape and torch.allclose(out, want, rtol=1e-4, atol=1e-5), (
            "build_dti_mlp with other arguments (hidden sizes): the network does not compute Linear and ReLU "
            "layers in order with its own parameters (ReLU after every hidden layer, logits out)"
        )


@pytest.mark.points(1)
def test_class_weights_more_classes(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    for k, absent in ((4, None), (5, 2)):
        counts = rng.integers(20, 400, k)
        if absent is not None:
            counts[absent] = 0
        y = torch.from_numpy(rng.permutation(np.repeat(np.arange(k), counts)))
        w = torch.as_tensor(lab.class_weights(y.clone(), k)).detach().double().cpu().reshape(-1)
        assert w.numel() == k and torch.isfinite(w).all() and (w >= 0).all(), (
            "class_weights with more classes (hidden): one finite, non-negative weight per class is expected, "
            "also for a class with no samples"
        )
        present = torch.from_numpy(counts > 0)
        product = w[present] * torch.from_numpy(counts[counts > 0]).double()
        assert (w[present] > 0).all() and torch.allclose(product, product.mean().expand_as(product), rtol=1e-4), (
            "class_weights with more classes (hidden): the weights are not inversely proportional to the class "
            "counts n_c for every K"
        )


@pytest.mark.points(1)
def test_normalizer_other_features_and_scales(lab, grader_seed):
    """7 features on scales 1e-3 .. 2e4; the first transform() call gets data of another distribution."""
    rng = np.random.default_rng(grader_seed)
    scales = np.array([1e-3, 0.5, 3.0, 40.0, 900.0, 2e4, 1.0])
    x_train = torch.from_numpy(rng.uniform(0.2, 1.0, (400, 7)) * scales).float()
    x_new = torch.from_numpy(rng.uniform(20.0, 60.0, (120, 7)) * scales).float()  # far outside the training range
    kept = x_train.clone()
    normalizer = lab.fit_normalizer(x_train)
    z_new = torch.as_tensor(normalizer.transform(x_new.clone())).double()
    z_train = torch.as_tensor(normalizer.transform(x_train.clone())).double()
    assert torch.equal(x_train, kept), "fit_normalizer changed its input in place (hidden data)"
    assert tuple(z_train.shape) == (400, 7) and tuple(z_new.shape) == (120, 7), (
        "Normalizer.transform does not keep the shape for data with another number of features (hidden)"
    )
    assert torch.isfinite(z_train).all() and torch.isfinite(z_new).all(), (
        "Normalizer.transform gives NaN or inf on hidden data with other feature scales"
    )
    big = z_train.abs().amax(dim=0)
    spread = z_train.amax(dim=0) - z_train.amin(dim=0)
    assert (big < 50).all() and (spread > 0.1).all(), (
        "Normalizer.transform on hidden data (other features and scales): the normalised training features are "
        "not of order one. The statistics must come from the rows passed to fit_normalizer (and only from "
        "them), for any number of features, not from constants or from the data given to transform()"
    )
    # The same per-feature scaling and shift for any data: fit z = a x + b on the training rows.
    x64 = x_train.double()
    for f in range(7):
        design = torch.stack([x64[:, f], torch.ones_like(x64[:, f])], dim=1)
        coef = torch.linalg.lstsq(design, z_train[:, f:f + 1]).solution
        predicted = x_new[:, f].double() * coef[0, 0] + coef[1, 0]
        ok = torch.allclose(predicted, z_new[:, f], rtol=1e-3, atol=1e-3 * float(big[f]))
        assert ok, (
            "Normalizer.transform on hidden data outside the training range: it must apply the same per-feature "
            "scale and shift (from the training statistics) to any data, whatever its range"
        )


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_pipeline_two_subjects_other_validation_fraction(lab, dti, request):
    from data.dti import TRAIN_SUBJECTS

    seed = seed_for_test(grader_seed_of(request.config), "lab04:hidden-subset")
    left_out = TRAIN_SUBJECTS[seed % len(TRAIN_SUBJECTS)]
    rows = torch.from_numpy(np.flatnonzero(dti.subjects_trainval != left_out))
    n = rows.numel()
    out = lab.split_train_val(dti.x_trainval[rows].clone(), dti.y_trainval[rows].clone(), SUBSET_VAL_FRACTION,
                              seed=seed)
    assert abs(len(out[3]) - SUBSET_VAL_FRACTION * n) <= 1 and len(out[1]) + len(out[3]) == n, (
        "split_train_val on hidden data (two training subjects, another validation fraction): the sets do not "
        "have the requested sizes"
    )
    run = run_pipeline(lab, dti, seed, epochs=SUBSET_EPOCHS, val_fraction=SUBSET_VAL_FRACTION, rows=rows)
    assert run.test["accuracy"] >= MIN_SUBSET_ACCURACY and run.test["balanced"] >= MIN_SUBSET_BALANCED, (
        "the pipeline trained on two of the training subjects with another validation fraction (hidden) does "
        "not classify the test subject well enough (accuracy or balanced accuracy, measured by the grader): "
        "check that every function works for any number of rows and any split"
    )
