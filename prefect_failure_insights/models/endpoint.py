"""Another LLM endpoint for one call, with the key that belongs to it."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class LLMEndpoint(BaseModel):
    """An OpenAI-compatible endpoint to ask instead of the configured one, for one call.

    The configured block's API key and extra headers go only to the block's own base URL:
    this endpoint gets ``api_key`` (its own) or no key at all (a local server needs none).
    Passed by in-process callers (the CLI's ``--llm-url`` with ``--llm-api-key-env``); the
    deployed flows take no URL parameter that could redirect the block's key elsewhere.
    """

    url: str = Field(description="Base URL of the endpoint, e.g. http://127.0.0.1:11434/v1.")
    api_key: SecretStr | None = Field(default=None, description="This endpoint's own API key, if it needs one.")
