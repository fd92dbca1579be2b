"""Fusion of a dense and a keyword ranking into one (hybrid retrieval).

Every method is a weighted sum over the chunks of either list; a chunk missing from a list
contributes nothing from it. Which method and weights are the default was measured
(``benchmarks/fusion_study.py``, README "Retrieval quality").
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from rag.config import FusionSettings

Hits = list[tuple[int, float]]


def _normalised(hits: Hits, method: str) -> Hits:
    if not hits:
        return hits
    scores = np.fromiter((score for _, score in hits), dtype=np.float64, count=len(hits))
    if method == "minmax":
        low, span = scores.min(), scores.max() - scores.min()
        scores = (scores - low) / span if span > 0 else np.ones_like(scores)
    elif method == "max":
        top = scores.max()
        scores = scores / top if top > 0 else np.ones_like(scores)
    elif method == "zscore":
        spread = scores.std()
        scores = (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)
    else:
        raise ValueError(f"unknown score normalisation {method!r}")
    return [(chunk_id, float(score)) for (chunk_id, _), score in zip(hits, scores)]


def reciprocal_rank_fusion(rankings: list[tuple[Hits, float]], k: int) -> Hits:
    """Sum of weight / (k + rank) over the rankings a chunk appears in."""
    fused: dict[int, float] = defaultdict(float)
    for hits, weight in rankings:
        for rank, (chunk_id, _) in enumerate(hits, start=1):
            fused[chunk_id] += weight / (k + rank)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def weighted_score_fusion(rankings: list[tuple[Hits, float]], method: str) -> Hits:
    """Sum of weight × normalised score; a chunk absent from a list gets that list's floor
    (0 for minmax and max, the lowest z-score listed for zscore)."""
    normalised = [(dict(_normalised(hits, method)), weight) for hits, weight in rankings]
    chunk_ids = {chunk_id for scores, _ in normalised for chunk_id in scores}
    fused = dict.fromkeys(chunk_ids, 0.0)
    for scores, weight in normalised:
        floor = min(scores.values(), default=0.0) if method == "zscore" else 0.0
        for chunk_id in chunk_ids:
            fused[chunk_id] += weight * scores.get(chunk_id, floor)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def fuse(dense: Hits, keyword: Hits, settings: FusionSettings) -> Hits:
    rankings = [(dense, settings.dense_weight), (keyword, settings.keyword_weight)]
    if settings.method == "rrf":
        return reciprocal_rank_fusion(rankings, settings.rrf_k)
    return weighted_score_fusion(rankings, settings.method)
