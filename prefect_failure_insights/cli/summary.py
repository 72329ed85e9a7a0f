"""``failure-insights summary create|show|list|evidence|export|reconcile``: failure summaries.

Heavy modules are imported inside the commands: the CLI is imported by every summarizer
subprocess that ``serve`` spawns, and by shell completion.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from prefect_failure_insights.cli.common import (
    LLM_KEY_ENV_OPTION,
    LLM_URL_OPTION,
    SETTINGS_OPTION,
    SummaryFormat,
    TextOrJson,
    echo,
    fail,
    llm_endpoint,
    open_database,
    output_file,
    parse_since,
    run,
)
from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    EVIDENCE_TOKEN_BUDGET,
    EVIDENCE_TOKEN_BUDGET_MAX,
    EVIDENCE_TOKEN_BUDGET_MIN,
    RECONCILE_HOURS,
    RECONCILE_LIMIT,
)


app = typer.Typer(help="Failure summaries: make one now, read them, export a run, reconcile.",
                  no_args_is_help=True)


def _budget_option(help_text: str) -> Any:
    return typer.Option(EVIDENCE_TOKEN_BUDGET, "--budget", min=EVIDENCE_TOKEN_BUDGET_MIN,
                        max=EVIDENCE_TOKEN_BUDGET_MAX, help=help_text)


def _print_summary(summary: Any, fmt: SummaryFormat, with_url: bool = True) -> None:
    from prefect_failure_insights.reporting.card import (
        render_markdown,
        render_text,
        run_url,
    )

    url = run_url(summary.run.id) if with_url else None
    if fmt is SummaryFormat.json:
        echo(json.dumps(summary.model_dump(mode="json"), indent=2))
    elif fmt is SummaryFormat.markdown:
        echo(render_markdown(summary, url))
    else:
        echo(render_text(summary))
        if url:
            echo(f"\nOn the run's page: {url}")


def _load_bundle(path: str):
    from prefect_failure_insights.bundles.format import load_bundle

    return run(lambda: load_bundle(path))


@app.command("create")
def create(
    run_id: str | None = typer.Argument(None, help="Id of the failed or crashed flow run."),
    bundle: str | None = typer.Option(None, "--bundle", help="Summarize a bundle file offline instead."),
    regenerate: bool = typer.Option(False, "--regenerate", help="Replace an existing summary."),
    fmt: SummaryFormat = typer.Option(SummaryFormat.text, "--format", help="Output format."),
    budget: int = _budget_option("Evidence token budget (bundles)."),
    llm_url: str | None = LLM_URL_OPTION,
    llm_api_key_env: str | None = LLM_KEY_ENV_OPTION,
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Summarize a failed run now (the same flow the automation runs), or a bundle offline.

    --llm-url gets its own API key from the environment variable --llm-api-key-env names,
    never from the command line; the llm-credentials block's key goes only to the block's URL.

    Examples:
        failure-insights summary create 0b7c2c1e-... --regenerate
        failure-insights summary create --bundle run.json.gz --format markdown
    """
    if (run_id is None) == (bundle is None):
        raise fail("Give a RUN_ID or --bundle FILE (one of them).", 2)
    endpoint = llm_endpoint(llm_url, llm_api_key_env)
    if bundle is not None:
        _print_summary(_summarize_bundle(bundle, budget, endpoint, llm_model), fmt, with_url=False)
        return

    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.flows.on_failure_summary import summarize_failure
        from prefect_failure_insights.prefect_api.runs import resolve_failed_run
        from prefect_failure_insights.store.summaries import get_summary

        async with get_client() as client:  # fail fast, in one line, on bad input
            await resolve_failed_run(client, run_id)
        outcome = await summarize_failure(
            flow_run_id=run_id, regenerate=regenerate, settings_block=settings_block,
            llm_endpoint=endpoint, llm_model=llm_model,
            # A terminal waits for its answer: what was stored, saying so when the logs were
            # incomplete (`--regenerate` later reads every line).
            answer_again_when_logs_complete=False,
        )
        if outcome.summary is None and outcome.action == "exists":
            async with await open_database(settings_block) as database:
                outcome.summary = await database.run(get_summary, outcome.flow_run_id or run_id)
        return outcome

    outcome = run(main)
    if outcome.summary is None:
        raise fail(f"No summary made for {run_id}: {outcome.reason}", 1)
    if outcome.action == "exists":
        echo("(An existing summary; use --regenerate to replace it.)", err=True)
    _print_summary(outcome.summary, fmt)


