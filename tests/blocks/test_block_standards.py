"""Every block passes Prefect's standard block tests (description, documentation URL,
field descriptions ending in a period, a code example with ``.load("BLOCK_NAME")``)."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from prefect_failure_insights.blocks import (
    AirbyteLogCredentials,
    FailureInsightsSettings,
    LLMCredentials,
)


@pytest.mark.parametrize("block", [AirbyteLogCredentials, FailureInsightsSettings, LLMCredentials])
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block
