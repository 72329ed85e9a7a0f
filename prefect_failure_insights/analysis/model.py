"""The learned text model: which category an error text belongs to, with a calibrated confidence.

A multinomial logistic regression over hashed binary features of the error text, in pure Python
(no numpy: the base install stays light, and ~500 short texts train in a few seconds):

* words and word pairs of the text (lower-cased, numbers and ids masked);
* character 3- to 5-grams of its words (``KeyError`` shares ``Err`` with ``ParserError``);
* the exception's short type (``exc:NotNullViolation``);
* the knowledge base's rules that match (``rule:constraint-violation``, weighing as three features,
  and their category): the rules are features, so the model learns how far each one can be trusted.

Only the text's *telling* part is read (its exception lines and the lines around error words,
at most `MAX_CHARS`): a traceback's frames say where, not why.

**Confidence** is the softmax probability of the best category, calibrated by a temperature
fitted on out-of-fold predictions (5-fold cross-validation at training time), so that answers
given with 0.8 are right about 80 % of the time on texts the model has not seen. A text none of
whose features the model knows is UNKNOWN with confidence 0.

The model is a plain value (`TextModel`): `train` builds one from labelled texts, `to_dict` /
`from_dict` store it (the shipped one in `analysis/data/model.json`, a team's retrained one in the
database with its version), and the same model gives the same answer for the same text.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect_failure_insights.analysis.rules import RULES, Rule
from prefect_failure_insights.defaults import CONFIDENT_CLASSIFICATION

#: The categories the model chooses from (UNKNOWN is not learned: it is "nothing points anywhere").
CLASSES = ("INPUT_DATA_QUALITY", "THIRD_PARTY_SYSTEM", "WORKFLOW_ENGINE")
UNKNOWN = "UNKNOWN"
#: Hashed feature space.
BUCKETS = 1 << 18
#: Classes weigh alike in training (the labelled corpus has twice as many WORKFLOW_ENGINE texts as
#: INPUT_DATA_QUALITY ones, which says more about who opens issues than about failures).
BALANCED = True
#: How many features a matching rule counts as.
RULE_WEIGHT = 3
#: Characters of the text's telling part that are read.
MAX_CHARS = 1500
#: Below this calibrated confidence an answer is flagged as low confidence (it stays the answer).
CONFIDENT = CONFIDENT_CLASSIFICATION

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_NOISE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\b\d+(?:\.\d+)?\b", re.IGNORECASE)
_FRAME = re.compile(r'^\s*(?:File "|at [\w.$]+\(|\^+\s*$|\.\.\.\s*$)')
_ERRORISH = re.compile(r"error|exception|fail|denied|refused|invalid|violat|not found|does not exist|"
                       r"timed? ?out|killed|limit|expired|unable|cannot|can't|could not|missing|"
                       r"unauthori|forbidden|\b[45]\d\d\b", re.IGNORECASE)


#: Prefect's own words around every error ("Task run failed with exception: ... - Retries are
#: exhausted"): they say nothing of the category, and the labelled texts rarely have them.
_BOILERPLATE = re.compile(r"Task run failed with exception:\s*|\s*-\s*Retr(?:y \d+/\d+ will start.*|ies are exhausted)$|"
                          r"Task run encountered an exception:?\s*|Flow run encountered an exception:?\s*|"
                          r"Encountered exception during execution:\s*|Finished in state \w+\(|"
                          r"Crash detected! Execution was interrupted by an unexpected exception:\s*", re.M)
#: Bumped when the features change: a model is only valid with the features it was trained on.
FEATURES_VERSION = "3"


def telling_part(text: str, limit: int = MAX_CHARS) -> str:
    """The lines of ``text`` that say what went wrong: no traceback frames; exception and
    error lines first (last ones first: the root exception is usually at the end), then the rest."""
    text = _BOILERPLATE.sub(" ", text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not _FRAME.match(line)]
    errorish = [line for line in reversed(lines) if _ERRORISH.search(line)]
    rest = [line for line in lines if not _ERRORISH.search(line)]
    out, size = [], 0
    for line in [*errorish, *rest]:
        if size >= limit:
            break
        out.append(line[: limit - size])
        size += len(out[-1]) + 1
    return "\n".join(out)


def _h(feature: str) -> int:
    return zlib.crc32(feature.encode()) % BUCKETS


def features(text: str, exception_type: str | None = None, rules: Sequence[Rule] = RULES) -> list[int]:
    """The hashed feature ids of one error text (a sorted set)."""
    part = telling_part(text)
    found: set[str] = set()
    words = [w.lower() for w in _WORD.findall(_NOISE.sub(" 0 ", part))]
    for i, w in enumerate(words):
        found.add("w:" + w)
        if i:
            found.add(f"b:{words[i - 1]} {w}")
    for w in set(words):
        padded = f"<{w}>"
        for n in (3, 4, 5):
            for i in range(max(1, len(padded) - n + 1)):
                found.add("c:" + padded[i:i + n])
    short = (exception_type or "").rsplit(".", 1)[-1].strip()
    if short:
        found.add("exc:" + short.lower())
    for rule in (r for r in rules if r.matches(text, exception_type)):  # by type and by text alike
        # A matching rule weighs as three features, and says its category: the knowledge base's
        # families are stronger evidence than any one word (measured: texts dev, issue 26).
        found.update(f"rule{i}:{rule.name}" for i in range(RULE_WEIGHT))
        found.add(f"rulecat:{getattr(rule.category, 'value', rule.category)}")
    return sorted({_h(f) for f in found})


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one text."""

    category: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def low_confidence(self) -> bool:
        return self.category == UNKNOWN or self.confidence < CONFIDENT


