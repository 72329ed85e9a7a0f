"""Benchmark: finding the root error in huge, noisy logs within a token budget.

Generated failed runs of 1k, 10k, 100k and 1M log lines, with the root error at 5 %,
50 % and 95 % of the log followed by misleading errors (a later failing cleanup task,
ERROR lines from other components, consequences, the flow re-raising), and crashed
runs whose only signal is an infrastructure message. Secrets are sprinkled through
the logs. Each case is written to disk in the summarizer's own temporary-file format
and condensed through the real code path (`RunLogs.lines`, redacted as read -> `EvidenceBuilder`) in a fresh
process, so peak RSS is the case's own.

Side by side, on the same inputs, three baselines used by other tools: the last
100,000 characters, the last 100 lines, the first 100 lines.

Reported per case: root-error recall (the root error's text is in the evidence),
tokens (characters / 3), time to condense, peak RSS, and whether a planted secret
survived. Usage: python bench/evidence.py [--sizes 1000,10000,100000,1000000]
"""

from __future__ import annotations

import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

SECRETS = ["BenchDbPassw0rd", "bEnChBeArErToKeN0123456789abcdef", "AKIABENCHMARK0EXAMP1"]
TASKS = ["extract_orders-1a2", "load_orders-3b4", "cleanup-5c6", "publish-7d8"]
ROOT_TASK = "t-load"


