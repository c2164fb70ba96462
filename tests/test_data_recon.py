"""Tests of the MR image-quality dataset (`data.recon`) and its simulator (`data.mrsim`).

Small sizes only (32-64 px, a few pairs): the whole file runs in well under a minute on one
core. Every test that writes uses a temporary cache ($MRI_DL_LABS_CACHE).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from data import mrsim, recon

pytestmark = pytest.mark.timeout(120)


def _crandn(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MRI_DL_LABS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """9 pairs at 48 px (6 train, 3 validation pairs), built in a temporary cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRI_DL_LABS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield recon.load_recon_subset(n_pairs=9, image_size=48, seed=0)


# ---------------------------------------------------------------- sampling mask

@pytest.mark.parametrize("n_lines", [48, 64, 96, 320])
def test_mask_samples_exactly_n_over_R_lines_with_full_centre(n_lines):
    mask = recon.undersampling_mask(n_lines, acceleration=4, rng=np.random.default_rng(1))
    assert mask.dtype == bool and mask.shape == (n_lines,)
    assert mask.sum() == n_lines // 4, "R = 4 means exactly n/4 phase-encode lines"
    nc = mrsim.default_n_center(n_lines)
    c0 = n_lines // 2 - nc // 2
    assert mask[c0:c0 + nc].all(), "the k-space centre block must be fully sampled"
    assert nc == round(24 * n_lines / 320) or nc == 2
    if n_lines == 320:
        assert nc == 24
    again = recon.undersampling_mask(n_lines, acceleration=4, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(mask, again)


def test_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="acceleration"):
        recon.undersampling_mask(64, acceleration=0)
    with pytest.raises(ValueError, match="n_center"):
        recon.undersampling_mask(64, acceleration=4, n_center=20)


# ---------------------------------------------------------------- TGV solver

def test_tgv_operators_pass_the_adjoint_test():
    # <A x, y> = <x, A^H y> for every operator of the primal-dual solver (expect ~1e-7)
    rng = np.random.default_rng(0)
    n = 32
    u, p, q = _crandn(rng, (n, n)), _crandn(rng, (2, n, n)), _crandn(rng, (3, n, n))
    k = _crandn(rng, (8, n, n))
    maps = mrsim.coil_maps(n)
    m2 = np.fft.ifftshift(recon.undersampling_mask(n, rng=3)).astype(np.float32)[:, None]
    pairs = [
        (mrsim.grad(u), p, u, mrsim.grad_t(p)),
        (mrsim.sym_grad(p), q, p, mrsim.sym_grad_t(q)),
        (mrsim.sense_op(u, maps, m2), k, u, mrsim.sense_op_t(k, maps, m2)),
        (mrsim._hybrid_op(u, maps, m2), k, u, mrsim._hybrid_op_t(k, maps, m2)),
    ]
    for ax, y, x, aty in pairs:
        lhs, rhs = np.vdot(y, ax), np.vdot(aty, x)
        assert abs(lhs - rhs) <= 1e-5 * abs(lhs), (lhs, rhs)


def test_tgv_step_size_bound_holds():
    # sigma = tau = 1/sqrt(12) needs ||A||^2 <= 12 (power iteration gives ~11.8)
    maps = mrsim.coil_maps(32)
    assert mrsim.operator_norm_sq((32, 32), maps, np.ones((32, 1), np.float32), n_iter=40) <= mrsim.TGV_L2


def test_tgv_recovers_truth_from_full_noise_free_data():
    n = 48
    x, _ = mrsim.head_phantom(2, 90, n, np.random.default_rng(0))
    maps = mrsim.coil_maps(n)
    k = mrsim.fft2c(maps * x)
    u = mrsim.tgv_pics(k, np.ones((n, 1), np.float32), maps, lam=1e-5, n_iter=200)
    assert u.dtype == np.complex64, "complex64 in, complex64 out (no float64 upcast)"
    nrmse = np.linalg.norm(u - x) / np.linalg.norm(x)
    assert nrmse < 1e-3, f"nRMSE {nrmse:.2e} (expect ~2e-5)"


