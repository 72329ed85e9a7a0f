"""Finding secrets in text: one cheap gate, then each family's finders (`redaction.patterns`).

Escapes are undone before matching (``\\'``, ``\\"``, ``\\n``, ``\\r\\n`` as Python reprs and
http.client dumps write them, however often escaped again), on a view of the text that
remembers where each character came from, so that what is found maps back to the original.
Placeholders (``<your-api-key>``, ``${VAR}``, ``{{ ... }}``, ``***``, already-redacted
markers) are left alone. Keys are found key first so that no outer match can hide an inner one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from prefect_failure_insights.redaction.patterns import (
    ARGV_GAP,
    ARG_FLAG,
    ATTACHED_ONLY,
    AUTH_SCHEME,
    B64,
    BARE_CREDENTIAL,
    BEARER,
    COMMANDS,
    DASH_PASSWORD_FLAG,
    INNER_ASSIGNMENT,
    K8S_BLOCK,
    K8S_ENTRY,
    KEY_RUN,
    KEY_WORDS,
    LONG_FLAG,
    LONG_RUN,
    MARKED,
    MASK,
    NAMED,
    NETRC,
    OPENSSL_PASS,
    ORACLE,
    PAIR,
    PAIR_END,
    PASSWORD_FLAG,
    PORT_THEN_PATH,
    POSITIONAL,
    PRIVATE_KEY,
    SEPARATOR,
    SHORT_FLAG,
    SQL_PASSWORD,
    TOKENS,
    TOKEN_MARKERS,
    TWILIO,
    URL_USERINFO,
    USER_PASSWORD_FLAG,
    VALUE_FIELD,
    WEBHOOK_PATHS,
    YAML_ENV,
    is_value,
    key_strength,
    literals,
    looks_random,
    value_span,
)

# One pass over the lower-cased text finds what each family of rules needs (and, for most log
# lines, that none is needed): token markers, key words, commands, an "@", a webhook.
_MARK, _KEYWORD, _COMMAND, _AT, _HOOK = 1, 2, 4, 8, 16


def _gate_flags() -> Mapping[str, int]:
    """Each word the gate looks for, with the families it opens."""
    flags: dict[str, int] = {}
    for word in {m.lower() for m in TOKEN_MARKERS}:
        flags[word] = flags.get(word, 0) | _MARK
    for word in KEY_WORDS:
        flags[word] = flags.get(word, 0) | _KEYWORD
    for word in ("--", *COMMANDS):
        flags[word] = flags.get(word, 0) | _COMMAND
    flags["@"] = _AT
    flags["hook"] = flags["telegram"] = _HOOK
    for word in list(flags):  # a longer word found instead of a key word it starts with counts as one
        if any(word.startswith(k) for k in KEY_WORDS):
            flags[word] |= _KEYWORD
    return MappingProxyType(flags)


_GATE_FLAGS = _gate_flags()
_GATE = literals(sorted(_GATE_FLAGS))


# An escape, however often it was escaped again (a repr of a repr writes \\\\\\n).
_ESCAPES = re.compile(r"\\+[\\'\"nrt]")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: str
    rank: int  # lower wins the kind when spans overlap


def _view(text: str) -> tuple[str, list[int] | None]:
    """The text with escapes undone (``\\'`` -> ``'``, ``\\n`` -> a newline), and where each of
    its characters is in ``text`` (None when nothing was undone)."""
    if "\\" not in text:
        return text, None
    out: list[str] = []
    where: list[int] = []
    last = 0
    for m in _ESCAPES.finditer(text):
        start, end = m.span()
        out.append(text[last:start])
        where.extend(range(last, start))
        char = m.group(0)[-1]
        out.append({"n": "\n", "r": "\n", "t": "\t"}.get(char, char))
        where.append(start)
        last = end
    out.append(text[last:])
    where.extend(range(last, len(text) + 1))
    return "".join(out), where


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of every secret found in ``text`` (patterns only), merged, in order.

    Each family of rules runs only when the text holds what it needs (a token format's fixed
    part, a key word, an "@", a command): most log lines hold none, and cost a lower-casing
    and three searches.
    """
    if not text:
        return []
    view, where = _view(text)
    low = view.lower()
    if len(low) != len(view):  # a few characters lower-case to two ("İ"): keep positions aligned
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in view)
    flags = 0
    keys: list[int] = []
    for m in _GATE.finditer(low):
        flag = _GATE_FLAGS[m.group()]
        flags |= flag
        if flag & _KEYWORD:
            keys.append(m.start())
    if not flags:
        return []
    marked = bool(flags & _MARK) and MARKED.search(view) is not None
    at = bool(flags & _AT)
    commands = bool(flags & _COMMAND)
    spans: list[_Span] = []

    def add(start: int, end: int, kind: str, rank: int) -> None:
        if end > start and is_value(view[start:end]):
            spans.append(_Span(start, end, kind, rank))

    if marked:
        for run in LONG_RUN.finditer(view):
            if MARKED.search(view, *run.span()):
                for m in TOKENS.finditer(view, *run.span()):
                    add(m.start(), m.end(), m.lastgroup or "token", 0)
        if "PRIVATE KEY" in view:
            for m in PRIVATE_KEY.finditer(view):
                add(m.start(), m.end(), "private_key", 0)
    if at:  # credentials in a URL need an "@"
        _urls(view, add)
    if flags & _HOOK:
        for m in WEBHOOK_PATHS.finditer(view):
            add(*m.span(m.lastgroup), "webhook_url", 1)
    if keys:
        _assignments(view, keys, add)
        _keyed_forms(view, low, add)
    if commands:
        _command_lines(view, add)
    merged = _merge(spans)
    if where is not None:  # back to the text's own positions
        merged = [(where[start], where[end], kind) for start, end, kind in merged]
    return merged


