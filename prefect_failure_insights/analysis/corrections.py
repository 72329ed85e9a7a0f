"""The team's corrections: exact overrides and few-shot examples for classification.

`failure-insights corrections import FILE.csv` reads either the batch CSV export with its
"Corrected Category" column filled in, or a plain CSV with an error text (or a run id
of an exported error) and a corrected category, and optionally who corrected it. The
whole file is checked before anything is written: one bad row, nothing imported.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prefect_failure_insights.analysis.fingerprint import error_signature, fingerprint
from prefect_failure_insights.analysis.taxonomy import Taxonomy
from prefect_failure_insights.redaction import Redactor, from_csv_cell
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.models import Correction
from prefect_failure_insights.store.corrections import error_of_run, save_corrections

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Accepted spellings of each column (compared lower-case, spaces and dashes as underscores).
COLUMNS = {
    "category": ("corrected_category", "correct_category", "corrected", "label", "category_corrected"),
    "error_text": ("error_text", "error", "error_message", "message"),
    "exception_type": ("exception_type", "exception"),
    "flow_run_id": ("flow_run_id", "run_id", "run"),
    "corrected_by": ("corrected_by", "who", "by", "user"),
}


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int  # rows with no corrected category (an export with only some rows filled in)


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _column(header: list[str], kind: str) -> str | None:
    by_normal = {_normal(h): h for h in header if h}
    return next((by_normal[n] for n in COLUMNS[kind] if n in by_normal), None)


def read_csv(engine: Engine, path: str | Path, taxonomy: Taxonomy) -> tuple[list[Correction], int]:
    """Rows ready to store, and how many rows had no correction; InputError on any bad row."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"No such file: {file}. Give the CSV exported by `failure-insights batch run --format csv`.")
    header, numbered = _strict_rows(file)
    columns = {kind: _column(header, kind) for kind in COLUMNS}
    if columns["category"] is None or (columns["error_text"] is None and columns["flow_run_id"] is None):
        raise InputError(
            f"{file} needs a 'Corrected Category' column and an 'Error Text' or 'Run ID' column; "
            f"it has: {', '.join(header) or 'no header'}."
        )
    redactor = Redactor()
    out: list[Correction] = []
    skipped = 0
    for number, row in numbered:
        def get(kind: str, row: dict = row) -> str:
            return (row.get(columns[kind]) or "").strip() if columns[kind] else ""

        raw_category = get("category")
        if not raw_category:
            skipped += 1
            continue
        try:
            category = taxonomy.parse(raw_category)
        except ValueError as exc:
            raise InputError(f"{file}, line {number}: {exc}. Nothing was imported.") from exc
        text, exc_type, run_id = get("error_text"), get("exception_type") or None, get("flow_run_id") or None
        if not text and run_id:
            text, exc_type = _error_of_run(engine, run_id, file, number)
        if not text:
            raise InputError(f"{file}, line {number}: no error text and no run id. Nothing was imported.")
        text = redactor.redact(text)
        sig = error_signature(text, exc_type)
        out.append(Correction(
            fingerprint=fingerprint(sig), signature=sig, error_text=text[:8000], exception_type=exc_type,
            category=category, corrected_by=get("corrected_by") or None, flow_run_id=run_id, source=file.name,
        ))
    return out, skipped


def _strict_rows(file: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and every row with the line it starts on; InputError naming the line of the
    first malformed one: an unbalanced quote (which would swallow the rows after it into
    one field), text after a closing quote, or a row with more or fewer fields than the header."""
    rows: list[tuple[int, dict[str, str]]] = []
    start = 1
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, [])
            start = reader.line_num + 1
            for fields in reader:
                if fields and len(fields) != len(header):
                    raise InputError(
                        f"{file}, line {start}: {len(fields)} fields where the header has {len(header)} (an "
                        "unbalanced quote or a stray comma?). Nothing was imported.")
                if fields:  # cells as they were before the export neutralised formulas
                    rows.append((start, dict(zip(header, (from_csv_cell(f) for f in fields)))))
                start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{file}, line {start}: not valid CSV ({exc}; an unbalanced quote?). "
                         "Nothing was imported.") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 CSV. "
                         "Nothing was imported.") from exc
    return header, rows


def _error_of_run(engine: Engine, run_id: str, file: Path, number: int) -> tuple[str, str | None]:
    found = error_of_run(engine, run_id)
    if found is None:
        raise InputError(f"{file}, line {number}: run {run_id} is in no batch report, so its error is unknown; "
                         "add an 'Error Text' column. Nothing was imported.")
    return found


def import_csv(engine: Engine, path: str | Path, taxonomy: Taxonomy) -> ImportResult:
    """Check the whole file, then store its corrections in one transaction (latest wins)."""
    rows, skipped = read_csv(engine, path, taxonomy)
    return ImportResult(imported=save_corrections(engine, rows), skipped=skipped)
