"""Secret redaction: nothing leaves the process before it has been through here.

`Redactor.redact()` is a pure function over text. It is applied to every log line,
state message and task message that can reach an LLM prompt, an artifact or a
database row, and counts what it removed by kind so that a summary can say
"12 secrets redacted" without ever showing one.

Patterns are ordered: specific token formats first, then structural ones
(URLs with passwords, headers, ``key=value`` assignments), so that a value is
labelled by its most specific kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

MASK = "[REDACTED:{kind}]"

_ASSIGN_KEYS = (
    r"passw(?:or)?d|passwd|pwd|secret|client[_-]?secret|secret[_-]?key"
    r"|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key"
    r"|aws[_-]?secret[_-]?access[_-]?key|auth[_-]?token|access[_-]?token"
    r"|refresh[_-]?token|id[_-]?token|token|private[_-]?key"
    r"|session[_-]?token|x-api-key|api[_-]?token"
    # Azure storage / service bus connection strings and SAS URLs.
    r"|accountkey|sharedaccesskey|sharedaccesssignature|sig"
)


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    # Group to replace; 0 replaces the whole match.
    group: int = 0
    # A cheap test the text must pass before the pattern is tried (speed: most lines pass none).
    hint: str | None = None


def _rule(kind: str, pattern: str, group: int = 0, flags: int = 0, hint: str | None = None) -> Rule:
    return Rule(kind, re.compile(pattern, flags), group, hint)


# Formats recognisable by their own shape, tried only when one of their prefixes occurs.
TOKEN_RULES: tuple[Rule, ...] = (
    _rule(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
        flags=re.DOTALL,
    ),
    _rule("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _rule("aws_access_key_id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    _rule("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    _rule("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    _rule("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b"),
    _rule("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    _rule("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    _rule("openai_key", r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api\d+-)?)?[A-Za-z0-9_-]{20,}"),
    _rule("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    _rule("prefect_api_key", r"\bpnu_[A-Za-z0-9]{36}\b"),
    _rule("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    _rule("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"),
)
_TOKEN_HINT = re.compile(
    r"PRIVATE KEY|eyJ|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA|gh[pousr]_|github_pat_"
    r"|glpat-|xox|hooks\.slack|_live_|_test_|sk-|AIza|pnu_|hf_|SG\."
)

# Formats found by their context.
CONTEXT_RULES: tuple[Rule, ...] = (
    # scheme://user:password@host -- keep the user and host, drop the password.
    # The password may itself contain "/" or "@": it ends at the last "@" before a host.
    _rule(
        "url_password",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:([^\s'\"]+)@(?=[\w.-]+(?::\d+)?(?:[/?#\s'\",;)]|$))",
        group=1,
        hint="://",
    ),
    _rule(
        "authorization_header",
        r"(?i)\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?"
        r"((?:bearer|basic|token|digest|apikey|negotiate)\s+[^\s\"',}]+|[^\s\"',}]+)",
        group=1,
        hint="authorization",
    ),
    _rule("bearer_token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)", group=1, hint="bearer"),
)

# key=value, key: value, key => value, "key": "value", PWD=...; in connection strings.
# Any identifier counts when it ends in a key name: PGPASSWORD, dbPassword, myApiKey.
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.-])[\"']?([A-Za-z0-9_.-]{2,80})[\"']?\s*(?:=>?|:(?!//))\s*"
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&(){}\[\]\"']+)"
)
_SECRET_KEY = re.compile(r"(?i)(?:^|[_.-]|(?<=[a-z0-9]))(?:" + _ASSIGN_KEYS + r")$")
RULES = (*TOKEN_RULES, *CONTEXT_RULES)

# Values that an assignment pattern would catch but that are not secrets.
_NOT_SECRET_VALUES = frozenset(
    {"", "none", "null", "true", "false", "***", "[redacted]", "<redacted>", "****",
     "required", "missing", "invalid", "incorrect", "expired", "not", "is", "must",
     "authentication", "for", "the", "...", "\u2026", "<redacted>", "xxx", "xxxx"}
)


@dataclass
class Redactor:
    """Redacts known secret formats and, optionally, exact secret values.

    Args:
        literals: Exact strings to remove wherever they occur (for example the
            values of the workspace's Secret blocks). Strings shorter than 6
            characters are ignored: they would remove ordinary words.
    """

    literals: Iterable[str] = ()
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        values = sorted({v for v in self.literals if v and len(v) >= 6}, key=len, reverse=True)
        self._literal_re = (
            re.compile("|".join(re.escape(v) for v in values)) if values else None
        )

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``[REDACTED:<kind>]``."""
        if not text:
            return text
        if self._literal_re is not None:
            text, n = self._literal_re.subn(MASK.format(kind="secret_value"), text)
            if n:
                self.counts["secret_value"] += n
        if _TOKEN_HINT.search(text):
            for rule in TOKEN_RULES:
                text = self._apply(rule, text)
        lower = text.lower()
        for rule in CONTEXT_RULES:
            if rule.hint in lower:
                text = self._apply(rule, text)
        if "=" in text or ":" in text:
            text = self._replace(_ASSIGNMENT, 2, "assignment", text, key_group=1)
        return text

    def _apply(self, rule: Rule, text: str) -> str:
        if rule.group == 0:
            text, n = rule.pattern.subn(MASK.format(kind=rule.kind), text)
            if n:
                self.counts[rule.kind] += n
            return text
        return self._replace(rule.pattern, rule.group, rule.kind, text)

    def _replace(self, pattern: re.Pattern[str], group: int, kind: str, text: str,
                 key_group: int | None = None) -> str:
        out: list[str] = []
        last = 0
        for m in pattern.finditer(text):
            if key_group is not None and not _SECRET_KEY.search(m.group(key_group)):
                continue
            value = m.group(group)
            start, end = m.span(group)
            bare = value.strip("\"'").strip()
            if bare.lower() in _NOT_SECRET_VALUES or "[REDACTED:" in value:
                continue
            out.append(text[last:start])
            quote = value[0] if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1 else ""
            out.append(f"{quote}{MASK.format(kind=kind)}{quote}")
            last = end
            self.counts[kind] += 1
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact(text: str) -> tuple[str, dict[str, int]]:
    """Redact one text with the default rules; return it with counts by kind.

    Example:
        >>> redact("postgresql://etl:hunter2@db:5432/x")[0]
        'postgresql://etl:[REDACTED:url_password]@db:5432/x'
    """
    r = Redactor()
    return r.redact(text), dict(r.counts)
