"""Credentials for any OpenAI-compatible chat completions endpoint."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, SecretStr

if TYPE_CHECKING:  # the SDK costs half a second to import; only clients need it
    from openai import AsyncOpenAI, OpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"

# Environment variables read by `LLMCredentials.from_env()`, in order of precedence.
ENV_URL = ("FAILURE_INSIGHTS_LLM_URL", "OPENAI_BASE_URL")
ENV_KEY = ("FAILURE_INSIGHTS_LLM_API_KEY", "OPENAI_API_KEY")
ENV_MODEL = ("FAILURE_INSIGHTS_LLM_MODEL",)


def _first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class LLMCredentials(Block):
    """
    Credentials and settings for an OpenAI-compatible LLM endpoint: OpenAI, Azure
    OpenAI (v1 API), Ollama, vLLM, LM Studio or a llama.cpp server.

    The API key is optional, because local servers usually need none. The SDK
    client owns retries (exponential backoff on 429, 5xx, timeouts and connection
    errors, honouring ``Retry-After``); tasks that use it do not retry on top.

    Args:
        base_url: Base URL of the endpoint, ending in ``/v1`` for most servers.
        api_key: API key sent as a bearer token.
        model: Model name to ask.
        timeout: Seconds to wait for one answer.
        max_retries: Retries of transient errors by the SDK client.
        extra_headers: Extra HTTP headers sent with every request.

    Examples:
        Load stored credentials and ask a question:
        ```python
        from prefect_failure_insights.blocks import LLMCredentials

        llm = LLMCredentials.load("BLOCK_NAME")
        client = llm.get_client()
        client.chat.completions.create(
            model=llm.model, messages=[{"role": "user", "content": "Hello"}]
        )
        ```

        Point at a local Ollama server:
        ```python
        LLMCredentials(
            base_url="http://127.0.0.1:11434/v1", model="llama3.1:8b"
        ).save("default")
        ```
    """

    _block_type_name = "LLM Credentials"
    _block_type_slug = "llm-credentials"
    _documentation_url = (
        "https://github.com/prefect-failure-insights/prefect-failure-insights#configuration"
    )
    _description = "Credentials for an OpenAI-compatible LLM endpoint used by failure summaries."

    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        title="Base URL",
        description="Base URL of the OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API key",
        description="API key sent as a bearer token; leave empty for local servers.",
    )
    model: str = Field(default=DEFAULT_MODEL, description="Model name to ask.")
    timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for one answer before giving up."
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of transient errors (429, 5xx, timeouts) by the SDK client.",
    )
    extra_headers: SecretDict | None = Field(
        default=None,
        description="Extra HTTP headers sent with every request, e.g. an api-key header.",
    )

    @classmethod
    def from_env(cls) -> LLMCredentials | None:
        """Credentials from the environment, or None when none are set.

        Reads ``FAILURE_INSIGHTS_LLM_URL`` (or ``OPENAI_BASE_URL``),
        ``FAILURE_INSIGHTS_LLM_API_KEY`` (or ``OPENAI_API_KEY``) and
        ``FAILURE_INSIGHTS_LLM_MODEL``. A URL alone is enough for a local server.
        """
        url, key, model = _first_env(ENV_URL), _first_env(ENV_KEY), _first_env(ENV_MODEL)
        if not url and not key:
            return None
        return cls(
            base_url=url or DEFAULT_BASE_URL,
            api_key=SecretStr(key) if key else None,
            model=model or DEFAULT_MODEL,
        )

    def _client_kwargs(self) -> dict[str, Any]:
        headers = dict(self.extra_headers.get_secret_value()) if self.extra_headers else {}
        return {
            "base_url": self.base_url,
            # The SDK insists on a key; local servers ignore whatever is sent.
            "api_key": self.api_key.get_secret_value() if self.api_key else "not-needed",
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "default_headers": {str(k): str(v) for k, v in headers.items()} or None,
        }

    def get_client(self) -> OpenAI:
        """A configured synchronous ``openai.OpenAI`` client."""
        from openai import OpenAI

        return OpenAI(**self._client_kwargs())

    def get_async_client(self) -> AsyncOpenAI:
        """A configured ``openai.AsyncOpenAI`` client."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(**self._client_kwargs())

    @property
    def display(self) -> str:
        """``model @ url`` for logs and messages; never includes a key or URL credentials."""
        return f"{self.model} @ {re.sub(r'//[^/@]*@', '//', self.base_url)}"
