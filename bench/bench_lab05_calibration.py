"""Lab 5 calibration study: which simulator settings make fc overfit, gap1 underfit and gap4 generalise.

One *trial* = one simulator setting, one seed: simulate `pairs` (reference, PI-CS) pairs at
`size` px with `data.mrsim.simulate_pair_raw` and the given knobs, scale and quantise them to
uint8 as the lab's PNG set is, split them 2/3 - 1/3 by pair (pairs 0..round(2n/3)-1 train, as
`data.recon` does; the pair order is already a random permutation of template slices), and
train the three models of ``solutions/lab05_cnn.py`` with that file's own ``build_cnn`` and
``train`` (Adam lr 1e-3, batch 10, 30 epochs by default; torch seed and shuffling seed = the
trial seed). Per model it records the final and best training / validation accuracy, the epoch
of the lowest validation loss, how far the validation loss rose after it, and ``diagnose_fit``.

    # one trial (knobs as key=value; tuples as lo,hi)
    python bench/bench_lab05_calibration.py run --name snr40-120 --set snr_range=40,120
    # a worker that takes trials from a queue file, one line each: "name key=value ..."
    python bench/bench_lab05_calibration.py queue bench/results/lab05_calibration_queue.txt --worker A
    # the lab's own prepared set (python -m data prepare recon), split and initialisation by seed
    python bench/bench_lab05_calibration.py fullset --name v3-320-s1 --seed 1
    # regenerate the table in bench/results/lab05_calibration.md from the results file
    python bench/bench_lab05_calibration.py report
    # how well one number per image (sharpness along PE, background, ...) separates the classes
    python bench/bench_lab05_calibration.py tells
    # an example pair (lecture naming ref.NNNN / tgv.NNNN) of two settings side by side
    python bench/bench_lab05_calibration.py example --index 70 --size 160 --pairs 96 \\
        --setting today "" --setting combo-A "snr_range=40,120 lam_sigma=0.35 ..."

Knobs (simulator: keyword arguments of `data.mrsim.simulate_pair_raw`; their defaults are
today's dataset bit for bit): snr_range, lam_range, lam_noise_floor, lam_sigma,
lam_sigma_spread, n_coils, coil_radius, n_center, mask_pattern, contrast_gamma, ref_combine,
head_shift_mm, head_zoom, acq_fraction, pe_fraction, n_iter (TGV iterations), tgv_step_ratio.
Driver knobs: ``norm`` = "pair" (today: both images divided by the reference's 99.5th
percentile) or "image" (each image by its own 99.5th percentile, as a per-series display
scaling / per-image normalisation does); ``gain`` = g: each image additionally multiplied by
a factor log-uniform in [1/(1+g), 1+g] before clipping (scanner/series scaling differences).
Trial keys: size (160), pairs (96), seed (0), epochs (30).

Results: one JSON line per trial in bench/results/lab05_calibration.jsonl; the table between
the markers in bench/results/lab05_calibration.md is rewritten (atomically, under a file
lock) after every trial. Simulated sets are cached as uint8 npz under $LAB05_CALIB_CACHE
(default /tmp/lab05_calibration), never in data/cache; the queue's claims and the file lock
live there too. Stops (exit 3) as soon as /tmp/stop_heavy exists or the UTC time passes
--deadline HH:MM (default: no deadline). One thread (torch.set_num_threads(1), OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
JSONL = RESULTS / "lab05_calibration.jsonl"
REPORT = RESULTS / "lab05_calibration.md"
CACHE = Path(os.environ.get("LAB05_CALIB_CACHE", "/tmp/lab05_calibration"))
LOCK = CACHE / "results.lock"  # shared by the workers of one machine
STOP_FILE = Path("/tmp/stop_heavy")
BEGIN, END = "<!-- trials:begin -->", "<!-- trials:end -->"
SIM_KNOBS = ("snr_range", "lam_range", "lam_noise_floor", "lam_sigma", "lam_sigma_spread", "n_coils",
             "coil_radius", "n_center", "mask_pattern", "contrast_gamma", "ref_combine", "head_shift_mm",
             "head_zoom", "acq_fraction", "pe_fraction", "n_iter",
             "tgv_step_ratio")
DRIVER_KNOBS = ("norm", "gain")
TRIAL_KEYS = {"size": 160, "pairs": 96, "seed": 0, "epochs": 30}
VARIANTS = ("fc", "gap1", "gap4")
LOSS_RISE_ABS, LOSS_RISE_REL = 0.05, 0.10  # the rule of solutions.lab05_cnn.diagnose_fit


# ---------------------------------------------------------------- settings

def parse_value(text: str):
    """'40,120' -> (40.0, 120.0); '8' -> 8; '0.35' -> 0.35; 'none' -> None; else the string."""
    if text.lower() == "none":
        return None
    if "," in text:
        return tuple(float(t) for t in text.split(","))
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_settings(items: list[str]) -> tuple[dict, dict]:
    """['key=value', ...] -> (knobs, trial keys); unknown keys raise ValueError."""
    knobs, trial = {}, dict(TRIAL_KEYS)
    for item in items:
        key, _, value = item.partition("=")
        if not _:
            raise ValueError(f"expected key=value, got {item!r}")
        if key in TRIAL_KEYS:
            trial[key] = int(value)
        elif key in SIM_KNOBS or key in DRIVER_KNOBS:
            knobs[key] = parse_value(value)
        else:
            raise ValueError(f"unknown knob {key!r}: choose from {SIM_KNOBS + DRIVER_KNOBS + tuple(TRIAL_KEYS)}")
    return knobs, trial


def knob_text(knobs: dict) -> str:
    """Compact 'key=value' text of the non-default knobs ('default' when there are none)."""
    if not knobs:
        return "default"
    parts = []
    for k in sorted(knobs):
        v = knobs[k]
        parts.append(f"{k}={','.join(f'{x:g}' for x in v)}" if isinstance(v, (tuple, list)) else f"{k}={v}")
    return " ".join(parts)


# ---------------------------------------------------------------- stop conditions

def stop_reason(deadline: str | None) -> str | None:
    """Why no trial may run now: /tmp/stop_heavy exists or the UTC time is past `deadline`."""
    if STOP_FILE.exists():
        return f"{STOP_FILE} exists"
    if deadline:
        hh, mm = (int(x) for x in deadline.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        if (now.hour, now.minute) >= (hh, mm):
            return f"UTC time {now:%H:%M} is past the deadline {deadline}"
    return None


def start_watchdog(deadline: str | None, period_s: float = 10.0) -> None:
    """Kill this process (exit 3) as soon as a stop condition holds, even in mid-trial."""
    def watch() -> None:
        while True:
            reason = stop_reason(deadline)
            if reason:
                print(f"\nstopping: {reason}", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(period_s)

    threading.Thread(target=watch, daemon=True).start()


# ---------------------------------------------------------------- simulation

def _scale_pair(ref: np.ndarray, acc: np.ndarray, norm: str, gain: float, rng: np.random.Generator):
    if norm == "pair":
        s = float(np.percentile(ref, 99.5))
        ref, acc = ref / s, acc / s
    elif norm == "image":
        ref, acc = ref / float(np.percentile(ref, 99.5)), acc / float(np.percentile(acc, 99.5))
    else:
        raise ValueError(f"norm must be 'pair' or 'image', got {norm!r}")
    if gain:
        lo, hi = -math.log(1.0 + gain), math.log(1.0 + gain)
        ref, acc = ref * math.exp(rng.uniform(lo, hi)), acc * math.exp(rng.uniform(lo, hi))
    return ref, acc


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def simulate_pair(index: int, size: int, seed: int, knobs: dict):
    """(ref uint8, tgv uint8, meta) of pair `index` under `knobs` (see the module docstring)."""
    from data import mrsim

    sim = {k: v for k, v in knobs.items() if k in SIM_KNOBS}
    ref, acc, meta = mrsim.simulate_pair_raw(index, size, seed, **sim)
    rng = np.random.default_rng([int(seed) + int(index), 4242])
    ref, acc = _scale_pair(ref, acc, knobs.get("norm", "pair"), float(knobs.get("gain", 0.0) or 0.0), rng)
    return _to_uint8(ref), _to_uint8(acc), meta


def image_stats(ref: np.ndarray, acc: np.ndarray) -> dict:
    """Texture statistics of one uint8 pair: where the tells are.

    hf_ratio: std of the discrete Laplacian of the PI-CS image / of the reference, inside the
    head (noise + fine detail); bg_ref, bg_tgv: mean grey level (0-255) of the background
    (the four corner squares of side N/8, outside the head in every slice)."""
    from scipy import ndimage as ndi

    r, a = ref.astype(np.float32), acc.astype(np.float32)
    n = r.shape[0]
    c = max(2, n // 8)
    bg = np.zeros_like(r, dtype=bool)
    bg[:c, :c] = bg[:c, -c:] = bg[-c:, :c] = bg[-c:, -c:] = True
    head = ndi.gaussian_filter(r, 2.0) > 0.15 * 255
    lr, la = ndi.laplace(r), ndi.laplace(a)
    return {"hf_ratio": float(la[head].std() / max(lr[head].std(), 1e-6)),
            "bg_ref": float(r[bg].mean()), "bg_tgv": float(a[bg].mean())}


def simulate_set(knobs: dict, size: int, pairs: int, seed: int, progress: bool = True):
    """(images (pairs, 2, size, size) uint8, per-pair meta list); cached as npz + json."""
    from tqdm import tqdm

    key = json.dumps({"knobs": {k: knobs[k] for k in sorted(knobs)}, "size": size, "pairs": pairs,
                      "seed": seed, "v": 2}, sort_keys=True, default=list)
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    npz, meta_path = CACHE / f"{tag}.npz", CACHE / f"{tag}.json"
    if npz.is_file() and meta_path.is_file():
        with np.load(npz) as z:
            return z["images"], json.loads(meta_path.read_text())["meta"]
    CACHE.mkdir(parents=True, exist_ok=True)
    imgs = np.zeros((pairs, 2, size, size), np.uint8)
    metas = []
    for i in tqdm(range(pairs), desc=f"simulate {size}px", unit="pair", disable=not progress, mininterval=5):
        ref, acc, meta = simulate_pair(i, size, seed, knobs)
        imgs[i, 0], imgs[i, 1] = ref, acc
        m = {k: meta[k] for k in ("orientation", "snr", "lam", "noise_sigma") if k in meta}
        m["lam_over_sigma"] = meta["lam"] / meta["noise_sigma"]
        m["net_R"] = float(len(meta["mask"]) / meta["mask"].sum())
        m.update(image_stats(ref, acc))
        metas.append(m)
    tmp = npz.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, images=imgs)
    os.replace(tmp, npz)
    tmpj = meta_path.with_suffix(f".tmp{os.getpid()}")
    tmpj.write_text(json.dumps({"key": json.loads(key), "meta": metas}))
    os.replace(tmpj, meta_path)
    return imgs, metas


# ---------------------------------------------------------------- training

def split(imgs: np.ndarray):
    """uint8 (n, 2, H, W) -> torch x_train, y_train, x_val, y_val (pairs 0..round(2n/3)-1 train)."""
    import torch

    n = len(imgs)
    nt = int(round(2.0 * n / 3.0))
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0)
    y = torch.tensor([0.0, 1.0]).repeat(n, 1)
    xt, yt = x[:nt].reshape(-1, 1, *x.shape[-2:]).contiguous(), y[:nt].reshape(-1).contiguous()
    xv, yv = x[nt:].reshape(-1, 1, *x.shape[-2:]).contiguous(), y[nt:].reshape(-1).contiguous()
    return xt, yt, xv, yv


def summarise(h: dict) -> dict:
    """Final/best accuracies, epoch of the lowest validation loss and the rise after it."""
    vl = np.asarray(h["val_loss"], dtype=float)
    best = int(np.argmin(vl))
    rise = float(vl[-1] - vl[best])
    return {
        "train_acc": h["train_acc"][-1], "val_acc": h["val_acc"][-1],
        "best_train_acc": max(h["train_acc"]), "best_val_acc": max(h["val_acc"]),
        "min_val_loss_epoch": best + 1, "min_val_loss": float(vl[best]), "final_val_loss": float(vl[-1]),
        "val_loss_rise": rise,
        "val_loss_rises": bool(rise >= LOSS_RISE_ABS and rise >= LOSS_RISE_REL * vl[best]),
    }


def train_models(imgs: np.ndarray, seed: int, epochs: int, progress: bool = True) -> dict:
    import torch
    from tqdm import tqdm

    import solutions.lab05_cnn as lab

    torch.set_num_threads(1)
    xt, yt, xv, yv = split(imgs)
    size = int(xt.shape[-1])
    out = {}
    for variant in VARIANTS:
        torch.manual_seed(seed)
        model = lab.build_cnn(variant, image_size=size)
        bar = tqdm(total=epochs * -(-len(yt) // 10), desc=f"train {variant}", unit="batch",
                   disable=not progress, mininterval=5)

        def tick(module, inputs, output, bar=bar) -> None:
            if module.training:
                bar.update(1)

        hook = model.register_forward_hook(tick)
        start = time.perf_counter()
        h = lab.train(model, xt, yt, xv, yv, epochs=epochs, lr=1e-3, batch_size=10, device="cpu", seed=seed)
        hook.remove()
        bar.close()
        s = summarise(h)
        s.update(parameters=lab.count_parameters(model), diagnose=lab.diagnose_fit(h),
                 time_s=round(time.perf_counter() - start, 1), history=h)
        out[variant] = s
    return out


def targets(models: dict) -> dict:
    """The issue's targets on one trial (final-epoch numbers)."""
    fc, g1, g4 = models["fc"], models["gap1"], models["gap4"]
    return {
        "fc": bool(fc["train_acc"] >= 0.95 and fc["train_acc"] - fc["val_acc"] >= 0.10 and fc["val_loss_rises"]),
        "gap1": bool(g1["train_acc"] <= 0.75 and g1["val_acc"] <= 0.75),
        "gap4": bool(g4["val_acc"] >= 0.85 and g4["val_acc"] - fc["val_acc"] >= 0.05),
    }


