"""Lab 5's answer key: the grader's own copy of the lecture's CNNs (fc, gap1, gap4), rebuilt from the
parameter tensors the worker reports, its forward pass and probabilities, the tiny models and toy images
the rubric trains, the calls of the student's model with errors in words, and the slips of the model
and randomize_labels checks in words (labs/lab05_cnn.py; the rubric is grader/test_lab05_cnn.py, the
trainings are grader/oracle/lab05_runs.py).

How the rubric judges from plain data:

* structure: the parameter tensors the worker reports (``model.parameters()`` order, exact
  shapes) are loaded into the grader's own model, and the student's forward pass must give the
  grader's outputs on random images; parameter counts are counted from those tensors. A probe
  (``lab05.trace``: forward hooks on every ``nn.Conv2d`` / ``nn.Linear``) reports which layer
  is called with which shapes, but only to put a failure into words (the layer, the padding,
  the pool, the flatten), never to pass a check;
* the sigmoid: the grader loads parameters of its choice (zero conv weights, so the features are
  known whatever the body does) and computes the expected output itself;
* gradients: the gradients the worker reports for each conv layer must match finite
  differences of the loss, which the grader computes from the model's outputs at perturbed
  parameters;
* randomize_labels: its outputs come back as data and are judged by the rubric (class counts, a
  permutation of distinct values, the seed); whether it changed its input is read back from a
  handle kept in the worker.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.judge import remote
from grader.kit import PASS_THROUGH

VARIANTS = ("fc", "gap1", "gap4")
LECTURE_PARAMETERS = {"fc": 26117, "gap1": 45, "gap4": 489}
LECTURE_SIZE = 320
N_FILTERS = 4  # filters of every conv layer (lecture)
N_HIDDEN = 16  # units of the hidden dense layer of "fc" (lecture)
FORWARD_ATOL = 1e-5  # student forward vs the grader's model with the same parameters


# --------------------------------------------------------------------------- the grader's own models


class LectureCNN(nn.Module):
    """The grader's own implementation of the lecture's models (``fc``, ``gap1``, ``gap4``).

    Parameters in the order the lab specifies (conv layers, then the dense layers), each conv
    3x3, 4 filters, stride 1, padding 1, with bias; ReLU after every conv, 2x2 max-pool after
    every conv of ``fc`` and ``gap4``; ``fc``: flatten, dense 16 + ReLU, dense 1; ``gap1`` /
    ``gap4``: the mean of every feature map, dense 1; a sigmoid at the output.
    """

    def __init__(self, variant: str, image_size: int) -> None:
        super().__init__()
        self.variant = variant
        n_blocks = 1 if variant == "gap1" else 4
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if k == 0 else N_FILTERS, N_FILTERS, 3, padding=1) for k in range(n_blocks)
        )
        if variant == "fc":
            side = image_size
            for _ in range(n_blocks):
                side //= 2
            self.hidden = nn.Linear(N_FILTERS * side * side, N_HIDDEN)
            self.out = nn.Linear(N_HIDDEN, 1)
        else:
            self.out = nn.Linear(N_FILTERS, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
            if self.variant != "gap1":
                x = F.max_pool2d(x, 2)
        return x

    def logits(self, h: torch.Tensor, order: tuple[int, int, int] = (1, 2, 3)) -> torch.Tensor:
        """The output layer's z from the features; ``order``: the axes flattened (fc), (C, H, W) by default."""
        if self.variant == "fc":
            return self.out(F.relu(self.hidden(h.permute(0, *order).flatten(1))))
        return self.out(h.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(self.features(x)))


def expected_shapes(variant: str, size: int) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in LectureCNN(variant, size).parameters()]


def rebuild(variant: str, size: int, tensors: list) -> LectureCNN | None:
    """The grader's model with the reported parameters, or None if their shapes are not the lecture's."""
    model = LectureCNN(variant, size)
    params = list(model.parameters())
    if [tuple(t.shape) for t in tensors] != [tuple(p.shape) for p in params]:
        return None
    with torch.no_grad():
        for p, t in zip(params, tensors):
            p.copy_(torch.as_tensor(t, dtype=torch.float32))
    return model.eval()


def own_outputs(model: LectureCNN, x: torch.Tensor) -> list[torch.Tensor]:
    """z of the output layer for every flatten order the grader accepts (fc: any order of C, H, W)."""
    with torch.no_grad():
        h = model.features(x)
        orders = list(itertools.permutations((1, 2, 3))) if model.variant == "fc" else [(1, 2, 3)]
        return [model.logits(h, order).reshape(-1).double() for order in orders]


