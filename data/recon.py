"""MR image quality dataset: fully sampled reference vs 4x accelerated PI-CS (TGV) images.

Binary classification (lecture: N = 520 images, 260 per class, 2/3 train, 1/3 validation):

    label 0 = "fully sampled reference"   (8 fully sampled coils, combined with their sensitivities)
    label 1 = "accelerated PI-CS (R=4)"   (TGV^2-regularised parallel-imaging compressed
                                           sensing from 1/4 of the phase-encode lines)

Images are 2-D grayscale float32 in [0, 1], returned as torch tensors (N, 1, H, W).

Sources:

* ``"real"``: PNGs in the ISMRM 2018 layout ``data/recon_classification/{train,test}/{ref,tgv}/
  *.png`` (train -> training set, test -> validation set; label from the folder name).
* ``"offline"``: the same layout simulated from the MNI152 template (`prepare`, a one-time
  job of about 8 min on 2 processes: ``python -m data prepare recon``), stored as uint8 PNGs
  (~35 MB) in the cache folder (`data.cache.cache_dir`).
* `load_recon_subset`: a small simulated set made in memory in seconds (64-96 px), cached as
  npz; what tests use. The grader uses `load_grader_subset` (`GRADER_SUBSET`): seed 0, or,
  where the grader's data secret is set (`data.secret`), a seed derived from it, so that the
  grader's images cannot be rebuilt from the release.

Each simulated pair (reference, accelerated) shares one object, coil set and noise draw and is
seeded by its index (rng seed = seed + index), so any subset can be made alone. Simulation
details and the TGV solver: `data.mrsim`; the settings of SIM_VERSION 3 are `SIM_KNOBS`: per
image the SNR is log-uniform in [40, 120] (2-D T1-weighted brain images at 1.5-3 T) and the TGV
weight is 0.35 x the noise sigma (x 1.5^(+-1), Morozov's discrepancy principle), the head is placed within +-15 mm, and each image
is scaled by its own 99.5th percentile. Why these: bench/results/lab05_calibration.md.

Anatomy: MNI ICBM152 2009a nonlinear symmetric T1 template, as bundled with nilearn
(Fonov et al. 2009, 2011; Collins et al. 1999).
"Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software
and its documentation for any purpose and without fee is hereby granted, provided that the
above copyright notice appear in all copies. The authors and McGill University make no
representations about the suitability of this software for any purpose. It is provided
"as is" without express or implied warranty."

References:
    Fonov V et al. Unbiased nonlinear average age-appropriate brain templates from birth to
        adulthood. NeuroImage 47:S102, 2009.
    Fonov V et al. Unbiased average age-appropriate atlases for pediatric studies.
        NeuroImage 54(1):313-327, 2011.
    Collins DL et al. ANIMAL+INSECT: improved cortical structure segmentation. IPMI 1999.
    Knoll F, Bredies K, Pock T, Stollberger R. Second order total generalized variation (TGV)
        for MRI. Magn Reson Med 65(2):480-491, 2011.
    Chambolle A, Pock T. A first-order primal-dual algorithm for convex problems with
        applications to imaging. J Math Imaging Vis 40(1):120-145, 2011.
    Lustig M, Donoho D, Pauly JM. Sparse MRI. Magn Reson Med 58(6):1182-1195, 2007.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import mrsim

if TYPE_CHECKING:  # torch is imported lazily: `python -m data prepare recon` does not need it
    import torch
from .cache import atomic_save_npz, atomic_write_bytes, atomic_write_text, cache_dir, folder_size
from .cache import manifest_ok, write_manifest
from .secret import derived_seed, secret_tag

__all__ = [
    "CLASSES", "CLASS_DIRS", "SPLIT_DIRS", "REAL_ROOT", "ReconData", "simulate_pair",
    "undersampling_mask", "n_train_pairs", "load_recon_subset", "load_grader_subset", "load_recon_folder", "load_recon",
    "sim_root", "prepare", "info",
]

CLASSES = ("fully sampled reference", "accelerated PI-CS (R=4)")
CLASS_DIRS = ("ref", "tgv")  # folder of label 0, label 1
SPLIT_DIRS = ("train", "test")  # -> training set, validation set
REAL_ROOT = Path(__file__).resolve().parent / "recon_classification"
LECTURE_N_PAIRS = 260  # 520 images
LECTURE_IMAGE_SIZE = 320
SIM_VERSION = 3  # bump when the simulation changes: invalidates caches
#: Simulator settings of SIM_VERSION 3 (`mrsim.simulate_pair_raw` knobs; SIM_VERSION 2 = no knobs):
#: the setting "combo-APc" of bench/results/lab05_calibration.md, each knob justified there with
#: its source. SNR of 2-D T1-weighted brain images at 1.5-3 T (Springer et al. 2016); TGV weight
#: lambda = 0.35 x noise sigma x 1.5^(+-1), what Morozov's discrepancy principle gave with this
#: solver (lambda / sigma 0.28-0.43 in 9 of 10 measurements); the reference combined with the coil sensitivities like the
#: PI-CS image (no RSS noise floor: Roemer et al. 1990); the head placed within +-15 mm, sized
#: 0.9-1.1; TGV step sizes that reach the minimiser in 150 iterations (sigma/tau = 1/64).
SIM_KNOBS = {"snr_range": (40.0, 120.0), "lam_sigma": 0.35, "lam_sigma_spread": 1.5, "ref_combine": "sense",
             "head_shift_mm": 15.0, "head_zoom": (0.9, 1.1), "tgv_step_ratio": 0.125}
#: File names of the PNG set: ``<class>.<pair id>.png`` as in the lecture's data.zip, whose script
#: takes the label from the name before the first dot. Part of the folder name, so a set written
#: with the earlier names (``pair0000.png``) is not mistaken for this one.
NAMING = "-named"
#: (n_pairs, image_size) of the subset that grades lab 5; `python -m data prepare grader` builds it.
GRADER_SUBSET = (60, 64)
SECONDS_PER_PAIR_320 = 4.5  # one core, for the progress message
LAYOUT = ("<root>/train/ref/*.png, <root>/train/tgv/*.png, <root>/test/ref/*.png, "
          "<root>/test/tgv/*.png (ref = fully sampled reference, label 0; tgv = accelerated "
          "PI-CS, label 1; 2-D grayscale PNGs)")


@dataclass
class ReconData:
    """Image-quality classification data.

    Attributes:
        x_train: (N_train, 1, H, W) torch.float32 in [0, 1].
        y_train: (N_train,) torch.float32, 0. = fully sampled reference, 1. = accelerated PI-CS.
        x_val: (N_val, 1, H, W) torch.float32 in [0, 1].
        y_val: (N_val,) torch.float32.
        source: "real", "offline" or "simulated subset" (+ details).
        pair_train, pair_val: (N,) torch.int64 pair id of each image (the two images of a
            simulated pair share it; real images: files with the same name share it).
        classes: class names, index = label.
    """

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    source: str
    pair_train: "torch.Tensor | None" = None
    pair_val: "torch.Tensor | None" = None
    classes: tuple = field(default=CLASSES)

    def __repr__(self) -> str:
        h, w = tuple(self.x_train.shape[-2:])
        return (f"ReconData(source={self.source!r}, train={len(self.y_train)} "
                f"({int(self.y_train.sum())} accelerated), val={len(self.y_val)} "
                f"({int(self.y_val.sum())} accelerated), image {h}x{w})")


# ---------------------------------------------------------------- simulation

def undersampling_mask(n_lines: int, acceleration: int = 4, n_center: int | None = None,
                       rng: np.random.Generator | int | None = None) -> np.ndarray:
    """1-D Cartesian variable-density phase-encode mask (Lustig et al. 2007).

    Args:
        n_lines: phase-encode lines (= image height).
        acceleration: R; exactly round(n_lines / R) lines are sampled.
        n_center: fully sampled central lines (k = 0 at index n_lines // 2); default 24 at
            320 lines, scaled with n_lines (at least 2).
        rng: numpy Generator or int seed for the other lines, drawn without replacement
            with pdf ~ (1 - |k|)^2, |k| in [0, 1].

    Returns:
        mask: (n_lines,) bool, True = sampled, centred (index n_lines // 2 is k = 0).

    Raises:
        ValueError: acceleration < 1, or n_center larger than round(n_lines / R).
    """
    return mrsim.undersampling_mask(n_lines, acceleration, n_center, rng)


def simulate_pair(index: int, image_size: int = 320, seed: int = 0,
                  acceleration: int = 4) -> tuple[np.ndarray, np.ndarray, dict]:
    """Simulate one (reference, accelerated) image pair; rng seed = seed + index.

    SIM_VERSION 3 (`SIM_KNOBS`). Anatomy: template slice `mrsim.slice_for_pair(index, seed)`
    (pairs 0..~375 all use different slices) with skull/scalp, texture, bias field and phase,
    head centre within +-15 mm and size 0.9-1.1; 8 birdcage coils; k-space noise with SNR
    log-uniform in [40, 120]. Reference = |sum_c conj(S_c) x_c| of the fully sampled coil images
    with the true sensitivities (Roemer et al. 1990). Accelerated = |u| of the TGV^2 PI-CS
    reconstruction with the same sensitivities (Knoll et al. 2011; Chambolle & Pock 2011,
    150 iterations with sigma/tau = 1/64, which reaches the minimiser; alpha1 = lambda =
    0.35 x noise sigma x 1.5^(+-1), alpha0 = 2 lambda) from a variable-density mask at
    R = `acceleration`. About 4-6 s at 320 px and 0.2-0.3 s at 64 px on one core.

    Returns:
        ref: (image_size, image_size) float32 in [0, 1], divided by its own 99.5th percentile,
            clipped.
        accel: same shape and dtype, divided by its own 99.5th percentile, clipped.
        meta: dict with orientation, slice, snr, lam, noise_sigma, mask ((image_size,) bool,
            centred), scale (of ref), scale_accel, seed, knobs (`SIM_KNOBS` as recorded by
            `mrsim.simulate_pair_raw`), ... (Python scalars).
    """
    ref, acc, meta = mrsim.simulate_pair_raw(index, image_size, seed, acceleration, **SIM_KNOBS)
    # each image by its own 99.5th percentile, as a scanner scales each series and a PNG export
    # windows each image: no global-brightness difference between the classes
    meta["scale"], meta["scale_accel"] = float(np.percentile(ref, 99.5)), float(np.percentile(acc, 99.5))
    ref = np.clip(ref / meta["scale"], 0.0, 1.0).astype(np.float32)
    acc = np.clip(acc / meta["scale_accel"], 0.0, 1.0).astype(np.float32)
    return ref, acc, meta


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def n_train_pairs(n_pairs: int) -> int:
    """Pairs 0..n_train-1 are training pairs, the rest validation: n_train = round(2 n / 3)."""
    return int(round(2.0 * n_pairs / 3.0))


def _pairs_to_data(imgs: np.ndarray, n_pairs: int, source: str) -> ReconData:
    """imgs (n_pairs, 2, H, W) uint8 [ref, accel] -> ReconData split 2/3 - 1/3 by pair."""
    import torch

    nt = n_train_pairs(n_pairs)
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0)
    y = torch.tensor([0.0, 1.0]).repeat(n_pairs, 1)
    pid = torch.arange(n_pairs).repeat_interleave(2).reshape(n_pairs, 2)

    def part(s):
        return x[s].reshape(-1, 1, *x.shape[-2:]).contiguous(), y[s].reshape(-1).contiguous(), pid[s].reshape(-1)

    xt, yt, pt = part(slice(0, nt))
    xv, yv, pv = part(slice(nt, n_pairs))
    return ReconData(xt, yt, xv, yv, source, pt, pv)


def load_recon_subset(n_pairs: int = 16, image_size: int = 64, seed: int = 0,
                      cache: bool = True, progress: bool = False) -> ReconData:
    """Small simulated subset, made in memory (pairs 0..n_pairs-1 of `simulate_pair`).

    Pairs 0..round(2 n/3)-1 go to training, the rest to validation (both images of a pair
    in the same split); within a split the images are ordered [ref_0, accel_0, ref_1, ...].
    Intensities are quantised to 8 bits like the PNG datasets. The result is cached as
    ``<cache>/recon_subset/n{n}_{size}px_seed{seed}_v{SIM_VERSION}/subset.npz`` with a manifest keyed by the
    parameters, `SIM_VERSION` and `SIM_KNOBS` included. About 0.2-0.3 s per pair at 64 px, 0.4-0.5 s at 96 px (plus ~3 s of imports and
    template loading) on the first call, then < 0.1 s.

    Args:
        n_pairs: number of pairs (>= 3); 2 n_pairs images.
        image_size: H = W in pixels (>= 16; field of view 240 mm).
        seed: base seed.
        cache: read/write the npz cache.
        progress: show a tqdm progress bar while simulating.

    Returns:
        ReconData with x_* (N, 1, image_size, image_size) float32 in [0, 1], y_* 0./1.

    Raises:
        ValueError: n_pairs < 3 or image_size < 16.
    """
    return _subset(n_pairs, image_size, seed, cache, progress=progress)


def load_grader_subset(cache: bool = True) -> ReconData:
    """The subset that grades lab 5: `GRADER_SUBSET` pairs and size, seed 0 (public default).

    Where the grader's data secret is set (`data.secret`), the base seed is a 32-bit seed derived
    from it instead, and the cache folder is
    ``<cache>/recon_subset/n{n}_{size}px_secret-<tag>_v{SIM_VERSION}/`` (never the seed: the tag
    is an HMAC of the secret), with ``"seed": None`` and ``"secret": <tag>`` in its manifest.
    Without a secret it is exactly ``load_recon_subset(*GRADER_SUBSET, seed=0)``.
    `python -m data prepare grader` builds it.
    """
    n_pairs, image_size = GRADER_SUBSET
    tag = secret_tag()
    if tag is None:
        return _subset(n_pairs, image_size, 0, cache)
    return _subset(n_pairs, image_size, derived_seed("recon-grader-subset"), cache, secret=tag)


def _subset(n_pairs: int, image_size: int, seed: int, cache: bool, secret: str | None = None,
            progress: bool = False) -> ReconData:
    # secret: the tag of the grader's data secret that `seed` comes from; the seed itself then
    # appears in no file name, manifest or source text.
    n_pairs, image_size, seed = int(n_pairs), int(image_size), int(seed)
    if n_pairs < 3:
        raise ValueError(f"n_pairs must be >= 3 (2/3 train, 1/3 validation), got {n_pairs}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    params = {"dataset": "recon_subset", "n_pairs": n_pairs, "image_size": image_size, "seed": seed,
              "acceleration": 4, "version": SIM_VERSION, "knobs": SIM_KNOBS}
    key, drawn = f"seed{seed}", f"seed {seed}"
    if secret is not None:
        params.update(seed=None, secret=secret)
        key, drawn = f"secret-{secret}", "drawn from the grader's secret"
    folder = cache_dir() / "recon_subset" / f"n{n_pairs}_{image_size}px_{key}_v{SIM_VERSION}" if cache else None
    source = f"simulated subset ({n_pairs} pairs, {image_size}px, {drawn})"
    if cache and manifest_ok(folder, params):
        with np.load(folder / "subset.npz") as z:
            return _pairs_to_data(z["images"], n_pairs, source)
    imgs = np.zeros((n_pairs, 2, image_size, image_size), np.uint8)
    from tqdm import tqdm

    desc = f"simulating {n_pairs} pairs at {image_size} px (once: cached)"
    for i in tqdm(range(n_pairs), desc=desc, unit="pair", disable=not progress):
        ref, acc, _ = simulate_pair(i, image_size, seed)
        imgs[i, 0], imgs[i, 1] = _to_uint8(ref), _to_uint8(acc)
    if cache:
        f = atomic_save_npz(folder / "subset.npz", images=imgs)
        write_manifest(folder, params, [f])
    return _pairs_to_data(imgs, n_pairs, source)


# ---------------------------------------------------------------- PNG folders

def _read_png(path: Path) -> np.ndarray:
    """One grayscale image file -> (H, W) float32 in [0, 1]; ValueError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise ValueError(f"{path}: {im.n_frames} frames; expected one 2-D grayscale image. "
                                 f"Expected layout: {LAYOUT}")
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA")
            elif mode == "1":
                im = im.convert("L")
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: cannot read the image ({e}). Expected layout: {LAYOUT}") from None
    if a.ndim == 3:  # colour / alpha: accepted only if it is gray stored as colour
        c = a[..., :3] if a.shape[-1] >= 3 else a[..., :1]
        if not np.all(c == c[..., :1]):
            raise ValueError(f"{path}: colour image of shape {a.shape} (mode {mode}); expected a 2-D "
                             f"grayscale image. Expected layout: {LAYOUT}")
        a = c[..., 0]
    if a.ndim != 2 or min(a.shape) < 2:
        raise ValueError(f"{path}: image array of shape {a.shape}; expected a 2-D grayscale image "
                         f"(H, W). Expected layout: {LAYOUT}")
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.bool_:
        x = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):  # 16-bit PNG (mode I;16 or I)
        x = a.astype(np.float32) / 65535.0
    else:
        x = a.astype(np.float32)
    return np.clip(x, 0.0, 1.0)


def _resize(x: "torch.Tensor", image_size: int) -> "torch.Tensor":
    """(N, 1, H, W) -> (N, 1, image_size, image_size), bilinear with antialiasing, in [0, 1]."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == (image_size, image_size):
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False,
                         antialias=True).clamp_(0.0, 1.0)


def load_recon_folder(root: str | Path, image_size: int | None = None, source: str = "real") -> ReconData:
    """Read PNGs in the ISMRM 2018 layout ``root/{train,test}/{ref,tgv}/*.png``.

    train -> (x_train, y_train), test -> (x_val, y_val); label 0 for ``ref`` (fully sampled
    reference), 1 for ``tgv`` (accelerated PI-CS). 8-bit images are divided by 255, 16-bit by
    65535; gray images stored as RGB(A) are accepted. A ``ref`` and a ``tgv`` file share a pair
    id when their names are equal or differ only in the class prefix (``ref.0007.png`` and
    ``tgv.0007.png``, the lecture's naming; see `pair_key`).

    Args:
        root: dataset folder.
        image_size: resize every image to (image_size, image_size) (bilinear, antialiased);
            None keeps the size, which must then be the same for all images.
        source: the `ReconData.source` string.

    Returns:
        ReconData, x_* (N, 1, H, W) torch.float32 in [0, 1], y_* (N,) float32 0./1.

    Raises:
        FileNotFoundError: root, a split folder or a class folder is missing.
        ValueError: a class folder holds no PNG; a file is unreadable, not a single 2-D
            grayscale image, or (image_size=None) differs in size from the others. Messages
            name the file and the expected layout.
    """
    import torch

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"recon dataset folder {root} does not exist. Expected layout: {LAYOUT}")
    out = []
    shape0, file0 = None, None
    for split in SPLIT_DIRS:
        xs, ys, stems = [], [], []
        for label, cname in enumerate(CLASS_DIRS):
            folder = root / split / cname
            if not folder.is_dir():
                raise FileNotFoundError(f"missing folder {folder}. Expected layout: {LAYOUT}")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
            if not files:
                raise ValueError(f"no .png files in {folder}. Expected layout: {LAYOUT}")
            for p in files:
                a = _read_png(p)
                if image_size is None:
                    if shape0 is None:
                        shape0, file0 = a.shape, p
                    elif a.shape != shape0:
                        raise ValueError(f"{p}: image size {a.shape} differs from {shape0} of {file0}; "
                                         f"pass image_size= to resize")
                    t = torch.from_numpy(a)[None, None]
                else:
                    t = _resize(torch.from_numpy(a)[None, None], int(image_size))
                xs.append(t)
                ys.append(float(label))
                stems.append(pair_key(p.stem, cname))
        ids = {s: i for i, s in enumerate(sorted(set(stems)))}
        out.append((torch.cat(xs).contiguous(), torch.tensor(ys, dtype=torch.float32),
                    torch.tensor([ids[s] for s in stems], dtype=torch.int64)))
    (xt, yt, pt), (xv, yv, pv) = out
    pv = pv + int(pt.max()) + 1  # test pair ids continue after the train ids
    return ReconData(xt, yt, xv, yv, source, pt, pv)


def _real_present(root: Path) -> bool:
    return all((root / s / c).is_dir() for s in SPLIT_DIRS for c in CLASS_DIRS)


def sim_root(n_pairs: int = LECTURE_N_PAIRS, image_size: int = LECTURE_IMAGE_SIZE, seed: int = 0) -> Path:
    """Cache folder of a simulated PNG dataset:
    ``<cache>/recon_sim/n{n}_{size}px_seed{seed}_v{SIM_VERSION}{NAMING}``."""
    return cache_dir() / "recon_sim" / f"n{int(n_pairs)}_{int(image_size)}px_seed{int(seed)}_v{SIM_VERSION}{NAMING}"


def _prepare_params(n_pairs: int, image_size: int, seed: int) -> dict:
    return {"dataset": "recon_sim", "n_pairs": n_pairs, "image_size": image_size, "seed": seed,
            "acceleration": 4, "version": SIM_VERSION, "knobs": SIM_KNOBS}


def _pair_paths(root: Path, index: int, n_pairs: int) -> tuple[Path, Path]:
    split = SPLIT_DIRS[0] if index < n_train_pairs(n_pairs) else SPLIT_DIRS[1]
    return tuple(root / split / c / f"{c}.{index:04d}.png" for c in CLASS_DIRS[:2])


def pair_key(stem: str, class_dir: str) -> str:
    """What pairs a ``ref`` file with its ``tgv`` file: the name after the class prefix
    (``ref.0007`` and ``tgv.0007`` -> ``0007``, the lecture's ``<class>.<id>.png``), or the
    whole name when it has no such prefix (``img7`` in both folders)."""
    prefix = f"{class_dir}."
    return stem[len(prefix):] if stem.startswith(prefix) and len(stem) > len(prefix) else stem


def _png_bytes(x: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_to_uint8(x), mode="L").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _write_pair(args: tuple) -> int:
    """Worker: simulate pair `index` and write its two PNGs atomically."""
    root, index, n_pairs, image_size, seed = args
    ref, acc, _ = simulate_pair(index, image_size, seed)
    p_ref, p_acc = _pair_paths(Path(root), index, n_pairs)
    atomic_write_bytes(p_ref, _png_bytes(ref))
    atomic_write_bytes(p_acc, _png_bytes(acc))
    return index


def prepare(n_pairs: int = LECTURE_N_PAIRS, image_size: int = LECTURE_IMAGE_SIZE, workers: int = 2,
            seed: int = 0, root: str | Path | None = None, progress: bool = True) -> Path:
    """Build the simulated dataset as uint8 PNGs in the ISMRM 2018 layout (see `load_recon_folder`).

    Pairs 0..round(2 n/3)-1 go to ``train``, the rest to ``test``; files
    ``{split}/{ref,tgv}/{ref,tgv}.{index:04d}.png`` (the lecture's ``<class>.<id>.png``: its script
    takes the label from the name before the first dot). Each PNG is written atomically; finished pairs
    are kept, so an interrupted run resumes where it stopped. A manifest (parameters + sha256
    of all files) marks the folder complete; a complete folder is returned at once. The
    lecture set (260 pairs, 320 px) takes about 8 min with 2 workers (7 min 18 s measured on a quiet
    machine, 2026-12-06; 16 min 35 s on a busy day, bench/results/lab05_fullset.txt), ~35 MB.
    The manifest's parameters include `SIM_VERSION` and `SIM_KNOBS`, so a cache made with other
    simulator settings is never taken for this one.

    Args:
        n_pairs: number of pairs (>= 3).
        image_size: H = W in pixels.
        workers: processes (multiprocessing; fork on Linux, else spawn); 1 = in this process.
        seed: base seed (pair rng seed = seed + index).
        root: output folder; default `sim_root(n_pairs, image_size, seed)`.
        progress: show a tqdm progress bar.

    Returns:
        The dataset folder.

    Raises:
        ValueError: n_pairs < 3, or `root` holds an unfinished dataset with other parameters.
    """
    from tqdm import tqdm

    n_pairs, image_size, seed = int(n_pairs), int(image_size), int(seed)
    if n_pairs < 3:
        raise ValueError(f"n_pairs must be >= 3, got {n_pairs}")
    root = Path(root) if root is not None else sim_root(n_pairs, image_size, seed)
    params = _prepare_params(n_pairs, image_size, seed)
    if manifest_ok(root, params):
        return root
    started = root / ".prepare_params.json"
    if started.is_file():
        old = json.loads(started.read_text(encoding="utf-8"))
        if old != json.loads(json.dumps(params)):
            raise ValueError(f"{root} holds an unfinished recon dataset with parameters {old}, not {params}; "
                             f"delete the folder or choose another root")
    else:
        atomic_write_text(started, json.dumps(params, sort_keys=True))
    todo = [i for i in range(n_pairs) if not all(p.is_file() for p in _pair_paths(root, i, n_pairs))]
    if todo:
        est = len(todo) * SECONDS_PER_PAIR_320 * (image_size / 320.0) ** 2 / max(1, workers)
        if est > 30.0:
            print(f"Simulating {len(todo)} of {n_pairs} recon image pairs ({image_size}px) into {root}: "
                  f"about {est / 60.0:.0f} min with {workers} process(es). This is done once; "
                  f"an interrupted run resumes.", file=sys.stderr, flush=True)
        jobs = [(str(root), i, n_pairs, image_size, seed) for i in todo]
        bar = tqdm(total=len(jobs), desc="recon pairs", unit="pair", disable=not progress)
        if workers <= 1 or len(jobs) == 1:
            for j in jobs:
                _write_pair(j)
                bar.update(1)
        else:
            # fork where available: no `if __name__ == "__main__"` guard needed in scripts,
            # and the workers inherit the template, slice list and coil maps loaded here
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            if method == "fork":
                mrsim.candidate_slices(), mrsim.coil_maps(image_size)
            with mp.get_context(method).Pool(min(int(workers), len(jobs))) as pool:
                for _ in pool.imap_unordered(_write_pair, jobs, chunksize=1):
                    bar.update(1)
        bar.close()
    files = [p for i in range(n_pairs) for p in _pair_paths(root, i, n_pairs)]
    write_manifest(root, params, files)
    return root


def load_recon(source: str = "auto", image_size: int = LECTURE_IMAGE_SIZE,
               root: str | Path | None = None) -> ReconData:
    """The lecture dataset (520 images: 2/3 train, 1/3 validation).

    Args:
        source: "real" reads the PNG folder (`root`, default ``data/recon_classification``);
            "offline" reads the simulated 260-pair, 320 px PNG set in the cache, building it
            first if missing (one-time, about 8 min on 2 processes; ``python -m data prepare recon``
            does it ahead); "auto" = "real" if `root` is given or the real folder has the
            layout, else "offline".
        image_size: output H = W; images of another size are resized (bilinear, antialiased).
        root: folder for "real"/"auto" (default `REAL_ROOT`), or for "offline" (default
            `sim_root()`).

    Returns:
        ReconData, x_* (N, 1, image_size, image_size) torch.float32 in [0, 1].

    Raises:
        ValueError: unknown source; see `load_recon_folder` for layout errors.
        FileNotFoundError: source="real" and the folder is missing.
    """
    if source not in ("auto", "real", "offline"):
        raise ValueError(f"source must be 'auto', 'real' or 'offline', got {source!r}")
    real = Path(root) if root is not None and source != "offline" else REAL_ROOT
    if source == "real" or (source == "auto" and (root is not None or _real_present(real))):
        return load_recon_folder(real, image_size, source=f"real ({real})")
    folder = Path(root) if root is not None and source == "offline" else sim_root()
    params = _prepare_params(LECTURE_N_PAIRS, LECTURE_IMAGE_SIZE, 0)
    if not manifest_ok(folder, params):
        print(f"The simulated recon dataset is not in the cache ({folder}); building it now "
              f"(one-time, about 8 min on 2 processes). `python -m data prepare recon` does this "
              f"ahead of time.", file=sys.stderr, flush=True)
        prepare(root=folder)
    return load_recon_folder(folder, image_size, source=f"offline simulation ({folder})")


def info() -> dict:
    """Status of the recon dataset: {"source" ("real"/"offline", what source="auto" uses),
    "real_root", "real_present", "sim_root", "sim_ready" (manifest complete and valid),
    "n_images" (PNGs in the folder auto would use), "size_mb", "manifest_ok"}."""
    real = _real_present(REAL_ROOT)
    sim = sim_root()
    folder = REAL_ROOT if real else sim
    sim_ok = manifest_ok(sim, _prepare_params(LECTURE_N_PAIRS, LECTURE_IMAGE_SIZE, 0))
    n_img = len(list(folder.glob("*/*/*.png"))) if folder.is_dir() else 0
    return {
        "source": "real" if real else "offline",
        "real_root": str(REAL_ROOT),
        "real_present": real,
        "sim_root": str(sim),
        "sim_ready": sim_ok,
        "n_images": n_img,
        "size_mb": round(folder_size(folder) / 1e6, 2),
        "manifest_ok": None if real else sim_ok,  # real data have no manifest
        "expected_images": 2 * LECTURE_N_PAIRS,
        "image_size": LECTURE_IMAGE_SIZE,
    }
