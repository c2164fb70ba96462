"""Grading of lab 4: brain-tissue classification from DTI features (labs/lab04_dti.py).

The grader runs the student's pipeline (split_train_val, fit_normalizer, class_weights,
build_dti_mlp, train) in the lab's worker process on the offline DTI data (``load_dti("offline")``,
simulated, cached), then rebuilds its own 5-100-100-100-100-3 ReLU MLP from the parameter tensors
of the trained model and computes every metric with that model on the held-out test subject
100206: accuracy, balanced accuracy (the mean of the per-class recalls, so a model that ignores
the small CC genu class fails) and, on a class-imbalanced training set that the grader draws
itself, the gain in balanced accuracy from the class weights. The test subject's labels never
reach the worker: only its features go through the student's Normalizer.transform, and the
normalised features come back as data. The numbers train() returns are checked against the
grader's own evaluation: the last validation loss and accuracy on the pipeline, and the training
loss and accuracy on a small problem whose mini-batches the grader replays with its own Adam.
Training on the real data happens three times per grading: one full pipeline, shared by the
accuracy and history checks (module-scoped fixture), and a pair on the imbalanced set.

Rubric (28 points on a CPU machine, +1 on a GPU):
    split 2, split rejects bad arguments (after a correct split) 1, normaliser uses training
    statistics 2, constant feature 1, class weights 2, class weights with an absent class 1,
    model structure 2, history 1, history matches the grader's evaluation 1, train is Adam at the
    given lr 1, train_loss and train_acc are a documented definition 1, mini-batches in a new order
    every epoch 1, validation set never trained on 2, predict 1, confusion matrix 1, test-subject
    accuracy 3, test-subject balanced accuracy 2, class weights on an imbalanced training set 2,
    no hard-coded device 1, cuda pipeline 1 (GPU only).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from grader.kit import (
    as_float, assert_no_hard_coded_device, cuda_reported_unavailable, epoch_orders, expect_value_error,
)
from grader.judge.session import lab_fixture
from grader.oracle.lab04 import (  # the answer key: the grader's model, data, reference runs and replays
    MIN_IMBALANCED_BALANCED, MIN_TEST_ACCURACY, MIN_TEST_BALANCED, MIN_WEIGHT_GAIN, SIZES, Run,
    adam_replay, adam_slip, check_split, check_stored_statistics, check_structure, check_transform_alone,
    class_weights_slip, definitions_in_words, describe, documented_definitions, epochs_of, grader_split,
    identified_rows, matching_definitions, max_difference, own_evaluation, predict_agreement, predict_problem,
    run_imbalanced, run_pipeline, small_problem, train_copy, train_watched, validation_problem,
)
from grader.plugin import grader_seed_of, seed_for_test

lab = lab_fixture("lab04")


def run_seed(request, name: str) -> int:
    """Seed of one shared training run: the grader seed mixed with the run's name."""
    return seed_for_test(grader_seed_of(request.config), f"lab04:{name}")


@pytest.fixture(scope="module")
def dti():
    from data.dti import load_dti

    return load_dti("offline")


@pytest.fixture(scope="module")
def pipeline(lab, dti, request) -> Run:
    """One run of the student's full pipeline on the CPU (shared by several checks)."""
    return run_pipeline(lab, dti, run_seed(request, "pipeline"))


@pytest.fixture(scope="module")
def imbalanced(lab, dti, request) -> tuple[dict, dict]:
    """(with class weights, without) on the grader's imbalanced training set, same seed."""
    seed = run_seed(request, "imbalanced")
    return run_imbalanced(lab, dti, seed, weighted=True), run_imbalanced(lab, dti, seed, weighted=False)


# --------------------------------------------------------------------------- Task 4.1: split