def forward_matches(model: LectureCNN, x: torch.Tensor, got) -> bool:
    """Whether the student's output is the grader's model's (the output nonlinearity is judged
    by test_output_is_sigmoid_probability, so sigmoid(z), sigmoid(sigmoid(z)) and z all count here)."""
    if not isinstance(got, torch.Tensor) or got.numel() != len(x) or not got.is_floating_point():
        return False
    got = got.detach().reshape(-1).double()
    for z in own_outputs(model, x):
        for want in (torch.sigmoid(z), torch.sigmoid(torch.sigmoid(z)), z):
            if torch.allclose(got, want, atol=FORWARD_ATOL, rtol=1e-4):
                return True
    return False


def he_tensors(shapes: list[tuple[int, ...]], seed: int) -> list[torch.Tensor]:
    """The grader's own initialisation (He normal weights, zero biases), seeded, in parameter
    order: the accuracy check does not depend on the student's initialisation."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        if len(shape) > 1:
            fan_in = math.prod(shape[1:])
            out.append(torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in))
        else:
            out.append(torch.zeros(shape))
    return out


def tiny_net() -> nn.Sequential:
    """The grader's own small classifier for the training checks: conv 1->3, tanh (no unit can
    die, so every parameter always gets a gradient), mean, dense 3->1, sigmoid."""
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(3, 1), nn.Sigmoid())


def spread_net(seed: int) -> nn.Sequential:
    """:func:`tiny_net` initialised from ``seed`` (the global RNG), its output weight x20 to spread
    the probabilities."""
    torch.manual_seed(seed)
    net = tiny_net()
    with torch.no_grad():
        net[4].weight.mul_(20.0)
    return net


def tiny_from(lab, handle, where: str) -> nn.Sequential:
    """The grader's small model with the parameters the worker reports for ``handle``."""
    tensors = lab.grader.tensors(handle)
    model = tiny_net()
    shapes = [tuple(t.shape) for t in tensors]
    want = [tuple(p.shape) for p in model.parameters()]
    assert shapes == want, (
        f"{where}: the grader's model came back with parameters of shapes {shapes} instead of {want}: "
        "train() must train the model it is given, in place"
    )
    with torch.no_grad():
        for p, t in zip(model.parameters(), tensors):
            p.copy_(t.float())
    return model.eval()


