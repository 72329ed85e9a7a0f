"""Secret redaction: nothing leaves the process before it has been through here.

`redact_text()` is a pure function over text; `Redactor` adds the exact values of the
workspace's Secret blocks and counts what it removed. Text from a run is redacted where
it enters (`models.Redacted`, `prefect_api.logs.RunLogs.lines`), and every output is
passed through again as a second line of defence.

It finds secrets the way scanners do (gitleaks, trufflehog, detect-secrets), in families
rather than by example:

1. **Vendor token formats** recognisable by their own shape (a curated subset of gitleaks'
   rules: GitHub, GitLab, Slack, Stripe, AWS, OpenAI, Anthropic, Google, ... and PEM
   private keys and JWTs).
2. **URL credentials**: ``scheme://user:password@<any host text>``, a long token as the
   whole userinfo, Oracle's ``user/password@host``, tokens in webhook and bot URL paths.
3. **Assignments to a secret-looking key**, found key first so that no outer match can
   hide an inner one: ``key=value``, ``key: value``, ``"key": "value"``, ``key => value``,
   ``PWD={...}``, query parameters, YAML ``name:``/``value:`` pairs, with the key's name
   split into words (``dbPassword``, ``DD_APP_KEY``, ``secret.key``). Keys that only
   suggest a secret (``..._key``, ``auth``) need a random-looking value (an entropy check).
4. **Command lines**: ``--password VALUE``, ``--token=VALUE``, ``mysql -pVALUE``,
   ``sshpass -p``, ``docker login -p``, ``curl -u user:pass`` and argv lists in reprs.
5. **Credentials by position**: ``auth=('user', 'secret')``, ``HTTPBasicAuth(u, p)``,
   ``.login(user, password)``, Twilio's ``Client(sid, token)``.
6. **SQL and config forms**: ``PASSWORD '...'``, ``IDENTIFIED BY '...'``, ``.netrc``
   ``password``, Kubernetes Secret ``data:`` values.

Escapes are undone before matching (``\\'``, ``\\"``, ``\\n``, ``\\r\\n`` as Python reprs and
http.client dumps write them, however often escaped again), on a view of the text that
remembers where each character came from, so that what is found maps back to the original.
Placeholders (``<your-api-key>``, ``${VAR}``, ``{{ ... }}``, ``***``, already-redacted
markers) are left alone. Each secret becomes
``[REDACTED:<kind>]``; redacting twice changes nothing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

MASK = "[REDACTED:{kind}]"
_MARKER = "[REDACTED:"

# -- 1. vendor token formats ---------------------------------------------------------------------

_B64 = r"[A-Za-z0-9+/]"
TOKEN_FORMATS: dict[str, str] = {
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    "gitlab_token": r"\bgl(?:pat|dt|ptt|rt|soat|ft|cbt|oas|imt|agent)-[A-Za-z0-9_-]{20,}",
    "slack_token": r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",
    "stripe_key": r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
    "anthropic_key": r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}",
    "openai_key": r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    "aws_access_key_id": r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "google_oauth_secret": r"\bGOCSPX-[A-Za-z0-9_-]{28}",
    "prefect_api_key": r"\bpnu_[A-Za-z0-9]{36}\b",
    "huggingface_token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "sendgrid_key": r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
    "brevo_key": r"\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b",
    "mailgun_key": r"\bkey-[0-9a-f]{32}\b",
    "twilio_key": r"\bSK[0-9a-fA-F]{32}\b",
    "npm_token": r"\bnpm_[A-Za-z0-9]{36}\b",
    "pypi_token": r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}",
    "rubygems_key": r"\brubygems_[a-f0-9]{48}\b",
    "docker_pat": r"\bdckr_pat_[A-Za-z0-9_-]{27,}",
    "shopify_token": r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
    "digitalocean_token": r"\bdo[opr]_v1_[a-f0-9]{64}\b",
    "heroku_key": r"\bHRKU-[A-Za-z0-9_-]{40,}",
    "doppler_token": r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b",
    "vault_token": r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}",
    "databricks_token": r"\bdapi[a-f0-9]{32}(?:-\d)?\b",
    "grafana_token": r"\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|\bglc_[A-Za-z0-9+/]{32,}={0,2}",
    "planetscale_token": r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9=._-]{32,64}",
    "airtable_token": r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b",
    "linear_key": r"\blin_api_[A-Za-z0-9]{40}\b",
    "sentry_token": r"\bsntry[su]_[A-Za-z0-9+/=_]{40,}",
    "atlassian_token": r"\bATATT3[A-Za-z0-9_\-=]{50,}|\bATBB[A-Za-z0-9]{32}\b",
    "square_token": r"\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}|\bEAAA[A-Za-z0-9_-]{60}\b",
    "newrelic_key": r"\bNRAK-[A-Z0-9]{27}\b|\b[a-f0-9]{36}NRAL\b|\bNRJS-[a-f0-9]{19}\b",
    "pulumi_token": r"\bpul-[a-f0-9]{40}\b",
    "postman_key": r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b",
    "dynatrace_token": r"\bdt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b",
    "perplexity_key": r"\bpplx-[A-Za-z0-9]{40,}",
    "infracost_key": r"\bico-[A-Za-z0-9]{32}\b",
    "notion_token": r"\bntn_[0-9]{11}[A-Za-z0-9]{32,35}\b|\bsecret_[A-Za-z0-9]{43}\b",
    "supabase_token": r"\bsbp_[a-f0-9]{40}\b",
    "artifactory_token": r"\bAKCp[A-Za-z0-9]{69}\b|\bcmVmdGtu[A-Za-z0-9]{56}\b",
    "azure_ad_secret": r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}",
    "age_secret_key": r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b",
    "telegram_bot_token": r"(?<![0-9])\d{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])",  # also after /bot
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
}
_TOKENS = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in TOKEN_FORMATS.items()))
# Tokens are long unbroken runs of these characters: only such runs, and only those holding one of
# the formats' fixed parts, are tried against the formats.
_LONG_RUN = re.compile(r"[\w+/=~.:-]{16,}")
_TOKEN_MARKERS = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glptt-", "glrt-", "glsoat-", "glft-",
    "glcbt-", "gloas-", "glimt-", "glagent-", "xox", "xapp-", "_live_", "_test_", "sk-", "AKIA", "ASIA", "AGPA",
    "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ABIA", "ACCA", "AIza", "GOCSPX-", "pnu_", "hf_", "SG.", "xkeysib-",
    "key-", "npm_", "pypi-", "rubygems_", "dckr_pat_", "shpat_", "shpca_", "shppa_", "shpss_", "_v1_", "HRKU-",
    "dp.", "hvs.", "hvb.", "hvr.", "dapi", "glsa_", "glc_", "pscale_", "lin_api_", "sntry", "ATATT3", "ATBB",
    "sq0", "EAAA", "NRAK-", "NRAL", "NRJS-", "pul-", "PMAK-", "dt0c01.", "pplx-", "ico-", "ntn_", "secret_",
    "sbp_", "AKCp", "cmVmdGtu", "Q~", "AGE-SECRET-KEY-", ":AA", "eyJ", "PRIVATE KEY",
    # Formats without a distinctive fixed part (Twilio's SK..., Airtable's pat...) are caught by
    # their key or header: API_KEY=SK..., Authorization: Bearer pat....
)


def _literals(words) -> re.Pattern[str]:
    """One pattern for many fixed strings, grouped by first character (three times faster in `re`)."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    return re.compile("|".join(
        re.escape(first) + "(?:" + "|".join(re.escape(rest) for rest in sorted(rests, key=len, reverse=True)) + ")"
        for first, rests in groups.items()))


