"""`make bench` must not rot: every benchmark runs to the end at a tiny size.

Nothing here is timed (speed is what the benchmarks themselves measure); a
benchmark broken by a change elsewhere fails here instead of on the day someone
wants its figures.

Every benchmark is a few processes mostly waiting on its own server: the selected ones run
three at a time (the longest first), all started when the first of these tests runs, and each
test waits for its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AT_ONCE = 3
LONGEST_FIRST = ("faults.py", "failure_to_artifact.py", "classification.py", "first_answer.py")

CASES = [
    (["evidence.py", "--sizes", "1000"], ["ours", "last 100 lines", "1,000"]),
    (["log_reading.py", "500"], ["download", "200 per page"]),
    (["bundles.py", "2000"], ["ours (streamed, spooled)", "baseline (json.loads"]),
    (["redaction.py", "5000"], ["entries redacted", "lines/s", "+", "leaking formats", "records through LogRedactor"]),
    (["input_bounds.py", "--depth", "200", "--line-mb", "2", "deep", "deep-array", "line-logs"],
     ["nested deeper than 64 levels", "evidence of"]),
    (["classification.py", "10"], ["rules, calibrated (ours)", "errors/s", "same report: True",
                                     "frozen                         not measured"]),
    (["first_answer.py", "--sizes", "1000", "--llm", "instant", "--repeat", "1"],
     ["provisional card over every LLM speed", "baseline", "median seconds by stage", "first delivery"]),
    (["no_llm.py"], ["category right", "fix specific to the cause", "baseline (8002044"]),
    (["no_llm_runs.py", "--split", "dev"], ["split: dev", "Category right", "Specific fix", "Filler steps:        0"]),
    (["similarity.py", "--summaries", "2000", "--lookups", "10"],
     ["cross-validated on the tuning part", "frozen part: not scored", "ours: LSH bands", "baseline: scan"]),
    (["citations.py"], ["citation verified by the check             16/16", "invented", "baseline (ed440c1"]),
    (["faults.py", "storm", "--n", "2"], ["storm (2 different + 2 identical)", "4/4   delivered  0 duplicates",
                                          "baseline: global limit only"]),
    (["failure_to_artifact.py", "1", "50"], ["[in-process] 1/1 failures got an artifact",
                                              "[runner] 1/1 failures got an artifact"]),
    (["batch_scale.py", "--quick"], ["Copies read like their API-made originals: 20/20", "empty window",
                                     "in-process", "work_pool", "largest child MB"]),
]


def _name(args: list[str]) -> str:
    return args[0]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FI_BENCH_DEV_SET": ""}  # the tests never read ../shared
    return subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def benchmark_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    selected = [item.callspec.params["args"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_the_benchmark_runs"]
    selected.sort(key=lambda args: LONGEST_FIRST.index(args[0]) if args[0] in LONGEST_FIRST else len(LONGEST_FIRST))
    with ThreadPoolExecutor(AT_ONCE) as pool:
        futures = {_name(args): pool.submit(_run, args, tmp_path_factory.mktemp(_name(args).removesuffix(".py")))
                   for args in selected}
        yield futures
        for future in futures.values():  # nothing left running after the module
            future.cancel()


# Several benchmarks run at once and the first test waits on them: slow on a busy machine, not wrong.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("args", "expected"), CASES, ids=[_name(args) for args, _ in CASES])
def test_the_benchmark_runs(args: list[str], expected: list[str], benchmark_runs: dict[str, Future]) -> None:
    done = benchmark_runs[_name(args)].result()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    for fragment in expected:
        assert fragment in done.stdout, done.stdout[-3000:]
