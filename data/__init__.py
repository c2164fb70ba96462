"""Datasets for the mri-dl-labs course: MNIST, DTI tissue features, MR image quality (recon).

Import what you need (submodules are loaded lazily so ``import data`` stays cheap)::

    from data import load_mnist, load_dti
    mnist = load_mnist("offline")   # 4000/1000 real digits, (N, 1, 28, 28) float32
    dti = load_dti()                # real CSVs in data/dti/ if present, else simulated

Generated files go to ``cache_dir()`` (``$MRI_DL_LABS_CACHE`` or ``data/cache``).
Command line: ``python -m data prepare [mnist|dti|recon|grader|all]`` and ``python -m data info``
(``prepare mnist`` also fetches full MNIST into ``data/MNIST/raw``, see ``data.mnist.prepare_full``).
See data/README.md.
"""
from __future__ import annotations

import importlib

__all__ = ["cache_dir", "load_mnist", "MnistData", "load_dti", "DtiData", "MEAN", "STD"]

_LAZY = {
    "cache_dir": "data.cache",
    "load_mnist": "data.mnist",
    "MnistData": "data.mnist",
    "MEAN": "data.mnist",
    "STD": "data.mnist",
    "load_dti": "data.dti",
    "DtiData": "data.dti",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
