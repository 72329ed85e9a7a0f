"""Every default of the plugin, defined once.

Blocks (`Field(default=...)`), the CLI's options, the flows' parameters, `serve` and
``prefect.yaml`` all take their defaults from here; ``tests/test_defaults.py`` checks
``prefect.yaml`` against this module. Importing it does nothing but define names.
"""

from __future__ import annotations

from datetime import timedelta

# -- names ------------------------------------------------------------------------------------

#: Flow names of the plugin's own flows. Their failures are never summarized or classified:
#: a failing summarizer would otherwise trigger itself in a loop.
SUMMARIZER_FLOW = "summarize-failure"
BATCH_FLOW = "batch-insights"
RECONCILE_FLOW = "reconcile-summaries"
RETRY_FLOW = "retry-transient-failure"
OWN_FLOWS = (SUMMARIZER_FLOW, BATCH_FLOW, RECONCILE_FLOW, RETRY_FLOW)

#: Deployments, as in prefect.yaml and `failure-insights serve`.
SUMMARIZER_DEPLOYMENT_NAME = "failure-insights"
BATCH_DEPLOYMENT_NAME = "batch-insights"
RECONCILE_DEPLOYMENT_NAME = "reconcile-summaries"
RETRY_DEPLOYMENT_NAME = "failure-insights-retry"
SUMMARIZER_DEPLOYMENT = f"{SUMMARIZER_FLOW}/{SUMMARIZER_DEPLOYMENT_NAME}"
BATCH_DEPLOYMENT = f"{BATCH_FLOW}/{BATCH_DEPLOYMENT_NAME}"
RETRY_DEPLOYMENT = f"{RETRY_FLOW}/{RETRY_DEPLOYMENT_NAME}"
#: The tag on the plugin's deployments.
PLUGIN_TAG = "failure-insights"

#: The block name used when none is given (settings, LLM).
DEFAULT_BLOCK_NAME = "default"
#: The SQLite file in the Prefect home used when no database block is configured.
SQLITE_FILENAME = "failure_insights.db"

#: Artifact keys: one collection per flow for summaries, one for batch reports.
SUMMARY_ARTIFACT_PREFIX = "failure-summary"
BATCH_ARTIFACT_KEY = "batch-insights"

#: The Prefect events emitted for every delivered summary (a provisional one, then the final one).
SUMMARY_CREATED_EVENT = "failure-insights.summary.created"
SUMMARY_UPDATED_EVENT = "failure-insights.summary.updated"
#: The summary's resource id in those events: this prefix, then the failed run's id.
SUMMARY_RESOURCE_PREFIX = "failure-insights.summary."
#: The event of each retry decision (retried, or why not). Deliberately not a summary event: the
#: retry automation listens to those, and a decision that emitted one would start it again.
RETRY_DECIDED_EVENT = "failure-insights.retry.decided"

#: The Prefect global concurrency limit on LLM calls, across all summarizers.
LLM_CONCURRENCY_LIMIT = "failure-insights-llm"

# -- summaries --------------------------------------------------------------------------------

#: Most tokens of condensed, redacted log evidence sent to the LLM, and the accepted range.
EVIDENCE_TOKEN_BUDGET = 6000
EVIDENCE_TOKEN_BUDGET_MIN = 500
EVIDENCE_TOKEN_BUDGET_MAX = 200_000
#: Longest wait for a failed run's late-arriving logs.
MAX_LOG_WAIT_SECONDS = 60.0
#: The plugin's own rows (summaries, the answer cache, batches, patterns) are deleted this many
#: days after they were made (0: never), by the reconcile pass, at most `RETENTION_MAX_ROWS` rows
#: per table per pass, `RETENTION_BATCH_ROWS` per transaction.
RETENTION_DAYS = 90.0
RETENTION_MAX_ROWS = 20_000
RETENTION_BATCH_ROWS = 500
#: The record the plugin appends to a failed run's logs, pointing at its summary, begins with this
#: (the plugin's own log reading skips such records), from this logger.
SUMMARY_RECORD_PREFIX = "[failure-insights] Failure summary: "
SUMMARY_RECORD_LOGGER = "prefect_failure_insights"
#: After a summary made from incomplete logs (no final-state record within `MAX_LOG_WAIT_SECONDS`),
#: how much longer the summarizer waits for the record, to make the summary again from every record.
LATE_LOG_WAIT_SECONDS = 300.0
#: How often it checks meanwhile.
LATE_LOG_POLL_SECONDS = 5.0
#: The most an answer (the LLM's or the deterministic one) keeps of each field: text of a claim,
#: a fix step (also an extra answer, an open question), a citation's quote; items per list.
ANSWER_TEXT_CHARS = 4000
ANSWER_STEP_CHARS = 1000
ANSWER_QUOTE_CHARS = 300
ANSWER_LIST_MAX = 8
#: Longest time one summary spends on the LLM, retries and repair included.
LLM_DEADLINE_SECONDS = 120.0
#: LLM calls at once across all summarizers.
MAX_CONCURRENT_LLM_CALLS = 4
#: The summarizer flow's timeout.
SUMMARIZER_TIMEOUT_SECONDS = 900
#: A claim (on a summary row or a fingerprint) is a lease: its holder renews it every
#: `LEASE_RENEW_SECONDS` while it works, and a claim not renewed for `CLAIM_LEASE` belongs
#: to a summarizer that died, free for the next one.
CLAIM_LEASE = timedelta(seconds=30)
LEASE_RENEW_SECONDS = 10.0
#: The lease on a slot of the Prefect LLM concurrency limit (the server's minimum): a dead
#: holder's slot is free again within it (plus the server's repossessor loop, 15 s).
LLM_SLOT_LEASE_SECONDS = 60.0
#: Lines of evidence shown in the artifact (the row keeps all of it).
EVIDENCE_LINES_IN_ARTIFACT = 120

