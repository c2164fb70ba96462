"""Grading of lab 3: MNIST with a fully connected network (labs/lab03_mnist.py).

Data: always ``load_mnist("offline")`` (4000 training / 1000 test real digits), loaded once.
The training split is sent to the lab's worker once (``train_set``); the test split never leaves
the grader. Each network configuration that needs training is trained once per grading run
(``runs`` fixture) and reused. The lab's networks are fully specified, so the grader rebuilds
its own network (``JudgeMLP`` of the answer key, ``grader/oracle/lab03.py``) from the parameter
tensors the worker reports (shapes must match exactly) and computes every accuracy, loss and
gradient norm itself on its own data; it never uses a number the student code returns for them.

Checks of *how* the code runs are outcomes the grader verifies where it can (issue 19): the
sample order a probe model reports (``grader/worker/probes_lab03.py``) must be the order the
grader's own SGD replay needs to reach the trained parameters; the grader's ``on_epoch_end``
changes the model it is given, so the trained parameters show when and how it was called; a
grader model whose predictions depend on train mode, grad mode and chunk size shows through the
accuracy ``accuracy()`` returns. Where the moves with ``.to()`` and the figure ``plot_losses``
saved rest on evidence the worker reports, the checks are information (0 points): they report,
they earn nothing. The layer list of ``build_mlp``'s model words the structure messages; its
outputs on the grader's inputs decide.

Rubric (25 points on a CPU machine, +1 on a GPU):
    architecture and initialisation 2, bad arguments 1, log-probabilities 1, full-batch step is
    SGD with momentum on the NLL loss 2, epoch loss weighted by batch size 1, on_epoch_end after
    each epoch 1, one loss per epoch and decreasing 1, shuffling every epoch 2, shuffling follows
    the seed 1, test accuracy after the sheet's settings: 1x30 sigmoid 2, 1/2/3x30 ReLU 3x1,
    accuracy() 1, accuracy() in eval mode without gradients 1, gradient norms 1, vanishing
    gradients 2, stratified subsample 1, less data lowers accuracy 1, no hard-coded device 1,
    cuda equals cpu 1 (GPU only). Information (0 points): model and batches moved with
    .to(device), loss plot.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grader.judge import remote
from grader.kit import (
    as_float, assert_no_hard_coded_device, cuda_reported_unavailable, kept_in_worker, rel_error, remembered,
    same_tensors,
)
from grader.judge.session import lab_fixture
from grader.oracle.lab03 import (  # the answer key: the grader's network, runs, SGD replays, probes and slips
    MODE_GROUPS, NUDGE, SHEET, Run, accuracy_slip, bias_grad_norms, check_architecture, children, epoch_loss_slip,
    fitted_linear_model, full_batch_sgd, gradient_norm_problem, gradient_norm_slip, grader_accuracy, mode_problem,
    mode_slip, nudged_sgd, on_epoch_end_slip, order_run, order_slip, rebuild, require_model, same_outputs, sgd_slip,
    small_problem, tagged_problem, trained_in_reported_order,
)
from grader.plugin import grader_seed_of, seed_for_test

lab = lab_fixture("lab03")


# --------------------------------------------------------------------------- data and the shared training runs


@pytest.fixture(scope="module")
def mnist():
    """The offline split: x (N, 1, 28, 28) float32 normalised, y (N,) int64; 4000 / 1000."""
    from data.mnist import load_mnist

    return load_mnist("offline")


@pytest.fixture(scope="module")
def train_set(lab, mnist):
    """``train_set()`` -> (x, y) handles of the training split in the worker, sent once.

    Sent again only if the worker was replaced (a crash in an earlier check). The test split
    is never sent: its labels stay with the grader.
    """
    return kept_in_worker(lab, x=mnist.x_train, y=mnist.y_train)


def run_seed(session_seed: int, depth: int, activation: str, fraction: float) -> int:
    """Seed of one configuration's run (init and shuffling): stable per grader seed."""
    return seed_for_test(session_seed, f"lab03-run-{depth}-{activation}-{fraction}")


@pytest.fixture(scope="module")
def runs(lab, mnist, train_set, request):
    """``runs(depth, activation, fraction=1.0)``: train once per grading run, then reuse.

    A failure (or a timeout) is remembered too, so a broken ``train()`` costs its time once.
    """
    session_seed = grader_seed_of(request.config)
    get = remembered(lambda *key: Run(lab, mnist, train_set, *key, run_seed(session_seed, *key)))
    return lambda depth, activation, fraction=1.0: get(depth, activation, fraction)


# --------------------------------------------------------------------------- Task 3.1: the network


