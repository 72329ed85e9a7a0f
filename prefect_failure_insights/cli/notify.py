"""``failure-insights notify install|status|uninstall``: the summary in the notifications people get."""

from __future__ import annotations

import typer

from prefect_failure_insights.cli.common import echo, fail, with_client
from prefect_failure_insights.models import Category

app = typer.Typer(help="Send every failure summary through a Prefect notification block (Slack, Teams, "
                       "e-mail, PagerDuty, a webhook).", no_args_is_help=True)


def categories_option(values: list[str] | None) -> tuple[str, ...]:
    """The ``--category`` values, checked; InputError for one outside the taxonomy."""
    from prefect_failure_insights.exceptions import InputError

    known = [c.value for c in Category]
    out = []
    for value in values or []:
        if value.upper() not in known:
            raise InputError(f"--category {value!r} is not a category: use one of {', '.join(known)}.")
        out.append(value.upper())
    return tuple(out)


@app.command("install")
def notify_install(
    block: str = typer.Option(..., "--block", help="The notification block, SLUG/NAME (e.g. slack-webhook/ops)."),
    category: list[str] = typer.Option(None, "--category", help="Only these categories (repeatable)."),
    tag: list[str] = typer.Option(None, "--tag", help="Only runs with one of these tags (repeatable)."),
    deployment: list[str] = typer.Option(None, "--deployment",
                                         help="Only runs of these deployments, FLOW/DEPLOYMENT (repeatable)."),
    include_provisional: bool = typer.Option(False, "--include-provisional",
                                             help="Also notify about the provisional summary (then twice per failure)."),
) -> None:
    """Install or update (safe to run again) the automation that sends each summary through BLOCK."""
    from prefect_failure_insights.automations.notify import install
    from prefect_failure_insights.cli.common import run

    cats = run(lambda: categories_option(category))
    result = with_client(lambda client: install(client, block, cats, tags=tuple(tag or ()),
                                                deployments=tuple(deployment or ()),
                                                include_provisional=include_provisional))
    which = "provisional and final summaries" if include_provisional else "final summaries"
    echo(f"Notification automation {result.action} ({result.automation_id}): {which} are sent "
               f"through {block}.")


@app.command("status")
def notify_status() -> None:
    """List the notification automations; exit 1 if there is none or one has a problem."""
    from prefect_failure_insights.automations.notify import status

    found = with_client(status)
    if not found:
        raise fail("No notification automation: `failure-insights notify install --block SLUG/NAME` adds one.", 1)
    for st in found:
        state = "enabled" if st.enabled else "disabled"
        echo(f"{st.block}: {state}, {st.scope}" + (f" -- problem: {st.problem}" if st.problem else ""))
    if any(st.problem for st in found):
        raise typer.Exit(1)


@app.command("uninstall")
def notify_uninstall(
    block: str = typer.Option(None, "--block", help="The block whose automation to remove (default: all)."),
) -> None:
    """Remove the notification automation of BLOCK, or all of them."""
    from prefect_failure_insights.automations.notify import uninstall

    removed = with_client(lambda client: uninstall(client, block))
    echo(f"Removed {removed} notification automation(s)." if removed else "Nothing to remove.")
