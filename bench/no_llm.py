"""Benchmark: the summary without an LLM (the deterministic analysis), on generated failed runs.

24 failed runs generated for this benchmark (none of them is a case of bench/evidence.py or
of the tests): a realistic failure each — a warehouse without a warehouse, an IAM role
missing a permission, a 429 and a 401 from vendors (the 401 retried three times), a
duplicate key, an OOMKilled pod, a failing dbt test, a missing module, an unreachable
vendor, a 503, a maintenance page instead of JSON, a file in the wrong encoding, a broken
CSV, a pydantic validation error, a full disk, a task timeout, a concurrent Delta append, a
missing upstream object, an expired Azure secret, a missing BigQuery table, a segfault, a
spot termination, a numeric overflow and a dropped column. Each has hundreds to thousands
of INFO lines (repeated templates among them), the root error with its traceback in a task,
and misleading lines after it (the flow re-raising, a failing cleanup task, "Finished in
state Failed").

Measured per run, through the real code path (`build_evidence` -> `deterministic_analysis`
-> `compose_summary` -> `render_markdown`):

* failing task named: the analysis's failed task is the task that failed;
* root error cited by line: the evidence's root error line is the planted one, and "What
  happened" cites it (``L<n>``);
* category right: against the label written with the case;
* fix specific to the cause: the fix steps are those of the cause the case is about (its
  rule in the knowledge base), not the generic "open the traceback" steps;
* evidence: the root error and its whole traceback are in the evidence and in the
  artifact, within the token budget, and no template takes more than 3 lines.

Baseline in the same run: the previous release's deterministic analysis and evidence
builder (read from git, ``--baseline REV``, default the commit before issue 13).

Usage: python bench/no_llm.py [--baseline REV] [-v]
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "8002044"  # the release before issue 13


@dataclass
class Case:
    name: str
    flow: str
    task: str
    error: str  # the exception line ("Type: message")
    frames: list[str]
    category: str
    cause: str  # the knowledge base's rule for it
    retries: int = 1
    crashed: str | None = None  # the crash's state message; no task traceback then
    extra: list[str] = field(default_factory=list)  # lines the error message carries after it


CASES = [
    Case("warehouse", "daily-revenue", "load_snowflake", "snowflake.connector.errors.ProgrammingError: 000606 "
         "(57P03): No active warehouse selected in the current session.  Select an active warehouse with the "
         "'use warehouse' command.", ["snowflake/connector/cursor.py", "pipelines/load.py"], "WORKFLOW_ENGINE",
         "pipeline-config"),
    Case("iam", "export-invoices", "upload_to_s3", "botocore.exceptions.ClientError: An error occurred "
         "(AccessDenied) when calling the PutObject operation: User: arn:aws:sts::123456789012:assumed-role/etl-"
         "runner/botocore-session is not authorized to perform: s3:PutObject on resource: "
         "\"arn:aws:s3:::acme-exports/invoices/2026-12-01.parquet\"", ["botocore/client.py", "pipelines/export.py"],
         "WORKFLOW_ENGINE", "permission-missing"),
    Case("429", "crm-sync", "fetch_contacts", "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for "
         "url: https://api.crm.example.com/v3/contacts?limit=100&after=88200", ["requests/models.py",
         "pipelines/crm.py"], "THIRD_PARTY_SYSTEM", "rate-limited", retries=3),
    Case("401", "ads-spend", "pull_campaigns", "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for "
         "url: https://ads.partner.example/api/v2/campaigns", ["requests/models.py", "pipelines/ads.py"],
         "THIRD_PARTY_SYSTEM", "vendor-auth", retries=3,
         extra=['Response body: {"error": {"code": 401, "message": "The access token expired on 2026-11-30; '
                'request a new one with the refresh token"}}']),
    Case("duplicate", "orders-load", "upsert_orders", "psycopg2.errors.UniqueViolation: duplicate key value "
         "violates unique constraint \"orders_pkey\"", ["psycopg2/extras.py", "pipelines/orders.py"],
         "INPUT_DATA_QUALITY", "constraint-violation",
         extra=["DETAIL:  Key (order_id)=(A-88123) already exists."]),
    Case("oom", "feature-build", "build_features", "", [], "WORKFLOW_ENGINE", "oom-killed",
         crashed="Crash detected! Pod 'feature-build-7xk2p' was terminated: OOMKilled (exit code 137)."),
    Case("dbt-test", "dbt-nightly", "dbt_test", "Failure in test unique_orders_order_id (models/marts/schema.yml)\n"
         "  Got 12 results, configured to fail if != 0", ["prefect_dbt/cli/commands.py"], "INPUT_DATA_QUALITY",
         "data-test-failed"),
    Case("module", "report-pdf", "render_report", "ModuleNotFoundError: No module named 'weasyprint'",
         ["pipelines/report.py"], "WORKFLOW_ENGINE", "missing-module"),
    Case("unreachable", "fx-rates", "fetch_rates", "requests.exceptions.ConnectionError: HTTPSConnectionPool("
         "host='rates.fxvendor.example', port=443): Max retries exceeded with url: /v1/latest (Caused by "
         "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f2>: Failed to establish a new "
         "connection: [Errno 110] Connection timed out'))", ["requests/adapters.py", "pipelines/fx.py"],
         "THIRD_PARTY_SYSTEM", "connection", retries=2),
    Case("503", "shipments", "poll_carrier", "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable "
         "for url: https://api.carrier.example/track/batch", ["requests/models.py", "pipelines/ship.py"],
         "THIRD_PARTY_SYSTEM", "vendor-5xx"),
    Case("html", "reviews", "download_reviews", "requests.exceptions.JSONDecodeError: Expecting value: line 1 "
         "column 1 (char 0)", ["requests/models.py", "pipelines/reviews.py"], "THIRD_PARTY_SYSTEM",
         "vendor-bad-response"),
    Case("encoding", "supplier-prices", "read_supplier_file", "UnicodeDecodeError: 'utf-8' codec can't decode byte "
         "0xe9 in position 1184: invalid continuation byte", ["pandas/io/parsers/readers.py",
         "pipelines/suppliers.py"], "INPUT_DATA_QUALITY", "bad-encoding"),
    Case("csv", "leads-import", "parse_leads", "pandas.errors.ParserError: Error tokenizing data. C error: "
         "Expected 14 fields in line 3382, saw 17", ["pandas/io/parsers/c_parser_wrapper.py",
         "pipelines/leads.py"], "INPUT_DATA_QUALITY", "malformed-file"),
    Case("pydantic", "events-ingest", "validate_events", "pydantic_core._pydantic_core.ValidationError: 1 "
         "validation error for Event\ntimestamp\n  Input should be a valid datetime [type=datetime_parsing, "
         "input_value='31/11/2026 25:00', input_type=str]", ["pipelines/events.py"], "INPUT_DATA_QUALITY",
         "bad-value"),
    Case("disk", "image-resize", "write_thumbnails", "OSError: [Errno 28] No space left on device: "
         "'/tmp/thumbs/batch-0042/IMG_88213.jpg'", ["PIL/Image.py", "pipelines/images.py"], "WORKFLOW_ENGINE",
         "disk-full"),
    Case("timeout", "warehouse-rebuild", "rebuild_aggregates", "prefect.exceptions.TaskRunTimeoutError: Task run "
         "exceeded timeout of 1800.0 second(s)", ["prefect/task_engine.py"], "WORKFLOW_ENGINE", "prefect-timeout"),
    Case("delta", "clickstream-merge", "merge_sessions", "delta.exceptions.ConcurrentAppendException: Files were "
         "added to the root of the table by a concurrent update. Please try the operation again.",
         ["delta/tables.py", "pipelines/clickstream.py"], "WORKFLOW_ENGINE", "concurrency-conflict"),
    Case("nosuchkey", "partner-feed", "read_partner_drop", "botocore.errorfactory.NoSuchKey: An error occurred "
         "(NoSuchKey) when calling the GetObject operation: The specified key does not exist.",
         ["botocore/client.py", "pipelines/partner.py"], "THIRD_PARTY_SYSTEM", "object-not-found"),
    Case("azure-secret", "erp-extract", "authenticate_erp", "azure.identity._exceptions.CredentialUnavailableError"
         ": ClientSecretCredential authentication failed: AADSTS7000222: The provided client secret keys for app "
         "'3f2c' are expired.", ["azure/identity/_credentials/client_secret.py", "pipelines/erp.py"],
         "THIRD_PARTY_SYSTEM", "vendor-auth"),
    Case("bq-table", "marketing-mart", "query_attribution", "google.api_core.exceptions.NotFound: 404 Not found: "
         "Table acme-prod:marts.attribution_v2 was not found in location EU", ["google/cloud/bigquery/job/query.py",
         "pipelines/marketing.py"], "WORKFLOW_ENGINE", "missing-object"),
    Case("segfault", "geo-enrich", "enrich_points", "", [], "WORKFLOW_ENGINE", "native-crash",
         crashed="Crash detected! Worker process terminated by signal 11 (SIGSEGV): Segmentation fault "
                 "(core dumped)"),
    Case("spot", "model-train", "train_model", "", [], "WORKFLOW_ENGINE", "crash-interrupt",
         crashed="Crash detected! Execution was interrupted by an unexpected exception: TerminationSignal: "
                 "SIGTERM received (spot instance reclaimed)"),
    Case("overflow", "payments-load", "copy_payments", "psycopg2.errors.NumericValueOutOfRange: numeric field "
         "overflow", ["psycopg2/extras.py", "pipelines/payments.py"], "INPUT_DATA_QUALITY", "bad-value",
         extra=["DETAIL:  A field with precision 10, scale 2 must round to an absolute value less than 10^8."]),
    Case("dropped-column", "inventory", "transform_stock", "KeyError: \"['warehouse_code'] not in index\"",
         ["pandas/core/indexing.py", "pipelines/inventory.py"], "INPUT_DATA_QUALITY", "schema-drift"),
]


def generate(case: Case, seed: int):
    """A failed run of ``case``: its `FailedRun`, its log lines and the root error's line number."""
    from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine, TaskRunInfo

    rng = Random(seed)
    start = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    lines: list[LogLine] = []

    def log(level: int, message: str, task: str | None = None) -> int:
        n = len(lines) + 1
        stamp = (start + timedelta(milliseconds=37 * n)).isoformat()
        lines.append(LogLine(n, stamp, level, message, "prefect.task_runs" if task else "prefect.flow_runs",
                             "run-1", f"tr-{task}" if task else None, f"{task}-{seed:03x}" if task else None))
        return n

    log(20, f"Beginning flow run 'run-{seed}' for flow '{case.flow}'")
    for step in ("extract_config", "open_connections"):
        log(20, f"Created task run '{step}-{seed:03x}' for task '{step}'", step)
        log(20, "Finished in state Completed()", step)
    noise = rng.randint(300, 3000)
    templates = ["Processed batch {i} of {n} ({r} rows)", "Fetched page {i} ({r} records)",
                 "Wrote part-{i:05d}.parquet ({r} bytes)", "heartbeat ok, {i} items in queue"]
    n_total = noise
    for i in range(noise):
        t = templates[i % len(templates)] if rng.random() < 0.9 else templates[0]
        log(20, t.format(i=i, n=n_total, r=rng.randint(100, 9000)), case.task)
    if case.crashed:
        root = log(40, case.crashed)
        log(20, "Reported flow run as crashed", None)
        tasks = [TaskRunInfo(id=f"tr-{case.task}", name=f"{case.task}-{seed:03x}", state="Crashed",
                             state_type="CRASHED", run_count=1)]
        run = FlowRunInfo(id=f"run-{case.name}", name=f"run-{seed}", flow_name=case.flow, state="Crashed",
                          state_type="CRASHED", state_message=case.crashed, deployment=f"{case.flow}/prod",
                          work_pool="k8s-pool", start_time=start, end_time=start + timedelta(minutes=40))
        return FailedRun(run=run, task_runs=tasks), lines, root, case.crashed
    traceback = ["Traceback (most recent call last):"]
    for frame in [*case.frames[::-1], "prefect/task_engine.py"][::-1]:
        traceback.append(f'  File "/usr/local/lib/python3.11/site-packages/{frame}", line {rng.randint(20, 900)}, '
                         f"in {Path(frame).stem}")
        traceback.append("    result = call()")
    error_block = "\n".join([*traceback, case.error, *case.extra])
    for attempt in range(1, case.retries):
        log(40, f"Task run failed with exception: {case.error.splitlines()[0]} - Retry {attempt}/{case.retries - 1} "
                f"will start 10 second(s) from now", case.task)
    root = log(40, f"Task run failed with exception: {case.error.splitlines()[0]} - Retries are exhausted\n"
                   f"{error_block}", case.task)
    log(40, "Finished in state Failed('Task run encountered an exception "
            f"{case.error.split(':', 1)[0].rsplit('.', 1)[-1]}')", case.task)
    log(20, "Created task run 'cleanup-001' for task 'cleanup'", "cleanup")
    log(40, "Task run failed with exception: RuntimeError('temporary directory /tmp/stage not empty') - "
            "Retries are exhausted", "cleanup")
    log(40, f"Encountered exception during execution: {case.error.splitlines()[0]}")
    log(40, "Finished in state Failed('Flow run encountered an exception. "
            f"{case.error.split(':', 1)[0].rsplit('.', 1)[-1]}')")
    message = f"Task run encountered an exception {case.error.split(':', 1)[0].rsplit('.', 1)[-1]}: " \
              f"{case.error.split(':', 1)[-1].strip()[:200]}"
    tasks = [TaskRunInfo(id=f"tr-{case.task}", name=f"{case.task}-{seed:03x}", state="Failed", state_type="FAILED",
                         message=message, run_count=case.retries),
             TaskRunInfo(id="tr-cleanup", name="cleanup-001", state="Failed", state_type="FAILED",
                         message="Task run encountered an exception RuntimeError: temporary directory not empty")]
    run = FlowRunInfo(id=f"run-{case.name}", name=f"run-{seed}", flow_name=case.flow, state="Failed",
                      state_type="FAILED", state_message=f"Flow run encountered an exception. {case.error[:200]}",
                      deployment=f"{case.flow}/prod", work_pool="k8s-pool", start_time=start,
                      end_time=start + timedelta(minutes=12))
    return FailedRun(run=run, task_runs=tasks), lines, root, error_block


