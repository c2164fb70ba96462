"""The judge's per-check context: one explicit object the plugin sets and the worker client reads.

The plugin (:mod:`grader.plugin`) opens a check with :meth:`CheckContext.begin_check` (its seed and
time budget) and closes it with :meth:`CheckContext.end_check`; the client
(:mod:`grader.judge.remote`) reads the seed (a worker is seeded once per check, at its first call),
the deadline (a call past it is stopped, even inside C code), the call options of
:func:`grader.judge.remote.options`, and leaves here the evidence of the last reply. Nothing else
of the judge's is shared between the two. One process grades one check at a time, so one
instance, :data:`CURRENT`, serves the whole process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class CheckContext:
    """What the running check tells the worker client, and what the client saw last.

    Attributes:
        seed: the check's seed (:func:`grader.plugin.seed_for_test`), None outside a check.
        check: a counter, +1 per check: a worker seeds its RNGs at its first call of each check.
        deadline: ``time.monotonic()`` time at which the check's budget ends, None without one.
        options: options for every call (``cuda_hidden``, ``capture_figures``, ``seed``).
        evidence: what the worker sent with the last reply besides the value (``figures``, ``out``).
    """

    seed: int | None = None
    check: int = 0
    deadline: float | None = None
    options: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)

    def begin_check(self, seed: int) -> None:
        """A new check starts: the workers are seeded with ``seed`` at their first call of it."""
        self.seed = seed
        self.check += 1

    def set_budget(self, seconds: float | None) -> None:
        """The check's time budget in seconds from now (None or 0: no budget, the backstop applies)."""
        self.deadline = time.monotonic() + seconds if seconds else None

    def end_check(self) -> None:
        """The check is over: no budget until the next one."""
        self.deadline = None


#: The process's context (one check runs at a time in a judge).
CURRENT = CheckContext()
