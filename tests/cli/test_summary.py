"""`summary list` on a terminal: as wide as the terminal, no empty columns."""

from __future__ import annotations

from prefect_failure_insights.cli.summary import summary_table
from prefect_failure_insights.models import LLMUsage
from tests.reporting.test_card import _fallback_summary


def test_the_list_fits_the_terminal_and_drops_columns_nobody_used() -> None:
    summary = _fallback_summary()
    long = summary.model_copy(update={"analysis": summary.analysis.model_copy(update={"title": "t" * 300})})
    for width in (80, 100, 160, 240):
        table = summary_table([summary, long], width=width)
        assert all(len(line) <= width for line in table.split("\n")), width
        assert "TOKENS" not in table and "COST" not in table  # no LLM: nothing to show there
    wide = summary_table([long], width=240).split("\n")[1]
    assert wide.count("t") > 60  # the title takes the room there is, not 60 characters
    used = summary.model_copy(update={"usage": LLMUsage(model="m", prompt_tokens=900, completion_tokens=100,
                                                        cost_usd=0.0012)})
    table = summary_table([used], width=200)
    assert "TOKENS" in table and "1,000" in table and "0.0012" in table
