"""The ``failure-insights`` command line.

Exit codes scripts can rely on:

* 0: done (for ``summarize``/``show``: a summary exists and was printed);
* 1: something failed or no summary was made (Prefect API or database unreachable,
  run out of scope, ``doctor`` found a failing check);
* 2: bad input (unknown run id, a run that did not fail, a missing block, a bad option).

Heavy modules are imported inside the commands: this module is imported by every
summarizer subprocess that ``serve`` spawns, and by shell completion.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, TypeVar

import typer

from prefect_failure_insights import BATCH_CRON, BATCH_HOURS, SUMMARIZER_DEPLOYMENT, __version__

app = typer.Typer(
    name="failure-insights",
    help="Failure summaries for Prefect flow runs: what happened, how to fix it, why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
automation_app = typer.Typer(help="Install, check or remove the automation that triggers summaries.",
                             no_args_is_help=True)
app.add_typer(automation_app, name="automation")

T = TypeVar("T")


class SummaryFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


class ListFormat(str, Enum):
    text = "text"
    json = "json"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _api_url() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().api.url or "an ephemeral local API (PREFECT_API_URL is not set)")


def run(fn: Callable[[], Awaitable[T] | T]) -> T:
    """Call ``fn`` (awaiting what it returns, if anything), turning the plugin's errors
    into one line on stderr and an exit code."""
    import inspect
    import logging

    import httpx

    from prefect_failure_insights.bundle import BundleError
    from prefect_failure_insights.exceptions import (
        ConfigurationError,
        FailureInsightsError,
        InputError,
        RunNotFailed,
        RunNotFound,
    )

    # prefect-sqlalchemy logs every engine it creates and disposes at INFO: noise on a CLI's stderr.
    logging.getLogger("prefect.SqlAlchemyConnector").setLevel(logging.WARNING)

    async def call() -> T:
        result = fn()
        return await result if inspect.isawaitable(result) else result

    try:
        return asyncio.run(call())
    except (RunNotFound, RunNotFailed, ConfigurationError, BundleError, InputError) as exc:
        raise _fail(str(exc), 2) from None
    except FailureInsightsError as exc:
        raise _fail(str(exc), 1) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _fail(
            f"Cannot reach the Prefect API at {_api_url()} ({type(exc).__name__}): start it "
            "(`prefect server start`) or point PREFECT_API_URL at it.",
            1,
        ) from None
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        hint = "check PREFECT_API_KEY and its permissions" if code in (401, 403) else "see the server's logs"
        raise _fail(f"The Prefect API at {_api_url()} answered HTTP {code}: {hint}.", 1) from None
    except httpx.HTTPError as exc:
        raise _fail(f"The Prefect API at {_api_url()} failed ({type(exc).__name__}): try again.", 1) from None


def _parse_since(value: str | None) -> datetime | None:
    """``24h``, ``7d``, ``30m`` or an ISO date/time (UTC when no zone is given)."""
    if not value:
        return None
    m = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n),
                 "w": timedelta(weeks=n)}[unit]
        return datetime.now(timezone.utc) - delta
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--since {value!r} is neither a duration like 24h/7d nor an ISO date.", 2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def _engine(settings_block: str):
    from prefect_failure_insights.config import load_database, load_settings
    from prefect_failure_insights.tasks import storage

    settings = await load_settings(settings_block)
    connector, where = await load_database(settings)
    engine = storage.engine_of(connector)
    storage.ensure_schema(engine)
    return connector, engine, where


def _print_summary(summary: Any, fmt: SummaryFormat, with_url: bool = True) -> None:
    from prefect_failure_insights.tasks.delivery import run_url
    from prefect_failure_insights.tasks.render import render_markdown, render_text

    url = run_url(summary.flow_run_id) if with_url else None
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(summary.model_dump(mode="json"), indent=2))
    elif fmt is SummaryFormat.markdown:
        typer.echo(render_markdown(summary, url))
    else:
        typer.echo(render_text(summary))
        if url:
            typer.echo(f"\nOn the run's page: {url}")


SETTINGS_OPTION = typer.Option("default", "--settings-block", help="Name of the failure-insights-settings block.")


class EvidenceFormat(str, Enum):
    text = "text"
    json = "json"


def _load_bundle(path: str):
    from prefect_failure_insights.bundle import load_bundle

    return run(lambda: load_bundle(path))


@app.command()
def summarize(
    run_id: str | None = typer.Argument(None, help="Id of the failed or crashed flow run."),
    bundle: str | None = typer.Option(None, "--bundle", help="Summarize a bundle file offline instead."),
    regenerate: bool = typer.Option(False, "--regenerate", help="Replace an existing summary."),
    fmt: SummaryFormat = typer.Option(SummaryFormat.text, "--format", help="Output format."),
    budget: int = typer.Option(6000, "--budget", min=500, max=200_000, help="Evidence token budget (bundles)."),
    llm_url: str | None = typer.Option(None, "--llm-url", help="Use this OpenAI-compatible endpoint instead."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Summarize a failed run now (the same flow the automation runs), or a bundle offline.

    The API key for --llm-url comes from the llm-credentials block or the environment
    (FAILURE_INSIGHTS_LLM_API_KEY / OPENAI_API_KEY), never from the command line.

    Examples:
        failure-insights summarize 0b7c2c1e-... --regenerate
        failure-insights summarize --bundle run.json.gz --format markdown
    """
    if (run_id is None) == (bundle is None):
        raise _fail("Give a RUN_ID or --bundle FILE (one of them).", 2)
    if bundle is not None:
        _print_summary(_summarize_bundle(bundle, budget, llm_url, llm_model), fmt, with_url=False)
        return

    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.flows.on_failure_summary import summarize_failure
        from prefect_failure_insights.tasks import storage
        from prefect_failure_insights.tasks.runs import resolve_target

        async with get_client() as client:  # fail fast, in one line, on bad input
            await resolve_target(client, run_id)
        outcome = await summarize_failure(
            flow_run_id=run_id, regenerate=regenerate, settings_block=settings_block,
            llm_url=llm_url, llm_model=llm_model,
        )
        if outcome.summary is None and outcome.action == "exists":
            connector, engine, _ = await _engine(settings_block)
            try:
                outcome.summary = storage.get(engine, outcome.flow_run_id or run_id)
            finally:
                connector.close()
        return outcome

    outcome = run(main)
    if outcome.summary is None:
        raise _fail(f"No summary made for {run_id}: {outcome.reason}", 1)
    if outcome.action == "exists":
        typer.echo("(An existing summary; use --regenerate to replace it.)", err=True)
    _print_summary(outcome.summary, fmt)


