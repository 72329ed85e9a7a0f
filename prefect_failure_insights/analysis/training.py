"""Training the text model (`analysis.model`): the shipped corpus, the shipped model, retraining
on a team's corrections.

The shipped corpus (`analysis/data/corpus.jsonl`, see `analysis/data/PROVENANCE.md`) holds ~425
labelled error texts from public issue threads; the shipped model (`analysis/data/model.json.gz`)
is trained on all of it (`python bench/classification.py --train` writes it; a test checks that
it is the model the corpus and the code give). ``failure-insights corrections import`` retrains
on the corpus plus the team's corrections and stores that model, with its version, in the
database (`store.models`): from then on the same error gets the same answer until the next import.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from importlib import resources

from typing import TYPE_CHECKING

from prefect_failure_insights.analysis.model import Example, TextModel, train
from prefect_failure_insights.models import Correction
from prefect_failure_insights.store.corrections import load_corrections
from prefect_failure_insights.store.text_models import latest_text_model, save_text_model

if TYPE_CHECKING:
    from sqlalchemy import Engine

CORPUS = "corpus.jsonl"
SHIPPED_MODEL = "model.json.gz"


def _data(name: str):
    return resources.files("prefect_failure_insights.analysis").joinpath("data", name)


def shipped_corpus() -> list[Example]:
    """The shipped labelled texts as (error text, exception type, label)."""
    rows = [json.loads(line) for line in _data(CORPUS).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["error_text"], r.get("exception_type") or None, r["label"]) for r in rows]


def load_shipped_model() -> TextModel:
    with _data(SHIPPED_MODEL).open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return TextModel.from_dict(json.load(f))


def dump_model(model: TextModel) -> bytes:
    """The gzip-compressed JSON of ``model`` (stable: the same model gives the same bytes)."""
    text = json.dumps(model.to_dict(), separators=(",", ":"), sort_keys=True)
    return gzip.compress(text.encode(), mtime=0)


def train_shipped() -> TextModel:
    """The model of the shipped corpus (what `analysis/data/model.json.gz` holds)."""
    return train(shipped_corpus())


def train_with_corrections(corrections: Sequence[Correction]) -> TextModel:
    """The shipped corpus plus the team's corrections (each weighs as three texts: the team's
    own failures are what the model must get right)."""
    own = [(c.error_text or c.signature, None, c.category) for c in corrections if (c.error_text or c.signature)]
    return train([*shipped_corpus(), *own * 3])


def stored_model(engine: Engine) -> TextModel | None:
    """The team's retrained model (the newest stored), None when it never retrained."""
    found = latest_text_model(engine)
    return TextModel.from_dict(json.loads(found[1])) if found is not None else None


def retrain(engine: Engine) -> TextModel:
    """Retrain on the shipped corpus and every stored correction, and store the model: from now
    on it answers, for the card and the batch alike."""
    corrections = load_corrections(engine)
    model = train_with_corrections(corrections)
    save_text_model(engine, version=model.version, payload=json.dumps(model.to_dict(), separators=(",", ":")),
                    trained_on=model.trained_on, corrections=len(corrections))
    return model
