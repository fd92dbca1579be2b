"""An 8-bit copy of an exact index's vectors that shortlists candidates for it.

Scanning 100,000 float32 vectors of 384 dimensions reads 154 MB per question (about 11 ms on
one core of these machines). Their 8-bit scalar-quantized copy is a quarter of that and
scans in about 4 ms; it picks ``factor × k`` candidates and the full vectors rank them,
so the k returned are the exact search's k unless one of them falls outside the
shortlist, which quantization error that small does not do in practice (measured against
exact search: tests/integration/test_vector_shortlist.py, benchmarks/shortlist_benchmark.py).
The copy lives in memory only: it is built from the full vectors when first needed.
"""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt


class QuantizedShortlist:
    """faiss's SQ8 flat index over the same ids as the exact index it serves."""

    def __init__(
        self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], factor: int
    ) -> None:
        if factor < 1:
            raise ValueError(f"the shortlist factor must be 1 or more, got {factor}")
        self.factor = factor
        quantizer = faiss.IndexScalarQuantizer(
            vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        quantizer.train(vectors)  # each dimension's range, over every vector present now
        self.trained_on = len(vectors)
        # IndexIDMap, not IndexIDMap2: the exact index already maps ids back to vectors.
        self._index = faiss.IndexIDMap(quantizer)
        self._index.add_with_ids(vectors, ids)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        self._index.remove_ids(ids)  # type: ignore[arg-type]  # faiss's SWIG stubs: remove_ids takes an id array too

    def candidates(self, query: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
        """The ids of the ``factor × k`` nearest by the 8-bit vectors."""
        _, ids = self._index.search(query.reshape(1, -1), min(k * self.factor, self.size))
        found: npt.NDArray[np.int64] = ids[0][ids[0] != -1]
        return found
