"""Failure signatures: the same failure, whatever the run, gets the same fingerprint.

The signature is the flow, the failed task (without the random suffix Prefect adds
to task run names), the exception type and the exception message with numbers, ids,
timestamps, hex strings and paths masked. Quoted values stay: a null in column
'amount' and a null in column 'region' are different failures, whose analyses must
not be swapped. The cache key adds the model and the prompt version, so a new model
or prompt never reuses an old answer.
"""

from __future__ import annotations

import hashlib
import re

from prefect_failure_insights.evidence.signals import short_type, template
from prefect_failure_insights.models import Evidence, FailedRun

_RUN_SUFFIX = re.compile(r"-[0-9a-z]{3}$")


def task_name(run_name: str | None) -> str:
    """``extract_orders-a40`` -> ``extract_orders``."""
    return _RUN_SUFFIX.sub("", run_name or "")


def signature(evidence: Evidence, failed: FailedRun) -> str:
    """The normalised signature of a failure (readable, for rows and reports)."""
    message = evidence.exception_message or evidence.root_error or failed.run.state_message or ""
    parts = [
        failed.run.flow_name,
        task_name(evidence.failed_task),
        short_type(evidence.exception_type) or "",
        template(message, mask_strings=False),
    ]
    return " | ".join(parts)


def fingerprint(signature_text: str) -> str:
    return hashlib.sha256(signature_text.encode()).hexdigest()[:32]


def cache_key(fingerprint_value: str, model: str, prompt_version: str) -> str:
    return hashlib.sha256(f"{fingerprint_value}|{model}|{prompt_version}".encode()).hexdigest()[:32]


def error_signature(error_text: str, exception_type: str | None = None, max_lines: int = 4) -> str:
    """The normalised signature of one error text, whatever run or pipeline it came from.

    Its exception type and the templates of its first non-empty lines (numbers, ids,
    paths and times masked; quoted values kept). Used to classify identical errors once
    and to match corrections exactly.

    Example:
        >>> error_signature("KeyError: 'amount' at row 17", "builtins.KeyError")
        "KeyError: 'amount' at row <n>"
    """
    lines = [template(line.strip(), mask_strings=False) for line in error_text.splitlines() if line.strip()]
    kind = short_type(exception_type)
    parts = ([kind] if kind and not (lines and lines[0].startswith(kind)) else []) + lines[:max_lines]
    return " | ".join(parts)
