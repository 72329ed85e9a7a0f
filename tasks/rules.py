"""Named classification rules: error text -> category, with a confidence and generic fixes.

Rules are tried in order; the first match wins, so specific rules come before
general ones. Each rule has a name (reported as ``rule:<name>``), the category it
assigns, a confidence, regular expressions over the error text and/or exception
type names, a one-line explanation of *why* such failures happen, and generic fix
steps. The deterministic fallback summary is built from the matching rule.

Categories:

* ``INPUT_DATA_QUALITY``: the data is bad or changed (validation, schema drift,
  types, malformed files, nulls, duplicates).
* ``THIRD_PARTY_SYSTEM``: an external service failed or refused (vendor HTTP errors,
  rate limits, vendor auth, cloud storage, unreachable databases).
* ``WORKFLOW_ENGINE``: the pipeline's own code, configuration, orchestration and
  infrastructure (bugs, own SQL, missing modules, Prefect errors, OOM, evictions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prefect_failure_insights.models import Category

D, T, W = Category.INPUT_DATA_QUALITY, Category.THIRD_PARTY_SYSTEM, Category.WORKFLOW_ENGINE


@dataclass(frozen=True)
class Rule:
    name: str
    category: Category
    confidence: float
    pattern: str = ""
    exception_types: tuple[str, ...] = ()
    why: str = ""
    fix: tuple[str, ...] = ()
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern:
            object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE | re.MULTILINE))

    def matches_type(self, exception_type: str | None) -> bool:
        if not exception_type or not self.exception_types:
            return False
        short = exception_type.rsplit(".", 1)[-1]
        return any(short == e or exception_type == e for e in self.exception_types)

    def matches_text(self, text: str) -> bool:
        return bool(self._regex and self._regex.search(text))


_RETRY_VENDOR = (
    "Check the provider's status page and retry the run once the service has recovered.",
    "Give the task retries with backoff (`@task(retries=3, retry_delay_seconds=[10, 60, 300])`) "
    "so short outages do not fail the run.",
)

RULES: tuple[Rule, ...] = (
    # --- orchestration and infrastructure ------------------------------------------------
    Rule("oom-killed", W, 0.95,
         r"\bOOMKilled\b|exit(?:ed)?\s*(?:with\s*)?(?:status\s*)?(?:code)?:?\s*137\b|out of memory|\bMemoryError\b",
         ("MemoryError",),
         "The process ran out of memory and was killed by the operating system or Kubernetes.",
         ("Raise the memory limit of the work pool's job (job variables) or of the container.",
          "Process the data in smaller chunks, or stream it instead of loading it whole.")),
    Rule("pod-not-started", W, 0.9,
         r"pod never started|FailedScheduling|\bEvicted\b|CrashLoopBackOff|"
         r"did not complete within timeout|infrastructure exited with non-zero status",
         (), "The run's infrastructure (pod, container, job) did not start or was stopped.",
         ("Inspect the worker's logs and `kubectl describe` the job's pod for events.",
          "Check resource requests, node capacity and the work pool's job template.")),
    Rule("crash-interrupt", W, 0.85,
         r"Crash detected|Execution was (?:aborted|interrupted)|\bSIGTERM\b|\bSIGKILL\b",
         ("KeyboardInterrupt", "SystemExit", "Abort", "TerminationSignal"),
         "The flow run's process was interrupted or exited before it finished.",
         ("Find what stopped the process: a deploy, a scale-down, a manual cancel, or sys.exit().",
          "Re-run the flow; enable flow retries for runs that may be interrupted.")),
    Rule("prefect-engine", W, 0.85,
         r"\bUnfinishedRun\b|\bMissingResult\b|prefect\.exceptions\.|api\.prefect\.(?:io|cloud)|"
         r"PREFECT_API_URL|Flow run .* was not found",
         ("UnfinishedRun", "MissingResult", "ObjectNotFound", "PrefectHTTPStatusError"),
         "Prefect itself could not run or track the flow (API, results or state handling).",
         ("Check that the worker can reach PREFECT_API_URL and that result storage is configured.",
          "Look for the first task that did not complete: later errors are its consequences.")),
    Rule("missing-module", W, 0.95,
         r"No module named|cannot import name|ImportError",
         ("ModuleNotFoundError", "ImportError"),
         "The code imports a package that is not installed in the run's environment.",
         ("Add the package to the image or the deployment's pip_packages / requirements.",
          "Rebuild and redeploy, then re-run.")),
    Rule("own-sql", W, 0.85,
         r"SQL compilation error|syntax error (?:at|line)|Binder Error|column .* does not exist|"
         r"UndefinedColumn|UndefinedTable|relation .* does not exist|Referenced column .* not found|"
         r"invalid identifier|no such (?:table|column)",
         ("UndefinedColumn", "UndefinedTable", "BinderException", "SyntaxError"),
         "A query written by the pipeline is invalid against the current database schema.",
         ("Run the failing SQL by hand to see the exact error position.",
          "Fix the query or the model, or migrate the schema it expects.")),
    # --- data -------------------------------------------------------------------------------
    Rule("data-validation", D, 0.9,
         r"expect_column_|SchemaError|validation failed|failed expectation|"
         r"Expected \d+ fields in line \d+|Error tokenizing data|could not convert string to|"
         r"invalid literal for int\(\)|Conversion Error|Could not convert string|"
         r"contains only \d+ columns|too many errors|Out of bounds nanosecond|"
         r"value too long for type|incompatible types|codec can't decode|"
         r"violates not-null constraint|null value in column|duplicate key value|UniqueViolation|"
         r"malformed|unexpected (?:null|empty) value|\b\d+ null(?:s| values)\b|column .{0,60}\bnulls?\b",
         ("ParserError", "SchemaError", "ConversionException", "UnicodeDecodeError",
          "OutOfBoundsDatetime", "ArrowInvalid", "UniqueViolation", "NotNullViolation",
          "StringDataRightTruncation", "DataError", "ValidationFailure"),
         "The input data does not have the shape, types or values the pipeline expects.",
         ("Look at the rows or file named in the error and fix or quarantine them at the source.",
          "Add a validation step that rejects bad rows with a clear report instead of failing the load.",
          "If the source changed its schema on purpose, update the pipeline's expectations.")),
    # --- third parties ----------------------------------------------------------------------
    Rule("rate-limited", T, 0.9,
         r"\b429\b|Too Many Requests|rate limit|Rate exceeded|Throttl|quota exceeded|"
         r"toomanyrequests|rateLimitExceeded|Exceeded rate limits",
         ("RateLimitError", "ThrottlingException"),
         "An external service refused requests because a rate limit or quota was exceeded.",
         ("Lower the request rate: batch requests, add backoff, or use a Prefect concurrency limit.",
          "Ask the provider for a higher quota if the load is expected.")),
    Rule("vendor-auth", T, 0.85,
         r"\b401\b|\b403\b|Unauthori[sz]ed|Forbidden|Incorrect username or password|"
         r"invalid (?:api[ _-]?key|token|credentials)|authentication failed|access denied|"
         r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken",
         ("AuthenticationError", "PermissionDeniedError", "Forbidden", "Unauthorized"),
         "An external service rejected the pipeline's credentials or permissions.",
         ("Check that the credentials block or secret used by the task is current (not expired or rotated).",
          "Check the permissions of that account for the resource named in the error.")),
    Rule("vendor-5xx", T, 0.85,
         r"\b50[0234]\b.*(?:Error|error|Server|Service|Gateway)|Service Unavailable|Bad Gateway|"
         r"Gateway Time-?out|Internal Server Error|InternalServerError|ServiceUnavailable",
         ("InternalServerError", "ServiceUnavailable", "BadGateway", "ServerError"),
         "An external service answered with a server error (5xx): the failure is on its side.",
         _RETRY_VENDOR),
    Rule("object-not-found", T, 0.8,
         r"NoSuchKey|NoSuchBucket|The specified key does not exist|BlobNotFound|404 Not Found",
         ("NoSuchKey", "NoSuchBucket", "BlobNotFoundError"),
         "An object the pipeline reads from cloud storage or an API does not exist.",
         ("Check that the upstream producer wrote the object, and the bucket/key or URL the task builds.",
          "Wait for (or sense) the upstream delivery before reading it.")),
    Rule("connection", T, 0.75,
         r"Connection refused|Connection reset|Connection aborted|Name or service not known|"
         r"nodename nor servname|Temporary failure in name resolution|timed out|"
         r"Could not connect|Max retries exceeded|RemoteDisconnected|Network is unreachable",
         ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError",
          "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "OperationalError"),
         "The pipeline could not reach an external system (network, DNS, timeout or the service is down).",
         ("Check that the host in the error is up and reachable from the worker (DNS, firewall, VPN).",
          *_RETRY_VENDOR[1:])),
    # --- the pipeline's own code (generic, last) ----------------------------------------------
    Rule("code-bug", W, 0.6,
         r"",
         ("KeyError", "AttributeError", "TypeError", "NameError", "IndexError", "AssertionError",
          "ZeroDivisionError", "NotImplementedError", "RecursionError", "UnboundLocalError"),
         "The pipeline's own code raised an exception it does not handle.",
         ("Open the traceback at the last frame in your code and reproduce with the same inputs.",
          "Fix the code or handle the case; add a test for it.")),
)


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule | None

    @property
    def category(self) -> Category:
        return self.rule.category if self.rule else Category.UNKNOWN

    @property
    def confidence(self) -> float:
        return self.rule.confidence if self.rule else 0.0

    @property
    def classified_by(self) -> str:
        return f"rule:{self.rule.name}" if self.rule else "none"


def classify(text: str, exception_type: str | None = None) -> RuleMatch:
    """The first rule matching ``text`` / ``exception_type``, or an UNKNOWN match.

    Example:
        >>> classify("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests").classified_by
        'rule:rate-limited'
    """
    # The exception's type is the strongest signal; then the text, rule by rule.
    for rule in RULES:
        if rule.matches_type(exception_type):
            return RuleMatch(rule)
    for rule in RULES:
        if rule.matches_text(text):
            return RuleMatch(rule)
    return RuleMatch(None)