def _keyed_forms(view: str, low: str, add) -> None:
    """Credentials by position, SQL, .netrc and Kubernetes Secret forms (each behind its own words)."""
    if "bearer" in low:  # a bearer credential anywhere, whatever names it
        for m in BEARER.finditer(view):
            add(*m.span(1), "bearer_token", 2)
    if "(" in view and ("auth" in low or "login" in low or "cred" in low or "client(" in low or "bind" in low):
        for pattern in (POSITIONAL, TWILIO):
            for m in pattern.finditer(view):
                add(*m.span("secret"), "positional_credential", 3)
    if "," in view and ("(" in view or "[" in view):
        _pairs(view, add)
    if "value" in low:
        _named(view, add)
    if "password" in low or "identified" in low:
        for pattern in (SQL_PASSWORD, NETRC):
            for m in pattern.finditer(view):
                if span := value_span(view, m.end()):
                    add(*span, "assignment", 3)
    if "kind: secret" in low or "kubernetes.io/" in low:
        for block in K8S_BLOCK.finditer(view):
            for m in K8S_ENTRY.finditer(view, block.start("body"), block.end("body")):
                if block.group("kind") == "stringData" or re.fullmatch(B64 + r"+={0,2}", m.group("value")):
                    add(*m.span("value"), "k8s_secret_data", 3)


def _secret_value(view: str, span: tuple[int, int] | None, strength: str | None) -> bool:
    """Whether the value at ``span`` is a secret, for a key of ``strength``."""
    if span is None or strength is None:
        return False
    value = view[span[0]:span[1]]
    return not (strength == "weak" and not looks_random(value) or len(value) <= 6 and value.isdigit())


def _pairs(view: str, add) -> None:
    """Pairs whose first element is a secret's key: ``('spark.hadoop.fs.s3a.secret.key', '...')``,
    ``["fs.azure.account.key.x", "..."]``, a Scala ``(key,value)``; the second element is the secret
    when the pair closes right after it."""
    for m in PAIR.finditer(view):
        strength = key_strength(m.group("key"))
        if strength is None:
            continue
        span = value_span(view, m.end())
        if span is None or not PAIR_END.match(view, span[1]) or not _secret_value(view, span, strength):
            continue
        add(*span, "assignment", 2)


def _named(view: str, add) -> None:
    """Objects that hold a secret's name in one field and its value in a later one:
    ``{'name': 'DB_PASSWORD', 'value': '...'}``, ``Setting(name='x_password', value='...')``,
    ``Row(key='...secret.key', value='...')``, ``{'Name': '/prod/db/password', 'Value': '...'}``."""
    for m in NAMED.finditer(view):
        strength = key_strength(m.group("key"))
        if strength is None:
            continue
        close = min((i for i in (view.find(c, m.end()) for c in "})]\n") if i >= 0), default=len(view))
        field = VALUE_FIELD.search(view, m.end(), close)
        if field is None:
            continue
        span = value_span(view, field.end())
        if _secret_value(view, span, strength):
            add(*span, "assignment", 2)


def _urls(view: str, add) -> None:
    for m in URL_USERINFO.finditer(view):
        user, password = m.group(2), m.group(3)
        if password is not None:
            if PORT_THEN_PATH.fullmatch(password) and ("." in user or user in ("localhost", "")):
                continue  # host:port/path@..., not user:password@
            add(m.start(3), m.end(3), "url_password", 1)
        elif looks_random(user) and len(user) >= 20:
            add(m.start(2), m.end(2), "url_token", 1)  # a token as the whole userinfo (Sentry DSN, git)
    for m in ORACLE.finditer(view):
        add(m.start(2), m.end(2), "url_password", 1)


