"""A second, differently written correct implementation of each lab scores full marks.

No graded check may depend on the reference's random-number consumption or exact floating-point
path: the implementations in ``tests/alt/`` use other loops, initialisation and batching.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.judge.session import LABS
from tests.planted import grade_variant

ALT = Path(__file__).parent / "alt"
ALT_LABS = [lab for lab, module in LABS.items() if (ALT / f"{module}.py").is_file()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lab", ALT_LABS)
def test_alternative_implementation_scores_full_marks(lab, tmp_path):
    module = LABS[lab]
    results = grade_variant({f"{module}.py": (ALT / f"{module}.py").read_text()}, tmp_path, f"test_{module}.py",
                            golden=f"alt/{lab}")
    lost = {name: t["output"] for name, t in results.items() if t["score"] < t["max_score"]}
    assert not lost, f"the alternative {module}.py lost points: {lost}"
