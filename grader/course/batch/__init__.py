"""``python -m grader batch SUBMISSIONS --out OUTDIR``: grade a whole class.

SUBMISSIONS is a folder with one entry per student: a folder or a ``.zip`` (a GitHub Classroom
clone, an LMS download, a Gradescope export). In each entry the lab files (``labNN_*.py``) are
found at its top level, in ``labs/``, or nested up to three folders deeper (a repository clone in
a zip, an LMS folder around it). The student is named after the entry (for a Gradescope export,
after ``submission_metadata.yml``). An entry with no lab file, or a zip that cannot be read, is
listed in the gradebook as ``unreadable`` with the reason (and the maximum the others could
earn); nothing is silently dropped. A plain file at the top of SUBMISSIONS that is neither a
folder nor an archive or code file (``notes.txt``) is no student: it is listed apart, on stderr
and in ``summary.md`` (``stray.json``).

Every submission is graded exactly as ``python -m grader --labs-dir DIR`` grades it: the same
function (:func:`grader.runner.grade_isolated`), checks, grader seed, time budgets and crash
handling. Only the lab files are copied out of a submission (to ``OUTDIR/work/<student>/labs``),
never run in this process. ``--workers N`` submissions are graded at a time, each in a *slot*: a
process that has imported torch and started the student-code zygote once, and forks a fresh
judge (pytest) per submission, so torch is imported once per slot, not once per submission.

OUTDIR receives, each file written atomically:

* ``gradebook.csv``: one row per student (points per lab, total, max, status ``ok`` / ``crashed``
  / ``timed out`` / ``unreadable`` / ``grader error``, seconds, grader seed, grader version, notes);
* ``results/<student>.json``: the Gradescope results (what ``python -m grader`` writes), plus
  ``extra_data.batch`` (grader version, seed, submission hash, status);
* ``feedback/<student>.md``: the report the student sees, hidden checks marked as hidden; a lab
  file that is missing or does not import is one line for its lab, with the path inside the
  submission;
* ``logs/<student>.log``: the judge's pytest output, for the instructor;
* ``summary.md`` and ``summary.png``: score distribution per lab, the labs that did not run
  (file missing, import errors) counted apart, and per check the share of the class that failed
  it with the most common failure message;
* ``checks.csv``: student x check points, for item analysis (a first row of possible points;
  blank where the check measured nothing);
* with ``--similarity`` (:mod:`grader.course.batch.similarity`): ``similarity.md`` (groups of
  students above the threshold per lab, linked to the files), ``similarity.png`` (per-lab heat
  maps with the students' names) and ``similarity.html`` (the same and the code side by side,
  offline).
* ``answers/labNN_qK.md``: every student's answer to one question of ``labs/QUESTIONS.md``, and
  ``manual-template.csv`` to record points for them (:mod:`~grader.course.batch.answers`,
  :mod:`~grader.course.batch.manual`); ``--manual POINTS.csv`` merges the points;
* with ``--roster``: student IDs and names in the gradebook, missing students, and
  ``lms/canvas.csv``, ``lms/moodle.csv`` (:mod:`~grader.course.batch.roster`);
* with ``--deadline``: each Git clone graded at its last commit before the deadline
  (:mod:`~grader.course.batch.gitsnap`; ``git/<student>/`` holds the copy read).

An interrupted batch is resumed by running the same command: a student whose results were
written by the same grader version and seed from the same files is not graded again (unless
``--regrade``). ``--shard K/N`` grades every N-th student (K = 1..N) so that N machines or CI jobs
can split a class; ``--merge OUT1 OUT2 ... --out OUT`` joins their outputs into one gradebook.
"""

from grader.course.batch.command import build_parser, main  # noqa: F401  (python -m grader batch)
