"""Batch-insights commands: ``batch run``, ``batch classify``, ``corrections import``,
``rules suggest``, and ``eval`` (how well the classifier does on labelled texts)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from prefect_failure_insights.cli.common import (
    LLM_KEY_ENV_OPTION,
    LLM_URL_OPTION,
    SETTINGS_OPTION,
    TextOrJson,
    echo,
    fail,
    llm_endpoint,
    open_database,
    output_file,
    parse_since,
    run,
    write_output,
)
from prefect_failure_insights.defaults import BATCH_HOURS, BATCH_MAX_RUNS

if TYPE_CHECKING:
    from prefect_failure_insights.models import LLMEndpoint

app = typer.Typer(help="Batch insights: classify every failure of a window and report trends.",
                  no_args_is_help=True)
corrections_app = typer.Typer(help="Teach the classifier: import corrected categories.", no_args_is_help=True)
rules_app = typer.Typer(help="Classification rules: suggest new ones from corrections and LLM answers.",
                        no_args_is_help=True)


class InsightsFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"
    csv = "csv"


class RowsFormat(str, Enum):
    json = "json"
    csv = "csv"


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a JSONL file; one bad line (not UTF-8, not JSON, too long) or a file too large is a
    one-line error naming it."""
    from prefect_failure_insights.defaults import CLASSIFY_MAX_FILE_BYTES, CLASSIFY_MAX_LINE_CHARS
    from prefect_failure_insights.exceptions import InputError

    if not path.is_file():
        raise InputError(f"No such file: {path}.")
    size = path.stat().st_size
    if size > CLASSIFY_MAX_FILE_BYTES:
        raise InputError(f"{path} is {size:,} bytes, more than the {CLASSIFY_MAX_FILE_BYTES:,} accepted: split it "
                         "into smaller files.")
    rows = []
    number = 0
    try:
        with path.open(encoding="utf-8") as fh:
            while line := fh.readline(CLASSIFY_MAX_LINE_CHARS + 1):
                number += 1
                if len(line) > CLASSIFY_MAX_LINE_CHARS:
                    raise InputError(f"{path}, line {number}: longer than {CLASSIFY_MAX_LINE_CHARS:,} characters; "
                                     "shorten its error_text (only its start and end matter).")
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
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason}, at or after line {number + 1}): give a JSONL "
                         "file, one JSON object per line.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not rows:
        raise InputError(f"{path} holds no rows.")
    return rows


async def _classifier(settings_block: str, no_llm: bool, endpoint: LLMEndpoint | None, llm_model: str | None):
    """A `Classifier` with the workspace's settings, corrections and LLM, and its database;
    offline (no Prefect API), the defaults and the default SQLite database."""
    import httpx
    from prefect.settings import get_current_settings

    from prefect_failure_insights.analysis.classifier import open_classifier
    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.blocks.loading import (
        default_database,
        load_llm,
        load_settings,
    )

    settings, database, offline = FailureInsightsSettings(), None, True
    if not get_current_settings().api.url:
        # No Prefect API configured: no blocks to read (and no temporary server to start);
        # the default SQLite database still holds the corrections.
        database = default_database()
    else:
        try:
            settings = await load_settings(settings_block)
            database = await open_database(settings_block)
            offline = False
        except (httpx.ConnectError, httpx.ConnectTimeout):
            echo("Note: the Prefect API is unreachable: default settings, no corrections, "
                       "the LLM from the environment.", err=True)
    llm = None
    if not no_llm:
        url, key = (endpoint.url, endpoint.api_key) if endpoint is not None else (None, None)
        if offline:
            base = LLMCredentials.from_env()
            llm = base.with_overrides(url, llm_model, api_key=key) if base and (url or llm_model) else base
            if llm is None and url:
                llm = LLMCredentials().with_overrides(url, llm_model, api_key=key)
        else:
            llm = (await load_llm(settings, endpoint, llm_model)).credentials
    return await open_classifier(settings, database, llm), database


def _classify_rows(rows: list[dict], settings_block: str, no_llm: bool, endpoint: LLMEndpoint | None,
                   llm_model: str | None) -> list:
    from prefect_failure_insights.models import ErrorItem

    async def go():
        classifier, database = await _classifier(settings_block, no_llm, endpoint, llm_model)
        try:
            items = [ErrorItem(id=str(r.get("id", i)), error_text=r["error_text"],
                               exception_type=r.get("exception_type") or None) for i, r in enumerate(rows, 1)]
            return await classifier.classify(items)
        finally:
            if database is not None:
                await database.aclose()

    return run(go)


