"""One chat request to an LLM provider, with errors sorted by what to do about them.

Backends:

* `OpenAIChat` (openai SDK): OpenAI, Azure OpenAI, and every OpenAI-compatible server
  (Ollama, vLLM, LM Studio, llama.cpp, Anthropic's compatibility endpoint);
* `AnthropicChat` (httpx): Anthropic's native messages API.

A backend sends exactly one HTTP request per call (the SDK's own retries are turned
off): retries, backoff and the overall deadline belong to `llm.structured`, so there is
one owner for them whatever the provider. Errors come back as:

* `LLMTransient` (429, 5xx, timeouts, connection errors, garbled bodies), with the
  server's ``Retry-After`` when it sent one: worth retrying;
* `FormatRejected`: the endpoint refused the requested ``response_format``;
* `LLMRejected`: 400/401/403/404, with a message saying what to fix: not retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from prefect_failure_insights.blocks.llm_credentials import LLMCredentials

from prefect_failure_insights.exceptions import (
    FormatRejected,
    LLMRejected,
    LLMTransient,
)


@dataclass
class Completion:
    content: str | None
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    choices: int = 1


class ChatBackend(Protocol):
    name: str
    base_url: str
    model: str

    async def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None,
                       max_tokens: int, *, timeout: float) -> Completion: ...

    async def close(self) -> None: ...


def _retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, if any."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _rejected(status: int, where: str, model: str) -> LLMRejected:
    if status == 401:
        return LLMRejected(f"the LLM endpoint {where} rejected the API key (401): check the llm-credentials "
                           "block's api_key (or OPENAI_API_KEY / FAILURE_INSIGHTS_LLM_API_KEY).")
    if status == 403:
        return LLMRejected(f"the LLM endpoint {where} refused access (403): check the key's permissions "
                           f"for model {model!r}.")
    if status == 404:
        return LLMRejected(f"model not found: {where} has no model {model!r} (404); check model and base_url.")
    return LLMRejected(f"the LLM endpoint {where} rejected the request (HTTP {status}).")


class OpenAIChat:
    """OpenAI, Azure OpenAI and OpenAI-compatible servers, through the openai SDK."""

    name = "openai"

    def __init__(self, credentials: LLMCredentials) -> None:
        self.base_url = credentials.display_url
        self.model = credentials.model
        self._client = credentials.get_async_client().with_options(max_retries=0)

    async def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None,
                       max_tokens: int, *, timeout: float) -> Completion:
        import openai

        kwargs: dict[str, Any] = {"temperature": 0, "max_tokens": max_tokens, "timeout": timeout}
        if response_format is not None:
            kwargs["response_format"] = response_format
        try:
            response = await self._client.chat.completions.create(
                model=self.model, messages=messages, **kwargs  # type: ignore[arg-type]
            )
        except openai.APITimeoutError as exc:
            raise LLMTransient(f"the LLM endpoint {self.base_url} did not answer within {timeout:.0f}s") from exc
        except openai.APIConnectionError as exc:
            raise LLMTransient(f"could not connect to the LLM endpoint {self.base_url}: is it running?") from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status == 429 or status >= 500:
                what = "is rate-limiting requests (429)" if status == 429 else f"answered HTTP {status}"
                raise LLMTransient(f"the LLM endpoint {self.base_url} {what}", status,
                                _retry_after(exc.response.headers)) from exc
            if status in (400, 422) and response_format is not None:
                raise FormatRejected(f"response_format {response_format['type']} refused (HTTP {status})") from exc
            raise _rejected(status, self.base_url, self.model) from exc
        except openai.OpenAIError as exc:
            raise LLMTransient(f"the LLM endpoint {self.base_url} sent an unreadable response") from exc
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc
        except ValueError as exc:  # a body that is not JSON
            raise LLMTransient(f"the LLM endpoint {self.base_url} sent an unreadable response") from exc
        usage = response.usage
        if not response.choices:
            return Completion(None, None, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0, response.model, choices=0)
        choice = response.choices[0]
        return Completion(
            content=choice.message.content if choice.message else None,
            finish_reason=choice.finish_reason,
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            model=response.model or self.model,
        )

    async def close(self) -> None:
        await self._client.close()


class AnthropicChat:
    """Anthropic's messages API over httpx (JSON is asked for in the prompt and prefilled)."""

    name = "anthropic"
    API_VERSION = "2023-06-01"

    def __init__(self, credentials: LLMCredentials) -> None:
        self.base_url = credentials.display_url
        self.model = credentials.model
        headers = {"anthropic-version": self.API_VERSION, "content-type": "application/json"}
        if credentials.api_key is not None:
            headers["x-api-key"] = credentials.api_key.get_secret_value()
        if credentials.extra_headers:
            headers.update({str(k): str(v) for k, v in credentials.extra_headers.get_secret_value().items()})
        root = credentials.base_url.rstrip("/")
        self._url = root + ("/messages" if root.endswith("/v1") else "/v1/messages")
        self._client = httpx.AsyncClient(headers=headers)

    async def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None,
                       max_tokens: int, *, timeout: float) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        turns.append({"role": "assistant", "content": "{"})  # prefill: the answer starts as JSON
        body = {"model": self.model, "max_tokens": max_tokens, "temperature": 0, "system": system,
                "messages": turns}
        try:
            response = await self._client.post(self._url, json=body, timeout=timeout)
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc
        except httpx.TimeoutException as exc:
            raise LLMTransient(f"the LLM endpoint {self.base_url} did not answer within {timeout:.0f}s") from exc
        except httpx.TransportError as exc:
            raise LLMTransient(f"could not connect to the LLM endpoint {self.base_url}: is it running?") from exc
        status = response.status_code
        if status == 429 or status >= 500:  # 529: overloaded
            raise LLMTransient(f"the LLM endpoint {self.base_url} answered HTTP {status}", status,
                            _retry_after(response.headers))
        if status >= 400:
            raise _rejected(status, self.base_url, self.model)
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMTransient(f"the LLM endpoint {self.base_url} sent an unreadable response") from exc
        text = "".join(part.get("text", "") for part in data.get("content", []) if part.get("type") == "text")
        usage = data.get("usage") or {}
        return Completion(
            content="{" + text if data.get("content") else None,
            finish_reason="length" if data.get("stop_reason") == "max_tokens" else data.get("stop_reason"),
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
            model=data.get("model") or self.model,
            choices=1 if data.get("content") else 0,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _unencodable(exc: UnicodeEncodeError) -> LLMRejected:
    """A request this process could not encode: a client-side error, not the endpoint's, and
    one that a retry would only repeat."""
    return LLMRejected(f"the request could not be encoded as UTF-8 ({exc.reason} at character {exc.start} of "
                       "the request), so it was not sent; this is a bug in the plugin: please report it")


def backend_for(credentials: LLMCredentials) -> ChatBackend:
    """The backend that speaks the credentials' provider."""
    return AnthropicChat(credentials) if credentials.provider == "anthropic" else OpenAIChat(credentials)
