"""A replica's own faiss and BM25 indexes of one collection: a cache that follows SQL.

SQL holds every chunk with its vector and a change log (``chunk_changes``: an id that only
grows, the chunk, added or removed). A cache remembers the last change it applied; catching
up reads the changes after it, fetches the added chunks' vectors and applies both, so any
replica, with its own data dir, converges on what SQL holds. Applying a change twice is
harmless (a chunk is removed before it is added), so the saved index and the saved position
need not be written in one step. A cache that is missing, corrupt, built by another embedder
or ahead of the database (a reset) is rebuilt from SQL; nothing here is ever the only copy.

Chunks written before SQL kept vectors (revision 0004) are embedded once, by whichever
process builds a cache first, and their vectors written back to SQL.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from rag.indexes.keyword import BM25KeywordIndex
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest
from rag.protocols import Embedder
from rag.storage import database
from rag.storage.repository import DocumentRepository, vector_bytes, vectors_from_bytes

logger = logging.getLogger(__name__)

POSITION_FILE = "follow.json"
CHANGES_PER_READ = 20_000
REBUILD_BATCH = 5_000
SAVE_INTERVAL_S = 30.0
KEYWORDS_MAX_STALE_S = 10.0


@dataclass(frozen=True)
class CachePosition:
    """What a saved cache holds: SQL's changes up to ``change_id``, ``vectors`` of them."""

    change_id: int
    vectors: int


