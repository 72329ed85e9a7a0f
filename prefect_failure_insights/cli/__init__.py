"""The ``failure-insights`` command line: nouns then verbs, one module per group of commands.

`common` (errors, exit codes, shared options), `summaries` (summarize, evidence, export,
show, list, reconcile), `automation`, `notify`, `retry`, `insights` (insights, classify, eval, corrections, rules),
`service` (serve, doctor, demo, version), `doctor` (the checks). See `common` for the
exit codes scripts can rely on.
"""

from __future__ import annotations

import typer

from prefect_failure_insights.cli import automation, insights, notify, retry, service, summaries

app = typer.Typer(
    name="failure-insights",
    help="Failure summaries for Prefect flow runs: what happened, how to fix it, why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (summaries.summarize, summaries.evidence, summaries.export, summaries.show, summaries.reconcile):
    app.command()(command)
app.command("list")(summaries.list_)
app.add_typer(automation.app, name="automation")
app.add_typer(notify.app, name="notify")
app.add_typer(retry.app, name="retry")
app.command()(insights.insights)
app.command()(insights.classify)
app.command("eval")(insights.eval_)
app.add_typer(insights.corrections_app, name="corrections")
app.add_typer(insights.rules_app, name="rules")
for command in (service.doctor, service.serve, service.demo, service.version):
    app.command()(command)


def main() -> None:
    app()
