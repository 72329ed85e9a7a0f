"""Typed models for every concept the plugin passes between its parts.

One model per concept, composed rather than copied: a `Summary` is made of the failed
run's `FlowRunInfo`, the `FailureAnalysis` and how it was made (`LLMUsage`, `Recurrence`),
the `EvidenceRef` it rests on and its `Delivery`; a batch row (`ClassifiedError`) of a
`FailureError` and its `Classification`. Their mapping to and from database rows lives in
`prefect_failure_insights.store`, and only there.
"""

from prefect_failure_insights.models.analysis import (
    Citation,
    Resolution,
    SimilarFailures,
    SimilarRun,
    Citations,
    ClaimCheck,
    EvidenceStatus,
    Verification,
    CATEGORY_GUIDE,
    AnalysisResult,
    Category,
    FailureAnalysis,
    LLMUsage,
    Recurrence,
    SummaryStatus,
    TRANSIENCE_GUIDE,
    Transience,
    parse_category,
    parse_transience,
)
from prefect_failure_insights.models.batch import (
    BatchMetrics,
    BatchRecord,
    BatchResult,
    BatchWindow,
    Classification,
    ClassificationUsage,
    ClassifiedError,
    Correction,
    ErrorItem,
    FailureError,
    Filters,
    PartitionRun,
    WindowFailures,
    failed_runs,
    resolve_window,
)
from prefect_failure_insights.models.common import Progress, Redacted, bounded, redacted_with, utc
from prefect_failure_insights.models.endpoint import LLMEndpoint
from prefect_failure_insights.models.evidence import FLAG, Evidence, EvidenceRef
from prefect_failure_insights.models.runs import (
    Baseline,
    FailedRun,
    FlowRunInfo,
    LogLine,
    LogSection,
    LogWait,
    Target,
    TaskRunInfo,
    level_name,
)
from prefect_failure_insights.models.summary import (
    Claim,
    Delivery,
    EventAction,
    OutcomeAction,
    Reconciled,
    RETRY_REFUSED_RULE,
    RETRY_SKIP_RULES,
    RetryDecision,
    RetryOutcome,
    RetryPolicy,
    RetryVerdict,
    Stored,
    Summary,
    SummaryOutcome,
)

__all__ = [
    "CATEGORY_GUIDE", "AnalysisResult", "Baseline", "BatchMetrics", "BatchRecord", "BatchResult", "BatchWindow", "Category", "Claim",
    "Classification", "ClassificationUsage", "ClassifiedError", "Correction", "Delivery", "ErrorItem", "EventAction", "Evidence",
    "EvidenceRef", "FailedRun", "FailureAnalysis", "FailureError", "Filters", "FlowRunInfo", "LLMUsage", "LogLine",
    "LogSection", "LogWait", "OutcomeAction", "Reconciled", "RetryOutcome", "RetryDecision", "RetryPolicy", "RetryVerdict", "RETRY_REFUSED_RULE", "RETRY_SKIP_RULES", "PartitionRun", "Recurrence", "Summary", "Stored", "SummaryOutcome", "SummaryStatus", "Target",
    "TaskRunInfo", "Citation", "Resolution", "SimilarFailures", "SimilarRun", "Citations", "ClaimCheck", "EvidenceStatus", "Verification", "TRANSIENCE_GUIDE", "Transience", "parse_transience", "WindowFailures", "level_name", "parse_category", "failed_runs", "resolve_window", "utc", "Progress", "Redacted", "bounded", "FLAG", "LLMEndpoint", "redacted_with",
]
