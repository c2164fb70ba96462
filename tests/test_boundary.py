"""The trust boundary itself: the wire format, where student code runs, and the judge's budgets."""

from __future__ import annotations

import json
import socket
import struct

import numpy as np
from pathlib import Path

import pytest
import torch

from grader.judge.session import REPO_ROOT
from grader.worker import wire
from tests.planted import grade_variant

SOL1 = (REPO_ROOT / "solutions" / "lab01_autograd.py").read_text()


def _roundtrip(value, **kw):
    text, buffers = wire.encode(value, **kw)
    return wire.decode(text, b"".join(buffers))


def test_plain_values_round_trip():
    value = {"a": [1, 2.5, None, True, "s"], "t": (1, (2, 3)), 4: np.arange(6, dtype=np.int16).reshape(2, 3),
             "0d": np.asarray(3.0), "strided": np.arange(12.0).reshape(3, 4)[::2, 1:],
             "x": torch.linspace(0, 1, 5, dtype=torch.float64, requires_grad=True), "nan": float("nan")}
    out = _roundtrip(value)
    assert out["a"] == [1, 2.5, None, True, "s"] and out["t"] == (1, (2, 3))
    assert out[4].dtype == np.int16 and out[4].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out["0d"].shape == () and out["0d"] == 3.0
    assert np.array_equal(out["strided"], value["strided"])
    assert type(out["x"]) is torch.Tensor and out["x"].dtype == torch.float64 and out["x"].requires_grad
    assert torch.equal(out["x"].detach(), value["x"].detach()) and np.isnan(out["nan"])


def test_lying_subclasses_arrive_as_plain_values():
    class Liar(float):
        def __eq__(self, other):
            return True

        def __float__(self):
            return 123.0

    class LyingList(list):
        def __iter__(self):
            return iter([0, 0, 0])

    class LyingTensor(torch.Tensor):
        pass

    out = _roundtrip([Liar(2.5), LyingList([1, 2]), torch.ones(2).as_subclass(LyingTensor)])
    assert type(out[0]) is float and out[0] == 2.5 and not out[0] == 3.0
    assert out[1] == [1, 2]
    assert type(out[2]) is torch.Tensor


def test_objects_cross_only_as_handles():
    with pytest.raises(wire.WireError):
        wire.encode(object())
    kept = []
    out = _roundtrip([torch.nn.Linear(2, 2)], handle_of=lambda obj: kept.append(obj) or wire.Handle(7, "Linear"))
    assert isinstance(out[0], wire.Handle) and out[0].id == 7 and len(kept) == 1


@pytest.mark.parametrize("doc, payload", [
    ({"__array__": "numpy", "dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}, b"\0" * 8),
    ({"__array__": "numpy", "dtype": "float64", "shape": [4], "offset": 0, "nbytes": 32}, b"\0" * 8),
    ({"__pickle__": "gASVAAAAAAAAAAAu"}, b""),
    ({"__make__": "sequential", "args": []}, b""),
    ({"__tuple__": "not a list"}, b""),
])
def test_decode_rejects_anything_outside_the_format(doc, payload):
    with pytest.raises(wire.WireError):
        wire.decode(json.dumps(doc).encode(), payload)


def test_frames_over_the_limit_are_refused():
    a, b = socket.socketpair()
    a.sendall(struct.pack(">QQ", wire.MAX_JSON + 1, 0))
    with pytest.raises(wire.WireError):
        wire.recv_frame(b)
    a.close()
    b.close()


def test_a_worker_reply_cannot_make_the_judge_allocate_gigabytes():
    """The judge reads replies with a 256 MiB payload cap: a frame announcing more is refused before
    a byte of it is allocated (the requests the judge sends may still carry data sets)."""
    import tracemalloc

    a, b = socket.socketpair()
    a.sendall(struct.pack(">QQ", 10, wire.MAX_REPLY_PAYLOAD + 1))
    tracemalloc.start()
    with pytest.raises(wire.WireError):
        wire.recv_frame(b, max_payload=wire.MAX_REPLY_PAYLOAD)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20
    assert wire.MAX_REPLY_PAYLOAD <= 256 << 20 < wire.MAX_PAYLOAD
    a.close()
    b.close()
    src = (Path(__file__).resolve().parent.parent / "grader" / "judge" / "remote.py").read_text()
    assert "max_payload=wire.MAX_REPLY_PAYLOAD" in src  # the judge's one reading call uses the cap


@pytest.mark.timeout(200)
def test_student_code_runs_only_in_the_worker(tmp_path):
    """The lab is imported only by worker processes, never by the judge; C-level hangs are stopped."""
    log = tmp_path / "imported-by.txt"
    lab1 = SOL1 + f"\nimport sys as _sys\nopen({str(log)!r}, 'a').write(repr(_sys.argv) + '\\n')\n"
    # A hang in C code that no Python signal handler inside the process could interrupt.
    lab1 = lab1.replace("    c = a + b\n    d = b + 1.0\n    e = c * d\n",
                        "    import ctypes\n    ctypes.CDLL(None).sleep(1000)\n", 1)
    results = grade_variant({"lab01_autograd.py": lab1}, tmp_path, "test_lab01_autograd.py",
                            extra=["--timeout", "5"])
    lines = log.read_text().splitlines()
    assert lines and all("worker.py" in line for line in lines), lines
    assert "time budget" in results["test_graph_forward_values"]["output"]
    assert results["test_fit_recovers_line[cpu]"]["score"] == 2  # the lab goes on in a new worker