@pytest.mark.points(2)
def test_split_train_val(lab, grader_seed):
    n = 1000
    x, y = identified_rows(n)  # row i is (i, 2i, 0, 1, -i); first third class 0, ...
    for fraction in (0.2, 0.3):
        out = lab.split_train_val(x.clone(), y.clone(), val_fraction=fraction, seed=grader_seed)
        _, val = check_split(out, x, y, fraction)
        last_block = (val >= n - len(val)).float().mean().item()
        assert last_block < 0.5, (
            f"split_train_val: {last_block:.0%} of the validation rows are the last rows of x: the split must be "
            "random (the rows are ordered by subject and class; the last 20% would be one subject's white matter)"
        )
    again = lab.split_train_val(x.clone(), y.clone(), 0.2, seed=grader_seed)[2]
    other = lab.split_train_val(x.clone(), y.clone(), 0.2, seed=grader_seed + 1)[2]
    first = lab.split_train_val(x.clone(), y.clone(), 0.2, seed=grader_seed)[2]
    assert torch.equal(torch.as_tensor(again), torch.as_tensor(first)), (
        "split_train_val is not deterministic for a fixed seed: draw the permutation from a generator seeded with "
        "`seed` (torch.Generator().manual_seed(seed) or np.random.default_rng(seed)), not from the global RNG"
    )
    assert not torch.equal(torch.as_tensor(other), torch.as_tensor(first)), (
        "split_train_val ignores its seed: seed the generator of the permutation with `seed`"
    )


@pytest.mark.points(1)
def test_split_train_val_rejects_bad_arguments(lab, grader_seed):
    """First a valid split (60 rows, val_fraction 0.25) that must be correct, then bad arguments that
    must raise ValueError: a function that only raises earns nothing."""
    x, y = identified_rows(60)
    y = y[torch.randperm(60, generator=torch.Generator().manual_seed(grader_seed))]
    try:
        out = lab.split_train_val(x.clone(), y.clone(), 0.25, seed=grader_seed)
    except ValueError as exc:
        pytest.fail(f"split_train_val(x with 60 rows, y with 60 labels, val_fraction=0.25) raised ValueError "
                    f"({str(exc).strip()[:200]}): these arguments are valid; raise only for different lengths or "
                    "val_fraction outside (0, 1)")
    check_split(out, x, y, 0.25)
    expect_value_error(lambda: lab.split_train_val(x.clone(), y[:45].clone(), 0.2, seed=grader_seed),
                       "split_train_val(x with 60 rows, y with 45 labels)",
                       "x and y must have one label per row; check their lengths before splitting")
    for fraction in (0.0, 1.0, 1.5, -0.2):
        expect_value_error(lambda: lab.split_train_val(x.clone(), y.clone(), fraction, seed=grader_seed),
                           f"split_train_val(val_fraction={fraction})",
                           "val_fraction must be in (0, 1): otherwise one of the two sets is empty or does not exist")


# --------------------------------------------------------------------------- Task 4.2: normalisation


@pytest.mark.points(2)
def test_normalizer_uses_training_statistics(lab, dti, grader_seed):
    x_train, x_val = grader_split(dti, grader_seed)
    x_test = dti.x_test.clone()
    kept = x_train.clone()
    normalizer = lab.fit_normalizer(x_train)
    assert torch.equal(x_train, kept), "fit_normalizer changed x_train in place: compute the statistics without modifying it"
    z_train = torch.as_tensor(normalizer.transform(x_train.clone())).float()
    assert tuple(z_train.shape) == tuple(x_train.shape), (
        f"Normalizer.transform must keep the shape {tuple(x_train.shape)}, got {tuple(z_train.shape)}"
    )
    assert torch.isfinite(z_train).all(), "Normalizer.transform gives NaN or inf on the training set"
    big = z_train.abs().amax(dim=0)
    spread = z_train.amax(dim=0) - z_train.amin(dim=0)
    for f, name in enumerate(("T1w", "FA", "MD", "AD", "RD")):
        assert big[f] < 50 and spread[f] > 0.1, (
            f"Normalizer.transform: the normalised training feature {name} spans [{z_train[:, f].min():.3g}, "
            f"{z_train[:, f].max():.3g}]; every feature should end up of order one (z-score with the training "
            "mean and standard deviation, or division by the training maximum)"
        )
    for name, x in (("validation", x_val), ("test", x_test)):
        check_transform_alone(normalizer, x, name)
    check_stored_statistics(normalizer, x_val)


