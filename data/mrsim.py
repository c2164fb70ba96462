"""Simulation and reconstruction internals for the MR image-quality dataset (`data.recon`).

Pipeline of one image pair (see `simulate_pair`). The numbers below are `simulate_pair_raw`'s
defaults, the dataset of SIM_VERSION 2; SIM_VERSION 3 sets knobs (`data.recon.SIM_KNOBS`: SNR
40-120, lambda = 0.35 x noise sigma, a sensitivity-weighted reference, head within +-15 mm, TGV
step ratio 0.125):

1. anatomy: one slice of the MNI ICBM152 2009a nonlinear symmetric T1 template bundled with
   nilearn (1 mm, skull-stripped), rotated (+-8 deg), zoomed to a 240 mm field of view
   (0.75 mm pixels at 320 px, +-5 %), with a synthetic skull/scalp shell, fine texture,
   a smooth bias field and a smooth background phase (`head_phantom`);
2. 8 birdcage coil maps (`sigpy.mri.birdcage_maps`, RSS-normalised), orthonormal 2-D FFT,
   complex Gaussian k-space noise with sigma = (60th percentile of tissue signal) / SNR;
3. reference: root-sum-of-squares of the fully sampled coil images;
4. accelerated: 1-D Cartesian variable-density mask (R = 4, fully sampled centre), TGV^2
   regularised parallel-imaging compressed-sensing (PI-CS) reconstruction (`tgv_pics`) with
   lambda log-uniform in [0.003, 0.015], raised to at least 0.2 x noise sigma (SNR <~ 40).

Template: MNI ICBM152 2009a (Fonov et al. 2009, 2011; Collins et al. 1999).
"Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software
and its documentation for any purpose and without fee is hereby granted, provided that the
above copyright notice appear in all copies. The authors and McGill University make no
representations about the suitability of this software for any purpose. It is provided
"as is" without express or implied warranty."

References:
    Fonov V, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear average
        age-appropriate brain templates from birth to adulthood. NeuroImage 47:S102, 2009.
    Fonov V, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased average
        age-appropriate atlases for pediatric studies. NeuroImage 54(1):313-327, 2011.
    Collins DL, Zijdenbos AP, Baare WFC, Evans AC. ANIMAL+INSECT: improved cortical structure
        segmentation. IPMI 1999, LNCS 1613:210-223.
    Knoll F, Bredies K, Pock T, Stollberger R. Second order total generalized variation (TGV)
        for MRI. Magn Reson Med 65(2):480-491, 2011.
    Knoll F, Clason C, Bredies K, Uecker M, Stollberger R. Parallel imaging with nonlinear
        reconstruction using variational penalties. Magn Reson Med 67(1):34-41, 2012.
    Chambolle A, Pock T. A first-order primal-dual algorithm for convex problems with
        applications to imaging. J Math Imaging Vis 40(1):120-145, 2011.
    Bredies K, Kunisch K, Pock T. Total generalized variation. SIAM J Imaging Sci 3(3), 2010.
    Lustig M, Donoho D, Pauly JM. Sparse MRI. Magn Reson Med 58(6):1182-1195, 2007.
    Roemer PB et al. The NMR phased array. Magn Reson Med 16(2):192-225, 1990 (RSS).

All arrays are numpy; complex arrays are complex64 and every scalar multiplying them is a
Python float (numpy 2 / NEP 50: an np.float64 scalar would upcast them to complex128).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi

FOV_MM = 240.0  # field of view: 320 px x 0.75 mm
N_COILS = 8
COIL_RADIUS = 1.3  # birdcage radius / half-FOV (`sigpy.mri.birdcage_maps` r)
SNR_RANGE = (12.0, 60.0)  # log-uniform, per image
LAM_RANGE = (0.003, 0.015)  # TGV alpha_1, log-uniform, per image (alpha_0 = 2 alpha_1)
LAM_NOISE_FLOOR = 0.2  # lambda >= 0.2 sigma: weaker TGV leaves the R=4 image noisier than the reference
TGV_ITERS = 150
TGV_L2 = 12.0  # bound on ||A||^2 used for the step sizes (Knoll et al. 2011)
CENTER_FRACTION = 24.0 / 320.0  # fully sampled centre lines / phase-encode lines
ORIENTATIONS = ("sagittal", "coronal", "axial")  # template axis 0, 1, 2


# ---------------------------------------------------------------- template

@functools.lru_cache(maxsize=1)
def load_template() -> np.ndarray:
    """MNI152 2009a T1 template, float32 (197, 233, 189) in [0, 1], 1 mm isotropic (RAS)."""
    from nilearn.datasets import load_mni152_template

    return np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def candidate_slices() -> tuple[tuple[int, int], ...]:
    """All (axis, index) template slices with >= 5000 mm^2 of brain in one connected piece
    (no separate islands above 200 mm^2): 300-400 slices, ordered by axis then index."""
    t = load_template() > 0.05
    out = []
    for axis in range(3):
        area = t.sum(axis=tuple(a for a in range(3) if a != axis))
        for i in np.flatnonzero(area >= 5000):
            lab, _ = ndi.label(np.ascontiguousarray(t[(slice(None),) * axis + (int(i),)]))
            sizes = np.bincount(lab.ravel())[1:]
            if np.sum(sizes > 200) == 1:
                out.append((axis, int(i)))
    return tuple(out)


def slice_for_pair(index: int, seed: int = 0) -> tuple[int, int]:
    """(axis, index) of the template slice of pair `index`: a fixed permutation per `seed`,
    so pairs 0..len(candidate_slices())-1 all use different slices."""
    cands = candidate_slices()
    perm = np.random.default_rng([int(seed), 2009]).permutation(len(cands))
    return cands[int(perm[index % len(cands)])]


def template_slice(axis: int, index: int) -> np.ndarray:
    """2-D float32 slice in radiological display orientation (superior/anterior up)."""
    t = load_template()
    s = t[(slice(None),) * axis + (int(index),)]  # axial (x, y); coronal (x, z); sagittal (y, z)
    return np.ascontiguousarray(s.T[::-1])


# ---------------------------------------------------------------- phantom

def smooth_field(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field, float32, zero mean and unit std, correlation length sigma_px."""
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), max(sigma_px, 0.5), mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


