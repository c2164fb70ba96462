"""The grader's data secret: held-out data that a student cannot rebuild from the release.

The release ships ``data/*.py``, so with fixed seeds a student's ``python -m data prepare grader``
makes the grader's held-out sets byte for byte. Where a secret is set, the held-out parts are
drawn from seeds derived from it instead:

* MNIST (:mod:`data.mnist`): which 1000 of the 5000 offline digits are the test split;
* DTI (:mod:`data.dti`): the simulated test subject 100206 (the three training subjects stay);
* recon (:mod:`data.recon`): lab 5's grader subset (:func:`data.recon.load_grader_subset`).

Without a secret (the public default, what students and the golden results use) every dataset
is exactly what it was before secrets existed. The local grade is advice; the real held-out
data exist only where the secret is.

Where the secret comes from, first that is set:

1. ``$GRADER_DATA_SECRET``: the secret itself (surrounding white space dropped; empty = unset);
2. ``$GRADER_DATA_SECRET_FILE``: a file holding it, e.g. the root-only ``grader-secret`` that
   ``python -m grader gradescope`` puts beside ``setup.sh``. A missing, unreadable or empty file
   is an error, never a silent fall-back to the public data.

Seeds are ``HMAC-SHA256(secret, "mri-dl-labs:<purpose>")``, so one secret gives independent seeds
for each dataset and none of them reveals the secret. Caches made with a secret live in folders
named by :func:`secret_tag` (a 16-hex-digit HMAC of the secret, never the secret or a seed), so a
public cache is never taken for a secret one, nor one secret's cache for another's.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["ENV_SECRET", "ENV_SECRET_FILE", "SECRET_FILE_NAME", "grader_secret", "secret_tag", "derived_seed",
           "new_secret", "describe"]

ENV_SECRET = "GRADER_DATA_SECRET"
ENV_SECRET_FILE = "GRADER_DATA_SECRET_FILE"
#: The file name in a Gradescope autograder (beside setup.sh), mode 600.
SECRET_FILE_NAME = "grader-secret"
_DOMAIN = "mri-dl-labs:"


def grader_secret() -> bytes | None:
    """The secret from ``$GRADER_DATA_SECRET`` or the file ``$GRADER_DATA_SECRET_FILE``; None if neither is set.

    Raises:
        RuntimeError: ``$GRADER_DATA_SECRET_FILE`` names a file that is missing, unreadable or
            empty (the grader must not grade on the public data by mistake).
    """
    text = os.environ.get(ENV_SECRET, "").strip()
    if text:
        return text.encode("utf-8")
    path = os.environ.get(ENV_SECRET_FILE, "").strip()
    if not path:
        return None
    try:
        data = Path(path).read_bytes().strip()
    except OSError as e:
        raise RuntimeError(f"${ENV_SECRET_FILE}={path}: cannot read the grader's data secret "
                           f"({type(e).__name__}: {e.strerror or e})") from None
    if not data:
        raise RuntimeError(f"${ENV_SECRET_FILE}={path}: the file is empty; it must hold the grader's data secret")
    return data


def _mac(purpose: str, secret: bytes) -> bytes:
    return hmac.new(secret, (_DOMAIN + purpose).encode("utf-8"), hashlib.sha256).digest()


def secret_tag(secret: bytes | None = None) -> str | None:
    """16 hex digits that name the caches of ``secret`` (default :func:`grader_secret`); None without one.

    An HMAC of the secret: it tells two secrets apart and reveals nothing of either.
    """
    secret = grader_secret() if secret is None else secret
    return None if secret is None else _mac("cache-tag", secret).hex()[:16]


def derived_seed(purpose: str, bits: int = 32, secret: bytes | None = None) -> int | None:
    """A ``bits``-bit seed for ``purpose`` (e.g. ``"mnist-test-split"``) from ``secret``
    (default :func:`grader_secret`); None without a secret (the caller then uses its public seed).

    ``bits`` <= 256; 32 fits every seed (``sklearn``'s ``random_state`` needs < 2**32).
    """
    if not 1 <= bits <= 256:
        raise ValueError(f"bits must be in 1..256, got {bits}")
    secret = grader_secret() if secret is None else secret
    if secret is None:
        return None
    return int.from_bytes(_mac(purpose, secret), "big") >> (256 - bits)


def new_secret() -> str:
    """A fresh secret: 64 hex digits from :func:`secrets.token_hex` (32 bytes)."""
    return secrets.token_hex(32)


def describe() -> str:
    """One line for ``python -m data info``: which held-out data this environment makes."""
    try:
        tag = secret_tag()
    except RuntimeError as e:
        return f"error: {e}"
    if tag is None:
        return f"none (public default: the held-out data students can make too); set ${ENV_SECRET} or ${ENV_SECRET_FILE}"
    return f"set (cache tag {tag}): held-out data drawn from it"
