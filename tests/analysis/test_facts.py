"""The facts a specific fix names (issue 26): families of widely used libraries, not one example."""

from __future__ import annotations

from prefect_failure_insights.analysis.facts import extract_facts, fact_steps


def _fix(text: str, category: str | None = None) -> str:
    return "\n".join(fact_steps(extract_facts(text), category=category))


def test_missing_and_present_columns() -> None:
    fix = _fix("KeyError: 'customer_id'\nColumns received: cust_id, order_id, amount", "INPUT_DATA_QUALITY")
    assert "'customer_id'" in fix and "'cust_id'" in fix and "upstream" in fix
    fix = _fix('psycopg2.errors.UndefinedColumn: column "url" of relation "users" does not exist')
    assert "'url'" in fix and "users" in fix


def test_constraint_key_and_null_column() -> None:
    fix = _fix('duplicate key value violates unique constraint "orders_pkey"\nDETAIL:  Key (id)=(42) already exists.')
    assert "orders_pkey" in fix and "(id)=(42)" in fix
    fix = _fix('null value in column "customer_id" of relation "orders" violates not-null constraint')
    assert "customer_id" in fix and "orders" in fix


def test_host_port_status_endpoint_operation() -> None:
    assert "localhost:5432" in _fix('connection to server at "localhost" (127.0.0.1), port 5432 failed: '
                                     "Connection refused")
    fix = _fix("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: "
               "https://api.mixpanel.com/api/2.0/export?from_date=2026-01-01")
    assert "429" in fix and "https://api.mixpanel.com/api/2.0/export" in fix
    fix = _fix("An error occurred (ThrottlingException) when calling the ListClusters operation: Rate exceeded")
    assert "ListClusters" in fix and "ThrottlingException" in fix


def test_memory_exit_code_timeout() -> None:
    fix = _fix("Container killed by YARN for exceeding memory limits. 7.2 GB of 4.2 GB virtual memory used.")
    assert "7.2 GB of 4.2 GB virtual memory used" in fix
    assert "exit code 137" in _fix("Pod failed. Exit Code: 137 Reason: OOMKilled")
    assert "3.0 second(s)" in _fix("Task run exceeded timeout of 3.0 second(s)")


def test_validation_field_and_value_encoding_and_csv_line() -> None:
    fix = _fix("1 validation error for Invoice\namount\n  Input should be a valid number, unable to parse string as "
               "a number [type=float_parsing, input_value='12,40', input_type=str]")
    assert "'amount'" in fix and "'12,40'" in fix
    assert "0x97" in _fix("UnicodeDecodeError: 'utf-8' codec can't decode byte 0x97 in position 64")
    assert "gzip" in _fix("UnicodeDecodeError: 'utf-8' codec can't decode byte 0x8b in position 1: invalid start byte")
    fix = _fix("pandas.errors.ParserError: Error tokenizing data. C error: Expected 44 fields in line 3169, saw 56")
    assert "3169" in fix and "56" in fix


def test_nothing_specific_gives_no_step() -> None:
    assert fact_steps(extract_facts("ValueError: bad")) == []
