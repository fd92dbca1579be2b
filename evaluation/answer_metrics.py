"""Answer metrics: SQuAD's exact match and token F1, and per-question grounding checks."""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: list[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: list[str]) -> float:
    def f1(gold: str) -> float:
        predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(predicted), common / len(expected)
        return 2 * precision * recall / (precision + recall)

    return max((f1(g) for g in golds), default=0.0)


@dataclass(frozen=True)
class QuestionOutcome:
    answerable_gold: bool
    abstained: bool
    gold_source_retrieved: bool
    citations: int
    citations_to_gold: int
    exact: float
    f1: float


def summarize(outcomes: list[QuestionOutcome]) -> dict[str, float | int]:
    answerable = [o for o in outcomes if o.answerable_gold]
    unanswerable = [o for o in outcomes if not o.answerable_gold]
    cited = sum(o.citations for o in answerable)

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4) if values else 0.0

    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "source_recall": mean([float(o.gold_source_retrieved) for o in answerable]),
        "citation_precision": round(sum(o.citations_to_gold for o in answerable) / cited, 4)
        if cited
        else 0.0,
        "answers_with_citation": mean([float(o.citations > 0) for o in answerable]),
        "abstention_accuracy_unanswerable": mean([float(o.abstained) for o in unanswerable]),
        "false_abstention_answerable": mean([float(o.abstained) for o in answerable]),
        "exact_match": mean([o.exact for o in answerable]),
        "f1": mean([o.f1 for o in answerable]),
    }
