"""What the models share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator

from prefect_failure_insights.defaults import LOG_MESSAGE_MAX_CHARS
from prefect_failure_insights.redaction import Redactor, capped, inert

M = TypeVar("M", bound=BaseModel)

#: Reports progress of long work: ``progress(stage, done, total)`` (the CLI draws a bar with it).
Progress = Callable[[str, int, int], None]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive time (as SQLite returns them) is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def bounded(text: str) -> str:
    """One message from a run at most `LOG_MESSAGE_MAX_CHARS` long (Prefect's own limit): its
    start and end, saying how much was cut between them. Applied where log lines are read, before
    anything else looks at them (a 100 MB line would cost gigabytes in redaction)."""
    return capped(text, LOG_MESSAGE_MAX_CHARS)


def _bounded(value: object) -> object:
    return bounded(value) if isinstance(value, str) else value


#: Text from a run or an LLM: every model field of this type is bounded, redacted and made
#: inert when the model is built, so no evidence, prompt, artifact, row or event can be made
#: of the raw text. (The exact values of Secret blocks are removed where the text is read,
#: with the workspace's `Redactor`; this is the pattern pass, which needs nothing but the text.)
def _redacted(text: str) -> str:
    return Redactor().redact(text)


Redacted = Annotated[str, BeforeValidator(_bounded), AfterValidator(_redacted)]
#: Text from a run that cannot hold a secret but can hold anything else (a state's name: a flow
#: may return ``Failed(name=...)``): made inert, so that it is only ever read.
Inert = Annotated[str, AfterValidator(inert)]


def redacted_with(model: M, redactor: Redactor) -> M:
    """``model`` with every text in it passed through ``redactor`` too (the exact values of the
    workspace's Secret blocks, which the `Redacted` fields' patterns cannot know)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.redact(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return type(model).model_validate(walk(model.model_dump()))
