"""The learned text model and the one classification (issue 26)."""

from __future__ import annotations

import gzip
import json

from prefect_failure_insights.analysis.categorize import Categorizer, categorize, default_model
from prefect_failure_insights.analysis.model import UNKNOWN, TextModel, features, telling_part, train
from prefect_failure_insights.analysis.rules import Rule
from prefect_failure_insights.analysis.training import dump_model, load_shipped_model, shipped_corpus
from prefect_failure_insights.models import Category

SMALL = [
    ("psycopg2.errors.NotNullViolation: null value in column \"customer_id\" violates not-null constraint", None,
     "INPUT_DATA_QUALITY"),
    ("pandera.errors.SchemaError: column 'amount' has 3 null values", None, "INPUT_DATA_QUALITY"),
    ("ValueError: time data '03-14-19' does not match format '%m/%d/%y'", "ValueError", "INPUT_DATA_QUALITY"),
    ("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url", None, "THIRD_PARTY_SYSTEM"),
    ("httpx.HTTPStatusError: Server error '503 Service Unavailable' for url", None, "THIRD_PARTY_SYSTEM"),
    ("botocore ThrottlingException: Rate exceeded", None, "THIRD_PARTY_SYSTEM"),
    ("ModuleNotFoundError: No module named 'openpyxl'", "ModuleNotFoundError", "WORKFLOW_ENGINE"),
    ("Pod prefect-job failed. Reason: OOMKilled Exit Code: 137", None, "WORKFLOW_ENGINE"),
    ("AttributeError: 'NoneType' object has no attribute 'get'", "AttributeError", "WORKFLOW_ENGINE"),
    ("something nobody labelled", None, "UNKNOWN"),
]


def test_training_is_deterministic_and_round_trips() -> None:
    """The same examples give the same model, and a stored model answers as the trained one."""
    a = train(SMALL, folds=1, min_df=1)
    b = train(SMALL, folds=1, min_df=1)
    assert a.to_dict() == b.to_dict() and a.version == b.version
    back = TextModel.from_dict(json.loads(json.dumps(a.to_dict())))
    text = "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://api.x.io"
    assert back.predict(text) == a.predict(text)
    assert a.predict(text).category == "THIRD_PARTY_SYSTEM"
    assert a.trained_on == 9  # UNKNOWN is not learned


def test_unknown_only_when_nothing_is_known() -> None:
    model = train(SMALL, folds=1, min_df=1)
    assert model.predict("").category == UNKNOWN and model.predict("").confidence == 0.0
    guess = model.predict("zzz qqq")
    assert guess.category == UNKNOWN or guess.low_confidence


def test_prefect_boilerplate_and_frames_are_not_read() -> None:
    part = telling_part("Task run failed with exception: KeyError('x') - Retries are exhausted\n"
                        "Traceback (most recent call last):\n  File \"/opt/flow.py\", line 3, in load\nKeyError: 'x'")
    assert "Task run failed" not in part and "File" not in part and "KeyError: 'x'" in part


def test_rules_are_features() -> None:
    rule = Rule("zz", Category.INPUT_DATA_QUALITY, 0.9, pattern=r"frobnicated")
    assert set(features("it frobnicated", rules=(rule,))) - set(features("it frobnicated", rules=()))


def test_the_shipped_model_is_the_shipped_corpus_trained() -> None:
    """Neither the corpus, the features nor the model can drift alone: retrain with
    `python bench/classification.py --train` after changing one of them."""
    shipped = load_shipped_model()
    assert shipped.trained_on == sum(1 for *_, label in shipped_corpus() if label != "UNKNOWN")
    retrained = train(shipped_corpus())
    assert gzip.decompress(dump_model(retrained)) == gzip.decompress(dump_model(shipped)), \
        "analysis/data/model.json.gz is stale: run `python bench/classification.py --train`"


def test_one_classification_with_a_calibrated_confidence_and_its_cause() -> None:
    verdict = categorize("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: "
                         "https://api.mixpanel.com/api/2.0/export", "requests.exceptions.HTTPError")
    assert verdict.category == "THIRD_PARTY_SYSTEM" and verdict.cause is not None
    assert verdict.cause.name == "rate-limited" and verdict.classified_by == f"model:{default_model().version}"
    assert 0.0 < verdict.confidence <= 1.0
    nothing = categorize("The run failed without an error message")
    assert nothing.category == UNKNOWN and nothing.low_confidence


def test_team_rules_answer_first() -> None:
    rule = Rule("vault", "SECURITY", 0.95, pattern=r"vault.*denied")
    verdict = Categorizer((rule,))("Vault: permission denied for path secret/etl")
    assert (verdict.category, verdict.classified_by) == ("SECURITY", "rule:vault")
