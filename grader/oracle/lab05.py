"""Lab 5's answer key: the grader's own copy of the lecture's CNNs (fc, gap1, gap4), rebuilt from the
parameter tensors the worker reports, its forward pass and probabilities, the tiny models and toy images
the rubric trains, and the calls of the student's model with errors in words (labs/lab05_cnn.py; the
rubric is grader/test_lab05_cnn.py)."""

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
