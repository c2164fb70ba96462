"""Hidden checks of lab 3: students see the result only after the grades are published.

Failure messages say what to look at, never the expected values. As in the public checks, the
grader rebuilds its own networks from the parameter tensors the worker reports and measures
outputs and accuracies itself; held-out labels stay with the grader.
"""

import pytest
import torch
from torch import nn

from grader.judge.session import lab_fixture
from grader.oracle.lab03 import JudgeMLP, fits, same_outputs

lab = lab_fixture("lab03")
pytestmark = pytest.mark.hidden


@pytest.mark.points(1)
def test_build_mlp_other_sizes_match_grader_rebuild(lab, grader_seed):
    g = torch.Generator().manual_seed(grader_seed)
    for depth, activation, width, n_in, n_out, shape in (
        (4, "relu", 7, 13, 5, (13,)),
        (3, "sigmoid", 11, 36, 2, (1, 6, 6)),
        (5, "relu", 4, 9, 7, (3, 3)),
    ):
        model = lab.build_mlp(depth, width=width, activation=activation, n_in=n_in, n_out=n_out)
        net = JudgeMLP(depth, activation, width, n_in, n_out)
        ok = fits(net, lab.grader.tensors(model))
        x = torch.randn(11, *shape, generator=g) * 2
        ok = ok and same_outputs(lab, model, net, x)
        assert ok, (
            "build_mlp with hidden depths, widths, input sizes and numbers of classes does not build the specified "
            "network: check that every argument (n_hidden_layers, width, activation, n_in, n_out) is used, and that "
            "inputs of any shape (N, ...) are flattened"
        )


def _blobs(g, n, n_in, n_classes, centres):
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = centres[y] + 2.0 * torch.randn(n, n_in, generator=g)
    return x.view(n, 1, 2, n_in // 2), y


@pytest.mark.points(1)
@pytest.mark.timeout(60)
def test_train_learns_another_problem(lab, grader_seed):
    """train() on a grader-made net and a small synthetic problem with other arguments.

    Gaussian blobs (4 classes in 10-D, shaped as (N, 1, 2, 5) images), 500 training samples in
    batches of 48 (the last one smaller), lr 0.05, 6 epochs; the grader measures the accuracy on
    its own 400 held-out samples. Over grader seeds 1-100 the solution and tests/alt reach min 0.78,
    median 0.93 (threshold 0.65; chance 0.25).
    """
    g = torch.Generator().manual_seed(grader_seed)
    n_in, n_classes = 10, 4
    centres = 2.0 * torch.randn(n_classes, n_in, generator=g)
    x_train, y_train = _blobs(g, 500, n_in, n_classes, centres)
    x_test, y_test = _blobs(g, 400, n_in, n_classes, centres)
    torch.manual_seed(grader_seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, n_classes), nn.LogSoftmax(dim=1))
    handle = lab.grader.to_worker(model)
    lab.train(handle, x_train, y_train, epochs=6, lr=0.05, momentum=0.9, batch_size=48, device="cpu", seed=grader_seed)
    tensors = lab.grader.tensors(handle)
    params = list(model.parameters())
    ok = len(tensors) == len(params) and all(isinstance(t, torch.Tensor) and t.shape == p.shape for t, p in zip(tensors, params))
    if ok:
        with torch.no_grad():
            for t, p in zip(tensors, params):
                p.copy_(t.to(p.dtype))
            acc = float((model(x_test).argmax(dim=1) == y_test).double().mean())
        ok = acc >= 0.65
    assert ok, (
        "train() does not learn a hidden problem (other input shape, number of classes, batch size that does not "
        "divide N, learning rate and epochs): the grader's held-out accuracy of the trained net is too low. "
        "Check that every argument is used and that every mini-batch, the last smaller one too, takes a step"
    )


@pytest.mark.points(1)
def test_subsample_other_class_distribution(lab, grader_seed):
    sizes = {0: 40, 2: 25, 3: 12, 5: 9, 7: 60, 9: 14}  # unequal classes, labels with gaps
    labels = torch.cat([torch.full((n,), c) for c, n in sizes.items()])
    n = len(labels)
    labels = labels[torch.randperm(n, generator=torch.Generator().manual_seed(grader_seed))]
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()  # x = sample id
    for fraction in (0.25, 0.5):
        xs, ys = lab.subsample(x, labels, fraction, seed=grader_seed + 7)
        want = round(fraction * n)
        ok = isinstance(xs, torch.Tensor) and isinstance(ys, torch.Tensor) and len(xs) == len(ys) == want
        if ok:
            ids = xs[:, 0, 0, 0].round().long()
            ok = len(torch.unique(ids)) == want and bool(torch.all((ids >= 0) & (ids < n)))
            ok = ok and torch.equal(labels[ids.clamp(0, n - 1)], ys)
        if ok:
            for c, size in sizes.items():
                ok = ok and abs(int((ys == c).sum()) - fraction * size) < 1
        assert ok, (
            "subsample() is wrong on a hidden data set (other class sizes, labels that are not 0..K-1, image-shaped x): "
            "check the total size, the per-class counts, drawing without replacement and that pairs stay together"
        )
