"""Benchmark: the answer without an LLM on failed runs from public threads (issue 26).

Reads `bench/corpora/runs/runs.jsonl` (51 failed runs reconstructed from public issue threads,
`bench/corpora/PROVENANCE.md`) and summarizes each through the live code path without an LLM
(`bundles.evaluation`): category, failed task, crash reason, root line cited, specific fix (every
fact the case lists is named in the fix steps), filler steps. The same as
`failure-insights eval --runs bench/corpora/runs/runs.jsonl --no-llm`.

Usage: python bench/no_llm_runs.py [--split dev|frozen] [--json] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.bundles.evaluation import evaluate_runs, load_cases, render, report

CASES = Path(__file__).resolve().parent / "corpora" / "runs" / "runs.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--split", choices=("dev", "frozen"), default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    cases = load_cases(args.cases, args.split)
    scores = asyncio.run(evaluate_runs(cases, args.cases.parent, FailureInsightsSettings(), llm=None))
    result = report(scores, "none (deterministic analysis)")
    result["split"] = args.split or "all"
    print(json.dumps(result, indent=2) if args.json else f"split: {result['split']}\n" + render(result))
    if args.verbose:
        for s in scores:
            print(s.model_dump_json())


if __name__ == "__main__":
    main()