def _summarize_bundle(path: str, budget: int, llm_url: str | None = None, llm_model: str | None = None):
    """Offline: the bundle's evidence, analysed by the LLM in the environment (or the fallback)."""
    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.bundle import summarize_bundle
    from prefect_failure_insights.config import NO_LLM_HINT

    loaded = _load_bundle(path)
    llm = LLMCredentials.from_env()
    if llm_url or llm_model:
        llm = (llm or LLMCredentials()).with_overrides(llm_url, llm_model)
    settings = FailureInsightsSettings(evidence_token_budget=budget)
    return run(lambda: summarize_bundle(loaded, settings, llm, None if llm else NO_LLM_HINT))


@app.command()
def evidence(
    run_id: str | None = typer.Argument(None, help="A failed flow run (read from the Prefect API)."),
    bundle: str | None = typer.Option(None, "--bundle", help="A bundle file (no Prefect server needed)."),
    budget: int = typer.Option(6000, "--budget", min=100, max=200_000, help="Token budget."),
    fmt: EvidenceFormat = typer.Option(EvidenceFormat.text, "--format", help="Output format."),
) -> None:
    """Print exactly what would be sent to the LLM, after redaction.

    JSON: text, tokens, kept_lines (original 1-based line numbers), redactions,
    root_error, failed_task, elapsed_ms, and a few more fields.
    """
    from prefect_failure_insights.bundle import bundle_evidence

    if (run_id is None) == (bundle is None):
        raise _fail("Give a RUN_ID or --bundle FILE (one of them).", 2)
    if bundle is not None:
        loaded = _load_bundle(bundle)
    else:
        loaded = run(lambda: _export(run_id))
    ev = bundle_evidence(loaded, budget)
    if fmt is EvidenceFormat.text:
        typer.echo(ev.text)
        return
    typer.echo(json.dumps({
        "text": ev.text, "tokens": ev.tokens, "kept_lines": ev.kept_lines,
        "redactions": ev.redaction_count, "redactions_by_kind": ev.redactions,
        "root_error": ev.root_error, "root_error_line": ev.root_error_line,
        "root_error_reason": ev.root_error_reason, "failed_task": ev.failed_task,
        "exception_type": ev.exception_type, "total_lines": ev.total_lines,
        "elapsed_ms": round(ev.elapsed_ms, 1),
    }, indent=2))