# -- the LLM ----------------------------------------------------------------------------------

LLM_BASE_URL = "https://api.openai.com/v1"
LLM_MODEL = "gpt-4o-mini"
LLM_TIMEOUT_SECONDS = 60.0
LLM_MAX_RETRIES = 2
LLM_AZURE_API_VERSION = "2024-10-21"
#: Most tokens of one answer: a summary, a classification.
MAX_ANSWER_TOKENS = 1500
MAX_CLASSIFICATION_TOKENS = 300

# -- batch insights ---------------------------------------------------------------------------

#: The batch deployment's schedule (UTC): daily, for the 24 hours before.
BATCH_CRON = "0 6 * * *"
BATCH_TIMEZONE = "UTC"
BATCH_HOURS = 24.0
#: Most failed runs read per window (newest first).
BATCH_MAX_RUNS = 5000
#: Most partitions of a fan-out at once.
BATCH_MAX_PARALLEL = 4
#: Evidence per batch error: enough for the root error and its traceback.
BATCH_ERROR_TOKENS = 600
#: Corrections shown to the LLM as examples.
FEW_SHOT_EXAMPLES = 5

# -- the Prefect API --------------------------------------------------------------------------

#: The API's page cap (``PREFECT_SERVER_API_DEFAULT_LIMIT``): every paged read uses it.
API_PAGE = 200

# -- reconciling ------------------------------------------------------------------------------

#: The look-back of `failure-insights summary reconcile` (and of `serve` at start and every hour):
#: failed runs in it without a summary get one.
RECONCILE_HOURS = 24.0
#: Most summarizer runs one reconcile pass starts (oldest failure first); the rest wait for the next.
RECONCILE_LIMIT = 50
#: The schedule of prefect.yaml's reconcile deployment (for worker setups).
RECONCILE_CRON = "*/5 * * * *"
#: `serve` reconciles this often, looking back `RECONCILE_RECENT_MINUTES` (and the full
#: `RECONCILE_HOURS` every `RECONCILE_FULL_SECONDS`): a dead summarizer is replaced within a lease
#: and one interval.
RECONCILE_SECONDS = 30.0
RECONCILE_RECENT_MINUTES = 15.0
RECONCILE_FULL_SECONDS = 3600.0
#: A failure with no summarizer run yet is left alone this long: the automation may still be
#: creating its run (measured: up to ~100 s in a storm of 80 failures).
RECONCILE_GRACE_SECONDS = 120.0
#: A summarizer run Pending this long never started (its executor died before starting it). A
#: worker may take minutes to start a run's infrastructure; `serve` starts one in its own process
#: within a second, so a run with no work pool gets `RECONCILE_PENDING_SERVED_SECONDS`.
RECONCILE_PENDING_SECONDS = 600.0
RECONCILE_PENDING_SERVED_SECONDS = 60.0
#: Summarizer runs that ended without a summary, after which a failure is left alone (no loop).
RECONCILE_MAX_ATTEMPTS = 3

# -- serve ------------------------------------------------------------------------------------

#: The provisional summary reads only the records at this level and above (WARNING), filtered by
#: the server: its cost grows with the number of warnings and errors, not with the log's length.
PROVISIONAL_MIN_LEVEL = 30

#: Seconds between polls for new summarizer runs, and summaries at once.
SERVE_POLL_SECONDS = 1.0
SERVE_LIMIT = 10
#: `serve` starts a summary on the failure event itself (`serve.at_once`); the automation's run
#: for the same failure is dropped if it comes within this many seconds, and the automation's
#: trigger (and whether it is enabled) is read again this often.
AT_ONCE_PAIRING_SECONDS = 300.0
AT_ONCE_TRIGGER_SECONDS = 30.0
#: Batches need no second-by-second polling (the event stream wakes the executor for a new
#: run at once), and fewer polls leave the server to the summaries.
BATCH_POLL_SECONDS = 10.0
#: Batch runs at once: a coordinator (``partition_by``) holds one slot while its children use others.
BATCH_LIMIT = 4

# -- notifications and automatic retries ------------------------------------------------------