_MARKED = _literals(_TOKEN_MARKERS)
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                          r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)", re.DOTALL)

# -- 2. URLs ---------------------------------------------------------------------------------------

# scheme://user:password@host -- the password ends at the last "@" before white space or a quote,
# whatever the host text is (an account, "***", an IPv6 address).
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s:/@'\"<>]*)(?::([^\s'\"<>]*))?@")
_PORT_THEN_PATH = re.compile(r"\d{1,5}(?:[/?#].*)?")
# Oracle thin and EZConnect: user/password@//host or user/password@host:port
_ORACLE = re.compile(r"(?<![\w/.-])([A-Za-z][\w$#.-]{0,63})/([^\s/@'\"]+)@(?=//|[\w.-]+:\d+(?:[/\s'\"]|$))")
# The secret part of webhook and bot URLs: the path after the host.
_WEBHOOK_PATHS = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<slack>[A-Za-z0-9/_-]+)"
    r"|discord(?:app)?\.com/api/webhooks/\d+/(?P<discord>[A-Za-z0-9_-]{30,})"
    r"|webhook\.office\.com/webhookb2/(?P<teams>[^\s'\"<>]+)"
    r"|api\.telegram\.org/bot(?P<telegram>[^\s/'\"]+)"
)

# -- 3. assignments ------------------------------------------------------------------------------

