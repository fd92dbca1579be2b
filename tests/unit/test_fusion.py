"""Hybrid fusion functions (rag/retrieval/fusion.py)."""

from __future__ import annotations

import pytest

from rag.config import FusionSettings
from rag.retrieval.fusion import fuse, weighted_score_fusion

DENSE = [(1, 0.80), (2, 0.78), (3, 0.40)]
KEYWORD = [(3, 20.0), (4, 12.0), (2, 2.0)]


def test_minmax_scales_each_list_to_unit_range() -> None:
    fused = dict(weighted_score_fusion([(DENSE, 1.0), (KEYWORD, 1.0)], "minmax"))
    assert fused[1] == pytest.approx(1.0)  # top of dense, absent from keyword
    assert fused[3] == pytest.approx(0.0 + 1.0)  # bottom of dense, top of keyword
    assert fused[4] == pytest.approx((12 - 2) / 18)
    assert fused[2] == pytest.approx((0.78 - 0.40) / 0.40 + 0.0)


def test_a_chunk_only_in_the_second_list_gets_the_first_lists_floor_in_zscore() -> None:
    fused = dict(weighted_score_fusion([(DENSE, 1.0), (KEYWORD, 1.0)], "zscore"))
    dense_floor = min(score for _, score in fused.items())  # sanity: all four are scored
    assert set(fused) == {1, 2, 3, 4} and dense_floor < 0
    # 4 is missing from dense: it gets dense's lowest z-score, the same as chunk 3 there.
    assert fused[4] - fused[3] == pytest.approx(
        dict(weighted_score_fusion([(KEYWORD, 1.0)], "zscore"))[4]
        - dict(weighted_score_fusion([(KEYWORD, 1.0)], "zscore"))[3]
    )


def test_weights_decide_between_the_lists() -> None:
    dense_heavy = fuse(
        DENSE, KEYWORD, FusionSettings(method="minmax", dense_weight=0.9, keyword_weight=0.1)
    )
    keyword_heavy = fuse(
        DENSE, KEYWORD, FusionSettings(method="minmax", dense_weight=0.1, keyword_weight=0.9)
    )
    assert dense_heavy[0][0] == 1 and keyword_heavy[0][0] == 3


def test_rrf_is_rank_based() -> None:
    fused = fuse(
        DENSE, KEYWORD, FusionSettings(method="rrf", dense_weight=1, keyword_weight=1, rrf_k=60)
    )
    assert [chunk_id for chunk_id, _ in fused][:2] == [3, 2]  # in both lists


def test_empty_lists_fuse_to_nothing_or_the_other_list() -> None:
    for method in ("rrf", "minmax", "max", "zscore"):
        settings = FusionSettings(method=method)  # type: ignore[arg-type]
        assert fuse([], [], settings) == []
        assert [c for c, _ in fuse(DENSE, [], settings)] == [1, 2, 3]