# (name, thickness mm, T1w intensity) from the brain outwards
SHELL_LAYERS = (
    ("CSF", 1.2, 0.12),
    ("inner table", 1.5, 0.04),
    ("diploe", 2.5, 0.45),
    ("outer table", 1.5, 0.04),
    ("galea/muscle", 1.5, 0.35),
    ("subcutaneous fat", 3.0, 0.95),
    ("skin", 1.5, 0.55),
)


def head_phantom(axis: int, index: int, image_size: int, rng: np.random.Generator,
                 contrast_gamma: float = 1.0, pose: dict | None = None) -> tuple[np.ndarray, dict]:
    """Complex object (image_size, image_size) complex64, magnitude ~[0, 1.1], and its meta.

    Template slice -> rotation/zoom into a 240 mm FOV -> skull/scalp shell from the distance
    to a smoothed brain hull (layer thickness modulated by a smooth field) -> texture
    (multiplicative fields, 0.7 mm 3.5 %, 1.9 mm 3 %) -> quadratic bias (about +-12 %) ->
    smooth background phase.

    contrast_gamma: brain intensities b -> b ** contrast_gamma after the brain mask is made
    (1.0, the default, leaves the template as it is; < 1 lowers, > 1 raises the GM/WM and
    CSF/tissue contrast of the T1w template, as TR/TI/flip angle and field strength do).
    pose: optional {"zoom": z, "shift_mm": (dy, dx)} replacing the drawn zoom (0.95-1.05) and
    shift of the head centre (+-3 mm); the main stream draws them all the same, so the rest of
    the phantom is unchanged.
    """
    n = int(image_size)
    sl = template_slice(axis, index)
    zoom = float(rng.uniform(0.95, 1.05))
    theta = math.radians(float(rng.uniform(-8.0, 8.0)))
    shift = rng.uniform(-3.0, 3.0, 2)
    if pose:
        zoom = float(pose.get("zoom", zoom))
        shift = np.asarray(pose.get("shift_mm", shift), dtype=float)
    px_mm = FOV_MM / n  # output pixel size
    step = px_mm / zoom  # template mm per output pixel
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    brain_in = sl > 0.05
    c_in = np.array(ndi.center_of_mass(brain_in)) + shift
    c_out = np.array([(n - 1) / 2.0, (n - 1) / 2.0])
    mat = rot * step
    off = c_in - mat @ c_out
    if step > 1.0:  # anti-alias: blur the 1 mm template to the output pixel size
        sl = ndi.gaussian_filter(sl, 0.42 * math.sqrt(step * step - 1.0))
    brain = ndi.affine_transform(sl, mat, offset=off, output_shape=(n, n), order=1, mode="constant")
    brain = np.clip(brain, 0.0, 1.0).astype(np.float32)
    mask = ndi.binary_fill_holes(brain > 0.08)
    hull = ndi.binary_fill_holes(ndi.gaussian_filter(mask.astype(np.float32), 4.0 / px_mm) > 0.3) | mask
    if contrast_gamma != 1.0:
        brain = (brain ** float(contrast_gamma)).astype(np.float32)

    # shell: soft layers in distance from the hull (mm), thickness modulated per position
    d_mm = ndi.distance_transform_edt(~hull).astype(np.float32) * px_mm
    mod = np.exp(0.25 * smooth_field((n, n), 12.0 / px_mm, rng))
    d_eff = d_mm / mod
    scale = rng.uniform(0.8, 1.25, len(SHELL_LAYERS))
    edges = np.cumsum([t for _, t, _ in SHELL_LAYERS] * scale)
    vals = np.array([v for _, _, v in SHELL_LAYERS]) * rng.uniform(0.9, 1.1, len(SHELL_LAYERS))
    w = min(0.4, 0.5 * px_mm)  # half width of the partial-volume ramp, mm
    xp, fp = [0.0], [vals[0]]
    for k, e in enumerate(edges):
        nxt = vals[k + 1] if k + 1 < len(vals) else 0.0
        xp += [float(e) - w, float(e) + w]
        fp += [vals[k], nxt]
    shell = np.interp(d_eff, xp, fp).astype(np.float32)
    csf = float(vals[0])
    obj = np.where(mask, np.maximum(brain, 0.6 * csf), np.where(hull, csf, shell)).astype(np.float32)
    obj = ndi.gaussian_filter(obj, 0.3)  # partial volume at the brain/CSF boundary

    # texture, bias field, phase
    obj *= 1.0 + 0.035 * smooth_field((n, n), 0.7 / px_mm, rng) + 0.03 * smooth_field((n, n), 1.9 / px_mm, rng)
    yy, xx = np.mgrid[-1.0:1.0:n * 1j, -1.0:1.0:n * 1j].astype(np.float32)
    b = rng.uniform(-1.0, 1.0, 5)
    bias = 1.0 + 0.06 * (b[0] * xx + b[1] * yy) + 0.06 * (b[2] * xx * xx + b[3] * yy * yy + b[4] * xx * yy)
    obj = np.clip(obj * bias, 0.0, None)
    p = rng.uniform(-1.0, 1.0, 5)
    phase = math.pi * (0.5 * p[0] * xx + 0.5 * p[1] * yy + 0.3 * p[2] * xx * xx + 0.3 * p[3] * yy * yy) + math.pi * p[4]
    x = (obj * np.exp(1j * phase)).astype(np.complex64)
    meta = {
        "orientation": ORIENTATIONS[axis],
        "slice": int(index),
        "rotation_deg": math.degrees(theta),
        "zoom": zoom,
        "pixel_mm": px_mm,
    }
    return x, meta