# Substrings (of the lower-cased text) without which no key, flag or call can name a secret.
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "sess", "sig", "cookie", "sas", "bearer",
              "salt", "nonce", "hmac", "appid", "dockercfg", "dockerconfig", "identified", "login", "client(")
_COMMANDS = ("mysql", "mariadb", "sshpass", "docker login", "podman login", "redis-cli", "mongo", "curl", "wget",
             "helm registry")
# One pass over the lower-cased text finds what each family of rules needs (and, for most log
# lines, that none is needed): token markers, key words, commands, an "@", a webhook.
_MARK, _KEYWORD, _COMMAND, _AT, _HOOK = 1, 2, 4, 8, 16
_GATE_FLAGS: dict[str, int] = {}
for _word in {m.lower() for m in _TOKEN_MARKERS}:
    _GATE_FLAGS[_word] = _GATE_FLAGS.get(_word, 0) | _MARK
for _word in _KEY_WORDS:
    _GATE_FLAGS[_word] = _GATE_FLAGS.get(_word, 0) | _KEYWORD
for _word in ("--", *_COMMANDS):
    _GATE_FLAGS[_word] = _GATE_FLAGS.get(_word, 0) | _COMMAND
_GATE_FLAGS["@"] = _AT
_GATE_FLAGS["hook"] = _GATE_FLAGS["telegram"] = _HOOK
for _word in list(_GATE_FLAGS):  # a longer word found instead of a key word it starts with counts as one
    if any(_word.startswith(k) for k in _KEY_WORDS):
        _GATE_FLAGS[_word] |= _KEYWORD
del _word
_GATE = _literals(sorted(_GATE_FLAGS))