@pytest.mark.points(2)
def test_build_mlp_architecture(lab):
    for activation in ("sigmoid", "relu"):
        for depth in range(1, 6):
            check_architecture(lab, lab.build_mlp(depth, activation=activation), depth, activation)
    check_architecture(lab, lab.build_mlp(2, width=16, activation="relu", n_in=20, n_out=3), 2, "relu", 16, 20, 3)
    defaults = children(lab, lab.build_mlp(1), "build_mlp(1)")
    assert len(defaults) > 2 and defaults[2]["nn_type"] == "Sigmoid", "build_mlp(1): the default activation must be sigmoid"


@pytest.mark.points(1)
def test_build_mlp_rejects_bad_arguments(lab):
    for depth in (0, 6, -1):
        with pytest.raises(ValueError):
            lab.build_mlp(depth)
            raise AssertionError(f"build_mlp({depth}) must raise ValueError: 1 <= n_hidden_layers <= 5")
    for activation in ("tanh", "Sigmoid", "softmax"):
        try:
            lab.build_mlp(2, activation=activation)
        except ValueError as exc:
            text = str(exc)
            assert "sigmoid" in text and "relu" in text, (
                f"build_mlp(2, activation={activation!r}) raised ValueError({text!r}); the message must name "
                "the allowed values 'sigmoid' and 'relu'"
            )
        else:
            raise AssertionError(f"build_mlp(2, activation={activation!r}) must raise ValueError naming 'sigmoid' and 'relu'")