@dataclass
class TextModel:
    """Weights per hashed feature (one per class), a bias per class and the calibration temperature."""

    weights: dict[int, list[float]]
    bias: list[float]
    temperature: float = 1.0
    version: str = ""
    trained_on: int = 0
    classes: tuple[str, ...] = CLASSES

    def scores(self, feats: Sequence[int]) -> list[float] | None:
        known = [self.weights[f] for f in feats if f in self.weights]
        if not known:
            return None
        scale = 1.0 / math.sqrt(len(feats))
        return [self.bias[c] + scale * sum(w[c] for w in known) for c in range(len(self.classes))]

    def predict(self, text: str, exception_type: str | None = None) -> Prediction:
        """The best category of ``text`` and its calibrated confidence (UNKNOWN, 0.0 when the
        model knows none of its features)."""
        return self.predict_features(features(text, exception_type))

    def predict_features(self, feats: Sequence[int]) -> Prediction:
        scores = self.scores(feats)
        if scores is None:
            return Prediction(UNKNOWN, 0.0)
        probs = _softmax([s / self.temperature for s in scores])
        best = max(range(len(probs)), key=lambda c: (probs[c], -c))
        return Prediction(self.classes[best], round(probs[best], 4),
                          {c: round(p, 4) for c, p in zip(self.classes, probs)})

    def to_dict(self) -> dict:
        return {"version": self.version, "trained_on": self.trained_on, "temperature": self.temperature,
                "classes": list(self.classes), "bias": [round(b, 5) for b in self.bias],
                "weights": {str(k): [round(x, 5) for x in v] for k, v in sorted(self.weights.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> TextModel:
        return cls(weights={int(k): list(v) for k, v in data["weights"].items()}, bias=list(data["bias"]),
                   temperature=float(data["temperature"]), version=data.get("version", ""),
                   trained_on=int(data.get("trained_on", 0)), classes=tuple(data.get("classes", CLASSES)))


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


#: One labelled example: (error text, exception type or None, label).
Example = tuple[str, "str | None", str]


def _fit(rows: Sequence[tuple[list[int], int]], *, epochs: int, l2: float, rate: float, seed: int,
         min_df: int, balanced: bool = BALANCED) -> tuple[dict[int, list[float]], list[float]]:
    """Multinomial logistic regression by SGD on binary features scaled by 1/sqrt(n); with
    ``balanced``, each class weighs as much as the others whatever its number of examples."""
    k = len(CLASSES)
    counts = [sum(1 for _, y in rows if y == c) for c in range(k)]
    weight = [len(rows) / (k * n) if balanced and n else 1.0 for n in counts]
    df: dict[int, int] = {}
    for feats, _ in rows:
        for f in feats:
            df[f] = df.get(f, 0) + 1
    keep = {f for f, n in df.items() if n >= min_df}
    data = [([f for f in feats if f in keep], y) for feats, y in rows]
    weights: dict[int, list[float]] = {f: [0.0] * k for f in keep}
    bias = [0.0] * k
    order = list(range(len(data)))
    rng = random.Random(seed)
    step = 0
    for epoch in range(epochs):
        rng.shuffle(order)
        for i in order:
            feats, y = data[i]
            if not feats:
                continue
            step += 1
            lr = rate / (1.0 + 0.02 * epoch)
            scale = 1.0 / math.sqrt(len(feats))
            ws = [weights[f] for f in feats]
            scores = [bias[c] + scale * sum(w[c] for w in ws) for c in range(k)]
            probs = _softmax(scores)
            grads = [weight[y] * (probs[c] - (1.0 if c == y else 0.0)) for c in range(k)]
            shrink = 1.0 - lr * l2
            for w in ws:
                for c in range(k):
                    w[c] = w[c] * shrink - lr * grads[c] * scale
            for c in range(k):
                bias[c] -= lr * grads[c] * 0.1
    return weights, bias


def _fit_temperature(outcomes: Sequence[tuple[list[float], int]]) -> float:
    """The temperature that minimises the log loss of out-of-fold scores (grid search)."""
    if not outcomes:
        return 1.0
    best, best_loss = 1.0, float("inf")
    for t in [0.25 + 0.05 * i for i in range(76)]:
        loss = 0.0
        for scores, y in outcomes:
            probs = _softmax([s / t for s in scores])
            loss -= math.log(max(probs[y], 1e-12))
        if loss < best_loss:
            best, best_loss = t, loss
    return round(best, 3)


def train(examples: Sequence[Example], *, epochs: int = 12, l2: float = 1e-4, rate: float = 0.5, seed: int = 26,
          min_df: int = 2, folds: int = 5, version: str = "") -> TextModel:
    """A model trained on ``examples`` (UNKNOWN labels are left out: UNKNOWN is not a category
    the model guesses), its temperature fitted on ``folds``-fold out-of-fold scores.
    Deterministic: the same examples give the same model."""
    rows = [(features(text, exc), CLASSES.index(label)) for text, exc, label in examples if label in CLASSES]
    outcomes: list[tuple[list[float], int]] = []
    if folds > 1 and len(rows) >= 2 * folds:
        for fold in range(folds):
            train_rows = [r for i, r in enumerate(rows) if i % folds != fold]
            weights, bias = _fit(train_rows, epochs=epochs, l2=l2, rate=rate, seed=seed, min_df=min_df)
            probe = TextModel(weights, bias)
            for i, (feats, y) in enumerate(rows):
                if i % folds == fold:
                    scores = probe.scores(feats)
                    if scores is not None:
                        outcomes.append((scores, y))
    weights, bias = _fit(rows, epochs=epochs, l2=l2, rate=rate, seed=seed, min_df=min_df)
    # prune weights that cannot move an answer (keeps the stored model small)
    weights = {f: w for f, w in weights.items() if max(abs(x) for x in w) >= 1e-3}
    model = TextModel(weights, bias, temperature=_fit_temperature(outcomes), trained_on=len(rows))
    model.version = version or _digest(examples, f"{epochs}/{l2}/{rate}/{seed}/{min_df}/{folds}/{BALANCED}/{RULE_WEIGHT}")
    return model


def _digest(examples: Sequence[Example], settings: str = "") -> str:
    h = hashlib.sha256(f"features-{FEATURES_VERSION}|{settings}".encode())
    for text, exc, label in examples:
        h.update(f"{label}\x00{exc or ''}\x00{text}\x01".encode())
    return h.hexdigest()[:12]
