"""Asking an OpenAI-compatible endpoint for a structured `FailureAnalysis`.

Structured output that survives real endpoints and small models:

1. ask with ``response_format={"type": "json_schema", ...}``;
2. if the endpoint refuses that (HTTP 400/422, or a 500 as llama.cpp's server
   answers), ask with ``{"type": "json_object"}``, then with no response format;
3. extract the JSON object from the text (code fences, prose around it), validate
   it with pydantic, and send at most one repair round-trip when it is invalid or
   was cut off (``finish_reason == "length"``).

Retries of transient errors belong to the SDK client (``LLMCredentials.max_retries``);
nothing here retries a 429/5xx/timeout on top of it. Errors are translated into
`LLMUnavailable`, `LLMRejected` or `LLMInvalidAnswer`, which select the fallback.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from prefect_failure_insights.exceptions import LLMInvalidAnswer, LLMRejected, LLMUnavailable
from prefect_failure_insights.models import FailureAnalysis
from prefect_failure_insights.prompts import ANSWER_SCHEMA, repair_message

if TYPE_CHECKING:
    from openai import AsyncOpenAI

RESPONSE_FORMATS: tuple[dict[str, Any] | None, ...] = (
    {"type": "json_schema", "json_schema": {"name": "failure_analysis", "schema": ANSWER_SCHEMA}},
    {"type": "json_object"},
    None,
)
MAX_ANSWER_TOKENS = 1500


@dataclass
class LLMAnswer:
    analysis: FailureAnalysis
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
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = text.find("{")
    if start < 0:
        raise ValueError("the answer contains no JSON object")
    decoder = json.JSONDecoder()
    try:
        value, _ = decoder.raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    return value


def parse_analysis(content: str | None) -> FailureAnalysis:
    """Validate a model's answer text as a `FailureAnalysis`; ValueError explains why not."""
    if not content or not content.strip():
        raise ValueError("the answer is empty")
    value = extract_json(content)
    if not isinstance(value, dict):
        raise ValueError("the answer is JSON but not an object")
    try:
        return FailureAnalysis.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ValueError(f"the JSON does not match the schema ({problems})") from exc


def _translate(exc: Exception, base_url: str, model: str) -> Exception:
    """Map an openai SDK error onto the plugin's tree, with what to do about it."""
    import openai

    where = f"the LLM endpoint {base_url}"
    if isinstance(exc, openai.AuthenticationError):
        return LLMRejected(f"{where} rejected the API key (401): check the llm-credentials block's api_key.")
    if isinstance(exc, openai.PermissionDeniedError):
        return LLMRejected(f"{where} refused access (403): check the key's permissions for model {model!r}.")
    if isinstance(exc, openai.NotFoundError):
        return LLMRejected(f"model not found: {where} has no model {model!r} (404); check model and base_url.")
    if isinstance(exc, openai.RateLimitError):
        return LLMUnavailable(f"{where} is rate-limiting requests (429) and retries are exhausted.")
    if isinstance(exc, openai.APITimeoutError):
        return LLMUnavailable(f"{where} did not answer within the timeout.")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(f"could not connect to {where}: is it running and reachable?")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMUnavailable(f"{where} answered HTTP {exc.status_code} and retries are exhausted.")
        return LLMRejected(f"{where} rejected the request (HTTP {exc.status_code}).")
    return LLMUnavailable(f"{where} failed: {type(exc).__name__}.")


async def request_analysis(
    client: AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    base_url: str = "",
) -> LLMAnswer:
    """Ask for a `FailureAnalysis`; at most one repair round-trip.

    Raises:
        LLMUnavailable: unreachable, timing out, rate-limited, 5xx.
        LLMRejected: key, model or request refused.
        LLMInvalidAnswer: no valid answer, even after a repair.
    """
    import openai

    started = time.perf_counter()
    prompt_tokens = completion_tokens = requests = 0
    conversation = list(messages)
    formats = list(RESPONSE_FORMATS)
    repaired = False
    probing = False  # one retry-less request after a 500 to json_schema
    while True:
        fmt = formats[0]
        kwargs: dict[str, Any] = {"temperature": 0, "max_tokens": MAX_ANSWER_TOKENS}
        if fmt is not None:
            kwargs["response_format"] = fmt
        requests += 1
        caller = client.with_options(max_retries=0) if probing else client
        try:
            response = await caller.chat.completions.create(
                model=model, messages=conversation, **kwargs  # type: ignore[arg-type]
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            # Endpoints that do not support a response format answer 400/422.
            if fmt is not None and len(formats) > 1:
                formats.pop(0)
                continue
            raise _translate(exc, base_url, model) from exc
        except openai.InternalServerError as exc:
            # llama.cpp's server answers exactly 500 to json_schema: probe json_object
            # once, without SDK retries. 502/503/504 are outages, not format problems.
            if exc.status_code == 500 and fmt is not None and fmt["type"] == "json_schema" and not probing:
                formats.pop(0)
                probing = True
                continue
            raise _translate(exc, base_url, model) from exc
        except openai.OpenAIError as exc:
            raise _translate(exc, base_url, model) from exc

        probing = False
        if response.usage:
            prompt_tokens += response.usage.prompt_tokens or 0
            completion_tokens += response.usage.completion_tokens or 0
        problem: str
        content = None
        if not response.choices:
            problem = "the response has no choices"
        else:
            choice = response.choices[0]
            content = choice.message.content if choice.message else None
            if choice.finish_reason == "length":
                problem = "the answer was cut off at the token limit; answer more briefly"
            else:
                try:
                    analysis = parse_analysis(content)
                except ValueError as exc:
                    problem = str(exc)
                else:
                    return LLMAnswer(
                        analysis=analysis,
                        model=response.model or model,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        requests=requests,
                    )
        if repaired:
            raise LLMInvalidAnswer(f"no usable answer from {model!r} after one repair: {problem}")
        repaired = True
        if content:
            conversation.append({"role": "assistant", "content": content[:4000]})
        conversation.append(repair_message(problem))
