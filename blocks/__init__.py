"""Blocks of prefect-failure-insights, registered with Prefect via the
``prefect.collections`` entry point so that ``Block.load("llm-credentials/...")``
works in any process.
"""

from prefect_failure_insights.blocks.airbyte import AirbyteLogCredentials
from prefect_failure_insights.blocks.llm_credentials import LLMCredentials
from prefect_failure_insights.blocks.settings import FailureInsightsSettings

__all__ = ["AirbyteLogCredentials", "FailureInsightsSettings", "LLMCredentials"]