@pytest.mark.points(1)
def test_normalizer_constant_feature(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    x = torch.rand(200, 5, generator=g) * torch.tensor([1000.0, 1.0, 2.0, 2.0, 2.0])
    x[:, 1] = 0.5  # a constant feature
    x[:, 3] = 0.0  # a constant zero feature
    normalizer = lab.fit_normalizer(x.clone())
    x_new = torch.rand(30, 5, generator=g)
    for name, data in (("the training set", x), ("new data", x_new)):
        z = torch.as_tensor(normalizer.transform(data.clone())).float()
        bad = [f for f in range(5) if not torch.isfinite(z[:, f]).all()]
        assert not bad, (
            f"Normalizer.transform gives NaN or inf on {name} in the constant feature column(s) {bad}: "
            "a constant training feature has standard deviation 0 (and a zero column has maximum 0); "
            "fit_normalizer must replace a zero scale by 1 instead of dividing by zero"
        )
    z = torch.as_tensor(normalizer.transform(x_new.clone())).float()
    for f in (1, 3):
        biggest = float(z[:, f].abs().max())
        assert biggest <= 10.0, (
            f"Normalizer.transform on new data: the constant training feature {f} (new values in [0, 1]) comes out "
            f"as large as {biggest:.3g}: a constant training feature must get the scale 1 (std 1), not a tiny "
            "epsilon, or any new value is blown up"
        )


# --------------------------------------------------------------------------- Task 4.3: class balance


@pytest.mark.points(2)
def test_class_weights_inverse_frequency(lab, grader_seed):
    rng = np.random.default_rng(grader_seed)
    counts = [int(rng.integers(300, 600)), int(rng.integers(40, 90)), int(rng.integers(150, 300))]
    y = torch.from_numpy(rng.permutation(np.repeat(np.arange(3), counts)))
    got = lab.class_weights(y.clone(), 3)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32, (
        f"class_weights must return a float32 tensor (the dtype of the logits nn.CrossEntropyLoss weighs), got "
        f"{got.dtype if isinstance(got, torch.Tensor) else type(got).__name__}"
    )
    w = got.detach().double().cpu()
    assert tuple(w.shape) == (3,), f"class_weights(y, 3) must return one weight per class, shape (3,), got {tuple(w.shape)}"
    assert torch.isfinite(w).all() and (w > 0).all(), f"class_weights for class counts {counts}: got {w.tolist()}, expected finite positive weights"
    product = w * torch.tensor(counts, dtype=torch.float64)
    if not torch.allclose(product, product.mean().expand(3), rtol=1e-4):
        pytest.fail(f"class_weights for class counts {counts}: got {np.round(w.numpy(), 4).tolist()}: "
                    f"{class_weights_slip(w, counts)}")


@pytest.mark.points(1)
def test_class_weights_absent_class(lab, grader_seed):
    """A class with no samples, in the middle and at the end of 0..K-1 (K = 3 and 4): the result still
    has shape (K,), that class gets weight 0, the others stay proportional to 1 / n_c."""
    rng = np.random.default_rng(grader_seed)
    for k, absent in ((3, 1), (3, 2), (4, 3), (4, 0)):
        counts = rng.integers(40, 400, k)
        counts[absent] = 0
        y = torch.from_numpy(rng.permutation(np.repeat(np.arange(k), counts)))
        call = f"class_weights(y, {k}) with no sample of class {absent} (counts {counts.tolist()})"
        got = lab.class_weights(y.clone(), k)
        w = torch.as_tensor(got).detach().double().cpu()
        assert tuple(w.shape) == (k,), (
            f"{call} returned shape {tuple(w.shape)}; expected ({k},), one weight per class whatever classes occur "
            "in y (torch.bincount(y, minlength=n_classes) counts absent classes too)"
        )
        assert torch.isfinite(w).all(), (
            f"{call} gave {w.tolist()}: every weight must be finite (a class with n_c = 0 gets weight 0, not 1/0 = inf)"
        )
        assert w[absent] == 0, (
            f"{call} gave class {absent} the weight {float(w[absent]):.4g}: a class with no samples gets weight 0 "
            "(it has no term in the loss; any other value is an arbitrary choice)"
        )
        present = torch.from_numpy(counts > 0)
        product = w[present] * torch.from_numpy(counts[counts > 0]).double()
        assert (w[present] > 0).all() and torch.allclose(product, product.mean().expand_as(product), rtol=1e-4), (
            f"{call} gave {np.round(w.numpy(), 4).tolist()}: the present classes' weights must still be proportional "
            "to 1 / n_c"
        )


# --------------------------------------------------------------------------- Task 4.4: the network


@pytest.mark.points(2)
def test_model_structure(lab, grader_seed):
    for args, sizes in (((), SIZES), ((7, 20, 2, 4), [7, 20, 20, 4])):
        check_structure(lab, args, sizes, grader_seed)


# --------------------------------------------------------------------------- Task 4.5: training


@pytest.mark.points(1)
@pytest.mark.timeout(300)
def test_train_history(pipeline):
    h = pipeline.history
    assert isinstance(h, dict), f"train() must return a dict of per-epoch lists, got {type(h).__name__}"
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert key in h, f"train() history has no {key!r} entry (keys: {sorted(h)})"
        values = [as_float(v, f"history[{key!r}] entry") for v in h[key]]
        assert len(values) == pipeline.epochs, (
            f"train(epochs={pipeline.epochs}) returned {len(values)} values of {key!r}, expected one per epoch"
        )
        if key.endswith("acc"):
            assert all(0.0 <= v <= 1.0 for v in values), f"history[{key!r}] must be accuracies in [0, 1], got {values[:3]} ..."
    assert h["train_loss"][-1] < h["train_loss"][0], (
        f"the training loss did not decrease: {h['train_loss'][0]:.4f} -> {h['train_loss'][-1]:.4f}"
    )


@pytest.mark.points(1)
@pytest.mark.timeout(300)
def test_train_history_matches_own_evaluation(pipeline):
    """The last validation loss and accuracy train() reports equal the grader's own evaluation of the
    trained model (its parameters in the grader's MLP) on the same validation features, with the
    class weights passed to train(): the validation loss is the class-weighted cross-entropy."""
    h = pipeline.history
    acc, loss, plain = own_evaluation(pipeline.model, pipeline.x_val, pipeline.y_val, pipeline.weights)
    got_acc = as_float(h["val_acc"][-1], "history['val_acc'][-1]")
    got_loss = as_float(h["val_loss"][-1], "history['val_loss'][-1]")
    assert abs(got_acc - acc) <= 1e-3, (
        f"history['val_acc'][-1] = {got_acc:.4f}, but the trained model classifies {acc:.4f} of the validation "
        "voxels correctly: evaluate the whole validation set after the epoch (argmax of the logits == label)"
    )
    if abs(got_loss - loss) > 1e-3 * max(1.0, loss):
        hint = ""
        if abs(got_loss - plain) <= 1e-3 * max(1.0, plain):
            hint = ": it is the unweighted cross-entropy; use the class weight for the validation loss too"
        pytest.fail(
            f"history['val_loss'][-1] = {got_loss:.4f}, but the trained model's class-weighted cross-entropy on the "
            f"validation set is {loss:.4f}{hint}"
        )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_minibatches_in_new_order_each_epoch(lab, grader_seed):
    """The rows the model sees with gradients enabled (a forward pre-hook in the worker, evidence of
    the order only): each epoch is ceil(N / batch_size) mini-batches of batch_size rows (the last one
    smaller) that cover every training row once, in a new random order every epoch."""
    n, batch_size, epochs = 100, 32, 3
    x, y, x_val, y_val, start, _ = small_problem(grader_seed, n, scale=1.0)  # row i is known by its first feature
    _, _, batches = train_watched(lab, start, x, y, x_val, y_val, epochs=epochs, batch_size=batch_size, seed=grader_seed)
    orders = epoch_orders(batches, n, batch_size, epochs, "rows")
    assert orders[0] != list(range(n)), (
        "train(): the first epoch visits the rows in their stored order; shuffle them (the data come ordered by "
        "subject and class, so every mini-batch would hold one class)"
    )
    assert all(a != b for a, b in zip(orders, orders[1:])), (
        "train(): two epochs visit the rows in the same order; draw a new random order every epoch (one "
        "generator seeded once with `seed`, not re-seeded per epoch)"
    )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_is_adam_at_the_given_lr(lab, grader_seed):
    """Full-batch training (batch_size >= N: one step per epoch, whatever the order) for 3 epochs at
    lr 0.02 and at lr 0.005, without class weights, against the grader's own Adam on the
    cross-entropy: every parameter within 0.05 lr.

    Over 30 seeds the solution is within 6e-6 lr of it and tests/alt within 2.7e-5 lr; Adam at its
    default lr 1e-3 (lr ignored) is >= 2.4 lr away, SGD >= 2.9 lr, a new Adam every epoch >= 0.098 lr."""
    x, y, x_val, y_val, start, _ = small_problem(grader_seed, 40)
    epochs = 3
    for lr in (0.02, 0.005):
        model = lab.grader.to_worker(start)
        lab.train(model, x.clone(), y.clone(), x_val.clone(), y_val.clone(), epochs=epochs, lr=lr, batch_size=64,
                  device="cpu", seed=grader_seed)
        got = lab.grader.tensors(model)
        full = [list(range(x.shape[0]))] * epochs
        diff = max_difference(got, adam_replay(start, x, y, None, lr, full)[0])
        if diff <= 0.05 * lr:
            continue
        if max_difference(got, start) == 0:
            pytest.fail("train(): the model's parameters did not change (optimizer.step() on model.parameters()?)")
        hint = adam_slip(got, start, x, y, lr, full, tol=0.05 * lr)
        if hint is not None:
            pytest.fail(f"train(): after {epochs} full-batch epochs at lr={lr}: {hint}")
        pytest.fail(
            f"train(): after {epochs} full-batch epochs (batch_size >= N) at lr={lr} without class weights, the "
            f"parameters differ from torch.optim.Adam(lr={lr}) on the cross-entropy of model(x) and y by up to "
            f"{diff:.2e}: one Adam for the whole training, created with lr=lr; zero_grad, loss, backward, step per batch"
        )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_loss_is_a_documented_definition(lab, grader_seed):
    """history['train_loss'] and ['train_acc'] are one of the two documented definitions, recomputed by
    the grader: the class-weighted cross-entropy and the accuracy of the model on the whole training
    set after the epoch, or the mean over the epoch's mini-batches (weighted by their rows, or plain)
    of the values each mini-batch had before its step.

    100 rows, batch_size 32 (32, 32, 32, 4), 2 epochs, lr 1e-3, class weights (0.5, 2, 1). The
    mini-batches come from a forward pre-hook in the worker (evidence); the grader replays its own
    Adam on them, which must end at the parameters the student's train() produced (within 0.05 lr),
    so a made-up order cannot pass. Within 0.01 % for the loss and one row for the accuracy.

    Over 40 seeds the solution and tests/alt are within 1.1e-7 (relative) of a definition and their
    parameters within 3e-8 of the replay; the last mini-batch's loss instead of the mean is >= 0.5 %
    away, the sum of the mini-batch losses >= 280 %.
    """
    n, batch_size, epochs, lr = 100, 32, 2, 1e-3
    x, y, x_val, y_val, start, weights = small_problem(grader_seed, n)
    model, history, batches = train_watched(lab, start, x, y, x_val, y_val, epochs=epochs, lr=lr, batch_size=batch_size,
                                            class_weights=weights.clone(), seed=grader_seed)
    got = lab.grader.tensors(model)
    per_epoch, rows = epochs_of(batches, n, batch_size)
    assert len(per_epoch) == epochs and rows == 0, (
        f"train(epochs={epochs}) on {n} rows: the mini-batches fed to the model with gradients on do not make up "
        f"{epochs} epochs of {n} rows each (see the mini-batch check); the training loss cannot be recomputed"
    )
    for key in ("train_loss", "train_acc"):
        assert isinstance(history, dict) and key in history and len(history[key]) == epochs, (
            f"train(epochs={epochs}) must return history[{key!r}] with one value per epoch"
        )
    mine, defs = documented_definitions(start, x, y, weights, lr, per_epoch)
    drift = max_difference(got, mine)
    assert drift <= 0.05 * lr, (
        f"train(): after {epochs} epochs at lr={lr} with class weights, the parameters differ by up to {drift:.2e} from "
        "the grader's own Adam on the class-weighted cross-entropy over the mini-batches train() fed the model, in "
        "that order (see the lr check and the class-weight checks); the training loss cannot be recomputed"
    )
    for key, col, atol, unit in (("train_loss", 0, None, "loss"), ("train_acc", 1, 1.5 / n, "accuracy")):
        values = [as_float(v, f"history[{key!r}] entry") for v in history[key]]
        if not matching_definitions(values, defs, col, atol=atol, rtol=1e-4):
            pytest.fail(
                f"history[{key!r}] = {[round(v, 4) for v in values]} is none of the documented definitions, which the "
                f"grader recomputes on this run ({definitions_in_words(defs, col)}): the {unit} of the whole training "
                "set after the epoch, "
                "or the mean over the epoch's mini-batches of each mini-batch's (class-weighted) "
                f"{unit} (weighted by its rows), not the last mini-batch's nor their sum"
            )


@pytest.mark.points(2)
@pytest.mark.timeout(120)
def test_validation_set_never_trained_on(lab, dti, grader_seed):
    """Same seed, same model, validation labels changed: the trained weights must not change."""
    x_tr, y_tr, x_val, y_val, model = validation_problem(dti, grader_seed)
    trained = partial(train_copy, lab, lab.grader.to_worker(model), x_tr, y_tr, x_val, seed=grader_seed)  # (y_val)
    first = trained(y_val)
    start = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert first.shape == start.shape and not torch.equal(first, start), (
        "train() did not change the model's weights (optimizer.step() per mini-batch?)"
    )
    changed = trained((y_val + 1) % 3)
    if not torch.allclose(first, changed, rtol=0, atol=1e-6):
        again = trained(y_val)
        assert not torch.allclose(first, again, rtol=0, atol=1e-6), (
            "train(): the trained weights changed when only the validation labels changed: the validation set "
            "must only be evaluated (under torch.no_grad()), never trained on; keep the model after the last "
            "epoch (no selection of the best epoch by validation accuracy)"
        )
        pytest.fail(
            "train() gives different weights for the same model, data and seed: draw the mini-batch order "
            "from a generator seeded with `seed`, so a run can be reproduced"
        )


# --------------------------------------------------------------------------- Task 4.6: evaluation


@pytest.mark.points(1)
def test_predict(lab, grader_seed):
    model, x, want = predict_problem(grader_seed)  # want: the grader's argmax of model(x)
    got = lab.predict(lab.grader.to_worker(model), x.clone())
    assert isinstance(got, torch.Tensor), f"predict must return a torch.int64 tensor of labels, got {type(got).__name__}"
    assert tuple(got.shape) == (300,), f"predict(model, x) for x of shape (300, 5) must return (300,) labels, got {tuple(got.shape)}"
    assert got.dtype == torch.int64, (
        f"predict must return a torch.int64 tensor of class labels (what argmax gives), got dtype {got.dtype}"
    )
    got = got.long()
    if torch.equal(got, want + 1):
        pytest.fail("predict(): the labels are off by one: they must be 0..2 (indices into CLASSES), "
                    "not the CSV file's 1..3; argmax of the logits is already 0-based")
    agree = (got == want).float().mean().item()
    assert agree == 1.0, (
        f"predict(): only {agree:.1%} of the labels equal argmax over the classes of model(x) "
        "(argmax along dim=1, one label per row)"
    )


@pytest.mark.points(1)
def test_confusion_matrix_matches_sklearn(lab, grader_seed):
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    rng = np.random.default_rng(grader_seed)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 2, 200))  # class 2 under-predicted
    for to in (torch.from_numpy, np.asarray):
        got = lab.confusion_matrix(to(y_true.copy()), to(y_pred.copy()), 3)
        assert isinstance(got, np.ndarray) and got.dtype == np.int64, (
            "confusion_matrix must return a NumPy array of dtype int64 (counts), got "
            + (f"an array of dtype {got.dtype}" if isinstance(got, np.ndarray) else type(got).__name__)
        )
        want = sk_confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
        assert got.shape == (3, 3), f"confusion_matrix must be (3, 3), got {got.shape}"
        if np.array_equal(got, want.T) and not np.array_equal(got, want):
            pytest.fail("confusion_matrix is transposed: rows are the true classes, columns the predicted ones (like scikit-learn)")
        assert np.array_equal(got, want), (
            f"confusion_matrix differs from scikit-learn's (rows true, columns predicted):\n{got}\nexpected\n{want}"
        )
    got = np.asarray(lab.confusion_matrix(torch.tensor([0, 0, 2]), torch.tensor([0, 2, 2]), 3))
    assert np.array_equal(got, [[1, 0, 1], [0, 0, 0], [0, 0, 1]]), (
        f"confusion_matrix with class 1 absent gave\n{got}\nexpected [[1, 0, 1], [0, 0, 0], [0, 0, 1]]: "
        "always K x K, whatever classes occur"
    )


