"""The plugin's exception tree.

Our exception hierarchy::

    FailureInsightsError
    ├── ConfigurationError      a block is missing or invalid
    ├── InputError              a file or option given by the user cannot be used
    │   └── BundleError         a bundle file cannot be read
    ├── RunNotFound             no flow run with that id
    ├── RunNotFailed            the run did not fail or crash
    ├── LLMError                the LLM could not give a usable answer
    │   ├── LLMUnavailable      unreachable, timing out, rate-limited, 5xx
    │   │   └── LLMTransient    one such failure, worth a retry (raised per request)
    │   ├── LLMRejected         400/401/403/404: key, model or request refused
    │   │   └── FormatRejected  the requested response_format was refused (per request)
    │   └── LLMInvalidAnswer    no valid structured answer, even after a repair
    └── StorageError            the summaries database failed
        └── SchemaVersionError  the database was written by a newer version

Every message says what is wrong and what to do about it; the CLI prints it as one
line (exit 2 for `ConfigurationError`, `InputError`, `RunNotFound` and `RunNotFailed`,
exit 1 for the others). LLM errors never fail a summarizer run: they select the
deterministic fallback and become its recorded reason. `LLMTransient` and
`FormatRejected` are raised by one request and handled by the exchange that owns the
retries (`llm.structured`); they leave it only as `LLMUnavailable` or, when every format
was refused, as the last `FormatRejected`.
"""

from __future__ import annotations


class FailureInsightsError(Exception):
    """Base class of every error this plugin raises on purpose."""


class ConfigurationError(FailureInsightsError):
    """A block is missing or its values cannot work."""


class InputError(FailureInsightsError):
    """A file or option given by the user cannot be used (malformed, missing columns, ...)."""


class BundleError(InputError):
    """A bundle file cannot be read (missing, not JSON, not a bundle)."""


class RunNotFound(FailureInsightsError):
    """There is no flow run with the given id on this Prefect API."""


class RunNotFailed(FailureInsightsError):
    """The flow run is not in a Failed or Crashed state."""


class LLMError(FailureInsightsError):
    """The LLM could not produce a usable answer. Triggers the fallback.

    ``prompt_tokens`` / ``completion_tokens``: what the failed exchange still cost (the
    answers that could not be used), so the cost ledger and the budgets count it.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLMUnavailable(LLMError):
    """The endpoint is unreachable, timed out, rate-limited or answering 5xx."""


class LLMTransient(LLMUnavailable):
    """One request failed in a way worth retrying (429, 5xx, timeout, connection, garbled body).

    ``status`` is the HTTP status when there was one; ``retry_after`` the server's
    ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class EmbeddingsUnavailable(FailureInsightsError):
    """The embeddings endpoint failed or answered something unusable: similar failures are found
    lexically instead."""


class LLMRejected(LLMError):
    """The endpoint refused the request (bad key, unknown model, bad request)."""


class FormatRejected(LLMRejected):
    """The endpoint refused the requested response format."""


class LLMInvalidAnswer(LLMError):
    """The answer was not valid JSON of the expected shape, even after one repair."""


class StorageError(FailureInsightsError):
    """The summaries database could not be read or written."""


class SchemaVersionError(StorageError):
    """The database schema is newer than this version of the plugin understands."""
