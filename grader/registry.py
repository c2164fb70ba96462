"""The one list of labs: what the grader, the release, the autograders and the batch know of each.

A new lab is one :class:`LabSpec` line in :data:`SPECS` (``docs/writing-a-lab.md`` lists the files
it also needs). Everything else reads this module: the lab numbers of ``--lab N``, the module
of each graded file (``labs/<module>.py``), the data modules a batch slot imports before it forks
judges, and the data folders the student release leaves out (real data never ships by accident).
This module imports nothing of the grader's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LabSpec:
    """One lab.

    Attributes:
        lab_id: ``"lab01"``: the marker of its graded tests and the prefix of their names.
        module: ``"lab01_autograd"``: ``labs/<module>.py``, ``solutions/<module>.py`` and the
            rubric ``grader/test_<module>.py``.
        data_modules: the ``data`` modules its checks load (imported once per batch slot).
        data_folders: folders of ``data/`` its datasets live in, never copied into a release.
    """

    lab_id: str
    module: str
    data_modules: tuple[str, ...] = ()
    data_folders: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        return int(self.lab_id[3:])


#: The labs, in the order of the course.
SPECS: tuple[LabSpec, ...] = (
    LabSpec("lab01", "lab01_autograd"),
    LabSpec("lab02", "lab02_backprop"),
    LabSpec("lab03", "lab03_mnist", data_modules=("data.mnist",), data_folders=("MNIST",)),
    LabSpec("lab04", "lab04_dti", data_modules=("data.dti",), data_folders=("dti",)),
    LabSpec("lab05", "lab05_cnn", data_modules=("data.recon",), data_folders=("recon_classification",)),
)

#: Lab id -> module name (``{"lab01": "lab01_autograd", ...}``), in the order of the course.
LABS: dict[str, str] = {spec.lab_id: spec.module for spec in SPECS}


def lab_numbers() -> list[int]:
    """The numbers of the labs (``[1, 2, 3, 4, 5]``), for ``--lab N`` options."""
    return [spec.number for spec in SPECS]


def data_modules() -> tuple[str, ...]:
    """Every lab's data modules, each once, in course order."""
    return tuple(dict.fromkeys(m for spec in SPECS for m in spec.data_modules))


def data_folders() -> tuple[str, ...]:
    """Every lab's data folders (names under ``data/``), each once, in course order."""
    return tuple(dict.fromkeys(f for spec in SPECS for f in spec.data_folders))