_STRONG_WORDS = frozenset({
    "password", "passwd", "passw", "pwd", "pass", "passphrase", "passcode", "secret", "secrets", "token",
    "apikey", "credential", "credentials", "creds", "sessionid", "sessiontoken", "signature", "sig",
    "accountkey", "sharedaccesskey", "sharedaccesssignature", "sas", "authorization", "cookie", "privatekey",
    "secretkey", "accesskey", "clientsecret", "dockerconfigjson", "dockercfg", "authtoken",
    "accesstoken", "refreshtoken", "idtoken", "bearer",
})
_STRONG_PAIRS = frozenset({
    ("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("app", "key"), ("license", "key"),
    ("client", "secret"), ("session", "id"), ("session", "key"), ("fernet", "key"), ("master", "key"),
    ("encryption", "key"), ("signing", "key"), ("account", "key"), ("access", "token"), ("auth", "token"),
    ("refresh", "token"), ("id", "token"), ("application", "key"), ("subscription", "key"), ("service", "key"),
    ("shared", "key"), ("storage", "key"), ("webhook", "secret"), ("x", "api"), ("api", "token"), ("app", "secret"),
    ("consumer", "secret"), ("auth", "key"), ("admin", "key"), ("root", "password"),
})
# Words that, last in a key's name, make it about a secret rather than the secret itself.
_NOT_THE_SECRET = frozenset({
    "name", "names", "url", "uri", "endpoint", "type", "file", "path", "dir", "length", "len", "expires",
    "expiry", "expiration", "ttl", "policy", "required", "hash", "hashed", "count", "header", "field", "prefix",
    "env", "var", "ref", "arn", "version", "format", "method", "mode", "provider", "store", "manager", "backend",
    "rotation", "set", "enabled", "changed", "reset", "min", "max", "timeout", "scope", "scopes", "usage",
    "location", "source", "label", "tokens", "ids", "hint", "strength", "rule", "rules", "class", "stdin",
    "prompt", "in", "at", "age", "lifetime", "algorithm", "alg", "kind", "title", "description", "desc",
    "comment", "note", "help", "message", "msg", "text", "error", "status", "question",
})
# A key's name ending in one of these (PGPASSWORD, MYSQL_PWD, awsSecretAccessKey) is about a secret.
_STRONG_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "pwd", "credentials",
                    "secretkey", "accesskey", "privatekey", "clientsecret")
_WEAK_LAST = frozenset({"key", "auth", "appid", "code", "hmac", "salt", "nonce", "sid"})
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_NOT_SECRET_VALUES = frozenset({
    "", "none", "null", "nil", "true", "false", "yes", "no", "on", "off", "required", "optional", "missing",
    "invalid", "incorrect", "expired", "not", "is", "must", "for", "the", "and", "or", "of", "to", "set", "unset",
    "redacted", "hidden", "masked", "secret", "password", "token", "undefined", "default", "empty", "n/a", "na",
    "authentication", "failed", "denied", "str", "string", "int", "bool", "secretstr", "optional[str]",
})
_PLACEHOLDER = re.compile(
    r"^(?:<[^<>]*>|\[(?:redacted|hidden|masked|filtered|secure|removed)[^\]]*\]|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|%\([^)]*\)s|\*+|x{3,}|•+|\.{3}|…|\?+|os\.environ.*"
    r"|env\(.*|getenv\(.*|<\|.*\|>)$",
    re.IGNORECASE,
)


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(key)]


def key_strength(key: str) -> str | None:
    """``"strong"`` when a key's name says its value is a secret, ``"weak"`` when it only suggests
    one (the value must look random), else None.

    Example:
        >>> key_strength("dbPassword"), key_strength("DD_APP_KEY"), key_strength("partition_key")
        ('strong', 'strong', 'weak')
    """
    words = _words(key)
    if not words or words[-1] in _NOT_THE_SECRET or "public" in words or "pub" in words:
        return None
    joined = "".join(words)
    if words[-1] in _STRONG_WORDS or joined.endswith(_STRONG_SUFFIXES) or any(
            w in _STRONG_WORDS and w not in ("pass", "sig", "sas") for w in words[:-1]):
        return "strong"
    if any(pair in _STRONG_PAIRS for pair in zip(words, words[1:])):
        return "strong"
    if words[-1] in _WEAK_LAST or words[-1] == "id" and len(words) > 1 and words[-2] in ("key", "secret"):
        return "weak"
    return None


_CLASSES = (re.compile("[a-z]"), re.compile("[A-Z]"), re.compile(r"\d"))


def looks_random(value: str) -> bool:
    """A value that looks generated, not typed: long, mixed, and of high entropy."""
    if len(value) < 16 or " " in value:
        return False
    lower, upper, digit = (p.search(value) is not None for p in _CLASSES)
    if not (digit and (lower or upper) or lower and upper):
        return False  # words joined by "_" or "-" are typed, not generated
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.2


def _is_value(value: str) -> bool:
    bare = value.strip()
    return bool(bare) and bare.lower() not in _NOT_SECRET_VALUES and _MARKER not in bare and not _PLACEHOLDER.match(bare)