#: Most characters of "what happened", of one fix step, and fix steps, in an event's payload.
EVENT_TEXT_CHARS = 600
EVENT_STEP_CHARS = 300
EVENT_MAX_STEPS = 5
#: Most tags of the failed run carried as related resources of a summary event.
EVENT_MAX_TAGS = 20
#: `failure-insights retry install`: retries per failed run, the delay before each, and the
#: categories whose TRANSIENT failures are retried.
RETRY_MAX_RETRIES = 1
RETRY_DELAY_SECONDS = 60.0
RETRY_CATEGORIES = ("THIRD_PARTY_SYSTEM",)
#: `retry install --crashed`: also retry a run that crashed for infrastructure reasons (evicted,
#: preempted, node lost, pod never started, SIGTERM); ``--oom``: out-of-memory kills (and SIGKILL,
#: which a process worker cannot tell from one) too. Both off unless asked.
RETRY_CRASHED = False
RETRY_OOM = False
#: The most retries per run, and the longest delay, that `retry install` accepts and the retry
#: flow enforces whatever its parameters say (a guard against a typo like 100, or a forged run).
RETRY_MAX_RETRIES_LIMIT = 10
RETRY_MAX_DELAY_SECONDS = 86400.0
#: The message of the AwaitingRetry state an automatic retry sets begins with this: the
#: retries of a run are counted from its state history, which no database loss can reset.
RETRY_STATE_MARK = "failure-insights automatic retry"

# -- cited answers ----------------------------------------------------------------------------

#: The highest confidence an analysis keeps when the code cannot verify its root cause's citations.
UNVERIFIED_CONFIDENCE_CAP = 0.5
#: Most characters of a cited line shown under a claim in the artifact.
CITED_LINE_CHARS = 160
#: Longest line in a card's fenced blocks: the Prefect UI clips them at the card's edge (about 100
#: characters in a 1,400 px window, seen in its screenshots), so longer ones are wrapped, never cut.
WRAP_WIDTH = 96

# -- similar failures -------------------------------------------------------------------------

#: MinHash LSH over a failure's pattern: bands x rows hashes. 16 bands of 2 find a pattern with
#: similarity 0.5 as a candidate 99 % of the time, one with 0.2 about half of the time.
SIMILARITY_BANDS = 16
SIMILARITY_ROWS = 2
#: Jaccard similarity of two patterns' shingles from which failures are "similar" (chosen on the
#: tuning split of tests/fixtures/similar/pairs.jsonl; the frozen split's figure is in docs/benchmarks.md).
SIMILARITY_THRESHOLD = 0.5
#: Candidate patterns re-ranked per lookup, and similar summaries linked from the artifact.
SIMILARITY_CANDIDATES = 200
SIMILAR_LINKS = 3
#: With an embedding model on the LLM block (issue 29): random-hyperplane LSH over a pattern's
#: embedding, bands x rows sign bits (stored beside the lexical bands, from band
#: `EMBEDDING_BAND_BASE` on). 20 bands of 8 find a pattern at cosine 0.9 as a candidate 99.9 % of
#: the time, at 0.7 87 %, and an unrelated one (cosine 0) 8 % of the time.
EMBEDDING_BANDS = 20
EMBEDDING_ROWS = 8
EMBEDDING_BAND_BASE = 1000
#: Cosine of two patterns' embeddings from which failures are also "similar" (the block's
#: ``embedding_threshold``): on the tuning split of the labelled pairs with all-MiniLM-L6-v2, the
#: lowest at which embeddings add no wrong link to the lexical ones (docs/benchmarks.md).
EMBEDDING_SIMILARITY_THRESHOLD = 0.9
#: One embedding request: at most this long (one attempt: the lexical lookup answers instead),
#: at most this many characters of a pattern, and vectors of at most this many dimensions.
EMBEDDING_TIMEOUT_SECONDS = 15.0
EMBEDDING_INPUT_CHARS = 2000
EMBEDDING_MAX_DIMENSIONS = 8192

#: Below this calibrated confidence a classification is flagged as low confidence (it stays the
#: answer; with an LLM configured, the batch asks the LLM about it). Issue 26.
CONFIDENT_CLASSIFICATION = 0.8

# -- untrusted input --------------------------------------------------------------------------

#: The longest log message kept, Prefect's own limit (``PREFECT_LOGGING_TO_API_MAX_LOG_SIZE``,
#: 1,000,000): a longer one (written to the API directly, or in a bundle or another system's
#: logs) keeps its start and end, and says how many characters were cut between them.
LOG_MESSAGE_MAX_CHARS = 1_000_000
#: The deepest JSON nesting a bundle may have (a subflow is two levels): checked while it is
#: parsed, before any path is built, so a 10,000-deep file fails at once, not after minutes.
BUNDLE_MAX_DEPTH = 64
#: The largest single JSON value of a bundle (a log message at Prefect's limit, escaped as JSON,
#: fits): the JSON parser buffers a value whole, at a cost that grows with its square.
BUNDLE_MAX_VALUE_BYTES = 8_000_000
#: `batch classify` and `eval` input: the largest JSONL file, and the longest line (a log message
#: at Prefect's limit, JSON-escaped).
CLASSIFY_MAX_FILE_BYTES = 256_000_000
CLASSIFY_MAX_LINE_CHARS = 2_000_000
