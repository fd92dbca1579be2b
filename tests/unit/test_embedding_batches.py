"""Batching by padded-token budget, longest first."""

from __future__ import annotations

import numpy as np

from rag.embedding.batches import token_budget_batches


def test_every_text_once_longest_first_within_the_budget() -> None:
    lengths = np.array([5, 256, 12, 40, 256, 3, 128, 7], dtype=np.int64)
    batches = token_budget_batches(lengths, 512)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert lengths[flat].tolist() == sorted(lengths.tolist(), reverse=True)
    for batch in batches:
        assert len(batch) * lengths[batch].max() <= 512
    assert [len(b) for b in batches] == [2, 4, 2]  # 2 x 256, then 128 x 4, then the rest


def test_a_text_longer_than_the_budget_gets_a_batch_of_its_own() -> None:
    batches = token_budget_batches(np.array([300, 2, 2], dtype=np.int64), 256)
    assert [b.tolist() for b in batches] == [[0], [1, 2]]


def test_no_texts_no_batches() -> None:
    assert token_budget_batches(np.array([], dtype=np.int64), 256) == []
