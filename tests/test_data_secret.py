"""data/secret.py: held-out data drawn from the grader's data secret.

Without a secret every dataset is the public default, byte for byte what it was before secrets
existed (the golden results and calibrations depend on it: pinned hashes below). With a secret
the held-out parts (MNIST's test split, lab 4's test subject, lab 5's grader subset) change,
deterministically, differently for two secrets, in caches of their own.
"""
from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pytest
import torch

from data import cache, dti, mnist, recon, secret

S1, S2 = "first-test-secret", "second-test-secret"
#: sha256 of the public offline MNIST arrays (x_train, y_train, x_test, y_test bytes, uint8/int64).
MNIST_PUBLIC = "e7b2c9e7b744e40e847a549506c96301d71e43c12ea6990fe2aa815eadb7eac2"
#: sha256 of the public test subject's CSV (data/cache/dti/sampledata100206.csv).
DTI_TEST_PUBLIC = "20a944c913506c955d77f7ac749898c9516ce01ad705c2872ccd7da08e3c7e8b"
#: sha256 of pairs 0-2 of the public grader subset at 64 px (uint8 images, (3, 2, 64, 64)).
RECON_PAIRS_0_2_PUBLIC = "14245fa730987a5af86a8218913b8291cc9563cd14b3456ee15ef46c5ce6cf3f"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache and no secret; ``env(s)`` sets ``$GRADER_DATA_SECRET`` to s (None: unset)."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(secret.ENV_SECRET, raising=False)
    monkeypatch.delenv(secret.ENV_SECRET_FILE, raising=False)

    def set_secret(value):
        if value is None:
            monkeypatch.delenv(secret.ENV_SECRET, raising=False)
        else:
            monkeypatch.setenv(secret.ENV_SECRET, value)
        return tmp_path / "cache"

    return set_secret


def _mnist_digest(path) -> str:
    h = hashlib.sha256()
    with np.load(path) as z:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            h.update(np.ascontiguousarray(z[key]).tobytes())
    return h.hexdigest()


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.tobytes() for r in x.flatten(1).numpy()}


# ---------------------------------------------------------------- where the secret comes from

def test_secret_from_environment_or_file(env, tmp_path, monkeypatch):
    env(None)
    assert secret.grader_secret() is None and secret.secret_tag() is None and secret.derived_seed("x") is None
    monkeypatch.setenv(secret.ENV_SECRET, "  ")  # blank = unset
    assert secret.grader_secret() is None
    path = tmp_path / "grader-secret"
    path.write_text(S1 + "\n")
    monkeypatch.setenv(secret.ENV_SECRET_FILE, str(path))
    assert secret.grader_secret() == S1.encode()
    monkeypatch.setenv(secret.ENV_SECRET, S2)  # the variable wins over the file
    assert secret.grader_secret() == S2.encode()


@pytest.mark.parametrize("content", [None, "", "\n  \n"])
def test_missing_or_empty_secret_file_is_an_error_not_the_public_data(env, tmp_path, monkeypatch, content):
    path = tmp_path / "grader-secret"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(secret.ENV_SECRET_FILE, str(path))
    with pytest.raises(RuntimeError, match="GRADER_DATA_SECRET_FILE"):
        secret.grader_secret()
    with pytest.raises(RuntimeError):
        mnist.load_mnist("offline")


def test_seeds_are_hmacs_of_the_secret_and_tags_hide_it():
    mac = hmac.new(S1.encode(), b"mri-dl-labs:mnist-test-split", hashlib.sha256).digest()
    assert secret.derived_seed("mnist-test-split", secret=S1.encode()) == int.from_bytes(mac[:4], "big")
    assert secret.derived_seed("x", bits=128, secret=S1.encode()) < 2**128
    assert secret.derived_seed("a", secret=S1.encode()) != secret.derived_seed("b", secret=S1.encode())
    assert secret.derived_seed("a", secret=S1.encode()) != secret.derived_seed("a", secret=S2.encode())
    tag = secret.secret_tag(S1.encode())
    assert len(tag) == 16 and tag != secret.secret_tag(S2.encode()) and S1 not in tag
    assert tag not in hashlib.sha256(S1.encode()).hexdigest()  # an HMAC, not a plain hash
    fresh = secret.new_secret()
    assert len(fresh) == 64 and fresh != secret.new_secret()


