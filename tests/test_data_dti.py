"""data/dti.py: CSV reader (labels 1..3 -> 0..2), simulator physics, counts, loading, cache."""
import shutil

import numpy as np
import pytest
import torch

from data import cache, dti, secret

# Example rows of the lecture: T1w, FA, MD, AD, RD (um^2/ms)
TARGETS = {
    0: (898, 0.22, 1.07, 1.33, 0.94),  # thalamus
    1: (1007, 0.68, 0.39, 0.72, 0.22),  # genu of the corpus callosum
    2: (867, 0.38, 0.58, 0.82, 0.45),  # subcortical white matter
}
# Allowed |class mean - target| per feature for seed 0 (simulated CC FA is about 0.60).
TOLERANCE = (60.0, 0.10, 0.08, 0.10, 0.08)


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.ENV_VAR, str(root))
        for name in (secret.ENV_SECRET, secret.ENV_SECRET_FILE):  # the public default (tests/test_data_secret.py: a secret)
            mp.delenv(name, raising=False)
        yield root


@pytest.fixture(scope="module")
def subjects():
    return dti.simulate_subjects(seed=0)


@pytest.fixture(scope="module")
def offline(tmp_cache):
    return dti.load_dti("offline")


# ---------------------------------------------------------------- reader
def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


GOOD = [
    "1,80,60,70,898.5,0.22,1.07,1.33,0.94,1",
    "2,81,60,70,1007,0.68,0.39,0.72,0.22,2",
    "3,82,60,70,867,0.38,0.58,0.82,0.45,3",
]


def test_read_csv_shifts_labels(tmp_path):
    x, y = dti.read_dti_csv(_write(tmp_path / "sampledata1.csv", GOOD + [""]))
    assert x.dtype == np.float32 and x.shape == (3, 5)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2], "file labels 1..3 must become 0..2"
    np.testing.assert_allclose(x[0], [898.5, 0.22, 1.07, 1.33, 0.94], rtol=1e-6)


@pytest.mark.parametrize(
    "bad, line, msg",
    [
        ("1,80,60,70,898,0.22,1.07,1.33,0.94", 2, "9 columns"),
        ("1,80,60,70,898,0.22,1.07,1.33,0.94,1,7", 2, "11 columns"),
        ("1,80,60,70,abc,0.22,1.07,1.33,0.94,1", 2, "non-numeric"),
        ("1,80,60,70,898,nan,1.07,1.33,0.94,1", 2, "NaN"),
        ("1,80,60,70,898,0.22,1.07,1.33,0.94,0", 2, "not 1, 2 or 3"),
        ("1,80,60,70,898,0.22,1.07,1.33,0.94,4", 2, "not 1, 2 or 3"),
        ("1,80,60,70,898,0.22,1.07,1.33,0.94,1.5", 2, "not 1, 2 or 3"),
    ],
)
def test_read_csv_malformed_names_file_and_line(tmp_path, bad, line, msg):
    p = _write(tmp_path / "sampledata999.csv", GOOD[:1] + [bad] + GOOD[1:])
    with pytest.raises(ValueError) as e:
        dti.read_dti_csv(p)
    text = str(e.value)
    assert str(p) in text and f"line {line}" in text and msg in text
    assert "sample,row,column,slice,T1w,FA,MD,AD,RD,label" in text, "the error must show the expected format"


def test_read_csv_header_and_empty_rejected(tmp_path):
    with pytest.raises(ValueError, match="line 1"):
        dti.read_dti_csv(_write(tmp_path / "h.csv", ["sample,row,column,slice,T1w,FA,MD,AD,RD,label"] + GOOD))
    with pytest.raises(ValueError, match="no data rows"):
        dti.read_dti_csv(_write(tmp_path / "e.csv", []))


# ---------------------------------------------------------------- simulator
def test_counts_exact(subjects):
    per_class = np.zeros(3, int)
    for sid, sub in subjects.items():
        counts = np.bincount(sub.labels, minlength=3)
        assert tuple(counts) == dti.COUNTS[sid]
        per_class += counts
    assert per_class.tolist() == [11662, 4582, 7455] and per_class.sum() == 23699
    assert len(subjects[dti.TEST_SUBJECT].labels) == 6145
    assert list(subjects) == list(dti.SUBJECTS)


def test_tensor_identities_on_fitted_eigenvalues(subjects):
    for sub in subjects.values():
        ev = sub.evals
        assert np.all(np.isfinite(ev)) and np.all(ev > 0)
        assert np.all(ev[:, 0] >= ev[:, 1]) and np.all(ev[:, 1] >= ev[:, 2]), "eigenvalues sorted l1>=l2>=l3"
        t1w, fa, md, ad, rd = sub.features.T
        assert np.max(np.abs(md - ev.mean(1))) < 1e-9
        assert np.max(np.abs(ad - ev[:, 0])) < 1e-9
        assert np.max(np.abs(rd - (ev[:, 1] + ev[:, 2]) / 2)) < 1e-9
        assert np.all((fa > 0) & (fa < 1))


