"""The ``failure-insights`` command line: nouns then verbs, one module per noun.

    failure-insights serve | demo | doctor | eval | version      running and checking the plugin
    failure-insights summary create|show|list|evidence|export|reconcile
    failure-insights batch run|classify          corrections import      rules suggest
    failure-insights automation|notify|retry install|status|uninstall

The five top-level verbs are the ones that act on the plugin as a whole; everything that acts on
a thing (a summary, a batch, an automation) is under its noun. `common` holds what every command
shares (errors, exit codes, options, output). The names of the previous release
(``summarize``, ``show``, ``list``, ``evidence``, ``export``, ``reconcile``, ``insights``,
``classify``) still work for one release, hidden, and say what they are called now.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from prefect_failure_insights.cli import automation, batch, notify, retry, service, summary
from prefect_failure_insights.cli.common import quiet_engine_logs

RUNNING, SUMMARIES, BATCHES, AUTOMATIONS = "Running the plugin", "Failure summaries", "Batch insights", "Automations"

app = typer.Typer(
    name="failure-insights",
    help="Failure summaries for Prefect flow runs: what happened, how to fix it, why.\n\n"
         "Start with `failure-insights serve` (stays in the foreground) in your Prefect workspace "
         "(PREFECT_API_URL), or `failure-insights demo` on a private local server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
@app.callback()
def _everywhere(ctx: typer.Context,
                verbose: bool = typer.Option(False, "--verbose", "-v",
                                             help="Show Prefect's engine logs on the terminal too.")) -> None:
    # `serve` is a service: its terminal is its operations log, as a Prefect worker's is.
    if not verbose and ctx.invoked_subcommand != "serve":
        quiet_engine_logs()


for name, command in (("serve", service.serve), ("demo", service.demo), ("doctor", service.doctor),
                      ("eval", batch.eval_), ("version", service.version)):
    app.command(name, rich_help_panel=RUNNING)(command)
app.add_typer(summary.app, name="summary", rich_help_panel=SUMMARIES)
app.add_typer(batch.app, name="batch", rich_help_panel=BATCHES)
app.add_typer(batch.corrections_app, name="corrections", rich_help_panel=BATCHES)
app.add_typer(batch.rules_app, name="rules", rich_help_panel=BATCHES)
app.add_typer(automation.app, name="automation", rich_help_panel=AUTOMATIONS)
app.add_typer(notify.app, name="notify", rich_help_panel=AUTOMATIONS)
app.add_typer(retry.app, name="retry", rich_help_panel=AUTOMATIONS)


def _renamed(old: str, new: str, command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` under its previous name: the same options, and a note on stderr."""

    @functools.wraps(command)
    def previous_name(*args: Any, **kwargs: Any) -> Any:
        typer.echo(f"Note: `failure-insights {old}` is now `failure-insights {new}`; the old name goes in the "
                   "next release.", err=True)
        return command(*args, **kwargs)

    return previous_name


#: The previous release's names -> (the new name, the command), hidden, for one release.
RENAMED = {
    "summarize": ("summary create", summary.create), "show": ("summary show", summary.show),
    "list": ("summary list", summary.list_), "evidence": ("summary evidence", summary.evidence),
    "export": ("summary export", summary.export), "reconcile": ("summary reconcile", summary.reconcile),
    "insights": ("batch run", batch.run_batch), "classify": ("batch classify", batch.classify),
}
for old, (new, command) in RENAMED.items():
    app.command(old, hidden=True)(_renamed(old, new, command))


def main() -> None:
    app()
