"""Bad input is one line on stderr and exit 2, never a traceback, and costs little (issue 25)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefect_failure_insights.cli import app


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr if hasattr(result, "stderr") else result.output


def _one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    """It printed a 57-line traceback."""
    path = tmp_path / "errors.jsonl"
    path.write_bytes(b'{"error_text": "x"}\n' + bytes(range(256)) * 64)
    _one_line_error(*_cli("batch", "classify", "--input", str(path), "--no-llm"), "is not UTF-8 text")


def test_a_line_longer_than_the_limit_is_refused_naming_it(tmp_path: Path) -> None:
    from prefect_failure_insights.defaults import CLASSIFY_MAX_LINE_CHARS

    path = tmp_path / "errors.jsonl"
    path.write_text(json.dumps({"error_text": "ok"}) + "\n" + json.dumps({"error_text": "x" * CLASSIFY_MAX_LINE_CHARS}))
    _one_line_error(*_cli("batch", "classify", "--input", str(path), "--no-llm"), "line 2: longer than")


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    from prefect_failure_insights import defaults

    monkeypatch.setattr(defaults, "CLASSIFY_MAX_FILE_BYTES", 1000)
    path = tmp_path / "errors.jsonl"
    path.write_text((json.dumps({"error_text": "KeyError: 'amount'"}) + "\n") * 100)
    _one_line_error(*_cli("batch", "classify", "--input", str(path), "--no-llm"), "more than the 1,000 accepted")


def test_output_refuses_a_directory_and_never_creates_one(tmp_path: Path) -> None:
    """``-o`` created missing directories, and printed a traceback for a directory."""
    path = tmp_path / "errors.jsonl"
    path.write_text(json.dumps({"error_text": "KeyError: 'amount'"}) + "\n")
    _one_line_error(*_cli("batch", "classify", "--input", str(path), "--no-llm", "-o", str(tmp_path)),
                    "is a directory")
    missing = tmp_path / "no" / "such" / "dir" / "out.csv"
    _one_line_error(*_cli("batch", "classify", "--input", str(path), "--no-llm", "-o", str(missing)),
                    "does not exist")
    assert not (tmp_path / "no").exists()
    _one_line_error(*_cli("batch", "run", "-o", str(tmp_path)), "is a directory")
    _one_line_error(*_cli("summary", "export", "0b7c2c1e-0000-4000-8000-000000000000", "-o", str(missing)),
                    "does not exist")


def test_a_deep_bundle_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"flow_run_id": "r", "state": "Failed", "extra": ' + "[" * 10_000 + "]" * 10_000 + "}")
    _one_line_error(*_cli("summary", "evidence", "--bundle", str(path)), "nested deeper than")


@pytest.mark.parametrize(("args", "fragment"), [
    (("--llm-api-key-env", "SOME_KEY"), "give --llm-url too"),
    (("--llm-url", "http://127.0.0.1:9/v1", "--llm-api-key-env", "FI_TEST_UNSET_KEY_VAR"), "is not set"),
])
def test_an_endpoints_key_comes_from_a_named_variable(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    path = tmp_path / "errors.jsonl"
    path.write_text(json.dumps({"error_text": "KeyError: 'amount'"}) + "\n")
    _one_line_error(*_cli("batch", "classify", "--input", str(path), *args), fragment)
