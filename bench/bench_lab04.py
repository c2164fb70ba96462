"""Lab 4 benchmarks: grading time, and the calibration of the graded thresholds.

    python bench/bench_lab04.py                 # `python -m grader --solutions --lab 4`, median of 3
    python bench/bench_lab04.py --runs 5
    python bench/bench_lab04.py --calibrate 10  # the reference pipeline over 10 grader seeds
    python bench/bench_lab04.py --calibrate 10 --normalizer max   # the lecture's max scaling
    python bench/bench_lab04.py --subjects      # the lab sheet's run, and each subject held out in turn

The calibration runs the grader's own pipeline functions (grader/oracle/lab04.py: run_pipeline,
run_imbalanced) on the reference solution with the seeds that grader seeds 20181, 20182, ...
give, and prints min / median / max of the test-subject accuracy, balanced accuracy and the
class-weight gain on the imbalanced training set: the numbers in the tests' docstrings, with the
margins to the graded bars (the oracle's calibration block, which the rubric imports).
``--normalizer max`` replaces the reference's z-scoring by division by the training maximum
(the lecture's choice), which a student may use as well. ``--subjects`` repeats the lab sheet's run
(``python -m labs.lab04_dti`` with the reference solution: seed 0, 30 epochs, class weights) and
prints its training / validation / test accuracy, the validation accuracy per training subject,
then holds out each of the four subjects in turn (the other three split 80/20 by voxel, the same
seed): how far one new subject's accuracy can lie from the validation accuracy (labs/QUESTIONS.md,
lab 4, question 4); it also times the lab sheet (median of 3 runs of ``python -m solutions.lab04_dti``).
Runs with one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
from timing import time_grading  # noqa: E402


MAX_SCALING = """

def fit_normalizer(x_train):  # the lecture's normaliser: x / max over the training set of |x|
    scale = x_train.abs().amax(dim=0)
    scale[scale == 0] = 1.0
    return Normalizer(mean=0.0 * scale, std=scale)
"""


def graded_lab(normalizer: str):
    """The reference lab as the grader sees it (in a worker); ``"max"``: with the lecture's normaliser."""
    import tempfile

    from grader.judge import session

    folder = session.REPO_ROOT / "solutions"
    if normalizer == "max":
        folder = Path(tempfile.mkdtemp(prefix="lab04-max-"))
        source = (session.REPO_ROOT / "solutions" / "lab04_dti.py").read_text()
        (folder / "lab04_dti.py").write_text(source + MAX_SCALING)
    session.set_impl_dir(folder)
    session.close_lab("lab04")
    return session.load_lab("lab04")


def calibrate(n_seeds: int, normalizer: str) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from grader.oracle import lab04 as oracle
    from data.dti import load_dti
    from grader.plugin import DEFAULT_SEED, seed_for_test

    lab = graded_lab(normalizer)
    data = load_dti("offline")
    rows = []
    for k in range(n_seeds):
        grader_seed = DEFAULT_SEED + k
        start = time.perf_counter()
        run = oracle.run_pipeline(lab, data, seed_for_test(grader_seed, "lab04:pipeline"))
        t_full = time.perf_counter() - start
        seed = seed_for_test(grader_seed, "lab04:imbalanced")
        start = time.perf_counter()
        weighted = oracle.run_imbalanced(lab, data, seed, weighted=True)
        plain = oracle.run_imbalanced(lab, data, seed, weighted=False)
        t_imb = time.perf_counter() - start
        row = {"grader_seed": grader_seed, "accuracy": run.test["accuracy"], "balanced": run.test["balanced"],
               "imbalanced_weighted": weighted["balanced"], "imbalanced_plain": plain["balanced"],
               "gain": weighted["balanced"] - plain["balanced"], "time_full_s": t_full, "time_imbalanced_s": t_imb}
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    summary = {}
    for key in ("accuracy", "balanced", "imbalanced_weighted", "imbalanced_plain", "gain", "time_full_s", "time_imbalanced_s"):
        values = np.array([r[key] for r in rows])
        summary[key] = {"min": round(float(values.min()), 4), "median": round(float(np.median(values)), 4),
                        "max": round(float(values.max()), 4)}
    thresholds = {"accuracy": oracle.MIN_TEST_ACCURACY, "balanced": oracle.MIN_TEST_BALANCED,
                  "imbalanced_weighted": oracle.MIN_IMBALANCED_BALANCED, "gain": oracle.MIN_WEIGHT_GAIN}
    for key, limit in thresholds.items():
        summary[key]["threshold"] = limit
        summary[key]["margin"] = round(summary[key]["min"] - limit, 4)
    return {"normalizer": normalizer, "seeds": n_seeds, "summary": summary, "rows": rows}


