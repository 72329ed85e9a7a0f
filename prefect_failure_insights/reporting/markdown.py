"""Text from a run or an LLM, made safe to place in markdown: it can only ever render as text.

Everything such text could turn into is neutralised: raw HTML (``<script>``, ``<img>``,
``<iframe>``: ``<``, ``>`` and ``&`` become entities), links and images (``[``, ``]`` and
``!`` escaped; bare URLs and e-mail addresses, which GitHub-flavoured renderers link on
their own, set in code), emphasis, headings, lists, quotes, rules and tables (their marks
escaped), and inline code that would close early (`code` uses a fence longer than any run
of backticks inside). The only links in an artifact are the ones the plugin builds, to
the Prefect UI, with `link`. And every helper makes its text `inert` first: no control
character, terminal escape, bidi control or invisible character reaches any output.
"""

from __future__ import annotations

import re

from prefect_failure_insights.redaction import inert

_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_INLINE = re.compile(r"([\\`*_\[\]!#|~{}])")
_AUTOLINKED = re.compile(r"(?i)\b(?:[a-z][\w+.-]*://|www\.)[^\s<>`]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MARKER = re.compile(r"\\\[REDACTED:((?:[a-z]|\\_)+)\\\](?!\()")
_BLOCK_START = re.compile(r"^(\s*)([-+=]|\d+[.)])(?=\s|$|[-=])")


def text(value: object) -> str:
    """``value`` as inline markdown text that renders exactly as written (on one line), also
    where a line starts with it, as after a list marker."""
    return _unblock(_inline(" ".join(inert(str(value)).split())))


def block(value: object) -> str:
    """``value`` as a paragraph (its lines kept) that renders as text: no heading, list, quote,
    rule, table, HTML, link or image can come out of it."""
    lines = []
    for line in inert(str(value)).splitlines() or [""]:
        lines.append(_unblock(_inline(line.rstrip())))
    return "  \n".join(lines)  # a hard line break: lines stay lines, never become a new block


def code(value: object) -> str:
    """``value`` as an inline code span (one line), fenced so that nothing inside can close it."""
    body = " ".join(inert(str(value)).split())
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def fence(value: str, info: str = "text") -> str:
    """``value`` as a fenced code block that nothing inside can close."""
    value = inert(value)
    longest = max((len(run) for run in re.findall(r"`{3,}", value)), default=2)
    marks = "`" * (longest + 1)
    return f"{marks}{info}\n{value}\n{marks}"


def link(label: object, url: str) -> str:
    """A link the plugin builds (to the Prefect UI): the label is escaped, the URL is ours."""
    return f"[{text(label)}](<{url}>)"


def message(value: object, limit: int | None = None) -> str:
    """``value`` for a chat message or an e-mail (Slack, Teams, webhooks), on one line, at most
    ``limit`` characters: readable as written, with nothing that renders as markup there: raw
    HTML and Slack's ``<...>`` links and mentions (``<``, ``>``, ``&`` become entities), link and
    image syntax (``](`` is split), bare URLs and addresses (set in code, never linked) and
    ``@channel``-style mentions (their ``@`` or ``!`` written full-width, ``＠channel``: readable,
    never a mention, and no invisible character)."""
    body = " ".join(inert(str(value)).split())
    if limit is not None and len(body) > limit:
        body = body[:limit - 1].rstrip() + "…"
    out, last = [], 0
    for m in _AUTOLINKED.finditer(body):
        url = m.group(0)
        while url[-1] in ".,;:!?'\"" or (url[-1] == ")" and url.count(")") > url.count("(")):
            url = url[:-1]  # trailing punctuation is the sentence's, as autolinkers see it
        out.append(_message_escape(body[last:m.start()]))
        out.append(code(url.translate(_HTML)))
        last = m.start() + len(url)
    out.append(_message_escape(body[last:]))
    return "".join(out)


_MENTION = re.compile(r"(?i)([@!])(channel|here|everyone|all)\b")
_FULL_WIDTH = {"@": "\uff20", "!": "\uff01"}


def _message_escape(value: str) -> str:
    value = value.translate(_HTML).replace("](", "] (").replace("![", "! [")
    return _MENTION.sub(lambda m: _FULL_WIDTH[m.group(1)] + m.group(2), value)


def _unblock(line: str) -> str:
    """A line that cannot open a list or a rule, nor underline the line above into a heading."""
    return _BLOCK_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], line)


def _inline(value: str) -> str:
    out, last = [], 0
    for m in _AUTOLINKED.finditer(value):  # URLs and e-mail addresses: code, which is never a link
        out.append(_escape(value[last:m.start()]))
        out.append(code(m.group(0)))
        last = m.end()
    out.append(_escape(value[last:]))
    return "".join(out)


def _escape(value: str) -> str:
    escaped = _INLINE.sub(r"\\\1", value.translate(_HTML))
    # Our own redaction markers stay readable in the source: alone, "[REDACTED:kind]" is no link.
    return _MARKER.sub(lambda m: "[REDACTED:" + m.group(1).replace("\\_", "_") + "]", escaped)
