"""``failure-insights automation install|status|uninstall``: the trigger of the summaries."""

from __future__ import annotations

import typer

from prefect_failure_insights.cli.common import SETTINGS_OPTION, echo, fail, with_client
from prefect_failure_insights.defaults import SUMMARIZER_DEPLOYMENT

app = typer.Typer(help="Install, check or remove the automation that triggers summaries.", no_args_is_help=True)


@app.command("install")
def automation_install(
    deployment: str = typer.Option(SUMMARIZER_DEPLOYMENT, help="The summarizer deployment to run."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Install or update the automation, and the limit on concurrent LLM calls (safe to run again)."""

    from prefect_failure_insights.automations.failure_trigger import install
    from prefect_failure_insights.blocks.loading import load_settings
    from prefect_failure_insights.prefect_api.concurrency import ensure_llm_limit

    async def go(client):
        await ensure_llm_limit(client, await load_settings(settings_block))
        return await install(client, deployment)

    result = with_client(go)
    echo(f"Automation {result.action} ({result.automation_id}): failed and crashed flow runs "
               f"now start {deployment}.")


@app.command("status")
def automation_status() -> None:
    """Say whether the automation is installed and working; exit 1 if not."""

    from prefect_failure_insights.automations.failure_trigger import status

    st = with_client(status)
    if st.ok:
        echo(f"Installed and enabled ({st.automation_id}), running {st.deployment_name}.")
        return
    raise fail(f"Automation {st.problem}", 1)


@app.command("uninstall")
def automation_uninstall() -> None:
    """Remove the automation; summaries stop being made (existing ones stay)."""

    from prefect_failure_insights.automations.failure_trigger import uninstall

    removed = with_client(uninstall)
    echo(f"Removed {removed} automation(s)." if removed else "Nothing to remove: not installed.")
