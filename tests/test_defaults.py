"""Each default is defined once: ``prefect.yaml``, the blocks and the CLI agree with `defaults`."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials

from prefect_failure_insights import defaults

ROOT = Path(__file__).resolve().parents[1]


def _deployments() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_prefect_yaml_matches_the_defaults() -> None:
    deployments = _deployments()
    summarizer = deployments[defaults.SUMMARIZER_DEPLOYMENT_NAME]
    assert summarizer["entrypoint"] == "prefect_failure_insights.flows.on_failure_summary:summarize_failure"
    assert summarizer["parameters"] == {"settings_block": defaults.DEFAULT_BLOCK_NAME}
    assert summarizer["tags"] == [defaults.PLUGIN_TAG]

    batch = deployments[defaults.BATCH_DEPLOYMENT_NAME]
    assert batch["entrypoint"] == "prefect_failure_insights.flows.batch_insights:batch_insights"
    assert batch["parameters"] == {"hours": defaults.BATCH_HOURS, "settings_block": defaults.DEFAULT_BLOCK_NAME}
    assert batch["schedules"] == [{"cron": defaults.BATCH_CRON, "timezone": defaults.BATCH_TIMEZONE}]
    assert batch["tags"] == [defaults.PLUGIN_TAG]

    reconcile = deployments[defaults.RECONCILE_DEPLOYMENT_NAME]
    assert reconcile["entrypoint"] == "prefect_failure_insights.flows.reconcile:reconcile_summaries"
    assert reconcile["parameters"] == {"hours": defaults.RECONCILE_HOURS, "settings_block": defaults.DEFAULT_BLOCK_NAME}
    assert reconcile["schedules"] == [{"cron": defaults.RECONCILE_CRON, "timezone": "UTC"}]

    retry = deployments[defaults.RETRY_DEPLOYMENT_NAME]
    assert retry["entrypoint"] == "prefect_failure_insights.flows.retry_transient_failure:retry_transient_failure"
    assert retry["parameters"] == {"settings_block": defaults.DEFAULT_BLOCK_NAME}
    assert "schedules" not in retry  # started by its automation only


def test_prefect_yaml_entrypoints_are_the_flows_with_the_default_names() -> None:
    from prefect_failure_insights.flows.batch_insights import batch_insights
    from prefect_failure_insights.flows.on_failure_summary import summarize_failure

    assert summarize_failure.name == defaults.SUMMARIZER_FLOW and batch_insights.name == defaults.BATCH_FLOW
    assert summarize_failure.timeout_seconds == defaults.SUMMARIZER_TIMEOUT_SECONDS
    from prefect_failure_insights.flows.reconcile import reconcile_summaries

    assert reconcile_summaries.name == defaults.RECONCILE_FLOW
    from prefect_failure_insights.flows.retry_transient_failure import retry_transient_failure

    assert retry_transient_failure.name == defaults.RETRY_FLOW and defaults.RETRY_FLOW in defaults.OWN_FLOWS


def test_blocks_take_their_defaults_from_the_defaults_module() -> None:
    settings = FailureInsightsSettings()
    assert settings.evidence_token_budget == defaults.EVIDENCE_TOKEN_BUDGET
    assert settings.max_log_wait_seconds == defaults.MAX_LOG_WAIT_SECONDS
    assert settings.llm_deadline_seconds == defaults.LLM_DEADLINE_SECONDS
    assert settings.max_concurrent_llm_calls == defaults.MAX_CONCURRENT_LLM_CALLS
    llm = LLMCredentials()
    assert (llm.base_url, llm.model, llm.timeout, llm.max_retries) == (
        defaults.LLM_BASE_URL, defaults.LLM_MODEL, defaults.LLM_TIMEOUT_SECONDS, defaults.LLM_MAX_RETRIES)


def test_the_cli_options_take_their_defaults_from_the_defaults_module() -> None:
    import typer.main

    from prefect_failure_insights.cli import app

    def commands(group, prefix: str = ""):
        for name, sub in group.commands.items():
            yield f"{prefix}{name}", sub
            if hasattr(sub, "commands"):
                yield from commands(sub, f"{prefix}{name} ")

    params = {(name, p.name): p for name, sub in commands(typer.main.get_command(app))
              for p in getattr(sub, "params", [])}
    assert params[("summary create", "budget")].default == defaults.EVIDENCE_TOKEN_BUDGET
    assert params[("summary evidence", "budget")].default == defaults.EVIDENCE_TOKEN_BUDGET
    assert params[("summary create", "budget")].min == params[("summary evidence", "budget")].min \
        == defaults.EVIDENCE_TOKEN_BUDGET_MIN
    assert params[("batch run", "hours")].default == defaults.BATCH_HOURS
    assert params[("batch run", "max_runs")].default == defaults.BATCH_MAX_RUNS
    # The previous release's names take the same options.
    assert params[("summarize", "budget")].default == defaults.EVIDENCE_TOKEN_BUDGET
    assert params[("insights", "hours")].default == defaults.BATCH_HOURS
    assert params[("serve", "batch_cron")].default == defaults.BATCH_CRON
    assert params[("serve", "poll_seconds")].default == defaults.SERVE_POLL_SECONDS
