"""DTI tissue classification data (ISMRM 2018 format): real CSVs or an offline simulation.

File format (one file per subject, ``sampledata<subject>.csv``, no header, 10 columns)::

    sample, row, column, slice, T1w, FA, MD, AD, RD, label

``label`` in the FILE is 1 = thalamus, 2 = genu of the corpus callosum, 3 = subcortical white
matter of the inferior frontal gyrus. **Off by one:** :func:`read_dti_csv` and :func:`load_dti`
return labels 0..2 (``file_label - 1``) so they index :data:`CLASSES` and work with
``nn.CrossEntropyLoss``. MD, AD and RD are in um^2/ms (= 1e-3 mm^2/s), FA is unitless, T1w is
in arbitrary scanner units.

Subject 100206 is the test subject; 105620, 107725 and 112314 are for training/validation.
Where the grader's data secret is set (:mod:`data.secret`), the simulated test subject's voxels
are drawn from a seed derived from it (its SNR and tissue scales, which set the difficulty, and
the training subjects stay the same) and cached in
``<cache>/dti-secret-<tag>/``, so the grader's test subject cannot be rebuilt from the release.

Without the real files, :func:`simulate_dti` writes CSVs in the same format from a physical
model (diffusion tensors per tissue, partial volume, Rician noise, dipy tensor fit); see its
docstring. :func:`load_dti` ("auto") uses the real files when all 4 are in ``data/dti/``.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.cache import DATA_DIR, atomic_write_text, cache_dir, folder_size, manifest_ok, write_manifest
from data.secret import derived_seed, secret_tag

if TYPE_CHECKING:
    import torch

__all__ = [
    "FEATURES",
    "CLASSES",
    "TEST_SUBJECT",
    "TRAIN_SUBJECTS",
    "SUBJECTS",
    "COUNTS",
    "DtiData",
    "SimulatedSubject",
    "read_dti_csv",
    "tensor_metrics",
    "dti_gradient_table",
    "simulate_subjects",
    "simulate_dti",
    "prepare_offline",
    "load_dti",
    "info",
]

FEATURES = ("T1w", "FA", "MD", "AD", "RD")
CLASSES = ("thalamus", "genu of the corpus callosum", "subcortical white matter")
TEST_SUBJECT = "100206"
TRAIN_SUBJECTS = ("105620", "107725", "112314")
SUBJECTS = (TEST_SUBJECT,) + TRAIN_SUBJECTS
N_COLUMNS = 10
COLUMNS = ("sample", "row", "column", "slice") + FEATURES + ("label",)
FORMAT_HELP = (
    "expected 10 comma-separated numbers per line, no header: "
    "sample,row,column,slice,T1w,FA,MD,AD,RD,label with label 1, 2 or 3"
)

#: Voxels per subject and class (thalamus, CC genu, subcortical WM) of the simulation.
#: Totals 11662 / 4582 / 7455 (= 23699); the test subject holds 6145.
COUNTS = {
    "100206": (3024, 1188, 1933),
    "105620": (2950, 1152, 1801),
    "107725": (2801, 1097, 1878),
    "112314": (2887, 1145, 1843),
}

SOURCE_REAL = "real ISMRM 2018 CSVs"
SOURCE_OFFLINE = "offline simulation (dipy tensor fit, seed 0)"
SOURCE_OFFLINE_SECRET = "offline simulation (dipy tensor fit, seed 0; test subject drawn from the grader's secret)"

# ---------------------------------------------------------------------------------------
# Simulation model. Eigenvalues in um^2/ms; T1w in scanner units.
# ---------------------------------------------------------------------------------------
B_VALUE = 1000.0  # s/mm^2
N_B0 = 6
#: Compartment eigenvalues (l1, l2, l3), um^2/ms, and T1w; tuned so that the fitted class
#: means (after partial volume and noise) land near the lecture's example rows.
TISSUES = {
    "thalamus": ((1.43, 1.08, 0.90), 970.0),
    "cc": ((0.68, 0.11, 0.075), 1160.0),
    "wm": ((0.86, 0.40, 0.30), 930.0),
    "csf": ((3.0, 3.0, 3.0), 300.0),
    "cortex": ((0.90, 0.78, 0.72), 700.0),
    "ic": ((1.05, 0.35, 0.30), 950.0),
}
#: Main compartment of each class and its partial-volume partners with their max fraction.
CLASS_MIX = (
    ("thalamus", (("ic", 0.48), ("csf", 0.14))),
    ("cc", (("csf", 0.27), ("wm", 0.55))),
    ("wm", (("cortex", 0.48), ("cc", 0.34), ("csf", 0.11))),
)
#: Ellipsoids (centre row, column, slice; radii) on the 145 x 174 x 145 HCP 1.25 mm grid.
REGIONS = (
    (((88, 60, 70), (10, 7, 8)), ((88, 84, 70), (10, 7, 8))),  # thalami, left/right
    (((118, 72, 78), (7, 13, 7)),),  # genu of the CC, midline anterior
    (((120, 36, 62), (9, 7, 10)), ((120, 108, 62), (9, 7, 10))),  # inferior frontal WM, L/R
)
SIGMA_COMMON, SIGMA_EIG = 0.10, 0.06  # lognormal sigmas per unit of spread
SUBJECT_SD = 0.06  # subject-level scale of each tissue's diffusivities
SIM_DEFAULTS = {"spread": 2.0, "pv": 1.6, "snr": (20.0, 40.0)}


@dataclass
class DtiData:
    """DTI features and labels as tensors (raw, unnormalised features).

    Attributes:
        x_trainval: (N, 5) float32 [T1w, FA, MD, AD, RD], subjects 105620, 107725, 112314.
        y_trainval: (N,) int64 in 0..2 (file label - 1), indexes :data:`CLASSES`.
        x_test: (M, 5) float32, subject 100206.
        y_test: (M,) int64 in 0..2.
        subjects_trainval: (N,) numpy str array, the subject id of each trainval row.
        source: where the data came from.
    """

    x_trainval: torch.Tensor
    y_trainval: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    subjects_trainval: np.ndarray
    source: str


@dataclass
class SimulatedSubject:
    """One simulated subject, before rounding to CSV.

    Attributes:
        coords: (N, 3) int64 voxel (row, column, slice).
        features: (N, 5) float64 [T1w, FA, MD, AD, RD]; MD/AD/RD in um^2/ms.
        labels: (N,) int64 in 0..2.
        evals: (N, 3) float64 fitted eigenvalues l1 >= l2 >= l3, um^2/ms.
        snr: the subject's b0 SNR.
        fractions: (N,) float64 volume fraction of the class's own tissue (1 = pure voxel).
    """

    coords: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    evals: np.ndarray
    snr: float
    fractions: np.ndarray


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
def read_dti_csv(path: str | os.PathLike):
    """Read one ``sampledata<subject>.csv``.

    Args:
        path: CSV file, no header, 10 numeric columns
            ``sample,row,column,slice,T1w,FA,MD,AD,RD,label`` with label in {1, 2, 3}.

    Returns:
        ``(x, y)``: x (N, 5) float32 [T1w, FA, MD, AD, RD]; y (N,) int64 in 0..2.
        **Labels are shifted by one**: file label 1/2/3 -> 0/1/2.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file, line and expected format, if a line has the wrong
            number of columns, a non-numeric or non-finite value, or a label outside 1..3,
            or if the file has no rows.
    """
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            s = line.strip()
            if not s:
                continue
            parts = [p.strip() for p in s.split(",")]
            where = f"{path}, line {lineno}"
            if len(parts) != N_COLUMNS:
                raise ValueError(f"{where}: found {len(parts)} columns; {FORMAT_HELP}")
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"{where}: non-numeric value in {s[:80]!r}; {FORMAT_HELP}") from None
            if not all(np.isfinite(vals)):
                raise ValueError(f"{where}: NaN or infinite value in {s[:80]!r}; {FORMAT_HELP}")
            if vals[-1] not in (1.0, 2.0, 3.0):
                raise ValueError(f"{where}: label {parts[-1]!r} is not 1, 2 or 3; {FORMAT_HELP}")
            rows.append(vals)
    if not rows:
        raise ValueError(f"{path}: no data rows; {FORMAT_HELP}")
    a = np.asarray(rows, dtype=np.float64)
    return a[:, 4:9].astype(np.float32), a[:, 9].astype(np.int64) - 1


# ---------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------
def tensor_metrics(evals: np.ndarray):
    """FA, MD, AD, RD from eigenvalues.

    Args:
        evals: (..., 3) eigenvalues sorted l1 >= l2 >= l3 (any diffusivity unit).

    Returns:
        ``(fa, md, ad, rd)`` each (...,): FA = sqrt(1/2) * sqrt((l1-l2)^2 + (l2-l3)^2 +
        (l3-l1)^2) / sqrt(l1^2 + l2^2 + l3^2) (Basser & Pierpaoli 1996), MD = (l1+l2+l3)/3,
        AD = l1, RD = (l2+l3)/2, in the unit of ``evals``.
    """
    l1, l2, l3 = evals[..., 0], evals[..., 1], evals[..., 2]
    num = (l1 - l2) ** 2 + (l2 - l3) ** 2 + (l3 - l1) ** 2
    den = l1**2 + l2**2 + l3**2
    fa = np.sqrt(0.5 * num / np.maximum(den, 1e-30))
    return fa, (l1 + l2 + l3) / 3.0, l1.copy(), (l2 + l3) / 2.0


def dti_gradient_table():
    """6 b0 + 100 directions at b = 1000 s/mm^2 (dipy's bundled ``repulsion200``, one hemisphere).

    Returns:
        ``dipy.core.gradients.GradientTable`` with 106 rows.
    """
    from dipy.core.gradients import gradient_table
    from dipy.core.sphere import HemiSphere
    from dipy.data import get_sphere

    dirs = HemiSphere.from_sphere(get_sphere(name="repulsion200")).vertices
    bvecs = np.vstack([np.zeros((N_B0, 3)), dirs])
    bvals = np.concatenate([np.zeros(N_B0), np.full(len(dirs), B_VALUE)])
    return gradient_table(bvals, bvecs=bvecs)


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    # Uniform random rotations from unit quaternions, (n, 3, 3).
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def _region_coords(rng: np.random.Generator, label: int, n: int) -> np.ndarray:
    # n distinct voxels inside the class's ellipsoids, centres jittered per subject.
    pts = []
    for centre, radii in REGIONS[label]:
        c = np.asarray(centre) + rng.integers(-3, 4, size=3)
        r = np.asarray(radii)
        g = np.stack(np.meshgrid(*[np.arange(-ri, ri + 1) for ri in r], indexing="ij"), -1).reshape(-1, 3)
        g = g[((g / r) ** 2).sum(1) <= 1.0]
        pts.append(g + c)
    pts = np.concatenate(pts)
    if len(pts) < n:  # pragma: no cover - regions are sized for COUNTS
        raise RuntimeError(f"region of class {label} has {len(pts)} voxels < {n}")
    sel = pts[rng.choice(len(pts), size=n, replace=False)]
    return sel[np.lexsort((sel[:, 1], sel[:, 0], sel[:, 2]))]  # mask order: slice, row, column


def _simulate_subject(rng, counts, gtab, spread, pv, snr_range, voxel_rng=None) -> SimulatedSubject:
    # voxel_rng: if given, every draw after the subject-level ones (SNR, T1w gain, tissue scales,
    # which stay rng's) comes from it: the same subject, other voxels.
    bvecs, bvals = gtab.bvecs, gtab.bvals
    snr = float(rng.uniform(*snr_range))
    t1_gain = rng.normal(1.0, 0.05)
    names = list(TISSUES)
    # Subject-level scale of each tissue's diffusivities, N(1, SUBJECT_SD).
    subj_scale = dict(zip(names, rng.normal(1.0, SUBJECT_SD, size=len(names))))
    if voxel_rng is not None:
        rng = voxel_rng
    coords, labels, signals, t1w, fracs = [], [], [], [], []
    for label, ((main, partners), n) in enumerate(zip(CLASS_MIX, counts)):
        comps = [main] + [p for p, _ in partners]
        # Partial-volume fractions: fmax * pv * Beta(0.7, 2.5) per partner; mostly pure voxels.
        f = np.stack([fm * pv * rng.beta(0.7, 2.5, size=n) for _, fm in partners], 1)
        tot = f.sum(1, keepdims=True)
        f = np.where(tot > 0.9, f * 0.9 / np.maximum(tot, 1e-12), f)
        f = np.concatenate([1.0 - f.sum(1, keepdims=True), f], 1)  # (n, K)
        s0 = rng.normal(1000.0, 30.0, size=n)
        sig = np.zeros((n, len(bvals)))
        t1 = np.zeros(n)
        for k, comp in enumerate(comps):
            base, t1k = TISSUES[comp]
            # Lognormal variability: a common factor plus one per eigenvalue, scaled by spread.
            common = rng.standard_normal((n, 1)) * SIGMA_COMMON * spread
            indep = rng.standard_normal((n, 3)) * SIGMA_EIG * spread
            lam = np.asarray(base) * subj_scale[comp] * np.exp(common + indep) * 1e-3  # mm^2/s
            R = _random_rotations(rng, n)
            D = np.einsum("nij,nj,nkj->nik", R, lam, R)
            adc = np.einsum("mi,nij,mj->nm", bvecs, D, bvecs)  # g^T D g
            sig += f[:, k : k + 1] * np.exp(-bvals[None, :] * adc)
            t1 += f[:, k] * t1k
        sig *= s0[:, None]
        sigma = 1000.0 / snr  # Rician noise: magnitude of complex Gaussian noise
        sig = np.hypot(sig + rng.normal(0, sigma, sig.shape), rng.normal(0, sigma, sig.shape))
        t1 = t1 * t1_gain * rng.normal(1.0, 0.035, size=n) + rng.normal(0.0, 15.0, size=n)
        coords.append(_region_coords(rng, label, n))
        labels.append(np.full(n, label, dtype=np.int64))
        signals.append(sig)
        t1w.append(t1)
        fracs.append(f[:, 0])
    from dipy.reconst.dti import TensorModel

    evals = TensorModel(gtab, fit_method="WLS").fit(np.concatenate(signals)).evals * 1e3  # um^2/ms
    evals = np.clip(evals, 1e-6, None)  # guard: noise can give l3 <= 0
    fa, md, ad, rd = tensor_metrics(evals)
    feats = np.stack([np.concatenate(t1w), fa, md, ad, rd], 1)
    return SimulatedSubject(
        coords=np.concatenate(coords).astype(np.int64),
        features=feats,
        labels=np.concatenate(labels),
        evals=evals,
        snr=snr,
        fractions=np.concatenate(fracs),
    )


def simulate_subjects(seed: int = 0, spread: float = 2.0, pv: float = 1.6,
                      snr: tuple[float, float] = (20.0, 40.0), progress: bool = False,
                      test_seed: int | None = None) -> dict:
    """Simulate all 4 subjects in memory (see :func:`simulate_dti` for the model).

    Args:
        seed: base seed; subject i uses ``np.random.default_rng(SeedSequence(seed).spawn(4)[i])``.
        test_seed: if not None, the test subject (:data:`TEST_SUBJECT`) keeps its subject-level
            draws (SNR, T1w gain, tissue scales: what sets the difficulty the grader's thresholds
            were calibrated on) and draws every voxel (positions, partial volume, tensors, noise)
            from ``np.random.default_rng(SeedSequence(test_seed))`` instead: the grader's secret
            test subject. The training subjects are unchanged.
        spread: within-class variability factor (lognormal sigma 0.10*spread common,
            0.06*spread per eigenvalue).
        pv: partial-volume factor (partner fraction = fmax * pv * Beta(0.7, 2.5)).
        snr: range of the per-subject b0 SNR, drawn uniformly.
        progress: show a tqdm bar over subjects.

    Returns:
        ``{subject_id: SimulatedSubject}`` in the order of :data:`SUBJECTS`.
    """
    gtab = dti_gradient_table()
    children = np.random.SeedSequence(seed).spawn(len(SUBJECTS))
    it = list(zip(SUBJECTS, children))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="simulate DTI", unit="subject")
    secret_voxels = None if test_seed is None else np.random.default_rng(np.random.SeedSequence(int(test_seed)))
    return {
        sid: _simulate_subject(np.random.default_rng(ss), COUNTS[sid], gtab, spread, pv, tuple(snr),
                               voxel_rng=secret_voxels if sid == TEST_SUBJECT else None)
        for sid, ss in it
    }


def _csv_text(sub: SimulatedSubject) -> str:
    n = len(sub.labels)
    buf = io.StringIO()
    for i in range(n):
        r, c, s = sub.coords[i]
        t1, fa, md, ad, rd = sub.features[i]
        buf.write(f"{i + 1},{r},{c},{s},{t1:.2f},{fa:.7g},{md:.7g},{ad:.7g},{rd:.7g},{sub.labels[i] + 1}\n")
    return buf.getvalue()


def simulate_dti(out_dir: str | os.PathLike, seed: int = 0, spread: float = 2.0, pv: float = 1.6,
                 progress: bool = False, test_seed: int | None = None) -> list[Path]:
    """Write simulated ``sampledata<subject>.csv`` files (real format, labels 1..3) to ``out_dir``.

    Model, per voxel (numpy + dipy):
        1. Tissue tensor: class eigenvalues (um^2/ms, :data:`TISSUES`) x subject scale
           N(1, 0.06) x lognormal variability (common + per-eigenvalue factors, x ``spread``),
           random 3-D orientation.
        2. Partial volume at the signal level with neighbouring compartments
           (thalamus: internal capsule, CSF; CC genu: CSF, subcortical WM; subcortical WM:
           cortex, CC-like WM, CSF); fractions fmax * ``pv`` * Beta(0.7, 2.5).
        3. S = S0 * sum_k f_k exp(-b g^T D_k g) (Stejskal-Tanner), S0 ~ N(1000, 3 %),
           b = 1000 s/mm^2, 6 b0 + 100 directions (:func:`dti_gradient_table`).
        4. Rician noise, SNR per subject ~ U(20, 40).
        5. ``dipy.reconst.dti.TensorModel`` (WLS) fit; FA, MD = (l1+l2+l3)/3, AD = l1,
           RD = (l2+l3)/2, x1e3 from mm^2/s to um^2/ms.
        6. T1w = sum_k f_k T1_k x subject gain N(1, 0.05) x N(1, 0.035) + N(0, 15).
    Counts per subject and class are :data:`COUNTS`; rows are ordered by label, then slice,
    row, column, like a mask extraction. Deterministic for a given seed (about 2 s).
    ``test_seed``: see :func:`simulate_subjects`.

    Returns:
        The 4 written paths (atomic writes), in the order of :data:`SUBJECTS`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subs = simulate_subjects(seed=seed, spread=spread, pv=pv, progress=progress, test_seed=test_seed)
    return [atomic_write_text(out / f"sampledata{sid}.csv", _csv_text(sub)) for sid, sub in subs.items()]


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def _real_dir(root) -> Path:
    return Path(root) if root is not None else DATA_DIR / "dti"


def _files(folder: Path) -> list[Path]:
    return [folder / f"sampledata{sid}.csv" for sid in SUBJECTS]


def real_available(root: str | os.PathLike | None = None) -> bool:
    """True if ``<root>`` (default ``data/dti``) has all 4 ``sampledata<subject>.csv`` files."""
    return all(p.is_file() for p in _files(_real_dir(root)))


def offline_params(seed: int = 0, secret: str | None = None) -> dict:
    """Parameters recorded in the offline cache manifest (a change forces a rebuild).

    ``secret``: the tag of the grader's data secret (:func:`data.secret.secret_tag`) whose test
    subject the cache holds, recorded as ``"secret"``; None (public default): no such key.
    """
    params = {"dataset": "dti_sim", "version": 1, "seed": seed, **SIM_DEFAULTS,
              "sigmas": (SIGMA_COMMON, SIGMA_EIG, SUBJECT_SD), "counts": COUNTS, "tissues": TISSUES,
              "mix": CLASS_MIX, "regions": REGIONS}
    if secret is not None:
        params.update(secret=secret, secret_draws="test subject's voxels")
    return params


def offline_cache_folder() -> Path:
    """Folder of the simulated CSVs: ``<cache_dir()>/dti``; ``<cache_dir()>/dti-secret-<tag>`` where the
    grader's data secret is set (:mod:`data.secret`)."""
    tag = secret_tag()
    return cache_dir() / ("dti" if tag is None else f"dti-secret-{tag}")


def prepare_offline(seed: int = 0, force: bool = False, progress: bool = True) -> Path:
    """Simulate the CSVs into :func:`offline_cache_folder` unless a valid cache exists.

    Where the grader's data secret is set (:mod:`data.secret`), the test subject's voxels are drawn
    from a 128-bit seed derived from it (:func:`simulate_subjects`' ``test_seed``; its SNR and
    tissue scales stay, so the difficulty is the calibrated one); the training subjects are the
    public ones.

    Returns:
        The cache folder (4 CSVs + ``manifest.json``).
    """
    folder = offline_cache_folder()
    tag = secret_tag()
    params = offline_params(seed, secret=tag)
    if force or not manifest_ok(folder, params):
        test_seed = None if tag is None else derived_seed("dti-test-subject", bits=128)
        files = simulate_dti(folder, seed=seed, spread=SIM_DEFAULTS["spread"], pv=SIM_DEFAULTS["pv"],
                             progress=progress, test_seed=test_seed)
        write_manifest(folder, params, files)
    return folder


def _load_folder(folder: Path, source: str) -> DtiData:
    import torch

    parts = {sid: read_dti_csv(p) for sid, p in zip(SUBJECTS, _files(folder))}
    x_tv = np.concatenate([parts[s][0] for s in TRAIN_SUBJECTS])
    y_tv = np.concatenate([parts[s][1] for s in TRAIN_SUBJECTS])
    subj = np.concatenate([np.full(len(parts[s][1]), s) for s in TRAIN_SUBJECTS])
    x_te, y_te = parts[TEST_SUBJECT]
    return DtiData(
        x_trainval=torch.from_numpy(x_tv),
        y_trainval=torch.from_numpy(y_tv),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te),
        subjects_trainval=subj,
        source=source,
    )


