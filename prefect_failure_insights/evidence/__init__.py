"""Evidence: the part of a failed run worth showing to a reader or an LLM.

`signals` (what a log line says), `redaction` (secrets out), `builder` (a run's logs
condensed into evidence within a token budget), `errors` (a run's errors, for
classification) and `sources` (other systems' logs: Airbyte). Pure: no Prefect API.
"""
