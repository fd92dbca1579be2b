"""BM25 keyword index (bm25s) over chunk texts, kept beside the faiss index.

bm25s has no incremental update, so the index is rebuilt from SQL after an
indexing run that changed anything (about a second per ten thousand chunks)
and saved atomically: each build goes to a fresh folder, and a pointer file,
replaced with ``os.replace``, names the current one. The chunk ids it holds
are compared with SQL by ``CollectionStore.check`` like the vectors.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

from rag.telemetry import timed_stage

logger = logging.getLogger(__name__)

POINTER_FILE = "keyword.current"
IDS_FILE = "chunk_ids.npy"


@dataclass(frozen=True)
class IdPositions:
    """Where each chunk id sits in the BM25 matrix, found by binary search: a filter's mask
    costs O(allowed log n), with no dict of every id (about 100 MB at a million chunks)."""

    sorted_ids: npt.NDArray[np.int64]
    order: npt.NDArray[np.int64] | None  # matrix row of each sorted id; None: ids are in order

    @classmethod
    def of(cls, ids: npt.NDArray[np.int64]) -> IdPositions:
        if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
            return cls(ids, None)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], order)

    def mask(self, allowed: set[int]) -> npt.NDArray[np.float32]:
        """1.0 at the row of every allowed id that is in the index, else 0.0."""
        mask = np.zeros(len(self.sorted_ids), dtype=np.float32)
        if not allowed or not len(self.sorted_ids):
            return mask
        wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
        at = np.minimum(np.searchsorted(self.sorted_ids, wanted), len(self.sorted_ids) - 1)
        at = at[self.sorted_ids[at] == wanted]
        mask[at if self.order is None else self.order[at]] = 1.0
        return mask


class BM25KeywordIndex:
    def __init__(self, directory: Path, language: str = "english") -> None:
        self.directory = directory
        self.language = language
        self._stemmer = Stemmer.Stemmer(language)
        self._lock = threading.RLock()
        self._model: bm25s.BM25 | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._positions = IdPositions.of(self._ids)
        self._loaded_folder: str | None = None

    @classmethod
    def open(cls, directory: Path) -> BM25KeywordIndex:
        index = cls(directory)
        index.reload()
        return index

    @property
    def size(self) -> int:
        return len(self._ids)

    def ids(self) -> set[int]:
        return set(self._ids.tolist())

    def _tokenize(self, texts: list[str], as_ids: bool) -> object:
        return bm25s.tokenize(
            texts, stopwords=self.language[:2], stemmer=self._stemmer,
            return_ids=as_ids, show_progress=False,
        )  # fmt: skip

    def build(self, chunks: Iterable[tuple[int, str]]) -> None:
        pairs = list(chunks)
        model = None
        if pairs:
            tokens = self._tokenize([text for _, text in pairs], as_ids=True)
            if tokens.vocab:  # type: ignore[attr-defined]  # chunks of stopwords alone have none
                model = bm25s.BM25()
                model.index(tokens, show_progress=False)
        ids = np.asarray([chunk_id for chunk_id, _ in pairs], dtype=np.int64)
        positions = IdPositions.of(ids)
        with self._lock:
            self._model, self._ids, self._positions = model, ids, positions

    @timed_stage("keyword_search")
    def search(
        self, query: str, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        with self._lock:
            model, ids, positions = self._model, self._ids, self._positions
        if model is None or not len(ids):
            return []
        tokens = self._tokenize([query], as_ids=False)
        if not any(tokens):  # type: ignore[arg-type]
            return []
        mask = None
        if allowed is not None:
            mask = positions.mask(allowed)
            if not mask.any():
                return []
        k = min(k, len(ids) if mask is None else int(mask.sum()))
        found, scores = model.retrieve(
            tokens, k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        return [(int(ids[i]), float(s)) for i, s in zip(found[0], scores[0]) if s > 0]

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        folder = f"keyword-{uuid.uuid4().hex[:12]}"
        with self._lock:
            model, ids = self._model, self._ids
        (self.directory / folder).mkdir()
        if model is not None:
            model.save(str(self.directory / folder), show_progress=False)
        np.save(self.directory / folder / IDS_FILE, ids)
        previous = self._current_folder()
        _atomic_write_text(self.directory / POINTER_FILE, folder)
        self._loaded_folder = folder
        # The previous build stays: a reader may have read the old pointer a moment ago.
        self._remove_stale(keep={folder, previous})

    def _current_folder(self) -> str | None:
        pointer = self.directory / POINTER_FILE
        return pointer.read_text().strip() if pointer.exists() else None

    def reload(self) -> bool:
        """Load the current saved build if it is not the one in memory."""
        folder = self._current_folder()
        if folder is None or folder == self._loaded_folder:
            return False
        path = self.directory / folder
        ids = np.load(path / IDS_FILE)
        model = bm25s.BM25.load(str(path), show_progress=False) if len(ids) else None
        positions = IdPositions.of(ids)
        with self._lock:
            self._model, self._ids, self._positions = model, ids, positions
            self._loaded_folder = folder
        return True

    def _remove_stale(self, keep: set[str | None]) -> None:
        for stale in self.directory.glob("keyword-*"):
            if stale.name not in keep:
                shutil.rmtree(stale, ignore_errors=True)


def _atomic_write_text(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
