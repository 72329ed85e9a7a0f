"""Text from a run or an LLM renders as text: planted markup in every field stays dead.

Checked by rendering with a CommonMark renderer that allows raw HTML (markdown-it-py), not
by looking for the escapes this module writes.
"""

from __future__ import annotations

import pytest

from prefect_failure_insights.models import EvidenceRef, FailureAnalysis, FlowRunInfo, Summary
from prefect_failure_insights.models.analysis import Category, Recurrence
from prefect_failure_insights.reporting import markdown as md
from prefect_failure_insights.reporting.card import artifact_description, render_markdown
from prefect_failure_insights.testing.markup import HOSTILE, live_elements, structure

UI = "http://127.0.0.1:4200/runs/flow-run/"
PIECES = [p for p in HOSTILE.replace("\n", " \n ").split(" ") if p.strip()]


def _summary(text: str) -> Summary:
    one_line = " ".join(text.split())
    run = FlowRunInfo(id="r1", name=one_line, flow_name=one_line, deployment=one_line, work_pool=one_line,
                      tags=[one_line], state="Failed", state_type="FAILED", state_message=text)
    analysis = FailureAnalysis(title=text, what_happened=text, how_to_fix=[text, text], root_cause=text,
                               category=Category.THIRD_PARTY_SYSTEM, confidence=0.5, failed_task=one_line,
                               tags=[one_line[:30]], additional_answers=[text])
    return Summary(run=run, analysis=analysis, status="fallback", reason=text,
                   recurrence=Recurrence(), evidence=EvidenceRef(text=text, tokens=1, root_error_line=1))


@pytest.mark.parametrize("piece", [HOSTILE, *PIECES])
def test_planted_markup_in_every_field_renders_as_text(piece: str) -> None:
    artifact = render_markdown(_summary(piece), UI + "r1")
    assert live_elements(artifact, allowed_link_prefixes=[UI]) == []
    assert structure(artifact) == structure(render_markdown(_summary("plain words"), UI + "r1"))


def test_the_description_is_one_line_of_dead_text() -> None:
    description = artifact_description(_summary(HOSTILE))
    assert "\n" not in description and len(description) <= 500
    assert live_elements(description) == []


@pytest.mark.parametrize("value", ["a`b", "``", "`edge`", "x ```` y", "", "tail`"])
def test_inline_code_is_never_closed_by_its_content(value: str) -> None:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parseInline(md.code(value))[0].children
    assert [t.type for t in tokens] == ["code_inline"] if value else True
    if value:
        assert tokens[0].content == " ".join(value.split())


def test_text_reads_as_written() -> None:
    from markdown_it import MarkdownIt

    plain = "Value 3 * 4 <5> & [x] _y_ #1 | ok\\"
    rendered = MarkdownIt("commonmark", {"html": True}).renderInline(md.text(plain))
    assert rendered == plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("plain", ["1. first", "- dash", "+ plus", "=== under", "12) twelve", "---"])
def test_text_that_looks_like_a_block_start_reads_as_written(plain: str) -> None:
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(md.text(plain))
    assert rendered == f"<p>{plain}</p>\n"


def test_the_redaction_marker_stays_readable() -> None:
    assert md.text("password=[REDACTED:password]") == "password=[REDACTED:password]"
    assert live_elements(md.text("[REDACTED:password](https://attacker.example)")) == []


def test_a_message_is_one_readable_line_with_nothing_that_renders() -> None:
    from prefect_failure_insights.reporting.markdown import message

    out = message("<b>x</b> & [a](https://e.example/x). see https://e.example/y, ok\n@here <!channel>")
    assert out == ("&lt;b&gt;x&lt;/b&gt; &amp; [a] (`https://e.example/x`). see `https://e.example/y`, ok "
                   "\uff20here &lt;\uff01channel&gt;")
    assert message("KeyError: ['amount'] (row 3)") == "KeyError: ['amount'] (row 3)"  # plain text stays as written
    assert message("y" * 50, 10) == "y" * 9 + "…"
