"""Unit vectors in clusters, for faiss layout tests: many near neighbours, like text embeddings."""

from __future__ import annotations

import numpy as np


def clustered_unit_vectors(
    count: int, seed: int, dimension: int, clusters: int, spread: float
) -> np.ndarray:
    """``count`` float32 unit vectors around ``clusters`` fixed centres (the same for every
    ``seed``), each centre plus Gaussian noise of ``spread``, then normalised."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(clusters, dimension))
    vectors = centres[rng.integers(0, clusters, count)] + spread * rng.normal(
        size=(count, dimension)
    )
    unit: np.ndarray = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return unit