# --------------------------------------------------------------------------- the experiment


@pytest.mark.points(3)
@pytest.mark.timeout(300)
def test_test_subject_accuracy(pipeline):
    """Accuracy on the held-out subject 100206 after 15 epochs of the student's pipeline >= 0.85.

    Reference (z-scoring) over 10 grader seeds (bench/bench_lab04.py --calibrate 10): min 0.903,
    median 0.910, max 0.913. With the lecture's division by the training maximum instead
    (--normalizer max): min 0.883, median 0.893. Threshold 5.3 / 3.3 points below the minima.
    """
    m = pipeline.test
    assert m["accuracy"] >= MIN_TEST_ACCURACY, (
        f"after {pipeline.epochs} epochs (Adam lr 1e-3, batch 1024, class weights) the grader measures accuracy "
        f"{m['accuracy']:.3f} on the test subject, expected >= {MIN_TEST_ACCURACY} (the reference reaches about 0.90; "
        f"{describe(m)}): check train() (zero_grad, backward and step per mini-batch, a new order every epoch), "
        "the normaliser, and that build_dti_mlp ends with a Linear layer (logits)"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(300)
def test_test_subject_balanced_accuracy(pipeline):
    """Balanced accuracy (mean recall over the 3 classes) on subject 100206 >= 0.81.

    A model that never predicts the CC genu scores at most 0.67. Reference over 10 grader seeds:
    min 0.874, median 0.877; with max scaling: min 0.846, median 0.858.
    """
    m = pipeline.test
    assert m["balanced"] >= MIN_TEST_BALANCED, (
        f"balanced accuracy on the test subject is {m['balanced']:.3f}, expected >= {MIN_TEST_BALANCED} "
        f"({describe(m)}): a class is neglected; check class_weights and that train() passes them to "
        "nn.CrossEntropyLoss(weight=...)"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(300)
def test_class_weights_on_imbalanced_training_set(imbalanced):
    """The grader drops 97 % of the CC genu voxels from its own training split (about 100 CC against
    11,000 others) and runs the student's pipeline twice with the same seed: with class_weights(y)
    and with class_weights=None. Balanced accuracy on subject 100206 with the weights must be
    >= 0.78 and beat the unweighted run by >= 0.01.

    Reference over 10 grader seeds: weighted min 0.857, median 0.868; unweighted min 0.760,
    median 0.790, max 0.830; gain min 0.043, median 0.077. With max scaling: weighted min 0.827,
    median 0.841; gain min 0.067, median 0.139. A train() that ignores the weights gains exactly 0
    (same seed, same initial weights), inverse weights (frequencies) lose balanced accuracy.
    The full, mildly imbalanced data set (CC genu 19 %) cannot tell: there the unweighted
    reference reaches balanced accuracy 0.86-0.88 as well.
    """
    weighted, plain = imbalanced
    gain = weighted["balanced"] - plain["balanced"]
    setting = (
        f"trained on {weighted['n_train']} voxels with only {weighted['n_cc_train']} of the CC genu, "
        f"balanced accuracy on the test subject is {weighted['balanced']:.3f} with class weights "
        f"({describe(weighted)}) and {plain['balanced']:.3f} without"
    )
    assert gain >= MIN_WEIGHT_GAIN, (
        f"{setting}: the class weights should raise it by >= {MIN_WEIGHT_GAIN}; "
        + ("the results are identical, so train() ignores class_weights: pass them to "
           "nn.CrossEntropyLoss(weight=class_weights)" if abs(gain) < 1e-9 else
           "check class_weights (w_c = N / (K n_c), largest for the smallest class) and that train() uses "
           "nn.CrossEntropyLoss(weight=class_weights)")
    )
    assert weighted["balanced"] >= MIN_IMBALANCED_BALANCED, (
        f"{setting}: expected >= {MIN_IMBALANCED_BALANCED} with the weights; check class_weights and train()"
    )


# --------------------------------------------------------------------------- devices


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_no_hard_coded_device(lab, dti):
    for func, name in ((lab.train, "train"), (lab.predict, "predict"), (lab.build_dti_mlp, "build_dti_mlp"),
                       (lab.split_train_val, "split_train_val"), (lab.fit_normalizer, "fit_normalizer"),
                       (lab.Normalizer.transform, "Normalizer.transform"), (lab.class_weights, "class_weights")):
        assert_no_hard_coded_device(func, name)
    x, y = dti.x_trainval[::20].clone(), dti.y_trainval[::20].clone()
    x = (x - x.mean(0)) / x.std(0)
    with cuda_reported_unavailable():
        model = lab.build_dti_mlp()
        history = lab.train(model, x[:600], y[:600], x[600:], y[600:], epochs=1, device="cpu")
        pred = lab.predict(model, x[600:])
    assert len(history["val_acc"]) == 1 and len(pred) == x.shape[0] - 600, "train/predict on the CPU returned the wrong sizes"


@pytest.mark.cuda
@pytest.mark.points(1)
@pytest.mark.timeout(300)
def test_pipeline_on_cuda(lab, dti, request):
    run = run_pipeline(lab, dti, run_seed(request, "cuda"), device="cuda")
    assert run.device.startswith("cuda"), (
        f"after train(..., device='cuda') the model's parameters are on {run.device}: train() must move the "
        "model to device (model.to(device)) and train it in place"
    )
    assert run.test["accuracy"] >= MIN_TEST_ACCURACY and run.test["balanced"] >= MIN_TEST_BALANCED, (
        f"trained on cuda: test accuracy {run.test['accuracy']:.3f}, balanced {run.test['balanced']:.3f}; "
        f"expected >= {MIN_TEST_ACCURACY} and >= {MIN_TEST_BALANCED} as on the CPU ({describe(run.test)})"
    )
    agree = predict_agreement(lab, run)
    assert agree >= 0.99, (
        f"predict() with the model on cuda and the features on the CPU agrees with argmax of the logits on only "
        f"{agree:.1%} of the test voxels: run the model on the device of its parameters (move x there)"
    )