@pytest.mark.points(1)
def test_outputs_are_log_probabilities(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    for depth, activation in ((1, "sigmoid"), (3, "relu")):
        model = lab.build_mlp(depth, activation=activation)
        require_model(model, f"build_mlp({depth}, activation={activation!r})")
        x = torch.randn(17, 1, 28, 28, generator=g)
        out = lab.grader.forward(model, x)  # the model's own outputs (evidence: run in the worker)
        assert isinstance(out, torch.Tensor) and out.is_floating_point(), (
            f"build_mlp({depth}, activation={activation!r}): model(x) must return a float tensor, got "
            f"{type(out).__name__}"
        )
        assert tuple(out.shape) == (17, 10), (
            f"build_mlp({depth}, activation={activation!r}) maps a (17, 1, 28, 28) batch to shape "
            f"{tuple(out.shape)}, expected (17, 10)"
        )
        if torch.allclose(out.sum(dim=1), torch.ones(17), atol=1e-4):
            raise AssertionError(
                f"build_mlp({depth}, activation={activation!r}): the outputs are probabilities (each row sums "
                "to 1, a softmax); nn.NLLLoss needs log-probabilities: end with nn.LogSoftmax(dim=1)"
            )
        sums = out.exp().sum(dim=1)
        assert torch.allclose(sums, torch.ones(17), atol=1e-4), (
            f"build_mlp({depth}, activation={activation!r}): exp(output) must sum to 1 in every row "
            f"(log-probabilities over the 10 classes), got row sums {sums[:3].tolist()}...; "
            "end with nn.LogSoftmax(dim=1)"
        )


# --------------------------------------------------------------------------- Task 3.2: training


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_train_step_is_sgd_with_momentum_on_nll(lab, grader_seed):
    """With batch_size = N every epoch is one full-batch step, whatever the sample order.

    The grader runs the same steps with torch.optim.SGD itself (relative error ~1e-7 expected).
    """
    model, x, y = small_problem(grader_seed)
    epochs, lr, momentum = 3, 0.5, 0.9
    student = lab.grader.to_worker(model)  # a copy of the grader's net in the worker
    losses = lab.train(student, x, y, epochs=epochs, lr=lr, momentum=momentum, batch_size=len(y), device="cpu", seed=grader_seed)
    want_params, want_losses = full_batch_sgd(model, x, y, epochs, lr, momentum)
    got_params = lab.grader.tensors(student)
    call = f"train(epochs={epochs}, lr={lr}, momentum={momentum}, batch_size=N={len(y)})"
    if not same_tensors(got_params, want_params):
        why = sgd_slip(got_params, model, x, y, epochs, lr, momentum)
        raise AssertionError(f"{call} on a small net: the parameters differ from SGD with momentum on the NLL loss: {why}")
    assert len(losses) == epochs, f"{call} must return one loss per epoch ({epochs}), got {len(losses)}"
    got = np.array([as_float(v, "each per-epoch loss") for v in losses])
    want = np.array(want_losses)
    hint = epoch_loss_slip(got, want, model, x, y, epochs, lr, momentum)
    assert np.allclose(got, want, rtol=1e-4), f"{call}: per-epoch losses {np.round(got, 5)}, expected {np.round(want, 5)}{hint}"


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_epoch_loss_weights_batches_by_size(lab, grader_seed):
    """With lr = 0 the parameters never move, so every mini-batch's loss is taken at the same
    parameters and an epoch's mean over its N samples is the NLL of the whole set, whatever the
    order. N = 50 in mini-batches of 16 leaves a last mini-batch of 2, so a plain mean of the 4
    batch losses differs (a correct train agrees to float32 rounding, ~1e-7)."""
    model, x, y = small_problem(grader_seed, n=50)
    student = lab.grader.to_worker(model)
    losses = lab.train(student, x, y, epochs=3, lr=0.0, momentum=0.9, batch_size=16, device="cpu", seed=grader_seed)
    with torch.no_grad():
        want = float(nn.functional.nll_loss(model(x), y))
    assert len(losses) == 3, f"train(epochs=3) must return 3 per-epoch losses, got {len(losses)}"
    got = np.array([as_float(v, "each per-epoch loss") for v in losses])
    assert np.allclose(got, want, rtol=1e-5), (
        f"train(lr=0, batch_size=16) on N = 50 samples: per-epoch losses {np.round(got, 6)}, but with lr = 0 every "
        f"sample's loss is taken at the initial parameters and their mean over the epoch is the NLL of the whole "
        f"set, {want:.6f}. The last mini-batch has only 2 samples: weight each mini-batch's mean loss by its number "
        "of samples (sum loss * batch size, divide by N), not a plain mean over the mini-batches"
    )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_calls_on_epoch_end_after_each_epoch(lab, grader_seed):
    """on_epoch_end(epoch, model) after each epoch's last step, epochs 1, 2, 3. The grader's callback
    adds 0.01 * epoch to every parameter of the model it is given, so the calls leave their mark in
    the trained parameters: with batch_size = N each epoch is one full-batch step, and the grader
    replays steps and calls itself (the outcome; what the callback recorded only words a failure)."""
    model, x, y = small_problem(grader_seed)
    student = lab.grader.to_worker(model)
    recorder = lab.grader.make("lab03.epoch_recorder", NUDGE)
    lab.train(student, x, y, epochs=3, lr=0.5, momentum=0.9, batch_size=len(y), device="cpu", seed=grader_seed,
              on_epoch_end=recorder)
    got = lab.grader.tensors(student)
    if same_tensors(got, nudged_sgd(model, x, y, 3, 0.5, 0.9)):
        return
    called = [c[0] for c in lab.grader.probe("lab03.epoch_calls", recorder)]  # what the callback recorded
    raise AssertionError(on_epoch_end_slip(got, called, model, x, y, 3, 0.5, 0.9))


LOSS_DROP = 0.8  # the last epoch's mean loss below this share of the first epoch's
LAST_LOSS_OVER_NLL = (0.8, 1.5)  # accepted ratio of the last epoch's mean loss to the grader's NLL after training


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_train_returns_one_loss_per_epoch_and_decreases(lab, runs):
    """1x30 sigmoid, sheet settings: 15 per-epoch means that go down.

    The last epoch's mean loss over the grader's own NLL of the trained net on the training set:
    solution over 12 grader seeds min 1.029 / median 1.031 / max 1.032 (accepted: 0.8 ... 1.5).
    """
    run = runs(1, "sigmoid")
    history = run.history
    assert len(history) == SHEET["epochs"], (
        f"train(epochs=15) must return one loss per epoch (15 values), got {len(history)}"
    )
    values = [as_float(v, "each per-epoch loss returned by train()") for v in history]
    assert values[-1] < LOSS_DROP * values[0], (
        f"train(): the mean training loss of the 1x30 sigmoid net went from {values[0]:.4f} (epoch 1) to "
        f"{values[-1]:.4f} (epoch 15); it should fall clearly (reference: about 2.2 -> 0.5)"
    )
    ratio = values[-1] / run.train_nll
    assert LAST_LOSS_OVER_NLL[0] < ratio < LAST_LOSS_OVER_NLL[1], (
        f"train(): the last epoch's loss {values[-1]:.4f} does not match the NLL of the trained net on the "
        f"training set, {run.train_nll:.4f} (ratio {ratio:.2f}): return the mean over the epoch's samples of the "
        "batch losses (not their sum)"
    )


def _require_trained_in_reported_order(run, n: int, batch_size: int, epochs: int) -> None:
    """The outcome of the shuffling checks: the grader's replay of SGD in the reported order gives the
    parameters train() left (with the slip in words otherwise)."""
    if trained_in_reported_order(run):
        return
    why = order_slip(run, n, batch_size, epochs)
    raise AssertionError(
        f"train(): the trained parameters are not those of SGD with momentum, one step per mini-batch in the order "
        f"the model was fed the samples (the grader replays that order itself): {why}"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(60)
def test_train_shuffles_every_epoch(lab, grader_seed):
    """Class-sorted data (like the raw MNIST subset): each epoch must be a new random permutation.

    Checked on a probe model that records which samples each training forward pass sees: every
    sample once per epoch, every mini-batch mixes classes, and the order changes between epochs.
    That record is the worker's word; the outcome is the trained probe's parameters, which must be
    the grader's own replay of SGD in exactly that order (relative error 1e-5; another order, the
    stored one, or no training at all ends elsewhere).
    """
    n, n_classes, batch_size, epochs = 256, 4, 32, 3
    run = order_run(lab, n, n_classes, batch_size, epochs, grader_seed, grader_seed)
    batches, y = run.batches, run.y
    seen = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.long)
    assert len(seen) == epochs * n, (
        f"train(epochs={epochs}, batch_size={batch_size}) on {n} samples fed {len(seen)} samples to the model in "
        f"training; expected {epochs * n}: every epoch visits every sample once, in mini-batches"
    )
    orders = seen.view(epochs, n)
    for e, order in enumerate(orders, start=1):
        assert torch.equal(order.sort().values, torch.arange(n)), (
            f"train(): epoch {e} does not visit every sample exactly once (some repeated, some left out): "
            "cut one permutation of all N indices into mini-batches"
        )
    first = y[batches[0]]
    assert len(torch.unique(first)) > 1 and not torch.equal(orders[0], torch.arange(n)), (
        f"train(): on class-sorted data the first mini-batch holds only class {int(first[0])}: the samples are not "
        "shuffled; draw a new order each epoch, e.g. perm = torch.randperm(N, generator=g)"
    )
    for i, b in enumerate(batches):
        assert len(torch.unique(y[b])) > 1, (
            f"train(): mini-batch {i} holds only one class of the class-sorted data: shuffle the samples "
            "themselves (torch.randperm over all N), not only the order of fixed batches"
        )
    for e in range(1, epochs):
        assert not torch.equal(orders[e], orders[0]), (
            f"train(): epoch {e + 1} visits the samples in the same order as epoch 1: reshuffle every epoch "
            "(a new torch.randperm per epoch)"
        )
    _require_trained_in_reported_order(run, n, batch_size, epochs)


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_shuffling_follows_seed(lab, grader_seed):
    """Three runs on the order probe, seeds s, s, s + 1: the reported orders (evidence) must agree for
    the same seed and differ for another, and each run's trained parameters must be the grader's
    replay of SGD in its reported order (the outcome)."""
    n, n_classes, batch_size, epochs = 128, 4, 16, 2
    runs = [order_run(lab, n, n_classes, batch_size, epochs, s, 0) for s in (grader_seed, grader_seed, grader_seed + 1)]
    for run in runs:
        _require_trained_in_reported_order(run, n, batch_size, epochs)
    a, b, c = (torch.cat(r.batches) if r.batches else torch.zeros(0) for r in runs)
    assert torch.equal(a, b), (
        "train(): two runs with the same seed visit the samples in different orders: shuffle with a "
        "torch.Generator seeded by `seed` (torch.randperm(N, generator=g)), not the global random state"
    )
    assert not torch.equal(a, c), "train(): seeds s and s + 1 give the same sample order: the seed argument is ignored"


@pytest.mark.information
@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_and_accuracy_move_model_and_batches_to_device(lab, grader_seed):
    """Probe tensors remember where they were sent with .to(): on a CPU-only machine too.

    Information, 0 points: on a CPU-only machine a forgotten .to(device) changes no outcome, so
    this rests on what the worker reports, which a student who rewrites the worker could forge
    (issue 19). It reports the slip; ``test_train_cuda_matches_cpu`` grades devices on a GPU."""
    cpu = str(torch.device("cpu"))
    for name in ("train", "accuracy", "layer_gradient_norms"):
        model, x, y = tagged_problem(lab, grader_seed)
        if name == "train":
            lab.train(model, x, y, epochs=1, lr=0.01, momentum=0.9, batch_size=16, device="cpu", seed=grader_seed)
        elif name == "accuracy":
            lab.accuracy(model, x, y, device="cpu", batch_size=16)
        else:
            lab.layer_gradient_norms(model, x, y)
        calls = lab.grader.probe("lab03.device_calls", model)
        assert calls, f"{name}() never called the model"
        for data_device, model_device in calls:
            if name == "layer_gradient_norms":
                assert data_device == cpu, (
                    "layer_gradient_norms: x was not moved to the device of the model's parameters; on a GPU the "
                    "model's weights and the inputs would be on different devices"
                )
                continue
            assert data_device == cpu, (
                f"{name}(device='cpu'): the model got a batch that was never sent with .to(device); move every "
                "batch (or the whole x) with x_b.to(device), or it fails with a device mismatch on a GPU"
            )
            assert model_device == cpu, (
                f"{name}(device='cpu'): the model was not moved with model.to(device) before use; on a GPU its "
                "weights would stay on the CPU while the batches are on the GPU"
            )


# Test accuracy after the sheet's settings, on the offline test split (solution over 12 grader seeds: see
# the tests' docstrings).
MIN_ACCURACY_SIGMOID = 0.85  # 1x30 sigmoid
MIN_ACCURACY_RELU = 0.88  # 1, 2 and 3 hidden layers of 30 ReLU


def _accuracy_message(setting: str, acc: float, threshold: float, reference: str) -> str:
    hint = " (chance level: the net did not learn)" if acc < 0.15 else ""
    return (
        f"after train() with the sheet's settings, the {setting} net reaches test accuracy {acc:.3f}{hint} on "
        f"the offline test split, computed by the grader; expected >= {threshold} (reference {reference}). "
        "Look at train(): shuffling, optimizer.zero_grad(), SGD with momentum, NLLLoss on log-probabilities"
    )


@pytest.mark.points(2)
@pytest.mark.timeout(120)
def test_accuracy_after_training_1x30_sigmoid(lab, runs):
    """1x30 sigmoid, 15 epochs, lr 0.003, momentum 0.9, batch 64: test accuracy >= 0.85.

    Solution over 12 grader seeds (1-12): min 0.870, median 0.879, max 0.888 (research: 0.872-0.882
    over 5 seeds); threshold 2 points below the minimum.
    """
    acc = runs(1, "sigmoid").test_accuracy
    assert acc >= MIN_ACCURACY_SIGMOID, _accuracy_message("1x30 sigmoid", acc, MIN_ACCURACY_SIGMOID, "0.87-0.88")


@pytest.mark.points(1)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_accuracy_after_training_relu(lab, runs, depth):
    """ReLU with 1-3 hidden layers of 30, sheet settings: test accuracy >= 0.88.

    Solution over 12 grader seeds (1-12), min / median: 1 layer 0.898 / 0.911, 2 layers
    0.903 / 0.909, 3 layers 0.898 / 0.907 (research: 0.902-0.916 over 5 seeds).
    """
    acc = runs(depth, "relu").test_accuracy
    assert acc >= MIN_ACCURACY_RELU, _accuracy_message(f"{depth}x30 ReLU", acc, MIN_ACCURACY_RELU, "0.90-0.92")


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_accuracy_function_matches_grader(lab, mnist):
    """accuracy() against the grader's own evaluation, on a model the grader trained itself."""
    model = fitted_linear_model(mnist.x_train[:1000], mnist.y_train[:1000])
    # Images the grader's model was not fitted on; the test split's labels never leave the grader.
    x_held, y_held = mnist.x_train[1000:2000], mnist.y_train[1000:2000]
    for x, y, batch_size in ((x_held, y_held, 1000), (x_held[:999], y_held[:999], 300)):
        want = grader_accuracy(model, x, y)
        got = lab.accuracy(lab.grader.to_worker(model), x, y, device="cpu", batch_size=batch_size)
        assert isinstance(got, float), f"accuracy() must return a Python float, got {type(got).__name__}"
        hint = accuracy_slip(model, x, y, got, want, batch_size)
        assert abs(got - want) < 1e-6, (
            f"accuracy(model, x, y, batch_size={batch_size}) on {len(y)} held-out images returned {got:.4f}; the "
            f"grader's own evaluation (argmax of model(x) == y) gives {want:.4f}{hint}"
        )


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_accuracy_evaluates_in_eval_mode_without_gradients(lab, grader_seed):
    """A grader model (in training mode, as after train()) whose predictions depend on its train
    mode, on grad mode and on the chunk size; the labels give each way of running it another
    accuracy, so the accuracy accuracy() returns is the outcome that shows eval mode, no_grad and
    chunks of at most batch_size, every sample counted once (the right way: 9 / 40)."""
    n, batch_size = 40, 16
    base, x, y = mode_problem(grader_seed, n)
    model = lab.grader.make("lab03.mode_probe", base, batch_size)
    acc = lab.accuracy(model, x, y, device="cpu", batch_size=batch_size)
    assert isinstance(acc, float), f"accuracy() must return a Python float, got {type(acc).__name__}"
    want = MODE_GROUPS[0] / n
    if abs(acc - want) < 1e-6:  # float32 means are fine (the accuracies are 1 / 40 apart)
        return
    why = mode_slip(acc, n)
    if why is None:
        raise AssertionError(
            f"accuracy(batch_size={batch_size}) on {n} samples returned {acc:.4f}, which is not the fraction of the "
            f"{n} samples that a model predicts correctly when run in evaluation mode, without gradients, in chunks "
            "of at most batch_size that together hold every sample once"
        )
    raise AssertionError("accuracy(): " + why)


# --------------------------------------------------------------------------- Task 3.3: vanishing gradients


@pytest.mark.points(1)
def test_layer_gradient_norms_match_autograd(lab, grader_seed):
    model, x, y = gradient_norm_problem(grader_seed)
    want = bias_grad_norms(model, x, y)
    nn.functional.nll_loss(model(x * 3), y).backward()  # leave stale gradients behind
    student = lab.grader.to_worker(model)  # a copy in the worker, stale gradients included
    for call in ("first", "second"):
        got = lab.layer_gradient_norms(student, x, y)
        assert len(got) == 3, (
            f"layer_gradient_norms on a net with 3 nn.Linear layers returned {len(got)} values; expected one "
            "||dC/db|| per Linear layer, input side first"
        )
        assert all(isinstance(v, float) for v in got), (
            f"layer_gradient_norms must return Python floats, got {[type(v).__name__ for v in got]} (use .item())"
        )
        got = np.array(got)
        hint = gradient_norm_slip(got, want, first_call=call == "first")
        assert rel_error(got, want) < 1e-4, (
            f"layer_gradient_norms ({call} call): got {np.round(got, 6)}, the grader's autograd gives ||dC/db^l|| = "
            f"{np.round(want, 6)} for C = NLLLoss(model(x), y){hint}"
        )


MAX_SIGMOID_RATIO = 1e-2  # ||dC/db^1|| / ||dC/db^5|| of the 5x30 sigmoid net at initialisation (the message quotes it)


@pytest.mark.points(2)
@pytest.mark.timeout(120)
def test_vanishing_gradients_sigmoid_vs_relu(lab, mnist, grader_seed):
    """5x30 nets at initialisation, 256 training images: ||dC/db^1|| / ||dC/db^5|| (hidden layers).

    Solution over 12 grader seeds (1-12): sigmoid min 2.3e-4 / median 3.5e-4 / max 5.4e-4
    (threshold 1e-2: 18x margin); ReLU min 2.6e-2 / median 3.5e-2, at least 48x the sigmoid
    net's ratio of the same seed (research: 3.4e-4 to 4.8e-4 and >= 1.6e-2).
    """
    idx = torch.randperm(len(mnist.y_train), generator=torch.Generator().manual_seed(grader_seed))[:256]
    x, y = mnist.x_train[idx], mnist.y_train[idx]
    ratios = {}
    for activation in ("sigmoid", "relu"):
        call = f"build_mlp(5, activation={activation!r})"
        with remote.options(seed=grader_seed):  # the worker's torch.manual_seed before the initialisation
            model = lab.build_mlp(5, activation=activation)
        net = rebuild(lab, model, 5, activation, call=call)  # the grader's own 5x30 net, the model's parameters
        act = {"sigmoid": "Sigmoid", "relu": "ReLU"}[activation]
        assert same_outputs(lab, model, net, x), (
            f"{call}: the model's outputs differ from the grader's own network (Flatten, 5 x [Linear, {act}], Linear, "
            f"LogSoftmax) with the same parameters: build_mlp(activation={activation!r}) should use nn.{act}"
        )
        want = bias_grad_norms(net, x, y)
        ratios[activation] = want[0] / want[4]
        got = np.array([as_float(v, "each gradient norm") for v in lab.layer_gradient_norms(model, x, y)])
        assert got.shape == (6,) and rel_error(got, want) < 1e-4, (
            f"layer_gradient_norms on build_mlp(5, activation={activation!r}): got {np.array2string(got, precision=2)}, "
            f"the grader's autograd gives {np.array2string(np.array(want), precision=2)}"
        )
    assert ratios["sigmoid"] < MAX_SIGMOID_RATIO, (
        f"5x30 sigmoid net at initialisation: ||dC/db^1|| / ||dC/db^5|| = {ratios['sigmoid']:.2e}; a deep sigmoid "
        "net should show vanishing gradients (< 1e-2, reference ~4e-4): check build_mlp's activation and "
        "PyTorch's default initialisation"
    )
    assert ratios["relu"] > ratios["sigmoid"], (
        f"the 5x30 ReLU net's ratio {ratios['relu']:.2e} is not larger than the sigmoid net's "
        f"{ratios['sigmoid']:.2e}: build_mlp(activation='relu') should use nn.ReLU"
    )


# --------------------------------------------------------------------------- Task 3.4: less training data


@pytest.mark.points(1)
def test_subsample_is_stratified_and_exact(lab, mnist, train_set, grader_seed):
    y = mnist.y_train
    row_of = {r.numpy().tobytes(): i for i, r in enumerate(mnist.x_train.reshape(len(y), -1))}
    for fraction in (0.1, 0.25, 0.5):
        xs, ys = lab.subsample(*train_set(), fraction, seed=grader_seed)
        want = round(fraction * len(y))
        assert len(xs) == len(ys) == want, (
            f"subsample(fraction={fraction}) on {len(y)} samples returned {len(xs)} images and {len(ys)} labels; "
            f"expected exactly {want}"
        )
        # The grader looks the returned images up in its own copy of the training set.
        rows = torch.as_tensor(xs).detach().to(torch.float32).reshape(want, -1)
        picked = [row_of.get(r.numpy().tobytes()) for r in rows]
        assert None not in picked, (
            f"subsample(fraction={fraction}) returned images that are not images of x: return x[idx] unchanged"
        )
        assert torch.equal(y[torch.tensor(picked)], torch.as_tensor(ys)), (
            "subsample() separated images from their labels: index x and y with the same indices"
        )
        counts = torch.bincount(ys, minlength=10)
        assert torch.all(counts == want // 10), (
            f"subsample(fraction={fraction}) is not stratified: class counts {counts.tolist()}, expected "
            f"{want // 10} of each class (the training set has 400 per class)"
        )
    # Pairs stay together, no sample twice, unequal classes: a synthetic set with x = sample id.
    sorted_labels = torch.cat([torch.full((n,), c) for c, n in enumerate((50, 30, 17, 3))])
    labels = sorted_labels[torch.randperm(100, generator=torch.Generator().manual_seed(grader_seed))]
    ids = torch.arange(100, dtype=torch.float32)[:, None]
    xs, ys = lab.subsample(ids, labels, 0.3, seed=grader_seed)
    assert len(ys) == 30, f"subsample(fraction=0.3) on 100 samples returned {len(ys)}, expected 30"
    picked = xs[:, 0].round().long()
    assert len(torch.unique(picked)) == 30, "subsample() returned some samples twice: draw without replacement"
    assert torch.equal(labels[picked], ys), "subsample() separated images from their labels: index x and y with the same indices"
    counts = torch.bincount(ys, minlength=4).double()
    share = torch.tensor([50, 30, 17, 3], dtype=torch.float64) * 0.3
    assert torch.all((counts - share).abs() < 1), (
        f"subsample(fraction=0.3) with class sizes 50/30/17/3 kept {counts.long().tolist()}; stratified means about "
        f"{share.tolist()} (floor or ceil of fraction * n_c)"
    )
    xs, ys = lab.subsample(ids, labels, 1.0, seed=grader_seed)
    assert len(ys) == 100 and torch.equal(torch.sort(xs[:, 0].round().long()).values, torch.arange(100)), (
        "subsample(fraction=1.0) must return every sample once (fraction is in (0, 1], 1 included)"
    )
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            lab.subsample(ids, labels, bad, seed=grader_seed)
            raise AssertionError(f"subsample(fraction={bad}) must raise ValueError: fraction must be in (0, 1]")
    a = lab.subsample(ids, labels, 0.5, seed=grader_seed)[1]
    b = lab.subsample(ids, labels, 0.5, seed=grader_seed)[1]
    assert torch.equal(a, b), "subsample() with the same seed returned different subsets: use a torch.Generator seeded by `seed`"


@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_less_training_data_lowers_test_accuracy(lab, runs):
    """1x30 ReLU, sheet settings, on 10% vs 100% of the training set (grader's test accuracy).

    Solution over 12 grader seeds (1-12): 10% (400 images) min 0.813 / median 0.825 / max 0.840;
    100% min 0.898 / median 0.911; the gap is at least 0.058.
    """
    full = runs(1, "relu")
    small = runs(1, "relu", 0.1)
    assert small.n_train == 400, f"subsample(fraction=0.1) of 4000 images gave {small.n_train}, expected 400"
    assert small.test_accuracy < full.test_accuracy, (
        f"with 10% of the training data the 1x30 ReLU net reaches test accuracy {small.test_accuracy:.3f}, not less "
        f"than with all of it ({full.test_accuracy:.3f}); check subsample() and train()"
    )


# --------------------------------------------------------------------------- Task 3.5: plots


@pytest.mark.information
@pytest.mark.points(1)
def test_plot_losses_one_curve_per_experiment(lab, tmp_path, grader_seed):
    """Information, 0 points: the curves, labels and titles come from the worker's record of the
    saved figure (evidence a student who rewrites the worker could forge, issue 19); the judge
    only checks that the file is a PNG. It reports what to fix in the plot; it earns nothing."""
    rng = np.random.default_rng(grader_seed)
    histories = {f"{d}x30 relu": list(np.sort(rng.uniform(0.1, 2.3, 6))[::-1]) for d in (1, 2, 3)}
    histories["1x30 relu, 10% data"] = list(np.sort(rng.uniform(0.1, 2.3, 4))[::-1])  # another length
    # A folder the worker may write (its scratch folder on an autograder); the judge reads the file back
    # as bytes without following links (grader.judge.remote.read_worker_file).
    folder, owner = remote.worker_folder(tmp_path)
    rel = f"lab03-plot-{grader_seed}/new/folder/losses.png"  # the folders do not exist yet
    path = folder / rel
    title = f"grader's title {grader_seed % 1000}"
    with remote.options(keep=True):  # a pathlib.Path in the worker, as a student would pass it
        path_arg = lab.grader.probe("lab03.path", str(path))
    open_before = lab.grader.probe("lab03.open_figures")
    with remote.options(capture_figures=True):  # probe: what every savefig in the call drew
        try:
            returned = lab.plot_losses(histories, path_arg, title=title)
        except FileNotFoundError as exc:
            raise AssertionError(
                f"plot_losses to a path whose folders do not exist yet raised {exc}: create the missing parent "
                "folders first (Path(path).parent.mkdir(parents=True, exist_ok=True))"
            ) from None
        figures = list(remote.last_evidence().get("figures") or [])
    if isinstance(returned, remote.RemoteObject):
        returned = lab.grader.probe("lab03.text", returned)
    assert returned is not None and str(returned) == str(path), f"plot_losses must return the path it wrote, got {returned!r}"
    png = remote.read_worker_file(folder, rel, owner)
    assert png is not None, (
        f"plot_losses did not write {path.name} into folders that did not exist yet: create the missing parent "
        "folders (Path(path).parent.mkdir(parents=True, exist_ok=True))"
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "plot_losses must write a PNG file (fig.savefig(path) with a .png path)"
    assert figures, "plot_losses must save a matplotlib figure with fig.savefig(path) or plt.savefig(path)"
    fig = figures[-1]
    for name, losses in histories.items():
        hits = [
            (ax, line)
            for ax in fig["axes"]
            for line in ax["lines"]
            if len(line["y"]) == len(losses) and np.allclose(np.asarray(line["y"], dtype=float), losses)
        ]
        assert len(hits) == 1, (
            f"plot_losses: the saved figure has {len(hits)} curves with the losses of {name!r}; expected one curve "
            "per experiment (ax.plot(epochs, losses, label=name))"
        )
        ax, line = hits[0]
        assert line["label"] == name, (
            f"plot_losses: the curve of {name!r} is labelled {line['label']!r}; use label=name so the legend "
            "says which experiment it is"
        )
        assert ax["xlabel"].strip() and ax["ylabel"].strip(), (
            "plot_losses: label the axes (ax.set_xlabel('epoch'), ax.set_ylabel('training loss'))"
        )
        epochs = np.arange(1, len(losses) + 1)
        assert len(line["x"]) == len(epochs) and np.allclose(line["x"], epochs), (
            f"plot_losses: the curve of {name!r} has x values {np.round(line['x'], 2).tolist()}; the epochs are "
            f"1 ... {len(losses)} (plot against range(1, len(losses) + 1), not the list index from 0)"
        )
    titles = [fig["suptitle"]] + [ax["title"] for ax in fig["axes"]]
    assert title in titles, f"plot_losses(..., title={title!r}): the figure's title is none of {titles}; show `title`"
    open_after = lab.grader.probe("lab03.open_figures")
    assert open_after <= open_before, (
        f"plot_losses left its figure open ({open_before} open figures before the call, {open_after} after): close "
        "it after saving (plt.close(fig)), or a sweep of many plots keeps them all in memory"
    )


# --------------------------------------------------------------------------- devices


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_no_hard_coded_device(lab, grader_seed):
    for name in ("train", "accuracy", "layer_gradient_norms"):
        assert_no_hard_coded_device(getattr(lab, name), name)
    model, x, y = small_problem(grader_seed)
    model = lab.grader.to_worker(model)
    with cuda_reported_unavailable():
        losses = lab.train(model, x, y, epochs=1, lr=0.01, momentum=0.9, batch_size=16, device="cpu", seed=grader_seed)
        acc = lab.accuracy(model, x, y, device="cpu")
    as_float(losses[0], "train()'s loss")
    as_float(acc, "accuracy()")


CUDA_ACCURACY_GAP = 0.03  # accuracy() on cuda and on the cpu after the same training


@pytest.mark.cuda
@pytest.mark.points(1)
@pytest.mark.timeout(120)
def test_train_cuda_matches_cpu(lab, grader_seed):
    """Full-batch steps (order-independent): cuda and cpu parameters and losses agree to 1e-4."""
    model, x, y = small_problem(grader_seed, n=256)
    results = {}
    for device in ("cpu", "cuda"):
        m = lab.grader.to_worker(model)
        losses = lab.train(m, x, y, epochs=5, lr=0.5, momentum=0.9, batch_size=len(y), device=device, seed=grader_seed)
        results[device] = (lab.grader.tensors(m), np.array([as_float(v, "loss") for v in losses]),
                           lab.accuracy(m, x, y, device=device))
    assert same_tensors(results["cuda"][0], results["cpu"][0], 1e-4), "train(device='cuda') ends with other parameters than on the cpu"
    assert np.allclose(results["cuda"][1], results["cpu"][1], rtol=1e-4), "train(): per-epoch losses differ between cuda and cpu"
    assert abs(as_float(results["cuda"][2], "accuracy") - as_float(results["cpu"][2], "accuracy")) < CUDA_ACCURACY_GAP, (
        "accuracy() differs between cuda and cpu"
    )
