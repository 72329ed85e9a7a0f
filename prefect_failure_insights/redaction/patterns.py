"""What secrets look like, family by family (the scanner, `redaction.scanner`, finds them).

1. **Vendor token formats** recognisable by their own shape (a curated subset of gitleaks'
   rules) and PEM private keys and JWTs.
2. **URL credentials**: ``scheme://user:password@host``, Oracle's ``user/password@host``,
   tokens in webhook and bot URL paths.
3. **Assignments to a secret-looking key**: what makes a key's name about a secret
   (`key_strength`) and a value look generated (`looks_random`) or like a placeholder.
   Also as *pairs*: ``('spark.hadoop.fs.s3a.secret.key', '...')``, ``["key", "..."]``, a Scala
   ``(key,value)``, and objects that hold a secret's *name* and its *value* in two fields
   (``{'name': 'DB_PASSWORD', 'value': '...'}``, ``Setting(name=..., value=...)``, ``Row(key=...,
   value=...)``).
4. **Command lines**, as a shell line or an argv list or tuple repr (``CalledProcessError:
   Command '[...]'``): ``--password VALUE``, single-dash password flags (``-storepass``,
   ``-passin pass:...``), each tool's own password flag (``mysql -pVALUE``, ``sqlcmd -P``,
   ``sshpass -p``, ``redis-cli -a``, ``curl -u user:pass``, ``smbclient -U user%pass``,
   ``lftp -u user,pass``).
5. **Credentials by position**: ``auth=('user', 'secret')``, ``auth=(USER, 'secret')``,
   ``HTTPBasicAuth(u, p)``, ``login(user, 'secret')``, ``simple_bind_s(dn, 'secret')``: the
   second element a literal, the first anything.
6. **SQL and config forms**: ``IDENTIFIED BY '...'``, ``.netrc``, Kubernetes Secret data.

A private key logged one record per line is a family of its own, which only the order of the
records shows: `redaction.LogRedactor`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType

#: What a secret becomes.
MASK = "[REDACTED:{kind}]"
#: What marks text that was redacted already (never redacted again).
MARKER = "[REDACTED:"

# -- 1. vendor token formats ---------------------------------------------------------------------

B64 = r"[A-Za-z0-9+/]"
TOKEN_FORMATS: Mapping[str, str] = MappingProxyType({
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
})
TOKENS = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in TOKEN_FORMATS.items()))
# Tokens are long unbroken runs of these characters: only such runs, and only those holding one of
# the formats' fixed parts, are tried against the formats.
LONG_RUN = re.compile(r"[\w+/=~.:-]{16,}")
TOKEN_MARKERS = (
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


def literals(words: Iterable[str]) -> re.Pattern[str]:
    """One pattern for many fixed strings, grouped by first character (three times faster in `re`)."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    return re.compile("|".join(
        re.escape(first) + "(?:" + "|".join(re.escape(rest) for rest in sorted(rests, key=len, reverse=True)) + ")"
        for first, rests in groups.items()))


MARKED = literals(TOKEN_MARKERS)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                          r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)", re.DOTALL)
PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PRIVATE_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

# -- 2. URLs ---------------------------------------------------------------------------------------

# scheme://user:password@host -- the password ends at the last "@" before white space or a quote,
# whatever the host text is (an account, "***", an IPv6 address).
URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s:/@'\"<>]*)(?::([^\s'\"<>]*))?@")
PORT_THEN_PATH = re.compile(r"\d{1,5}(?:[/?#].*)?")
# Oracle thin and EZConnect: user/password@//host or user/password@host:port
ORACLE = re.compile(r"(?<![\w/.-])([A-Za-z][\w$#.-]{0,63})/([^\s/@'\"]+)@(?=//|[\w.-]+:\d+(?:[/\s'\"]|$))")
# The secret part of webhook and bot URLs: the path after the host.
WEBHOOK_PATHS = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<slack>[A-Za-z0-9/_-]+)"
    r"|discord(?:app)?\.com/api/webhooks/\d+/(?P<discord>[A-Za-z0-9_-]{30,})"
    r"|webhook\.office\.com/webhookb2/(?P<teams>[^\s'\"<>]+)"
    r"|api\.telegram\.org/bot(?P<telegram>[^\s/'\"]+)"
)