def subjects() -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from data.dti import load_dti, simulate_subjects
    from solutions import lab04_dti as lab
    from timing import time_command

    data = load_dti("auto")
    ids = np.arange(len(data.y_trainval), dtype=np.float32)[:, None].repeat(5, axis=1)
    sets = {"100206": (data.x_test, data.y_test)}
    for sid in np.unique(data.subjects_trainval):
        keep = torch.from_numpy(data.subjects_trainval == sid)
        sets[str(sid)] = (data.x_trainval[keep], data.y_trainval[keep])

    def run(x, y, x_new, y_new, row_ids=None):
        x_tr, y_tr, x_va, y_va = lab.split_train_val(x, y, 0.2, seed=0)
        norm = lab.fit_normalizer(x_tr)
        torch.manual_seed(0)
        model = lab.build_dti_mlp()
        lab.train(model, norm.transform(x_tr), y_tr, norm.transform(x_va), y_va, epochs=lab.EPOCHS,
                  class_weights=lab.class_weights(y_tr, len(lab.CLASSES)), device="cpu", seed=0)
        pred = {name: lab.predict(model, norm.transform(a)).numpy() for name, a in
                (("train", x_tr), ("validation", x_va), ("new subject", x_new))}
        row = {name: float((pred[name] == b.numpy()).mean()) for name, b in
               (("train", y_tr), ("validation", y_va), ("new subject", y_new))}
        if row_ids is not None:  # the validation rows' subjects: split the row numbers the same way
            val_rows = lab.split_train_val(torch.from_numpy(row_ids), y, 0.2, seed=0)[2][:, 0].long().numpy()
            for sid in np.unique(data.subjects_trainval):
                k = data.subjects_trainval[val_rows] == sid
                row[f"validation {sid}"] = float((pred["validation"][k] == y_va.numpy()[k]).mean())
        return row

    sheet = run(data.x_trainval, data.y_trainval, data.x_test, data.y_test, ids)
    print(f"{data.source}; the lab sheet's run: " + ", ".join(f"{k} {v:.3f}" for k, v in sheet.items()),
          flush=True)
    held_out = {}
    for out in sets:
        x = torch.cat([sets[s][0] for s in sets if s != out])
        y = torch.cat([sets[s][1] for s in sets if s != out])
        held_out[out] = run(x, y, *sets[out])
        print(f"held out {out}: " + ", ".join(f"{k} {v:.3f}" for k, v in held_out[out].items()), flush=True)
    snr = {sid: round(float(s.snr), 1) for sid, s in simulate_subjects(seed=0).items()} if "simulation" in data.source else {}
    print(f"b0 SNR per simulated subject: {snr}")
    median, seconds = time_command([sys.executable, "-m", "solutions.lab04_dti"], repeats=3, env={"MPLBACKEND": "Agg"})
    print(f"python -m solutions.lab04_dti: median {median:.1f} s over 3 runs {[round(t, 1) for t in seconds]}")
    return {"source": data.source, "sheet": sheet, "held_out": held_out, "snr": snr,
            "lab_sheet_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="gradings to time (default 3)")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N", help="calibrate over N grader seeds instead")
    parser.add_argument("--normalizer", choices=("z", "max"), default="z", help="normaliser for --calibrate")
    parser.add_argument("--subjects", action="store_true",
                        help="the lab sheet's run and each subject held out in turn")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.subjects:
        result = subjects()
    elif args.calibrate:
        result = calibrate(args.calibrate, args.normalizer)
        for key, s in result["summary"].items():
            print(f"{key:>20}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    else:
        result = time_grading(4, repeats=args.runs)
        print(f"python -m grader --solutions --lab 4: median {result['median_s']:.1f} s over "
              f"{len(result['seconds'])} runs {result['seconds']}, scores {result['scores']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
