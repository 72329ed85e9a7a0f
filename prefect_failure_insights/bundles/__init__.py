"""Run bundles: a failed run as one self-contained JSON file, for offline analysis.

`format` (the file format, reading and writing), `export` (from the Prefect API, redacted)
and `offline` (evidence and summary without a server).
"""