# -- 3. assignments ------------------------------------------------------------------------------

# Substrings (of the lower-cased text) without which no key, flag or call can name a secret.
KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "sess", "sig", "cookie", "sas", "bearer",
              "salt", "nonce", "hmac", "appid", "dockercfg", "dockerconfig", "identified", "login", "client(", "bind")
COMMANDS = ("mysql", "mariadb", "sshpass", "docker", "podman", "redis-cli", "mongo", "curl", "wget",
             "helm registry", "sqlcmd", "bcp", "isql", "osql", "smbclient", "lftp", "-pass", "-storepass",
             "-keypass", "-pw")
STRONG_WORDS = frozenset({
    "password", "passwd", "passw", "pwd", "pass", "passphrase", "passcode", "secret", "secrets", "token",
    "apikey", "credential", "credentials", "creds", "sessionid", "sessiontoken", "signature", "sig",
    "accountkey", "sharedaccesskey", "sharedaccesssignature", "sas", "authorization", "cookie", "privatekey",
    "secretkey", "accesskey", "clientsecret", "dockerconfigjson", "dockercfg", "authtoken",
    "accesstoken", "refreshtoken", "idtoken", "bearer",
})
STRONG_PAIRS = frozenset({
    ("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("app", "key"), ("license", "key"),
    ("client", "secret"), ("session", "id"), ("session", "key"), ("fernet", "key"), ("master", "key"),
    ("encryption", "key"), ("signing", "key"), ("account", "key"), ("access", "token"), ("auth", "token"),
    ("refresh", "token"), ("id", "token"), ("application", "key"), ("subscription", "key"), ("service", "key"),
    ("shared", "key"), ("storage", "key"), ("webhook", "secret"), ("x", "api"), ("api", "token"), ("app", "secret"),
    ("consumer", "secret"), ("auth", "key"), ("admin", "key"), ("root", "password"),
})
# Words that, last in a key's name, make it about a secret rather than the secret itself.
NOT_THE_SECRET = frozenset({
    "name", "names", "url", "uri", "endpoint", "type", "file", "path", "dir", "length", "len", "expires",
    "expiry", "expiration", "ttl", "policy", "required", "hash", "hashed", "count", "header", "field", "prefix",
    "env", "var", "ref", "arn", "version", "format", "method", "mode", "provider", "store", "manager", "backend",
    "rotation", "set", "enabled", "changed", "reset", "min", "max", "timeout", "scope", "scopes", "usage",
    "location", "source", "label", "tokens", "ids", "hint", "strength", "rule", "rules", "class", "stdin",
    "prompt", "in", "at", "age", "lifetime", "algorithm", "alg", "kind", "title", "description", "desc",
    "comment", "note", "help", "message", "msg", "text", "error", "status", "question",
})
# A key's name ending in one of these (PGPASSWORD, MYSQL_PWD, awsSecretAccessKey) is about a secret.
STRONG_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "pwd", "credentials",
                    "secretkey", "accesskey", "privatekey", "clientsecret")
WEAK_LAST = frozenset({"key", "auth", "appid", "code", "hmac", "salt", "nonce", "sid"})
WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

NOT_SECRET_VALUES = frozenset({
    "", "none", "null", "nil", "true", "false", "yes", "no", "on", "off", "required", "optional", "missing",
    "invalid", "incorrect", "expired", "not", "is", "must", "for", "the", "and", "or", "of", "to", "set", "unset",
    "redacted", "hidden", "masked", "secret", "password", "token", "undefined", "default", "empty", "n/a", "na",
    "authentication", "failed", "denied", "str", "string", "int", "bool", "secretstr", "optional[str]",
})
PLACEHOLDER = re.compile(
    r"^(?:<[^<>]*>|\[(?:redacted|hidden|masked|filtered|secure|removed)[^\]]*\]|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|%\([^)]*\)s|\*+|x{3,}|•+|\.{3}|…|\?+|os\.environ.*"
    r"|env\(.*|getenv\(.*|<\|.*\|>)$",
    re.IGNORECASE,
)


def name_words(key: str) -> list[str]:
    """The words of a key's name, lower-cased: ``dbPassword`` -> ``['db', 'password']``."""
    return [w.lower() for w in WORDS.findall(key)]


