"""The specific facts an error text holds, and the fix steps that name them.

A fix is specific when it names what the evidence holds: the missing column and the columns that
are there, the field and value that failed validation, the host and port that refused, the HTTP
status and endpoint, the constraint and key, the memory limit and exit code, the timeout's value,
the cloud operation that was throttled, the byte that is not UTF-8, the line of a CSV with the
wrong number of fields. `extract_facts` reads them (patterns of widely used libraries and
drivers, never of one example); `fact_steps` turns them into fix steps. Both are pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Facts:
    """What an error text says, in its own words (empty when it says nothing of the kind)."""

    missing_columns: list[str] = field(default_factory=list)
    present_columns: list[str] = field(default_factory=list)
    relation: str | None = None  # the table/relation named with a column or constraint
    validation: list[tuple[str, str]] = field(default_factory=list)  # (field or column, value or check)
    value_format: tuple[str, str] | None = None  # (value, expected format)
    host: str | None = None
    port: str | None = None
    http_status: str | None = None
    endpoint: str | None = None
    constraint: str | None = None
    key: str | None = None
    null_column: str | None = None
    exit_code: str | None = None
    oom: bool = False
    memory: str | None = None  # "7.2 GB of 4.2 GB", "Java heap space"
    timeout: str | None = None  # "3.0 second(s)", "15"
    operation: str | None = None  # a cloud SDK operation ("ListPolicyTags")
    error_code: str | None = None  # "ThrottlingException", "SlowDown", "INVALID_SESSION_ID"
    undecodable: tuple[str, str, str] | None = None  # (codec, byte, position)
    bad_line: tuple[str, str, str] | None = None  # (line, expected fields, seen)
    missing_object: str | None = None  # a table, dataset, object, file or module that does not exist
    location: str | None = None  # the region/location it was looked for in ("US")
    file: str | None = None  # the file the failing read opened
    certificate: str | None = None  # "certificate has expired"
    evicted: bool = False
    preempted: bool = False
    limit_message: str | None = None  # a rate limit or quota the service names, in its words
    session: str | None = None  # an invalid or expired session, in the service's words
    path_exists: str | None = None  # a clone or copy destination that is already there
    attribute: tuple[str, str] | None = None  # (module or type, attribute) it lacks
    too_long: str | None = None  # the column type a value does not fit ("character varying(60)")
    copy_at: tuple[str, str, str] | None = None  # (table, line, column) of a COPY/load error

    def __bool__(self) -> bool:
        return any(v for v in vars(self).values())


_Q = r"""["'`\u201c\u201d]"""
_KEYERROR = re.compile(r"\bKeyError:?\s*\(?\s*['\"]([^'\"\n]{1,80})['\"]")
_NOT_IN_INDEX = re.compile(r"\[?([^\]\n]{1,200})\]? not in index|None of \[Index\(\[([^\]]{1,200})\]")
_COL_MISSING = re.compile(
    r"column " + _Q + r"?([\w.$ ]{1,80}?)" + _Q + r"? (?:of relation " + _Q + r"?([\w.]+)" + _Q + r"? )?does not exist"
    r"|(?:Column|column|Field|field) " + _Q + r"([^'\"`\n]{1,80})" + _Q + r" (?:not found|is missing|does not exist|not in "
    r"(?:dataframe|the dataframe|schema))|[Cc]olumn '([^'\n]{1,80})' not in dataframe|"
    r"Referenced column " + _Q + r"([^'\"`\n]{1,80})" + _Q + r" not found|invalid identifier '([^'\n]{1,80})'|"
    r"cannot resolve '`?([^'`\n]{1,80})`?'|Unrecognized name: (\w+)")
_PRESENT = re.compile(
    r"(?:Columns received|Available columns|available columns|existing columns|columns are|Candidate bindings|"
    r"Did you mean|Perhaps you meant to reference the column)[:\s]+([^\n]{1,300})|Index\(\[([^\]]{1,300})\]|(?:columns|Columns)\s*[:=]\s*\[([^\]\n]{1,300})\]",
)
_PYDANTIC = re.compile(r"^(\S[^\n]{0,80})\n\s+([^\n]*?)\s*\[type=([a-z_]+), "
                       r"input_value=('[^'\n]{0,80}'|\"[^\"\n]{0,80}\"|[^,\n]{0,80})", re.M)
_PANDERA = re.compile(r"Column '([^'\n]{1,80})' failed (?:element-wise )?validator number \d+: ?(<?[^\n]{0,80}?>?) "
                      r"failure cases: ([^\n]{1,120})|expected series '([^'\n]{1,80})' to have type (\w+), got (\w+)")
_CONVERT = re.compile(r"could not convert string to (\w+): '([^'\n]{0,60})'|Could not convert '([^'\n]{0,60})' with "
                      r"type \w+: tried to convert to (\w+)(?:.{0,40}column (\w+))?|invalid literal for int\(\) with base "
                      r"\d+: '([^'\n]{0,60})'|Could not convert string '([^'\n]{0,60})' to (\w+)|"
                      r"Conversion failed for column (\w+)|(?:Numeric|Date|Timestamp) value '([^'\n]{0,60})' is not "
                      r"recognized|invalid input syntax for (?:type )?(\w+): " + _Q + r"([^'\"\n]{0,60})")
_OUT_OF_BOUNDS = re.compile(r"Out of bounds nanosecond timestamp: ([^\n,]{1,40}?)(?:,| present| at |$)", re.M)
_JSONSCHEMA = re.compile(r"ValidationError: (.{1,80}?) is not (?:of type|valid under|one of) [^\n]{0,80}\n+\s*Failed validating "
                         r"'\w+' in schema((?:\[[^\]\n]+\])+)")
_FORMAT = re.compile(r"time data ['\"]([^'\"\n]{0,60})['\"] does not match format ['\"]([^'\"\n]{1,40})['\"]")
_HOSTPORT = re.compile(
    r"connection to server at " + _Q + r"([\w.-]+)" + _Q + r"(?: \([\d.:a-f]+\))?, port (\d+)|"
    r"server running on host " + _Q + r"([\w.-]+)" + _Q + r"(?: \([\d.:a-f]+\))? and accepting\s+TCP/IP connections on "
    r"port (\d+)|host=['\"]([\w.-]+)['\"],? port=(\d+)|HTTPS?ConnectionPool\(host=['\"]([\w.-]+)['\"], port=(\d+)\)|"
    r"(?:connect(?:ion)? to|connecting to|Failed to connect to(?: DB:)?|Can't connect to \w+ server on) "
    r"['\"]?([a-z0-9][\w.-]*\.[\w.-]+|localhost|[\d.]+):(\d{2,5})\b|\b(localhost|127\.0\.0\.1|[\w-]+(?:\.[\w-]+)+):(\d{2,5})\b"
    r"(?=[^\n]{0,40}(?:refused|timed out|unreachable|reset))", re.I)
_STATUS_URL = re.compile(
    r"\b([45]\d\d) (?:Client|Server) Error:? [^\n]*? for url:? (\S+)|"
    r"Request URL: (\S+?),? Response Code: ([45]\d\d)|"
    r"<HttpError ([45]\d\d) when requesting (\S+)|"
    r"\b([45]\d\d) (?:GET|POST|PUT|PATCH|DELETE) (https?://\S+)|"
    r"(?:GET|POST|PUT|PATCH|DELETE) (https?://\S+?) (?:in a |-> |returned |failed with )?([45]\d\d)\b")
_STATUS = re.compile(r"(?:HTTP Error|status(?: code)?|Response Code|Status Code|response|returned error)[:= ]+([45]\d\d)\b|"
                     r"(?:Error|Exception|ApiError):\s*([45]\d\d)\b(?! bytes)|"
                     r"\b([45]\d\d) (?:Client Error|Server Error|Too Many Requests|Service Unavailable|Bad Gateway|"
                     r"Gateway Time-?out|Not Found|Forbidden|Unauthorized|Internal Server Error|Slow Down)|"
                     r"\b(?:Status|status)[:=]\s*['\"]?([45]\d\d)\b|['\"]status['\"]\s*:\s*['\"]?([45]\d\d)|"
                     r"\b['\"]?code['\"]?\s*[:=]\s*['\"]?([45]\d\d)\b", re.I)
_URL = re.compile(r"https?://[^\s'\"<>)]+")
_CONSTRAINT = re.compile(r"(?:violates|violated|constraint failed:?) (?:[\w-]+ )?(?:key )?constraint " + _Q + r"?([\w.]+)"
                         r"|unique constraint " + _Q + r"?([\w.]+)|constraint " + _Q + r"([\w.]+)" + _Q)
_KEY = re.compile(r"Key \(([^)\n]{1,120})\)=\(([^)\n]{0,120})\)|Duplicate entry '([^'\n]{0,80})' for key '([^'\n]{1,80})'")
_NULL = re.compile(r"null value in column " + _Q + r"?([\w.]+)" + _Q + r"?(?: of relation " + _Q + r"?([\w.]+))?|"
                   r"NOT NULL constraint failed: ([\w.]+)|Cannot insert the value NULL into column '([^'\n]+)'")
_EXIT = re.compile(r"[Ee]xit(?:ed)?[ _]?[Cc]ode[:\s]*:*\s*(-?\d+)|exit status (-?\d+)|status code (-?\d+)|"
                   r"exited with (?:code|status) (-?\d+)")
_MEMORY = re.compile(r"([\d.]+ [KMGT]i?B of [\d.]+ [KMGT]i?B (?:physical|virtual)? ?memory used)|(Java heap space)|"
                     r"(GC overhead limit exceeded)|memory limit(?: of)? ([\d.]+ ?[KMGT]i?B?)|"
                     r"Unable to allocate ([\d.]+ [KMGT]i?B)|limits\.memory: ?(\d+\w+)", re.I)
_TIMEOUT = re.compile(r"exceeded timeout of ([\d.]+ ?(?:second\(s\)|seconds?|s))|read timeout=([\d.]+)|"
                      r"timed out after ([\d.]+ ?(?:seconds?|s|ms))|within timeout of ([\d.]+s?)|"
                      r"timeout[_ ]seconds=([\d.]+)", re.I)
_OPERATION = re.compile(r"\(([A-Za-z]+(?:Exception|Error)?|[A-Z][A-Za-z]+)\) when calling the (\w+) operation")
_ERROR_CODE = re.compile(r"Error Code: (\w+)|<Code>(\w+)</Code>|\breason['\"]?\s*[:=]\s*['\"](\w+)['\"]|\b(INVALID_SESSION_ID|REQUEST_LIMIT_EXCEEDED|"
                         r"RESOURCE_EXHAUSTED|PERMISSION_DENIED|UNAUTHENTICATED)\b|['\"]errorCode['\"]:\s*['\"](\w+)")
_DECODE = re.compile(r"'([\w-]+)' codec can't decode byte (0x[0-9a-f]{2}) in position (\d+)", re.I)
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OBJECT = re.compile(
    r"(?:Table|Dataset|Object|Database|Schema|View|Stage) " + _Q + r"?([\w.:-]+)" + _Q + r"? (?:was not found|does not exist)|"
    r"relation " + _Q + r"([\w.]+)" + _Q + r" does not exist|No such file or directory: " + _Q + r"([^'\"\n]+)" + _Q + r"|"
    r"No module named " + _Q + r"([\w.]+)" + _Q + r"|The specified (?:key|bucket) does not exist")
_LIMIT = re.compile(r"[^\n]{0,120}(?:rate limit|quota|Too Many Requests|[Tt]hrottl|requests per (?:second|minute)|"
                    r"reduce your request rate)[^\n]{0,200}", re.I)
_SESSION = re.compile(r"Invalid Session ID[^\n]{0,80}|INVALID_SESSION_ID|InvalidSessionId|Session expired or invalid|"
                      r"session (?:has )?expired", re.I)
_PATH_EXISTS = re.compile(r"destination path '([^'\n]+)' already exists and is not an empty directory|"
                          r"(?:File|Directory|Path) " + _Q + r"([^'\"\n]+)" + _Q + r" already exists")
_ATTRIBUTE = re.compile(r"(?:module|type object|object) '([\w.]+)' has no attribute '(\w+)'")
_TOO_LONG = re.compile(r"value too long for type ([\w ]+\(\d+\))|String or binary data would be truncated|"
                       r"Data too long for column '([^'\n]+)'")
_COPY_AT = re.compile(r"COPY ([\w.\"]+), line (\d+), column ([\w.\"]+)")
_CERT = re.compile(r"certificate (?:has expired|verify failed[^\n]{0,60}|problem: [^\n]{0,60})", re.I)


def _first(match: re.Match | None) -> str | None:
    if match is None:
        return None
    return next((g for g in match.groups() if g), None)


def _names(text: str) -> list[str]:
    items = re.findall(r"['\"]([^'\"]{1,60})['\"]", text) or [t.strip() for t in re.split(r"[,;]", text) if t.strip()]
    return [i.strip() for i in items if i.strip()][:12]


def extract_facts(text: str) -> Facts:
    """The facts of an error text (see the module docstring)."""
    f = Facts()
    for m in _COL_MISSING.finditer(text):
        groups = [g for g in m.groups() if g]
        if m.group(2):
            f.relation = m.group(2)
        name = m.group(1) or next((g for g in m.groups()[2:] if g), None)
        if name and name not in f.missing_columns:
            f.missing_columns.append(name.strip())
        del groups
    keys = [k.group(1) for k in _KEYERROR.finditer(text) if not re.match(r"^\w*Error: ?$", k.group(1))]
    if keys and keys[0] not in f.missing_columns and not _NULL.search(text):
        f.missing_columns.append(keys[0])
    nii = _NOT_IN_INDEX.search(text)
    if nii and not f.missing_columns:
        f.missing_columns.extend(_names(nii.group(1) or nii.group(2) or ""))
    present = _PRESENT.search(text)
    if present:
        f.present_columns = _names(_first(present) or "")
    for m in _PYDANTIC.finditer(text):
        f.validation.append((m.group(1).strip(), f"{m.group(4).strip()} ({m.group(2).strip()})"))
    for m in _PANDERA.finditer(text):
        if m.group(1):
            f.validation.append((m.group(1), f"failure cases {m.group(3).strip()}"))
        else:
            f.validation.append((m.group(4), f"type {m.group(6)} where {m.group(5)} is expected"))
    column = value = None
    for conv in _CONVERT.finditer(text):
        g = conv.groups()
        column = column or g[4] or g[8]
        found = next((v for v in (g[1], g[2], g[5], g[6], g[9], g[11]) if v is not None), None)
        value = value if value is not None else found
    if (column or value is not None) and not f.validation:
        f.validation.append((column or "a value", repr(value) if value is not None else "not convertible"))
    oob = _OUT_OF_BOUNDS.search(text)
    if oob and not f.validation:
        f.validation.append(("a timestamp", f"{oob.group(1).strip()} (outside the range pandas can represent, "
                                            "1677-2262)"))
    js = _JSONSCHEMA.search(text)
    if js and not f.validation:
        path = re.findall(r"\['([^'\]]+)'\]", js.group(2))
        field = next((p for p in reversed(path) if p not in ("properties", "items")), "a field")
        f.validation.append((field, f"{js.group(1).strip()} (against the stream's JSON schema)"))
    fmt = _FORMAT.search(text)
    if fmt:
        f.value_format = (fmt.group(1), fmt.group(2))
    hp = _HOSTPORT.search(text)
    if hp:
        groups = [g for g in hp.groups() if g]
        f.host, f.port = groups[0], groups[1]
    su = _STATUS_URL.search(text)
    if su:
        g = su.groups()
        pairs = [(g[0], g[1]), (g[3], g[2]), (g[4], g[5]), (g[6], g[7]), (g[9], g[8])]
        f.http_status, f.endpoint = next((s, u) for s, u in pairs if s)
    else:
        st = _STATUS.search(text)
        if st:
            f.http_status = _first(st)
            url = _URL.search(text)
            f.endpoint = url.group(0) if url else None
    if f.endpoint:
        f.endpoint = f.endpoint.rstrip(".,;:'\")>")
    con = _CONSTRAINT.search(text)
    if con:
        f.constraint = _first(con)
    k = _KEY.search(text)
    if k:
        f.key = f"({k.group(1)})=({k.group(2)})" if k.group(1) else f"'{k.group(3)}'"
        f.constraint = f.constraint or k.group(4)
    nul = _NULL.search(text)
    if nul:
        f.null_column = nul.group(1) or nul.group(3) or nul.group(4)
        f.relation = f.relation or nul.group(2)
    f.oom = bool(re.search(r"OOMKilled|out of memory|\bOOM\b|MemoryError|exceeding memory limits|Java heap space",
                           text, re.I))
    ex = _EXIT.search(text)
    if ex:
        f.exit_code = _first(ex)
    mem = _MEMORY.search(text)
    if mem:
        f.memory = _first(mem)
    to = _TIMEOUT.search(text)
    if to:
        f.timeout = _first(to)
    op = _OPERATION.search(text)
    if op:
        f.error_code, f.operation = op.group(1), op.group(2)
    code = _ERROR_CODE.search(text)
    if code and not f.error_code:
        f.error_code = _first(code)
    dec = _DECODE.search(text)
    if dec:
        f.undecodable = (dec.group(1), dec.group(2), dec.group(3))
    fields = _FIELDS.search(text)
    if fields:
        f.bad_line = (fields.group(2), fields.group(1), fields.group(3))
    obj = _OBJECT.search(text)
    if obj and not f.missing_columns:
        f.missing_object = _first(obj) or obj.group(0)
        loc = re.search(r"not found in location ([\w-]+)", text)
        f.location = loc.group(1) if loc else None
    read = re.search(r"read_(?:csv|excel|parquet|json|table|fwf)\(\s*r?['\"]([^'\"\n]+)['\"]", text)
    if read:
        f.file = read.group(1)
    cert = _CERT.search(text)
    if cert:
        f.certificate = cert.group(0)
    limit = _LIMIT.search(text)
    if limit:
        f.limit_message = " ".join(limit.group(0).split())[:300]
    session = _SESSION.search(text)
    if session:
        f.session = session.group(0)
    exists = _PATH_EXISTS.search(text)
    if exists:
        f.path_exists = _first(exists)
    attr = _ATTRIBUTE.search(text)
    if attr:
        f.attribute = (attr.group(1), attr.group(2))
    long_ = _TOO_LONG.search(text)
    if long_:
        f.too_long = long_.group(1) or (f"column '{long_.group(2)}'" if long_.group(2) else "its column")
    at = _COPY_AT.search(text)
    if at:
        f.copy_at = (at.group(1).strip('"'), at.group(2), at.group(3).strip('"'))
    f.evicted = bool(re.search(r"\b[Ee]victed\b|\beviction\b", text))
    f.preempted = bool(re.search(r"preempt|[Ss]pot (?:ITN|instance|interruption)|BidEvicted|reclaimed", text))
    return f


def _join(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"'{i}'" for i in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def fact_steps(f: Facts, *, category: str | None = None) -> list[str]:
    """Fix steps that name the facts of ``f`` (most telling first); [] when it holds none."""
    steps: list[str] = []
    if f.missing_columns:
        where = f" of {f.relation}" if f.relation else ""
        there = f"; the data has {_join(f.present_columns)}" if f.present_columns else ""
        if category == "INPUT_DATA_QUALITY":
            steps.append(f"Column {_join(f.missing_columns)}{where} is not in the data it received{there}: find "
                         "which upstream change renamed or dropped it, then map the new name (or ask the producer "
                         "to restore it) and re-run.")
        else:
            steps.append(f"The code expects column {_join(f.missing_columns)}{where}, which is not there{there}: "
                         "align the code (or the schema/migration that should have created it) with the actual "
                         "columns, then re-run.")
    if f.null_column:
        rel = f" of {f.relation}" if f.relation else ""
        steps.append(f"Rows arrive with no value in '{f.null_column}'{rel}, which is NOT NULL: find the rows with a "
                     f"null '{f.null_column}' in the input (or the code path that leaves it empty) and fill or reject "
                     "them before the load.")
    if f.constraint or f.key:
        what = f"constraint '{f.constraint}'" if f.constraint else "a unique key"
        key = f" for key {f.key}" if f.key else ""
        steps.append(f"The load breaks {what}{key}: look that key up in the target and in the batch (sent twice? "
                     "loaded twice?), then deduplicate, or upsert (`ON CONFLICT`) if re-sends are expected.")
    for name, value in f.validation[:3]:
        steps.append(f"'{name}' failed validation with {value}: check that field at the source, then fix the value "
                     "upstream or relax/coerce the schema if the value is legitimate.")
    if f.value_format:
        value, fmt = f.value_format
        steps.append(f"The value '{value}' does not match the date format '{fmt}': find the rows with that "
                     "shape and parse both formats (or ask the producer for one).")
    if f.undecodable:
        codec, byte, pos = f.undecodable
        name = f" ({f.file})" if f.file else ""
        if byte.lower() == "0x8b" and pos == "1":
            steps.append(f"Byte 0x8b at position 1 is the gzip signature: the file{name} is compressed; read it with "
                         "`compression='gzip'` (or decompress it first).")
        else:
            steps.append(f"The input{name} is not {codec}: byte {byte} at position {pos}. Read it with the encoding "
                         "the producer uses (e.g. `encoding='cp1252'` or `'latin-1'`), or ask for UTF-8.")
    if f.bad_line:
        line, expected, seen = f.bad_line
        steps.append(f"Line {line} of the file has {seen} fields where {expected} are expected: look at that line "
                     "(an unquoted separator, a broken row or the wrong separator) and fix or skip it "
                     "(`on_bad_lines=`).")
    if f.host and f.port:
        steps.append(f"Check that {f.host}:{f.port} is up and reachable from where the flow runs (the right host "
                     "and port in the connection settings? is the service running? firewall/DNS?).")
    if f.http_status:
        at = f" at {f.endpoint}" if f.endpoint else ""
        status = f.http_status + (f" ({f.error_code})" if f.error_code else "")
        if f.http_status == "429" or f.error_code in ("SlowDown", "Throttling", "ThrottlingException"):
            said = f" (\u201c{f.limit_message}\u201d)" if f.limit_message else ""
            steps.append(f"The API answered {status}: a rate limit{at}{said}; lower the request rate (batch, back "
                         "off, a Prefect concurrency limit) and retry with backoff.")
        elif f.http_status.startswith("5"):
            steps.append(f"The service answered HTTP {status}{at}: a failure on its side; check its status page "
                         "and retry with backoff.")
        elif f.http_status in ("401", "403"):
            steps.append(f"HTTP {status}{at}: the credentials or permissions used for it were refused; renew or "
                         "grant them.")
        elif f.http_status == "404":
            steps.append(f"HTTP 404{at}: check that the path or object the task builds exists.")
        else:
            steps.append(f"HTTP {status}{at}: read the response body for what the service rejected.")
    if f.operation:
        code = f" ({f.error_code})" if f.error_code else ""
        steps.append(f"The cloud API throttled or refused the {f.operation} operation{code}: space the calls out "
                     "(backoff, fewer parallel calls) or raise the service quota.")
    elif f.error_code and not f.http_status:
        steps.append(f"The service answered {f.error_code}: act on that code (renew the session, lower the request "
                     "rate, or fix the request it names).")
    if f.oom or f.memory or (f.exit_code == "137"):
        parts = [p for p in ("OOMKilled" if f.oom else None, f"exit code {f.exit_code}" if f.exit_code else None,
                             f.memory) if p]
        steps.append(f"The process ran out of memory ({', '.join(parts)}): raise the memory limit of the job "
                     "(work pool job variables, container or executor memory) or process the data in smaller "
                     "chunks.")
    elif f.exit_code and f.exit_code not in ("0", "1"):
        steps.append(f"The process exited with code {f.exit_code}: read the infrastructure's events for that exit "
                     "(signal, limit, kill).")
    if f.evicted:
        steps.append("The pod was evicted by Kubernetes (node pressure): give the job requests that match its use, "
                     "or a node pool with room, then re-run.")
    if f.preempted:
        steps.append("The node was reclaimed (spot/preemptible instance interrupted): re-run, and give runs that "
                     "must finish flow retries or on-demand nodes.")
    if f.timeout:
        steps.append(f"It ran past its timeout of {f.timeout}: find what got slower, or raise the timeout if the "
                     "longer run is expected.")
    if f.missing_object:
        where = f" in location {f.location}" if f.location else ""
        steps.append(f"'{f.missing_object}' does not exist where the task looks for it{where}: check its name, "
                     "location (region) and permissions, and that the step that creates it ran first.")
    if f.too_long or f.copy_at:
        where = (f"column '{f.copy_at[2]}' of {f.copy_at[0]}, line {f.copy_at[1]} of the load" if f.copy_at
                 else "the load")
        if f.too_long:
            steps.append(f"A value does not fit {f.too_long} ({where}): find the longest values of that field at "
                         "the source, then widen the column or trim/reject them on load.")
        elif not f.validation:
            steps.append(f"The load rejected {where}: look at that value in the input file.")
        elif f.copy_at[2] not in f.validation[0][0]:
            steps.append(f"The value that failed is in {where}.")
    if f.limit_message and not (f.http_status == "429" or f.operation):
        steps.append(f"The service refused for a rate limit or quota: \u201c{f.limit_message}\u201d. Lower the request "
                     "rate (batch, back off, a Prefect concurrency limit, fewer parallel syncs) or raise the quota.")
    if f.session:
        steps.append(f"The service's session is invalid or expired (\u201c{f.session}\u201d): re-authenticate before "
                     "long jobs (refresh the token or session when it expires) and check the session settings "
                     "(timeout, IP restrictions) of the integration user.")
    if f.path_exists:
        steps.append(f"'{f.path_exists}' already exists (left over by an earlier run): clean it before the step, or "
                     "make the step reuse or update it.")
    if f.attribute:
        module, name = f.attribute
        steps.append(f"'{module}' has no attribute '{name}': the installed version of {module.split('.')[0]} is not "
                     "the one the code (or the deployment) was written for; align the versions where it runs.")
    if f.certificate:
        steps.append(f"TLS failed: {f.certificate}. Check whose certificate it is (the service's, renewed? or the "
                     "worker's CA bundle, up to date?).")
    return steps
