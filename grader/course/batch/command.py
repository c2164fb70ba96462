"""The ``batch`` command: discover, grade in slots (resumable, sharded), merge, write the reports."""


from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import re
import shutil
import sys
import threading
from pathlib import Path

from grader import scoring
from grader.course.batch.answers import collect as collect_answers
from grader.course.batch.discover import Entry, Unreadable, discover, extract, stray_files
from grader.course.batch.gitsnap import apply_deadline, parse_deadline
from grader.course.batch.items import checks_csv
from grader.course.batch.reports import (
    STRAY_FILE,
    clean_log,
    feedback_markdown,
    load_results,
    load_stray,
    write_atomic,
    write_gradebook,
    write_summary,
)
from grader.course.batch.similarity import write_similarity
from grader.course.batch.slots import DEFAULT_SUBMISSION_TIMEOUT, Slot, default_workers, grader_version, worker_users
from grader.course.batch.workflow import append_summary, course_reports
from grader.judge.sandbox import bwrap_usable
from grader.judge.session import LABS

# --------------------------------------------------------------------------- the command


def _unreadable_results(entry: Entry, version: str, seed) -> dict:
    return {
        "score": 0.0, "max_score": 0.0, "execution_time": 0.0, "output": entry.problem, "tests": [],
        "extra_data": {"grader_seed": seed, "batch": {
            "student": entry.student, "email": entry.email, "entry": entry.source.name, "status": "unreadable",
            "notes": [entry.problem], "grader_version": version, "seconds": 0.0}},
    }


def _up_to_date(path: Path, key: dict) -> bool:
    try:
        batch = json.loads(path.read_text())["extra_data"]["batch"]
    except (OSError, KeyError, json.JSONDecodeError):
        return False
    return batch.get("key") == key and batch.get("status") != "grader error"


