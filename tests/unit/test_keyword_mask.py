"""A filter's BM25 mask: the rows of the allowed ids, found by binary search."""

from __future__ import annotations

import numpy as np

from rag.indexes.keyword import IdPositions


def expected(ids: np.ndarray, allowed: set[int]) -> np.ndarray:
    return np.array([1.0 if int(i) in allowed else 0.0 for i in ids], dtype=np.float32)


def test_mask_marks_the_rows_of_allowed_ids_in_order_or_not() -> None:
    rng = np.random.default_rng(0)
    in_order = np.sort(rng.choice(10_000, 500, replace=False)).astype(np.int64)
    shuffled = rng.permutation(in_order)
    allowed = {int(i) for i in rng.choice(in_order, 120, replace=False)} | {
        -5,
        10_001,
        20_000,
    }  # some not indexed
    for ids in (in_order, shuffled):
        positions = IdPositions.of(ids)
        assert (positions.order is None) == (ids is in_order)
        np.testing.assert_array_equal(positions.mask(allowed), expected(ids, allowed))


def test_empty_cases() -> None:
    empty = IdPositions.of(np.zeros(0, dtype=np.int64))
    assert empty.mask({1, 2}).shape == (0,)
    one = IdPositions.of(np.array([7], dtype=np.int64))
    np.testing.assert_array_equal(one.mask(set()), [0.0])
    np.testing.assert_array_equal(one.mask({7}), [1.0])
    np.testing.assert_array_equal(one.mask({8}), [0.0])
