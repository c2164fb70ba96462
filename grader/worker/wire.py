"""The wire format between the judge (pytest) and the worker (student code): plain data only.

A message is one frame on a stream socket::

    8 bytes  big-endian length J of the JSON header
    8 bytes  big-endian length B of the binary payload
    J bytes  UTF-8 JSON
    B bytes  raw array bytes, referenced from the JSON by offset

JSON carries ``None``, ``bool``, ``int``, ``float`` (NaN/inf allowed), ``str`` and lists; the
other values are tagged objects:

* ``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}``;
* ``{"__array__": kind, "dtype": "float32", "shape": [...], "offset": o, "nbytes": n}`` for NumPy
  arrays (kind ``numpy``) and tensors (kind ``tensor``, plus ``requires_grad`` and ``device``);
* ``{"__handle__": id, "type": "module.Class", "callable": bool}``: an object that stays in the
  worker (a model, a normaliser); the judge only holds its id;
* ``{"__make__": name, "args": [...]}``: the judge asks the worker to build a grader probe;
* ``{"__dtype__": "float32"}``, ``{"__device__": "cpu"}``.

:func:`decode` accepts nothing else: there is no pickle and no code in the format, arrays are
rebuilt with ``np.frombuffer`` from an allow-list of numeric dtypes, and every value it returns is
a plain built-in type, a NumPy array or a plain ``torch.Tensor``. A student object whose
``__eq__`` lies, or a tensor subclass, arrives as the plain value it encodes (source of the rule:
PyTorch's ``torch.load(weights_only=True)``: unpickling is code execution).

This file is imported by both processes and must not import anything from ``grader`` (the
worker cannot read the rest of the grader on an autograder).
"""

from __future__ import annotations

import json
import math
import socket
import struct

import numpy as np

MAX_JSON = 64 << 20  # bytes of JSON in one message
MAX_PAYLOAD = 2 << 30  # bytes of array data in one message (the judge's requests: data sets)
MAX_REPLY_PAYLOAD = 256 << 20  # bytes of array data in one worker reply (weights, outputs: < 100 MB)
MAX_DEPTH = 32

#: dtypes that may cross the boundary (no object, void, string or datetime dtypes).
DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 complex64 complex128".split()
)
_HEADER = struct.Struct(">QQ")


class WireError(Exception):
    """A message broke the format: too large, too deep, an unknown tag or dtype, bad lengths."""


class Handle:
    """A reference to an object that lives in the worker (encoded as ``{"__handle__": id}``)."""

    __slots__ = ("id", "type", "callable")

    def __init__(self, id: int, type: str = "", callable: bool = False) -> None:
        self.id, self.type, self.callable = int(id), str(type), bool(callable)

    def __repr__(self) -> str:
        return f"<worker object #{self.id}: {self.type}>"


class Make:
    """A request to build a grader probe in the worker: ``Make("order_probe", 10)``."""

    __slots__ = ("name", "args")

    def __init__(self, name: str, *args) -> None:
        self.name, self.args = str(name), list(args)


# --------------------------------------------------------------------------- encoding


def _torch():
    import sys

    return sys.modules.get("torch")


def encode(value, handle_of=None) -> tuple[bytes, list]:
    """``value`` -> (JSON bytes, list of payload buffers).

    Args:
        value: plain data, arrays, tensors, :class:`Handle`, :class:`Make`, dtypes, devices.
        handle_of: called with any other object; returns the ``Handle`` to send instead. Without
            it, such an object raises :class:`WireError`.
    """
    buffers: list = []
    offset = [0]

    def enc(v, depth):
        if depth > MAX_DEPTH:
            raise WireError(f"value nested deeper than {MAX_DEPTH} levels")
        # Exact type checks: a subclass of float or list is re-encoded as the plain value.
        if v is None or v is True or v is False:
            return v
        torch = _torch()
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int.__index__(int(v)) if isinstance(v, np.integer) else int.__index__(v)
        if isinstance(v, (float, np.floating)):
            return float.__float__(float(v)) if isinstance(v, np.floating) else float.__float__(v)
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, Handle):
            return {"__handle__": v.id, "type": v.type, "callable": v.callable}
        if isinstance(v, Make):
            return {"__make__": v.name, "args": [enc(a, depth + 1) for a in v.args]}
        if isinstance(v, np.ndarray) or (torch is not None and isinstance(v, torch.Tensor)):
            return enc_array(v)
        if isinstance(v, (list, tuple, dict)):
            # Copied element by element through the base class: a subclass arrives plain.
            if isinstance(v, dict):
                return {"__dict__": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in dict.items(v)]}
            items = [enc(x, depth + 1) for x in (list.__iter__(v) if isinstance(v, list) else tuple.__iter__(v))]
            return items if isinstance(v, list) else {"__tuple__": items}
        if isinstance(v, (complex, np.complexfloating)):
            return enc_array(np.asarray(complex(v)))
        if torch is not None and isinstance(v, torch.dtype):
            return {"__dtype__": str(v).replace("torch.", "")}
        if torch is not None and isinstance(v, torch.device):
            return {"__device__": str(v)}
        if isinstance(v, np.dtype):
            return {"__dtype__": str(v)}
        if handle_of is None:
            raise WireError(f"cannot send an object of type {type(v).__name__}")
        return enc(handle_of(v), depth)

    def enc_array(v):
        torch = _torch()
        meta = {}
        if torch is not None and isinstance(v, torch.Tensor):
            t = torch.Tensor.detach(v)
            meta = {"requires_grad": bool(v.requires_grad), "device": str(t.device)}
            if t.dtype == torch.bfloat16:
                t = t.float()
            t = t.as_subclass(torch.Tensor) if type(t) is not torch.Tensor else t
            arr = t.cpu().resolve_conj().resolve_neg().contiguous().numpy()
            kind = "tensor"
        else:
            arr = np.asarray(v).view(np.ndarray)
            if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
                arr = arr.copy(order="C")
            kind = "numpy"
        dtype = str(arr.dtype)
        if dtype not in DTYPES:
            raise WireError(f"arrays of dtype {dtype} cannot be sent")
        data = memoryview(arr).cast("B") if arr.size else b""
        pad = -offset[0] % 64  # aligned offsets: the judge maps arrays onto the payload without copying
        if pad:
            buffers.append(b"\0" * pad)
            offset[0] += pad
        out = {"__array__": kind, "dtype": dtype, "shape": list(arr.shape), "offset": offset[0], "nbytes": len(data)}
        out.update(meta)
        buffers.append(data)
        offset[0] += len(data)
        return out

    doc = enc(value, 0)
    text = json.dumps(doc, allow_nan=True).encode()
    return text, buffers