def run_batch(opts: argparse.Namespace) -> int:
    """Grade every submission in ``opts.submissions`` into ``opts.out`` (see the module docstring)."""
    from tqdm import tqdm

    from grader.plugin import DEFAULT_SEED

    out = Path(opts.out).resolve()
    labs = [f"lab{n:02d}" for n in sorted(set(opts.lab))] if opts.lab else list(LABS)
    seed = opts.grader_seed if opts.grader_seed is not None else DEFAULT_SEED
    version = grader_version()
    entries = discover(Path(opts.submissions))
    stray = stray_files(Path(opts.submissions))
    if opts.shard:
        k, n = opts.shard
        entries = [e for i, e in enumerate(entries) if i % n == k - 1]
    for sub in ("results", "feedback", "logs", "work"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(out / STRAY_FILE, json.dumps(stray, indent=1))
    if stray:
        print(f"not a submission (neither a folder nor an archive), not graded: {', '.join(map(repr, stray))}",
              file=sys.stderr)
    apply_deadline(entries, opts.deadline, out)  # Git clones: the files of their last commit before it
    jobs = []
    for entry in entries:
        result_path = out / "results" / f"{entry.student}.json"
        collect_answers(entry, out / "work" / entry.student)  # QUESTIONS.md, read by hand (answers/)
        if not entry.problem:
            try:
                sha = extract(entry, out / "work" / entry.student / "labs")
            except Unreadable as exc:
                entry.problem = str(exc)
        if entry.problem:
            results = _unreadable_results(entry, version, seed)
            write_atomic(result_path, json.dumps(results, indent=1))
            write_atomic(out / "feedback" / f"{entry.student}.md", feedback_markdown(entry.student, results))
            continue
        key = {"grader_version": version, "grader_seed": seed, "submission_sha256": sha, "labs": labs,
               "timeout": opts.timeout}
        if not opts.regrade and _up_to_date(result_path, key):
            continue
        jobs.append((entry, key))
    unreadable = sum(1 for e in entries if e.problem)
    skipped = len(entries) - unreadable - len(jobs)
    workers = max(1, min(opts.workers or default_workers(), len(jobs) or 1))
    users = worker_users(opts.worker_user, workers) if opts.worker_user and jobs else None
    if users:
        os.chmod(out, 0o700)  # results, feedback and the other students' files: root's only
        from grader.judge.sandbox import make_private

        changed = make_private()  # hidden tests, solutions and test labels: never the worker users'
        if changed:
            print(f"made {', '.join(changed)} readable by their owner only (chmod -R go-rwx): student code must "
                  "not read hidden tests, solutions or held-out labels", file=sys.stderr)
        print(f"student code runs as {', '.join(users)} (one user per slot), in a fresh grading area per submission"
              + (" inside bubblewrap" if bwrap_usable(users[0]) else " (no bubblewrap here: user switch alone)"),
              file=sys.stderr)
    elif jobs:
        print(f"note: student code runs as {_whoami()}: it cannot change a grade the judge computes, but it can "
              "read and write this user's files; for a class you do not trust, run as root with --worker-user "
              "(see docs/grading-a-class.md)", file=sys.stderr)
    print(f"{len(entries)} submissions in {opts.submissions}: {len(jobs)} to grade, {skipped} already graded "
          f"(same grader {version} and seed {seed}; --regrade to grade them again), {unreadable} unreadable; "
          f"{workers} at a time", file=sys.stderr)

    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    lock = threading.Lock()
    bar = tqdm(total=len(jobs), unit="submission", desc="grading", disable=opts.quiet or not jobs)
    times: list[float] = []
    failures: list[BaseException] = []

    def finish(entry: Entry, key: dict, reply: dict) -> None:
        json_path = out / "results" / f".{entry.student}.grading.json"
        if reply["code"] == 0 and json_path.is_file():
            results = json.loads(json_path.read_text())
            status, notes = scoring.submission_status(results, set(entry.files))
        else:
            results = {"score": 0.0, "max_score": 0.0, "execution_time": reply["seconds"], "tests": [],
                       "output": reply["error"], "extra_data": {"grader_seed": seed}}
            status = "timed out" if reply["code"] == -1 else "grader error"
            notes = [reply["error"]]
        results.setdefault("extra_data", {})["batch"] = {
            "student": entry.student, "email": entry.email, "entry": entry.source.name, "status": status,
            "notes": entry.notes + notes, "grader_version": version, "seconds": reply["seconds"], "key": key,
            "files": entry.files, "file_notes": entry.file_notes,
        }
        write_atomic(out / "results" / f"{entry.student}.json", json.dumps(results, indent=1))
        write_atomic(out / "feedback" / f"{entry.student}.md", feedback_markdown(entry.student, results))
        clean_log(out / "logs" / f"{entry.student}.log")
        json_path.unlink(missing_ok=True)

    def slot_loop(user: str | None) -> None:
        slot = Slot(user)
        try:
            while True:
                try:
                    entry, key = todo.get_nowait()
                except queue.Empty:
                    return
                job = {
                    "labs_dir": str(out / "work" / entry.student / "labs"),
                    "json": str(out / "results" / f".{entry.student}.grading.json"),
                    "log": str(out / "logs" / f"{entry.student}.log"),
                    "labs": [scoring.lab_number(lab) for lab in labs], "grader_seed": seed, "timeout": opts.timeout,
                    "submission_timeout": opts.submission_timeout,
                }
                reply = slot.grade(job)
                finish(entry, key, reply)
                with lock:
                    times.append(reply["seconds"])
                    bar.set_postfix_str(f"{entry.student[:20]} {reply['seconds']:.1f} s, mean {sum(times) / len(times):.1f} s")
                    bar.update(1)
        except BaseException as exc:  # noqa: BLE001 -- surfaced by the main thread
            failures.append(exc)
        finally:
            slot.close()

    threads = [threading.Thread(target=slot_loop, args=(users[k] if users else None,), daemon=True)
               for k in range(workers if jobs else 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    if failures:
        raise failures[0]
    return write_reports(out, labs, opts)


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def write_reports(out: Path, labs: list[str], opts: argparse.Namespace) -> int:
    """Gradebook, summary and (if asked) similarity from every result in ``out/results``."""
    all_results = load_results(out)
    course = course_reports(out, all_results, labs, opts)  # answers, manual points, roster, LMS files
    write_gradebook(out, all_results, labs, course.table)
    write_summary(out, all_results, labs)
    write_atomic(out / "checks.csv", checks_csv(all_results))
    append_summary(out, course, labs)
    print(f"gradebook: {out / 'gradebook.csv'} ({len(all_results)} students); summary: {out / 'summary.md'}; "
          f"points per check: {out / 'checks.csv'}", file=sys.stderr)
    if opts.similarity:
        groups = write_similarity(out, opts.similarity_threshold, labs, all_results)
        print(f"similarity: {len(groups)} group(s) of students above {opts.similarity_threshold:.0%}: "
              f"{out / 'similarity.md'}", file=sys.stderr)
    return 0


def merge(opts: argparse.Namespace) -> int:
    """Join the OUTDIRs of several shards into ``opts.out``.

    Raises:
        SystemExit: the shards were graded by different grader versions or seeds, or grade the
            same student differently.
    """
    out = Path(opts.out).resolve()
    seen: dict[str, tuple[str, Path]] = {}
    keys = set()
    labs: set[str] = set()
    for src in map(Path, opts.merge):
        if not (src / "results").is_dir():
            raise SystemExit(f"python -m grader batch --merge: {src} has no results/ folder: give OUTDIRs of batch runs")
        for path in sorted((src / "results").glob("*.json")):
            results = json.loads(path.read_text())
            batch = results["extra_data"]["batch"]
            keys.add((batch["grader_version"], results["extra_data"].get("grader_seed")))
            labs |= set(batch.get("key", {}).get("labs", []))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if path.stem in seen and seen[path.stem][0] != digest:
                raise SystemExit(f"python -m grader batch --merge: {path.stem} is graded in both {seen[path.stem][1]} and "
                                 f"{src}, differently: merge shards of one class split with --shard K/N")
            seen[path.stem] = (digest, src)
    if len(keys) > 1:
        found = ", ".join(f"version {v} seed {s}" for v, s in sorted(keys, key=str))
        raise SystemExit(f"python -m grader batch --merge: the shards were graded differently ({found}): "
                         "regrade them with the same grader and --grader-seed")
    for sub in ("results", "feedback", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    stray = sorted({name for src in map(Path, opts.merge) for name in load_stray(src)})
    write_atomic(out / STRAY_FILE, json.dumps(stray, indent=1))
    for student, (_, src) in seen.items():
        for sub, suffix in (("results", ".json"), ("feedback", ".md"), ("logs", ".log")):
            f = src / sub / f"{student}{suffix}"
            if f.is_file():
                write_atomic(out / sub / f.name, f.read_bytes())
        work = src / "work" / student
        if work.is_dir():
            shutil.copytree(work, out / "work" / student, dirs_exist_ok=True)
    return write_reports(out, sorted(labs) or list(LABS), opts)


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard {text!r}: write K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def _deadline(text: str):
    try:
        return parse_deadline(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader batch",
        description="Grade a whole class: one folder or .zip per student in SUBMISSIONS -> gradebook.csv, "
        "feedback, results and a class summary in OUTDIR.",
        epilog="Run the same command again to resume an interrupted batch. Exit code 0 unless the grader itself failed.",
    )
    parser.add_argument("submissions", nargs="?", metavar="SUBMISSIONS", help="folder with one folder or .zip per student")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created; reused to resume)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="submissions graded at a time (default: cores, at most one per 3 GiB of free memory)")
    parser.add_argument("--lab", type=int, action="append", choices=range(1, len(LABS) + 1), metavar="N",
                        help="grade lab N only (repeatable)")
    parser.add_argument("--grader-seed", type=int, default=None, metavar="S", help="grader seed (default: the grader's fixed seed)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="time budget of checks without their own, as in python -m grader (default 60)")
    parser.add_argument("--submission-timeout", type=float, default=DEFAULT_SUBMISSION_TIMEOUT, metavar="S",
                        help="stop a whole submission after S seconds (default %(default)g; checks have their own budgets)")
    parser.add_argument("--worker-user", default=os.environ.get("GRADER_WORKER_USER") or None, metavar="USER",
                        help="as root: run student code as USER (USER2, ... for more slots; created if missing), "
                        "in a grading area root owns (inside bubblewrap where it starts), as on the Gradescope autograder (default $GRADER_WORKER_USER)")
    parser.add_argument("--regrade", action="store_true", help="grade again submissions already graded with this grader and seed")
    parser.add_argument("--similarity", action="store_true", help="also write similarity.html/.md (copydetect)")
    parser.add_argument("--similarity-threshold", type=float, default=0.6, metavar="F",
                        help="list pairs sharing more than this fraction of code (default %(default)g)")
    parser.add_argument("--shard", type=_shard, default=None, metavar="K/N", help="grade only every N-th student, from the K-th")
    parser.add_argument("--merge", nargs="+", metavar="OUTDIR", help="join the OUTDIRs of shards into --out (no grading)")
    parser.add_argument("--manual", metavar="POINTS.csv", default=None,
                        help="merge manual points for the written answers (a filled-in copy of OUTDIR/manual-template.csv)")
    parser.add_argument("--manual-max", type=float, default=None, metavar="P",
                        help="points of a written question whose row gives no max (default 2)")
    parser.add_argument("--roster", metavar="ROSTER.csv", default=None,
                        help="the course's students (id, name, email, and folder/username/github): IDs in the gradebook, "
                        "who is missing, OUTDIR/lms/canvas.csv and moodle.csv")
    parser.add_argument("--deadline", type=_deadline, default=None, metavar="WHEN",
                        help="grade each Git clone at its last commit before WHEN (ISO 8601 with offset, "
                        "e.g. 2026-12-01T23:59+01:00; committer dates)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if opts.merge:
        if opts.submissions:
            raise SystemExit("python -m grader batch: give either SUBMISSIONS or --merge OUTDIR..., not both")
        return merge(opts)
    if not opts.submissions:
        raise SystemExit("python -m grader batch: give the SUBMISSIONS folder (or --merge OUTDIR... to join shards)")
    return run_batch(opts)


if __name__ == "__main__":
    sys.exit(main())