def load_dti(source: str = "auto", root: str | os.PathLike | None = None) -> DtiData:
    """Load the DTI features (raw, unnormalised) and labels 0..2.

    Args:
        source: ``"real"`` (``<root>/sampledata{100206,105620,107725,112314}.csv``),
            ``"offline"`` (simulated CSVs in :func:`offline_cache_folder`, generated on first use;
            the test subject drawn from the grader's data secret where one is set) or
            ``"auto"`` (real if all 4 files exist, else offline).
        root: folder of the real CSVs (default ``data/dti``).

    Returns:
        :class:`DtiData`: x (N, 5) float32 [T1w, FA, MD, AD, RD] (MD/AD/RD in um^2/ms),
        y (N,) int64 in 0..2 (**file label - 1**); trainval = subjects 105620, 107725,
        112314 concatenated in that order; test = subject 100206.

    Raises:
        FileNotFoundError: ``source="real"`` and files are missing (names folder and files).
        ValueError: unknown source, or a malformed CSV (see :func:`read_dti_csv`).
    """
    folder = _real_dir(root)
    if source == "auto":
        source = "real" if real_available(folder) else "offline"
    if source == "real":
        missing = [p.name for p in _files(folder) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"real DTI data not found in {folder}: missing {', '.join(missing)}. Copy the 4 ISMRM "
                f'CSV files there, or use load_dti("offline").'
            )
        return _load_folder(folder, f"{SOURCE_REAL} ({folder})")
    if source == "offline":
        folder = prepare_offline(progress=False)
        return _load_folder(folder, SOURCE_OFFLINE if secret_tag() is None else SOURCE_OFFLINE_SECRET)
    raise ValueError(f'unknown DTI source {source!r}; expected "auto", "real" or "offline"')


def info(root: str | os.PathLike | None = None) -> dict:
    """Summary for ``python -m data info`` (does not build anything)."""
    folder = offline_cache_folder()
    real = real_available(root)
    test_n = sum(COUNTS[TEST_SUBJECT])
    total = sum(sum(c) for c in COUNTS.values())
    return {
        "source": f"{SOURCE_REAL} ({_real_dir(root)})" if real else SOURCE_OFFLINE,
        "counts": ({"trainval": "from files", "test": "from files"} if real
                   else {"trainval": total - test_n, "test": test_n,
                         "per class": dict(zip(CLASSES, np.sum(list(COUNTS.values()), 0).tolist()))}),
        "shapes": {"x": "(N, 5) float32 [T1w, FA, MD, AD, RD]", "y": "(N,) int64 in 0..2"},
        "cache": str(folder),
        "cache_bytes": folder_size(folder),
        "cache_valid": manifest_ok(folder, offline_params(secret=secret_tag())),
    }
