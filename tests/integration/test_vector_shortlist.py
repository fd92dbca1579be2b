"""Exact search through the 8-bit shortlist returns what a full scan returns: the same ids in
the same order, the same scores, after additions and removals, and after a reload."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.indexes.shortlist import QuantizedShortlist
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest, faiss_threads
from tests.synthetic_vectors import clustered_unit_vectors

DIMENSION = 64
MANIFEST = IndexManifest(
    embedder="synthetic", dimension=DIMENSION, chunk_max_tokens=254, chunk_overlap_tokens=32
)
SHORTLISTED = IndexLayout(shortlist_min_vectors=2_000, use_gpu=False)
FULL_SCAN = IndexLayout(shortlist_min_vectors=0, use_gpu=False)
TIE = 1e-6  # float32 inner products of unit vectors summed in another order differ by ~1e-7


def clustered(count: int, seed: int) -> np.ndarray:
    """Unit vectors in 40 tight clusters: many near ties, the hard case for a shortlist."""
    return clustered_unit_vectors(count, seed, DIMENSION, clusters=40, spread=0.35)


def assert_same_results(
    shortlisted: FaissVectorIndex, full: FaissVectorIndex, queries: np.ndarray, k: int
) -> None:
    """The same scores rank by rank, and the same chunks, except that chunks whose scores differ
    by less than float32 rounding (two summation orders) may trade places."""
    for query in queries:
        got, want = shortlisted.search(query, k), full.search(query, k)
        assert len(got) == len(want) == k
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=TIE)
        tied_at_the_end = {i for i, s in want + got if s - want[-1][1] < TIE}
        assert {i for i, _ in got} - tied_at_the_end == {i for i, _ in want} - tied_at_the_end
        for (got_id, got_score), (want_id, _) in zip(got, want, strict=True):
            if got_id != want_id:  # only a near tie may swap: their scores agree to rounding
                assert abs(full_score(full, query, got_id) - got_score) < TIE
    assert shortlisted.shortlisting and not full.shortlisting


def full_score(index: FaissVectorIndex, query: np.ndarray, chunk_id: int) -> float:
    return float(dict(index.search(query, index.size))[chunk_id])


@pytest.fixture
def pair(tmp_path: Path) -> tuple[FaissVectorIndex, FaissVectorIndex]:
    vectors, ids = clustered(6_000, seed=1), list(range(500, 6_500))
    shortlisted = FaissVectorIndex(tmp_path / "shortlisted", MANIFEST, SHORTLISTED)
    full = FaissVectorIndex(tmp_path / "full", MANIFEST, FULL_SCAN)
    for index in (shortlisted, full):
        index.add(ids, vectors)
    return shortlisted, full


@pytest.mark.parametrize("k", [1, 10, 50])
def test_shortlist_returns_exact_search_results(
    pair: tuple[FaissVectorIndex, FaissVectorIndex], k: int
) -> None:
    assert_same_results(*pair, clustered(100, seed=2), k)


def test_shortlist_follows_additions_and_removals(
    pair: tuple[FaissVectorIndex, FaissVectorIndex],
) -> None:
    shortlisted, full = pair
    queries = clustered(60, seed=3)
    shortlisted.search(queries[0], 10)  # built before the changes, so it must follow them
    removed = list(range(500, 2_500))
    added, added_ids = clustered(1_500, seed=4), list(range(10_000, 11_500))
    for index in (shortlisted, full):
        assert index.remove(removed) == len(removed)
        index.add(added_ids, added)
    assert_same_results(shortlisted, full, queries, 20)
    found = {i for query in queries for i, _ in shortlisted.search(query, 50)}
    assert not found & set(removed) and found & set(added_ids)


def test_shortlist_grows_and_is_rebuilt_after_a_reload(
    pair: tuple[FaissVectorIndex, FaissVectorIndex], tmp_path: Path
) -> None:
    shortlisted, full = pair
    queries = clustered(40, seed=5)
    shortlisted.search(queries[0], 10)
    more, more_ids = (
        clustered(8_000, seed=6),
        list(range(20_000, 28_000)),
    )  # past twice its training
    for index in (shortlisted, full):
        index.add(more_ids, more)
    assert_same_results(shortlisted, full, queries, 10)
    shortlisted.save()
    reopened = FaissVectorIndex.open(tmp_path / "shortlisted", MANIFEST, SHORTLISTED)
    assert not reopened.shortlisting  # built on first use, from the full vectors
    assert_same_results(reopened, full, queries, 10)


def test_equal_scores_rank_the_older_chunk_first(tmp_path: Path) -> None:
    vectors = clustered(3_000, seed=10)
    duplicated = np.vstack([vectors, np.repeat(vectors[:1], 4, axis=0)])
    index = FaissVectorIndex(tmp_path / "duplicates", MANIFEST, SHORTLISTED)
    index.add([9_000, *range(10, 3_009), 7_000, 8_000, 5, 6_000], duplicated)
    found = index.search(vectors[0], 5)
    assert [i for i, _ in found] == [5, 6_000, 7_000, 8_000, 9_000]
    assert index.shortlisting


def test_filtered_and_small_searches_scan_the_full_vectors(
    pair: tuple[FaissVectorIndex, FaissVectorIndex], tmp_path: Path
) -> None:
    shortlisted, full = pair
    query = clustered(1, seed=7)[0]
    allowed = set(range(500, 6_500, 7))
    got = shortlisted.search(query, 10, allowed)
    assert got == full.search(query, 10, allowed) and {i for i, _ in got} <= allowed
    small = FaissVectorIndex(tmp_path / "small", MANIFEST, SHORTLISTED)
    small.add(list(range(1_000)), clustered(1_000, seed=8))
    small.search(query, 10)
    assert not small.shortlisting  # under shortlist_min_vectors: a full scan


def test_a_search_runs_on_the_layouts_threads_and_leaves_the_callers_setting(
    pair: tuple[FaissVectorIndex, FaissVectorIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One question's search on ``search_threads`` OpenMP threads (one by default: README,
    Answer overhead); the thread that asked keeps its own setting for what it does next."""
    shortlisted, _ = pair
    seen: list[int] = []
    candidates = QuantizedShortlist.candidates

    def recording(self: QuantizedShortlist, query: np.ndarray, k: int) -> np.ndarray:
        seen.append(faiss.omp_get_max_threads())
        return candidates(self, query, k)

    monkeypatch.setattr(QuantizedShortlist, "candidates", recording)
    before = faiss.omp_get_max_threads()
    with faiss_threads(3):
        shortlisted.search(clustered(1, seed=11)[0], 10)
        assert faiss.omp_get_max_threads() == 3
    assert seen and set(seen) == {1} and faiss.omp_get_max_threads() == before
