"""Batch-insights commands of the ``failure-insights`` CLI: insights, classify, eval,
corrections import, rules suggest. Registered on the main app by `cli`."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from prefect_failure_insights.cli import SETTINGS_OPTION, _engine, _fail, _parse_since, app, run

corrections_app = typer.Typer(help="Teach the classifier: import corrected categories.", no_args_is_help=True)
rules_app = typer.Typer(help="Classification rules: suggest new ones from corrections and LLM answers.",
                        no_args_is_help=True)
app.add_typer(corrections_app, name="corrections")
app.add_typer(rules_app, name="rules")


class InsightsFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"
    csv = "csv"


class RowsFormat(str, Enum):
    json = "json"
    csv = "csv"


class EvalFormat(str, Enum):
    text = "text"
    json = "json"


def _write(text: str, output: Path | None) -> None:
    """To stdout, or atomically to ``output`` (never a half-written file)."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    typer.echo(f"Wrote {output}", err=True)


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a JSONL file; one bad line is a one-line error naming it."""
    from prefect_failure_insights.exceptions import InputError

    if not path.is_file():
        raise InputError(f"No such file: {path}.")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {number}: expected a JSON object.")
            for key in required:
                if not isinstance(row.get(key), str) or not row[key].strip():
                    raise InputError(f"{path}, line {number}: '{key}' is missing or empty.")
            rows.append(row)
    if not rows:
        raise InputError(f"{path} holds no rows.")
    return rows


async def _classifier(settings_block: str, no_llm: bool, llm_url: str | None, llm_model: str | None):
    """A `Classifier` with the workspace's settings, corrections and LLM; offline, the defaults."""
    import httpx
    from prefect.settings import get_current_settings

    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.config import default_database_path, load_llm, load_settings, sqlite_connector
    from prefect_failure_insights.tasks import corrections, storage
    from prefect_failure_insights.tasks.analysis import over_budget
    from prefect_failure_insights.tasks.classify import Classifier

    settings, connector, engine = FailureInsightsSettings(), None, None
    if not get_current_settings().api.url:
        # No Prefect API configured: no blocks to read (and no temporary server to start);
        # the default SQLite database still holds the corrections.
        connector = sqlite_connector(default_database_path())
        engine = storage.engine_of(connector)
        storage.ensure_schema(engine)
        offline = True
    else:
        offline = False
        try:
            settings = await load_settings(settings_block)
            connector, engine, _ = await _engine(settings_block)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            typer.echo("Note: the Prefect API is unreachable: default settings, no corrections, "
                       "the LLM from the environment.", err=True)
            offline = True
    llm = None
    if not no_llm:
        if offline:
            base = LLMCredentials.from_env()
            llm = base.with_overrides(llm_url, llm_model) if base and (llm_url or llm_model) else base
            if llm is None and llm_url:
                llm = LLMCredentials().with_overrides(llm_url, llm_model)
        else:
            llm = (await load_llm(settings, llm_url, llm_model)).credentials
    known = corrections.load(engine) if engine is not None else []
    classifier = Classifier(settings, corrections=known, llm=llm, engine=engine,
                            budget_check=(lambda: over_budget(engine, settings)) if engine is not None else None)
    return classifier, connector


def _classify_rows(rows: list[dict], settings_block: str, no_llm: bool, llm_url: str | None,
                   llm_model: str | None) -> list:
    from prefect_failure_insights.tasks.classify import ErrorItem

    async def go():
        classifier, connector = await _classifier(settings_block, no_llm, llm_url, llm_model)
        try:
            items = [ErrorItem(id=str(r.get("id", i)), error_text=r["error_text"],
                               exception_type=r.get("exception_type") or None) for i, r in enumerate(rows, 1)]
            return await classifier.classify(items)
        finally:
            if connector is not None:
                connector.close()

    return run(go)