class CollectionCache:
    """The faiss and BM25 indexes of one collection under ``directory``, caught up from SQL."""

    def __init__(
        self,
        directory: Path,
        manifest: IndexManifest,
        layout: IndexLayout,
        sessions: sessionmaker[Session],
        collection_id: int,
        embedder: Embedder,
    ) -> None:
        self.directory = directory
        self._manifest = manifest
        self._layout = layout
        self._sessions = sessions
        self._collection_id = collection_id
        self._embedder = embedder
        self._lock = threading.RLock()  # one catch-up at a time; searches never wait on it
        self.vectors = FaissVectorIndex(directory, manifest, layout)
        self.keywords = BM25KeywordIndex(directory / "keyword")
        self.change_id = 0
        self._keywords_stale_since: float | None = None
        self._last_save = time.monotonic()
        self._unsaved = False

    @classmethod
    def open(
        cls,
        directory: Path,
        manifest: IndexManifest,
        layout: IndexLayout,
        sessions: sessionmaker[Session],
        collection_id: int,
        embedder: Embedder,
    ) -> CollectionCache:
        """The saved cache caught up, or one rebuilt from SQL when it cannot be used."""
        cache = cls(directory, manifest, layout, sessions, collection_id, embedder)
        with cache._lock:
            if not cache._load():
                cache.rebuild()
            cache.catch_up(rebuild_keywords=True)
        return cache

    def _repository(self, session: Session) -> DocumentRepository:
        return DocumentRepository(session, self._collection_id)

    def _load(self) -> bool:
        position = self._saved_position()
        if position is None:
            return False
        try:
            vectors = FaissVectorIndex.open(self.directory, self._manifest, self._layout)
            keywords = BM25KeywordIndex.open(self.directory / "keyword")
        except Exception as exc:  # any unreadable file: the cache is rebuilt, never fatal
            logger.warning(
                "the index cache in %s cannot be used (%s); rebuilding it", self.directory, exc
            )
            return False
        with database.session_scope(self._sessions) as session:
            last = self._repository(session).last_change()
        if vectors.size != position.vectors or position.change_id > last:
            logger.warning(
                "the index cache in %s does not match SQL (%d vectors at change %d, SQL at %d); rebuilding it",
                self.directory, vectors.size, position.change_id, last,
            )  # fmt: skip
            return False
        self.vectors, self.keywords, self.change_id = vectors, keywords, position.change_id
        return True

    def _saved_position(self) -> CachePosition | None:
        try:
            data = json.loads((self.directory / POSITION_FILE).read_text())
            return CachePosition(int(data["change_id"]), int(data["vectors"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def rebuild(self) -> None:
        """Every chunk's vector and text from SQL, into fresh indexes."""
        started = time.perf_counter()
        with self._lock:
            vectors = FaissVectorIndex(self.directory, self._manifest, self._layout)
            texts: list[tuple[int, str]] = []
            with database.session_scope(self._sessions) as session:
                repository = self._repository(session)
                change_id = repository.last_change()  # later changes are caught up after
                batch: list[tuple[int, str, bytes | None]] = []
                for row in repository.iter_chunk_rows(REBUILD_BATCH):
                    batch.append(row)
                    texts.append((row[0], row[1]))
                    if len(batch) >= REBUILD_BATCH:
                        self._add_rows(vectors, batch)
                        batch = []
                self._add_rows(vectors, batch)
            vectors.fit_layout()
            keywords = BM25KeywordIndex(self.directory / "keyword")
            keywords.build(texts)
            self.vectors, self.keywords, self.change_id = vectors, keywords, change_id
            self._keywords_stale_since = None
            self.save()
        logger.info(
            "index cache of %s built from SQL: %d chunks in %.1f s",
            self.directory.name, vectors.size, time.perf_counter() - started,
        )  # fmt: skip

    def _add_rows(
        self, vectors: FaissVectorIndex, rows: list[tuple[int, str, bytes | None]]
    ) -> None:
        stored = {chunk_id: vector for chunk_id, _, vector in rows if vector is not None}
        missing = {chunk_id: text for chunk_id, text, vector in rows if vector is None}
        stored.update(self._embed_and_store(missing))
        ids = list(stored)
        vectors.add(ids, vectors_from_bytes([stored[i] for i in ids], self._manifest.dimension))

    def _embed_and_store(self, texts: dict[int, str]) -> dict[int, bytes]:
        """Vectors for chunks that have none in SQL (written before SQL kept them)."""
        if not texts:
            return {}
        ids = list(texts)
        embedded = self._embedder.embed([texts[i] for i in ids])
        found = {
            chunk_id: vector_bytes(vector) for chunk_id, vector in zip(ids, embedded, strict=True)
        }
        with database.session_scope(self._sessions) as session:
            self._repository(session).set_vectors(found)
        logger.info("embedded %d chunks that had no vector in SQL", len(found))
        return found

    def catch_up(self, rebuild_keywords: bool = False) -> int:
        """Apply SQL's changes after the last one applied; returns how many. The keyword index
        is rebuilt when asked, or once the writers have paused (a round with nothing new), or
        when it has been stale for ``KEYWORDS_MAX_STALE_S``."""
        applied = 0
        with self._lock:
            while True:
                with database.session_scope(self._sessions) as session:
                    repository = self._repository(session)
                    changes = repository.changes_since(self.change_id, CHANGES_PER_READ)
                    if not changes:
                        break
                    latest: dict[int, bool] = {}
                    for _, chunk_id, removed in changes:
                        latest[chunk_id] = removed
                    stored = repository.chunk_vectors(
                        i for i, removed in latest.items() if not removed
                    )
                texts = {i: "" for i, vector in stored.items() if vector is None}
                if texts:
                    with database.session_scope(self._sessions) as session:
                        texts = self._repository(session).chunk_texts(texts)
                present = {
                    i: v for i, v in stored.items() if v is not None
                } | self._embed_and_store(texts)
                self.vectors.remove(list(latest))  # idempotent: an added chunk may be there already
                ids = list(present)
                self.vectors.add(
                    ids, vectors_from_bytes([present[i] for i in ids], self._manifest.dimension)
                )
                self.change_id = changes[-1][0]
                applied += len(changes)
                self._keywords_stale_since = self._keywords_stale_since or time.monotonic()
                self._unsaved = True
            if self._keywords_stale_since is not None and (
                rebuild_keywords
                or applied == 0
                or time.monotonic() - self._keywords_stale_since > KEYWORDS_MAX_STALE_S
            ):
                self._rebuild_keywords()
            if self._unsaved and (
                applied == 0 or time.monotonic() - self._last_save > SAVE_INTERVAL_S
            ):
                self.save()
        return applied

    def _rebuild_keywords(self) -> None:
        with database.session_scope(self._sessions) as session:
            self.keywords.build(self._repository(session).iter_chunk_texts())
        self._keywords_stale_since = None
        self._unsaved = True

    def save(self) -> None:
        """The indexes, then the position they hold (see the module docstring for the order)."""
        with self._lock:
            self.vectors.fit_layout()
            self.vectors.save()
            self.keywords.save()
            position = {"change_id": self.change_id, "vectors": self.vectors.size}
            temporary = self.directory / f".{POSITION_FILE}.{os.getpid()}"
            temporary.write_text(json.dumps(position))
            os.replace(temporary, self.directory / POSITION_FILE)
            self._last_save = time.monotonic()
            self._unsaved = False

    def flush(self) -> None:
        """Everything applied and saved: keywords rebuilt if stale (end of a run, shut-down)."""
        with self._lock:
            self.catch_up(rebuild_keywords=True)
            if self._unsaved:
                self.save()
