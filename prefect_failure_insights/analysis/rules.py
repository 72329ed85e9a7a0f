"""Named classification rules: error text -> category, with a confidence and generic fixes.

Rules are tried in order; the first match wins, so specific rules come before
general ones. Each rule has a name (reported as ``rule:<name>``), the category it
assigns, a confidence, regular expressions over the error text and/or exception
type names, a one-line explanation of *why* such failures happen, and generic fix
steps. The deterministic fallback summary is built from the matching rule.

An exception type listed by any rule wins over every text pattern, so only types that
mean one thing are listed: ambiguous ones (``OperationalError`` is a lost connection in
psycopg2 but a missing table in sqlite3 and MySQL; ``AssertionError`` is often a data
check) are left to the text patterns, or to the LLM.

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
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect_failure_insights.models import Category

D, T, W = Category.INPUT_DATA_QUALITY, Category.THIRD_PARTY_SYSTEM, Category.WORKFLOW_ENGINE


@dataclass(frozen=True)
class Rule:
    name: str
    category: Category | str  # a str for categories added by configuration
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
         r"\bOOMKilled\b|exit(?:ed)?\s*(?:with\s*)?(?:status\s*)?(?:code)?:?\s*137\b|out of memory|\bMemoryError\b|"
         r"Unable to allocate [\d.]+ [KMGT]i?B|Cannot allocate memory|std::bad_alloc",
         ("MemoryError", "_ArrayMemoryError"),
         "The process ran out of memory and was killed by the operating system or Kubernetes.",
         ("Raise the memory limit of the work pool's job (job variables) or of the container.",
          "Process the data in smaller chunks, or stream it instead of loading it whole.")),
    Rule("disk-full", W, 0.9,
         r"No space left on device|\[Errno 28\]|\bDiskPressure\b|ephemeral[- ]storage|Disk quota exceeded",
         (),
         "The worker's disk (or the container's ephemeral storage) filled up while the run was writing files.",
         ("Clean up temporary files as the flow goes, or write them to object storage instead of local disk.",
          "Give the job more disk: a larger volume or a higher ephemeral-storage limit in the work pool's "
          "job template.")),
    Rule("kubernetes-api", W, 0.85,
         r"kubernetes\.client\.(?:exceptions|rest)\.ApiException|system:serviceaccount:|"
         r"/api/v1/namespaces/|/apis/batch/v1/|is forbidden: User ",
         (),
         "The worker or the flow was refused or failed by the cluster's own Kubernetes API "
         "(RBAC, service account, in-cluster certificates).",
         ("Check the service account the worker and the job run as, and its Role/RoleBinding in that namespace.",
          "Compare the work pool's namespace and job template with what the service account may create.")),
    Rule("pod-not-started", W, 0.9,
         r"pod never started|FailedScheduling|\bEvicted\b|was evicted|The node was low on resource|CrashLoopBackOff|"
         r"BackoffLimitExceeded|did not complete within timeout|infrastructure exited with non-zero status|"
         r"process exited with non-zero status|Could not determine exit code|Failed to submit flow run",
         (), "The run's infrastructure (pod, container, job) did not start or was stopped.",
         ("Inspect the worker's logs and `kubectl describe` the job's pod for events.",
          "Check resource requests, node capacity and the work pool's job template.")),
    Rule("crash-interrupt", W, 0.85,
         r"Crash detected|Execution was (?:aborted|interrupted)|\bSIGTERM\b|\bSIGKILL\b",
         ("KeyboardInterrupt", "SystemExit", "Abort", "TerminationSignal"),
         "The flow run's process was interrupted or exited before it finished.",
         ("Find what stopped the process: a deploy, a scale-down, a manual cancel, or sys.exit().",
          "Re-run the flow; enable flow retries for runs that may be interrupted.")),
    Rule("native-crash", W, 0.85,
         r"Segmentation fault|\bSIGSEGV\b|\bSIGABRT\b|\bSIGBUS\b|terminated by signal \d+|\(core dumped\)|"
         r"Fatal Python error|exit(?:ed)? (?:with )?(?:status |code )+(?:139|134)\b",
         (),
         "The process crashed in native code (a segfault or abort), usually in a compiled library or "
         "the runtime environment.",
         ("Reproduce in the same image; pin or upgrade the compiled packages (numpy, pyarrow, DB drivers) "
          "to versions built for that platform.",
          "Check for mixed architectures (arm64/amd64), or thread-unsafe libraries used from several "
          "threads or processes.")),
    Rule("orchestrator-heartbeat", W, 0.8,
         r"heartbeat got an exception|\bmissed heartbeats?\b|missing heartbeats?|\bno heartbeat\b|"
         r"heartbeat (?:failed|timed out|timeout)|\bzombie (?:job|task|run)s?\b|Detected zombie",
         (),
         "The orchestrator lost track of the run: its heartbeat to the scheduler/API stopped.",
         ("Check whether the worker or the process running the flow died or was starved of CPU at that time.",
          "Check the orchestrator's own database and API health at that time; re-run the flow.")),
    Rule("prefect-timeout", W, 0.75,
         r"(?:Flow|Task) run exceeded timeout of",
         ("FlowRunTimeoutError", "TaskRunTimeoutError"),
         "The flow or task ran longer than its configured `timeout_seconds` and Prefect stopped it.",
         ("Find the step that got slower (more data, a slow query, a slow dependency) in the run's logs.",
          "Raise `timeout_seconds` if the longer run is expected, or split the work into smaller runs.")),
    Rule("prefect-engine", W, 0.85,
         r"\bUnfinishedRun\b|\bMissingResult\b|\bCrashedRun\b|prefect\.exceptions\.|api\.prefect\.(?:io|cloud)|"
         r"PREFECT_API_URL|Flow run .* was not found|Failed to reach API at",
         ("UnfinishedRun", "MissingResult", "CrashedRun", "ObjectNotFound", "PrefectHTTPStatusError",
          "MissingFlowError", "InfrastructureError", "InfrastructureNotFound", "InfrastructureNotAvailable"),
         "Prefect itself could not run or track the flow (API, results or state handling).",
         ("Check that the worker can reach PREFECT_API_URL and that result storage is configured.",
          "Look for the first task that did not complete: later errors are its consequences.")),
    Rule("pipeline-config", W, 0.8,
         r"Unable to find block document named|validation errors? for \w*(?:Settings|Config)\b|"
         r"environment variable \S+ (?:is )?(?:not set|missing|undefined|required)|"
         r"missing (?:required )?(?:environment variable|setting|configuration)|"
         r"Unable to locate credentials|default credentials were not found",
         ("ScriptError", "ParameterTypeError", "ParameterBindError", "MissingProfileError",
          "NoCredentialsError", "DefaultCredentialsError"),
         "The pipeline's configuration is missing or invalid: a block, a setting, an environment variable "
         "or the deployment's entrypoint/parameters.",
         ("Check the deployment's job variables, environment and parameters against what the flow reads at start.",
          "Create or fix the block / secret it names (`prefect block ls`), then re-run.")),
    Rule("missing-module", W, 0.95,
         r"No module named|cannot import name|ImportError",
         ("ModuleNotFoundError", "ImportError"),
         "The code imports a package that is not installed in the run's environment.",
         ("Add the package to the image or the deployment's pip_packages / requirements.",
          "Rebuild and redeploy, then re-run.")),
    Rule("tls-local-trust", W, 0.75,
         r"unable to get local issuer certificate|Could not find a suitable TLS CA certificate bundle",
         (),
         "The run's environment does not trust the certificate chain: its CA bundle is missing or lacks "
         "a corporate/cluster CA.",
         ("Install the CA certificates in the image (`ca-certificates`, certifi) or add the internal CA.",
          "Point SSL_CERT_FILE / REQUESTS_CA_BUNDLE at the right bundle; do not turn verification off.")),
    Rule("dbt-project", W, 0.85,
         r"Compilation Error in (?:model|test|macro|seed|snapshot|analysis|source)|"
         r"depends on a node named .* which was not found|dbt internally failed|"
         r"Could not find profile named|Parsing Error in|Could not find (?:a )?dbt_project\.yml|not a dbt project",
         (),
         "dbt could not compile or run the project itself (Jinja, refs, profiles, adapter), "
         "before any data was checked.",
         ("Run `dbt compile` / `dbt debug` with the same profile and target to see the error locally.",
          "Fix the ref, macro or profile it names, or pin the dbt adapter version the project was built with.")),
    Rule("own-sql", W, 0.85,
         r"SQL compilation error|syntax error (?:at|line)|Binder Error|column .* does not exist|"
         r"UndefinedColumn|UndefinedTable|relation .* does not exist|Referenced column .* not found|"
         r"invalid identifier|no such (?:table|column)|Syntax error: (?:Unexpected|Expected|Missing|Illegal)|"
         r"Unrecognized name: |Unknown column '[^']+' in|table or view does not exist",
         ("UndefinedColumn", "UndefinedTable", "BinderException", "SyntaxError"),
         "A query written by the pipeline is invalid against the current database schema.",
         ("Run the failing SQL by hand to see the exact error position.",
          "Fix the query or the model, or migrate the schema it expects.")),
    # --- data -------------------------------------------------------------------------------
    Rule("schema-drift", D, 0.85,
         r"schema mismatch|schema (?:has )?changed|schema drift|Schema at index \d+ was different|"
         r"does not match Table|has changed type from|expected columns? .{0,200}\bgot\b",
         (),
         "The input's schema changed: columns were renamed, added, removed or changed type upstream.",
         ("Compare the new file or table's columns with the previous delivery; ask the producer "
          "whether the change was intended.",
          "If it was, update the pipeline's schema and expectations; otherwise quarantine the delivery.")),
    Rule("data-validation", D, 0.9,
         r"\bexpect_(?:column|table|multicolumn|compound)_\w+|SchemaError|validation failed|"
         r"failed expectation|expectations? failed|"
         r"Failure in test |Got \d+ results?, configured to fail if|"
         r"Expected \d+ fields in line \d+|Error tokenizing data|could not convert string to|"
         r"invalid literal for int\(\)|Conversion Error|Could not convert string|"
         r"contains only \d+ columns|too many errors|Out of bounds nanosecond|"
         r"value too long for type|incompatible types|codec can't decode|"
         r"invalid input syntax for (?:type )?\w+|numeric field overflow|out of range for type|"
         r"time data .{0,80} (?:does not|doesn't) match format|cannot convert (?:float )?NaN to integer|"
         r"Cannot convert non-finite values|Integer column has NA values|Could not parse '[^']*' as \w+ for field|"
         r"object of type .{0,40} cannot be converted to|"
         r"violates foreign key constraint|"
         r"\[type=(?!missing\b)[a-z_]+, input_value=|"
         r"violates not-null constraint|null value in column|duplicate key value|UniqueViolation|"
         r"\b\d+ duplicate|duplicate (?:rows|records|values|keys)\b|"
         r"malformed|unexpected (?:null|empty) value|\b\d+ null(?:s| values)\b|column .{0,60}\bnulls?\b",
         ("ParserError", "SchemaError", "ConversionException", "UnicodeDecodeError",
          "OutOfBoundsDatetime", "ArrowInvalid", "UniqueViolation", "NotNullViolation",
          "StringDataRightTruncation", "DataError", "ValidationFailure",
          "InvalidTextRepresentation", "NumericValueOutOfRange", "InvalidDatetimeFormat", "DatetimeFieldOverflow",
          "ForeignKeyViolation"),
         "The input data does not have the shape, types or values the pipeline expects.",
         ("Look at the rows or file named in the error and fix or quarantine them at the source.",
          "Add a validation step that rejects bad rows with a clear report instead of failing the load.",
          "If the source changed its schema on purpose, update the pipeline's expectations.")),
    # --- third parties ----------------------------------------------------------------------
    Rule("rate-limited", T, 0.9,
         r"\b429\b|Too Many Requests|rate limit|Rate exceeded|Throttl|quota exceeded|"
         r"toomanyrequests|rateLimitExceeded|Exceeded rate limits|\bSlowDown\b|reduce your request rate|"
         r"RequestLimitExceeded",
         ("RateLimitError", "ThrottlingException"),
         "An external service refused requests because a rate limit or quota was exceeded.",
         ("Lower the request rate: batch requests, add backoff, or use a Prefect concurrency limit.",
          "Ask the provider for a higher quota if the load is expected.")),
    # Images and the container daemon are the pipeline's own; after rate-limited, because a
    # registry's pull limit (`toomanyrequests`) is a third party's.
    Rule("image-pull", W, 0.85,
         r"ErrImagePull|ImagePullBackOff|Failed to pull image|pull access denied|manifest unknown|"
         r"manifest for \S+ not found|InvalidImageName|may require 'docker login'",
         (),
         "The run's container image could not be pulled: a wrong name or tag, or missing registry credentials.",
         ("Check that the image and tag in the deployment / work pool exist in the registry (was the build pushed?).",
          "Check the image pull secret or the node's registry credentials.")),
    Rule("docker-daemon", W, 0.8,
         r"docker\.errors\.|Cannot connect to the Docker daemon|Error response from daemon|http\+docker://",
         (),
         "The Docker daemon running the flow's container refused or failed the request "
         "(mounts, image, daemon state).",
         ("Read the daemon's message: it usually names the bad mount, image or option in the job configuration.",
          "Check that the worker's Docker daemon is running and reachable.")),
    Rule("vendor-auth", T, 0.85,
         r"\b401\b|\b403\b|Unauthori[sz]ed|Forbidden|Incorrect username or password|"
         r"invalid (?:api[ _-]?key|token|credentials)|authentication failed|access denied|"
         r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|"
         r"Expired session|session (?:has )?expired|INVALID_SESSION_ID|invalid_grant|token (?:has )?expired",
         ("AuthenticationError", "PermissionDeniedError", "Forbidden", "Unauthorized", "AuthenticationException"),
         "An external service rejected the pipeline's credentials or permissions.",
         ("Check that the credentials block or secret used by the task is current (not expired or rotated).",
          "Check the permissions of that account for the resource named in the error.")),
    Rule("vendor-5xx", T, 0.85,
         r"\b50[0234]\b.*(?:Error|error|Server|Service|Gateway)|Service Unavailable|Bad Gateway|"
         r"Gateway Time-?out|Internal Server Error|InternalServerError|ServiceUnavailable|"
         r"encountered an internal error|\bbackendError\b",
         ("InternalServerError", "ServiceUnavailable", "BadGateway", "ServerError"),
         "An external service answered with a server error (5xx): the failure is on its side.",
         _RETRY_VENDOR),
    Rule("vendor-bad-response", T, 0.7,
         r"unexpected mimetype: text/html|requests\.exceptions\.JSONDecodeError|RequestsJSONDecodeError|"
         r"requests/models\.py\", line \d+, in json|httpx/_models\.py\", line \d+, in json",
         ("RequestsJSONDecodeError", "ContentTypeError"),
         "An external service answered with a body that is not the JSON it normally sends "
         "(an error or maintenance page, an empty body).",
         ("Log the response's status code and the first bytes of its body before decoding it.",
          *_RETRY_VENDOR)),
    Rule("object-not-found", T, 0.8,
         r"NoSuchKey|NoSuchBucket|The specified key does not exist|BlobNotFound|404 Not Found",
         ("NoSuchKey", "NoSuchBucket", "BlobNotFoundError"),
         "An object the pipeline reads from cloud storage or an API does not exist.",
         ("Check that the upstream producer wrote the object, and the bucket/key or URL the task builds.",
          "Wait for (or sense) the upstream delivery before reading it.")),
    Rule("connection", T, 0.75,
         r"Connection refused|Connection reset|Connection aborted|Name or service not known|"
         r"nodename nor servname|Temporary failure in name resolution|timed out|"
         r"Could not connect|Max retries exceeded|RemoteDisconnected|Network is unreachable|"
         r"could not connect to server|connection to server at .* failed|Failed to establish a new connection|"
         r"Failed to get the response|server closed the connection unexpectedly|SSL SYSCALL error|"
         r"Lost connection to (?:MySQL )?server|server has gone away|could not translate host name|"
         r"Can't connect to MySQL server|Server disconnected|Connection broken|IncompleteRead",
         ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError",
          "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "EndpointConnectionError",
          "RemoteProtocolError", "ChunkedEncodingError", "NoBrokersAvailable"),
         "The pipeline could not reach an external system (network, DNS, timeout or the service is down).",
         ("Check that the host in the error is up and reachable from the worker (DNS, firewall, VPN).",
          *_RETRY_VENDOR[1:])),
    # --- the pipeline's own code (generic, last) ----------------------------------------------
    Rule("json-lines-misread", W, 0.65,
         r"Extra data: line \d+ column 1 \(char \d+\)|ValueError: Trailing data",
         (),
         "A file of JSON Lines (one document per line) was parsed as a single JSON document.",
         ("Read it line by line (`json.loads` per line) or with `pd.read_json(path, lines=True)`.",)),
    Rule("library-internal-error", W, 0.6,
         r"^\s*(?-i:INTERNAL Error:)|assertion failure within|This is (?:probably |likely )?a bug in",
         (),
         "A library or engine the pipeline uses hit an internal error (a bug in it, not in the data).",
         ("Search the library's issue tracker for the message; upgrade or pin a version without the bug.",
          "Work around it by rewriting the step (a different query form or API) until it is fixed.")),
    Rule("code-bug", W, 0.6,
         r"^(?:\w+\.)*(?:NameError|UnboundLocalError|AttributeError|RecursionError|NotImplementedError): ",
         ("KeyError", "AttributeError", "TypeError", "NameError", "IndexError",
          "ZeroDivisionError", "NotImplementedError", "RecursionError", "UnboundLocalError"),
         "The pipeline's own code raised an exception it does not handle.",
         ("Open the traceback at the last frame in your code and reproduce with the same inputs.",
          "Fix the code or handle the case; add a test for it.")),
)


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule | None

    @property
    def category(self) -> Category | str:
        return self.rule.category if self.rule else Category.UNKNOWN

    @property
    def confidence(self) -> float:
        return self.rule.confidence if self.rule else 0.0

    @property
    def classified_by(self) -> str:
        return f"rule:{self.rule.name}" if self.rule else "none"


def classify(text: str, exception_type: str | None = None, rules: Sequence[Rule] = ()) -> RuleMatch:
    """The first rule of ``rules`` (default: `RULES`) matching ``text`` / ``exception_type``,
    or an UNKNOWN match.

    Example:
        >>> classify("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests").classified_by
        'rule:rate-limited'
    """
    # The exception's type is the strongest signal; then the text, rule by rule.
    rules = rules or RULES
    for rule in rules:
        if rule.matches_type(exception_type):
            return RuleMatch(rule)
    for rule in rules:
        if rule.matches_text(text):
            return RuleMatch(rule)
    return RuleMatch(None)
