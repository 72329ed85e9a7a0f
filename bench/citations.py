"""Benchmark: cited answers checked by code (issue 16), on failed runs generated for it.

16 failed runs written for this benchmark, none of them a case of bench/no_llm.py, of
bench/evidence.py or of the tests: an expired TLS certificate, a DNS failure, a Kafka timeout,
a dbt compilation error, a GCS 403, a Snowflake warehouse suspended, a ZeroDivisionError in a
transform, a JSON key missing from an API's answer, a Postgres deadlock, a locked SQLite file, a
pickle from another version, an SFTP login refused, a recursion limit, a date out of range, a
crashed Dask worker and an evicted pod (the last two without a traceback). They are generated
by `bench/no_llm.generate` (hundreds to thousands of INFO lines, the root error with its
traceback in a task, misleading errors after it).

Measured per run, through the real code path (`build_evidence` -> the analysis ->
`compose_summary`, whose `citations.checked` verifies every claim):

* deterministic analysis: its root cause cites the planted root error line, and the check
  verifies it (the line was sent, the quote is on it);
* the test LLM's answers (the fake server's answer builder, on the real prompt): ``faithful``
  (cites the prompt's root error candidate with a quote copied from its line), ``invented``
  (cites a line that was not sent), ``none`` (cites nothing), ``misquoted`` (the right line, a
  quote that is not on it) and ``wrong line`` (a line that *was* sent, quoted correctly, but not
  the root error): the share of root causes verified, and of confidences capped.

``wrong line`` is what a citation check cannot catch: the line exists and says what is quoted;
whether it supports the claim is for the reader, who sees it under the claim on the card.

Baseline in the same run: the previous release's deterministic analysis (``--baseline REV``,
default the commit before issue 16), which named the root line only inside its text (``(L<n>)``).

With ``--llm URL [--model M] [--budget 1200]``: a real OpenAI-compatible model's answers on the
same runs instead (how often its citations hold), e.g. the live tier's llama.cpp server.

Usage: python bench/citations.py [--baseline REV] [-v]
       python bench/citations.py --llm http://127.0.0.1:8000/v1 --model smollm2
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "ed440c1"  # the release before issue 16


def _no_llm():
    spec = importlib.util.spec_from_file_location("bench_no_llm", ROOT / "bench" / "no_llm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_no_llm"] = module
    spec.loader.exec_module(module)
    return module


NO_LLM = _no_llm()
Case = NO_LLM.Case

CASES = [
    Case("tls", "partner-api", "call_partner", "requests.exceptions.SSLError: HTTPSConnectionPool(host='api.partner."
         "example', port=443): Max retries exceeded with url: /v1/orders (Caused by SSLError(SSLCertVerificationError"
         "(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)')))",
         ["requests/adapters.py", "pipelines/partner.py"], "THIRD_PARTY_SYSTEM", ""),
    Case("dns", "weather-ingest", "fetch_forecast", "httpx.ConnectError: [Errno -2] Name or service not known",
         ["httpx/_transports/default.py", "pipelines/weather.py"], "THIRD_PARTY_SYSTEM", "", retries=3),
    Case("kafka", "events-stream", "consume_batch", "kafka.errors.KafkaTimeoutError: KafkaTimeoutError: Failed to "
         "update metadata after 60.0 secs.", ["kafka/producer/kafka.py", "pipelines/stream.py"], "THIRD_PARTY_SYSTEM",
         ""),
    Case("dbt-compile", "dbt-hourly", "dbt_run", "Compilation Error in model stg_payments (models/staging/"
         "stg_payments.sql)\n  'source_payments' is undefined. This can happen when calling a macro that does not "
         "exist.", ["prefect_dbt/cli/commands.py"], "WORKFLOW_ENGINE", ""),
    Case("gcs-403", "archive-logs", "upload_archive", "google.api_core.exceptions.Forbidden: 403 POST https://storage"
         ".googleapis.com/upload/storage/v1/b/acme-archive/o: etl-sa@acme.iam.gserviceaccount.com does not have "
         "storage.objects.create access", ["google/cloud/storage/blob.py", "pipelines/archive.py"], "WORKFLOW_ENGINE",
         ""),
    Case("suspended", "finance-close", "run_close_queries", "snowflake.connector.errors.ProgrammingError: 000606 "
         "(57P03): Warehouse 'FINANCE_WH' cannot be resumed because resource monitor 'MONTHLY_CAP' has exceeded its "
         "quota.", ["snowflake/connector/cursor.py", "pipelines/finance.py"], "WORKFLOW_ENGINE", ""),
    Case("zerodiv", "unit-economics", "compute_margins", "ZeroDivisionError: float division by zero",
         ["pipelines/economics.py"], "INPUT_DATA_QUALITY", ""),
    Case("missing-key", "crm-enrich", "map_accounts", "KeyError: 'billing_country'", ["pipelines/crm_enrich.py"],
         "INPUT_DATA_QUALITY", ""),
    Case("deadlock", "ledger-post", "post_entries", "psycopg.errors.DeadlockDetected: deadlock detected",
         ["psycopg/cursor.py", "pipelines/ledger.py"], "WORKFLOW_ENGINE", "",
         extra=["DETAIL:  Process 8812 waits for ShareLock on transaction 99121; blocked by process 8820."]),
    Case("sqlite-lock", "local-cache", "refresh_cache", "sqlite3.OperationalError: database is locked",
         ["pipelines/cache.py"], "WORKFLOW_ENGINE", ""),
    Case("pickle", "model-score", "load_model", "ModuleNotFoundError: No module named 'sklearn.ensemble._gb_losses'",
         ["joblib/numpy_pickle.py", "pipelines/score.py"], "WORKFLOW_ENGINE", ""),
    Case("sftp", "bank-statements", "download_statements", "paramiko.ssh_exception.AuthenticationException: "
         "Authentication failed.", ["paramiko/transport.py", "pipelines/bank.py"], "THIRD_PARTY_SYSTEM", ""),
    Case("recursion", "org-tree", "flatten_hierarchy", "RecursionError: maximum recursion depth exceeded while "
         "calling a Python object", ["pipelines/org.py"], "INPUT_DATA_QUALITY", ""),
    Case("date-range", "subscriptions", "parse_renewals", "ValueError: year 20261 is out of range",
         ["pandas/_libs/tslibs/parsing.pyx", "pipelines/subs.py"], "INPUT_DATA_QUALITY", ""),
    Case("dask", "geo-join", "spatial_join", "", [], "WORKFLOW_ENGINE", "",
         crashed="Crash detected! distributed.scheduler.KilledWorker: Attempted to run task spatial_join-88 on 3 "
                 "different workers, but all those workers died while running it."),
    Case("evicted", "nightly-export", "export_tables", "", [], "WORKFLOW_ENGINE", "",
         crashed="Crash detected! Pod 'nightly-export-2mq9z' was evicted: The node was low on resource: "
                 "ephemeral-storage."),
]

LLM_MODES = ("faithful", "invented", "none", "misquoted", "wrong line")


def _answer(body: dict, mode: str, evidence_text: str, root: int) -> dict:
    """The test LLM's answer to the real prompt ``body`` in ``mode``."""
    from prefect_failure_insights.analysis.citations import sent_lines
    from prefect_failure_insights.testing.fake_llm import FakeLLM

    fake = FakeLLM()
    answer = fake._answer_for(body, {"invented": "invented", "none": "none"}.get(mode, "faithful"))
    if mode in ("misquoted", "wrong line"):
        lines = sent_lines(evidence_text)
        if mode == "misquoted":
            cite = {"line": root, "quote": "the warehouse ran out of credits"}
        else:
            other = next(n for n in sorted(lines) if n != root)
            cite = {"line": other, "quote": " ".join(lines[other].split()[3:8])}
        answer["what_happened_evidence"] = answer["root_cause_evidence"] = [cite]
        answer["how_to_fix"] = [{"step": s["step"], "evidence": [cite]} for s in answer["how_to_fix"]]
    return answer


