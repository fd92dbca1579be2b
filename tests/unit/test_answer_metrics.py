from __future__ import annotations

import pytest

from evaluation.answer_metrics import (
    QuestionOutcome,
    exact_match,
    normalize_answer,
    summarize,
    token_f1,
)


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the Eiffel tower.", ["Eiffel Tower", "tower"]) == 1.0
    assert token_f1("Eiffel tower in Paris", ["the Eiffel Tower"]) == pytest.approx(
        2 * 0.5 * 1.0 / 1.5
    )
    assert token_f1("nothing shared", ["Eiffel"]) == 0.0


def test_summary_by_hand() -> None:
    outcomes = [
        QuestionOutcome(True, False, True, 2, 1, 1.0, 1.0),
        QuestionOutcome(True, True, False, 0, 0, 0.0, 0.0),
        QuestionOutcome(False, True, False, 0, 0, 0.0, 0.0),
        QuestionOutcome(False, False, True, 1, 0, 0.0, 0.0),
    ]
    summary = summarize(outcomes)
    assert summary["source_recall"] == 0.5 and summary["citation_precision"] == 0.5
    assert (
        summary["abstention_accuracy_unanswerable"] == 0.5
        and summary["false_abstention_answerable"] == 0.5
    )
    assert summary["exact_match"] == 0.5 and summary["answers_with_citation"] == 0.5
