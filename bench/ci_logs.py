"""Benchmark: evidence from other tools' output, on real CI build logs whose error lines others marked.

The data set is cidiff's "breakages" (labri-progress/cidiff, Apache-2.0: 36 failing CI build logs
of Java projects, each with the line ranges of its error messages marked by the data set's
authors). It is not copied into this repository: pass the folder holding the breakages.

Each log is what a shell task streaming Maven/Gradle output writes: every line at INFO, then
Prefect's own "Task run failed with exception: RuntimeError('Command failed with exit code 1')".
Measured per log: does the evidence hold every marked error range (all of its lines), and does it
hold at least one line of each range; against the log's last 24,000 characters (the same budget:
8,000 tokens at 3 characters a token), the usual "tail of the log" of CI notifications.

Usage: python bench/ci_logs.py PATH/TO/cidiff/data/breakages [--groundtruth groundtruth|groundtruth2] [-v]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine, TaskRunInfo

BUDGET_CHARS = 24_000
_RANGE = re.compile(r"^E\s+(\d+)(?:-(\d+))?\s*$")


def ranges(path: Path) -> list[set[int]]:
    out = []
    for line in path.read_text().splitlines():
        m = _RANGE.match(line.strip())
        if m:
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            out.append(set(range(a, b + 1)))
    return out


def evidence_lines(log: list[str]) -> set[int]:
    task = TaskRunInfo(id="t", name="run_build-7c1", state="Failed", state_type="FAILED",
                       message="Command failed with exit code 1")
    failed = FailedRun(run=FlowRunInfo(id="r", name="r", flow_name="ci", state="Failed", state_type="FAILED",
                                       state_message="Flow run encountered an exception: RuntimeError: Command "
                                                     "failed with exit code 1"), task_runs=[task])
    ts = "2026-12-04T10:00:00+00:00"
    lines = [LogLine(lineno=i, timestamp=ts, level=20, message=text, task_run_id="t", task_run_name=task.name)
             for i, text in enumerate(log, 1)]
    lines.append(LogLine(lineno=len(log) + 1, timestamp=ts, level=40, task_run_id="t", task_run_name=task.name,
                         message="Task run failed with exception: RuntimeError('Command failed with exit code 1') - "
                                 "Retries are exhausted\nTraceback (most recent call last):\n  File \"/opt/flows/ci.py\","
                                 " line 12, in run_build\n    shell_run_command(command='mvn -B verify')\n"
                                 "RuntimeError: Command failed with exit code 1"))
    evidence = build_evidence(failed, lines, BUDGET_CHARS // 3)
    return set(evidence.kept_lines)


def tail_lines(log: list[str]) -> set[int]:
    kept, used = set(), 0
    for i in range(len(log), 0, -1):
        used += len(log[i - 1]) + 1
        if used > BUDGET_CHARS:
            break
        kept.add(i)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--groundtruth", default="groundtruth")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    cases = sorted(d for d in args.path.iterdir() if (d / "fail.log").exists() and (d / args.groundtruth).exists())
    totals = {"ours": [0, 0], "tail": [0, 0]}
    for case in cases:
        log = (case / "fail.log").read_text(errors="replace").splitlines()
        marked = ranges(case / args.groundtruth)
        for name, kept in (("ours", evidence_lines(log)), ("tail", tail_lines(log))):
            whole = all(r <= kept for r in marked)
            touched = all(r & kept for r in marked)
            totals[name][0] += whole
            totals[name][1] += touched
            if args.verbose and not whole:
                print(f"{name:4} misses {case.name}: {[(min(r), max(r)) for r in marked if not r <= kept]}")
    n = len(cases)
    print(f"{n} logs ({args.groundtruth})")
    print(f"{'method':<32} {'every range whole':>18} {'a line of every range':>22}")
    for name, label in (("ours", "ours (8,000-token evidence)"), ("tail", "last 24,000 characters")):
        print(f"{label:<32} {totals[name][0]:>12}/{n:<5} {totals[name][1]:>16}/{n:<5}")


if __name__ == "__main__":
    main()
