"""The metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics import retrieval_metrics


def test_perfect_and_empty_runs() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    perfect = retrieval_metrics(qrels, {"q1": {"d1": 2.0, "x": 1.0}, "q2": {"d2": 2.0}})
    assert perfect == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    # A query the run does not answer counts as zero.
    half = retrieval_metrics(qrels, {"q1": {"d1": 1.0}})
    assert half == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_graded_ranking_by_hand() -> None:
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": {"x": 5.0, "a": 4.0, "y": 3.0, "b": 2.0}}  # relevant at ranks 2 and 4
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    metrics = retrieval_metrics(qrels, run)
    assert metrics["ndcg@10"] == pytest.approx(dcg / ideal, abs=1e-5)
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["recall@100"] == 1.0


def test_mrr_is_cut_at_ten() -> None:
    run = {"q": {f"x{i}": 100.0 - i for i in range(10)} | {"a": 1.0}}  # relevant at rank 11
    assert retrieval_metrics({"q": {"a": 1}}, run)["mrr@10"] == 0.0
