"""Past ``compressed_min_vectors`` the faiss index keeps 8-bit codes (IVF-SQ8): ids, filters,
removal, persistence and recall against exact search survive the move."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.indexes.vector import INDEX_FILE, FaissVectorIndex, IndexLayout, IndexManifest
from tests.synthetic_vectors import clustered_unit_vectors

DIMENSION = 32
MANIFEST = IndexManifest(
    embedder="synthetic", dimension=DIMENSION, chunk_max_tokens=254, chunk_overlap_tokens=32
)
LAYOUT = IndexLayout(exact_max_vectors=5_000, compressed_min_vectors=20_000)
# Measured recall@10 vs exact on this data: 0.957 (IVF of full vectors: 1.0); the floor leaves a margin.
RECALL_FLOOR = 0.92


def clustered(count: int, seed: int) -> np.ndarray:
    return clustered_unit_vectors(count, seed, DIMENSION, clusters=50, spread=0.3)


def top10(index: FaissVectorIndex, queries: np.ndarray) -> list[set[int]]:
    return [{i for i, _ in index.search(q, 10)} for q in queries]


def test_ivf_to_compressed_keeps_ids_filters_removal_and_recall(tmp_path: Path) -> None:
    vectors = clustered(30_000, seed=1)
    ids = list(range(1000, 31_000))
    exact = FaissVectorIndex(tmp_path / "exact", MANIFEST, IndexLayout(exact_max_vectors=10**9))
    exact.add(ids, vectors)
    index = FaissVectorIndex(tmp_path / "compressed", MANIFEST, LAYOUT)
    index.add(ids[:10_000], vectors[:10_000])
    assert index.fit_layout() and index.kind == "ivf"
    index.add(ids[10_000:], vectors[10_000:])
    assert index.fit_layout() and index.kind == "ivf_sq8"
    assert not index.fit_layout()  # stays as it is
    assert index.ids() == set(ids) and index.size == 30_000

    queries = clustered(100, seed=2)
    truth = top10(exact, queries)
    found = top10(index, queries)
    assert np.mean([len(a & b) / 10 for a, b in zip(truth, found, strict=True)]) >= RECALL_FLOOR

    allowed = set(range(1000, 31_000, 61))
    hits = index.search(queries[0], 10, allowed)
    assert len(hits) == 10 and {i for i, _ in hits} <= allowed

    removed = [i for i, _ in index.search(queries[1], 2)]
    assert index.remove(removed) == 2
    assert not set(removed) & index.ids() and index.size == 29_998
    assert not set(removed) & {i for i, _ in index.search(queries[1], 10)}

    index.add([50_000], vectors[:1])  # added after the move: encoded into the trained lists
    assert index.search(vectors[0], 1)[0][0] in {1000, 50_000}

    index.save()
    exact.save()
    compressed_bytes = (tmp_path / "compressed" / INDEX_FILE).stat().st_size
    exact_bytes = (tmp_path / "exact" / INDEX_FILE).stat().st_size
    # 32 bytes of codes + 8 of id a vector against 128 + 8 (plus the list centres)
    assert compressed_bytes < 0.4 * exact_bytes

    reopened = FaissVectorIndex.open(tmp_path / "compressed", MANIFEST, LAYOUT)
    assert reopened.kind == "ivf_sq8" and reopened.ids() == index.ids()
    assert top10(reopened, queries) == top10(index, queries)
    assert {i for i, _ in reopened.search(queries[0], 10, allowed)} <= allowed


def test_exact_moves_straight_to_compressed(tmp_path: Path) -> None:
    vectors = clustered(25_000, seed=3)
    index = FaissVectorIndex(tmp_path, MANIFEST, LAYOUT)
    index.add(list(range(1, 25_001)), vectors)
    assert index.kind == "exact" and index.fit_layout() and index.kind == "ivf_sq8"
    assert index.ids() == set(range(1, 25_001))
    assert index.search(vectors[7], 1)[0][0] == 8


def test_below_the_thresholds_nothing_changes(tmp_path: Path) -> None:
    index = FaissVectorIndex(tmp_path, MANIFEST, LAYOUT)
    index.add(list(range(1, 5_001)), clustered(5_000, seed=4))
    assert not index.fit_layout() and index.kind == "exact"
