"""The faiss index moves from exact search to IVF past its size limit, keeping ids and recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest

MANIFEST = IndexManifest(
    embedder="synthetic", dimension=32, chunk_max_tokens=254, chunk_overlap_tokens=32
)


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, 32))
    vectors = centres[rng.integers(0, 50, count)] + 0.3 * rng.normal(size=(count, 32))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_exact_to_ivf_keeps_ids_filters_and_recall(tmp_path: Path) -> None:
    vectors = clustered(20_000, seed=1)
    ids = list(range(1000, 21_000))
    exact = FaissVectorIndex(tmp_path / "exact", MANIFEST, IndexLayout(exact_max_vectors=10**9))
    exact.add(ids, vectors)
    ivf = FaissVectorIndex(tmp_path / "ivf", MANIFEST, IndexLayout(exact_max_vectors=5_000))
    ivf.add(ids, vectors)
    assert ivf.fit_layout() and ivf.kind == "ivf" and exact.kind == "exact"
    assert ivf.ids() == set(ids) and ivf.size == 20_000

    queries = clustered(100, seed=2)
    overlap = [
        len({i for i, _ in exact.search(q, 10)} & {i for i, _ in ivf.search(q, 10)}) / 10
        for q in queries
    ]
    assert np.mean(overlap) >= 0.95

    allowed = set(range(1000, 1500))
    hits = ivf.search(queries[0], 10, allowed)
    assert len(hits) == 10 and {i for i, _ in hits} <= allowed

    assert ivf.remove([1000, 1001]) == 2 and 1000 not in ivf.ids()
    ivf.save()
    reopened = FaissVectorIndex.open(
        tmp_path / "ivf", MANIFEST, IndexLayout(exact_max_vectors=5_000)
    )
    assert reopened.kind == "ivf" and reopened.size == 19_998