# ---------------------------------------------------------------- MNIST: which 1000 digits are held out

def test_mnist_public_default_unchanged(env):
    root = env(None)
    path = mnist.prepare_offline()
    assert path == root / "mnist" / mnist.OFFLINE_FILE
    assert _mnist_digest(path) == MNIST_PUBLIC
    assert cache.manifest_ok(path.parent, mnist.OFFLINE_PARAMS) and mnist.offline_params() == mnist.OFFLINE_PARAMS
    assert mnist.load_mnist("offline").source == mnist.SOURCE_OFFLINE


def test_mnist_secret_draws_another_test_split(env):
    root = env(None)
    public = mnist.load_mnist("offline")
    public_file = (root / "mnist" / mnist.OFFLINE_FILE).read_bytes()
    env(S1)
    one = mnist.load_mnist("offline")
    folder = mnist.offline_cache_folder()
    assert folder.name == f"mnist-secret-{secret.secret_tag()}" and folder.parent == root
    assert one.source == mnist.SOURCE_OFFLINE_SECRET
    # Same pool, same sizes and strata; another 1000 digits held out.
    assert torch.bincount(one.y_test, minlength=10).tolist() == [100] * 10
    assert sorted(_rows(torch.cat([one.x_train, one.x_test]))) == sorted(_rows(torch.cat([public.x_train, public.x_test])))
    overlap = len(_rows(one.x_test) & _rows(public.x_test))
    assert overlap < 400, f"{overlap} of 1000 test digits shared with the public split (about 200 expected by chance)"
    # The manifest names the secret by its tag only; the public cache is untouched and still valid.
    params = json.loads((folder / cache.MANIFEST_NAME).read_text())["params"]
    assert params["secret"] == secret.secret_tag() and params["seed"] is None
    assert (root / "mnist" / mnist.OFFLINE_FILE).read_bytes() == public_file
    assert not cache.manifest_ok(folder, mnist.OFFLINE_PARAMS) and not cache.manifest_ok(root / "mnist", mnist.offline_params())
    # Deterministic: rebuilt from scratch, the same bytes; a second secret, another split.
    digest = _mnist_digest(folder / mnist.OFFLINE_FILE)
    mnist.prepare_offline(force=True)
    assert _mnist_digest(folder / mnist.OFFLINE_FILE) == digest
    env(S2)
    two = mnist.load_mnist("offline")
    assert mnist.offline_cache_folder() != folder and not torch.equal(two.y_test, one.y_test)
    assert len(_rows(two.x_test) & _rows(one.x_test)) < 400
    env(None)
    assert torch.equal(mnist.load_mnist("offline").x_test, public.x_test)


# ---------------------------------------------------------------- DTI: the test subject

def test_dti_public_default_unchanged(env):
    folder = dti.prepare_offline(progress=False)
    assert folder.name == "dti" and cache.manifest_ok(folder, dti.offline_params())
    assert cache.sha256_file(folder / f"sampledata{dti.TEST_SUBJECT}.csv") == DTI_TEST_PUBLIC


def test_dti_secret_draws_another_test_subject(env):
    public = dti.prepare_offline(progress=False)
    env(S1)
    folder = dti.prepare_offline(progress=False)
    assert folder.name == f"dti-secret-{secret.secret_tag()}"
    test = f"sampledata{dti.TEST_SUBJECT}.csv"
    for sid in dti.TRAIN_SUBJECTS:  # the training subjects are the public ones
        name = f"sampledata{sid}.csv"
        assert (folder / name).read_bytes() == (public / name).read_bytes()
    assert (folder / test).read_bytes() != (public / test).read_bytes()
    data = dti.load_dti("offline")
    assert data.source == dti.SOURCE_OFFLINE_SECRET
    assert torch.bincount(data.y_test, minlength=3).tolist() == list(dti.COUNTS[dti.TEST_SUBJECT])
    digest = cache.sha256_file(folder / test)
    dti.prepare_offline(force=True, progress=False)
    assert cache.sha256_file(folder / test) == digest, "the secret test subject must be deterministic"
    env(S2)
    assert cache.sha256_file(dti.prepare_offline(progress=False) / test) not in (digest, DTI_TEST_PUBLIC)