async def _export(run_id: str, settings_block: str = "default"):
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.bundle import export_bundle
    from prefect_failure_insights.config import load_airbyte, load_settings
    from prefect_failure_insights.tasks.sources import configured_sources

    settings = await load_settings(settings_block)
    async with get_client() as client:
        return await export_bundle(client, run_id, configured_sources(await load_airbyte(settings)))


@app.command()
def export(
    run_id: str = typer.Argument(..., help="Id of the failed or crashed flow run."),
    output: str | None = typer.Option(None, "-o", "--output", help="File to write (.json or .json.gz)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Write a failed run (state, task runs, subflows, logs, last good run, Airbyte logs)
    as a redacted bundle."""
    from prefect_failure_insights.bundle import write_bundle

    path = output or f"run-{run_id[:8]}.json.gz"
    loaded = run(lambda: _export(run_id, settings_block))
    try:
        write_bundle(loaded, path)
    except OSError as exc:
        raise _fail(f"Cannot write {path}: {exc.strerror or exc}.", 1) from None
    typer.echo(f"Wrote {path}: {len(loaded.logs) + sum(len(s.logs) for s in loaded.subflows)} log lines, "
               f"{len(loaded.task_runs)} task runs, {len(loaded.subflows)} failed subflow(s).")


@app.command()
def show(
    run_id: str = typer.Argument(..., help="Id of the failed flow run."),
    fmt: SummaryFormat = typer.Option(SummaryFormat.markdown, "--format", help="Output format."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Print the stored summary of a run."""

    async def main():
        from prefect_failure_insights.tasks import storage

        connector, engine, where = await _engine(settings_block)
        try:
            return storage.get(engine, run_id), where
        finally:
            connector.close()

    summary, where = run(main)
    if summary is None:
        raise _fail(
            f"No summary for flow run {run_id} in {where}: make one with "
            f"`failure-insights summarize {run_id}`.",
            2,
        )
    _print_summary(summary, fmt)


@app.command("list")
def list_(
    limit: int = typer.Option(20, min=1, max=1000, help="Rows to show."),
    offset: int = typer.Option(0, min=0, help="Rows to skip."),
    category: str | None = typer.Option(None, help="Only this category, e.g. THIRD_PARTY_SYSTEM."),
    flow: str | None = typer.Option(None, help="Only runs of this flow."),
    since: str | None = typer.Option(None, help="Only summaries since: 24h, 7d or an ISO date."),
    fmt: ListFormat = typer.Option(ListFormat.text, "--format", help="Output format."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """List stored summaries, newest first, with the total count."""
    from prefect_failure_insights.models import Category

    if category and category.upper() not in Category.__members__:
        raise _fail(f"--category must be one of {', '.join(Category.__members__)}.", 2)
    since_dt = _parse_since(since)

    async def main():
        from prefect_failure_insights.tasks import storage

        connector, engine, _ = await _engine(settings_block)
        try:
            return storage.list_summaries(
                engine, limit, offset, category.upper() if category else None, flow, since_dt
            )
        finally:
            connector.close()

    rows, total = run(main)
    if fmt is ListFormat.json:
        typer.echo(json.dumps({
            "total": total, "limit": limit, "offset": offset,
            "summaries": [
                {"flow_run_id": s.flow_run_id, "flow_run_name": s.flow_run_name, "flow_name": s.flow_name,
                 "failed_at": s.failed_at.isoformat() if s.failed_at else None,
                 "category": s.analysis.category.value, "status": s.status, "title": s.analysis.title,
                 "model": s.model, "prompt_tokens": s.prompt_tokens,
                 "completion_tokens": s.completion_tokens, "latency_ms": s.latency_ms,
                 "cost_usd": s.cost_usd, "cache_hit": s.cache_hit, "same_as_run_id": s.same_as_run_id,
                 "prompt_version": s.prompt_version}
                for s in rows
            ],
        }, indent=2))
        return
    if not rows:
        typer.echo(f"No summaries (total {total}).")
        return
    typer.echo(f"{'FAILED AT (UTC)':<17} {'FLOW RUN ID':<36} {'FLOW':<22} {'CATEGORY':<18} {'HOW':<8} "
               f"{'TOKENS':>7} {'COST $':>8} TITLE")
    for s in rows:
        when = f"{s.failed_at:%Y-%m-%d %H:%M}" if s.failed_at else "-"
        how = "cache" if s.cache_hit else s.status
        tokens = (s.prompt_tokens or 0) + (s.completion_tokens or 0)
        cost = f"{s.cost_usd:.4f}" if s.cost_usd is not None else "-"
        typer.echo(f"{when:<17} {s.flow_run_id:<36} {s.flow_name[:22]:<22} {s.analysis.category.value:<18} "
                   f"{how:<8} {tokens:>7} {cost:>8} {s.analysis.title[:60]}")
    typer.echo(f"Showing {offset + 1}-{offset + len(rows)} of {total}.")


@automation_app.command("install")
def automation_install(
    deployment: str = typer.Option(SUMMARIZER_DEPLOYMENT, help="The summarizer deployment to run."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Install or update the automation, and the limit on concurrent LLM calls (safe to run again)."""

    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.automations.failure_trigger import install
        from prefect_failure_insights.config import load_settings
        from prefect_failure_insights.tasks.analysis import ensure_llm_limit

        settings = await load_settings(settings_block)
        async with get_client() as client:
            await ensure_llm_limit(client, settings)
            return await install(client, deployment)

    result = run(main)
    typer.echo(f"Automation {result.action} ({result.automation_id}): failed and crashed flow runs "
               f"now start {deployment}.")


@automation_app.command("status")
def automation_status() -> None:
    """Say whether the automation is installed and working; exit 1 if not."""

    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.automations.failure_trigger import status

        async with get_client() as client:
            return await status(client)

    st = run(main)
    if st.ok:
        typer.echo(f"Installed and enabled ({st.automation_id}), running {st.deployment_name}.")
        return
    raise _fail(f"Automation {st.problem}", 1)


@automation_app.command("uninstall")
def automation_uninstall() -> None:
    """Remove the automation; summaries stop being made (existing ones stay)."""

    async def main():
        from prefect.client.orchestration import get_client

        from prefect_failure_insights.automations.failure_trigger import uninstall

        async with get_client() as client:
            return await uninstall(client)

    removed = run(main)
    typer.echo(f"Removed {removed} automation(s)." if removed else "Nothing to remove: not installed.")


@app.command()
def doctor(settings_block: str = SETTINGS_OPTION) -> None:
    """Check the Prefect API, blocks, LLM, database and automation; a line each."""
    from prefect_failure_insights.doctor import run_checks

    checks = run(lambda: run_checks(settings_block))
    width = max(len(c.name) for c in checks)
    for c in checks:
        typer.echo(f"{c.mark} {c.name:<{width}}  {c.detail}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command()
def serve(
    poll_seconds: float = typer.Option(1.0, min=0.1, help="Seconds between polls for new flow runs."),
    limit: int = typer.Option(10, min=1, help="Most summarizer runs at once."),
    no_automation: bool = typer.Option(False, "--no-automation", help="Do not install the automation."),
    settings_block: str | None = typer.Option(None, "--settings-block", help="Settings block for every run."),
    batch_cron: str = typer.Option(BATCH_CRON, "--batch-cron",
                                   help="Schedule (cron, UTC) of the batch-insights deployment."),
    batch_hours: float = typer.Option(BATCH_HOURS, "--batch-hours", min=0.01,
                                      help="Window of each scheduled batch: the hours before its scheduled time."),
    no_batch: bool = typer.Option(False, "--no-batch", help="Serve summaries only, no batch-insights deployment."),
) -> None:
    """Serve the summarizer and the scheduled batch insights, install the automation; runs until stopped.

    Example:
    failure-insights serve --batch-cron "0 * * * *" --batch-hours 1
    """

    async def main():
        from prefect_failure_insights.serve import serve_plugin

        await serve_plugin(poll_seconds, limit, not no_automation, settings_block,
                           None if no_batch else batch_cron, batch_hours)

    run(main)


@app.command()
def demo(
    keep_server: bool = typer.Option(False, "--keep-server", help="Keep the server up to browse the UI."),
) -> None:
    """Run the end-to-end demo on a private local Prefect server, then stop everything."""
    from prefect_failure_insights.demo import run_demo

    raise typer.Exit(run_demo(keep_server=keep_server))


@app.command()
def version() -> None:
    """Print the plugin's version."""
    typer.echo(__version__)


# The batch-insights commands live in their own module; importing it registers them.
from prefect_failure_insights import cli_insights  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    # Through the importable module, so that the commands registered by cli_insights are on its app.
    from prefect_failure_insights.cli import main as _main

    sys.exit(_main())
