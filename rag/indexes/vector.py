"""faiss vector index keyed by chunk id, saved as a folder with a manifest.

The folder holds ``vectors.faiss`` and ``manifest.json`` (embedder, dimension,
chunking, format version). Both are written to temporary files and moved into
place with ``os.replace``, so a reader never sees a half-written index. An
index built with another embedder or chunking is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import faiss
import numpy as np
import numpy.typing as npt

from rag.errors import IndexMismatchError
from rag.indexes.shortlist import QuantizedShortlist
from rag.telemetry import timed_stage

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_FILE = "vectors.faiss"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class IndexManifest:
    embedder: str
    dimension: int
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    metric: str = "inner_product"
    format_version: int = FORMAT_VERSION

    def check_compatible(self, stored: IndexManifest, where: Path | str) -> None:
        if stored == self:
            return
        differences = {
            key: (value, getattr(self, key))
            for key, value in asdict(stored).items()
            if getattr(self, key) != value
        }
        described = ", ".join(
            f"{k}: index has {a!r}, settings say {b!r}" for k, (a, b) in differences.items()
        )
        raise IndexMismatchError(
            f"the index in {where} was built differently ({described}); "
            "re-index into a new data dir or restore the original settings"
        )


@dataclass(frozen=True)
class IndexLayout:
    """Exact search up to ``exact_max_vectors``; an inverted file (IVF) of full vectors beyond,
    and from ``compressed_min_vectors`` on an IVF whose lists hold 8-bit scalar-quantized
    residuals (384 bytes a 384-d vector instead of 1,536). Recall@10 against exact search:
    benchmarks/vector_scale_benchmark.py (IVF) and benchmarks/compressed_layout_benchmark.py.
    Exact search over ``shortlist_min_vectors`` or more first shortlists ``shortlist_factor × k``
    candidates with an 8-bit copy of the vectors (rag/indexes/shortlist.py); 0 never does."""

    exact_max_vectors: int = 200_000
    nprobe: int = 32
    use_gpu: bool = True  # when faiss's GPU build and a GPU are present
    compressed_min_vectors: int = 1_000_000
    shortlist_min_vectors: int = 50_000
    shortlist_factor: int = 4
    search_threads: int = 1  # faiss's OpenMP threads for one question's search


@contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """faiss's OpenMP threads for the work this thread starts. OpenMP keeps the setting per
    thread, so an indexing thread keeps its own; the previous value comes back after."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def ivf_lists(vectors: int) -> int:
    return int(min(max(4 * math.sqrt(vectors), 64), 65_536))


TRAINING_PER_LIST = 64  # training sample: this many vectors per list (faiss wants 39 or more)
_BLOCK = 65_536  # vectors moved at a time when the layout changes


def compressed_index(dimension: int, lists: int) -> faiss.IndexIVFScalarQuantizer:
    """IVF over inner product whose lists keep each vector's residual from its list centre,
    8 bits a dimension (faiss's SQ8; ids are kept by the inverted lists, 8 bytes each)."""
    return faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension),
        dimension,
        lists,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )


class FaissVectorIndex:
    """Inner-product search over normalised vectors, keyed by chunk id; thread-safe."""

    def __init__(
        self, directory: Path, manifest: IndexManifest, layout: IndexLayout | None = None
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.layout = layout or IndexLayout()
        self._lock = threading.RLock()
        self._index: faiss.Index = self._new_index()
        self._gpu_index: faiss.Index | None = None
        self._shortlist: QuantizedShortlist | None = None

    def _new_index(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.dimension))

    @property
    def kind(self) -> str:
        """``exact``, ``ivf`` (full vectors in lists) or ``ivf_sq8`` (compressed lists)."""
        ivf = self._ivf()
        if ivf is None:
            return "exact"
        return "ivf_sq8" if isinstance(ivf, faiss.IndexIVFScalarQuantizer) else "ivf"

    @property
    def shortlisting(self) -> bool:
        """Whether unfiltered searches go through the 8-bit shortlist (built by the first one
        past ``shortlist_min_vectors``, dropped when the layout changes)."""
        return self._shortlist is not None

    def _ivf(self) -> faiss.IndexIVF | None:
        try:
            # downcast: the SQ8 layout is told apart by its class
            return cast(faiss.IndexIVF, faiss.downcast_index(faiss.extract_index_ivf(self._index)))
        except RuntimeError:
            return None

    @classmethod
    def open(
        cls, directory: Path, manifest: IndexManifest, layout: IndexLayout | None = None
    ) -> FaissVectorIndex:
        """Load the index in ``directory``, or start an empty one if there is none."""
        index = cls(directory, manifest, layout)
        manifest_path = directory / MANIFEST_FILE
        if manifest_path.exists():
            stored = IndexManifest(**json.loads(manifest_path.read_text()))
            manifest.check_compatible(stored, directory)
            index._index = faiss.read_index(str(directory / INDEX_FILE))
            logger.info("loaded %d vectors from %s", index.size, directory)
        return index

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> set[int]:
        with self._lock:
            ivf = self._ivf()
            if ivf is None:
                return set(faiss.vector_to_array(self._index.id_map).tolist())  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            found: set[int] = set()
            for list_no in range(ivf.nlist):
                size = ivf.invlists.list_size(list_no)  # type: ignore[union-attr]  # faiss's SWIG stubs: invlists is set on an IVF index
                if size:
                    found.update(faiss.rev_swig_ptr(ivf.invlists.get_ids(list_no), size).tolist())  # type: ignore[union-attr]  # faiss's SWIG stubs: invlists is set on an IVF index
            return found

    def fit_layout(self) -> bool:
        """Move from exact search to IVF once the index outgrows the exact limit, and from
        either to the compressed IVF once it holds ``compressed_min_vectors``."""
        with self._lock:
            if self.kind != "ivf_sq8" and self.size >= self.layout.compressed_min_vectors:
                self._compress()
                return True
            if self.kind != "exact" or self.size <= self.layout.exact_max_vectors:
                return False
            flat = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            vectors = flat.reconstruct_n(0, self.size)
            ids = faiss.vector_to_array(self._index.id_map)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            lists = ivf_lists(len(ids))
            logger.info("%d vectors: building an IVF index with %d lists", len(ids), lists)
            dimension = self.manifest.dimension
            ivf = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT
            )
            sample = np.random.default_rng(0).choice(
                len(ids), size=min(len(ids), lists * 64), replace=False
            )
            ivf.train(vectors[sample])
            ivf.add_with_ids(vectors, ids)
            self._index = ivf
            self._gpu_index = None
            self._shortlist = None
            return True

    def _compress(self) -> None:
        """Rebuild as the compressed IVF with 4·√N fresh lists, trained on a sample, the
        vectors moved a block at a time (never a second full float32 copy)."""
        size, dimension = self.size, self.manifest.dimension
        lists = ivf_lists(size)
        logger.info("%d vectors: building a compressed (IVF-SQ8) index with %d lists", size, lists)
        wanted = np.sort(
            np.random.default_rng(0).choice(
                size, size=min(size, lists * TRAINING_PER_LIST), replace=False
            )
        )
        sample, start = [], 0
        for _, vectors in self._stored_blocks():
            end = start + len(vectors)
            chosen = wanted[(wanted >= start) & (wanted < end)] - start
            sample.append(vectors[chosen])
            start = end
        compressed = compressed_index(dimension, lists)
        compressed.train(np.concatenate(sample))
        del sample
        for ids, vectors in self._stored_blocks():
            compressed.add_with_ids(vectors, ids)
        self._index = compressed
        self._gpu_index = None
        self._shortlist = None

    def _stored_blocks(self) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """The stored ids and full vectors, about ``_BLOCK`` at a time (exact or IVF-flat)."""
        dimension = self.manifest.dimension
        ivf = self._ivf()
        if ivf is None:
            flat = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            all_ids = faiss.vector_to_array(self._index.id_map)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            for start in range(0, self.size, _BLOCK):
                count = min(_BLOCK, self.size - start)
                yield all_ids[start : start + count], flat.reconstruct_n(start, count)
            return
        invlists = ivf.invlists
        ids: list[npt.NDArray[np.int64]] = []
        vectors: list[npt.NDArray[np.float32]] = []
        held = 0
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)  # type: ignore[union-attr]  # faiss's SWIG stubs: invlists is set on an IVF index
            if not size:
                continue
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * ivf.code_size)  # type: ignore[union-attr]  # faiss's SWIG stubs: invlists is set on an IVF index
            vectors.append(codes.view(np.float32).reshape(size, dimension).copy())
            ids.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())  # type: ignore[union-attr]  # faiss's SWIG stubs: invlists is set on an IVF index
            held += size
            if held >= _BLOCK:
                yield np.concatenate(ids), np.concatenate(vectors)
                ids, vectors, held = [], [], 0
        if held:
            yield np.concatenate(ids), np.concatenate(vectors)

    def add(self, ids: list[int], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not ids:
            return
        with self._lock:
            id_array = np.asarray(ids, dtype=np.int64)
            self._index.add_with_ids(vectors, id_array)
            self._gpu_index = None
            if self._shortlist is not None:
                self._shortlist.add(id_array, vectors)

    def remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        id_array = np.asarray(ids, dtype=np.int64)
        with self._lock:
            self._gpu_index = None
            if self._shortlist is not None:
                self._shortlist.remove(id_array)
            return int(self._index.remove_ids(id_array))  # type: ignore[arg-type]  # faiss's SWIG stubs: remove_ids takes an id array too

    @timed_stage("dense_search")
    def search(
        self, query: npt.NDArray[np.float32], k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k nearest chunk ids; with ``allowed``, the k nearest among those ids
        (filtered inside faiss, so k matching chunks come back when k exist)."""
        selector = None
        if allowed is not None:
            if not allowed:
                return []
            selector = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
        # One thread by default: split over OpenMP threads, a single question's scan waits for
        # the slowest, and with the other core busy (vLLM's worker) for a descheduled one
        # (README, Answer overhead: 100k vectors, 12 ms on one thread, 44 ms on two then).
        with self._lock, faiss_threads(self.layout.search_threads):
            if self.size == 0:
                return []
            exact = self.kind == "exact"
            index = self._index if selector else self._search_index()
            if exact and selector is None and index is self._index:  # not on a GPU copy
                shortlist = self._current_shortlist()
                if shortlist is not None:
                    return self._rank_shortlisted(shortlist, query, k)
            if not exact:
                params = faiss.SearchParametersIVF(nprobe=self.layout.nprobe, sel=selector)  # type: ignore[call-arg]  # faiss's SWIG stubs: parameters are keyword-constructible
            else:
                params = faiss.SearchParameters(sel=selector) if selector else None  # type: ignore[call-arg, assignment]  # faiss's SWIG stubs: parameters are keyword-constructible
            scores, ids = index.search(query.reshape(1, -1), min(k, self.size), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def _current_shortlist(self) -> QuantizedShortlist | None:
        """The 8-bit shortlist of the exact layout once the index is large enough (built on first
        use, again when the index has doubled since, so each dimension's range stays current)."""
        minimum = self.layout.shortlist_min_vectors
        if not minimum or self.size < minimum:
            self._shortlist = None
            return None
        if self._shortlist is None or self.size > 2 * self._shortlist.trained_on:
            flat = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
            stored = faiss.rev_swig_ptr(flat.get_xb(), self.size * self.manifest.dimension)  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexFlat.get_xb
            self._shortlist = QuantizedShortlist(
                faiss.vector_to_array(self._index.id_map),  # type: ignore[attr-defined]  # faiss's SWIG stubs: IndexIDMap's fields
                stored.reshape(self.size, self.manifest.dimension),
                self.layout.shortlist_factor,
            )
            logger.info("%d vectors: built an 8-bit shortlist for exact search", self.size)
        return self._shortlist

    def _rank_shortlisted(
        self, shortlist: QuantizedShortlist, query: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        """The shortlist's candidates ranked by their full vectors: exact search's k nearest."""
        candidates = shortlist.candidates(query, k)
        if not len(candidates):
            return []
        full = self._index.reconstruct_batch(candidates)
        scores = full @ query.reshape(-1)
        best = np.lexsort((candidates, -scores))[:k]  # equal scores: the older chunk first
        return [(int(candidates[i]), float(scores[i])) for i in best]

    def _search_index(self) -> faiss.Index:
        """A GPU copy for unfiltered search when faiss's GPU build sees a GPU (selectors stay on CPU)."""
        if (
            not self.layout.use_gpu
            or not hasattr(faiss, "index_cpu_to_all_gpus")
            or faiss.get_num_gpus() == 0
        ):
            return self._index
        if self._gpu_index is None:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self._index)
        return self._gpu_index

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self._index)
        _atomic_write(self.directory / INDEX_FILE, data.tobytes())
        _atomic_write(
            self.directory / MANIFEST_FILE,
            json.dumps(asdict(self.manifest), indent=2).encode(),
        )


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