def test_dti_secret_test_subject_keeps_its_difficulty():
    """The same subject (SNR, T1w gain, tissue scales: what the thresholds were calibrated on), other voxels."""
    public = dti.simulate_subjects(seed=0)
    hidden = dti.simulate_subjects(seed=0, test_seed=secret.derived_seed("dti-test-subject", 128, S1.encode()))
    assert hidden[dti.TEST_SUBJECT].snr == public[dti.TEST_SUBJECT].snr
    assert not np.allclose(hidden[dti.TEST_SUBJECT].features, public[dti.TEST_SUBJECT].features)
    for sid in dti.TRAIN_SUBJECTS:
        assert np.array_equal(hidden[sid].features, public[sid].features)
    for label in range(3):  # class means within a few per cent (measured: <= 4.1 % over 3 secrets): the same subject
        a = hidden[dti.TEST_SUBJECT].features[hidden[dti.TEST_SUBJECT].labels == label].mean(0)
        b = public[dti.TEST_SUBJECT].features[public[dti.TEST_SUBJECT].labels == label].mean(0)
        assert np.all(np.abs(a - b) <= 0.06 * np.abs(b)), (label, a, b)


# ---------------------------------------------------------------- recon: lab 5's grader subset

def _digest(data: recon.ReconData) -> str:
    x = torch.cat([data.x_train, data.x_val]).mul(255).round().to(torch.uint8).numpy()
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def test_recon_grader_subset_public_default_unchanged(env, monkeypatch):
    monkeypatch.setattr(recon, "GRADER_SUBSET", (3, 64))  # pairs 0-2 of the grader's (60, 64): pairs are independent
    data = recon.load_grader_subset()
    imgs = torch.cat([data.x_train, data.x_val]).reshape(3, 2, 64, 64).mul(255).round().to(torch.uint8).numpy()
    assert hashlib.sha256(np.ascontiguousarray(imgs).tobytes()).hexdigest() == RECON_PAIRS_0_2_PUBLIC
    assert data.source == recon.load_recon_subset(3, 64, seed=0).source  # the same cache as before
    assert (cache.cache_dir() / "recon_subset" / f"n3_64px_seed0_v{recon.SIM_VERSION}").is_dir()


def test_recon_secret_draws_another_grader_subset(env, monkeypatch):
    monkeypatch.setattr(recon, "GRADER_SUBSET", (3, 32))
    public = _digest(recon.load_grader_subset(cache=False))
    root = env(S1)
    one = recon.load_grader_subset()
    tag = secret.secret_tag()
    folder = root / "recon_subset" / f"n3_32px_secret-{tag}_v{recon.SIM_VERSION}"
    params = json.loads((folder / cache.MANIFEST_NAME).read_text())["params"]
    assert params["secret"] == tag and params["seed"] is None and cache.manifest_ok(folder, params)
    assert "seed" not in one.source and S1 not in one.source
    assert _digest(one) != public
    assert _digest(recon.load_grader_subset(cache=False)) == _digest(one), "deterministic for one secret"
    env(S2)
    assert _digest(recon.load_grader_subset(cache=False)) not in (public, _digest(one))
    # No file name in the cache holds a secret or a seed derived from it.
    seeds = {str(secret.derived_seed("recon-grader-subset", secret=s.encode())) for s in (S1, S2)}
    for path in root.rglob("*"):
        assert not any(s in path.name for s in (S1, S2, *seeds)), path


def test_prepare_grader_uses_the_secret(env, capsys):
    from data.__main__ import main

    root = env(S1)
    tag = secret.secret_tag()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recon, "GRADER_SUBSET", (3, 32))
        assert main(["prepare", "grader"]) == 0
    out = capsys.readouterr().out
    assert f"cache tag {tag}" in out and S1 not in out
    assert sorted(p.name for p in root.iterdir()) == [f"dti-secret-{tag}", f"mnist-secret-{tag}", "recon_subset"]
    assert [p.name for p in (root / "recon_subset").iterdir()] == [f"n3_32px_secret-{tag}_v{recon.SIM_VERSION}"]