def generate(path: Path, size: int, position: float, kind: str) -> str:
    """Write a failed run's log; return the root error's marker text."""
    rnd = random.Random(size * 7 + int(position * 100) + (kind == "crash"))
    marker = f"ROOT-{kind}-{size}-{int(position * 100)}"
    root_at = max(2, int(size * position))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        ts = 0

        def row(level: int, message: str, task: str | None = None) -> None:
            nonlocal ts
            ts += 1
            w.writerow((f"2026-11-20T02:{ts // 60000 % 60:02d}:{ts // 1000 % 60:02d}.{ts % 1000:03d}000+00:00",
                        level, task or "", message, ""))

        row(20, "Beginning flow run 'bench' for flow 'orders-pipeline'")
        for i in range(1, size):
            if i == root_at:
                if kind == "crash":
                    row(40, f"Job 'bench-x7k': Container 'prefect-job' terminated: OOMKilled (exit code 137) {marker}")
                else:
                    row(20, f"Task run failed with exception: ValueError('{marker}: column amount has nulls') "
                            "- Retry 1/1 will start immediately", ROOT_TASK)
                    row(40, f"Task run failed with exception: ValueError('{marker}: column amount has nulls') - "
                            "Retries are exhausted\nTraceback (most recent call last):\n"
                            '  File "/opt/etl/load.py", line 88, in load_orders\n    validate(df)\n'
                            f"ValueError: {marker}: column amount has nulls", ROOT_TASK)
                    row(40, "Finished in state Failed('Task run encountered an exception ValueError')", ROOT_TASK)
                continue
            if i > root_at and i % max(1, size // 40) == 0:  # misleading errors after the root
                row(40, rnd.choice([
                    "ERROR metrics exporter: connection reset by peer while pushing to statsd:8125",
                    "Task run failed with exception: RuntimeError('cleanup could not remove /tmp/stage') - "
                    "Retries are exhausted",
                    "Upstream task run 'load_orders-3b4' did not reach a 'COMPLETED' state",
                    "ERROR botocore.exceptions.ClientError: An error occurred (Throttling) when calling PutMetricData",
                ]), "t-cleanup" if rnd.random() < 0.3 else None)
                continue
            if i % 997 == 0:
                secret = SECRETS[(i // 997) % 3]
                row(20, f"connecting with postgresql://etl:{secret}@warehouse:5432/db token=Bearer {secret}")
                continue
            r = rnd.random()
            if r < 0.70:
                row(20, f"processed batch {i} with {rnd.randint(100, 9999)} rows in {rnd.random():.3f}s",
                    rnd.choice(["t-extract", ROOT_TASK, None]))
            elif r < 0.85:
                row(20, f"GET https://api.vendor.example/v2/orders?page={i} -> 200 ({rnd.randint(5, 900)} ms)",
                    "t-extract")
            elif r < 0.97:
                row(10, f"cache hit ratio {rnd.random():.2f} for partition {rnd.randint(0, 64)}")
            else:
                row(30, f"WARNING retrying connection to replica-{rnd.randint(1, 5)}.internal (attempt {rnd.randint(1, 3)})")
        if kind != "crash":
            row(40, f"Encountered exception during execution: ValueError('{marker}: column amount has nulls')")
            row(20, "Finished in state Failed('Flow run encountered an exception: ValueError')")
        else:
            row(40, "Reported flow run 'bench' as crashed: Flow run infrastructure exited with non-zero status code 137.")
    return marker


def _baselines(path: Path) -> dict[str, str]:
    head: list[str] = []
    tail_lines: deque[str] = deque(maxlen=100)
    tail_chars: deque[str] = deque()
    chars = 0
    with open(path, newline="") as fh:
        for ts, level, _task, message, _ in csv.reader(fh):
            text = f"{ts} {level} {message}"
            if len(head) < 100:
                head.append(text)
            tail_lines.append(text)
            tail_chars.append(text)
            chars += len(text) + 1
            while chars - len(tail_chars[0]) - 1 >= 100_000:
                chars -= len(tail_chars.popleft()) + 1
    return {"last 100k chars": "\n".join(tail_chars)[-100_000:], "last 100 lines": "\n".join(tail_lines),
            "first 100 lines": "\n".join(head)}


def run_one(path: str, marker: str, kind: str, mode: str) -> dict:
    """In a fresh process: condense one case (ours, or the baselines) and measure it."""
    from prefect_failure_insights.evidence.builder import build_evidence
    from prefect_failure_insights.models import FailedRun, FlowRunInfo, TaskRunInfo
    from prefect_failure_insights.prefect_api.logs import RunLogs
    from prefect_failure_insights.redaction import Redactor

    started = time.perf_counter()
    if mode == "ours":
        tasks = [] if kind == "crash" else [
            TaskRunInfo(id=ROOT_TASK, name="load_orders-3b4", state="Failed", state_type="FAILED"),
            TaskRunInfo(id="t-cleanup", name="cleanup-5c6", state="Failed", state_type="FAILED")]
        state = "Crashed" if kind == "crash" else "Failed"
        failed = FailedRun(run=FlowRunInfo(
            id="bench", name="bench", flow_name="orders-pipeline", state=state, state_type=state.upper(),
            state_message=None if kind == "crash" else f"Flow run encountered an exception: ValueError: {marker}",
        ), task_runs=tasks)
        logs = RunLogs({"bench": Path(path)}, None, "bench", read_ms=0.0, line_count=0)
        logs.task_names = {ROOT_TASK: "load_orders-3b4", "t-extract": "extract_orders-1a2", "t-cleanup": "cleanup-5c6"}
        texts = {"ours": build_evidence(failed, logs.lines(Redactor())).text}
    else:
        texts = _baselines(Path(path))
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {name: {"recall": marker in text, "tokens": -(-len(text) // 3), "secret": any(s in text for s in SECRETS),
                   "seconds": elapsed, "rss_mb": rss_mb} for name, text in texts.items()}


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_one(*sys.argv[2:6])))
        return 0
    sizes = [1000, 10_000, 100_000, 1_000_000]
    if "--sizes" in sys.argv:
        sizes = [int(s) for s in sys.argv[sys.argv.index("--sizes") + 1].split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fi-evidence-bench-"))
    rows = []
    for size in sizes:
        for kind in ("traceback", "crash"):
            for position in (0.05, 0.5, 0.95):
                path = workdir / f"{size}-{kind}-{position}.csv"
                marker = generate(path, size, position, kind)
                result = {}
                for mode in ("ours", "baselines"):
                    out = subprocess.run([sys.executable, __file__, "--one", str(path), marker, kind, mode],
                                         capture_output=True, text=True, check=True)
                    result.update(json.loads(out.stdout))
                rows.append((size, kind, position, result))
                path.unlink()
                ours = result["ours"]
                print(f"{size:>9,} {kind:<9} root@{position:>4.0%}  ours: recall={ours['recall']!s:<5} "
                      f"tokens={ours['tokens']:>5} {ours['seconds']:6.2f}s rss={ours['rss_mb']:4.0f}MB "
                      f"secret={ours['secret']}", flush=True)

    names = ["ours", "last 100k chars", "last 100 lines", "first 100 lines"]
    print(f"\n{'method':<17} {'recall':>7} {'tokens (median)':>16} {'tokens (max)':>13} {'secret leaked':>14}")
    for name in names:
        results = [r[name] for *_, r in rows]
        recall = sum(x["recall"] for x in results) / len(results)
        toks = sorted(x["tokens"] for x in results)
        leaks = sum(x["secret"] for x in results)
        print(f"{name:<17} {recall:>7.0%} {toks[len(toks) // 2]:>16,} {toks[-1]:>13,} {leaks:>8}/{len(results)}")
    print(f"\n{'lines':>9} {'condense s (median of 6)':>25} {'peak RSS MB (max)':>18}")
    for size in sizes:
        ours = [r["ours"] for s, *_, r in rows if s == size]
        secs = sorted(x["seconds"] for x in ours)
        print(f"{size:>9,} {secs[len(secs) // 2]:>25.2f} {max(x['rss_mb'] for x in ours):>18.0f}")
    ok = all(r["ours"]["recall"] and not r["ours"]["secret"] and r["ours"]["tokens"] <= 6000 for *_, r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
