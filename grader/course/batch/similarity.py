"""``--similarity``: which students handed in near-copies of a lab, as groups, with names.

For each graded lab, every pair of students' files is compared with copydetect's fingerprints
(MOSS-style winnowing, :class:`copydetect.CodeFingerprint` and :func:`copydetect.compare_files`),
the stub's text removed as boilerplate. Two students are *linked* when either file shares more
than the threshold of its code with the other; a *group* is a connected component of links, so
five copies of one file are one group of five, not ten pairs. Writes, each file whole or absent:

* ``similarity.md``: per lab, the groups, their members (linked to the files) and the highest and
  lowest similarity of two members (the lowest may be under the threshold: A like B, B like C);
* ``similarity.png``: per lab, a student x student heat map with the students' names on the axes;
* ``similarity.html``: the same, and the code of the closest pairs that join each group (a group
  of five shows four pairs) side by side, the shared parts marked. One file that works offline: inline style, the heat map inline, no script, no CDN
  (copydetect's own report links Bootstrap from a CDN and has no template option).

Only the labs graded in this batch are compared (a whole-repository submission also holds the
other labs' stubs), and only students whose submission was read. The files are the batch's own
copies (``OUTDIR/work/<student>/labs/``), read without following links. Names and code are
escaped for HTML and stripped of control characters; names on the figure lose ``$`` (mathtext).
Not a verdict: short labs have few ways to be written.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from grader import textsafe
from grader.course.batch.lab_failures import clip
from grader.course.batch.reports import load_results, write_atomic
from grader.judge.ingest import MAX_LAB_BYTES, IngestError, read_beneath
from grader.judge.session import LABS, REPO_ROOT


@dataclass
class Pair:
    """Two students' files of one lab: the share of each one's code found in the other's."""

    a: int
    b: int
    a_in_b: float
    b_in_a: float
    slices: tuple = ()  # copydetect's (start, end) arrays of the shared code in a's and b's text

    @property
    def similarity(self) -> float:
        return max(self.a_in_b, self.b_in_a)


@dataclass
class LabSimilarity:
    """The comparison of one lab: students, their code, the similarity matrix and the groups."""

    lab: str
    students: list[str]
    code: list[str]
    matrix: list[list[float]]  # [i][j]: share of i's code found in j's (nan on the diagonal)
    pairs: dict[tuple[int, int], Pair] = field(default_factory=dict)  # linked pairs, i < j
    groups: list[list[int]] = field(default_factory=list)

    def pair_similarity(self, i: int, j: int) -> float:
        return max(self.matrix[i][j], self.matrix[j][i])

    def group_range(self, group: list[int]) -> tuple[float, float]:
        """Highest and lowest similarity of two members of ``group``."""
        values = [self.pair_similarity(i, j) for k, i in enumerate(group) for j in group[k + 1:]]
        return max(values), min(values)

    def closest_pairs(self, group: list[int]) -> list[Pair]:
        """The linked pairs that join ``group``, closest first, one fewer than its members (a maximum
        spanning tree): five copies are shown as four pairs, not ten."""
        pairs = sorted((p for (i, j), p in self.pairs.items() if i in group),
                       key=lambda p: (-p.similarity, p.a, p.b))
        chosen = []
        for i, j in _components_tree(len(self.students), [(p.a, p.b) for p in pairs]):
            chosen.append(self.pairs[min(i, j), max(i, j)])
        return chosen


@dataclass
class Group:
    """A group of students linked by near-copies of one lab (what :func:`write_similarity` returns)."""

    lab: str
    students: list[str]
    highest: float
    lowest: float


def _union_find(n: int):
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    return parent, root