def key_strength(key: str) -> str | None:
    """``"strong"`` when a key's name says its value is a secret, ``"weak"`` when it only suggests
    one (the value must look random), else None.

    Example:
        >>> key_strength("dbPassword"), key_strength("DD_APP_KEY"), key_strength("partition_key")
        ('strong', 'strong', 'weak')
    """
    words = name_words(key)
    if not words or words[-1] in NOT_THE_SECRET or "public" in words or "pub" in words:
        return None
    joined = "".join(words)
    if words[-1] in STRONG_WORDS or joined.endswith(STRONG_SUFFIXES) or any(
            w in STRONG_WORDS and w not in ("pass", "sig", "sas") for w in words[:-1]):
        return "strong"
    if any(pair in STRONG_PAIRS for pair in zip(words, words[1:])):
        return "strong"
    if words[-1] in WEAK_LAST or words[-1] == "id" and len(words) > 1 and words[-2] in ("key", "secret"):
        return "weak"
    return None


CLASSES = (re.compile("[a-z]"), re.compile("[A-Z]"), re.compile(r"\d"))


def looks_random(value: str) -> bool:
    """A value that looks generated, not typed: long, mixed, and of high entropy."""
    if len(value) < 16 or " " in value:
        return False
    lower, upper, digit = (p.search(value) is not None for p in CLASSES)
    if not (digit and (lower or upper) or lower and upper):
        return False  # words joined by "_" or "-" are typed, not generated
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.2


def is_value(value: str) -> bool:
    bare = value.strip()
    return bool(bare) and bare.lower() not in NOT_SECRET_VALUES and MARKER not in bare and not PLACEHOLDER.match(bare)


WRAPPER = re.compile(r"(?:SecretStr|Secret|SecretBytes|b|u|r)(?=\(?['\"])\(?")
BARE_VALUE = re.compile(r"[^\s,;&)}\]\"'<>]+")
ARGV_GAP = re.compile(r"['\"]?\s*,?\s*(?=\S)")


def value_span(view: str, at: int) -> tuple[int, int] | None:
    """The span of the value that starts at ``at`` (quoted, braced, wrapped or bare), on one line."""
    if at >= len(view):
        return None
    wrapper = WRAPPER.match(view, at)
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
    if view.startswith("${", at):  # a placeholder (``${DB_PASSWORD}``), read whole
        end = view.find("}", at)
        if 0 < end and "\n" not in view[at:end]:
            return at, end + 1
    m = BARE_VALUE.match(view, at)
    return m.span() if m else None


# -- 4. command lines ----------------------------------------------------------------------------

LONG_FLAG = re.compile(r"(?:^|[\s'\"\[,(])--(?P<flag>[A-Za-z][\w-]*)(?:=|\s+|['\"]\s*,\s*)(?=\S)")
# A command and its arguments, as a shell line or an argv repr (``'sqlcmd', '-S', 'db', ...``).
SHORT_FLAG = re.compile(
    r"\b(?P<cmd>mysql\w*|mariadb\w*|sshpass|docker['\"]?,?\s+['\"]?login|podman['\"]?,?\s+['\"]?login|redis-cli|mongo\w*"
    r"|curl|wget|helm\s+registry\s+login|sqlcmd|bcp|isql|osql|smbclient|lftp)\b(?P<args>[^\n|;&]*)"
)
ARG_FLAG = re.compile(r"(?:^|[\s'\",\[(])(?P<flag>-[pauPU])(?P<attached>[^\s'\",\])]*)")
# Single-dash long flags that take a password (Java's keytool and jarsigner, OpenSSL, PuTTY's plink/pscp).
DASH_PASSWORD_FLAG = re.compile(
    r"(?:^|[\s'\",\[(])-(?:store|key|src|dest|srcstore|deststore|src_|dest_)?(?:pass(?:word|wd|phrase)?|passin|passout"
    r"|pw|pwd)(?:['\"]?\s*,\s*['\"]?|\s+|=)(?=\S)", re.IGNORECASE)
#: OpenSSL's pass phrase arguments: only ``pass:`` carries the secret (``env:``, ``file:`` name where it is).
OPENSSL_PASS = "pass:"

# -- 5. positional credentials -------------------------------------------------------------------