def toy_images(g: torch.Generator, n: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, size, size) in [0, 1]: smooth blobs, plus pixel noise for label 0.

    Labels 0, 1, 1, 0, 1, 1, ...: unbalanced, so that swapped labels change even the bias gradient.
    """
    base = F.avg_pool2d(torch.rand(n, 1, size + 4, size + 4, generator=g), 5, stride=1)
    y = (torch.arange(n) % 3 != 0).float()
    noise = 0.15 * torch.randn(n, 1, size, size, generator=g) * (1 - y).view(-1, 1, 1, 1)
    return (base + noise).clamp(0, 1), y


def own_proba(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.to("cpu")
    model.eval()
    with torch.no_grad():
        return model(x).reshape(-1).float()


# --------------------------------------------------------------------------- calls into the worker


def build(lab, variant: str, size: int):
    """``lab.build_cnn(variant, image_size=size)``: a handle to the model in the worker (whose RNGs
    the plugin seeds with the check's seed at its first call, so the initialisation is reproducible)."""
    model = lab.build_cnn(variant, image_size=size)
    is_module = isinstance(model, remote.RemoteObject) and lab.grader.probe("lab05.is_module", model) is True
    assert is_module, (
        f"build_cnn({variant!r}) must return an nn.Module, got "
        f"{model.type_name if isinstance(model, remote.RemoteObject) else type(model).__name__}"
    )
    return model


def he_model(lab, variant: str, size: int, seed: int, why: str = ""):
    """``build(lab, variant, size)`` with the grader's He initialisation (:func:`he_tensors`, seeded) loaded,
    after making sure its parameters have the lecture's shapes (``why`` ends the message if not)."""
    model = build(lab, variant, size)
    expected = expected_shapes(variant, size)
    shapes = [tuple(t.shape) for t in lab.grader.tensors(model)]
    assert shapes == expected, (
        f"build_cnn({variant!r}, image_size={size}): model.parameters() gives tensors of shapes {shapes}, the "
        f"lecture's model {expected}{why}"
    )
    lab.grader.probe("load_parameters", model, he_tensors(expected, seed))
    return model


def padding_hint(lab, model) -> bool:
    """Whether a conv of the student's model has no padding (evidence, for the words only)."""
    try:
        return any(m.get("nn_type") == "Conv2d" and m.get("padding") in (0, (0, 0), "valid")
                   for m in lab.grader.modules(model))
    except remote.StudentError:
        return False




def fail_forward(lab, model, x, where: str, exc: Exception) -> None:
    hint = ""
    if padding_hint(lab, model):
        hint = " (a conv has no padding: with padding=1 ('same') each pool halves the size exactly)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = getattr(exc, "type_name", type(exc).__name__)
    pytest.fail(f"{where} fails on a batch of shape {tuple(x.shape)}{hint}: {name}: {first}", pytrace=False)


def run_model(lab, model, x: torch.Tensor, where: str, probe: str, *args):
    """Run the probe ``probe`` on ``model`` and ``x`` in the worker; a student error becomes a
    failure in words that says which model failed (not implemented, exits and crashes pass through)."""
    try:
        return lab.grader.probe(probe, model, x, *args)
    except NotImplementedError:
        raise
    except PASS_THROUGH:
        raise
    except remote.StudentError as exc:
        fail_forward(lab, model, x, where, exc)


def forward(lab, model, x: torch.Tensor, where: str):
    """model(x) in the worker (no gradients), or a failure in words that says which model failed."""
    return run_model(lab, model, x, where, "forward")


def trace(lab, model, x: torch.Tensor, where: str = "the model", values: bool = False):
    """The ``lab05.trace`` probe: (calls, out), calls = the Conv2d / Linear calls in order (evidence)."""
    return run_model(lab, model, x, where, "lab05.trace", values)


def summary(calls) -> str:
    parts = []
    for c in calls:
        if c["type"] == "Conv2d":
            parts.append(f"conv {c.get('in_channels')}->{c.get('out_channels')} k{tuple(c.get('kernel_size', ()))} "
                         f"on {tuple(c['input_shape'][-2:])}")
        else:
            parts.append(f"dense {c.get('in_features')}->{c.get('out_features')}")
    return "; ".join(parts) or "no nn.Conv2d / nn.Linear layer was called"


def layers_of(shapes: list[tuple[int, ...]]) -> list[tuple[str, tuple[int, ...], bool]]:
    """(kind, weight shape, has bias) per layer, read from parameter shapes in order: a 4-D
    tensor is a conv weight, a 2-D one a dense weight, a 1-D one right after it of its size its bias."""
    layers, i = [], 0
    while i < len(shapes):
        s = shapes[i]
        if len(s) in (2, 4):
            bias = i + 1 < len(shapes) and len(shapes[i + 1]) == 1 and shapes[i + 1][0] == s[0]
            layers.append(("conv" if len(s) == 4 else "dense", s, bias))
            i += 2 if bias else 1
        else:
            layers.append(("other", s, False))
            i += 1
    return layers


# --------------------------------------------------------------------------- Task 5.1: the model checks in words


def count_slip(lab, model, x: torch.Tensor, where: str) -> str:
    """The end of the message for a parameter count that is not the lecture's: a conv without
    padding, then the layers the trace saw (evidence, at 320 x 320)."""
    hint = ""
    if padding_hint(lab, model):
        hint = " (a conv has no padding: use padding=1 ('same'), so 320 -> 160 -> 80 -> 40 -> 20 after the pools)"
    calls, _ = trace(lab, model, x, where)
    return f"{hint}. Layers called: {summary(calls)}"


def check_blocks(variant: str, size: int, calls, n_blocks: int) -> None:
    """The conv blocks as the trace reports them (evidence: words for a failure, never a pass)."""
    convs = [c for c in calls if c["type"] == "Conv2d"]
    where = f"build_cnn({variant!r}, image_size={size})"
    assert len(convs) == n_blocks, (
        f"{where} applies {len(convs)} conv layer(s), expected {n_blocks}. Layers called: {summary(calls)}"
    )
    for k, c in enumerate(convs, start=1):
        layer = f"{where}: conv layer {k} of {n_blocks} ({c['name']})"
        kernel = tuple(c.get("kernel_size", ()))
        assert kernel == (3, 3), f"{layer} has kernel {kernel}, expected 3x3"
        want_in = 1 if k == 1 else 4
        assert (c.get("in_channels"), c.get("out_channels")) == (want_in, 4), (
            f"{layer} maps {c.get('in_channels')} -> {c.get('out_channels')} channels, expected {want_in} -> 4 (4 filters)"
        )
        assert c["has_bias"], f"{layer} has no bias (the lecture's 3x3x4 conv has 4 biases)"
        inp, out = tuple(c["input_shape"]), tuple(c["output_shape"])
        assert out[-2:] == inp[-2:], (
            f"{layer} turns {inp[-2:]} into {out[-2:]}: use stride 1 and padding=1 ('same')"
        )
        if k > 1 and "input" in c:
            want = F.max_pool2d(F.relu(convs[k - 2]["output"]), 2)
            got = c["input"]
            ok = got.shape == want.shape and torch.allclose(got, want, atol=1e-5, rtol=1e-4)
            assert ok, (
                f"{layer}: its input (shape {tuple(got.shape)}) is not max_pool2d(relu(output of conv layer {k - 1}), 2) "
                f"(shape {tuple(want.shape)}): each block is conv 3x3, ReLU, 2x2 max-pool"
            )


def check_head(variant: str, size: int, calls) -> None:
    """The dense layers as the trace reports them (evidence: words for a failure, never a pass)."""
    where = f"build_cnn({variant!r}, image_size={size})"
    dense = [c for c in calls if c["type"] == "Linear"]
    want_dense = [(4 * (size // 16) ** 2, 16), (16, 1)] if variant == "fc" else [(4, 1)]
    got_dense = [(c.get("in_features"), c.get("out_features")) for c in dense]
    assert got_dense == want_dense, f"{where}: dense layers {got_dense}, expected {want_dense} (in_features, out_features)"
    last_conv = [c for c in calls if c["type"] == "Conv2d"][-1]
    if "output" not in last_conv:
        return
    features = F.relu(last_conv["output"])
    if variant != "gap1":
        features = F.max_pool2d(features, 2)
    first_in = dense[0]["input"]
    if variant == "fc":
        want = features.flatten(1)
        ok = first_in.shape == want.shape and torch.allclose(first_in.sort(dim=1).values, want.sort(dim=1).values, atol=1e-5)
        assert ok, (
            f"{where}: the input of dense layer 1 ({want_dense[0][0]} -> 16) is not the flattened output of the last "
            f"block (conv, ReLU, 2x2 max-pool): flatten {tuple(features.shape)} to {tuple(want.shape)}"
        )
        hidden_out, out_in = dense[0]["output"], dense[1]["input"]
        assert out_in.shape == hidden_out.shape and torch.allclose(out_in, F.relu(hidden_out), atol=1e-6), (
            f"{where}: the input of the output layer (16 -> 1) is not relu(dense layer 1): "
            "the hidden dense layer needs its ReLU"
        )
    else:
        want = features.mean(dim=(2, 3))
        ok = first_in.shape == want.shape and torch.allclose(first_in, want, atol=1e-5, rtol=1e-4)
        block = "the ReLU of the conv layer" if variant == "gap1" else "the last block (conv, ReLU, 2x2 max-pool)"
        assert ok, (
            f"{where}: the input of the dense layer (4 -> 1) is not the global average pool of {block}: "
            "average each feature map over H and W with global_average_pool"
        )


def check_structure(lab, model, variant: str, size: int, x: torch.Tensor) -> None:
    """Pass only if the reported parameters have the lecture's shapes and the grader's model with
    them computes the student's outputs; otherwise fail with the words the trace suggests."""
    where = f"build_cnn({variant!r}, image_size={size})"
    tensors = lab.grader.tensors(model)
    own = rebuild(variant, size, tensors)
    if own is not None:
        got = forward(lab, model, x, where)
        if forward_matches(own, x, got):
            return
    calls, _ = trace(lab, model, x, where, values=True)
    check_blocks(variant, size, calls, 1 if variant == "gap1" else 4)
    check_head(variant, size, calls)
    if own is None:
        shapes = [tuple(t.shape) for t in tensors]
        pytest.fail(
            f"{where}: model.parameters() gives tensors of shapes {shapes}, the lecture's model "
            f"{expected_shapes(variant, size)}: the conv layers, then the dense layers, in this order"
        )
    pytest.fail(
        f"{where}: its output differs from the lecture's model with the same parameters (conv 3x3 padding 1, "
        "ReLU, 2x2 max-pool per block; flatten, dense, ReLU, dense for 'fc'; global average pool, dense for "
        "'gap1' / 'gap4'): check the order of the layers in forward"
    )


def head_parameters(tensors: list, g: torch.Generator, z_target: float) -> tuple[list[torch.Tensor], float] | None:
    """Parameters that make the body's output known whatever it does: every conv weight 0 and
    every conv bias the same c > 0 (each conv outputs c everywhere, so ReLU, max-pool, global
    average pool and flatten in any order all give c); positive hidden dense layers (their ReLU
    changes nothing); the output layer's bias set so that z = z_target.

    Returns (tensors, z of the output layer as the grader computes it in float64 from those
    float32 tensors), or None if the model has no dense layer.
    """
    layers = layers_of([tuple(t.shape) for t in tensors])
    dense = [i for i, (kind, _, _) in enumerate(layers) if kind == "dense"]
    if not dense:
        return None
    # The dense layers in the order the data flows (whatever order they were created in): back
    # from the output layer (the last one with one output), each fed by the one whose outputs fit.
    last = max((i for i in dense if layers[i][1][0] == 1), default=dense[-1])
    chain = [last]
    while True:
        n_in = layers[chain[0]][1][1]
        feeder = [i for i in dense if i not in chain and layers[i][1][0] == n_in]
        if not feeder:
            break
        chain.insert(0, feeder[-1])
    c = 0.5
    convs = [bias for kind, _, bias in layers if kind == "conv"]
    value = c if convs and convs[-1] else 0.0  # every feature the first dense layer sees
    made: dict[int, list[torch.Tensor]] = {}
    h = torch.full((layers[chain[0]][1][1],), value, dtype=torch.float64)
    z = 0.0
    for i in chain:
        shape, bias = layers[i][1], layers[i][2]
        n_out, n_in = shape
        if i == last:
            w = (torch.randn(shape, generator=g) / math.sqrt(n_in)).float()
            zw = w.double() @ h
            b = (z_target - zw).float()
            z = float((zw + (b.double() if bias else 0.0))[0])
        else:
            w = (torch.rand(shape, generator=g) / n_in).float()
            b = (0.1 + torch.rand(n_out, generator=g)).float()
            h = torch.relu(w.double() @ h + (b.double() if bias else 0.0))
        made[i] = [w, b] if bias else [w]
    out: list[torch.Tensor] = []
    k = 0  # index into tensors
    for i, (kind, shape, bias) in enumerate(layers):
        n = 2 if bias else 1
        if kind == "conv":
            out += [torch.zeros(shape)] + ([torch.full((shape[0],), c)] if bias else [])
        elif i in made:
            out += made[i]
        else:
            out += [t.clone() for t in tensors[k:k + n]]
        k += n
    return out, z


def sigmoid_slip(got: torch.Tensor, z: float) -> str:
    """What the output ``got`` (float64, one value per image) is instead of sigmoid(z) of the output layer."""
    zt = torch.full_like(got, z)
    if torch.allclose(got, torch.sigmoid(torch.sigmoid(zt)), atol=1e-6, rtol=0):
        return ("the sigmoid is applied twice to the output layer: sigmoid(sigmoid(z)) is always in (0.5, 0.73), "
                "so every image is called 'accelerated'")
    if torch.allclose(got, zt, atol=1e-6, rtol=0):
        return "the output layer has no sigmoid"
    return "apply exactly one sigmoid to the output of the last dense layer"


def pool_slip(got: torch.Tensor, x: torch.Tensor) -> str:
    """The end of the message for a global average pool ``got`` of ``x`` that is not the mean over H and W."""
    if torch.allclose(got, x.sum(dim=(2, 3)), atol=1e-5):
        return ": it is the sum, not the mean, over H and W (divide by H W)"
    if torch.allclose(got, x.amax(dim=(2, 3)), atol=1e-6):
        return ": it is the maximum, not the mean, over H and W"
    return ""


def bce(p: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.binary_cross_entropy(p.reshape(-1).double().clamp(1e-12, 1 - 1e-12), y.double()))


def gradient_confirmed(lab, model, x, y, tensors: list, i: int, grad: torch.Tensor, where: str) -> bool:
    """Whether the reported gradient of parameter ``i`` is how the loss really changes: central
    finite differences of the grader's BCE of the model's outputs along the gradient's direction
    (several step sizes: float32 noise at small steps, ReLU / max-pool kinks at large ones)."""
    norm = float(grad.double().norm())
    direction = grad / norm
    scale = max(float(tensors[i].norm()), 1e-3)
    try:
        for rel in (5e-4, 1e-3, 2e-3):
            eps = rel * scale
            losses = []
            for sign in (1.0, -1.0):
                moved = [t.clone() for t in tensors]
                moved[i] = tensors[i] + sign * eps * direction
                lab.grader.probe("load_parameters", model, moved)
                losses.append(bce(forward(lab, model, x, where), y))
            slope = (losses[0] - losses[1]) / (2 * eps)
            if abs(slope - norm) <= 0.5 * norm:
                return True
        return False
    finally:
        lab.grader.probe("load_parameters", model, tensors)


def conv_gradients_reached(lab, variant: str, x: torch.Tensor, y: torch.Tensor, reached: dict[str, bool]) -> list[str]:
    """One try of the gradient check on a new initialisation of ``variant`` at 32 x 32: returns the
    names of its conv layers and sets ``reached[name]`` for every conv layer not reached yet: whether
    the gradient the worker reports for its weight (``lab05.bce_gradients``) has the weight's shape, is
    not zero, and is how the loss changes (:func:`gradient_confirmed`). A frozen conv parameter or an
    error in forward fails the check in words."""
    model = build(lab, variant, 32)  # a new initialisation at every attempt
    where = f"build_cnn({variant!r}, image_size=32)"
    params = lab.grader.parameters(model)
    tensors = [t for _, t, _ in params]
    shapes = [tuple(t.shape) for t in tensors]
    convs = [i for i, s in enumerate(shapes) if len(s) == 4]
    names = [params[i][0].rsplit(".", 1)[0] if "." in params[i][0] else params[i][0] for i in convs]
    for k, i in enumerate(convs, start=1):
        has_bias = i + 1 < len(shapes) and shapes[i + 1] == (shapes[i][0],)
        for pname, j in (("weight", i), ("bias", i + 1 if has_bias else None)):
            if j is not None and not params[j][2]:
                pytest.fail(
                    f"build_cnn({variant!r}): the {pname} of conv layer {k} ({names[k - 1]}) is frozen "
                    "(requires_grad is False): every layer must be trained"
                )
    try:
        grads = lab.grader.probe("lab05.bce_gradients", model, x, y)
    except (NotImplementedError, *PASS_THROUGH):
        raise
    except remote.StudentError as exc:
        fail_forward(lab, model, x, where, exc)
    for k, (i, name) in enumerate(zip(convs, names)):
        if reached.get(name):
            continue
        grad = grads[i][1] if i < len(grads) else None
        ok = grad is not None and tuple(grad.shape) == shapes[i] and bool(grad.abs().sum() > 0)
        ok = ok and gradient_confirmed(lab, model, x, y, tensors, i, grad, where)
        reached[name] = ok
    return names


# --------------------------------------------------------------------------- Task 5.3: randomize_labels


def alternating(n: int, dtype=torch.float32) -> torch.Tensor:
    """0, 1, 0, 1, ...: the lab's order (reference, accelerated, reference, ...)."""
    return (torch.arange(n) % 2).to(dtype)


def shuffled(lab, y, seed: int, n: int, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``lab.randomize_labels(y, seed)`` (``y`` data or a handle of n labels of ``dtype``), checked to
    be a tensor of n labels of that dtype."""
    out = lab.randomize_labels(y, seed)
    ok = isinstance(out, torch.Tensor) and tuple(out.shape) == (n,) and out.dtype == dtype
    assert ok, (
        f"{what} must return a new ({n},) tensor of the dtype of y ({dtype}), the labels reordered; got "
        + (f"{out.dtype} of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__)
    )
    return out


def check_counts(out: torch.Tensor, y: torch.Tensor, what: str) -> None:
    for label in torch.unique(y).tolist():
        want, got = int((y == label).sum()), int((out == label).sum())
        assert got == want, (
            f"{what} changed the class counts: {got} labels {label:g} instead of {want} of {len(y)}. Permute the labels "
            "(each used exactly once, e.g. y[torch.randperm(N, generator=...)]); do not draw new labels or sample "
            "positions with replacement"
        )
    assert set(torch.unique(out).tolist()) <= set(torch.unique(y).tolist()), f"{what} returned labels that are not in y"
