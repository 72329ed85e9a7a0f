"""`Redactor`: the one way text is redacted (see the package's docstring); `LogRedactor`: the same,
over a stream of log records in their order."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from prefect_failure_insights.redaction.patterns import MASK, PRIVATE_KEY_BEGIN, PRIVATE_KEY_END
from prefect_failure_insights.redaction.sanitize import inert
from prefect_failure_insights.redaction.scanner import find_secrets, masked

#: Half of a UTF-16 surrogate pair on its own (a log decoded with ``surrogateescape``, a JSON
#: ``"\ud83d"``): no UTF-8 encoder accepts it, so no request, row or artifact could carry it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with unpaired surrogates replaced by U+FFFD, so that it can be sent and stored."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


@dataclass
class Redactor:
    """Redacts known secret formats and, optionally, exact secret values, counting what it removed.

    Args:
        literals: Exact strings to remove wherever they occur (for example the values of
            the workspace's Secret blocks). Strings shorter than 6 characters are ignored:
            they would remove ordinary words.

    Example:
        >>> Redactor().redact("postgresql://etl:hunter2@db:5432/x")
        'postgresql://etl:[REDACTED:url_password]@db:5432/x'
        >>> workspace = Redactor(literals=["s3cr3t-value"])
        >>> workspace.redact("key s3cr3t-value"), dict(workspace.counts)
        ('key [REDACTED:secret_value]', {'secret_value': 1})
    """

    literals: Iterable[str] = ()
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        # Matched in the inert text, so as they read there.
        values = sorted({inert(v) for v in self.literals if v and len(inert(v)) >= 6}, key=len, reverse=True)
        self._literal_re = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED:<kind>]``, made `encodable` and
        `inert` (no control, escape, bidi or invisible character: the same door for both);
        redacting twice changes nothing."""
        if not text:
            return text
        text = inert(encodable(text))
        if self._literal_re is not None:
            text, n = self._literal_re.subn(MASK.format(kind="secret_value"), text)
            if n:
                self.counts["secret_value"] += n
        return masked(text, find_secrets(text), self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LogRedactor:
    """Redacts log records in their order: each as `Redactor` does, and what only the order shows.

    A program that logs a key file line by line writes a ``-----BEGIN ... PRIVATE KEY-----``
    record, then one record per line of the key's body, then the ``-----END ...-----`` record:
    each body record alone is only base64. Every record of a stream between a BEGIN record
    and its END is redacted whole (at most ``max_key_records`` of them, in case the END was never
    logged). A stream is one task run's or one flow run's records (``stream``): records of
    other streams interleaved with them are left alone.

    Example:
        >>> log = LogRedactor(Redactor())
        >>> [log.redact(r, stream="t1") for r in ["-----BEGIN RSA PRIVATE KEY-----", "MIIEow...", "-----END RSA PRIVATE KEY-----", "ok"]]
        ['[REDACTED:private_key]', '[REDACTED:private_key]', '[REDACTED:private_key]', 'ok']
    """

    def __init__(self, redactor: Redactor, *, max_key_records: int = 200) -> None:
        self.redactor = redactor
        self.max_key_records = max_key_records
        self._inside: dict[str | None, int] = {}  # stream -> key records redacted so far

    def redact(self, text: str, *, stream: str | None = None) -> str:
        """``text``, the next record of ``stream``, redacted."""
        inside = self._inside.get(stream)
        if inside is not None:
            end = PRIVATE_KEY_END.search(text)
            self.redactor.counts["private_key"] += 1
            if end is not None:
                del self._inside[stream]
                return MASK.format(kind="private_key") + self.redactor.redact(text[end.end():])
            if inside + 1 >= self.max_key_records:
                del self._inside[stream]  # no END within a key's length: what follows is not the key
            else:
                self._inside[stream] = inside + 1
            return MASK.format(kind="private_key") if text.strip() else text
        begin = PRIVATE_KEY_BEGIN.search(text) if "PRIVATE KEY" in text else None
        if begin is not None and PRIVATE_KEY_END.search(text, begin.end()) is None:
            self._inside[stream] = 0
        return self.redactor.redact(text)