_WRAPPER = re.compile(r"(?:SecretStr|Secret|SecretBytes|b|u|r)(?=\(?['\"])\(?")
_BARE_VALUE = re.compile(r"[^\s,;&)}\]\"'<>]+")
_ARGV_GAP = re.compile(r"['\"]?\s*,?\s*(?=\S)")


def _value_span(view: str, at: int) -> tuple[int, int] | None:
    """The span of the value that starts at ``at`` (quoted, braced, wrapped or bare), on one line."""
    if at >= len(view):
        return None
    wrapper = _WRAPPER.match(view, at)
    if wrapper:
        at = wrapper.end()
    first = view[at]
    if first in "'\"":
        end = at + 1
        while end < len(view):
            c = view[end]
            if c == "\n":
                return None
            if c == first:
                if view[end + 1:end + 2] == first and first == "'":  # SQL doubles a quote inside a string
                    end += 2
                    continue
                return (at + 1, end) if end > at + 1 else None
            end += 1
        return None
    if first == "{":  # ODBC: PWD={...}, a "}" inside is written "}}"
        end = at + 1
        while end < len(view):
            if view[end] == "}":
                if view[end + 1:end + 2] == "}":
                    end += 2
                    continue
                return (at + 1, end) if end > at + 1 else None
            if view[end] == "\n":
                return None
            end += 1
        return None
    m = _BARE_VALUE.match(view, at)
    return m.span() if m else None


# -- 4. command lines ----------------------------------------------------------------------------

_LONG_FLAG = re.compile(r"(?:^|[\s'\"\[,(])--(?P<flag>[A-Za-z][\w-]*)(?:=|\s+|['\"]\s*,\s*)(?=\S)")
_SHORT_FLAG = re.compile(
    r"\b(?P<cmd>mysql\w*|mariadb\w*|sshpass|docker\s+login|podman\s+login|redis-cli|mongo\w*|curl|wget|helm\s+"
    r"registry\s+login)\b(?P<args>[^\n|;&]*)"
)
_ARG_FLAG = re.compile(r"(?:^|[\s'\",\[])(?P<flag>-[pau])(?P<attached>[^\s'\",\]]*)")

# -- 5. positional credentials -------------------------------------------------------------------

_POSITIONAL = re.compile(
    r"\b(?P<call>(?:\w*_)?auth|HTTPBasicAuth|HTTPDigestAuth|HTTPProxyAuth|BasicAuth|DigestAuth|\w*[Cc]redentials?"
    r"|login)\s*(?:=\s*\(?|\(\s*\(?)\s*(?P<q1>['\"])[^'\"\n]*(?P=q1)\s*,\s*(?P<q2>['\"])(?P<secret>[^'\"\n]+)(?P=q2)"
)
_TWILIO = re.compile(r"\bClient\(\s*(['\"])AC[0-9a-fA-F]{32}\1\s*,\s*(['\"])(?P<secret>[^'\"\n]+)\2")

# -- 6. SQL and config forms ---------------------------------------------------------------------

