"""The knowledge base of failure causes: error text -> a named cause, its category and fixes.

In the manner of Jenkins' Build Failure Analyzer, each rule names a *cause* ("Out of
memory"), explains it in one sentence (``why``), carries fix steps for that cause (and
a documentation link where one exists), a category and a transience (would re-running
unchanged help?). It matches by regular expressions over the error text and/or exception
type names. The deterministic analysis is built from the matching cause; teams add their
own causes in the settings (``extra_rules``), tried before these.

**Which rule answers.** The rules that list the exception's type are the candidates (the
type is the strongest signal), else those whose pattern matches the text; of them, the one
with the highest *measured* confidence wins, so a precise rule beats a generic one whatever
the order. A rule's confidence is its precision on the labelled corpus's training split
(`analysis.calibration`, with the author's prior for rules that rarely fire), and below
the calibrated threshold the answer is UNKNOWN (`analysis.matching`): a rule that is right half the time is a
lead for the reader (``RuleMatch.near``), not a category.

Rules are written for *families* that carry over to failures nobody here has seen:
exception types that mean one thing, SQLSTATE classes, HTTP status classes, drivers' and
warehouses' error codes, and well-known messages of widely used libraries; never a phrase
of a single example. Ambiguous exception types (``OperationalError`` is a lost connection
in psycopg2 but a missing table in sqlite3) are left to the text, or to the LLM.

Categories:

* ``INPUT_DATA_QUALITY``: the data is bad or changed (validation, schema drift,
  types, malformed files, nulls, duplicates).
* ``THIRD_PARTY_SYSTEM``: an external service failed or refused (vendor HTTP errors,
  rate limits, expired vendor sessions, provider capacity).
* ``WORKFLOW_ENGINE``: the pipeline's own code, configuration, orchestration and
  infrastructure (bugs, own SQL, missing modules, permissions we set, OOM, evictions,
  services the pipeline runs itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect_failure_insights.models import Category, Transience

D, T, W = Category.INPUT_DATA_QUALITY, Category.THIRD_PARTY_SYSTEM, Category.WORKFLOW_ENGINE
TR, IN, PE, UN = Transience.TRANSIENT, Transience.INTERMITTENT, Transience.PERMANENT, Transience.UNKNOWN


@dataclass(frozen=True)
class Rule:
    """One cause of the knowledge base and how to recognise it."""

    name: str
    category: Category | str  # a str for categories added by configuration
    confidence: float  # the author's prior; the calibration's measured precision replaces it
    pattern: str = ""
    exception_types: tuple[str, ...] = ()
    why: str = ""
    fix: tuple[str, ...] = ()
    cause: str = ""
    transience: Transience = UN
    docs: str = ""
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern:
            object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE | re.MULTILINE))
        if not self.cause:
            object.__setattr__(self, "cause", self.name.replace("-", " ").capitalize())

    def matches_type(self, exception_type: str | None) -> bool:
        if not exception_type or not self.exception_types:
            return False
        short = exception_type.rsplit(".", 1)[-1]
        return any(short == e or exception_type == e for e in self.exception_types)

    def matches_text(self, text: str) -> bool:
        return bool(self._regex and self._regex.search(text))

    def matches(self, text: str, exception_type: str | None = None) -> bool:
        return self.matches_type(exception_type) or self.matches_text(text)


_RETRY_VENDOR = (
    "Check the provider's status page and retry the run once the service has recovered.",
    "Give the task retries with backoff (`@task(retries=3, retry_delay_seconds=[10, 60, 300])`) "
    "so short outages do not fail the run.",
)
RETRIES_DOCS = "https://docs.prefect.io/v3/develop/write-tasks#retries"

RULES: tuple[Rule, ...] = (
    # --- orchestration and infrastructure ------------------------------------------------
    Rule("oom-killed", W, 0.9,
         r"\bOOMKilled\b|exit(?:ed)?\s*(?:with\s*)?(?:status\s*)?(?:code)?:?\s*137\b|out of memory|\bMemoryError\b|"
         r"OutOfMemoryError|Java heap space|GC overhead limit exceeded|exceeding memory limits|"
         r"Unable to allocate [\d.]+ [KMGT]i?B|Cannot allocate memory|std::bad_alloc|memory limit exceeded|"
         r"Reason:\s*OOM|oom-kill|killed by the OOM|KilledWorker|workers died while running|"
         r"code=-9\b|exit code -9\b|signal 9\b|Killed\s*$",
         ("MemoryError", "_ArrayMemoryError", "OutOfMemoryError", "KilledWorker"),
         "The process needed more memory than it was given and was killed by the OS, the JVM or Kubernetes.",
         ("Raise the memory limit of the work pool's job (job variables), the container or the JVM heap (-Xmx).",
          "Process the data in smaller chunks, or stream it instead of loading it whole."),
         cause="Out of memory", transience=IN,
         docs="https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/"),
    Rule("disk-full", W, 0.9,
         r"No space left on device|\[Errno 28\]|\bDiskPressure\b|ephemeral[- ]storage|Disk quota exceeded|"
         r"not enough (?:disk )?space|disk (?:is )?full",
         (),
         "The worker's disk (or the container's ephemeral storage) filled up while the run was writing files.",
         ("Clean up temporary files as the flow goes, or write them to object storage instead of local disk.",
          "Give the job more disk: a larger volume or a higher ephemeral-storage limit in the work pool's "
          "job template."),
         cause="Disk full", transience=PE),
    Rule("kubernetes-api", W, 0.85,
         r"kubernetes\.client\.(?:exceptions|rest)\.ApiException|system:serviceaccount:|"
         r"/api/v1/namespaces/|/apis/batch/v1/|is forbidden: User ",
         (),
         "The worker or the flow was refused or failed by the cluster's own Kubernetes API "
         "(RBAC, service account, in-cluster certificates).",
         ("Check the service account the worker and the job run as, and its Role/RoleBinding in that namespace.",
          "Compare the work pool's namespace and job template with what the service account may create."),
         cause="Kubernetes API refused the worker", transience=PE),
    Rule("pod-not-started", W, 0.85,
         r"pod never started|Pod not yet started|FailedScheduling|\bEvicted\b|was evicted|The node was low on resource|"
         r"CrashLoopBackOff|BackoffLimitExceeded|did not complete within timeout|"
         r"infrastructure exited with non-zero status|process exited with non-zero status|Could not determine exit code|"
         r"Failed to submit flow run|Insufficient (?:cpu|memory)|\bnode\(s\) (?:had|didn't)",
         (), "The run's infrastructure (pod, container, job) did not start or was stopped by the cluster.",
         ("Inspect the worker's logs and `kubectl describe` the job's pod for events.",
          "Check resource requests, node capacity and the work pool's job template."),
         cause="Infrastructure did not start or was evicted", transience=IN),
    Rule("crash-interrupt", W, 0.8,
         r"\bSIGTERM\b|\bSIGKILL\b|termination signal|TerminationSignal|KeyboardInterrupt|"
         r"(?:was|been) (?:cancelled|canceled|preempted|reclaimed)|preemption|spot instance",
         ("KeyboardInterrupt", "SystemExit", "Abort", "TerminationSignal"),
         "The flow run's process was interrupted or exited before it finished.",
         ("Find what stopped the process: a deploy, a scale-down, a spot preemption, a manual cancel, or sys.exit().",
          "Re-run the flow; enable flow retries for runs that may be interrupted."),
         cause="Process interrupted", transience=IN),
    Rule("native-crash", W, 0.85,
         r"Segmentation fault|\bSIGSEGV\b|\bSIGABRT\b|\bSIGBUS\b|terminated by signal \d+|\(core dumped\)|"
         r"Fatal Python error|exit(?:ed)? (?:with )?(?:status |code )+(?:139|134)\b",
         (),
         "The process crashed in native code (a segfault or abort), usually in a compiled library or "
         "the runtime environment.",
         ("Reproduce in the same image; pin or upgrade the compiled packages (numpy, pyarrow, DB drivers) "
          "to versions built for that platform.",
          "Check for mixed architectures (arm64/amd64), or thread-unsafe libraries used from several "
          "threads or processes."),
         cause="Native crash", transience=PE),
    Rule("orchestrator-internal", W, 0.8,
         r"heartbeat got an exception|\bmissed heartbeats?\b|missing heartbeats?|\bno heartbeat\b|"
         r"[Hh]eartbeat (?:of \w+ )?(?:with id \S+ )?(?:failed|timed out|timeout)|\bzombie (?:job|task|run)s?\b|"
         r"Detected zombie|dagster[._-]daemon|SchedulerDaemon|SensorDaemon|DagsterUserCodeUnreachableError|"
         r"PID of job runner does not match|Executor reports task instance|airflow/(?:jobs|executors)/|"
         r"luigi/(?:rpc|scheduler|worker)\.py|KedroCliError|TaskManager .{0,80} (?:lost|timed out)|"
         r"io\.airbyte\.workers\.|WorkerException|could not open relation with OID|"
         r"Executor heartbeat timed out|ExecutorLostFailure",
         ("DagsterUserCodeUnreachableError", "RPCError", "KedroCliError", "AirflowTaskTimeout", "WorkerException"),
         "The orchestrator itself (scheduler, executor, daemon, worker) lost track of the run or failed to run it.",
         ("Check the orchestrator's own logs and health (scheduler, daemon, worker, its database) at that time.",
          "Check whether the process running the work died or was starved of CPU or memory; re-run the flow."),
         cause="Orchestrator failure", transience=IN),
    Rule("prefect-timeout", W, 0.75,
         r"(?:Flow|Task) run exceeded timeout of",
         ("FlowRunTimeoutError", "TaskRunTimeoutError"),
         "The flow or task ran longer than its configured `timeout_seconds` and Prefect stopped it.",
         ("Find the step that got slower (more data, a slow query, a slow dependency) in the run's logs.",
          "Raise `timeout_seconds` if the longer run is expected, or split the work into smaller runs."),
         cause="Timeout configured on the run", transience=IN),
    Rule("prefect-engine", W, 0.85,
         r"\bUnfinishedRun\b|\bMissingResult\b|\bCrashedRun\b|prefect\.exceptions\.|api\.prefect\.(?:io|cloud)|"
         r"PREFECT_API_URL|Flow run .* was not found|Failed to reach API at|"
         r"host=['\"]?[\w.-]+['\"]?, port=4200\b|:4200/api\b",  # Prefect's own API on its default port
         ("UnfinishedRun", "MissingResult", "CrashedRun", "ObjectNotFound", "PrefectHTTPStatusError",
          "MissingFlowError", "InfrastructureError", "InfrastructureNotFound", "InfrastructureNotAvailable"),
         "Prefect itself could not run or track the flow (API, results or state handling).",
         ("Check that the worker can reach PREFECT_API_URL and that result storage is configured.",
          "Look for the first task that did not complete: later errors are its consequences."),
         cause="Prefect could not run or track the flow", transience=UN),
    Rule("pipeline-config", W, 0.8,
         r"Unable to find block document named|validation errors? for \w*(?:Settings|Config)\b|"
         r"environment variable \S+ (?:is )?(?:not set|missing|undefined|required)|"
         r"missing (?:required )?(?:environment variable|setting|configuration)|"
         r"Unable to locate credentials|default credentials were not found|No active warehouse selected|"
         r"Could not find profile named|is not a valid (?:value|option) for|Invalid (?:configuration|config)\b|"
         r"must specify a region|You must specify a region|NoRegionError|Missing required (?:argument|parameter)|"
         r"live mode key|test mode key|a similar object exists in (?:test|live) mode|is not compatible with",
         ("ScriptError", "ParameterTypeError", "ParameterBindError", "MissingProfileError",
          "NoCredentialsError", "DefaultCredentialsError", "NoRegionError", "ConfigurationError"),
         "The pipeline's configuration is missing or invalid: a block, a setting, an environment variable, "
         "a region or warehouse, or the deployment's entrypoint/parameters.",
         ("Check the deployment's job variables, environment and parameters against what the flow reads at start.",
          "Create or fix the block / secret / setting it names (`prefect block ls`), then re-run."),
         cause="Missing or invalid configuration", transience=PE),
    Rule("permission-missing", W, 0.75,
         r"\b403\b|Forbidden|AccessDenied|Access Denied|access denied|is not authorized to perform|"
         r"not authorized to access|Permission denied|PERMISSION_DENIED|insufficient (?:privileges|permissions|scope)|"
         r"does not have (?:the )?(?:\S+ )?(?:permission|access|privileges?)|missing (?:the )?(?:required )?scopes?|"
         r"Insufficient privileges|AuthorizationFailed|AuthorizationPermissionMismatch|\(42501\)",
         ("PermissionError", "PermissionDenied", "PermissionDeniedError", "Forbidden", "AccessDeniedException",
          "InsufficientPrivilege"),
         "The identity the pipeline runs as lacks a permission the step needs (IAM role, token scope, grants).",
         ("Find the identity in the error (role, service account, token) and the action and resource it was denied.",
          "Grant that permission (or the token scope) to that identity, or run the step as one that has it."),
         cause="Missing permission", transience=PE),
    Rule("missing-module", W, 0.9,
         r"No module named|cannot import name|ImportError|ModuleNotFoundError|ClassNotFoundException|"
         r"NoClassDefFoundError|command not found|executable file not found",
         ("ModuleNotFoundError", "ImportError", "ClassNotFoundException", "NoClassDefFoundError"),
         "The code needs a package, class or executable that is not installed in the run's environment.",
         ("Add the package to the image or the deployment's pip_packages / requirements (or the jar to the classpath).",
          "Rebuild and redeploy, then re-run."),
         cause="Missing dependency", transience=PE),
    Rule("dependency-mismatch", W, 0.8,
         r"NoSuchMethodError|UnsupportedClassVersionError|IncompatibleClassChangeError|AbstractMethodError|"
         r"Could not find a satisfactory version|Version error for package|VersionConflict|"
         r"is incompatible with|incompatible (?:version|versions)|requires .{1,60} but you have|"
         r"Run \"?dbt deps\"?|no attribute '\w+'.{0,80}(?:deprecat|removed)|was removed in|is deprecated and will be removed|"
         r"unsupported (?:version|protocol version)|version mismatch|built for a different version",
         ("NoSuchMethodError", "UnsupportedClassVersionError", "VersionConflict", "IncompatibleClassChangeError"),
         "Installed packages do not fit together: a library, driver, runtime or adapter version the code does "
         "not support.",
         ("Pin the versions that worked (the last successful run's image or lock file) and rebuild.",
          "Upgrade the caller to the new API, or downgrade the library, so that all versions agree."),
         cause="Incompatible versions", transience=PE),
    Rule("tls-local-trust", W, 0.75,
         r"unable to get local issuer certificate|Could not find a suitable TLS CA certificate bundle|"
         r"self[- ]signed certificate in certificate chain",
         (),
         "The run's environment does not trust the certificate chain: its CA bundle is missing or lacks "
         "a corporate/cluster CA.",
         ("Install the CA certificates in the image (`ca-certificates`, certifi) or add the internal CA.",
          "Point SSL_CERT_FILE / REQUESTS_CA_BUNDLE at the right bundle; do not turn verification off."),
         cause="Certificate not trusted", transience=PE),
    Rule("dbt-project", W, 0.85,
         r"(?-i:Compilation Error)|depends on a node named .* which was not found|dbt internally failed|"
         r"(?-i:Parsing Error in)|Could not find (?:a )?dbt_project\.yml|not a dbt project|"
         r"(?-i:Runtime Error)\s+Could not find|dbt found \d+ package|Unhandled error while executing",
         (),
         "dbt could not compile or run the project itself (Jinja, refs, packages, profiles, adapter), "
         "before any data was checked.",
         ("Run `dbt compile` / `dbt debug` with the same profile and target to see the error locally.",
          "Fix the ref, macro, package or profile it names (`dbt deps`), or pin the adapter version the "
          "project was built with."),
         cause="dbt project error", transience=PE, docs="https://docs.getdbt.com/reference/commands/debug"),
    Rule("own-sql", W, 0.8,
         r"SQL compilation error|syntax error (?:at|line|near)|Binder Error|Parser Error|"
         r"Syntax error: (?:Unexpected|Expected|Missing|Illegal)|\b(?:SQLSTATE|SQLState)[: =\[]*42[0-9A-Z]{3}|"
         r"\(42(?:601|703|P01|883|804|P18|000|S22|S02)\)|You have an error in your SQL syntax|"
         r"function .{1,80} does not exist|operator does not exist|no such function|"
         r"does not support the type|not supported for|Queries of this type are not supported|"
         r"ambiguous column|is ambiguous|must appear in the GROUP BY",
         ("BinderException", "ParserException", "SyntaxError", "ProgrammingError_42601"),
         "A query or statement written by the pipeline is invalid for the database it runs on.",
         ("Run the failing SQL by hand to see the exact error position.",
          "Fix the query or the model for this database's dialect and types."),
         cause="Invalid SQL in the pipeline", transience=PE),
    Rule("missing-object", W, 0.7,
         r"column .{1,80} does not exist|UndefinedColumn|UndefinedTable|relation .{1,120} does not exist|"
         r"Referenced column .* not found|invalid identifier|no such (?:table|column)|"
         r"Unrecognized name: |Unknown column '[^']+' in|table or view does not exist|Table .{1,120} not found|"
         r"Object .{1,120} does not exist|does not exist or not authorized|Not found: (?:Table|Dataset)",
         ("UndefinedColumn", "UndefinedTable", "NoSuchTableError", "TableNotFoundException"),
         "A query names a table or column that does not exist where it runs: the pipeline's SQL and the "
         "schema disagree.",
         ("Compare the names in the query with the table's current columns (did a migration or an upstream "
          "change rename them?).",
          "Fix the query or migrate the schema; if the source renamed the column, update the pipeline's mapping."),
         cause="Table or column not found", transience=PE),
    Rule("local-service-unreachable", W, 0.75,
         r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0|host\.docker\.internal|\.svc\.cluster\.local|\[::1\])"
         r"[\s\S]{0,200}(?:Connection refused|refused|timed out|Failed to establish|could not connect|unreachable|"
         r"ECONNREFUSED|Errno 111)|"
         r"(?:Connection refused|ECONNREFUSED|Errno 111)[\s\S]{0,200}(?:localhost|127\.0\.0\.1|0\.0\.0\.0|"
         r"host\.docker\.internal|\.svc\.cluster\.local)",
         (),
         "A service the pipeline runs itself (on the same host, in the same cluster or compose project) is not "
         "running or not listening where the configuration says.",
         ("Check that the service is started and healthy before the flow runs, on the host and port in the error.",
          "Check the host and port in the pipeline's configuration: inside a container, localhost is the "
          "container itself."),
         cause="Own service not running", transience=IN),
    Rule("endpoint-config", W, 0.7,
         r"Could not connect to the endpoint URL|EndpointConnectionError|InvalidEndpoint|Invalid endpoint|"
         r"PermanentRedirect|AuthorizationHeaderMalformed|the region '[^']+' is wrong|IllegalLocationConstraint|"
         r"wrong region|UnknownEndpoint",
         ("EndpointConnectionError", "InvalidEndpoint"),
         "The client was pointed at an endpoint that does not exist for this service: usually a wrong region, "
         "a wrong endpoint URL or a network policy on the worker.",
         ("Check region_name / endpoint_url (or AWS_REGION) in the pipeline's configuration against where the "
          "resource lives.",
          "From the worker, resolve and reach the endpoint in the error (DNS, proxy, VPC endpoint)."),
         cause="Wrong endpoint or region", transience=PE),
    Rule("concurrency-conflict", W, 0.7,
         r"deadlock detected|Deadlock found|Serializable isolation violation|could not serialize access|"
         r"\(40001\)|\(40P01\)|SerializationFailure|lock wait timeout|Could not set lock on file|database is locked|"
         r"concurrent (?:update|modification)|ConcurrentAppendException|ConcurrentModificationException",
         ("DeadlockDetected", "SerializationFailure", "ConcurrentAppendException"),
         "Two parts of the pipeline (or two runs) changed the same rows, table or file at once.",
         ("Serialize the writers: a Prefect concurrency limit on the task, or one run at a time of the deployment.",
          "Retry the statement on a serialization failure or deadlock (they are designed to be retried)."),
         cause="Concurrent writers", transience=TR, docs="https://docs.prefect.io/v3/develop/global-concurrency-limits"),
    # --- data -------------------------------------------------------------------------------
    Rule("schema-drift", D, 0.8,
         r"schema mismatch|schema (?:has )?changed|schema drift|Schema at index \d+ was different|"
         r"does not match Table|has changed type from|expected columns? .{0,200}\bgot\b|No such field: |"
         r"INVALID_FIELD|did not conform to schema|does not conform to (?:the )?schema|not of type '|"
         r"no such field|Field name not found|jsonschema\.exceptions\.ValidationError|is not valid under any|"
         r"Parquet column cannot be converted|cannot be converted in file|"
         r"unexpected (?:field|column|property)|Additional properties are not allowed|"
         r"(?:new|extra|missing) columns? (?:found|detected|in)",
         (),
         "The input's schema changed: columns or fields were renamed, added, removed or changed type upstream.",
         ("Compare the new file, table or API response with the previous delivery; ask the producer "
          "whether the change was intended.",
          "If it was, update the pipeline's schema and mapping; otherwise quarantine the delivery."),
         cause="Upstream schema changed", transience=PE),
    Rule("data-test-failed", D, 0.8,
         r"\bexpect_(?:column|table|multicolumn|compound)_\w+|SchemaError|validation failed|"
         r"failed expectation|expectations? failed|Failure in test |Got \d+ results?, configured to fail if|"
         r"unexpected values? found|checks? failed|data (?:quality )?check",
         ("SchemaError", "ValidationFailure"),
         "A data test or expectation found rows that violate it: the data, not the code, is wrong.",
         ("Query the rows the test flags (dbt: `dbt test --store-failures`) and trace them to the source.",
          "Fix or quarantine them at the source; if the rule itself is wrong, change the test, not the data."),
         cause="Data test failed", transience=PE),
    Rule("malformed-file", D, 0.75,
         r"Expected \d+ fields in line \d+|Error tokenizing data|CSV parse error|Expected \d+ columns, got|"
         r"contains only \d+ columns|JSON parsing error|Unexpected token|Unterminated string|"
         r"EOF inside string|line contains NUL|Bad character \(ASCII 0\)|magic bytes not found|"
         r"BadZipFile|File is not a zip file|Not a gzipped file|invalid (?:tar|zip|gzip)|"
         r"is not a valid (?:parquet|avro|json|csv|excel)|Invalid (?:JSON|XML|CSV)|XMLSyntaxError|"
         r"not well-formed|too many errors|Found character .{1,10} instead of field delimiter|"
         r"JSON parse error|corrupt(?:ed)? file|file is corrupt|Unsupported format|not a known type of workbook|"
         r"Expected BOF record|Error parsing message|Error deserializing|MapperParsingException|failed to parse|"
         r"Unexpected end of (?:JSON|file|stream|input)|premature end",
         ("ParserError", "BadZipFile", "XMLSyntaxError", "XLRDError", "DecodeError", "MapperParsingException",
          "SerializationException"),
         "An input file or message is malformed: broken rows, a truncated file, a wrong delimiter or format.",
         ("Open the file at the line or offset in the error and compare it with a good delivery.",
          "Ask the producer to re-send it, or skip and report bad rows (`on_bad_lines=`, `ON_ERROR=`) "
          "instead of failing the load."),
         cause="Malformed input file", transience=PE),
    Rule("bad-encoding", D, 0.75,
         r"codec can't decode|invalid byte sequence for encoding|invalid continuation byte|"
         r"NUL \(0x00\)|\\u0000 cannot be converted|UntranslatableCharacter|character with byte sequence|"
         r"invalid (?:utf-?8|unicode)|malformed utf-?8|unsupported Unicode escape",
         ("UnicodeDecodeError", "UntranslatableCharacter", "CharacterNotInRepertoire"),
         "The input contains bytes that are not valid text in the expected encoding (or NUL characters).",
         ("Find the encoding the producer really uses and read with it (`encoding=`), or clean NUL bytes on load.",
          "Ask the producer to deliver UTF-8."),
         cause="Bad text encoding in the input", transience=PE),
    Rule("bad-value", D, 0.75,
         r"\(22[0-9A-Z]{3}\)|\b(?:SQLSTATE|SQLState|Database error)[: =\[]*22[0-9A-Z]{3}|"
         r"invalid input syntax for (?:type )?\w+|numeric field overflow|out of range for (?:type|field)|"
         r"value too long for type|Numeric value '[^']*' is not recognized|(?:Date|Timestamp|Time) '[^']*' is not "
         r"recognized|is not a valid (?:date|datetime|timestamp|number|integer)|Invalid (?:date|datetime|timestamp)|"
         r"invalid timestamp|Incorrect (?:date|datetime|integer|decimal) value|Out of bounds nanosecond|"
         r"year -?\d+ is out of range|time data .{0,80} (?:does not|doesn't) match format|"
         r"could not convert string to|invalid literal for int\(\)|Could not convert string|Conversion Error|"
         r"cannot convert (?:float )?NaN to integer|Cannot convert non-finite values|Integer column has NA values|"
         r"Could not parse '?[^']*'? as \w+|Data truncation|String or binary data would be truncated|"
         r"\[type=(?!missing\b)[a-z_]+, input_value=|Input contains NaN|division by zero|"
         r"Couldn't cast|cannot be cast to|CastError|invalid value|contains invalid|must not be (?:null|empty)|"
         r"cannot be (?:missing or )?null|may not contain an empty|data value too large|STRING_TOO_LONG|"
         r"(?:Message|Document|document|Record|record|row|Row|value|Value) (?:size )?(?:is )?too large|"
         r"DocumentTooLarge|MessageSizeTooLarge|MSG_SIZE_TOO_LARGE|immense term|exceeds (?:the )?maximum (?:length|size)|"
         r"maximum context length",
         ("OutOfBoundsDatetime", "DataError", "InvalidTextRepresentation", "NumericValueOutOfRange",
          "InvalidDatetimeFormat", "DatetimeFieldOverflow", "StringDataRightTruncation", "ConversionException",
          "InvalidDateTime", "CastError", "DocumentTooLarge"),
         "A value in the input cannot be stored or converted as the pipeline expects (a bad date, number, "
         "length or type).",
         ("Find the row and column in the error and look at the value at the source.",
          "Clean or reject such values on load, or widen the column's type if they are legitimate."),
         cause="Invalid value in the input", transience=PE),
    Rule("constraint-violation", D, 0.65,
         r"violates (?:not-null|unique|foreign key|check) constraint|null value in column|duplicate key value|"
         r"Duplicate entry '|Duplicate row detected|duplicate (?:rows|records|values|keys|headers)\b|\b\d+ duplicate|"
         r"UNIQUE constraint failed|NOT NULL constraint failed|Cannot insert (?:the value NULL|duplicate key)|"
         r"\(23[0-9]{3}\)|integrity constraint violation|unexpected (?:null|empty) value|\b\d+ null(?:s| values)\b|"
         r"contains duplicate entries|duplicate column\(s\)|multiple source rows matched|matches more than one record|"
         r"DuplicateKeyError|E11000 duplicate key|creating a duplicate record|DUPLICATE_VALUE|DUPLICATES_DETECTED",
         ("UniqueViolation", "NotNullViolation", "ForeignKeyViolation", "IntegrityError", "CheckViolation",
          "DuplicateKeyError"),
         "Rows break a constraint of the target: missing required values, duplicates or dangling references.",
         ("Find the offending rows (the key in the error) and whether the source sent them twice or incomplete.",
          "Deduplicate or fill them before the load, or upsert (`ON CONFLICT`) if re-sends are expected."),
         cause="Constraint violated by the data", transience=PE),
    Rule("json-lines-misread", W, 0.65,
         r"Extra data: line \d+ column 1 \(char \d+\)|ValueError: Trailing data",
         (),
         "A file of JSON Lines (one document per line) was parsed as a single JSON document.",
         ("Read it line by line (`json.loads` per line) or with `pd.read_json(path, lines=True)`.",),
         cause="JSON Lines read as one document", transience=PE),
    # --- third parties ----------------------------------------------------------------------
    Rule("rate-limited", T, 0.9,
         r"\b429\b|Too Many Requests|rate limit|Rate exceeded|Throttl|quota exceeded|Quota exceeded|"
         r"toomanyrequests|rateLimitExceeded|Exceeded rate limits|\bSlowDown\b|reduce your request rate|"
         r"RequestLimitExceeded|REQUEST_LIMIT_EXCEEDED|too many (?:calls|requests)|RESOURCE_EXHAUSTED|"
         r"Wait a bit and try again|retry after \d+|Retry-After|request rate is too large|TooManyRequests|"
         r"RATE_LIMIT|calls per second|secondly limit|over the account limit|ServerBusy|requests per (?:second|minute)|"
         r"limit (?:has been )?reached|exceeded (?:the|your) (?:daily |hourly )?(?:limit|quota)",
         ("RateLimitError", "ThrottlingException", "TooManyRequests", "ResourceExhausted"),
         "An external service refused requests because a rate limit or quota was exceeded.",
         ("Lower the request rate: batch requests, add backoff, or use a Prefect concurrency limit.",
          "Ask the provider for a higher quota if the load is expected."),
         cause="Rate limit or quota of an external service", transience=TR, docs=RETRIES_DOCS),
    # Images and the container daemon are the pipeline's own; after rate-limited, because a
    # registry's pull limit (`toomanyrequests`) is a third party's.
    Rule("image-pull", W, 0.8,
         r"ErrImagePull|ImagePullBackOff|Failed to pull image|pull access denied|manifest unknown|"
         r"manifest for \S+ not found|InvalidImageName|may require 'docker login'",
         (),
         "The run's container image could not be pulled: a wrong name or tag, or missing registry credentials.",
         ("Check that the image and tag in the deployment / work pool exist in the registry (was the build pushed?).",
          "Check the image pull secret or the node's registry credentials."),
         cause="Container image not pulled", transience=PE),
    Rule("docker-daemon", W, 0.9,
         r"docker\.errors\.|Cannot connect to the Docker daemon|Error response from daemon|http\+docker://",
         (),
         "The Docker daemon running the flow's container refused or failed the request "
         "(mounts, image, daemon state).",
         ("Read the daemon's message: it usually names the bad mount, image or option in the job configuration.",
          "Check that the worker's Docker daemon is running and reachable."),
         cause="Docker daemon refused the job", transience=UN),
    Rule("vendor-auth", T, 0.75,
         r"\b401\b|Unauthori[sz]ed|Incorrect username or password|invalid (?:api[ _-]?key|token|credentials)|"
         r"authentication failed|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|"
         r"Expired session|session (?:has )?expired|INVALID_SESSION_ID|Invalid session id|invalid_grant|"
         r"token (?:has )?expired|refresh token|revoked|Invalid client secret|AADSTS\d+|invalid_client|"
         r"credentials (?:have )?expired|password (?:has )?expired",
         ("AuthenticationError", "Unauthorized", "AuthenticationException", "ExpiredTokenException",
          "InvalidSessionId"),
         "An external service rejected the pipeline's credentials: expired, revoked or rotated.",
         ("Check that the credentials block or secret used by the task is current (not expired or rotated).",
          "Renew the token or session (and automate its refresh), then re-run."),
         cause="Credentials rejected by an external service", transience=PE),
    Rule("provider-capacity", T, 0.8,
         r"does not have enough resources available|ZONE_RESOURCE_POOL_EXHAUSTED|InsufficientInstanceCapacity|"
         r"insufficient capacity|out of capacity|no capacity|Timeout while placing nodes|"
         r"TEMPORARILY_UNAVAILABLE|temporarily unavailable|currently unavailable|"
         r"conflict with recovery|incident \d+|under maintenance|scheduled maintenance",
         ("InsufficientInstanceCapacity",),
         "The provider had no capacity, or its service was temporarily unavailable, when the pipeline asked.",
         ("Retry later, or in another zone or instance type; check the provider's status page.",
          "Give the task retries with backoff so short unavailability does not fail the run."),
         cause="Provider capacity or availability", transience=TR, docs=RETRIES_DOCS),
    Rule("vendor-5xx", T, 0.85,
         r"\b50[0234]\b.*(?:Error|error|Server|Service|Gateway)|Service Unavailable|Bad Gateway|"
         r"Gateway Time-?out|Internal Server Error|InternalServerError|ServiceUnavailable|"
         r"encountered an internal error|\bbackendError\b|\binternalError\b|InternalFailure|ServerError|"
         r"\b50[0234] (?:Server|Service|Internal|Bad)|Deadline Exceeded|DEADLINE_EXCEEDED|"
         r"unexpected code 50[0234]|status(?: code)?[:= ]+50[0234]\b",
         ("InternalServerError", "ServiceUnavailable", "BadGateway", "ServerError", "InternalServerErrorException"),
         "An external service answered with a server error (5xx): the failure is on its side.",
         _RETRY_VENDOR, cause="Server error of an external service", transience=TR, docs=RETRIES_DOCS),
    Rule("vendor-bad-response", T, 0.7,
         r"unexpected mimetype: text/html|requests\.exceptions\.JSONDecodeError|RequestsJSONDecodeError|"
         r"requests/models\.py\", line \d+, in json|httpx/_models\.py\", line \d+, in json",
         ("RequestsJSONDecodeError", "ContentTypeError"),
         "An external service answered with a body that is not the JSON it normally sends "
         "(an error or maintenance page, an empty body).",
         ("Log the response's status code and the first bytes of its body before decoding it.",
          *_RETRY_VENDOR),
         cause="Unexpected response from an external service", transience=TR),
    Rule("object-not-found", T, 0.7,
         r"NoSuchKey|NoSuchBucket|The specified key does not exist|BlobNotFound|404 Not Found|\b404\b|\b410\b|"
         r"Not Found for url|ResourceNotFoundException|NotFound: 404",
         ("NoSuchKey", "NoSuchBucket", "BlobNotFoundError", "ResourceNotFoundException"),
         "An object the pipeline reads from cloud storage or an API does not exist (not yet, or not any more).",
         ("Check that the upstream producer wrote the object, and the bucket/key or URL the task builds.",
          "Wait for (or sense) the upstream delivery before reading it."),
         cause="Object not found", transience=UN),
    Rule("connection", T, 0.65,
         r"Connection refused|Connection reset|Connection aborted|Name or service not known|"
         r"nodename nor servname|Temporary failure in name resolution|timed out|"
         r"Could not connect|Max retries exceeded|RemoteDisconnected|Network is unreachable|"
         r"could not connect to server|connection to server at .* failed|Failed to establish a new connection|"
         r"Failed to get the response|server closed the connection unexpectedly|SSL SYSCALL error|"
         r"Lost connection to (?:MySQL )?server|server has gone away|could not translate host name|"
         r"Can't connect to MySQL server|Server disconnected|Connection broken|IncompleteRead|"
         r"Communications link failure|BrokenPipe|Broken pipe|socket closed|ECONNRESET",
         ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError",
          "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected",
          "RemoteProtocolError", "ChunkedEncodingError", "NoBrokersAvailable", "ServerSelectionTimeoutError",
          "ServiceResponseError", "BrokenPipeError"),
         "The pipeline could not reach an external system, or lost its connection (network, DNS, timeout, or the "
         "service is down).",
         ("Check that the host in the error is up and reachable from the worker (DNS, firewall, VPN).",
          *_RETRY_VENDOR[1:]),
         cause="Connection to an external system failed", transience=TR, docs=RETRIES_DOCS),
    # --- the pipeline's own code (generic, last) ----------------------------------------------
    Rule("library-internal-error", W, 0.6,
         r"^\s*(?-i:INTERNAL Error:)|assertion failure within|This is (?:probably |likely )?a bug in|"
         r"please (?:report|file) (?:this|a bug|an issue)|Internal error in",
         (),
         "A library or engine the pipeline uses hit an internal error (a bug in it, not in the data).",
         ("Search the library's issue tracker for the message; upgrade or pin a version without the bug.",
          "Work around it by rewriting the step (a different query form or API) until it is fixed."),
         cause="Bug in a library", transience=PE),
    Rule("code-bug", W, 0.6,
         r"^(?:\w+\.)*(?:NameError|UnboundLocalError|AttributeError|RecursionError|NotImplementedError): |"
         r"object has no attribute|is not subscriptable|takes \d+ positional arguments? but|"
         r"got an unexpected keyword argument|unsupported operand type|object is not (?:callable|iterable)|"
         r"NullPointerException|missing \d+ required positional argument|Could not serialize object|"
         r"PicklingError|can't pickle|cannot pickle|SparkContext can only be used on the driver",
         ("KeyError", "AttributeError", "TypeError", "NameError", "IndexError",
          "ZeroDivisionError", "NotImplementedError", "RecursionError", "UnboundLocalError", "NullPointerException",
          "PicklingError"),
         "The pipeline's own code raised an exception it does not handle.",
         ("Open the traceback at the last frame in your code and reproduce with the same inputs.",
          "Fix the code or handle the case; add a test for it."),
         cause="Bug in the pipeline's code", transience=PE),
)


def candidates(text: str, exception_type: str | None = None, rules: Sequence[Rule] = RULES) -> list[Rule]:
    """The rules that may answer, in table order: those that list the exception's type, if any do
    (the type is the strongest signal), else those whose pattern matches the text."""
    typed = [rule for rule in rules if rule.matches_type(exception_type)]
    return typed or [rule for rule in rules if rule.matches_text(text)]
