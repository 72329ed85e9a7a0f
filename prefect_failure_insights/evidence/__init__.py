"""Evidence: the part of a failed run worth showing to a reader or an LLM.

`signals` (what a log line says), `builder` (a run's logs condensed into evidence within a
token budget), `errors` (a run's errors, for classification) and `sources` (other systems'
logs: Airbyte, over its own API). No Prefect API here. Secrets are removed by
`prefect_failure_insights.redaction`, where text enters.
"""
