"""Benchmark: reading a huge run bundle offline (`evidence --bundle`, `summarize --bundle`).

Writes a gzip bundle of N log lines (default 1,000,000: INFO noise, a root error in a
task, secrets sprinkled in), then condenses it into evidence in a fresh process for each
reader and reports its time and peak RSS:

* ours: `load_bundle` (streamed with ijson, log lines spooled to a temporary file) ->
  `bundle_evidence`, the code `failure-insights summary evidence --bundle` runs;
* baseline: the previous release's reader, the whole file decompressed, `json.loads`ed and
  validated into models at once, then the same evidence code.

Usage: python bench/bundles.py [N]
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT_ERROR = "ValueError: column 'amount' has 17 nulls in partition 2026-11-20"
SECRET = "BundleBenchPassw0rd"


def write(path: Path, n: int) -> None:
    rnd = random.Random(n)
    root_at = int(n * 0.6)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        head = {"flow_run_id": "root-1", "flow_run_name": "bench-run", "flow_name": "orders", "state": "Failed",
                "state_message": f"Flow run encountered an exception: {ROOT_ERROR}",
                "task_runs": [{"name": "validate-1a2", "state": "Failed"}, {"name": "load-3b4", "state": "Completed"}]}
        out.write(json.dumps(head)[:-1] + ', "logs": [')
        for i in range(n):
            if i == root_at:
                message, level, task = f"Task run failed with exception: {ROOT_ERROR}", "ERROR", "validate-1a2"
            elif i % 50_000 == 7:
                message, level, task = f"Connecting to postgresql://etl:{SECRET}@db:5432/orders", "INFO", None
            else:
                message = f"Fetched page {i} with {rnd.randint(100, 999)} rows in {rnd.random():.3f}s from the api"
                level, task = "INFO", "load-3b4"
            log = {"timestamp": f"2026-11-20T02:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000+00:00",
                   "level": level, "name": "prefect.task_runs", "message": message, "task_run_name": task}
            out.write(("," if i else "") + json.dumps(log))
        out.write("]}")


OURS = """
import sys, time
from prefect_failure_insights.bundles.format import load_bundle
from prefect_failure_insights.bundles.offline import bundle_evidence
start = time.perf_counter()
ev = bundle_evidence(load_bundle(sys.argv[1]))
import resource
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ev.total_lines,
      {root!r} in ev.text, {secret!r} in ev.text)
"""

BASELINE = """
import gzip, json, sys, time
from prefect_failure_insights.bundles.format import Bundle
from prefect_failure_insights.evidence.builder import build_evidence
start = time.perf_counter()
bundle = Bundle.model_validate(json.loads(gzip.decompress(open(sys.argv[1], "rb").read())))
lines = list(bundle.log_lines())
ev = build_evidence(bundle.failed_run(), lines)
import resource
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ev.total_lines,
      {root!r} in ev.text, {secret!r} in ev.text)
"""


def measure(code: str, path: Path) -> tuple[float, float, int, bool, bool]:
    """In a fresh process: seconds, peak RSS (MB, the process's own), lines, root found, secret leaked."""
    done = subprocess.run([sys.executable, "-c", code.format(root=ROOT_ERROR, secret=SECRET), str(path)],
                          capture_output=True, text=True, check=True)
    seconds, peak_kb, lines, found, leaked = done.stdout.split()
    return float(seconds), int(peak_kb) / 1024, int(lines), found == "True", leaked == "True"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json.gz"
        start = time.perf_counter()
        write(path, n)
        print(f"bundle: {n:,} log lines, {path.stat().st_size / 1e6:.1f} MB gzip, "
              f"written in {time.perf_counter() - start:.1f}s")
        print(f"{'reader':<34}{'time':>9}{'peak RSS':>11}  root error found  secret leaked")
        for name, code in (("ours (streamed, spooled)", OURS), ("baseline (json.loads, in memory)", BASELINE)):
            seconds, peak_mb, lines, found, leaked = measure(code, path)
            assert lines == n, (name, lines)
            print(f"{name:<34}{seconds:>8.1f}s{peak_mb:>9.0f} MB  {str(found):<17} {leaked}")


if __name__ == "__main__":
    main()
