"""``failure-insights retry install|status|uninstall``: automatic retries of transient failures and
infrastructure crashes (opt-in), and a decision on every failure."""

from __future__ import annotations

import typer

from prefect_failure_insights.cli.common import echo, fail, run, with_client
from prefect_failure_insights.cli.notify import categories_option
from prefect_failure_insights.defaults import (
    RETRY_CATEGORIES,
    RETRY_CRASHED,
    RETRY_DELAY_SECONDS,
    RETRY_MAX_RETRIES,
    RETRY_OOM,
)

app = typer.Typer(help="Retry a deployment's run whose failure summary says TRANSIENT, or that its infrastructure "
                       "crashed (opt-in); every failure's summary says whether and why.",
                  no_args_is_help=True)


@app.command("install")
def retry_install(
    max_retries: int = typer.Option(RETRY_MAX_RETRIES, "--max-retries", help="Most automatic retries per run."),
    delay: float = typer.Option(RETRY_DELAY_SECONDS, "--delay", help="Seconds between the failure and the retry."),
    category: list[str] = typer.Option(None, "--category",
                                       help=f"Retry transient failures of these categories (repeatable; default "
                                            f"{', '.join(RETRY_CATEGORIES)})."),
    crashed: bool = typer.Option(RETRY_CRASHED, "--crashed",
                                 help="Also retry runs that crashed for infrastructure reasons: evicted, preempted, "
                                      "node lost, pod never started, SIGTERM."),
    oom: bool = typer.Option(RETRY_OOM, "--oom",
                             help="With --crashed, also runs killed for running out of memory (OOMKilled, exit "
                                  "code 137, SIGKILL: a process worker cannot tell them apart)."),
) -> None:
    """Install or update (safe to run again) the automation that decides on every failure of a
    deployment's run and retries the transient ones (and, with --crashed, infrastructure crashes)."""
    from prefect_failure_insights.automations.retry import check_limits, crashed_scope, install

    cats = run(lambda: categories_option(category)) or RETRY_CATEGORIES
    run(lambda: check_limits(max_retries, delay, crashed=crashed, oom=oom))
    result = with_client(lambda client: install(client, max_retries, delay, categories=cats, crashed=crashed,
                                                oom=oom))
    echo(f"Retry automation {result.action} ({result.automation_id}): transient {', '.join(cats)} failures "
         f"of deployment runs are retried {delay:g} s later, at most {max_retries} time(s) per run; "
         f"{crashed_scope(crashed, oom)}. Every failure's summary says whether it was retried, and why.")


@app.command("status")
def retry_status() -> None:
    """Say whether automatic retries are on; exit 1 if the automation has a problem."""
    from prefect_failure_insights.automations.retry import status

    st = with_client(status)
    if st.problem:
        raise fail(f"Retry automation: {st.problem}", 1)
    echo(f"Installed and {'enabled' if st.enabled else 'disabled'}: {st.detail}." if st.installed
               else f"Automatic retries are off: {st.detail}.")


@app.command("uninstall")
def retry_uninstall() -> None:
    """Remove the retry automation (runs already scheduled for a retry keep it)."""
    from prefect_failure_insights.automations.retry import uninstall

    removed = with_client(uninstall)
    echo("Removed the retry automation." if removed else "Nothing to remove: not installed.")