# --------------------------------------------------------------------------- decoding


def decode(text: bytes, payload, handle=None, make=None):
    """JSON bytes + payload -> plain Python / NumPy / torch values.

    Args:
        handle: called with (id, type, callable) for ``__handle__`` entries (default: a
            :class:`Handle`).
        make: called with (name, args) for ``__make__`` entries; without it they are an error.

    Raises:
        WireError: anything outside the format.
    """
    if len(text) > MAX_JSON:
        raise WireError("message too large")
    try:
        doc = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"malformed message: {exc}") from None

    def dec(v, depth):
        if depth > MAX_DEPTH:
            raise WireError("message nested too deeply")
        if v is None or type(v) in (bool, int, str):
            return v
        if type(v) is float:
            return v
        if type(v) is list:
            return [dec(x, depth + 1) for x in v]
        if type(v) is not dict or len(v) == 0:
            raise WireError("unexpected value in message")
        if "__tuple__" in v:
            return tuple(dec(x, depth + 1) for x in _list(v["__tuple__"]))
        if "__dict__" in v:
            out = {}
            for pair in _list(v["__dict__"]):
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("bad dict entry")
                key = dec(pair[0], depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple)) and key is not None:
                    raise WireError("dict keys must be plain values")
                out[key] = dec(pair[1], depth + 1)
            return out
        if "__array__" in v:
            return dec_array(v)
        if "__handle__" in v:
            hid = v["__handle__"]
            if type(hid) is not int:
                raise WireError("bad handle")
            typ = v.get("type", "")
            return (handle or Handle)(hid, typ if type(typ) is str else "", v.get("callable") is True)
        if "__make__" in v:
            if make is None:
                raise WireError("probe requests are not accepted here")
            return make(str(v["__make__"]), [dec(a, depth + 1) for a in _list(v.get("args", []))])
        if "__dtype__" in v:
            name = v["__dtype__"]
            if name not in DTYPES and name != "bfloat16":
                raise WireError(f"unknown dtype {name!r}")
            torch = _torch()
            return getattr(torch, name) if torch is not None else np.dtype(name)
        if "__device__" in v:
            return str(v["__device__"])
        raise WireError("unknown tag in message")

    def dec_array(v):
        dtype, shape, off, nbytes = v.get("dtype"), v.get("shape"), v.get("offset"), v.get("nbytes")
        if dtype not in DTYPES or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise WireError("bad array header")
        if type(off) is not int or type(nbytes) is not int or off < 0 or off + nbytes > len(payload):
            raise WireError("array outside the payload")
        count = math.prod(shape)
        if count * np.dtype(dtype).itemsize != nbytes:
            raise WireError("array size does not match its shape")
        arr = np.frombuffer(payload, dtype=np.dtype(dtype), count=count, offset=off).reshape(shape)
        if not arr.flags.writeable:
            arr = arr.copy()
        if v["__array__"] == "tensor":
            import torch

            t = torch.from_numpy(arr)
            if v.get("requires_grad") is True and t.is_floating_point():
                t.requires_grad_(True)
            return t
        if v["__array__"] != "numpy":
            raise WireError("bad array kind")
        return arr

    return dec(doc, 0)


def _list(v):
    if type(v) is not list:
        raise WireError("expected a list")
    return v


# --------------------------------------------------------------------------- framing


def send(sock: socket.socket, value, handle_of=None) -> None:
    """Encode ``value`` and write it as one frame."""
    text, buffers = encode(value, handle_of)
    total = sum(len(b) for b in buffers)
    sock.sendall(_HEADER.pack(len(text), total) + text)
    for b in buffers:
        sock.sendall(b)


def recv_frame(sock: socket.socket, deadline=None, max_payload: int = MAX_PAYLOAD) -> tuple[bytes, bytes]:
    """Read one frame: (JSON bytes, payload). ``deadline`` (time.monotonic) raises TimeoutError.

    ``max_payload`` caps the array bytes the reader accepts: the judge reads the worker's replies
    with :data:`MAX_REPLY_PAYLOAD`, so a worker cannot make it allocate more.

    Raises:
        EOFError: the other side closed the connection.
        WireError: the announced lengths are over the limits.
    """
    head = _recv_exact(sock, _HEADER.size, deadline)
    n_json, n_payload = _HEADER.unpack(head)
    if n_json > MAX_JSON or n_payload > max_payload:
        raise WireError("message over the size limit")
    # The payload stays a bytearray: arrays decoded from it are writable views, not copies.
    return bytes(_recv_exact(sock, n_json, deadline)), _recv_exact(sock, n_payload, deadline)


def _recv_exact(sock: socket.socket, n: int, deadline) -> bytearray:
    import select
    import time

    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                raise TimeoutError
        k = sock.recv_into(view[got:], min(n - got, 1 << 22))
        if k == 0:
            raise EOFError
        got += k
    return buf
