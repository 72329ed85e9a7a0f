"""``failure-insights serve``, ``doctor``, ``demo`` and ``version``."""

from __future__ import annotations

import typer

from prefect_failure_insights import __version__
from prefect_failure_insights.cli.common import SETTINGS_OPTION, echo, run
from prefect_failure_insights.defaults import (
    BATCH_CRON,
    BATCH_HOURS,
    RECONCILE_HOURS,
    SERVE_LIMIT,
    SERVE_POLL_SECONDS,
)


def serve(
    poll_seconds: float = typer.Option(SERVE_POLL_SECONDS, min=0.1, help="Seconds between polls for new flow runs."),
    limit: int = typer.Option(SERVE_LIMIT, min=1, help="Most summarizer runs at once."),
    no_automation: bool = typer.Option(False, "--no-automation", help="Do not install the automation."),
    settings_block: str | None = typer.Option(None, "--settings-block", help="Settings block for every run."),
    batch_cron: str = typer.Option(BATCH_CRON, "--batch-cron",
                                   help="Schedule (cron, UTC) of the batch-insights deployment."),
    batch_hours: float = typer.Option(BATCH_HOURS, "--batch-hours", min=0.01,
                                      help="Window of each scheduled batch: the hours before its scheduled time."),
    no_batch: bool = typer.Option(False, "--no-batch", help="Serve summaries only, no batch-insights deployment."),
    reconcile_hours: float = typer.Option(RECONCILE_HOURS, "--reconcile-hours", min=0,
                                          help="Summarize failures of these last hours that have no summary (at "
                                               "start, then hourly); 0: only replace dead summarizers."),
) -> None:
    """Serve the summarizer and the scheduled batch insights, install the automation; runs until stopped.

    Example:
    failure-insights serve --batch-cron "0 * * * *" --batch-hours 1
    """

    async def main():
        from prefect_failure_insights.serve.service import serve_plugin

        await serve_plugin(poll_seconds, limit, not no_automation, settings_block=settings_block,
                           batch_cron=None if no_batch else batch_cron, batch_hours=batch_hours,
                           reconcile_hours=reconcile_hours)

    run(main)


def doctor(settings_block: str = SETTINGS_OPTION) -> None:
    """Check the Prefect API, blocks, LLM, database and automation; a line each."""
    from prefect_failure_insights.cli.doctor import run_checks

    checks = run(lambda: run_checks(settings_block))
    width = max(len(c.name) for c in checks)
    for c in checks:
        echo(f"{c.mark} {c.name:<{width}}  {c.detail}")
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def demo(
    keep_server: bool = typer.Option(False, "--keep-server", help="Keep the server up to browse the UI."),
) -> None:
    """Run the end-to-end demo on a private local Prefect server, then stop everything."""
    from prefect_failure_insights.demo import run_demo

    raise typer.Exit(run_demo(keep_server=keep_server))


def version() -> None:
    """Print the plugin's version."""
    echo(__version__)
