"""``grader.textsafe``: student text is escaped for terminals, CSV and Markdown; honest text is not touched."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
import yaml

from grader import textsafe
from grader.course.batch import discover
from grader.judge.session import REPO_ROOT

#: What an honest message, name or output looks like: letters of several scripts, digits,
#: punctuation (including < > & | and backticks that cannot start markup), tabs and newlines.
HONEST = [
    "graph_forward(1.000, 2.000): c is 3.0, expected 3.5",
    "after training, accuracy on two moons is 0.912, expected >= 0.95 (check backward and sgd_step)",
    "Linear layer 0 maps 784 -> 30, expected 784 -> 100; 1 <= n_hidden_layers <= 5; loss < 1e-6",
    "z^1 is wrong: z^l = a^(l-1) W^l^T + b^l (one sample per row); R & D; 5 & 6",
    "use `.to(device)`, not `.cuda()`: ||dC/db^l||_2 = 0.5 * |x|",
    "Zoë Ångström, Łukasz Żółć, 山田太郎, Σωκράτης, محمد\u200f, José-María O'Neil",
    "epoch 1: loss 0.69\nepoch 2: loss 0.41\n\tdone.",
    "",
]

ATTACK = ("\x1b[2J\x1b[H\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"
          " <script>alert(1)</script>\r\x1bc\x9b2J\x9d52;c;x\x9c\x00\x7f\u202eevil\u2066")


@pytest.mark.parametrize("text", HONEST)
def test_honest_text_comes_out_unchanged(text):
    assert textsafe.terminal(text) == text
    assert textsafe.markdown(text) == text


@pytest.mark.parametrize("sequence, kept", [
    ("\x1b[2J", ""),  # clear the screen (ECMA-48 ED)
    ("\x1b[31;1m", ""),  # colour
    ("\x1b]52;c;ZXZpbA==\x07", ""),  # write the clipboard (xterm OSC 52, BEL-terminated)
    ("\x1b]52;c;ZXZpbA==\x1b\\", ""),  # ... ST-terminated
    ("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # hyperlink (OSC 8): the text stays
    ("\x1bc", ""),  # reset the terminal
    ("\x1b(0", ""),  # line-drawing character set
    ("\x9b2J", ""),  # 8-bit CSI
    ("\x9d52;c;x\x9c", ""),  # 8-bit OSC ... ST
    ("\x1bP1$qm\x1b\\", ""),  # DCS
    ("\x1b]0;title", "0;title"),  # unterminated: the introducer goes, the rest is plain text
    ("100%\r  0%", "100%  0%"),  # a carriage return that would overwrite the line
    ("a\r\nb", "a\nb"),
    ("\x00\x07\x08\x0b\x0c\x7f\x85", ""),
    ("\u202eexe.txt", "exe.txt"),  # right-to-left override (Trojan Source)
])
def test_terminal_removes_sequences_and_controls(sequence, kept):
    assert textsafe.terminal(f"a{sequence}b") == f"a{kept}b"


def test_terminal_leaves_no_control_character():
    out = textsafe.terminal(ATTACK)
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in out), repr(out)
    assert "\u202e" not in out and "\u2066" not in out
    assert "<script>alert(1)</script>" in out  # terminal text is not HTML: only markdown() escapes it
    assert textsafe.terminal(3.5) == "3.5"


@pytest.mark.parametrize("value, cell", [
    ('=HYPERLINK("http://evil.example","click")', '\'=HYPERLINK("http://evil.example","click")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'=1+1"),
    ("\x1b[2J=1+1", "'=1+1"),  # a formula behind an escape sequence
    ("ada@uni.edu", "ada@uni.edu"),
    ("Alan_Turing+Grace_Hopper", "Alan_Turing+Grace_Hopper"),
    ("lab01: crashed in 1 check(s): =x", "lab01: crashed in 1 check(s): =x"),
    ("-1", "-1"), ("+2.5e3", "+2.5e3"), ("0", "0"), (13.0, "13.0"), ("", ""),
])
def test_csv_cell_neutralises_formulas_only(value, cell):
    assert textsafe.csv_cell(value) == cell


def test_csv_cell_survives_the_csv_module():
    """Separators and quotes are csv's business: a formula cannot start a cell of its own."""
    buf = io.StringIO()
    csv.writer(buf).writerow([textsafe.csv_cell(v) for v in ('a,=1+1', 'b";=2+2', "=3+3\n=4+4")])
    row = next(csv.reader(io.StringIO(buf.getvalue())))
    assert row == ['a,=1+1', 'b";=2+2', "'=3+3\n=4+4"]
    assert all(not cell.startswith(textsafe.FORMULA_START) for cell in row)