def test_tgv_pics_in_place_loop_is_bit_identical():
    """Issue 22: the solver's loop updates in place; its output has the same bits as the loop
    before (a frozen copy in tests/tgv_reference.py), on the row-mask (x-ky) path the simulator
    uses and on the 2-D mask path, at two step ratios, and for a whole simulated pair."""
    from tests import tgv_reference

    n = 48
    rng = np.random.default_rng(3)
    x, _ = mrsim.head_phantom(1, 100, n, rng)
    maps = mrsim.coil_maps(n)
    sigma = 0.01
    k = mrsim.fft2c(maps * x) + sigma * mrsim._R2 * _crandn(rng, (mrsim.N_COILS, n, n))
    m1 = np.fft.ifftshift(mrsim.undersampling_mask(n, 4, rng=rng)).astype(np.float32)
    m_row, m_2d = m1[:, None], np.outer(m1, (rng.random(n) < 0.8)).astype(np.float32)
    for mask, ratio, lam in ((m_row, 0.125, 0.35 * sigma), (m_row, 1.0, 3 * sigma), (m_2d, 0.125, 0.35 * sigma)):
        f = (k * mask).astype(np.complex64)
        got = mrsim.tgv_pics(f, mask, maps, lam, n_iter=40, step_ratio=ratio)
        want = tgv_reference.tgv_pics(f, mask, maps, lam, n_iter=40, step_ratio=ratio)
        assert got.dtype == want.dtype == np.complex64
        assert got.tobytes() == want.tobytes(), (mask.shape, ratio, float(np.abs(got - want).max()))
    # a whole pair with the lab's knobs, the solver swapped for the frozen copy
    ref, acc, _ = mrsim.simulate_pair_raw(4, 40, 0, 4, **recon.SIM_KNOBS)
    original = mrsim.tgv_pics
    try:
        mrsim.tgv_pics = tgv_reference.tgv_pics
        ref0, acc0, _ = mrsim.simulate_pair_raw(4, 40, 0, 4, **recon.SIM_KNOBS)
    finally:
        mrsim.tgv_pics = original
    assert ref.tobytes() == ref0.tobytes() and acc.tobytes() == acc0.tobytes()


def test_tgv_step_ratio_reaches_the_same_minimiser_faster():
    """Any step_ratio converges to the same TGV minimiser; 0.125 gets much closer to it than 1
    in 150 iterations (R = 4 data, lambda = 0.1 sigma); a ratio <= 0 raises ValueError."""
    n = 48
    rng = np.random.default_rng(0)
    x, _ = mrsim.head_phantom(2, 90, n, rng)
    maps = mrsim.coil_maps(n)
    sigma = 0.01
    k = mrsim.fft2c(maps * x) + sigma * mrsim._R2 * _crandn(rng, (mrsim.N_COILS, n, n))
    m2 = np.fft.ifftshift(mrsim.undersampling_mask(n, 4, rng=rng)).astype(np.float32)[:, None]
    f = (k * m2).astype(np.complex64)
    u_min = mrsim.tgv_pics(f, m2, maps, 0.1 * sigma, n_iter=3000, step_ratio=0.125)
    u_ref = mrsim.tgv_pics(f, m2, maps, 0.1 * sigma, n_iter=3000, step_ratio=0.5)
    assert np.linalg.norm(u_ref - u_min) < 1e-3 * np.linalg.norm(u_min)
    dist = {r: np.linalg.norm(mrsim.tgv_pics(f, m2, maps, 0.1 * sigma, n_iter=150, step_ratio=r) - u_min)
            / np.linalg.norm(u_min) for r in (1.0, 0.125)}
    assert dist[0.125] < 0.25 * dist[1.0], dist
    with pytest.raises(ValueError, match="step_ratio"):
        mrsim.tgv_pics(f, m2, maps, 0.1 * sigma, n_iter=1, step_ratio=0.0)


# ---------------------------------------------------------------- simulate_pair

def test_simulate_pair_is_deterministic_by_index_and_in_range():
    ref, acc, meta = recon.simulate_pair(5, image_size=32, seed=0)
    ref2, acc2, _ = recon.simulate_pair(5, image_size=32, seed=0)
    ref3, _, _ = recon.simulate_pair(6, image_size=32, seed=0)
    for a in (ref, acc):
        assert a.shape == (32, 32) and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(ref, ref2)
    np.testing.assert_array_equal(acc, acc2)
    assert not np.array_equal(ref, ref3)
    assert meta["seed"] == 5 and 40.0 <= meta["snr"] <= 120.0
    assert 0.35 / 1.5 <= meta["lam"] / meta["noise_sigma"] <= 0.35 * 1.5  # lambda = 0.35 sigma x 1.5^(+-1)
    assert meta["knobs"]["ref_combine"] == "sense" and meta["knobs"]["tgv_step_ratio"] == 0.125
    assert meta["mask"].sum() == 8


