"""Secret redaction: nothing leaves the process before it has been through here.

`Redactor` is the one entry point: ``Redactor().redact(text)`` removes what the patterns
find; ``Redactor(literals=...)`` also removes the exact values of the workspace's Secret
blocks, and counts what it removed. Text from a run is redacted where it enters
(`models.Redacted`, `prefect_api.logs.RunLogs.lines`), and every output is passed through
again as a second line of defence.

It finds secrets the way scanners do (gitleaks, trufflehog, detect-secrets), in families
rather than by example: `patterns` says what each family looks like (vendor token formats,
URL credentials, assignments to secret-looking keys, command lines, credentials by position,
SQL and config forms), `scanner` finds them in text, `redactor` replaces each with
``[REDACTED:<kind>]``. `LogRedactor` redacts a run's records in their order, which shows what no
record alone does: a private key logged one line per record.

Untrusted text is made inert at the same door (`sanitize.inert`: no control characters,
terminal escapes, bidi controls or invisible characters), and `sanitize` also holds the other
defences of text on its way out: `capped` (one message's size) and `csv_cell` (no spreadsheet
formula in an export).
"""

from prefect_failure_insights.redaction.redactor import LogRedactor, Redactor
from prefect_failure_insights.redaction.sanitize import capped, csv_cell, from_csv_cell, inert

__all__ = ["LogRedactor", "Redactor", "capped", "csv_cell", "from_csv_cell", "inert"]