def _summarize_bundle(path: str, budget: int, endpoint: Any = None, llm_model: str | None = None):
    """Offline: the bundle's evidence, analysed by the LLM in the environment (or the fallback)."""
    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.blocks.loading import NO_LLM_HINT
    from prefect_failure_insights.bundles.offline import summarize_bundle

    loaded = _load_bundle(path)
    llm = LLMCredentials.from_env()
    if endpoint is not None or llm_model:
        llm = (llm or LLMCredentials()).with_overrides(endpoint.url if endpoint else None, llm_model,
                                                       api_key=endpoint.api_key if endpoint else None)
    settings = FailureInsightsSettings(evidence_token_budget=budget)
    return run(lambda: summarize_bundle(loaded, settings, llm, no_llm_reason=None if llm else NO_LLM_HINT))


@app.command("evidence")
def evidence(
    run_id: str | None = typer.Argument(None, help="A failed flow run (read from the Prefect API)."),
    bundle: str | None = typer.Option(None, "--bundle", help="A bundle file (no Prefect server needed)."),
    budget: int = _budget_option("Token budget."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", help="Output format."),
) -> None:
    """Print exactly what would be sent to the LLM, after redaction.

    JSON: text, tokens, kept_lines (original 1-based line numbers), redactions,
    root_error, failed_task, elapsed_ms, and a few more fields.
    """
    from prefect_failure_insights.bundles.offline import bundle_evidence

    if (run_id is None) == (bundle is None):
        raise fail("Give a RUN_ID or --bundle FILE (one of them).", 2)
    loaded = _load_bundle(bundle) if bundle is not None else run(lambda: _export(run_id))
    ev = bundle_evidence(loaded, budget)
    if fmt is TextOrJson.text:
        echo(ev.text)
        return
    echo(json.dumps({
        "text": ev.text, "tokens": ev.tokens, "kept_lines": ev.kept_lines,
        "redactions": ev.redaction_count, "redactions_by_kind": ev.redactions,
        "root_error": ev.root_error, "root_error_line": ev.root_error_line,
        "root_error_reason": ev.root_error_reason, "failed_task": ev.failed_task,
        "exception_type": ev.exception_type, "total_lines": ev.total_lines,
        "elapsed_ms": round(ev.elapsed_ms, 1),
    }, indent=2))


async def _export(run_id: str, settings_block: str = DEFAULT_BLOCK_NAME):
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.blocks.loading import load_airbyte, load_settings
    from prefect_failure_insights.bundles.export import export_bundle
    from prefect_failure_insights.evidence.sources import configured_sources

    settings = await load_settings(settings_block)
    async with get_client() as client:
        return await export_bundle(client, run_id, configured_sources(await load_airbyte(settings)))


@app.command("export")
def export(
    run_id: str = typer.Argument(..., help="Id of the failed or crashed flow run."),
    output: str | None = typer.Option(None, "-o", "--output", help="File to write (.json or .json.gz)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Write a failed run (state, task runs, subflows, logs, last good run, Airbyte logs)
    as a redacted bundle."""
    from prefect_failure_insights.bundles.format import write_bundle

    path = output_file(output or f"run-{run_id[:8]}.json.gz")
    loaded = run(lambda: _export(run_id, settings_block))
    try:
        write_bundle(loaded, path)
    except OSError as exc:
        raise fail(f"Cannot write {path}: {exc.strerror or exc}.", 1) from None
    echo(f"Wrote {path}: {loaded.log_count} log lines, "
               f"{len(loaded.task_runs)} task runs, {len(loaded.subflows)} failed subflow(s).")


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Id of the failed flow run."),
    fmt: SummaryFormat = typer.Option(SummaryFormat.text, "--format",
                                      help="Output format: text (for a terminal), markdown (the card), json."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Print the stored summary of a run."""

    async def main():
        from prefect_failure_insights.store.summaries import get_summary

        async with await open_database(settings_block) as database:
            return await database.run(get_summary, run_id), database.description

    summary, where = run(main)
    if summary is None:
        raise fail(f"No summary for flow run {run_id} in {where}: make one with "
                   f"`failure-insights summary create {run_id}`.", 2)
    _print_summary(summary, fmt)


@app.command("list")
def list_(
    limit: int = typer.Option(20, min=1, max=1000, help="Rows to show."),
    offset: int = typer.Option(0, min=0, help="Rows to skip."),
    category: str | None = typer.Option(None, help="Only this category, e.g. THIRD_PARTY_SYSTEM."),
    flow: str | None = typer.Option(None, help="Only runs of this flow."),
    since: str | None = typer.Option(None, help="Only summaries since: 24h, 7d or an ISO date."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", help="Output format."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """List stored summaries, newest first, with the total count."""
    from prefect_failure_insights.models import Category

    if category and category.upper() not in Category.__members__:
        raise fail(f"--category must be one of {', '.join(Category.__members__)}.", 2)
    since_dt = parse_since(since)

    async def main():
        from prefect_failure_insights.store.summaries import list_summaries

        async with await open_database(settings_block) as database:
            return await database.run(list_summaries, limit, offset, category=category.upper() if category else None,
                                      flow=flow, since=since_dt)

    rows, total = run(main)
    if fmt is TextOrJson.json:
        echo(json.dumps({
            "total": total, "limit": limit, "offset": offset,
            "summaries": [
                {"flow_run_id": s.run.id, "flow_run_name": s.run.name, "flow_name": s.run.flow_name,
                 "failed_at": s.run.end_time.isoformat() if s.run.end_time else None,
                 "category": s.analysis.category.value, "status": s.status, "title": s.analysis.title,
                 "model": s.usage.model, "prompt_tokens": s.usage.prompt_tokens,
                 "completion_tokens": s.usage.completion_tokens, "latency_ms": s.usage.latency_ms,
                 "cost_usd": s.usage.cost_usd, "cache_hit": s.recurrence.cache_hit,
                 "same_as_run_id": s.recurrence.same_as_run_id, "prompt_version": s.usage.prompt_version}
                for s in rows
            ],
        }, indent=2))
        return
    if not rows:
        echo(f"No summaries (total {total}).")
        return
    echo(summary_table(rows))
    echo(f"Showing {offset + 1}-{offset + len(rows)} of {total}.")


def summary_table(rows: list[Any], width: int | None = None) -> str:
    """The `list` table, as wide as the terminal: the title takes the room left, and the token and
    cost columns show only when some summary used an LLM."""
    import shutil

    width = width or shutil.get_terminal_size((120, 24)).columns
    columns: list[tuple[str, int, Any]] = [
        ("FAILED AT (UTC)", 16, lambda s: f"{s.run.end_time:%Y-%m-%d %H:%M}" if s.run.end_time else "-"),
        ("FLOW RUN ID", 36, lambda s: s.run.id),
        ("FLOW", 22, lambda s: s.run.flow_name),
        ("CATEGORY", 18, lambda s: s.analysis.category.value),
        ("HOW", 8, lambda s: "cache" if s.recurrence.cache_hit else s.status),
    ]
    if any(s.usage.tokens for s in rows):
        columns.append(("TOKENS", 7, lambda s: f"{s.usage.tokens:,}"))
    if any(s.usage.cost_usd for s in rows):
        columns.append(("COST $", 8, lambda s: f"{s.usage.cost_usd:.4f}" if s.usage.cost_usd is not None else "-"))
    used = sum(w + 1 for _, w, _ in columns)

    def cell(value: str, w: int) -> str:
        value = " ".join(str(value).split())
        return (value if len(value) <= w else value[:w - 1] + "…").ljust(w)

    if width - used >= 30:  # the title in its own column, taking the room left
        lines = [" ".join([*(cell(name, w) for name, w, _ in columns), "TITLE"]).rstrip()]
        lines += [" ".join([*(cell(get(s), w) for _, w, get in columns), cell(s.analysis.title, width - used)])
                  .rstrip() for s in rows]
        return "\n".join(lines)
    # A narrow terminal: the title on a line of its own under each row, the columns cut to fit.
    lines = [" ".join(cell(name, w) for name, w, _ in columns).rstrip()[:width]]
    for s in rows:
        lines += [" ".join(cell(get(s), w) for _, w, get in columns).rstrip()[:width],
                  "  " + cell(s.analysis.title, width - 2).rstrip()]
    return "\n".join(lines)


@app.command("reconcile")
def reconcile(
    hours: float = typer.Option(RECONCILE_HOURS, "--hours", min=0.01, max=24 * 90,
                                help="Look back this many hours for failures without a summary."),
    limit: int = typer.Option(RECONCILE_LIMIT, "--limit", min=1, help="Most summarizer runs to start."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what is missing; change nothing."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", help="text or json."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Make sure every failure gets its summary: replace dead summarizers, summarize what is missing.

    Sets summarizer runs left Running by a dead process to Crashed, frees the claims they
    held, and starts a run of the summarizer deployment for every failed run of the window
    that is in scope and has no summary (oldest first, at most --limit). `serve` does this
    on its own; with workers, schedule the reconcile-summaries deployment of prefect.yaml,
    or run this command from cron.

    Examples:
        failure-insights summary reconcile --hours 6
        failure-insights summary reconcile --dry-run --format json
    """
    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.blocks.loading import load_settings
        from prefect_failure_insights.lifecycle.reconciler import reconcile as reconcile_pass

        settings = await load_settings(settings_block)
        async with await open_database(settings_block) as database, get_client() as client:
            return await reconcile_pass(client, database, settings, hours=hours, limit=limit, start=not dry_run)

    from prefect_failure_insights.lifecycle.reconciler import describe

    report = run(main)
    if fmt is TextOrJson.json:
        echo(json.dumps({**report.model_dump(mode="json"), "missing": report.missing}, indent=2))
    else:
        echo(describe(report, dry_run))
