"""Credentials for any OpenAI-compatible chat completions endpoint."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, SecretStr, model_validator

from prefect_failure_insights.defaults import (
    EMBEDDING_SIMILARITY_THRESHOLD,
    LLM_AZURE_API_VERSION,
    LLM_BASE_URL,
    LLM_MAX_RETRIES,
    LLM_MODEL,
    LLM_TIMEOUT_SECONDS,
)

if TYPE_CHECKING:  # the SDK costs half a second to import; only clients need it
    from openai import AsyncOpenAI, OpenAI

# Environment variables read by `LLMCredentials.from_env()`, in order of precedence.
ENV_URL = ("FAILURE_INSIGHTS_LLM_URL", "OPENAI_BASE_URL")
ENV_KEY = ("FAILURE_INSIGHTS_LLM_API_KEY", "OPENAI_API_KEY")
ENV_MODEL = ("FAILURE_INSIGHTS_LLM_MODEL",)
ENV_PROVIDER = ("FAILURE_INSIGHTS_LLM_PROVIDER",)


def same_endpoint(a: str, b: str) -> bool:
    """Whether two base URLs name the same endpoint (scheme and host compared case-insensitively,
    a default port and a trailing slash ignored)."""

    def norm(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        try:
            port = parts.port or {"https": 443, "http": 80}.get(scheme)
        except ValueError:
            port = None
        return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")

    return norm(a) == norm(b)


def _first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class LLMCredentials(Block):
    """
    Credentials and settings for an LLM endpoint: OpenAI, Azure OpenAI, Anthropic, or
    any OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp).

    The API key is optional, because local servers usually need none. For failure
    summaries, retries of transient errors (429, 5xx, timeouts, connection errors:
    exponential backoff with jitter, honouring ``Retry-After``, within the settings'
    overall deadline) are done by the plugin, with the SDK's own retries off; the
    clients returned by `get_client()` keep the SDK's retries for your own use.

    Args:
        provider: ``openai-compatible`` (OpenAI and compatible servers), ``azure``
            (Azure OpenAI; ``model`` is the deployment name) or ``anthropic``
            (Anthropic's messages API).
        base_url: Base URL of the endpoint: ``.../v1`` for most servers, the resource
            endpoint for Azure, ``https://api.anthropic.com`` for Anthropic.
        api_key: API key.
        model: Model (or Azure deployment) name.
        api_version: Azure OpenAI API version.
        timeout: Seconds to wait for one answer.
        max_retries: Retries of transient errors.
        extra_headers: Extra HTTP headers sent with every request.
        embedding_model: An embedding model on the same endpoint (its ``/embeddings`` API): similar
            failures are then also found by embeddings (the same failure worded otherwise).
        embedding_threshold: The cosine of two failures' embeddings from which they are similar.

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

    provider: Literal["openai-compatible", "azure", "anthropic"] = Field(
        default="openai-compatible",
        description="openai-compatible (OpenAI, Ollama, vLLM, ...), azure (Azure OpenAI) or anthropic.",
    )
    base_url: str = Field(
        default=LLM_BASE_URL,
        title="Base URL",
        description="Base URL of the OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API key",
        description="API key sent as a bearer token; leave empty for local servers.",
    )
    model: str = Field(default=LLM_MODEL, description="Model name to ask.")
    api_version: str = Field(
        default=LLM_AZURE_API_VERSION, description="Azure OpenAI API version (provider azure only)."
    )
    timeout: float = Field(
        default=LLM_TIMEOUT_SECONDS, gt=0, description="Seconds to wait for one answer before giving up."
    )
    max_retries: int = Field(
        default=LLM_MAX_RETRIES,
        ge=0,
        le=10,
        description="Retries of transient errors (429, 5xx, timeouts, connection errors), within the deadline.",
    )
    extra_headers: SecretDict | None = Field(
        default=None,
        description="Extra HTTP headers sent with every request, e.g. an api-key header.",
    )
    embedding_model: str | None = Field(
        default=None,
        description=("Embedding model on the same endpoint (e.g. text-embedding-3-small, nomic-embed-text): "
                     "similar failures are then also found by embeddings; empty: lexically only."),
    )
    embedding_threshold: float = Field(
        default=EMBEDDING_SIMILARITY_THRESHOLD, ge=0, le=1,
        description=("Cosine of two failures' embeddings from which they are similar; set it for your model "
                     "(the default was measured with all-MiniLM-L6-v2)."),
    )

    @model_validator(mode="after")
    def _embeddings_need_openai_api(self) -> LLMCredentials:
        if self.embedding_model and self.provider == "anthropic":
            raise ValueError("Anthropic has no embeddings API: leave embedding_model empty, or name it on an "
                             "openai-compatible llm-credentials block")
        return self

    @classmethod
    def from_env(cls) -> LLMCredentials | None:
        """Credentials from the environment, or None when none are set.

        Reads ``FAILURE_INSIGHTS_LLM_URL`` (or ``OPENAI_BASE_URL``),
        ``FAILURE_INSIGHTS_LLM_API_KEY`` (or ``OPENAI_API_KEY``) and
        ``FAILURE_INSIGHTS_LLM_MODEL`` (and ``FAILURE_INSIGHTS_LLM_PROVIDER``). A URL
        alone is enough for a local server.
        """
        url, key, model = _first_env(ENV_URL), _first_env(ENV_KEY), _first_env(ENV_MODEL)
        provider = _first_env(ENV_PROVIDER) or "openai-compatible"
        if not url and not key:
            return None
        return cls(
            provider=provider,
            base_url=url or LLM_BASE_URL,
            api_key=SecretStr(key) if key else None,
            model=model or LLM_MODEL,
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

    def _azure_kwargs(self) -> dict[str, Any]:
        kwargs = self._client_kwargs()
        kwargs["azure_endpoint"] = kwargs.pop("base_url")
        kwargs["api_version"] = self.api_version
        return kwargs

    def _anthropic_kwargs(self) -> dict[str, Any]:
        # Anthropic's OpenAI-compatible endpoint, for users of get_client().
        kwargs = self._client_kwargs()
        root = self.base_url.rstrip("/")
        kwargs["base_url"] = root if root.endswith("/v1") else root + "/v1"
        return kwargs

    def get_client(self) -> OpenAI:
        """A configured synchronous openai SDK client (``AzureOpenAI`` for Azure)."""
        from openai import AzureOpenAI, OpenAI

        if self.provider == "azure":
            return AzureOpenAI(**self._azure_kwargs())
        return OpenAI(**(self._anthropic_kwargs() if self.provider == "anthropic" else self._client_kwargs()))

    def get_async_client(self) -> AsyncOpenAI:
        """A configured asynchronous openai SDK client (``AsyncAzureOpenAI`` for Azure)."""
        from openai import AsyncAzureOpenAI, AsyncOpenAI

        if self.provider == "azure":
            return AsyncAzureOpenAI(**self._azure_kwargs())
        return AsyncOpenAI(**(self._anthropic_kwargs() if self.provider == "anthropic" else self._client_kwargs()))

    def with_overrides(self, base_url: str | None = None, model: str | None = None,
                       *, api_key: SecretStr | str | None = None) -> LLMCredentials:
        """A copy pointing at another URL or model.

        The block's key and extra headers go only to its own base URL: a different URL gets
        ``api_key``, its own, and no extra headers, or no key at all; the same URL keeps the
        block's key unless ``api_key`` is given. Another model keeps everything else.

        Example:
            >>> block = LLMCredentials(base_url="https://api.openai.com/v1", api_key="sk-...")
            >>> block.with_overrides("http://127.0.0.1:11434/v1").api_key is None
            True
        """
        update: dict[str, Any] = {"model": model} if model else {}
        key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        if base_url and not same_endpoint(base_url, self.base_url):
            update.update(base_url=base_url, api_key=key, extra_headers=None)
        elif key is not None:
            update["api_key"] = key
        return self.model_copy(update=update) if update else self

    @property
    def display_url(self) -> str:
        """The base URL without credentials in it."""
        return re.sub(r"//[^/@]*@", "//", self.base_url)

    @property
    def display(self) -> str:
        """``model @ url`` for logs and messages; never includes a key or URL credentials."""
        return f"{self.model} @ {self.display_url}"