_SQL_PASSWORD = re.compile(r"(?i)\b(?:identified\s+by|(?:encrypted\s+)?password)\s+(?=['\"])")
_NETRC = re.compile(r"(?im)\blogin\s+\S+\s+password\s+(?=\S)|^\s*password\s+(?=\S+\s*$)")
_YAML_ENV = re.compile(r"(?im)\bname:\s*['\"]?(?P<key>[\w.-]+)['\"]?\s*\n\s*value:\s*")
_K8S_BLOCK = re.compile(r"(?m)^(?P<indent>[ \t]*)(?P<kind>data|stringData):[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*(?:\n|$))+)")
_K8S_ENTRY = re.compile(r"(?m)^[ \t]+[.\w-]+:[ \t]*(?P<value>\S.*?)[ \t]*$")

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
    marked = bool(flags & _MARK) and _MARKED.search(view) is not None
    at = bool(flags & _AT)
    commands = bool(flags & _COMMAND)
    spans: list[_Span] = []

    def add(start: int, end: int, kind: str, rank: int) -> None:
        if end > start and _is_value(view[start:end]):
            spans.append(_Span(start, end, kind, rank))

    if marked:
        for run in _LONG_RUN.finditer(view):
            if _MARKED.search(view, *run.span()):
                for m in _TOKENS.finditer(view, *run.span()):
                    add(m.start(), m.end(), m.lastgroup or "token", 0)
        if "PRIVATE KEY" in view:
            for m in _PRIVATE_KEY.finditer(view):
                add(m.start(), m.end(), "private_key", 0)
    if at:  # credentials in a URL need an "@"
        _urls(view, add)
    if flags & _HOOK:
        for m in _WEBHOOK_PATHS.finditer(view):
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
        for m in _BEARER.finditer(view):
            add(*m.span(1), "bearer_token", 2)
    if "(" in view and ("auth" in low or "login" in low or "cred" in low or "client(" in low):
        for pattern in (_POSITIONAL, _TWILIO):
            for m in pattern.finditer(view):
                add(*m.span("secret"), "positional_credential", 3)
    if "password" in low or "identified" in low:
        for pattern in (_SQL_PASSWORD, _NETRC):
            for m in pattern.finditer(view):
                if span := _value_span(view, m.end()):
                    add(*span, "assignment", 3)
    if "kind: secret" in low or "kubernetes.io/" in low:
        for block in _K8S_BLOCK.finditer(view):
            for m in _K8S_ENTRY.finditer(view, block.start("body"), block.end("body")):
                if block.group("kind") == "stringData" or re.fullmatch(_B64 + r"+={0,2}", m.group("value")):
                    add(*m.span("value"), "k8s_secret_data", 3)


def _urls(view: str, add) -> None:
    for m in _URL_USERINFO.finditer(view):
        user, password = m.group(2), m.group(3)
        if password is not None:
            if _PORT_THEN_PATH.fullmatch(password) and ("." in user or user in ("localhost", "")):
                continue  # host:port/path@..., not user:password@
            add(m.start(3), m.end(3), "url_password", 1)
        elif looks_random(user) and len(user) >= 20:
            add(m.start(2), m.end(2), "url_token", 1)  # a token as the whole userinfo (Sentry DSN, git)
    for m in _ORACLE.finditer(view):
        add(m.start(2), m.end(2), "url_password", 1)


_KEY_RUN = re.compile(r"[\w.$-]+")
_INNER_ASSIGNMENT = re.compile(r"[A-Za-z_][\w.-]*=[^=\s]")
_SEPARATOR = re.compile(r"[ \t]*(?:=>|[:=])[ \t]*|[ \t]+(?=['\"])")


def _assignments(view: str, hits: list[int], add) -> None:
    """Values of keys that name a secret, found from where a key word occurs: the key around it,
    a separator after it, then the value (so no outer match can hide an inner one)."""
    size, i, count = len(view), 0, len(hits)
    for run in _KEY_RUN.finditer(view):
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
        sep = _SEPARATOR.match(view, after)
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
        if key.lower() in ("authorization", "proxy-authorization") or _AUTH_SCHEME.match(view, sep.end()):
            _authorization(view, sep.end(), add)  # token=Bearer <credential>: the credential after the scheme
            continue
        span = _value_span(view, sep.end())
        if span is None:
            continue
        value = view[span[0]:span[1]]
        if strength == "weak" and not looks_random(value) or len(value) <= 6 and value.isdigit():
            continue
        if _INNER_ASSIGNMENT.match(value):
            continue  # "k1=v1;k2=v2": the secret, if any, is one of the inner values (found on their own)
        add(*span, "assignment", 2)
    for m in _YAML_ENV.finditer(view):
        if key_strength(m.group("key")) == "strong":
            span = _value_span(view, m.end())
            if span:
                add(*span, "assignment", 2)