def measure(verbose: bool = False) -> tuple[Counter, Counter, Counter, int]:
    from prefect_failure_insights.analysis.fallback import deterministic_analysis
    from prefect_failure_insights.analysis.compose import compose_summary
    from prefect_failure_insights.evidence.builder import build_evidence
    from prefect_failure_insights.llm.prompts import summary_messages
    from prefect_failure_insights.models import AnalysisResult, FailureAnalysis

    det, verified, capped = Counter(), Counter(), Counter()
    for seed, case in enumerate(CASES, start=101):
        failed, lines, root, _block = NO_LLM.generate(case, seed)
        evidence = build_evidence(failed, lines, budget_tokens=6000)
        summary = compose_summary(failed, evidence, AnalysisResult(analysis=deterministic_analysis(evidence, failed),
                                                                   status="fallback"))
        cites = summary.analysis.citations.root_cause
        det["root error cited"] += bool(cites) and cites[0].line == root
        det["citation verified by the check"] += summary.verification.root_cause_verified
        det["every claim verified"] += not summary.verification.unverified
        body = {"messages": summary_messages(evidence, failed)}
        for mode in LLM_MODES:
            analysis = FailureAnalysis.model_validate(_answer(body, mode, evidence.text, root))
            llm = compose_summary(failed, evidence, AnalysisResult(analysis=analysis, status="llm"))
            verified[mode] += llm.verification.root_cause_verified
            capped[mode] += llm.verification.confidence_capped_from is not None
        if verbose:
            print(f"  {case.name:<12} root L{root:<5} evidence root L{evidence.root_error_line} cites "
                  f"{[c.line for c in cites]} verified {summary.verification.root_cause_verified} "
                  f"{json.dumps([c.problems for c in summary.verification.unverified])}")
    return det, verified, capped, len(CASES)


