"""Cache helpers shared by the dataset modules (`data.mnist`, `data.dti`, `data.recon`).

Generated files live under one cache folder: ``$MRI_DL_LABS_CACHE`` if set, else
``<repo>/data/cache`` (git-ignored). Every file is written atomically (temp file in the
same folder, then ``os.replace``), so an interrupted run never leaves a partial file
behind. Each dataset folder holds a ``manifest.json`` with the generation parameters and
the sha256 of every file; :func:`manifest_ok` accepts a folder only when all of it
matches, so a partial or corrupt cache is rebuilt, never silently used.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

ENV_VAR = "MRI_DL_LABS_CACHE"
MANIFEST_NAME = "manifest.json"
DATA_DIR = Path(__file__).resolve().parent
REPO_ROOT = DATA_DIR.parent

__all__ = [
    "ENV_VAR",
    "MANIFEST_NAME",
    "cache_dir",
    "sha256_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_save_npz",
    "write_manifest",
    "read_manifest",
    "manifest_ok",
    "folder_size",
]


def cache_dir() -> Path:
    """Return the cache root, creating it if missing.

    Returns:
        ``Path($MRI_DL_LABS_CACHE)`` when the environment variable is set and non-empty,
        else ``<repo>/data/cache``.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    root = Path(env).expanduser() if env else DATA_DIR / "cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file's bytes (read in 1 MiB chunks).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder (same file system), which is
    flushed, fsync'ed and then renamed over ``path`` with ``os.replace``. Readers see
    either the old file or the complete new one. Parent folders are created.

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Save arrays as an uncompressed ``.npz`` at exactly ``path``, atomically.

    Unlike ``np.savez(path, ...)`` no ``.npz`` suffix is appended. Load with
    ``np.load(path)``.
    """
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _normalise_params(params: dict) -> Any:
    # JSON round trip: tuples become lists, keys become strings, so stored == requested.
    return json.loads(json.dumps(params, sort_keys=True))


def write_manifest(folder: str | os.PathLike, params: dict, files: Iterable[str | os.PathLike]) -> Path:
    """Write ``<folder>/manifest.json`` atomically; call it after all ``files`` are written.

    Content: ``{"params": params, "seed": params.get("seed"), "files": {name: sha256},
    "created": ISO-8601 local time}``. File names are stored relative to ``folder``.

    Args:
        folder: the dataset's cache folder.
        params: JSON-serialisable generation parameters (what must match to reuse the cache).
        files: the generated files, inside ``folder``.

    Raises:
        ValueError: if a file is not inside ``folder``.
        FileNotFoundError: if a file is missing.
    """
    folder = Path(folder)
    entries = {}
    for f in files:
        f = Path(f)
        if not f.is_absolute():
            f = folder / f
        try:
            rel = f.resolve().relative_to(folder.resolve())
        except ValueError:
            raise ValueError(f"manifest file {f} is not inside {folder}") from None
        entries[rel.as_posix()] = sha256_file(f)
    manifest = {
        "params": _normalise_params(params),
        "seed": params.get("seed"),
        "files": entries,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """Return the parsed ``manifest.json`` of ``folder``, or None if missing or unreadable."""
    try:
        with open(Path(folder) / MANIFEST_NAME, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def manifest_ok(folder: str | os.PathLike, params: dict) -> bool:
    """True only if ``folder`` holds a valid, complete cache for ``params``.

    Checks: ``manifest.json`` exists and parses, its params equal ``params`` (after a JSON
    round trip), it lists at least one file, and every listed file exists with the
    recorded sha256. Any failure gives False (never raises for a bad cache).
    """
    m = read_manifest(folder)
    if m is None or m.get("params") != _normalise_params(params):
        return False
    files = m.get("files")
    if not isinstance(files, dict) or not files:
        return False
    folder = Path(folder)
    for name, digest in files.items():
        p = folder / name
        if not p.is_file():
            return False
        try:
            if sha256_file(p) != digest:
                return False
        except OSError:
            return False
    return True


def folder_size(folder: str | os.PathLike) -> int:
    """Total size in bytes of the regular files under ``folder`` (0 if it does not exist)."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
