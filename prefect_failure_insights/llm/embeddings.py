"""Embeddings of failure patterns from the LLM block's ``/embeddings`` endpoint (issue 29).

OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio and llama.cpp serve OpenAI's embeddings API; the
block's ``embedding_model`` names the model, and the request goes to the block's own base URL
with its own key (Anthropic has no embeddings API). One attempt, bounded by
`EMBEDDING_TIMEOUT_SECONDS`: whatever goes wrong (no such endpoint, a timeout, a vector that is
empty, too long, or not finite) raises `EmbeddingsUnavailable`, and the lexical lookup answers.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from prefect_failure_insights.defaults import (
    EMBEDDING_INPUT_CHARS,
    EMBEDDING_MAX_DIMENSIONS,
    EMBEDDING_TIMEOUT_SECONDS,
)
from prefect_failure_insights.exceptions import EmbeddingsUnavailable

if TYPE_CHECKING:
    from prefect_failure_insights.blocks.llm_credentials import LLMCredentials


class Embedder:
    """Embeds texts with one block's embedding model; use as ``async with Embedder(block) as e``."""

    def __init__(self, credentials: LLMCredentials) -> None:
        if not credentials.embedding_model:
            raise ValueError("the llm-credentials block names no embedding_model")
        self.model = credentials.embedding_model
        self.threshold = credentials.embedding_threshold
        self.where = credentials.display_url
        self.timeout = min(credentials.timeout, EMBEDDING_TIMEOUT_SECONDS)
        self._client = credentials.get_async_client().with_options(max_retries=0)

    async def __aenter__(self) -> Embedder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    async def embed(self, text: str) -> list[float]:
        """The text's embedding, scaled to length 1.

        Raises:
            EmbeddingsUnavailable: the endpoint failed or its answer is unusable.
        """
        import openai

        try:
            response = await self._client.embeddings.create(model=self.model, input=[text[:EMBEDDING_INPUT_CHARS]],
                                                            timeout=self.timeout)
            data = response.data
        except openai.APIStatusError as exc:
            raise EmbeddingsUnavailable(f"the embeddings endpoint {self.where} answered HTTP {exc.status_code} for "
                                        f"model {self.model!r}") from exc
        except openai.APITimeoutError as exc:
            raise EmbeddingsUnavailable(f"the embeddings endpoint {self.where} did not answer within "
                                        f"{self.timeout:.0f}s") from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingsUnavailable(f"could not connect to the embeddings endpoint {self.where}") from exc
        except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
            raise EmbeddingsUnavailable(f"the embeddings endpoint {self.where} sent an unreadable answer") from exc
        return unit_vector(data[0].embedding if data else None, self.where)


@asynccontextmanager
async def embedder_for(credentials: LLMCredentials | None) -> AsyncIterator[Embedder | None]:
    """The block's embedder, closed on exit; None when it names no embedding model (or no block)."""
    if credentials is None or not credentials.embedding_model:
        yield None
        return
    async with Embedder(credentials) as embedder:
        yield embedder


def unit_vector(values: Any, where: str) -> list[float]:
    """``values`` checked (a list of 1 to `EMBEDDING_MAX_DIMENSIONS` finite numbers, not all zero)
    and scaled to length 1."""
    if not isinstance(values, list) or not 0 < len(values) <= EMBEDDING_MAX_DIMENSIONS:
        raise EmbeddingsUnavailable(f"the embeddings endpoint {where} sent no usable vector")
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise EmbeddingsUnavailable(f"the embeddings endpoint {where} sent a vector that is not numbers") from exc
    norm = math.sqrt(math.fsum(v * v for v in floats))
    if not math.isfinite(norm) or norm == 0:
        raise EmbeddingsUnavailable(f"the embeddings endpoint {where} sent a vector that is zero or not finite")
    return [v / norm for v in floats]