def live(url: str, model: str, budget: int, timeout: float) -> None:
    """A real model's answers on the same runs (``--llm URL --model M``): how often its citations hold."""
    import asyncio

    from prefect_failure_insights.analysis.answer import analyze
    from prefect_failure_insights.analysis.compose import compose_summary
    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.evidence.builder import build_evidence

    llm = LLMCredentials(base_url=url, model=model, timeout=timeout, max_retries=1)
    settings = FailureInsightsSettings(llm_deadline_seconds=timeout * 3)
    counts: Counter = Counter()
    for seed, case in enumerate(CASES, start=101):
        failed, lines, root, _block = NO_LLM.generate(case, seed)
        evidence = build_evidence(failed, lines, budget_tokens=budget)
        started = time.monotonic()
        result = asyncio.run(analyze(failed, evidence, settings, llm=llm))
        summary = compose_summary(failed, evidence, result)
        v = summary.verification
        counts["answered (not the fallback)"] += result.status == "llm"
        if result.status == "llm":
            counts["root cause verified"] += v.root_cause_verified
            counts["cites the planted root line"] += any(c.line == root for c in summary.analysis.citations.root_cause)
            counts["claims verified"] += sum(c.verified for c in v.claims)
            counts["claims"] += len(v.claims)
            counts["confidence capped"] += v.confidence_capped_from is not None
        print(f"  {case.name:<12} {result.status:<8} {time.monotonic() - started:5.1f}s root verified "
              f"{v.root_cause_verified} {[p for c in v.unverified for p in c.problems][:2]}", flush=True)
    n = len(CASES)
    print(f"\n== {model} at {url}: {n} runs, evidence budget {budget} tokens ==")
    for name in ("answered (not the fallback)", "root cause verified", "cites the planted root line",
                 "confidence capped"):
        print(f"{name:<32} {counts[name]:>3}/{n}")
    print(f"{'claims verified':<32} {counts['claims verified']:>3}/{counts['claims']}")


def _baseline(rev: str) -> int | None:
    """How many root error lines the previous release's deterministic analysis named (in its text)."""
    try:
        build_evidence, analyse = NO_LLM._load_baseline(rev)
    except subprocess.CalledProcessError:
        return None
    named = 0
    for seed, case in enumerate(CASES, start=101):
        failed, lines, root, _block = NO_LLM.generate(case, seed)
        evidence = build_evidence(failed, lines, budget_tokens=6000)
        named += f"L{root}" in analyse(evidence, failed).what_happened
    return named


def main() -> None:
    if "--llm" in sys.argv:
        arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default  # noqa: E731
        live(arg("--llm", ""), arg("--model", "gpt-4o-mini"), int(arg("--budget", "1200")),
             float(arg("--timeout", "240")))
        return
    rev = sys.argv[sys.argv.index("--baseline") + 1] if "--baseline" in sys.argv else BASELINE_REV
    det, verified, capped, n = measure("-v" in sys.argv)
    base = _baseline(rev)
    print(f"== Cited answers checked by code, {n} generated failed runs (new for this benchmark) ==")
    print(f"{'deterministic analysis':<40} {'ours':>8}   baseline ({rev[:12]}): cited in the text only")
    for name, value in det.items():
        b = f"{base}/{n} named in the text, not checkable" if name == "root error cited" and base is not None else "-"
        print(f"{name:<40} {value:>4}/{n:<4} {b}")
    print(f"\n{'test LLM answer':<14} {'root cause verified':>20} {'confidence capped':>18}")
    for mode in LLM_MODES:
        print(f"{mode:<14} {verified[mode]:>15}/{n:<4} {capped[mode]:>13}/{n:<4}")
    print("(wrong line: a sent line, quoted right, that is not the root error: no citation check can refuse it; "
          "the card shows it under the claim)")


if __name__ == "__main__":
    main()