def test_pairs_use_different_template_slices():
    slices = [mrsim.slice_for_pair(i, 0) for i in range(260)]
    assert len(set(slices)) == 260


def _head_and_corners(ref):
    from scipy import ndimage as ndi

    n = ref.shape[0]
    c = n // 8
    corners = np.zeros_like(ref, dtype=bool)
    corners[:c, :c] = corners[:c, -c:] = corners[-c:, :c] = corners[-c:, -c:] = True
    return ndi.gaussian_filter(ref, 2.0) > 0.15, corners


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_pics_is_denoised_and_blurred_along_phase_encode(index):
    """SIM_VERSION 3: TGV at the discrepancy-principle weight removes part of the noise, so the
    PI-CS background is quieter than the reference's (std ratio 0.3-0.7 measured at 64-96 px);
    and R = 4 costs resolution along the phase-encode direction (rows, axis 0): the second
    difference inside the head shrinks more along PE than along readout."""
    ref, acc, meta = recon.simulate_pair(index, image_size=96, seed=0)
    head, corners = _head_and_corners(ref)
    bg = acc[corners].std() / ref[corners].std()
    assert bg < 0.8, f"background std PI-CS / reference {bg:.2f} (SNR {meta['snr']:.0f}); expected < 0.8"
    d2 = {ax: np.diff(acc, 2, axis=ax)[head[1:-1] if ax == 0 else head[:, 1:-1]].std()
          / np.diff(ref, 2, axis=ax)[head[1:-1] if ax == 0 else head[:, 1:-1]].std() for ax in (0, 1)}
    assert d2[0] < 0.85 and d2[0] < d2[1], f"sharpness PI-CS / reference along PE {d2[0]:.2f}, readout {d2[1]:.2f}"


def test_each_image_is_scaled_by_its_own_percentile():
    ref, acc, meta = recon.simulate_pair(1, image_size=48, seed=0)
    for x in (ref, acc):
        assert abs(float(np.percentile(x, 99.5)) - 1.0) < 2e-3
    assert meta["scale"] > 0 and meta["scale_accel"] > 0


# ---------------------------------------------------------------- subset loader

def test_subset_shapes_dtypes_and_ranges(subset):
    d = subset
    assert d.x_train.shape == (12, 1, 48, 48) and d.x_val.shape == (6, 1, 48, 48)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.float32
    assert d.y_train.shape == (12,) and d.y_val.shape == (6,)
    for x in (d.x_train, d.x_val):
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert torch.allclose(x * 255, torch.round(x * 255), atol=1e-3), "8-bit quantised like the PNGs"
    assert set(d.y_train.tolist()) == {0.0, 1.0} and d.y_train.sum() == 6 and d.y_val.sum() == 3
    assert d.classes[0] == "fully sampled reference" and d.classes[1].startswith("accelerated")


def test_subset_splits_two_thirds_one_third_by_pair(subset):
    d = subset
    assert set(d.pair_train.tolist()) == set(range(6)) and set(d.pair_val.tolist()) == {6, 7, 8}
    for pid, y in ((d.pair_train, d.y_train), (d.pair_val, d.y_val)):
        for p in set(pid.tolist()):
            assert sorted(y[pid == p].tolist()) == [0.0, 1.0], "both images of a pair in one split"
    assert recon.n_train_pairs(260) == 173 and recon.n_train_pairs(24) == 16


def test_subset_cache_is_keyed_by_the_simulator_settings(cache, monkeypatch):
    a = recon.load_recon_subset(n_pairs=3, image_size=32, seed=1)
    monkeypatch.setattr(recon, "SIM_KNOBS", {**recon.SIM_KNOBS, "snr_range": (10.0, 12.0)})
    b = recon.load_recon_subset(n_pairs=3, image_size=32, seed=1)
    assert not torch.equal(a.x_train, b.x_train), "a subset cached with other SIM_KNOBS was returned"


