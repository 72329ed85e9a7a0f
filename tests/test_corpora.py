"""The evaluation corpora of issue 26 keep their promises (`bench/corpora/validate.py`): labels,
splits, provenance, runs that inherit their text's split, no thread of the training corpus."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_evaluation_corpora_are_valid(capsys) -> None:
    spec = importlib.util.spec_from_file_location("validate_corpora", ROOT / "bench" / "corpora" / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0, capsys.readouterr().out