@pytest.mark.parametrize("text, escaped", [
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
    ("<!-- hide the rest", "&lt;!-- hide the rest"),
    ("<?php", "&lt;?php"),
    ("<https://evil.example>", "&lt;https://evil.example>"),  # an autolink
    ("&lt;script&gt; &#60;", "&amp;lt;script&amp;gt; &amp;#60;"),  # entities are shown, not decoded
    ("x < 1 and y > 2, a -> b, R & D", "x < 1 and y > 2, a -> b, R & D"),
    ("\x1b[2J<b>", "&lt;b>"),
    ("x&copy y", "x&amp;copy y"),  # HTML decodes some names without ";": any & before a letter is escaped
])
def test_markdown_escapes_what_would_be_html(text, escaped):
    assert textsafe.markdown(text) == escaped


def test_markdown_cell_and_code_keep_the_structure():
    assert textsafe.markdown_cell("a | b\nc <i>") == "a \\| b c &lt;i>"
    assert textsafe.markdown_cell("expected 784 -> 100") == "expected 784 -> 100"
    assert textsafe.markdown_code("heidi.zip") == "`heidi.zip`"
    assert textsafe.markdown_code("a`b") == "``a`b``"
    assert textsafe.markdown_code("``x") == "``` ``x ```"
    assert textsafe.markdown_code("<script>\n\x1b[2J") == "`<script> `"  # HTML in a code span is text


# --------------------------------------------------------------------------- end to end

#: Appended to the reference lab 1: graph_forward prints and raises text that would clear the
#: screen, write the clipboard, plant a hyperlink and inject HTML, under an exception type whose
#: name holds an escape sequence too; it also tries the zygote's stderr (the judge's terminal).
EVIL = "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://evil.example\x1b\\\\click\x1b]8;;\x1b\\\\ <script>alert(1)</script>"
EVIL_LAB = f'''

# <script>alert("similarity")</script>
def graph_forward(a, b):
    import os

    try:
        with open("/proc/%d/fd/2" % os.getppid(), "a") as zygote_stderr:
            zygote_stderr.write("\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07zygote\\n")
    except OSError:
        pass
    print("{EVIL}")
    raise type("Evil\\x1b[2J", (ValueError,), {{}})("{EVIL}")
'''
HYPERLINK = '=HYPERLINK("evil.example","click")'  # a folder name: no "/" in it
FORMULA_NAME = "-2+3+cmd|' /C calc'!A0"
EVIL_STUDENT = discover.safe_name(FORMULA_NAME)  # -2+3+cmd_C_calc_A0: still a formula
FORMULA_EMAIL = "@SUM(1+1)*cmd|' /C calc'!A0"
UNREADABLE = "@<img src=x onerror=alert(1)>.zip"


def _no_controls(text: str, where: str) -> None:
    bad = sorted({f"{ord(c):#04x}" for c in text if ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F})
    assert not bad, f"{where} holds control characters {bad}"


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


