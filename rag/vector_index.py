"""faiss vector index keyed by chunk id, saved as a folder with a manifest.

The folder holds ``vectors.faiss`` and ``manifest.json`` (embedder, dimension,
chunking, format version). Both are written to temporary files and moved into
place with ``os.replace``, so a reader never sees a half-written index. An
index built with another embedder or chunking is refused.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from rag.errors import IndexMismatchError

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

    def check_compatible(self, stored: IndexManifest, where: Path) -> None:
        if stored == self:
            return
        differences = {
            key: (value, getattr(self, key))
            for key, value in asdict(stored).items()
            if getattr(self, key) != value
        }
        described = ", ".join(f"{k}: index has {a!r}, settings say {b!r}" for k, (a, b) in differences.items())
        raise IndexMismatchError(
            f"the index in {where} was built differently ({described}); "
            "re-index into a new data dir or restore the original settings"
        )


class FaissVectorIndex:
    """Exact inner-product search over normalised vectors; thread-safe."""

    def __init__(self, directory: Path, manifest: IndexManifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self._lock = threading.RLock()
        self._index = self._new_index()

    def _new_index(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.dimension))

    @classmethod
    def open(cls, directory: Path, manifest: IndexManifest) -> FaissVectorIndex:
        """Load the index in ``directory``, or start an empty one if there is none."""
        index = cls(directory, manifest)
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
            return set(faiss.vector_to_array(self._index.id_map).tolist())

    def add(self, ids: list[int], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not ids:
            return
        with self._lock:
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        with self._lock:
            return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(
        self, query: npt.NDArray[np.float32], k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k nearest chunk ids; with ``allowed``, the k nearest among those ids
        (filtered inside faiss, so k matching chunks come back when k exist)."""
        params = None
        if allowed is not None:
            if not allowed:
                return []
            selector = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        with self._lock:
            if self.size == 0:
                return []
            scores, ids = self._index.search(query.reshape(1, -1), min(k, self.size), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self._index)
        _atomic_write(self.directory / INDEX_FILE, data.tobytes())
        _atomic_write(
            self.directory / MANIFEST_FILE,
            json.dumps(asdict(self.manifest), indent=2).encode(),
        )

    def reload(self) -> None:
        """Pick up a newer index written by another process."""
        path = self.directory / INDEX_FILE
        if path.exists():
            fresh = faiss.read_index(str(path))
            with self._lock:
                self._index = fresh

    def modified_time(self) -> float | None:
        path = self.directory / INDEX_FILE
        return path.stat().st_mtime if path.exists() else None


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