# ---------------------------------------------------------------- acquisition

@functools.lru_cache(maxsize=8)
def coil_maps(image_size: int, n_coils: int = N_COILS, radius: float = COIL_RADIUS) -> np.ndarray:
    """Birdcage coil sensitivities (n_coils, N, N) complex64 with sum_c |S_c|^2 = 1
    (`sigpy.mri.birdcage_maps`, coil centres on a circle of `radius` x half-FOV, 1.3 by default)."""
    from sigpy.mri import birdcage_maps

    s = birdcage_maps((n_coils, image_size, image_size), r=float(radius), dtype=np.complex64)
    s.setflags(write=False)
    return s


def fft2c(x: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DFT over the last two axes, DC at index [0, 0] (unshifted)."""
    return sfft.fft2(x, norm="ortho", workers=1)


def ifft2c(k: np.ndarray) -> np.ndarray:
    """Inverse of `fft2c` (its adjoint: the transform is unitary)."""
    return sfft.ifft2(k, norm="ortho", workers=1)


def default_n_center(n_lines: int) -> int:
    """Fully sampled centre lines: 24 at 320 lines, scaled with n_lines, at least 2."""
    return max(2, int(round(CENTER_FRACTION * n_lines)))


def undersampling_mask(n_lines: int, acceleration: int = 4, n_center: int | None = None,
                       rng: np.random.Generator | int | None = None, pattern: str = "vd") -> np.ndarray:
    """1-D Cartesian variable-density phase-encode mask, bool (n_lines,), centred (k = 0 at
    index n_lines // 2). Exactly round(n_lines / acceleration) lines are sampled: the
    n_center central lines plus the rest drawn without replacement with pdf ~ (1 - |k|)^2,
    |k| in [0, 1] (polynomial variable density, Lustig et al. 2007).

    pattern="regular" instead samples every `acceleration`-th line (k = 0 included) plus the
    n_center central lines, as a scanner's GRAPPA/SENSE protocol with integrated calibration
    lines does (Griswold et al. 2002): nominal R = acceleration, net R = n_lines / mask.sum()
    (3.3 at 320 lines, R = 4, 24 centre lines); no random numbers are drawn.

    Raises:
        ValueError: if acceleration < 1 or n_center exceeds the number of sampled lines.
    """
    if acceleration < 1:
        raise ValueError(f"acceleration must be >= 1, got {acceleration}")
    n_lines = int(n_lines)
    n_samp = int(round(n_lines / acceleration))
    n_center = default_n_center(n_lines) if n_center is None else int(n_center)
    if not 0 <= n_center <= n_samp:
        raise ValueError(f"n_center={n_center} must be in [0, {n_samp}] (lines sampled at R={acceleration})")
    if pattern not in ("vd", "regular"):
        raise ValueError(f"pattern must be 'vd' or 'regular', got {pattern!r}")
    mask = np.zeros(n_lines, dtype=bool)
    c0 = n_lines // 2 - n_center // 2
    mask[c0:c0 + n_center] = True
    if pattern == "regular":
        mask[(n_lines // 2) % int(acceleration)::int(acceleration)] = True
        return mask
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    rest = np.flatnonzero(~mask)
    k = np.abs(rest - n_lines // 2) / (n_lines / 2.0)
    pdf = (1.0 - np.clip(k, 0.0, 1.0)) ** 2 + 1e-6
    pick = rng.choice(rest, size=n_samp - n_center, replace=False, p=pdf / pdf.sum())
    mask[pick] = True
    return mask


# ---------------------------------------------------------------- TGV^2 PI-CS solver

def _dfwd(u: np.ndarray, axis: int) -> np.ndarray:
    """Forward difference, zero in the last row/column (Neumann boundary)."""
    d = np.zeros_like(u)
    n = u.shape[axis]
    sl = [slice(None)] * u.ndim
    a, b = list(sl), list(sl)
    a[axis], b[axis] = slice(0, n - 1), slice(1, n)
    d[tuple(a)] = u[tuple(b)] - u[tuple(a)]
    return d


def _dfwd_t(p: np.ndarray, axis: int) -> np.ndarray:
    """Adjoint of `_dfwd` (= minus the backward-difference divergence)."""
    out = np.zeros_like(p)
    n = p.shape[axis]
    sl = [slice(None)] * p.ndim
    a, b = list(sl), list(sl)
    a[axis], b[axis] = slice(0, n - 1), slice(1, n)
    out[tuple(a)] -= p[tuple(a)]
    out[tuple(b)] += p[tuple(a)]
    return out


_R2 = 1.0 / math.sqrt(2.0)  # Python float (pitfall: np.float64 would upcast complex64)


def grad(u: np.ndarray) -> np.ndarray:
    """Discrete gradient (2, H, W) of u (H, W): forward differences (rows, columns)."""
    return np.stack([_dfwd(u, 0), _dfwd(u, 1)])


def grad_t(p: np.ndarray) -> np.ndarray:
    """Adjoint of `grad` (= -div), (H, W)."""
    return _dfwd_t(p[0], 0) + _dfwd_t(p[1], 1)


def sym_grad(v: np.ndarray) -> np.ndarray:
    """Symmetrised gradient E v (3, H, W) of a vector field v (2, H, W) with backward
    differences D- = -D+^T: (D-_0 v0, D-_1 v1, (D-_1 v0 + D-_0 v1)/sqrt 2). The sqrt 2 makes
    the Euclidean norm of the 3 components the Frobenius norm of the symmetric 2x2 tensor."""
    return np.stack([-_dfwd_t(v[0], 0), -_dfwd_t(v[1], 1),
                     (-_dfwd_t(v[0], 1) - _dfwd_t(v[1], 0)) * _R2])


def sym_grad_t(q: np.ndarray) -> np.ndarray:
    """Adjoint of `sym_grad`, (2, H, W)."""
    return np.stack([-_dfwd(q[0], 0) - _dfwd(q[2], 1) * _R2,
                     -_dfwd(q[1], 1) - _dfwd(q[2], 0) * _R2])


def sense_op(u: np.ndarray, maps: np.ndarray, mask2d: np.ndarray) -> np.ndarray:
    """K u = M F (S u): (H, W) image -> (C, H, W) masked coil k-space (unshifted)."""
    return fft2c(maps * u) * mask2d


def sense_op_t(k: np.ndarray, maps: np.ndarray, mask2d: np.ndarray) -> np.ndarray:
    """K^H k = sum_c conj(S_c) F^H (M k_c): (C, H, W) -> (H, W)."""
    return np.sum(np.conj(maps) * ifft2c(k * mask2d), axis=0)


def _hybrid_op(u: np.ndarray, maps: np.ndarray, mrow: np.ndarray) -> np.ndarray:
    """M_y F_y (S u): FFT along the phase-encode axis only (x-ky hybrid space)."""
    return sfft.fft(maps * u, axis=-2, norm="ortho", workers=1) * mrow


def _hybrid_op_t(k: np.ndarray, maps: np.ndarray, mrow: np.ndarray) -> np.ndarray:
    """Adjoint of `_hybrid_op`."""
    return np.sum(np.conj(maps) * sfft.ifft(k * mrow, axis=-2, norm="ortho", workers=1), axis=0)


def _proj(p: np.ndarray, alpha: float) -> np.ndarray:
    """Pointwise projection onto {|p| <= alpha}, |p| the Euclidean norm over axis 0."""
    norm = np.sqrt(np.sum(p.real ** 2 + p.imag ** 2, axis=0))
    return p / np.maximum(1.0, norm / alpha)


# In-place forms of the operators above, for the solver's loop (issue 22: the loop spent most of
# its time making NumPy temporaries). Each writes into ``out`` with the same ufuncs, operand
# order and dtypes as its allocating twin, so the bits are the same
# (tests/test_data_recon.py::test_tgv_pics_in_place_loop_is_bit_identical).

_C0 = np.complex64(0)


def _cuts(ndim: int, axis: int, n: int) -> tuple[tuple, tuple, tuple]:
    sl = [slice(None)] * ndim
    a, b, last = list(sl), list(sl), list(sl)
    a[axis], b[axis], last[axis] = slice(0, n - 1), slice(1, n), slice(n - 1, n)
    return tuple(a), tuple(b), tuple(last)


def _dfwd_into(u: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """`_dfwd(u, axis)` written into ``out``."""
    a, b, last = _cuts(u.ndim, axis, u.shape[axis])
    np.subtract(u[b], u[a], out=out[a])
    out[last] = 0
    return out


def _dfwd_t_into(p: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """`_dfwd_t(p, axis)` written into ``out`` (0 - p, then + p shifted, as there)."""
    a, b, last = _cuts(p.ndim, axis, p.shape[axis])
    out[last] = 0
    np.subtract(_C0, p[a], out=out[a])
    np.add(out[b], p[a], out=out[b])
    return out


class _TGVBuffers:
    """The scratch arrays of one `tgv_pics` call, allocated once."""

    def __init__(self, shape: tuple[int, int], n_coils: int) -> None:
        h, w = shape
        self.g = np.empty((2, h, w), np.complex64)  # grad(ub), then sym_grad_t(q)
        self.e = np.empty((3, h, w), np.complex64)  # sym_grad(vb)
        self.t = np.empty((h, w), np.complex64)  # one component
        self.ut = np.empty((h, w), np.complex64)  # grad_t(p) + op_t(r)
        self.n1 = np.empty((h, w), np.float32)  # norms of _proj
        self.n2 = np.empty((h, w), np.float32)
        self.n3 = np.empty((h, w), np.float32)
        self.c = np.empty((n_coils, h, w), np.complex64)  # coil images / k-space


def _grad_into(u: np.ndarray, out: np.ndarray) -> np.ndarray:
    _dfwd_into(u, 0, out[0])
    _dfwd_into(u, 1, out[1])
    return out


def _grad_t_into(p: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    _dfwd_t_into(p[0], 0, out)
    np.add(out, _dfwd_t_into(p[1], 1, tmp), out=out)
    return out


def _sym_grad_into(v: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    np.negative(_dfwd_t_into(v[0], 0, out[0]), out=out[0])
    np.negative(_dfwd_t_into(v[1], 1, out[1]), out=out[1])
    np.negative(_dfwd_t_into(v[0], 1, out[2]), out=out[2])
    np.subtract(out[2], _dfwd_t_into(v[1], 0, tmp), out=out[2])
    np.multiply(out[2], _R2, out=out[2])
    return out


def _sym_grad_t_into(q: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    for k, (axis0, axis2) in enumerate(((0, 1), (1, 0))):
        np.negative(_dfwd_into(q[k], axis0, out[k]), out=out[k])
        np.multiply(_dfwd_into(q[2], axis2, tmp), _R2, out=tmp)
        np.subtract(out[k], tmp, out=out[k])
    return out


def _proj_(p: np.ndarray, alpha: float, buf: _TGVBuffers) -> np.ndarray:
    """`_proj(p, alpha)` in place: |p|^2 summed over axis 0 in order, as np.sum does."""
    norm, s, t = buf.n1, buf.n2, buf.n3
    for k in range(p.shape[0]):
        target = norm if k == 0 else s
        np.square(p[k].real, out=target)
        np.add(target, np.square(p[k].imag, out=t), out=target)
        if k:
            np.add(norm, s, out=norm)
    np.sqrt(norm, out=norm)
    np.divide(norm, alpha, out=norm)
    np.maximum(1.0, norm, out=norm)
    return np.divide(p, norm, out=p)


def _hybrid_op_into(u: np.ndarray, maps: np.ndarray, mrow: np.ndarray, buf: _TGVBuffers) -> np.ndarray:
    """`_hybrid_op`; the result is a new array (the FFT's output)."""
    k = sfft.fft(np.multiply(maps, u, out=buf.c), axis=-2, norm="ortho", workers=1)
    return np.multiply(k, mrow, out=k)


def _hybrid_op_t_into(k: np.ndarray, conj_maps: np.ndarray, mrow: np.ndarray, out: np.ndarray,
                      buf: _TGVBuffers) -> np.ndarray:
    """`_hybrid_op_t` (with conj(maps) given) written into ``out``."""
    x = sfft.ifft(np.multiply(k, mrow, out=buf.c), axis=-2, norm="ortho", workers=1)
    return np.sum(np.multiply(conj_maps, x, out=x), axis=0, out=out)


def tgv_pics(kspace: np.ndarray, mask2d: np.ndarray, maps: np.ndarray, lam: float,
             n_iter: int = TGV_ITERS, alpha0_ratio: float = 2.0, step_ratio: float = 1.0) -> np.ndarray:
    """TGV^2-regularised PI-CS reconstruction (Knoll et al. 2011, 2012) with the
    Chambolle-Pock primal-dual algorithm (Chambolle & Pock 2011, Alg. 1, theta = 1):

        u* = argmin_{u, v} 1/2 ||K u - f||_2^2 + alpha1 ||grad u - v||_1 + alpha0 ||E v||_1,

    K = M F S (mask, orthonormal FFT, coil maps), alpha1 = lam, alpha0 = alpha0_ratio * lam,
    step sizes sigma = step_ratio / sqrt(12), tau = 1 / (step_ratio sqrt(12)) (sigma tau L^2 = 1,
    L^2 = 12 >= ||A||^2; any ratio converges, Chambolle & Pock 2011 Thm 1, but how fast depends
    on it: Goldstein, Li, Yuan, Esser, Baraniuk, arXiv:1305.0546, 2013). step_ratio 1 (the
    default) leaves the result 5 % (relative l2 in the head) from the minimiser after 150
    iterations at lambda = 0.1 sigma; 0.125 leaves 0.4 % (160 px, bench/results/lab05_calibration.md).

    Args:
        kspace: f, (C, H, W) complex64, unshifted, zero where not sampled.
        mask2d: sampling mask broadcastable to (C, H, W), bool or 0/1, unshifted; an (H, 1)
            row mask (1-D Cartesian) takes the faster x-ky path.
        maps: coil sensitivities (C, H, W) complex64 with sum_c |S_c|^2 <= 1.
        lam: alpha1 in the units of |u| (the object is ~1 in white matter).
        n_iter: iterations.
        step_ratio: sigma / tau ratio parameter (> 0), see above.

    Returns:
        u: (H, W) complex64.
    """
    f = np.asarray(kspace, dtype=np.complex64)
    m = np.asarray(mask2d, dtype=np.float32)
    s = np.asarray(maps, dtype=np.complex64)
    if m.ndim == 2 and m.shape[-1] == 1:
        # row mask: F_x is unitary and commutes with M_y, so ||M F S u - f|| =
        # ||M_y F_y S u - F_x^H f||: work in x-ky space with 1-D FFTs (half the cost)
        f = sfft.ifft(f, axis=-1, norm="ortho", workers=1).astype(np.complex64)
        op, op_t = _hybrid_op, _hybrid_op_t
    else:
        op, op_t = sense_op, sense_op_t
    a1, a0 = float(lam), float(alpha0_ratio * lam)
    if not step_ratio > 0:
        raise ValueError(f"step_ratio must be > 0, got {step_ratio}")
    sig, tau = step_ratio / math.sqrt(TGV_L2), 1.0 / (math.sqrt(TGV_L2) * step_ratio)
    u = op_t(f, s, m).astype(np.complex64)
    v = np.zeros((2,) + u.shape, np.complex64)
    p = np.zeros_like(v)
    q = np.zeros((3,) + u.shape, np.complex64)
    r = np.zeros_like(f)
    ub, vb = u.copy(), v.copy()
    # The updates below are those of the formulas in the comments, computed in place into
    # buffers allocated once (same ufuncs and operand order: the same bits as the formulas).
    buf = _TGVBuffers(u.shape, f.shape[0])
    u_new, v_new = np.empty_like(u), np.empty_like(v)
    hybrid = op is _hybrid_op
    conj_s = np.conj(s) if hybrid else None
    shrink = 1.0 / (1.0 + sig)
    for _ in range(int(n_iter)):
        # p = _proj(p + sig * (grad(ub) - vb), a1)
        g = np.subtract(_grad_into(ub, buf.g), vb, out=buf.g)
        _proj_(np.add(p, np.multiply(sig, g, out=g), out=p), a1, buf)
        # q = _proj(q + sig * sym_grad(vb), a0)
        e = _sym_grad_into(vb, buf.e, buf.t)
        _proj_(np.add(q, np.multiply(sig, e, out=e), out=q), a0, buf)
        # r = (r + sig * (op(ub, s, m) - f)) * (1 / (1 + sig))
        k = _hybrid_op_into(ub, s, m, buf) if hybrid else op(ub, s, m)
        np.subtract(k, f, out=k)
        np.add(r, np.multiply(sig, k, out=k), out=k)
        r = np.multiply(k, shrink, out=k)
        # u_new = u - tau * (grad_t(p) + op_t(r, s, m))
        gt = _grad_t_into(p, buf.ut, buf.t)
        np.add(gt, _hybrid_op_t_into(r, conj_s, m, u_new, buf) if hybrid else op_t(r, s, m), out=gt)
        np.subtract(u, np.multiply(tau, gt, out=gt), out=u_new)
        # v_new = v - tau * (sym_grad_t(q) - p)
        st = np.subtract(_sym_grad_t_into(q, buf.g, buf.t), p, out=buf.g)
        np.subtract(v, np.multiply(tau, st, out=st), out=v_new)
        # ub, vb = 2 u_new - u, 2 v_new - v; u, v = u_new, v_new
        np.subtract(np.multiply(2.0, u_new, out=ub), u, out=ub)
        np.subtract(np.multiply(2.0, v_new, out=vb), v, out=vb)
        u, u_new = u_new, u
        v, v_new = v_new, v
    return u


def operator_norm_sq(shape: tuple[int, int], maps: np.ndarray, mask2d: np.ndarray, n_iter: int = 60,
                     seed: int = 0) -> float:
    """Power-iteration estimate of ||A||^2, A(u, v) = (grad u - v, E v, K u) (the operator the
    step sizes must satisfy sigma tau ||A||^2 <= 1)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(shape).astype(np.complex64)
    v = rng.standard_normal((2,) + tuple(shape)).astype(np.complex64)
    m = np.asarray(mask2d, dtype=np.float32)
    val = 0.0
    for _ in range(n_iter):
        nrm = math.sqrt(float(np.vdot(u, u).real + np.vdot(v, v).real))
        u, v = u / nrm, v / nrm
        p, q, k = grad(u) - v, sym_grad(v), sense_op(u, maps, m)
        u2 = grad_t(p) + sense_op_t(k, maps, m)
        v2 = -p + sym_grad_t(q)
        val = float(np.vdot(u, u2).real + np.vdot(v, v2).real)
        u, v = u2, v2
    return val


# ---------------------------------------------------------------- one pair

def simulate_pair_raw(index: int, image_size: int = 320, seed: int = 0, acceleration: int = 4,
                      n_iter: int = TGV_ITERS, *, snr_range: tuple[float, float] = SNR_RANGE,
                      lam_range: tuple[float, float] = LAM_RANGE, lam_noise_floor: float = LAM_NOISE_FLOOR,
                      lam_sigma: float | None = None, lam_sigma_spread: float = 1.0,
                      n_coils: int = N_COILS, coil_radius: float = COIL_RADIUS, n_center: int | None = None,
                      mask_pattern: str = "vd", contrast_gamma: tuple[float, float] | None = None,
                      ref_combine: str = "rss", head_shift_mm: float | None = None,
                      head_zoom: tuple[float, float] | None = None,
                      acq_fraction: tuple[float, float] | None = None,
                      pe_fraction: tuple[float, float] | None = None,
                      tgv_step_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Unscaled (reference, |TGV recon|) float32 (N, N) and meta for pair `index`
    (rng seed = seed + index). See `data.recon.simulate_pair`.

    The keyword-only arguments are calibration knobs (bench/bench_lab05_calibration.py); their
    defaults give the dataset of SIM_VERSION 2 bit for bit. Random numbers of a non-default knob
    come from a second generator (seed [seed + index, 7919]), so the main stream (anatomy,
    SNR, lambda, noise, mask) is drawn in the same order whatever the knobs. Exception: n_coils
    changes the number of noise samples, so with it only the anatomy, SNR and lambda draws stay.

    Args:
        snr_range: (lo, hi) of the log-uniform SNR (60th percentile of tissue / noise sigma).
        lam_range, lam_noise_floor: lambda log-uniform in lam_range, at least floor x sigma.
        lam_sigma: if given, lambda = lam_sigma x sigma x lam_sigma_spread ** (2 t - 1), t in
            [0, 1] the position of the drawn lambda in lam_range (log scale): the TGV weight
            follows the noise level (Morozov's discrepancy principle gives lambda ~ sigma), with
            a log-uniform spread of +-lam_sigma_spread; lam_range and the floor are then unused.
        n_coils, coil_radius: birdcage coil array (`coil_maps`).
        n_center, mask_pattern: fully sampled centre lines (default `default_n_center`) and
            "vd" or "regular" (`undersampling_mask`).
        contrast_gamma: (lo, hi): brain intensities raised to a power log-uniform in [lo, hi]
            (`head_phantom`); None = 1.
        ref_combine: "rss" (root-sum-of-squares, Roemer 1990) or "sense" (|sum_c conj(S_c) x_c|,
            the optimal combination with the known sensitivities, sum_c |S_c|^2 = 1: Roemer 1990,
            Pruessmann et al. 1999 at R = 1).
        head_shift_mm: if given, the head centre is shifted uniformly in [-s, s] mm along each
            axis (default +-3 mm): where the technologist centres the FOV.
        head_zoom: (lo, hi): head size factor uniform in [lo, hi] (default 0.95-1.05).
        acq_fraction: (lo, hi): the acquired matrix is a fraction f, uniform in [lo, hi], of the
            displayed one along both axes; k-space beyond it is zero-filled (zero-filled
            interpolation, with a Fermi filter against ringing: Bernstein, Fain, Riederer, JMRI
            14:270-280, 2001), for the reference and the PI-CS data alike. Default: f = 1.
        pe_fraction: (lo, hi): the phase resolution, the acquired fraction p (uniform in [lo, hi])
            of the phase-encode lines (axis 0), zero-filled to the display matrix as above. The
            R = 4 mask is drawn over the acquired lines (from the knob generator); the lines
            beyond them are known zeros to the PI-CS reconstruction, as for the reference.
        tgv_step_ratio: `tgv_pics`'s step_ratio (1 = SIM_VERSION 2).
    """
    n = int(image_size)
    rng = np.random.default_rng(int(seed) + int(index))
    knobs = {}
    krng = np.random.default_rng([int(seed) + int(index), 7919])
    if contrast_gamma is not None:
        g = float(math.exp(krng.uniform(math.log(contrast_gamma[0]), math.log(contrast_gamma[1]))))
        knobs["contrast_gamma"] = g
    else:
        g = 1.0
    pose = {}
    if head_shift_mm is not None:
        pose["shift_mm"] = krng.uniform(-float(head_shift_mm), float(head_shift_mm), 2)
        knobs["head_shift_mm"] = [float(v) for v in pose["shift_mm"]]
    if head_zoom is not None:
        pose["zoom"] = float(krng.uniform(float(head_zoom[0]), float(head_zoom[1])))
        knobs["head_zoom"] = pose["zoom"]
    axis, sl = slice_for_pair(index, seed)
    x, meta = head_phantom(axis, sl, n, rng, contrast_gamma=g, pose=pose or None)
    snr = float(math.exp(rng.uniform(math.log(snr_range[0]), math.log(snr_range[1]))))
    lam = float(math.exp(rng.uniform(math.log(lam_range[0]), math.log(lam_range[1]))))
    maps = coil_maps(n) if (n_coils, coil_radius) == (N_COILS, COIL_RADIUS) else coil_maps(n, int(n_coils), float(coil_radius))
    k = fft2c(maps * x)
    mag = np.abs(x)
    tissue = mag[mag > 0.05]
    sigma = float(np.percentile(tissue, 60)) / snr if tissue.size else 1.0 / snr
    lam_drawn = lam
    if lam_sigma is None:
        lam = max(lam, sigma * lam_noise_floor)  # no operator under-regularises noisy data this much
    else:
        lo, hi = math.log(lam_range[0]), math.log(lam_range[1])
        t = (math.log(lam_drawn) - lo) / (hi - lo) if hi > lo else 0.5
        lam = float(lam_sigma) * sigma * float(lam_sigma_spread) ** (2.0 * t - 1.0)
        knobs.update(lam_sigma=float(lam_sigma), lam_sigma_spread=float(lam_sigma_spread))
    noise = rng.standard_normal((2,) + k.shape, dtype=np.float32)
    k = (k + (sigma * _R2) * (noise[0] + 1j * noise[1])).astype(np.complex64)
    if acq_fraction is not None:
        f = float(krng.uniform(float(acq_fraction[0]), float(acq_fraction[1])))
        kk = np.abs(np.fft.fftfreq(n)) * 2.0  # 1 at the edge of the displayed k-space
        w1 = 1.0 / (1.0 + np.exp((kk - f) / 0.02))  # Fermi edge, 1 % of the matrix wide
        k = (k * (w1[:, None] * w1[None, :]).astype(np.float32)).astype(np.complex64)
        knobs["acq_fraction"] = f
    if pe_fraction is not None:  # before the reference: both images come from this acquisition
        p = float(krng.uniform(float(pe_fraction[0]), float(pe_fraction[1])))
        n_acq = 2 * int(round(p * n / 2))
        kk = np.abs(np.arange(n) - n // 2) / (n_acq / 2.0)  # centred: 1 at the edge of the acquired lines
        w_pe = 1.0 / (1.0 + np.exp((kk - 1.0) / 0.02))
        k = (k * np.fft.ifftshift(w_pe).astype(np.float32)[:, None]).astype(np.complex64)
    if ref_combine == "rss":
        ref = np.sqrt(np.sum(np.abs(ifft2c(k)) ** 2, axis=0)).astype(np.float32)  # RSS (Roemer 1990)
    elif ref_combine == "sense":
        ref = np.abs(np.sum(np.conj(maps) * ifft2c(k), axis=0)).astype(np.float32)
        knobs["ref_combine"] = ref_combine
    else:
        raise ValueError(f"ref_combine must be 'rss' or 'sense', got {ref_combine!r}")
    nc = default_n_center(n) if n_center is None else int(n_center)
    mask = undersampling_mask(n, acceleration, n_center, rng=rng, pattern=mask_pattern)  # phase encode along rows (axis 0)
    known = None  # lines the PI-CS reconstruction knows to be zero (beyond the acquired matrix)
    if pe_fraction is not None:
        sub = undersampling_mask(n_acq, acceleration, None if n_center is None else max(2, round(int(n_center) * p)),
                                 rng=krng, pattern=mask_pattern)
        mask = np.zeros(n, dtype=bool)
        mask[n // 2 - n_acq // 2: n // 2 + n_acq // 2] = sub
        known = np.ones(n, dtype=bool)
        known[n // 2 - n_acq // 2: n // 2 + n_acq // 2] = False
        knobs["pe_fraction"] = n_acq / n
    m2 = np.fft.ifftshift(mask).astype(np.float32)[:, None]
    m_rec = m2 if known is None else np.fft.ifftshift(mask | known).astype(np.float32)[:, None]
    u = tgv_pics(k * m2, m_rec, maps, lam, n_iter=n_iter, step_ratio=tgv_step_ratio)
    acc = np.abs(u).astype(np.float32)
    meta.update(index=int(index), seed=int(seed) + int(index), snr=snr, lam=lam, lam_drawn=lam_drawn, noise_sigma=sigma,
                acceleration=int(acceleration), n_center=nc, n_coils=int(maps.shape[0]),
                tgv_iters=int(n_iter), mask=mask)
    if (tuple(snr_range), tuple(lam_range), lam_noise_floor) != (SNR_RANGE, LAM_RANGE, LAM_NOISE_FLOOR):
        knobs.update(snr_range=tuple(snr_range), lam_range=tuple(lam_range), lam_noise_floor=lam_noise_floor)
    if coil_radius != COIL_RADIUS:
        knobs["coil_radius"] = float(coil_radius)
    if mask_pattern != "vd":
        knobs["mask_pattern"] = mask_pattern
    if tgv_step_ratio != 1.0:
        knobs["tgv_step_ratio"] = float(tgv_step_ratio)
    if knobs:  # only for non-default settings: the default meta stays as it was
        meta["knobs"] = knobs
    return ref, acc, meta