def _assignments(view: str, hits: list[int], add) -> None:
    """Values of keys that name a secret, found from where a key word occurs: the key around it,
    a separator after it, then the value (so no outer match can hide an inner one)."""
    size, i, count = len(view), 0, len(hits)
    for run in KEY_RUN.finditer(view):
        start, end = run.span()
        while i < count and hits[i] < start:
            i += 1
        if i == count:
            break
        if hits[i] >= end:
            continue  # no key word in this run
        while i < count and hits[i] < end:
            i += 1
        key = view[start:end].strip(".-")
        after = end + 1 if end < size and start > 0 and view[end] == view[start - 1] and view[end] in "'\"" else end
        sep = SEPARATOR.match(view, after)
        if not key or sep is None:
            continue
        strength = key_strength(key)
        if strength is None:
            continue
        separator = sep.group(0)
        if separator == ":" and view[start - 1:start] == ":":
            continue  # a segment of a colon-separated name (an ARN, a URN), not a key
        if strength == "weak" and view[max(start - 7, 0):start].lower().rstrip(" \t").endswith("public"):
            continue  # "public key: ..."
        if view[max(start - 3, 0):start] == "://":
            continue  # a URL's user name: the URL rule handles its password
        if view[sep.end():sep.end() + 1] == "{" and "=" not in separator:
            continue  # a nested mapping ("credentials": {...}): its own keys are scanned
        if separator.strip() == "" and strength != "strong":
            continue
        if key.lower() in ("authorization", "proxy-authorization") or AUTH_SCHEME.match(view, sep.end()):
            _authorization(view, sep.end(), add)  # token=Bearer <credential>: the credential after the scheme
            continue
        span = value_span(view, sep.end())
        if span is None:
            continue
        value = view[span[0]:span[1]]
        if strength == "weak" and not looks_random(value) or len(value) <= 6 and value.isdigit():
            continue
        if INNER_ASSIGNMENT.match(value):
            continue  # "k1=v1;k2=v2": the secret, if any, is one of the inner values (found on their own)
        add(*span, "assignment", 2)
    for m in YAML_ENV.finditer(view):
        if key_strength(m.group("key")) == "strong":
            span = value_span(view, m.end())
            if span:
                add(*span, "assignment", 2)


def _authorization(view: str, at: int, add) -> None:
    """The credential of an Authorization header: after its scheme, quoted or to the end of the value."""
    quoted = view[at:at + 1] in ("'", '"')
    span = value_span(view, at) if quoted else None
    start = span[0] if span else at
    scheme = AUTH_SCHEME.match(view, start)
    if scheme:
        start = scheme.end()
    if span:
        end = span[1]
    else:
        tail = BARE_CREDENTIAL.match(view, start)
        end = tail.end() if tail else start
    add(start, end, "authorization_header", 2)


def _command_lines(view: str, add) -> None:
    if "--" in view:
        for m in LONG_FLAG.finditer(view):
            if key_strength(m.group("flag")) == "strong":
                span = value_span(view, m.end())
                if span and not view[span[0]:span[1]].startswith("-"):
                    add(*span, "cli_password", 3)
    for m in DASH_PASSWORD_FLAG.finditer(view):  # -storepass X, -passin pass:X, -pw X
        span = value_span(view, m.end())
        if span is None or view[span[0]:span[1]].startswith("-"):
            continue
        if view.startswith(OPENSSL_PASS, span[0]):
            span = (span[0] + len(OPENSSL_PASS), span[1])
        elif re.match(r"(?:env|file|fd|stdin)(?::|$)", view[span[0]:span[1]]):
            continue  # names where the pass phrase is, not the pass phrase
        add(*span, "cli_password", 3)
    for cmd in SHORT_FLAG.finditer(view):
        name = re.split(r"['\",\s]", cmd.group("cmd"), maxsplit=1)[0].lower()
        for m in ARG_FLAG.finditer(view, cmd.start("args"), cmd.end("args")):
            flag, attached = m.group("flag"), m.group("attached")
            if attached:
                span: tuple[int, int] | None = m.span("attached")
            else:
                gap = ARGV_GAP.match(view, m.end())
                span = value_span(view, gap.end()) if gap else None
            if span is None or view[span[0]:span[1]].startswith("-"):
                continue
            value = view[span[0]:span[1]]
            joined = USER_PASSWORD_FLAG.get(name)
            if joined is not None and flag == joined[0]:
                if joined[1] in value:  # user:password, user%password, user,password
                    add(span[0] + value.index(joined[1]) + 1, span[1], "cli_password", 3)
            elif flag == PASSWORD_FLAG.get(name, "-p") and (attached or name not in ATTACHED_ONLY):
                add(*span, "cli_password", 3)


def _merge(spans: list[_Span]) -> list[tuple[int, int, str]]:
    out: list[list] = []
    for span in sorted(spans, key=lambda s: (s.start, s.rank)):
        if out and span.start <= out[-1][1]:
            last = out[-1]
            last[1] = max(last[1], span.end)
            if span.rank < last[3]:
                last[2], last[3] = span.kind, span.rank
        else:
            out.append([span.start, span.end, span.kind, span.rank])
    return [(s, e, k) for s, e, k, _ in out]


def masked(text: str, found: list[tuple[int, int, str]], counts: Counter[str] | None = None) -> str:
    """``text`` with each ``found`` span replaced by its mask, counted by kind in ``counts``."""
    if not found:
        return text
    out, last = [], 0
    for start, end, kind in found:
        out.append(text[last:start])
        out.append(MASK.format(kind=kind))
        last = end
        if counts is not None:
            counts[kind] += 1
    out.append(text[last:])
    return "".join(out)