def _load_baseline(rev: str):
    """The previous release's evidence builder and deterministic analysis, as modules."""
    tmp = Path(tempfile.mkdtemp(prefix="fi-baseline-"))
    modules = {}
    for name, path in (("baseline_rules", "prefect_failure_insights/analysis/rules.py"),
                       ("baseline_fallback", "prefect_failure_insights/analysis/fallback.py"),
                       ("baseline_builder", "prefect_failure_insights/evidence/builder.py")):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                              text=True).stdout
        text = text.replace("from prefect_failure_insights.analysis.rules import", "from baseline_rules import")
        (tmp / f"{name}.py").write_text(text)
        spec = importlib.util.spec_from_file_location(name, tmp / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["baseline_builder"].build_evidence, modules["baseline_fallback"].deterministic_analysis


def _max_template_lines(text: str) -> int:
    from prefect_failure_insights.evidence.signals import template

    counts = Counter(template(line.split(" ", 4)[-1]) for line in text.split("\n")
                     if line[:1] in "LA" and line[1:2].isdigit())
    return max(counts.values(), default=0)


def measure(build_evidence, analyse, verbose: bool = False) -> dict[str, int]:
    from prefect_failure_insights.analysis.compose import compose_summary
    from prefect_failure_insights.evidence.signals import clean_traceback
    from prefect_failure_insights.models import AnalysisResult
    from prefect_failure_insights.reporting.card import render_markdown

    score = Counter()
    for seed, case in enumerate(CASES, start=1):
        failed, lines, root, block = generate(case, seed)
        evidence = build_evidence(failed, lines, budget_tokens=6000)
        analysis = analyse(evidence, failed)
        artifact = render_markdown(compose_summary(failed, evidence, AnalysisResult(analysis=analysis,
                                                                                    status="fallback")))
        # The traceback as the evidence keeps it: framework frames (Prefect, anyio, asyncio) are
        # removed on purpose (`evidence.signals.clean_traceback`); every other line must be there.
        wanted = [line.strip() for line in clean_traceback(block).split("\n") if line.strip()]
        checks = {
            "failing task named": case.crashed is not None or (analysis.failed_task or "").startswith(case.task),
            "root error cited by line": evidence.root_error_line == root and f"L{root}" in analysis.what_happened,
            "category right": analysis.category.value == case.category,
            "fix specific to the cause": case.cause in analysis.tags,
            "root error + traceback in evidence": all(w in evidence.text for w in wanted),
            "root error + traceback in artifact": all(w in artifact for w in wanted),
            "within budget": evidence.tokens <= 6000,
            "no template over 3 lines": _max_template_lines(evidence.text) <= 3,
        }
        for name, ok in checks.items():
            score[name] += ok
        if verbose:
            missed = [name for name, ok in checks.items() if not ok]
            print(f"  {case.name:<15} {analysis.category.value:<19} tags {analysis.tags} "
                  f"{'ok' if not missed else 'MISSED: ' + ', '.join(missed)}")
    return score


def main() -> None:
    from prefect_failure_insights.analysis.fallback import deterministic_analysis
    from prefect_failure_insights.evidence.builder import build_evidence

    rev = sys.argv[sys.argv.index("--baseline") + 1] if "--baseline" in sys.argv else BASELINE_REV
    verbose = "-v" in sys.argv
    ours = measure(build_evidence, deterministic_analysis, verbose)
    try:
        base = measure(*_load_baseline(rev))
    except subprocess.CalledProcessError as exc:
        print(f"baseline {rev} not readable from git ({exc.stderr.strip()}); ours only")
        base = None
    n = len(CASES)
    print(f"== The summary without an LLM, {n} generated failed runs ==")
    print(f"{'check':<38} {'ours':>10} {'baseline (' + rev[:12] + ')':>24}")
    for name in ours:
        b = f"{base[name]}/{n}" if base is not None else "-"
        print(f"{name:<38} {ours[name]:>4}/{n:<5} {b:>24}")


if __name__ == "__main__":
    main()