@app.command("classify")
def classify(
    input_path: Path = typer.Option(..., "--input", "-i", help="JSONL: error_text, optional id and exception_type."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections and rules only."),
    fmt: RowsFormat = typer.Option(RowsFormat.json, "--format", help="json (one object per line) or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    llm_url: str | None = LLM_URL_OPTION,
    llm_api_key_env: str | None = LLM_KEY_ENV_OPTION,
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Classify arbitrary error texts: one result per input line, in the same order.

    Example:
        failure-insights batch classify --input errors.jsonl --no-llm
    """
    output = output_file(output) if output is not None else None
    rows = run(lambda: _read_jsonl(input_path, ("error_text",)))
    results = _classify_rows(rows, settings_block, no_llm, llm_endpoint(llm_url, llm_api_key_env), llm_model)
    fields = ("id", "category", "confidence", "low_confidence", "classified_by", "reasoning")
    if fmt is RowsFormat.json:
        text = "".join(json.dumps({k: getattr(r, k) for k in fields}) + "\n" for r in results)
    else:
        from prefect_failure_insights.reporting.batch import csv_table

        text = csv_table(fields, ([getattr(r, k) for k in fields] for r in results))
    write_output(text, output, cells_inert=fmt is RowsFormat.csv)


def eval_(
    input_path: Path | None = typer.Option(None, "--input", "-i",
                                           help="JSONL: error_text and label (optional exception_type)."),
    runs_path: Path | None = typer.Option(None, "--runs", help="JSONL of labelled failed runs: label, failed_task, "
                                          "crash_reason, facts and a bundle (or bundle_path)."),
    split: str | None = typer.Option(None, "--split", help="With --runs: only the cases of this split."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections and rules only."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", help="text or json."),
    llm_url: str | None = LLM_URL_OPTION,
    llm_api_key_env: str | None = LLM_KEY_ENV_OPTION,
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Measure the classifier on labelled error texts (accuracy, precision/recall, confusion, UNKNOWN
    rate), or whole summaries on labelled failed runs, with your LLM or without one (category,
    failed task, crash reason, root line cited, specific fix, citations held, tokens, cost, latency).

    Example:
        failure-insights eval --input labeled.jsonl --no-llm
        failure-insights eval --runs bench/corpora/runs/runs.jsonl --split frozen --llm-url http://127.0.0.1:11434/v1 --llm-model llama3.1:8b
    """
    from prefect_failure_insights.analysis.evaluation import evaluate, render
    from prefect_failure_insights.analysis.taxonomy import Taxonomy

    if (input_path is None) == (runs_path is None):
        raise fail("Give either --input (labelled error texts) or --runs (labelled failed runs).", 2)
    if runs_path is not None:
        _eval_runs(runs_path, split, settings_block, no_llm, llm_endpoint(llm_url, llm_api_key_env), llm_model, fmt)
        return

    rows = run(lambda: _read_jsonl(input_path, ("error_text", "label")))
    taxonomy = Taxonomy()
    try:
        labels = [taxonomy.parse(r["label"]) for r in rows]
    except ValueError as exc:
        raise fail(f"{input_path}: {exc}.", 2) from None
    results = _classify_rows(rows, settings_block, no_llm, llm_endpoint(llm_url, llm_api_key_env), llm_model)
    result = evaluate(labels, [r.category for r in results], [r.classified_by for r in results])
    echo(json.dumps(result, indent=2) if fmt is TextOrJson.json else render(result))


def _eval_runs(path: Path, split: str | None, settings_block: str, no_llm: bool, endpoint: LLMEndpoint | None,
               llm_model: str | None, fmt: TextOrJson) -> None:
    from prefect_failure_insights.bundles import evaluation

    try:
        cases = evaluation.load_cases(path, split)
    except (OSError, ValueError) as exc:
        raise fail(f"{path}: {exc}", 2) from None
    if not cases:
        raise fail(f"{path} holds no cases" + (f" of split {split!r}." if split else "."), 2)

    async def go():
        classifier, database = await _classifier(settings_block, no_llm, endpoint, llm_model)
        if database is not None:
            await database.aclose()
        llm = classifier.llm
        scores = await evaluation.evaluate_runs(cases, path.parent, classifier.settings, llm=llm)
        return evaluation.report(scores, llm.model if llm is not None else "none (deterministic analysis)")

    result = run(go)
    echo(json.dumps(result, indent=2) if fmt is TextOrJson.json else evaluation.render(result))


@app.command("run")
def run_batch(
    hours: float = typer.Option(BATCH_HOURS, "--hours", min=0.01, help="Window length, ending now."),
    since: str | None = typer.Option(None, "--since", help="Window start: ISO time or a duration like 7d."),
    until: str | None = typer.Option(None, "--until", help="Window end (exclusive): ISO time."),
    tag: list[str] = typer.Option([], "--tag", help="Only runs with this tag (repeatable)."),
    deployment: list[str] = typer.Option([], "--deployment", help="Only this deployment (repeatable)."),
    flow: list[str] = typer.Option([], "--flow", help="Only this flow (repeatable)."),
    work_pool: list[str] = typer.Option([], "--work-pool", help="Only this work pool (repeatable)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Corrections, rules and cache only."),
    llm_url: str | None = LLM_URL_OPTION,
    llm_api_key_env: str | None = LLM_KEY_ENV_OPTION,
    llm_model: str | None = typer.Option(None, "--llm-model", help="Use this model instead."),
    max_runs: int = typer.Option(BATCH_MAX_RUNS, "--max-runs", min=1, help="Most failed runs to read (newest first)."),
    fmt: InsightsFormat = typer.Option(InsightsFormat.text, "--format", help="text, markdown, json or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every error (text format)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Classify every failure of a window and report trends (runs the batch-insights flow).

    Examples:
        failure-insights batch run --hours 24
        failure-insights batch run --since 2026-11-01 --until 2026-11-08 --format csv -o week.csv
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prefect_failure_insights.flows.batch_insights import batch_insights
    from prefect_failure_insights.models import resolve_window
    from prefect_failure_insights.reporting import batch as report

    output = output_file(output) if output is not None else None
    endpoint = llm_endpoint(llm_url, llm_api_key_env)
    start = parse_since(since)
    end: datetime | None = None
    if until:
        end = parse_since(until, "--until")
    run(lambda: resolve_window(hours, start, end))  # an empty window: one line, exit 2

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, disable=not sys.stderr.isatty(), console=None) as progress:
        bars: dict[str, Any] = {}

        def hook(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        result = run(lambda: batch_insights(
            hours=hours, since=start, until=end, tags=tag, deployments=deployment, flows=flow,
            work_pools=work_pool, max_runs=max_runs, use_llm=not no_llm, llm_endpoint=endpoint,
            llm_model=llm_model, settings_block=settings_block, progress=hook,
        ))

    rows = result.rows
    if fmt is InsightsFormat.markdown:
        text = result.report
    elif fmt is InsightsFormat.json:
        metrics = {**result.metrics.model_dump(mode="json"), "batch_id": result.batch_id,
                   "window": [result.window.start.isoformat(), result.window.end.isoformat()]}
        text = report.to_json(rows, metrics, result.previous_rows)
    elif fmt is InsightsFormat.csv:
        text = report.to_csv(rows)
    else:
        text = report.render_text(result, verbose)
    write_output(text, output, cells_inert=fmt is InsightsFormat.csv)


@corrections_app.command("import")
def corrections_import(
    path: Path = typer.Argument(..., help="CSV: the insights export with 'Corrected Category' filled in, "
                                          "or error text / run id + corrected category (+ who)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Store corrected categories and retrain the classification on them; they apply from the
    next classification on (the cards' and the batch's alike), and the same error gets the same
    answer until the next import.

    Example:
        failure-insights corrections import week.csv
    """
    from prefect_failure_insights.analysis.corrections import import_csv
    from prefect_failure_insights.analysis.taxonomy import Taxonomy
    from prefect_failure_insights.analysis.training import retrain
    from prefect_failure_insights.blocks.loading import load_settings

    async def go():
        settings = await load_settings(settings_block)
        async with await open_database(settings_block) as database:
            imported = await database.run(import_csv, path, Taxonomy(settings.extra_categories))
            model = await database.run(retrain) if imported.imported else None
            return imported, database.description, model

    result, where, model = run(go)
    echo(f"Imported {result.imported} corrections into {where}"
               + (f" ({result.skipped} rows without a corrected category skipped)." if result.skipped else "."))
    if model is not None:
        echo(f"Retrained the classification model on {model.trained_on} texts (the shipped corpus and every "
             f"correction): version {model.version}.")


@rules_app.command("suggest")
def rules_suggest(
    min_count: int = typer.Option(1, "--min-count", min=1, help="Only patterns seen at least this often."),
    fmt: TextOrJson = typer.Option(TextOrJson.text, "--format", help="text or json (for extra_rules)."),
    settings_block: str = SETTINGS_OPTION,
) -> None:
    """Propose rules from corrections and LLM-classified errors that the rules miss.

    Example:
        failure-insights rules suggest --min-count 2
    """
    from prefect_failure_insights.analysis.suggest import suggest
    from prefect_failure_insights.analysis.taxonomy import Taxonomy, user_rules
    from prefect_failure_insights.blocks.loading import load_settings
    from prefect_failure_insights.store.batches import llm_classified_errors
    from prefect_failure_insights.store.corrections import load_corrections

    async def go():
        settings = await load_settings(settings_block)
        async with await open_database(settings_block) as database:
            corrected = await database.run(load_corrections)
            by_llm = await database.run(llm_classified_errors)
        return suggest(corrected, by_llm, min_count, extra=user_rules(settings, Taxonomy(settings.extra_categories)))

    found = run(go)
    if fmt is TextOrJson.json:
        echo(json.dumps([s.as_setting() for s in found], indent=2))
        return
    if not found:
        echo("No suggestions: the rules already classify every correction and LLM answer the same way.")
        return
    for s in found:
        echo(f"{s.count:>4}x  {s.category:<20} {s.name}  (from {', '.join(sorted(s.sources))})")
        echo(f"      {json.dumps(s.as_setting())}")
        for example in s.examples:
            echo(f"        e.g. {example}")
    echo("\nAdd the ones you agree with to the settings block's extra_rules "
               "(or to analysis/rules.py), then run `failure-insights eval` to check.")
