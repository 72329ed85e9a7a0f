"""Asking an LLM for a structured answer (a `FailureAnalysis`, a classification), robustly and cheaply.

Structured output that survives real endpoints and small models:

1. ask with ``response_format={"type": "json_schema", ...}``;
2. if the endpoint refuses that (HTTP 400/422, or the 500 llama.cpp's server answers
   to json_schema), ask with ``{"type": "json_object", "schema": ...}``, then plain
   ``json_object``, then no response format; what worked is remembered per endpoint
   and model by whoever asks many questions (`FormatMemory`: the summaries' `LLMGate`, a
   batch's classifier), so that the next question starts there;
3. extract the JSON object from the text (code fences, prose around it), validate it
   with pydantic (categories outside the taxonomy are mapped or rejected), and send at
   most one repair round-trip when it is invalid or was cut off
   (``finish_reason == "length"``).

Retries have one owner, this module (`RetryPolicy`): exponential backoff with full
jitter on 429, 5xx, timeouts and connection errors, honouring ``Retry-After``, never on
400/401/403/404, and an overall deadline across retries and the repair. Errors come
out as `LLMUnavailable`, `LLMRejected` or `LLMInvalidAnswer`, which select the fallback.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from prefect_failure_insights.defaults import (
    LLM_DEADLINE_SECONDS,
    LLM_MAX_RETRIES,
    LLM_TIMEOUT_SECONDS,
    MAX_ANSWER_TOKENS,
)
from prefect_failure_insights.exceptions import (
    FormatRejected,
    LLMInvalidAnswer,
    LLMTransient,
    LLMUnavailable,
)
from prefect_failure_insights.llm.backends import ChatBackend, Completion
from prefect_failure_insights.llm.prompts import ANSWER_SCHEMA, repair_message
from prefect_failure_insights.models import FailureAnalysis


def response_formats(name: str, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, ...]:
    """The response formats to try, most structured first."""
    return (
        {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
        {"type": "json_object", "schema": schema},  # llama.cpp's server accepts this form
        {"type": "json_object"},
        None,
    )


RESPONSE_FORMATS = response_formats("failure_analysis", ANSWER_SCHEMA)


class FormatMemory:
    """Which of the response formats each endpoint and model took, so that the next request to
    it starts there instead of probing again (an endpoint that refuses ``json_schema`` costs one
    refused request, once). Owned by whoever asks an endpoint many questions, and passed in."""

    def __init__(self) -> None:
        self._took: dict[tuple[str, str, str], int] = {}

    @staticmethod
    def _key(backend: ChatBackend) -> tuple[str, str, str]:
        return backend.name, backend.base_url, backend.model

    def first(self, backend: ChatBackend) -> int:
        """The index of the format to try first with ``backend``."""
        return self._took.get(self._key(backend), 0)

    def took(self, backend: ChatBackend, index: int) -> None:
        """``backend`` answered a request with the format at ``index``."""
        self._took[self._key(backend)] = index

    def remembered(self) -> dict[tuple[str, str, str], int]:
        """What is remembered: (backend, base URL, model) -> the format's index."""
        return dict(self._took)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient LLM errors, and the deadline for the whole exchange."""

    max_retries: int = LLM_MAX_RETRIES
    timeout: float = LLM_TIMEOUT_SECONDS
    deadline: float = LLM_DEADLINE_SECONDS
    base_delay: float = 1.0
    max_delay: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


M = TypeVar("M", bound=BaseModel)


@dataclass
class LLMAnswer(Generic[M]):
    analysis: M
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    requests: int


def extract_json(text: str) -> Any:
    """Parse the JSON object in a model's answer, tolerating fences and prose around it.

    Raises:
        ValueError: no JSON object could be parsed.
    """
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text, strict=False)  # small models put raw newlines inside strings
    except json.JSONDecodeError:
        pass
    start = text.find("{")
    if start < 0:
        raise ValueError("the answer contains no JSON object")
    decoder = json.JSONDecoder(strict=False)
    try:
        value, _ = decoder.raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    return value


def parse_answer(content: str | None, model: type[M]) -> M:
    """Validate a model's answer text as ``model``; ValueError explains why not."""
    if not content or not content.strip():
        raise ValueError("the answer is empty")
    value = extract_json(content)
    if not isinstance(value, dict):
        raise ValueError("the answer is JSON but not an object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ValueError(f"the JSON does not match the schema ({problems})") from exc


class _Exchange:
    """One analysis: requests, retries, tokens and the deadline."""

    def __init__(self, backend: ChatBackend, policy: RetryPolicy, max_tokens: int = MAX_ANSWER_TOKENS) -> None:
        self.backend = backend
        self.policy = policy
        self.max_tokens = max_tokens
        self.started = time.monotonic()
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def remaining(self) -> float:
        return self.policy.deadline - (time.monotonic() - self.started)

    async def send(self, messages: list[dict[str, str]], fmt: dict[str, Any] | None,
                   retry_server_errors: bool = True) -> Completion:
        attempt = 0
        while True:
            remaining = self.remaining()
            if remaining <= 0.05:
                raise LLMUnavailable(
                    f"no usable answer from {self.backend.base_url} within the {self.policy.deadline:.0f}s deadline."
                )
            self.requests += 1
            try:
                done = await self.backend.complete(messages, fmt, self.max_tokens,
                                                   timeout=min(self.policy.timeout, remaining))
            except LLMTransient as exc:
                if not retry_server_errors and exc.status == 500:
                    raise FormatRejected(str(exc)) from exc
                attempt += 1
                if attempt > self.policy.max_retries:
                    raise LLMUnavailable(f"{exc} and {self.policy.max_retries} retries are exhausted.") from exc
                delay = exc.retry_after if exc.retry_after is not None else self.policy.backoff(attempt)
                delay = min(delay, self.policy.max_delay)
                if delay >= self.remaining():
                    raise LLMUnavailable(f"{exc}; the next retry would pass the deadline.") from exc
                await anyio.sleep(delay)
                continue
            self.prompt_tokens += done.prompt_tokens
            self.completion_tokens += done.completion_tokens
            return done


async def request_analysis(
    backend: ChatBackend,
    messages: list[dict[str, str]],
    policy: RetryPolicy | None = None,
    *,
    memory: FormatMemory | None = None,
) -> LLMAnswer[FailureAnalysis]:
    """Ask for a `FailureAnalysis` (see `request_structured`)."""
    return await request_structured(backend, messages, FailureAnalysis, formats=RESPONSE_FORMATS, policy=policy,
                                    memory=memory)


async def request_structured(
    backend: ChatBackend,
    messages: list[dict[str, str]],
    model: type[M],
    *,
    formats: tuple[dict[str, Any] | None, ...],
    policy: RetryPolicy | None = None,
    max_tokens: int = MAX_ANSWER_TOKENS,
    memory: FormatMemory | None = None,
) -> LLMAnswer[M]:
    """Ask for an answer validated as ``model``; bounded retries, at most one repair round-trip.
    ``memory``: where the response format that worked is remembered (none: probe from the first).

    Raises:
        LLMUnavailable: unreachable, timing out, rate-limited, 5xx, deadline passed.
        LLMRejected: key, model or request refused.
        LLMInvalidAnswer: no valid answer, even after a repair.
    """
    exchange = _Exchange(backend, policy or RetryPolicy(), max_tokens)
    if backend.name != "openai":
        index = len(formats) - 1
    else:
        index = memory.first(backend) if memory is not None else 0
    conversation = list(messages)
    repaired = False
    while True:
        fmt = formats[index]
        try:
            # A 500 to json_schema may be a refusal of the format (llama.cpp): no retries there.
            done = await exchange.send(conversation, fmt, retry_server_errors=fmt is None or fmt["type"] != "json_schema")
        except FormatRejected:
            if index + 1 >= len(formats):
                raise
            index += 1
            continue
        if memory is not None:
            memory.took(backend, index)
        content = done.content
        if done.choices == 0:
            problem = "the response has no choices"
        elif done.finish_reason == "length":
            problem = "the answer was cut off at the token limit; answer more briefly"
        else:
            try:
                analysis = parse_answer(content, model)
            except ValueError as exc:
                problem = str(exc)
            else:
                return LLMAnswer(
                    analysis=analysis,
                    model=done.model or backend.model,
                    prompt_tokens=exchange.prompt_tokens,
                    completion_tokens=exchange.completion_tokens,
                    latency_ms=(time.monotonic() - exchange.started) * 1000,
                    requests=exchange.requests,
                )
        if repaired:
            error = LLMInvalidAnswer(f"no usable answer from {backend.model!r} after one repair: {problem}")
            error.prompt_tokens, error.completion_tokens = exchange.prompt_tokens, exchange.completion_tokens
            raise error
        repaired = True
        if content:
            conversation.append({"role": "assistant", "content": content[:4000]})
        conversation.append(repair_message(problem))
