"""Evaluating summaries on labelled failed runs (``failure-insights eval --runs``, `bench/no_llm_runs.py`).

A case is a run bundle with what a careful engineer would say of it: its category, the failed task,
the crash's reason, and the facts a specific fix must name. Each case is summarized through the same
code as the live flow (`bundles.offline.summarize_bundle`), with the LLM or without, and scored:

* **category**: the summary's category is the label;
* **failed task**: the summary names the task that failed (runs that failed in a task);
* **crash reason**: the summary says why the run stopped (runs whose data holds a reason);
* **root line cited**: the root cause cites the evidence's root error line;
* **specific fix**: every fact of the case is named in the fix steps;
* **filler**: fix steps that name nothing ("Open the failed run's logs at the root error line");
* **citations held**: the code verified the root cause's citation (`analysis.citations`);
* tokens, cost and latency of the LLM (0 without one).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.bundles.format import load_bundle
from prefect_failure_insights.bundles.offline import summarize_bundle
from prefect_failure_insights.models import Summary

_FILLER = re.compile(r"^Open the failed run's logs|^Details: the run's logs|^Fix the cause, then re-run", re.I)
_CRASH_WORDS = {"oomkilled": ("oomkilled", "out of memory"), "evicted": ("evicted",),
                "preempted": ("preempt", "spot")}


class RunCase(BaseModel):
    """One labelled failed run."""

    id: str
    label: str
    failed_task: str | None = None
    crash_reason: str | None = None
    facts: list[str] = Field(default_factory=list)
    split: str | None = None
    bundle: dict[str, Any] | None = Field(default=None, description="The bundle itself, or:")
    bundle_path: str | None = Field(default=None, description="A bundle file, relative to the cases file.")


class RunScore(BaseModel):
    id: str
    label: str
    category: str
    confidence: float
    category_right: bool
    task_named: bool | None
    crash_named: bool | None
    root_line_cited: bool
    specific_fix: bool
    missing_facts: list[str]
    filler_steps: int
    citations_held: bool
    tokens: int
    cost_usd: float
    latency_ms: float
    status: str


def load_cases(path: Path, split: str | None = None) -> list[RunCase]:
    """The cases of a JSONL file (one `RunCase` per line), optionally of one split."""
    cases = [RunCase.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return [c for c in cases if split is None or c.split == split]


def score(case: RunCase, summary: Summary, latency_ms: float) -> RunScore:
    a = summary.analysis
    category = str(getattr(a.category, "value", a.category))
    story = f"{a.title}\n{a.what_happened}".lower()
    fix = "\n".join(a.how_to_fix).lower()
    task_named = None
    if case.failed_task:
        task_named = (a.failed_task or "").startswith(case.failed_task) or f"'{case.failed_task.lower()}" in story
    crash_named = None
    if case.crash_reason:
        words = _CRASH_WORDS.get(case.crash_reason.lower(), (case.crash_reason.lower(),))
        crash_named = any(w in story for w in words)
    root = summary.evidence.root_error_line
    cited = root is not None and any(c.line == root for c in a.citations.root_cause)
    missing = [f for f in case.facts if f.lower() not in fix]
    usage = summary.usage
    return RunScore(
        id=case.id, label=case.label, category=category, confidence=a.confidence, category_right=category == case.label,
        task_named=task_named, crash_named=crash_named, root_line_cited=cited, specific_fix=not missing,
        missing_facts=missing, filler_steps=sum(1 for s in a.how_to_fix if _FILLER.search(s)),
        citations_held=summary.verification.root_cause_verified, tokens=usage.tokens, cost_usd=usage.cost_usd or 0.0,
        latency_ms=round(usage.latency_ms if usage.latency_ms is not None else latency_ms, 1), status=summary.status)


async def evaluate_runs(cases: Sequence[RunCase], base: Path, settings: FailureInsightsSettings,
                        *, llm: LLMCredentials | None, progress: Callable[[int, int], None] | None = None
                        ) -> list[RunScore]:
    """Summarize and score every case (``base``: the folder ``bundle_path`` is relative to)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, case in enumerate(cases, 1):
            if case.bundle is not None:
                path = Path(tmp) / f"{case.id}.json"
                path.write_text(json.dumps(case.bundle), encoding="utf-8")
            else:
                path = base / (case.bundle_path or f"{case.id}.json")
            bundle = load_bundle(path)
            started = time.perf_counter()
            summary = await summarize_bundle(bundle, settings, llm, no_llm_reason="evaluated without an LLM")
            out.append(score(case, summary, (time.perf_counter() - started) * 1000))
            if progress:
                progress(n, len(cases))
    return out


def report(scores: Sequence[RunScore], model: str) -> dict[str, Any]:
    """The figures of one evaluation."""
    n = len(scores)

    def share(values: list[bool]) -> dict[str, Any]:
        return {"right": sum(values), "of": len(values), "share": round(sum(values) / len(values), 4) if values else None}

    return {
        "model": model, "runs": n,
        "category": share([s.category_right for s in scores]),
        "failed_task": share([s.task_named for s in scores if s.task_named is not None]),
        "crash_reason": share([s.crash_named for s in scores if s.crash_named is not None]),
        "root_line_cited": share([s.root_line_cited for s in scores]),
        "specific_fix": share([s.specific_fix for s in scores]),
        "citations_held": share([s.citations_held for s in scores]),
        "filler_steps": sum(s.filler_steps for s in scores),
        "tokens": sum(s.tokens for s in scores),
        "cost_usd": round(sum(s.cost_usd for s in scores), 6),
        "latency_ms_median": sorted(s.latency_ms for s in scores)[n // 2] if n else None,
        "misses": [{"id": s.id, "label": s.label, "category": s.category, "missing_facts": s.missing_facts}
                   for s in scores if not (s.category_right and s.specific_fix)],
    }


def render(result: dict[str, Any]) -> str:
    def pct(part: dict[str, Any]) -> str:
        return "-" if part["share"] is None else f"{part['right']}/{part['of']} ({100 * part['share']:.1f}%)"

    lines = [f"Model: {result['model']}  runs: {result['runs']}",
             f"Category right:      {pct(result['category'])}",
             f"Failed task named:   {pct(result['failed_task'])}",
             f"Crash reason named:  {pct(result['crash_reason'])}",
             f"Root line cited:     {pct(result['root_line_cited'])}",
             f"Specific fix:        {pct(result['specific_fix'])}",
             f"Citations held:      {pct(result['citations_held'])}",
             f"Filler steps:        {result['filler_steps']}",
             f"Tokens: {result['tokens']}  cost: ${result['cost_usd']:.4f}  median latency: {result['latency_ms_median']} ms"]
    if result["misses"]:
        lines.append("Misses:")
        lines += [f"  {m['id']}: {m['label']} -> {m['category']}"
                  + (f"; fix misses {m['missing_facts']}" if m["missing_facts"] else "") for m in result["misses"]]
    return "\n".join(lines)