def test_subset_is_cached_with_manifest(cache):
    a = recon.load_recon_subset(n_pairs=3, image_size=32, seed=1)
    folders = list((cache / "recon_subset").iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    b = recon.load_recon_subset(n_pairs=3, image_size=32, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    ref, acc, _ = recon.simulate_pair(2, 32, seed=1)  # pair 2 is the validation pair
    np.testing.assert_allclose(a.x_val[1, 0].numpy(), np.round(acc * 255) / 255, atol=1e-6)
    with pytest.raises(ValueError):
        recon.load_recon_subset(n_pairs=2)


# ---------------------------------------------------------------- PNG folders

def _write_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _fixture_folder(root, size=20, n=(3, 2)):
    rng = np.random.default_rng(0)
    for split, k in zip(("train", "test"), n):
        for cls in ("ref", "tgv"):
            for i in range(k):
                _write_png(root / split / cls / f"img{i}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    return root


def test_folder_loader_reads_layout_labels_and_scales(tmp_path):
    root = _fixture_folder(tmp_path / "recon_classification")
    d = recon.load_recon_folder(root)
    assert d.x_train.shape == (6, 1, 20, 20) and d.x_val.shape == (4, 1, 20, 20)
    assert d.y_train.tolist() == [0, 0, 0, 1, 1, 1] and d.y_val.tolist() == [0, 0, 1, 1]
    raw = np.asarray(Image.open(root / "train" / "tgv" / "img0.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(d.x_train[3, 0].numpy(), raw, atol=1e-7)
    assert d.pair_train.tolist() == [0, 1, 2, 0, 1, 2] and set(d.pair_val.tolist()) == {3, 4}
    r = recon.load_recon(source="auto", image_size=16, root=root)
    assert r.source.startswith("real") and r.x_train.shape == (6, 1, 16, 16)
    assert 0.0 <= float(r.x_train.min()) and float(r.x_train.max()) <= 1.0


def test_folder_loader_names_missing_class_folder(tmp_path):
    root = _fixture_folder(tmp_path / "rc")
    for f in (root / "test" / "tgv").iterdir():
        f.unlink()
    (root / "test" / "tgv").rmdir()
    with pytest.raises(FileNotFoundError, match=r"test[/\\]tgv.*Expected layout"):
        recon.load_recon_folder(root)


def test_folder_loader_names_non_2d_and_unreadable_images(tmp_path):
    root = _fixture_folder(tmp_path / "rc")
    bad = root / "train" / "ref" / "colour.png"
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 0] = 255
    _write_png(bad, rgb)
    with pytest.raises(ValueError, match="colour.png.*2-D grayscale"):
        recon.load_recon_folder(root)
    bad.unlink()
    (root / "test" / "tgv" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png.*cannot read"):
        recon.load_recon_folder(root)


def test_folder_loader_accepts_gray_stored_as_rgb_and_rejects_mixed_sizes(tmp_path):
    root = _fixture_folder(tmp_path / "rc")
    g = np.full((20, 20), 51, np.uint8)
    _write_png(root / "train" / "ref" / "img9.png", np.stack([g, g, g], -1))
    d = recon.load_recon_folder(root)
    assert math.isclose(float(d.x_train[3].mean()), 0.2, abs_tol=1e-6)
    _write_png(root / "test" / "ref" / "big.png", np.zeros((30, 30), np.uint8))
    with pytest.raises(ValueError, match="big.png.*differs"):
        recon.load_recon_folder(root)
    assert recon.load_recon_folder(root, image_size=20).x_val.shape[-1] == 20


# ---------------------------------------------------------------- prepare

def test_prepare_writes_layout_and_resumes(cache):
    root = recon.prepare(n_pairs=3, image_size=32, workers=1, progress=False)
    pngs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert pngs == ["test/ref/ref.0002.png", "test/tgv/tgv.0002.png", "train/ref/ref.0000.png",
                    "train/ref/ref.0001.png", "train/tgv/tgv.0000.png", "train/tgv/tgv.0001.png"]
    # the lecture's script labels a file by its name before the first dot, then LabelEncoder
    labels = {p.name.split(".")[0] for p in root.rglob("*.png")}
    assert labels == {"ref", "tgv"}
    victim = root / "train" / "tgv" / "tgv.0001.png"
    before = victim.read_bytes()
    stamp = (root / "train" / "ref" / "ref.0000.png").stat().st_mtime_ns
    victim.unlink()  # an interrupted run: one file missing, no valid manifest
    assert recon.prepare(n_pairs=3, image_size=32, workers=1, progress=False) == root
    assert victim.read_bytes() == before, "a resumed pair is bit-identical"
    assert (root / "train" / "ref" / "ref.0000.png").stat().st_mtime_ns == stamp, "finished pairs are kept"
    d = recon.load_recon_folder(root)
    assert torch.equal(d.pair_train, torch.tensor([0, 1, 0, 1])), "ref.N pairs with tgv.N"
    assert torch.equal(d.pair_val, torch.tensor([2, 2]))
    sub = recon.load_recon_subset(n_pairs=3, image_size=32, seed=0)
    assert torch.equal(d.x_val, sub.x_val), "PNG set and in-memory subset hold the same images"
    assert recon.info()["source"] in ("real", "offline")


# ---------------------------------------------------------------- calibration knobs (issue 11)

def test_default_knobs_given_explicitly_change_nothing():
    """simulate_pair_raw's knobs at their defaults give the SIM_VERSION dataset bit for bit."""
    ref, acc, meta = mrsim.simulate_pair_raw(1, 48, seed=2)
    ref2, acc2, meta2 = mrsim.simulate_pair_raw(
        1, 48, seed=2, snr_range=mrsim.SNR_RANGE, lam_range=mrsim.LAM_RANGE, lam_noise_floor=mrsim.LAM_NOISE_FLOOR,
        n_coils=mrsim.N_COILS, coil_radius=mrsim.COIL_RADIUS, mask_pattern="vd", ref_combine="rss")
    assert np.array_equal(ref, ref2) and np.array_equal(acc, acc2)
    assert "knobs" not in meta and "knobs" not in meta2


@pytest.mark.parametrize("knobs", [
    {"contrast_gamma": (0.8, 1.25)}, {"head_shift_mm": 15.0, "head_zoom": (0.9, 1.1)},
    {"acq_fraction": (0.6, 0.9)}, {"ref_combine": "sense"}, {"lam_sigma": 0.1, "lam_sigma_spread": 1.5},
    {"n_coils": 4},
], ids=lambda k: ",".join(k))
def test_a_knob_keeps_the_main_random_stream(knobs):
    """A non-default knob draws from its own generator: SNR, the drawn lambda and the sampling
    mask stay those of the default pair (the mask not with n_coils, which changes the number of
    noise samples), and meta records the knob."""
    _, _, base = mrsim.simulate_pair_raw(3, 48, seed=0)
    _, _, meta = mrsim.simulate_pair_raw(3, 48, seed=0, **knobs)
    assert meta["snr"] == base["snr"] and meta["lam_drawn"] == base["lam_drawn"]
    if "n_coils" in knobs:
        assert meta["n_coils"] == knobs["n_coils"]
    else:
        assert np.array_equal(meta["mask"], base["mask"])
        assert set(knobs) <= set(meta["knobs"]), meta["knobs"]
    if "head_shift_mm" in knobs:  # the documented ranges
        assert all(abs(v) <= knobs["head_shift_mm"] for v in meta["knobs"]["head_shift_mm"])
        assert knobs["head_zoom"][0] <= meta["zoom"] == meta["knobs"]["head_zoom"] <= knobs["head_zoom"][1]


def test_acq_fraction_zero_fills_the_outer_k_space():
    """acq_fraction: both images lose most of their energy beyond the acquired matrix (magnitude
    images: |.| spreads a little back), against the same pair acquired in full."""
    f = 0.6
    kk = np.abs(np.fft.fftfreq(64)) * 2.0
    outer = (kk[:, None] > f + 0.1) | (kk[None, :] > f + 0.1)

    def outer_share(image):
        spectrum = np.abs(np.fft.fft2(image)) ** 2
        return spectrum[outer].sum() / spectrum.sum()

    full = mrsim.simulate_pair_raw(0, 64, seed=0, ref_combine="sense")
    ref, acc, meta = mrsim.simulate_pair_raw(0, 64, seed=0, acq_fraction=(f, f), ref_combine="sense")
    assert outer_share(ref) < 0.1 * outer_share(full[0])
    assert outer_share(acc) < 0.5 * outer_share(full[1])
    assert meta["knobs"]["acq_fraction"] == pytest.approx(f)


def test_pe_fraction_samples_r4_over_the_acquired_lines_only():
    """pe_fraction: R = 4 over the acquired phase-encode lines, none sampled beyond them, and the
    reference carries (almost) no energy beyond them either."""
    n, p = 64, 0.5
    ref, acc, meta = mrsim.simulate_pair_raw(2, n, seed=0, pe_fraction=(p, p), ref_combine="sense")
    n_acq = int(round(p * n))
    inside = np.zeros(n, dtype=bool)
    inside[n // 2 - n_acq // 2: n // 2 + n_acq // 2] = True
    mask = meta["mask"]
    assert mask.sum() == round(n_acq / 4) and not mask[~inside].any()
    assert meta["knobs"]["pe_fraction"] == pytest.approx(p)
    rows = np.abs(np.fft.fftshift(np.fft.fft2(ref), axes=0)) ** 2
    far = np.abs(np.arange(n) - n // 2) > n_acq // 2 + 4
    assert rows[far].sum() / rows.sum() < 0.01