# The second element is a literal; the first is a literal or a name (``USER``, ``cfg.user``,
# ``os.environ['API_USER']``): a pair of names (``auth=(s.user, s.password)``) holds no secret.
_FIRST = r"(?:(?P<q1>['\"])[^'\"\n]*(?P=q1)|[A-Za-z_][\w.]*(?:\[[^\]\n]{1,80}\])?)"
POSITIONAL = re.compile(
    r"\b(?P<call>(?:\w*_)?auth|HTTPBasicAuth|HTTPDigestAuth|HTTPProxyAuth|BasicAuth|DigestAuth|\w*[Cc]redentials?"
    r"|login|\w*bind(?:_s)?)\s*(?:=\s*\(?|\(\s*\(?)\s*" + _FIRST
    + r"\s*,\s*(?P<q2>['\"])(?P<secret>[^'\"\n]+)(?P=q2)"
)
TWILIO = re.compile(r"\bClient\(\s*(['\"])AC[0-9a-fA-F]{32}\1\s*,\s*(['\"])(?P<secret>[^'\"\n]+)\2")

# -- 6. SQL and config forms ---------------------------------------------------------------------

SQL_PASSWORD = re.compile(r"(?i)\b(?:identified\s+by|(?:encrypted\s+)?password)\s+(?=['\"])")
NETRC = re.compile(r"(?im)\blogin\s+\S+\s+password\s+(?=\S)|^\s*password\s+(?=\S+\s*$)")
YAML_ENV = re.compile(r"(?im)\bname:\s*['\"]?(?P<key>[\w.-]+)['\"]?\s*\n\s*value:\s*")
K8S_BLOCK = re.compile(r"(?m)^(?P<indent>[ \t]*)(?P<kind>data|stringData):[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*(?:\n|$))+)")
K8S_ENTRY = re.compile(r"(?m)^[ \t]+[.\w-]+:[ \t]*(?P<value>\S.*?)[ \t]*$")

# -- 3b. pairs and name/value objects ---------------------------------------------------------------

# A two-element pair whose first element is a key: ``('k', 'v')``, ``["k", "v"]``, ``(k,v)``.
PAIR = re.compile(r"[(\[]\s*(?P<q>['\"]?)(?P<key>[\w.$/:-]{2,200})(?P=q)\s*,\s*")
PAIR_END = re.compile(r"['\"]?\s*[)\]]")
# An object that names a setting in one field and holds its value in another.
NAMED = re.compile(r"(?i)\b(?:name|key|param(?:eter)?|option|property|setting|field|variable|env)(?P<q0>['\"]?)\s*"
                   r"[:=]\s*(?P<q>['\"])(?P<key>[^'\"\n]{1,200})(?P=q)")
VALUE_FIELD = re.compile(r"(?i)\bvalue['\"]?\s*[:=]\s*")


# -- what the scanner's finders match ------------------------------------------------------------

KEY_RUN = re.compile(r"[\w.$-]+")
INNER_ASSIGNMENT = re.compile(r"[A-Za-z_][\w.-]*=[^=\s]")
SEPARATOR = re.compile(r"[ \t]*(?:=>|[:=])[ \t]*|[ \t]+(?=['\"])")
AUTH_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|digest|negotiate|ssws|apikey|api-key|key|splunk|geniekey"
                          r"|aws4-hmac-sha256|sharedaccesssignature)\s+")
BARE_CREDENTIAL = re.compile(r"[^\s,;'\"}]+")
BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)")
PASSWORD_FLAG: Mapping[str, str] = MappingProxyType({
    "redis-cli": "-a", "sqlcmd": "-P", "bcp": "-P", "isql": "-P", "osql": "-P", "smbclient": "-U", "lftp": "-u"})
#: Flags whose value is ``user<sep>password``: the password is what follows the separator.
USER_PASSWORD_FLAG: Mapping[str, tuple[str, str]] = MappingProxyType({
    "curl": ("-u", ":"), "wget": ("-u", ":"), "smbclient": ("-U", "%"), "lftp": ("-u", ",")})
# `mysql -p NAME` prompts for the password and takes NAME as the database: only -pSECRET is a secret.
ATTACHED_ONLY = ("mysql", "mysqldump", "mysqladmin", "mysqlimport", "mariadb", "mariadb-dump")