def test_tensor_metrics_match_dipy():
    from dipy.reconst import dti as ddti

    ev = np.array([[1.7, 0.3, 0.2], [1.0, 1.0, 1.0], [0.9, 0.5, 0.1]])
    fa, md, ad, rd = dti.tensor_metrics(ev)
    np.testing.assert_allclose(fa, ddti.fractional_anisotropy(ev), atol=1e-12)
    np.testing.assert_allclose(md, ddti.mean_diffusivity(ev), atol=1e-12)
    np.testing.assert_allclose(ad, ddti.axial_diffusivity(ev), atol=1e-12)
    np.testing.assert_allclose(rd, ddti.radial_diffusivity(ev), atol=1e-12)


def test_class_means_near_lecture_rows(subjects):
    x = np.concatenate([s.features for s in subjects.values()])
    y = np.concatenate([s.labels for s in subjects.values()])
    for c, target in TARGETS.items():
        mean = x[y == c].mean(0)
        for f, (m, t, tol) in enumerate(zip(mean, target, TOLERANCE)):
            assert abs(m - t) < tol, f"{dti.CLASSES[c]} {dti.FEATURES[f]}: mean {m:.3f}, target {t} +- {tol}"
    # classes overlap (not trivially separable): a feature-wise spread is present
    assert x[y == 0, 2].std() > 0.1 and x[y == 1, 1].std() > 0.05


def test_coordinates_plausible(subjects):
    for sub in subjects.values():
        c = sub.coords
        assert c.dtype == np.int64 and c.min() >= 0
        assert np.all(c.max(0) < (145, 174, 145)), "voxel coordinates on the HCP 1.25 mm grid"
        assert len(np.unique(c, axis=0)) == len(c), "each voxel appears once per subject"


def test_simulate_dti_deterministic_by_seed(tmp_path, subjects, offline):
    # `subjects` and the cached CSVs come from two independent runs with seed 0
    cached = dti.offline_cache_folder()
    for sid, sub in subjects.items():
        text = (cached / f"sampledata{sid}.csv").read_text()
        assert text == dti._csv_text(sub), "same seed must give identical files"
    b = dti.simulate_dti(tmp_path / "b", seed=1)
    assert [p.name for p in b] == [f"sampledata{s}.csv" for s in dti.SUBJECTS]
    assert b[0].read_text() != (cached / b[0].name).read_text(), "another seed must give other data"


def test_csv_roundtrip_matches_simulation(subjects, offline):
    x, y = dti.read_dti_csv(dti.offline_cache_folder() / f"sampledata{dti.TEST_SUBJECT}.csv")
    sub = subjects[dti.TEST_SUBJECT]
    np.testing.assert_array_equal(y, sub.labels)
    np.testing.assert_allclose(x, sub.features, rtol=1e-6, atol=0.006)


# ---------------------------------------------------------------- loading
def test_load_offline_shapes(offline):
    assert offline.x_trainval.shape == (23699 - 6145, 5) and offline.x_test.shape == (6145, 5)
    assert offline.x_trainval.dtype == torch.float32 and offline.y_trainval.dtype == torch.int64
    assert set(offline.y_test.unique().tolist()) == {0, 1, 2}
    assert offline.subjects_trainval.shape == (23699 - 6145,)
    order = [s for i, s in enumerate(offline.subjects_trainval) if i == 0 or s != offline.subjects_trainval[i - 1]]
    assert order == list(dti.TRAIN_SUBJECTS)
    assert offline.x_trainval[:, 0].mean() > 500, "features must be raw (unnormalised)"
    assert offline.source == dti.SOURCE_OFFLINE


def test_load_real_and_auto(tmp_path, offline):
    for p in dti.offline_cache_folder().glob("sampledata*.csv"):
        shutil.copy(p, tmp_path / p.name)
    real = dti.load_dti("auto", root=tmp_path)
    assert real.source.startswith(dti.SOURCE_REAL)
    assert torch.equal(real.x_test, offline.x_test) and torch.equal(real.y_trainval, offline.y_trainval)
    (tmp_path / "sampledata107725.csv").unlink()
    with pytest.raises(FileNotFoundError, match="sampledata107725.csv"):
        dti.load_dti("real", root=tmp_path)
    assert dti.load_dti("auto", root=tmp_path).source == dti.SOURCE_OFFLINE


def test_corrupt_dti_cache_is_rebuilt(offline):
    folder = dti.offline_cache_folder()
    p = folder / f"sampledata{dti.TRAIN_SUBJECTS[0]}.csv"
    digest = cache.sha256_file(p)
    p.write_bytes(p.read_bytes()[:5000])  # partial file
    assert not cache.manifest_ok(folder, dti.offline_params())
    again = dti.load_dti("offline")
    assert cache.sha256_file(p) == digest
    assert torch.equal(again.x_trainval, offline.x_trainval)


def test_unknown_source():
    with pytest.raises(ValueError, match="unknown DTI source"):
        dti.load_dti("nifti")