_AUTH_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|digest|negotiate|ssws|apikey|api-key|key|splunk|geniekey"
                          r"|aws4-hmac-sha256|sharedaccesssignature)\s+")


_BARE_CREDENTIAL = re.compile(r"[^\s,;'\"}]+")
_BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)")


def _authorization(view: str, at: int, add) -> None:
    """The credential of an Authorization header: after its scheme, quoted or to the end of the value."""
    quoted = view[at:at + 1] in ("'", '"')
    span = _value_span(view, at) if quoted else None
    start = span[0] if span else at
    scheme = _AUTH_SCHEME.match(view, start)
    if scheme:
        start = scheme.end()
    if span:
        end = span[1]
    else:
        tail = _BARE_CREDENTIAL.match(view, start)
        end = tail.end() if tail else start
    add(start, end, "authorization_header", 2)


def _command_lines(view: str, add) -> None:
    if "--" in view:
        for m in _LONG_FLAG.finditer(view):
            if key_strength(m.group("flag")) == "strong":
                span = _value_span(view, m.end())
                if span and not view[span[0]:span[1]].startswith("-"):
                    add(*span, "cli_password", 3)
    for cmd in _SHORT_FLAG.finditer(view):
        name = cmd.group("cmd").split()[0].lower()
        for m in _ARG_FLAG.finditer(view, cmd.start("args"), cmd.end("args")):
            flag, attached = m.group("flag"), m.group("attached")
            if attached:
                span: tuple[int, int] | None = m.span("attached")
            else:
                gap = _ARGV_GAP.match(view, m.end())
                span = _value_span(view, gap.end()) if gap else None
            if span is None or view[span[0]:span[1]].startswith("-"):
                continue
            value = view[span[0]:span[1]]
            if flag == "-u" and name in ("curl", "wget"):
                if ":" in value:
                    add(span[0] + value.index(":") + 1, span[1], "cli_password", 3)
            elif flag == _PASSWORD_FLAG.get(name, "-p") and (attached or name not in _ATTACHED_ONLY):
                add(*span, "cli_password", 3)


_PASSWORD_FLAG = {"redis-cli": "-a"}
# `mysql -p NAME` prompts for the password and takes NAME as the database: only -pSECRET is a secret.
_ATTACHED_ONLY = ("mysql", "mysqldump", "mysqladmin", "mysqlimport", "mariadb", "mariadb-dump")


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


def _apply(text: str, found: list[tuple[int, int, str]], counts: Counter[str] | None = None) -> str:
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


#: Half of a UTF-16 surrogate pair on its own (a log decoded with ``surrogateescape``, a JSON
#: ``"\ud83d"``): no UTF-8 encoder accepts it, so no request, row or artifact could carry it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with unpaired surrogates replaced by U+FFFD, so that it can be sent and stored."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def redact_text(text: str) -> str:
    """``text`` with every secret the patterns find replaced by ``[REDACTED:<kind>]`` (pure),
    and made `encodable`: everything that enters passes here once.

    Example:
        >>> redact_text("postgresql://etl:hunter2@db:5432/x")
        'postgresql://etl:[REDACTED:url_password]@db:5432/x'
    """
    if not text:
        return text
    text = encodable(text)
    return _apply(text, find_secrets(text))


@dataclass
class Redactor:
    """Redacts known secret formats and, optionally, exact secret values, counting what it removed.

    Args:
        literals: Exact strings to remove wherever they occur (for example the values of
            the workspace's Secret blocks). Strings shorter than 6 characters are ignored:
            they would remove ordinary words.
    """

    literals: Iterable[str] = ()
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        values = sorted({v for v in self.literals if v and len(v) >= 6}, key=len, reverse=True)
        self._literal_re = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``[REDACTED:<kind>]`` (and `encodable`)."""
        if not text:
            return text
        text = encodable(text)
        if self._literal_re is not None:
            text, n = self._literal_re.subn(MASK.format(kind="secret_value"), text)
            if n:
                self.counts["secret_value"] += n
        return _apply(text, find_secrets(text), self.counts)

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
