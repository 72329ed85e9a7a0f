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
``[REDACTED:<kind>]``.
"""

from prefect_failure_insights.redaction.redactor import Redactor

__all__ = ["Redactor"]