@app.command()
def classify(
    input_path: Path = typer.Option(..., "--input", "-i", help="JSONL: error_text, optional id and exception_type."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections and rules only."),
    fmt: RowsFormat = typer.Option(RowsFormat.json, "--format", help="json (one object per line) or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    llm_url: str | None = typer.Option(None, "--llm-url", help="Use this OpenAI-compatible endpoint instead."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Classify arbitrary error texts: one result per input line, in the same order.

    Example:
        failure-insights classify --input errors.jsonl --no-llm
    """
    rows = run(lambda: _read_jsonl(input_path, ("error_text",)))
    results = _classify_rows(rows, settings_block, no_llm, llm_url, llm_model)
    fields = ("id", "category", "confidence", "classified_by", "reasoning")
    if fmt is RowsFormat.json:
        text = "".join(json.dumps({k: getattr(r, k) for k in fields}) + "\n" for r in results)
    else:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(fields)
        writer.writerows([[getattr(r, k) for k in fields] for r in results])
        text = buffer.getvalue()
    _write(text, output)


@app.command("eval")
def eval_(
    input_path: Path = typer.Option(..., "--input", "-i", help="JSONL: error_text and label (optional exception_type)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections and rules only."),
    fmt: EvalFormat = typer.Option(EvalFormat.text, "--format", help="text or json."),
    llm_url: str | None = typer.Option(None, "--llm-url", help="Use this OpenAI-compatible endpoint instead."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Measure the classifier on labelled error texts: accuracy, precision/recall, confusion, UNKNOWN rate.

    Example:
        failure-insights eval --input labeled.jsonl --no-llm
    """
    from prefect_failure_insights.tasks.classify import Taxonomy
    from prefect_failure_insights.tasks.evaluation import evaluate, render

    rows = run(lambda: _read_jsonl(input_path, ("error_text", "label")))
    taxonomy = Taxonomy()
    try:
        labels = [taxonomy.parse(r["label"]) for r in rows]
    except ValueError as exc:
        raise _fail(f"{input_path}: {exc}.", 2) from None
    results = _classify_rows(rows, settings_block, no_llm, llm_url, llm_model)
    result = evaluate(labels, [r.category for r in results], [r.classified_by for r in results])
    typer.echo(json.dumps(result, indent=2) if fmt is EvalFormat.json else render(result))


@app.command()
def insights(
    hours: float = typer.Option(24.0, "--hours", min=0.01, help="Window length, ending now."),
    since: str | None = typer.Option(None, "--since", help="Window start: ISO time or a duration like 7d."),
    until: str | None = typer.Option(None, "--until", help="Window end (exclusive): ISO time."),
    tag: list[str] = typer.Option([], "--tag", help="Only runs with this tag (repeatable)."),
    deployment: list[str] = typer.Option([], "--deployment", help="Only this deployment (repeatable)."),
    flow: list[str] = typer.Option([], "--flow", help="Only this flow (repeatable)."),
    work_pool: list[str] = typer.Option([], "--work-pool", help="Only this work pool (repeatable)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections, rules and cache only."),
    llm_url: str | None = typer.Option(None, "--llm-url", help="Use this OpenAI-compatible endpoint instead."),
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    max_runs: int = typer.Option(5000, "--max-runs", min=1, help="Most failed runs to read (newest first)."),
    fmt: InsightsFormat = typer.Option(InsightsFormat.text, "--format", help="text, markdown, json or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every error (text format)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Classify every failure of a window and report trends (runs the batch-insights flow).

    Examples:
        failure-insights insights --hours 24
        failure-insights insights --since 2026-11-01 --until 2026-11-08 --format csv -o week.csv
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prefect_failure_insights.flows import batch_insights as module
    from prefect_failure_insights.tasks import report

    start = _parse_since(since)
    end: datetime | None = None
    if until:
        end = _parse_since(until)
    run(lambda: module.resolve_window(hours, start, end))  # an empty window: one line, exit 2

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, disable=not sys.stderr.isatty(), console=None) as progress:
        bars: dict[str, Any] = {}

        def hook(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        module.progress_hook = hook
        try:
            result = run(lambda: module.batch_insights(
                hours=hours, since=start, until=end, tags=tag, deployments=deployment, flows=flow,
                work_pools=work_pool, max_runs=max_runs, use_llm=not no_llm, llm_url=llm_url,
                llm_model=llm_model, settings_block=settings_block,
            ))
        finally:
            module.progress_hook = None

    rows, metrics = result.rows, result.metrics
    if fmt is InsightsFormat.markdown:
        text = result.report
    elif fmt is InsightsFormat.json:
        text = report.to_json(rows, {**metrics, "batch_id": result.batch_id,
                                     "window": [result.window_start.isoformat(), result.window_end.isoformat()]},
                              result.previous_rows)
    elif fmt is InsightsFormat.csv:
        text = report.to_csv(rows)
    else:
        text = _text_report(result, verbose)
    _write(text, output)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _text_report(result: Any, verbose: bool) -> str:
    from collections import Counter

    from prefect_failure_insights.tasks.report import breakdown, patterns

    rows, m = result.rows, result.metrics
    by = m.get("classified_by", {})
    lines = [
        f"Window {result.window_start:%Y-%m-%d %H:%M} - {result.window_end:%Y-%m-%d %H:%M} UTC, batch {result.batch_id}",
        f"{_count(m['runs_queried'], 'failed run')}, {_count(len(rows), 'error')}; "
        f"classified by correction {by.get('correction', 0)}, "
        f"rules {by.get('rule', 0)}, cache {by.get('cache', 0)}, LLM {by.get('llm', 0)}; unknown {m['unknown']}; "
        f"{m['duration_s']:.1f} s",
    ]
    if m.get("llm_tokens"):
        lines.append(f"LLM: {m['llm_calls']} calls, {m['llm_tokens']} tokens, est. ${m.get('llm_cost_usd', 0):.4f}")
    lines.append("")
    total = len(rows) or 1
    for name, n in Counter(r["category"] for r in rows).most_common():
        lines.append(f"  {name:<20} {n:>5}  {100 * n / total:5.1f}%")
    lines += ["", "Top flows:"]
    lines += [f"  {v:<40} {n:>5}" for v, n, _ in breakdown(rows, "flow_name")[:10]]
    lines += ["", "Top recurring errors:"]
    lines += [f"  {p['count']:>4}x {p['category']:<19} {p['signature'][:90]}" for p in patterns(rows)[:10]]
    if verbose:
        lines += ["", "Errors:"]
        lines += [f"  {r['flow_run_name']:<30} {r['category']:<19} {r['classified_by']:<22} "
                  f"{' '.join(r['error_text'].split())[:80]}" for r in rows]
    return "\n".join(lines)


@corrections_app.command("import")
def corrections_import(
    path: Path = typer.Argument(..., help="CSV: the insights export with 'Corrected Category' filled in, "
                                          "or error text / run id + corrected category (+ who)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Store corrected categories; they apply from the next classification on.

    Example:
        failure-insights corrections import week.csv
    """
    from prefect_failure_insights.config import load_settings
    from prefect_failure_insights.tasks import corrections
    from prefect_failure_insights.tasks.classify import Taxonomy

    async def go():
        settings = await load_settings(settings_block)
        connector, engine, where = await _engine(settings_block)
        try:
            return corrections.import_csv(engine, path, Taxonomy(settings.extra_categories)), where
        finally:
            connector.close()

    result, where = run(go)
    typer.echo(f"Imported {result.imported} corrections into {where}"
               + (f" ({result.skipped} rows without a corrected category skipped)." if result.skipped else "."))


@rules_app.command("suggest")
def rules_suggest(
    min_count: int = typer.Option(1, "--min-count", min=1, help="Only patterns seen at least this often."),
    fmt: EvalFormat = typer.Option(EvalFormat.text, "--format", help="text or json (for extra_rules)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Propose rules from corrections and LLM-classified errors that the rules miss.

    Example:
        failure-insights rules suggest --min-count 2
    """
    from prefect_failure_insights.config import load_settings
    from prefect_failure_insights.tasks.classify import Taxonomy, user_rules
    from prefect_failure_insights.tasks.rules import RULES
    from prefect_failure_insights.tasks.suggest import suggest

    async def go():
        settings = await load_settings(settings_block)
        connector, engine, _ = await _engine(settings_block)
        try:
            return suggest(engine, min_count, user_rules(settings, Taxonomy(settings.extra_categories)) + RULES)
        finally:
            connector.close()

    found = run(go)
    if fmt is EvalFormat.json:
        typer.echo(json.dumps([s.as_setting() for s in found], indent=2))
        return
    if not found:
        typer.echo("No suggestions: the rules already classify every correction and LLM answer the same way.")
        return
    for s in found:
        typer.echo(f"{s.count:>4}x  {s.category:<20} {s.name}  (from {', '.join(sorted(s.sources))})")
        typer.echo(f"      {json.dumps(s.as_setting())}")
        for example in s.examples:
            typer.echo(f"        e.g. {example}")
    typer.echo("\nAdd the ones you agree with to the settings block's extra_rules "
               "(or to tasks/rules.py), then run `failure-insights eval` to check.")