def _components_tree(n: int, links: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The links, in their order, that join a component not yet joined (Kruskal's spanning forest)."""
    parent, root = _union_find(n)
    tree = []
    for i, j in links:
        if root(i) != root(j):
            parent[root(i)] = root(j)
            tree.append((i, j))
    return tree


def _components(n: int, links: list[tuple[int, int]]) -> list[list[int]]:
    """The connected components of more than one member (each in index order)."""
    parent, root = _union_find(n)
    for i, j in links:
        parent[root(i)] = root(j)
    found: dict[int, list[int]] = {}
    for i in range(n):
        found.setdefault(root(i), []).append(i)
    return [g for g in found.values() if len(g) > 1]


def compare_lab(lab: str, students: list[str], code: list[str], threshold: float) -> LabSimilarity:
    """Compare every pair of ``code`` (the students' files of ``lab``), the stub as boilerplate."""
    import numpy as np
    from copydetect import CodeFingerprint, compare_files, defaults

    module = LABS[lab]
    k, window = defaults.NOISE_THRESHOLD, defaults.GUARANTEE_THRESHOLD - defaults.NOISE_THRESHOLD + 1
    stub = REPO_ROOT / "labs" / f"{module}.py"
    # As copydetect's CopyDetector does: every k-gram hash of the stub is boilerplate.
    boilerplate = np.unique(np.array(list(CodeFingerprint(str(stub), k=k, win_size=1).hashes) if stub.is_file() else []))
    prints = [CodeFingerprint(f"{module}.py", k, window, boilerplate, fp=io.StringIO(text)) for text in code]
    n = len(code)
    result = LabSimilarity(lab, students, code, [[float("nan")] * n for _ in range(n)])
    for i in range(n):
        for j in range(i + 1, n):
            _, (a_in_b, b_in_a), slices = compare_files(prints[i], prints[j])
            result.matrix[i][j], result.matrix[j][i] = float(a_in_b), float(b_in_a)
            if max(a_in_b, b_in_a) > threshold:
                result.pairs[i, j] = Pair(i, j, float(a_in_b), float(b_in_a), slices)
    result.groups = sorted(_components(n, list(result.pairs)),
                           key=lambda g: (-result.group_range(g)[0], -len(g), [students[i].lower() for i in g]))
    return result


def _read_lab_files(out: Path, lab: str, students: list[str]) -> tuple[list[str], list[str]]:
    """(students, code) of those who have a copy of ``lab`` in ``OUTDIR/work``, read without following links."""
    have, code = [], []
    for student in students:
        try:
            data = read_beneath(out / "work", f"{student}/labs/{LABS[lab]}.py", MAX_LAB_BYTES)
        except (IngestError, OSError):
            continue
        have.append(student)
        code.append(data.decode("utf-8", errors="replace"))
    return have, code


def _label(name: str) -> str:
    """A student's name as a figure label: no control characters, no mathtext, not too long."""
    return clip(textsafe.terminal(name), 32).replace("$", "")


def heat_map_png(labs: list[LabSimilarity], threshold: float) -> bytes:
    """:func:`heat_map_figure` as PNG bytes."""
    import matplotlib.pyplot as plt

    fig = heat_map_figure(labs, threshold)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def heat_map_figure(labs: list[LabSimilarity], threshold: float):
    """One student x student heat map per lab (Agg backend), names on both axes, linked pairs outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sizes = [min(24.0, max(4.0, 0.16 * len(s.students) + 2.5)) for s in labs]
    fig, axes = plt.subplots(len(labs), 1, figsize=(max(sizes) + 1.5, sum(sizes) + 0.6 * len(labs)), squeeze=False)
    for ax, sim in zip(axes[:, 0], labs):
        n = len(sim.students)
        matrix = np.array([[sim.pair_similarity(i, j) if i != j else np.nan for j in range(n)] for i in range(n)])
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        fontsize = max(3.0, min(9.0, 400 / max(n, 1)))
        names = [_label(s) for s in sim.students]
        ax.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), names, fontsize=fontsize)
        for i, j in sim.pairs:
            for x, y in ((i, j), (j, i)):
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1))
        ax.set_title(f"{sim.lab}: similarity of two students' code (red: above {threshold:.0%})", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def _marked(code: str, slices) -> str:
    """``code`` escaped for HTML, the shared slices in ``<mark>``."""
    parts, pos = [], 0
    if len(slices) == 2 and len(slices[0]):
        for start, end in zip(*slices):
            start, end = max(int(start), pos), max(int(end), pos)
            parts += [html.escape(code[pos:start]), "<mark>", html.escape(code[start:end]), "</mark>"]
            pos = end
    parts.append(html.escape(code[pos:]))
    return textsafe.terminal("".join(parts))


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.side { display: flex; gap: 1em; }
.side > div { flex: 1; min-width: 0; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
mark { background: #f2b6b6; }
summary { cursor: pointer; margin: 0.4em 0; }
img { max-width: 100%; }
"""


def similarity_html(labs: list[LabSimilarity], threshold: float, png: bytes | None) -> str:
    """The offline report: groups per lab, the heat map, and each linked pair's code side by side."""
    esc = html.escape
    body = ["<h1>Code similarity</h1>",
            f"<p>Students whose lab files share more than {threshold:.0%} of their code, the stub text removed "
            "(copydetect, MOSS-style winnowing), in groups: a group holds every student linked to another member. "
            "Not a verdict: short labs have few ways to be written; read the code before concluding anything.</p>"]
    if png:
        body.append(f'<img alt="similarity heat maps" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    for sim in labs:
        body.append(f"<h2>{esc(sim.lab)}: {len(sim.students)} students, {len(sim.groups)} group(s)</h2>")
        if not sim.groups:
            body.append("<p>No two students above the threshold.</p>")
        for number, group in enumerate(sim.groups, 1):
            high, low = sim.group_range(group)
            names = ", ".join(esc(sim.students[i]) for i in group)
            body.append(f"<h3>Group {number}: {len(group)} students, {low:.0%} to {high:.0%}</h3><p>{names}</p>")
            for pair in sim.closest_pairs(group):
                i, j = pair.a, pair.b
                a, b = esc(sim.students[i]), esc(sim.students[j])
                body.append(f"<details><summary>{a} and {b}: {pair.a_in_b:.0%} of {a}'s code in {b}'s, "
                            f"{pair.b_in_a:.0%} of {b}'s in {a}'s</summary><div class=\"side\">"
                            f"<div><b>{a}</b><pre><code>{_marked(sim.code[i], pair.slices[0] if pair.slices else ())}"
                            f"</code></pre></div><div><b>{b}</b><pre><code>"
                            f"{_marked(sim.code[j], pair.slices[1] if pair.slices else ())}</code></pre></div>"
                            "</div></details>")
    return textsafe.terminal(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Code similarity</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def similarity_markdown(labs: list[LabSimilarity], threshold: float) -> str:
    """``similarity.md``: per lab, the groups and their members, linked to the files in ``work/``."""
    md = textsafe.markdown_cell
    lines = ["# Code similarity", "",
             f"Groups of students whose lab files share more than {threshold:.0%} of their code after the stub text "
             "is removed (copydetect, MOSS-style winnowing): a group holds every student linked to another member, so "
             "five copies of one file are one group of five. *Highest* and *lowest* are the similarities of the closest "
             "and the least similar two members. Not a verdict: short labs have few ways to be written, so read the "
             "files side by side in similarity.html (heat maps: similarity.png) before concluding anything.", ""]
    if not any(sim.groups for sim in labs):
        lines.append("No group above the threshold." if labs else "Fewer than two students submitted a graded lab.")
    for sim in labs:
        if not sim.groups:
            continue
        lines += [f"## {sim.lab}", "", "| group | students | highest | lowest |", "|---:|---|---:|---:|"]
        for number, group in enumerate(sim.groups, 1):
            high, low = sim.group_range(group)
            # Student names are safe_name()s (letters, digits, ._-@+): escaped all the same.
            names = ", ".join(f"[{md(sim.students[i])}]({md(f'work/{sim.students[i]}/labs/{LABS[sim.lab]}.py')})"
                              for i in group)
            lines.append(f"| {number} | {names} | {high:.0%} | {low:.0%} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_similarity(out: Path, threshold: float, labs: list[str], all_results: list[dict] | None = None) -> list[Group]:
    """Compare the students' files of each lab in ``labs``; write similarity.md, .png and .html.

    Args:
        out: the batch's OUTDIR (reads ``work/<student>/labs/``).
        threshold: link two students when either file shares more than this fraction of its code.
        labs: the labs graded in this batch (lab ids); no other lab is compared.
        all_results: the class's results (default: read from ``out/results``); students whose
            submission could not be read are left out.

    Returns:
        The groups of every lab, highest similarity first within a lab.
    """
    if all_results is None:
        all_results = load_results(out)
    students = [r["extra_data"]["batch"]["student"] for r in all_results
                if r["extra_data"]["batch"].get("status") != "unreadable"]
    compared = []
    for lab in labs:
        have, code = _read_lab_files(out, lab, students)
        if len(have) >= 2:
            compared.append(compare_lab(lab, have, code, threshold))
    png = heat_map_png(compared, threshold) if compared else None
    if png:
        write_atomic(out / "similarity.png", png)
    else:
        (out / "similarity.png").unlink(missing_ok=True)
    write_atomic(out / "similarity.html", similarity_html(compared, threshold, png))
    write_atomic(out / "similarity.md", similarity_markdown(compared, threshold))
    return [Group(sim.lab, [sim.students[i] for i in g], *sim.group_range(g)) for sim in compared for g in sim.groups]
