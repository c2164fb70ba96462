"""data/cache.py: cache folder, atomic writes, manifest validation."""
import json
import os

import numpy as np
import pytest

from data import cache


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_VAR, str(root))
    return root


def test_cache_dir_uses_env_and_creates_it(tmp_cache):
    assert not tmp_cache.exists()
    assert cache.cache_dir() == tmp_cache
    assert tmp_cache.is_dir()


def test_cache_dir_default_is_data_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV_VAR, raising=False)
    monkeypatch.setattr(cache, "DATA_DIR", tmp_path)  # stands in for <repo>/data
    assert cache.cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


def test_atomic_write_bytes_and_text(tmp_path):
    p = cache.atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01abc")
    assert p.read_bytes() == b"\x00\x01abc"
    cache.atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(x.name for x in tmp_path.rglob("*.tmp")) == []


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(cache.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        cache.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old", "a failed write must leave the previous file intact"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"], "temporary file was left behind"


def test_atomic_save_npz_exact_name_roundtrip(tmp_path):
    p = cache.atomic_save_npz(tmp_path / "arrays.npz", a=np.arange(5, dtype=np.int64), b=np.ones((2, 3), np.uint8))
    assert p == tmp_path / "arrays.npz" and p.is_file()
    assert not (tmp_path / "arrays.npz.npz").exists()
    with np.load(p) as z:
        np.testing.assert_array_equal(z["a"], np.arange(5))
        assert z["b"].dtype == np.uint8 and z["b"].shape == (2, 3)


def _make(folder):
    files = [cache.atomic_write_bytes(folder / "a.bin", b"aaaa"), cache.atomic_write_text(folder / "sub" / "b.txt", "bb")]
    params = {"dataset": "t", "seed": 3, "shape": (2, 3)}
    cache.write_manifest(folder, params, files)
    return params, files


def test_manifest_content_and_ok(tmp_path):
    params, files = _make(tmp_path)
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["seed"] == 3 and m["params"]["shape"] == [2, 3] and "created" in m
    assert m["files"] == {"a.bin": cache.sha256_file(files[0]), "sub/b.txt": cache.sha256_file(files[1])}
    assert cache.manifest_ok(tmp_path, params)
    assert cache.manifest_ok(tmp_path, {"dataset": "t", "seed": 3, "shape": [2, 3]}), "tuple vs list must compare equal"


@pytest.mark.parametrize("damage", ["corrupt", "missing", "params", "no_manifest", "garbage_manifest", "truncated"])
def test_manifest_detects_bad_cache(tmp_path, damage):
    params, files = _make(tmp_path)
    if damage == "corrupt":
        files[0].write_bytes(b"aaab")
    elif damage == "truncated":
        files[1].write_bytes(b"b")
    elif damage == "missing":
        os.remove(files[1])
    elif damage == "params":
        params = {**params, "seed": 4}
    elif damage == "no_manifest":
        os.remove(tmp_path / "manifest.json")
    elif damage == "garbage_manifest":
        (tmp_path / "manifest.json").write_text("{not json")
    assert not cache.manifest_ok(tmp_path, params), f"{damage} cache must not be accepted"


def test_write_manifest_rejects_outside_file(tmp_path):
    outside = cache.atomic_write_bytes(tmp_path / "out.bin", b"x")
    with pytest.raises(ValueError, match="not inside"):
        cache.write_manifest(tmp_path / "ds", {"seed": 0}, [outside])


def test_sha256_and_folder_size(tmp_path):
    p = cache.atomic_write_bytes(tmp_path / "a", b"abc")
    assert cache.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    cache.atomic_write_bytes(tmp_path / "d" / "b", b"12345")
    assert cache.folder_size(tmp_path) == 8
    assert cache.folder_size(tmp_path / "nope") == 0
