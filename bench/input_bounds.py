"""Benchmark: what hostile or careless input costs before it is refused or bounded (issue 25).

Each case runs in a fresh process (time and peak RSS, VmHWM, of that process), against this checkout or,
with ``--src DIR``, against another copy of the source (e.g. ``git archive <commit>`` of an
earlier release, to measure "before"):

* ``deep``: a bundle nested 10,000 JSON levels deep (5,000 subflows in each other), read with
  `load_bundle`: refused at once, in one line, or parsed; ``deep-array``: 10,000 nested arrays
  in a field no bundle has (ignored when read); ``deep-log``: 10,000 nested arrays in a log line;
  ``deep-subflows``: 10,000 subflows in each other (20,000 levels);
* ``line-bundle``: a bundle whose one ERROR log line is 100 MB, condensed into evidence
  (`bundle_evidence`, what ``summary evidence --bundle`` runs); ``line-bundle-5mb``: the same
  with a 5 MB line (over Prefect's 1 MB limit, under the largest value a bundle may hold);
* ``line-logs``: the same 100 MB line on the live path: spooled as the API's records are
  (`prefect_api.logs._row`), read back through `RunLogs.lines` (redacted) into evidence.

Usage: python bench/input_bounds.py [--src DIR] [--timeout S] [--depth 10000] [--line-mb 100] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPTH = 10_000
LINE_MB = 100

RUN = """
import sys, time
sys.path.insert(0, {src!r})
case, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
outcome = ""
try:
    if case.startswith("deep"):
        from prefect_failure_insights.bundles.format import load_bundle
        bundle = load_bundle(path)
        outcome = f"parsed: {{len(bundle.failed_run().subflows)}} subflows"
    elif case.startswith("line-bundle"):
        from prefect_failure_insights.bundles.format import load_bundle
        from prefect_failure_insights.bundles.offline import bundle_evidence
        ev = bundle_evidence(load_bundle(path))
        outcome = f"evidence of {{ev.tokens}} tokens, root error line {{len(ev.root_error or '')}} chars"
    elif case == "line-logs":
        import csv
        from pathlib import Path
        from prefect_failure_insights.evidence.builder import build_evidence
        from prefect_failure_insights.models import FailedRun, FlowRunInfo
        from prefect_failure_insights.prefect_api import logs
        from prefect_failure_insights.redaction import Redactor
        message = Path(path).read_text()
        spool = Path(path).with_suffix(".spool.csv")
        with spool.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(logs._row("2026-11-20T02:00:00+00:00", 20, None, "starting", "prefect.flow_runs"))
            writer.writerow(logs._row("2026-11-20T02:00:01+00:00", 40, None, message, "prefect.task_runs"))
        del message
        run_logs = logs.RunLogs({{"run": spool}}, None, "bench", read_ms=0.0, line_count=2)
        failed = FailedRun(run=FlowRunInfo(id="run", name="bench", flow_name="orders", state="Failed"))
        ev = build_evidence(failed, run_logs.lines(Redactor()))
        outcome = f"evidence of {{ev.tokens}} tokens"
except Exception as exc:  # what the user sees
    outcome = f"{{type(exc).__name__}}: {{(str(exc).splitlines() or [''])[0][:160]}}"
elapsed = time.perf_counter() - start
# VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec).
peak = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(elapsed, peak // 1024, outcome, sep="\\t")
"""


def write_deep(path: Path, depth: int = DEPTH) -> None:
    levels = depth // 2
    head = '{"flow_run_id": "r0", "state": "Failed", "subflows": ['
    inner = '{"flow_run_id": "s", "state": "Failed", "subflows": ['
    path.write_text(head + inner * (levels - 1) + "]}" * levels)


def write_deep_array(path: Path, depth: int = DEPTH) -> None:
    path.write_text('{"flow_run_id": "r0", "state": "Failed", "extra": ' + "[" * depth + "]" * depth + "}")


def write_deep_log(path: Path, depth: int = DEPTH) -> None:
    path.write_text('{"flow_run_id": "r0", "state": "Failed", "logs": [{"message": "x", "extra": '
                    + "[" * depth + "]" * depth + "}]}")


def write_line_bundle(path: Path, megabytes: int = LINE_MB) -> None:
    message = "Task run failed with exception: ValueError: " + ("payload=" + "x" * 90 + "\\\\n") * (megabytes * 10_000)
    bundle = {"flow_run_id": "r0", "flow_run_name": "bench", "flow_name": "orders", "state": "Failed",
              "logs": [{"timestamp": "2026-11-20T02:00:00+00:00", "level": "ERROR", "name": "prefect.task_runs",
                        "message": message}]}
    path.write_text(json.dumps(bundle))


def write_line(path: Path, megabytes: int = LINE_MB) -> None:
    path.write_text("Task run failed with exception: ValueError: "
                    + ("payload=" + "x" * 90 + "\\n") * (megabytes * 10_000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT), help="The source tree to measure (default: this checkout).")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--depth", type=int, default=DEPTH, help="JSON nesting of the deep bundles.")
    parser.add_argument("--line-mb", type=int, default=LINE_MB, help="Size of the huge log line, in MB.")
    parser.add_argument("cases", nargs="*", default=["deep", "deep-subflows", "deep-array", "deep-log", "line-bundle", "line-bundle-5mb",
                                                        "line-logs"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
        files = {"deep": Path(tmp) / "deep.json", "deep-subflows": Path(tmp) / "deep-subflows.json", "deep-array": Path(tmp) / "deep-array.json",
                 "deep-log": Path(tmp) / "deep-log.json", "line-bundle": Path(tmp) / "line.json",
                 "line-bundle-5mb": Path(tmp) / "line5.json",
                 "line-logs": Path(tmp) / "line.txt"}
        print(f"source: {args.src}")
        print(f"{'case':<12} {'seconds':>9} {'peak MB':>8}  outcome")
        for case in args.cases:
            {"deep": lambda path: write_deep(path, args.depth),
             "deep-subflows": lambda path: write_deep(path, 2 * args.depth),
             "deep-array": lambda path: write_deep_array(path, args.depth),
             "deep-log": lambda path: write_deep_log(path, args.depth),
             "line-bundle": lambda path: write_line_bundle(path, args.line_mb),
             "line-bundle-5mb": lambda path: write_line_bundle(path, 5),
             "line-logs": lambda path: write_line(path, args.line_mb)}[case](files[case])
            started = time.perf_counter()
            try:
                done = subprocess.run([sys.executable, "-c", RUN.format(src=args.src), case, str(files[case])],
                                      capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{case:<12} {'>' + str(int(args.timeout)):>9} {'?':>8}  still running after the timeout")
                continue
            fields = done.stdout.strip().split("\t")
            if len(fields) != 3:
                print(f"{case:<12} {time.perf_counter() - started:>9.1f} {'?':>8}  died: "
                      f"{(done.stderr.strip().splitlines() or ['?'])[-1][:160]}")
                continue
            seconds, peak, outcome = fields
            print(f"{case:<12} {float(seconds):>9.2f} {int(peak):>8,}  {outcome}")


if __name__ == "__main__":
    main()
