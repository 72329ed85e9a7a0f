"""Analysing a bundle offline: the same evidence, analysis and fallback as the live flow, no server."""

from __future__ import annotations

from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.analysis.gate import LLMGate
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.bundles.format import Bundle
from prefect_failure_insights.defaults import EVIDENCE_TOKEN_BUDGET
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Evidence, Summary


def bundle_evidence(bundle: Bundle, budget_tokens: int = EVIDENCE_TOKEN_BUDGET) -> Evidence:
    """The evidence the live flow would build for this run, built from the bundle."""
    return build_evidence(bundle.failed_run(), bundle.log_lines(), budget_tokens,
                          baseline=bundle.baseline, notes=bundle.notes, sections=bundle.sections)


async def summarize_bundle(bundle: Bundle, settings: FailureInsightsSettings, llm: LLMCredentials | None,
                           *, no_llm_reason: str | None = None) -> Summary:
    """The summary of a bundled run: same evidence, analysis and fallback as the live flow
    (no database: no fingerprint cache, no budget)."""
    failed = bundle.failed_run()
    evidence = bundle_evidence(bundle, settings.evidence_token_budget)
    result = await LLMGate().analyze_failure(failed, evidence, settings=settings, llm=llm, no_llm_reason=no_llm_reason)
    return compose_summary(failed, evidence, result)