@pytest.fixture(scope="module")
def evil_class(tmp_path_factory):
    """A Gradescope export of two students graded with ``batch --similarity``: the attacker and Ada."""
    root = tmp_path_factory.mktemp("evil")
    subs, out = root / "subs", root / "out"
    lab = (REPO_ROOT / "solutions" / "lab01_autograd.py").read_text()
    for folder, text in ((HYPERLINK, lab + EVIL_LAB), ("ada", lab)):
        (subs / folder).mkdir(parents=True)
        (subs / folder / "lab01_autograd.py").write_text(text)
    (subs / UNREADABLE).write_bytes(b"not a zip")
    (subs / "submission_metadata.yml").write_text(yaml.safe_dump({
        HYPERLINK: {":submitters": [{":name": FORMULA_NAME, ":email": FORMULA_EMAIL}]},
        "ada": {":submitters": [{":name": "Ada Lovelace", ":email": "ada@uni.edu"}]},
    }))
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out), "--lab", "1",
                           "--timeout", "10", "--workers", "1", "--similarity", "-q"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_gradebook_cells_of_a_student_never_start_a_formula(evil_class):
    out, _ = evil_class
    rows = {r["email"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    evil, ada = rows["'" + FORMULA_EMAIL], rows["ada@uni.edu"]
    assert evil["entry"] == "'" + HYPERLINK
    assert evil["student"] == "'" + EVIL_STUDENT and EVIL_STUDENT.startswith("-2+3+cmd")
    assert (ada["student"], ada["entry"]) == ("Ada_Lovelace", "ada"), "an honest row changed"
    assert ada["lab01"] == ada["max"] and float(evil["lab01"]) < float(ada["lab01"])
    for row in rows.values():
        for name, cell in row.items():
            assert not cell.startswith(textsafe.FORMULA_START) or textsafe._NUMBER.fullmatch(cell), (name, cell)
    unreadable = next(r for r in rows.values() if r["status"] == "unreadable")
    assert unreadable["entry"] == "'" + UNREADABLE and unreadable["notes"].startswith("'@<img")


def test_no_escape_sequence_reaches_a_file_or_the_terminal(evil_class):
    out, proc = evil_class
    _no_controls(proc.stdout + proc.stderr, "the batch's terminal output")
    files = [out / "gradebook.csv", out / "summary.md", out / "similarity.md", out / "similarity.html",
             *(out / "feedback").glob("*.md"), *(out / "logs").glob("*.log")]
    assert len(files) == 9, files
    for path in files:
        _no_controls(path.read_text(encoding="utf-8"), path.name)
    results = list((out / "results").glob("*.json"))
    assert len(results) == 3
    for path in results:
        for text in _strings(json.loads(path.read_text())):
            _no_controls(text, path.name)
    evil = json.loads((out / "results" / f"{EVIL_STUDENT}.json").read_text())
    outputs = [t["output"] for t in evil["tests"] if t["output"].startswith("Evil: ")]  # ESC[2J left its type name
    assert outputs and "click <script>alert(1)</script>" in outputs[0], "the message itself must stay readable"


def test_markdown_reports_hold_no_raw_html(evil_class):
    out, _ = evil_class
    feedback = (out / "feedback" / f"{EVIL_STUDENT}.md").read_text()
    assert "click &lt;script>alert(1)&lt;/script>" in feedback
    summary = (out / "summary.md").read_text()
    assert "&lt;script>" in summary and "&lt;img" in summary
    for path in (out / "summary.md", out / "similarity.md", *(out / "feedback").glob("*.md")):
        text = path.read_text()
        assert "<script" not in text and "<img" not in text.replace(f"`{UNREADABLE}`", ""), path.name
    assert '<script>alert("similarity")' not in (out / "similarity.html").read_text()
    assert "[Ada_Lovelace](work/Ada_Lovelace/labs/lab01_autograd.py)" in (out / "similarity.md").read_text()


def test_single_grading_prints_no_escape_sequence(evil_class, tmp_path):
    """``python -m grader --labs-dir`` (verbose: tracebacks and captured output shown) and its results.json."""
    out, _ = evil_class
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "grader", "--labs-dir", str(out / "work" / EVIL_STUDENT / "labs"),
                           "--lab", "1", "--timeout", "10", "-v", "--json", str(tmp_path / "r.json")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _no_controls(proc.stdout + proc.stderr, "python -m grader's output")
    assert "click <script>alert(1)</script>" in proc.stdout  # the message and the print are shown, stripped
    for text in _strings(json.loads((tmp_path / "r.json").read_text())):
        _no_controls(text, "results.json")
