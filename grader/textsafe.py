"""Escaping of student-controlled text before a human reads it: terminal, CSV, Markdown.

A student controls more text than their code: exception messages and types, what their code
prints, file and folder names, the names and e-mails of a Gradescope export. That text reaches
the instructor's terminal, the logs, ``gradebook.csv``, ``summary.md`` and the feedback files.
Each writer passes it through one of these helpers first:

* :func:`terminal` for a terminal, a log or ``results.json``: escape sequences and control
  characters removed (screen clearing ``ESC[2J``, clipboard writes ``OSC 52``, hyperlinks
  ``OSC 8``, cursor moves that overwrite a line);
* :func:`csv_cell` for a spreadsheet cell: formula-leading cells neutralised;
* :func:`markdown`, :func:`markdown_cell` and :func:`markdown_code` for Markdown: no raw HTML, no
  broken table or code span.

Honest text (letters of any script, digits, punctuation, spaces, tabs and newlines) comes out
unchanged from :func:`terminal` and :func:`markdown`, so that the messages of honest runs stay
the same; :func:`csv_cell` changes only cells that start like a formula.

This module depends on nothing else in the grader.
"""

from __future__ import annotations

import html
import re

# ECMA-48 (5th edition, 1991; ISO/IEC 6429), the standard for terminal control functions:
#  * section 5.4: a control sequence is CSI (ESC [ or the 8-bit 0x9B), parameter bytes 0x30-0x3F,
#    intermediate bytes 0x20-0x2F, and one final byte 0x40-0x7E (ESC[2J clears the screen);
#  * section 5.6: a control string (OSC ESC ] / 0x9D, DCS ESC P / 0x90, SOS ESC X / 0x98,
#    PM ESC ^ / 0x9E, APC ESC _ / 0x9F) runs until ST (ESC \ or 0x9C); xterm also ends OSC with
#    BEL (0x07). OSC 52 writes the clipboard, OSC 8 makes a hyperlink;
#  * section 5.3: any other escape sequence is ESC, intermediate bytes 0x20-0x2F, one final byte
#    0x30-0x7E (ESC c resets the terminal).
# An unterminated control string loses only its introducer: what follows is then plain text
# that a terminal prints (no longer swallowed), and a log keeps the rest of its lines.
_CONTROL_STRING = re.compile(r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)")
_CONTROL_SEQUENCE = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
_ESCAPE_SEQUENCE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]")
# What is left after the sequences: C0 controls (0x00-0x1F) but tab and newline, DEL (0x7F),
# the C1 controls (0x80-0x9F). Also the Unicode bidirectional embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069): they reorder what a terminal shows ("Trojan Source",
# CVE-2021-42574), so a line can read differently from what it holds. Marks (U+200E, U+200F)
# that right-to-left text uses are kept.
_CONTROL_CHAR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal(text: object) -> str:
    """``text`` without terminal escape sequences and control characters; newline and tab kept.

    For everything printed to a terminal or written to a log or ``results.json``: a student's
    exception message must not clear the instructor's screen (``ESC[2J``), write their clipboard
    (``OSC 52``), plant a hyperlink (``OSC 8``) or overwrite a line of the score table (``CR``).
    Sequences (ECMA-48 sections 5.3-5.6, see the comments above) are removed whole, then every
    other C0/C1 control character; ``CR LF`` becomes ``LF``. Honest text is returned unchanged.
    """
    text = str(text)
    if not _CONTROL_CHAR.search(text):  # the common case: nothing to do
        return text
    text = text.replace("\r\n", "\n")
    text = _CONTROL_STRING.sub("", text)
    text = _CONTROL_SEQUENCE.sub("", text)
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL_CHAR.sub("", text)


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text, never runs as a formula.

    OWASP's CSV injection guidance (https://owasp.org/www-community/attacks/CSV_Injection):
    a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with a
    single quote, so Excel, LibreOffice and Google Sheets show it as text
    (``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``). Separators and quotes inside a cell are
    left to :mod:`csv`, which quotes such cells, so no formula can start a new cell either.
    A plain number (``-1``, ``+2.5e3``) is not a formula and is kept, as the ``defusedcsv``
    package does. Control characters are removed first (:func:`terminal`): the file is also
    read with ``cat``.
    """
    text = str(value)
    if text.startswith(("\t", "\r")):  # neutralised before terminal() could strip the CR away
        return "'" + terminal(text)
    text = terminal(text)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


# The WHATWG HTML tokenizer (https://html.spec.whatwg.org/#data-state, and CommonMark's raw HTML,
# spec section 6.6, follows it): "<" opens a tag, comment or declaration only when an ASCII
# letter, "/", "!" or "?" follows, and "&" starts a character reference only when a letter,
# digit or "#" follows. Only those are escaped, so "x < 1", "a -> b", ">= 0.95" and "R&D" stay.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])|&(?=[A-Za-z0-9#])")


def markdown(text: object) -> str:
    """``text`` for a Markdown file (``summary.md``, ``feedback/<student>.md``): no raw HTML.

    Control characters are removed (:func:`terminal`), then every ``<`` that would open an HTML
    tag, comment or declaration and every ``&`` that would start a character reference is
    escaped with :func:`html.escape` (``<script>`` becomes ``&lt;script>``, which a Markdown
    renderer shows as the text ``<script>``). A ``<`` or ``&`` that cannot start markup (``x < 1``)
    is kept, so honest messages read the same in the file and rendered.
    """
    return _HTML_START.sub(lambda m: html.escape(m.group(0)), terminal(text))


def markdown_cell(text: object) -> str:
    """:func:`markdown` for a cell of a Markdown table: pipes escaped, line breaks made spaces."""
    text = markdown(text).replace("\n", " ").replace("\t", " ")
    return text.replace("|", "\\|")


def markdown_code(text: object) -> str:
    """``text`` as one inline code span (CommonMark section 6.1), whatever backticks it holds.

    The fence is one backtick longer than the longest run inside, and a space pads text that
    starts or ends with a backtick, so the span cannot be closed early. Inside a code span HTML is
    shown as text, so nothing is escaped; control characters and line breaks are removed.
    """
    text = terminal(text).replace("\n", " ").replace("\t", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