# ---------------------------------------------------------------- results file + report

@contextlib.contextmanager
def locked():
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_results() -> list[dict]:
    if not JSONL.is_file():
        return []
    return [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]


def table(rows: list[dict]) -> str:
    head = ("| # | name | knobs | px/pairs/seed | median SNR, lam/sigma | hf ratio tgv/ref, bg ref/tgv | "
            "fc train/val (rise) | gap1 train/val | gap4 train/val (rise) | targets fc/gap1/gap4 | min |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for i, r in enumerate(rows, 1):
        m = r["models"]

        def tv(v: str) -> str:
            s = m[v]
            rise = f" ({'+' if s['val_loss_rises'] else ''}{s['val_loss_rise']:.2f}@{s['min_val_loss_epoch']})"
            return f"{s['train_acc']:.3f} / {s['val_acc']:.3f}" + (rise if v != "gap1" else "")

        st = r["stats"]
        t = r["targets"]
        mark = "/".join("✓" if t[v] else "✗" for v in VARIANTS)
        lines.append(
            f"| {i} | {r['name']} | {knob_text(r['knobs'])} | {r['size']}/{r['pairs']}/{r['seed']} | "
            f"{st['snr_median']:.0f}, {st['lam_over_sigma_median']:.2f} | "
            f"{st['hf_ratio_median']:.2f}, {st['bg_ref_median']:.1f}/{st['bg_tgv_median']:.1f} | "
            f"{tv('fc')} | {tv('gap1')} | {tv('gap4')} | {mark} | {r['time_s'] / 60:.1f} |")
    note = ("\nColumns: final-epoch accuracies (training / validation); (rise@e): validation loss at the end "
            "minus its minimum, reached at epoch e; a leading + marks a rise by >= 0.05 and >= 10 % "
            "(diagnose_fit's rule). hf ratio: median over pairs of std(Laplacian) of the PI-CS image / of the "
            "reference inside the head (1 = same noise/fine texture, < 1 = PI-CS smoother); bg: median "
            "background grey level (0-255) of reference / PI-CS. targets: the issue's per-model targets on this "
            "one seed. min: wall minutes of the trial (simulation + training of the three models, one thread, "
            "two trials sharing the 2-core machine).\n")
    return head + "\n".join(lines) + "\n" + note


def write_report(rows: list[dict]) -> None:
    from data.cache import atomic_write_text

    block = f"{BEGIN}\n{table(rows)}{END}"
    if REPORT.is_file():
        text = REPORT.read_text()
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = "# Lab 5 calibration study\n\n## Trials\n\n" + block + "\n"
    atomic_write_text(REPORT, text)


def record(result: dict) -> None:
    with locked():
        with open(JSONL, "a") as fh:
            fh.write(json.dumps(result) + "\n")
        write_report(load_results())


# ---------------------------------------------------------------- one trial

def print_result(result: dict) -> None:
    """Per model: final and best accuracies, the validation loss's minimum and rise, the verdict."""
    for v in VARIANTS:
        s = result["models"][v]
        print(f"  {v:5s} train {s['train_acc']:.3f} val {s['val_acc']:.3f} best val {s['best_val_acc']:.3f} "
              f"min val loss @{s['min_val_loss_epoch']} rise {s['val_loss_rise']:+.3f} -> {s['diagnose']}", flush=True)
    print(f"  targets {result['targets']}, {result['time_s'] / 60:.1f} min", flush=True)


def run_trial(name: str, knobs: dict, trial: dict, progress: bool = True) -> dict:
    start = time.perf_counter()
    size, pairs, seed, epochs = trial["size"], trial["pairs"], trial["seed"], trial["epochs"]
    print(f"trial {name}: {knob_text(knobs)}, {pairs} pairs at {size}px, seed {seed}, {epochs} epochs", flush=True)
    imgs, metas = simulate_set(knobs, size, pairs, seed, progress)
    t_sim = time.perf_counter() - start
    models = train_models(imgs, seed, epochs, progress)
    med = {f"{k}_median": float(np.nanmedian([m[k] for m in metas]))
           for k in ("snr", "lam_over_sigma", "hf_ratio", "bg_ref", "bg_tgv", "net_R")}
    result = {"name": name, "knobs": knobs, **trial, "stats": med, "models": models,
              "targets": targets(models), "time_s": time.perf_counter() - start, "sim_s": t_sim,
              "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    print_result(result)
    return result


def fullset_trial(name: str, seed: int, epochs: int, progress: bool = True) -> dict:
    """The three models on the lab's own prepared set (`python -m data prepare recon`: 260 pairs at
    320 px of the current SIM_VERSION), with the pairs' 2/3 - 1/3 split drawn by ``seed`` (seed 0:
    the set's own split) and the torch / shuffling seed = ``seed``: the issue's "3 seeds (split
    and initialisation)" without simulating the set again."""
    import torch

    from data import recon

    start = time.perf_counter()
    data = recon.load_recon(source="offline")
    x = torch.cat([data.x_train, data.x_val])[:, 0]
    y = torch.cat([data.y_train, data.y_val])
    pid = torch.cat([data.pair_train, data.pair_val])
    ids = sorted(set(pid.tolist()))
    imgs = np.zeros((len(ids), 2) + tuple(x.shape[-2:]), np.uint8)
    for i, p in enumerate(ids):
        for label in (0, 1):
            (j,) = torch.nonzero((pid == p) & (y == label)).flatten().tolist()
            imgs[i, label] = np.round(x[j].numpy() * 255.0).astype(np.uint8)
    if seed:
        imgs = imgs[np.random.default_rng(seed).permutation(len(imgs))]
    print(f"fullset {name}: {data}, split and initialisation seed {seed}, {epochs} epochs", flush=True)
    models = train_models(imgs, seed, epochs, progress)
    stats = [image_stats(a, b) for a, b in imgs]
    med = {"snr_median": float("nan"), "lam_over_sigma_median": float("nan"), "net_R_median": float("nan"),
           **{f"{k}_median": float(np.median([s[k] for s in stats])) for k in ("hf_ratio", "bg_ref", "bg_tgv")}}
    knobs = {**recon.SIM_KNOBS, "norm": "image", "sim_version": recon.SIM_VERSION}
    result = {"name": name, "knobs": knobs, "size": int(imgs.shape[-1]), "pairs": len(imgs), "seed": seed,
              "epochs": epochs, "stats": med, "models": models, "targets": targets(models),
              "time_s": time.perf_counter() - start, "sim_s": 0.0, "source": "prepared PNG set",
              "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    print_result(result)
    return result


# ---------------------------------------------------------------- queue

def parse_queue_line(line: str) -> tuple[str, dict, dict] | None:
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    name, *items = line.split()
    knobs, trial = parse_settings(items)
    return name, knobs, trial


def claim_next(queue: Path, worker: str) -> tuple[str, dict, dict] | None:
    claims = CACHE / f"{queue.name}.claims"  # names taken by a worker (delete to retry killed trials)
    with locked():
        taken = set(claims.read_text().split()) if claims.is_file() else set()
        done = {r["name"] for r in load_results()}
        for line in queue.read_text().splitlines():
            parsed = parse_queue_line(line)
            if parsed and parsed[0] not in taken and parsed[0] not in done:
                with open(claims, "a") as fh:
                    fh.write(f"{parsed[0]}\n")
                return parsed
    return None


def run_queue(queue: Path, worker: str, deadline: str | None, progress: bool) -> int:
    start_watchdog(deadline)
    while True:
        reason = stop_reason(deadline)
        if reason:
            print(f"worker {worker}: not starting another trial: {reason}", flush=True)
            return 3
        job = claim_next(queue, worker)
        if job is None:
            print(f"worker {worker}: queue empty", flush=True)
            return 0
        name, knobs, trial = job
        result = run_trial(name, knobs, trial, progress)
        result["worker"] = worker
        record(result)


# ---------------------------------------------------------------- example figure

def example(index: int, size: int, settings: list[tuple[str, list[str]]], path: Path, pairs: int | None = None,
            window: int = 16) -> None:
    """Rows = settings; columns: ref.NNNN, tgv.NNNN (lecture naming), both again with the display
    window 0..`window` grey levels (what the background holds), and zooms of the centre.
    `pairs`: take pair `index` of the (cached) simulated set of that many pairs (`simulate_set`)
    instead of simulating the pair alone. All settings share the anatomy of pair `index` (the
    knobs draw from a second random stream)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(settings), 6, figsize=(19, 3.6 * len(settings)), squeeze=False)
    for row, (label, items) in enumerate(settings):
        knobs, trial = parse_settings(items)
        if pairs:
            imgs, metas = simulate_set(knobs, size, pairs, trial["seed"], progress=False)
            ref, acc, m = imgs[index, 0], imgs[index, 1], metas[index]
            info = f"SNR {m['snr']:.0f}, lambda/sigma {m['lam_over_sigma']:.2f}"
        else:
            ref, acc, meta = simulate_pair(index, size, trial["seed"], knobs)
            info = f"SNR {meta['snr']:.0f}, lambda/sigma {meta['lam'] / meta['noise_sigma']:.2f}"
        c = slice(size * 3 // 8, size * 5 // 8)
        panels = ((ref, f"ref.{index:04d}", 255), (acc, f"tgv.{index:04d}", 255),
                  (ref, f"ref.{index:04d}, window 0-{window}", window), (acc, f"tgv.{index:04d}, window 0-{window}", window),
                  (ref[c, c], f"ref.{index:04d} (zoom)", 255), (acc[c, c], f"tgv.{index:04d} (zoom)", 255))
        for col, (img, title, vmax) in enumerate(panels):
            axes[row, col].imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            axes[row, col].set_title(title + (f"\n{label}: {info}" if col == 0 else ""), fontsize=8)
            axes[row, col].axis("off")
        import textwrap

        axes[row, 0].set_title(f"ref.{index:04d}\n" + "\n".join(textwrap.wrap(f"{label}: {info}", 48)), fontsize=7)
        axes[row, 1].set_title(f"tgv.{index:04d}\n" + "\n".join(textwrap.wrap(knob_text(knobs), 48)), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


# ---------------------------------------------------------------- CLI

def tell_aucs(imgs: np.ndarray) -> dict:
    """Per single-number image statistic, its AUC as a classifier of PI-CS vs reference over the
    whole set (0 or 1: the statistic alone separates the classes; 0.5: it says nothing).

    lap: std of the Laplacian inside the head; d_pe, d_ro: std of the second difference along the
    phase-encode (axis 0) and readout (axis 1) direction inside the head; pe_ro: their ratio
    (directional blur); bg: mean of the four corner squares (background)."""
    from scipy import ndimage as ndi

    stats = {"lap": [], "d_pe": [], "d_ro": [], "pe_ro": [], "bg": []}
    for pair in imgs.astype(np.float32):
        head = ndi.gaussian_filter(pair[0], 2.0) > 0.15 * 255
        c = pair.shape[-1] // 8
        for x in pair:
            d_pe = np.diff(x, 2, axis=0)[head[1:-1]].std()
            d_ro = np.diff(x, 2, axis=1)[head[:, 1:-1]].std()
            corners = np.concatenate([x[:c, :c].ravel(), x[:c, -c:].ravel(), x[-c:, :c].ravel(), x[-c:, -c:].ravel()])
            for key, value in (("lap", ndi.laplace(x)[head].std()), ("d_pe", d_pe), ("d_ro", d_ro),
                               ("pe_ro", d_pe / max(d_ro, 1e-6)), ("bg", corners.mean())):
                stats[key].append(float(value))
    from sklearn.metrics import roc_auc_score

    labels = np.tile([0, 1], len(imgs))  # reference, PI-CS of each pair, in that order
    return {k: float(roc_auc_score(labels, v)) for k, v in stats.items()}


def tells_report() -> None:
    """Print tell_aucs of every cached simulated set."""
    for meta_path in sorted(CACHE.glob("*.json")):
        key = json.loads(meta_path.read_text())["key"]
        with np.load(meta_path.with_suffix(".npz")) as z:
            aucs = tell_aucs(z["images"])
        knobs = knob_text({k: tuple(v) if isinstance(v, list) else v for k, v in key["knobs"].items()})
        print(f"{knobs} [{key['size']} px, {key['pairs']} pairs, seed {key['seed']}]: "
              + ", ".join(f"{k} {v:.3f}" for k, v in aucs.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="one trial")
    p_run.add_argument("--name", required=True)
    p_run.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p_run.add_argument("--no-record", action="store_true", help="print only (smoke tests)")
    p_q = sub.add_parser("queue", help="take trials from a queue file until it is empty")
    p_q.add_argument("file", type=Path)
    p_q.add_argument("--worker", default="A")
    for p in (p_run, p_q):
        p.add_argument("--deadline", default="", help="UTC HH:MM after which no trial starts and a running one is killed (default: none)")
        p.add_argument("--no-progress", action="store_true")
    p_fs = sub.add_parser("fullset", help="the three models on the prepared 320 px set, split drawn by --seed")
    p_fs.add_argument("--name", required=True)
    p_fs.add_argument("--seed", type=int, required=True)
    p_fs.add_argument("--epochs", type=int, default=30)
    p_fs.add_argument("--no-progress", action="store_true")
    sub.add_parser("report", help="rewrite the table of the report from the results file")
    sub.add_parser("tells", help="single-statistic AUCs (PI-CS vs reference) of every cached set")
    p_ex = sub.add_parser("example", help="example pairs of several settings")
    p_ex.add_argument("--index", type=int, default=7)
    p_ex.add_argument("--size", type=int, default=320)
    p_ex.add_argument("--setting", nargs=2, action="append", metavar=("LABEL", "KNOBS"), default=[],
                      help='label and "key=value key=value" (repeatable)')
    p_ex.add_argument("--pairs", type=int, default=None, help="take the pair from the cached set of this many pairs")
    p_ex.add_argument("--out", type=Path, default=RESULTS / "lab05_calibration_example.png")
    args = parser.parse_args(argv)

    if args.cmd == "report":
        with locked():
            write_report(load_results())
        return 0
    if args.cmd == "tells":
        tells_report()
        return 0
    if args.cmd == "example":
        settings = [(label, [s for s in knobs.split() if s]) for label, knobs in args.setting] or [("today", [])]
        example(args.index, args.size, settings, args.out, pairs=args.pairs)
        return 0
    if args.cmd == "fullset":
        record(fullset_trial(args.name, args.seed, args.epochs, not args.no_progress))
        return 0
    deadline = args.deadline or None
    if args.cmd == "queue":
        return run_queue(args.file, args.worker, deadline, not args.no_progress)
    reason = stop_reason(deadline)
    if reason:
        print(f"not starting: {reason}")
        return 3
    start_watchdog(deadline)
    knobs, trial = parse_settings(args.set)
    result = run_trial(args.name, knobs, trial, not args.no_progress)
    if not args.no_record:
        record(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
