"""A frozen copy of ``data/mrsim.py``'s TGV^2 PI-CS solver as it was before its loop was made in
place (issue 22): ``tests/test_data_recon.py`` checks that today's ``mrsim.tgv_pics`` gives
the same bits. Do not edit: it is the reference, not the code in use."""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from data.mrsim import TGV_ITERS, TGV_L2, fft2c, ifft2c

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
    for _ in range(int(n_iter)):
        p = _proj(p + sig * (grad(ub) - vb), a1)
        q = _proj(q + sig * sym_grad(vb), a0)
        r = (r + sig * (op(ub, s, m) - f)) * (1.0 / (1.0 + sig))
        u_new = u - tau * (grad_t(p) + op_t(r, s, m))
        v_new = v - tau * (sym_grad_t(q) - p)
        ub, vb = 2.0 * u_new - u, 2.0 * v_new - v
        u, v = u_new, v_new
    return u
