"""One collection's store: SQL (the source of truth) plus the faiss and BM25 indexes beside it.

SQL is committed first and the faiss file is saved after, so after a crash the
index can only lack vectors of committed chunks or hold vectors of deleted
ones. ``reconcile()`` repairs both, and runs whenever the indexer starts.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rag.collections.names import DEFAULT_COLLECTION, validate_collection_name
from rag.config import Settings
from rag.errors import RAGError
from rag.indexes.keyword import BM25KeywordIndex
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest
from rag.protocols import Embedder
from rag.storage import database
from rag.storage.repository import DocumentRepository, ensure_collection

logger = logging.getLogger(__name__)

_SQL_BATCH = 500


@dataclass(frozen=True)
class ConsistencyReport:
    sql_chunks: int
    vectors: int
    missing_vectors: int
    orphan_vectors: int
    keyword_index_stale: bool
    repaired: bool

    @property
    def consistent(self) -> bool:
        return (
            self.missing_vectors == 0 and self.orphan_vectors == 0 and not self.keyword_index_stale
        )


@dataclass(frozen=True)
class SharedDatabase:
    """One engine for all the collections of a process."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, settings: Settings, migrate: bool = True) -> SharedDatabase:
        url = settings.resolved_database_url
        if migrate:
            database.upgrade(url)
        engine = database.make_engine(url)
        return cls(engine, database.make_session_factory(engine))


class CollectionStore:
    """One collection: its rows in SQL and its own vector and keyword indexes."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        migrate: bool = True,
        collection: str = DEFAULT_COLLECTION,
        shared: SharedDatabase | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.collection = validate_collection_name(collection)
        self._owns_engine = shared is None
        shared = shared or SharedDatabase.open(settings, migrate)
        self.engine: Engine = shared.engine
        self.sessions: sessionmaker[Session] = shared.sessions
        with database.session_scope(self.sessions) as session:
            self.collection_id = ensure_collection(session, self.collection)
        self.index_dir = settings.index_dir / self.collection
        self.manifest = IndexManifest(
            embedder=embedder.identity,
            dimension=embedder.dimension,
            chunk_max_tokens=settings.chunking.max_tokens,
            chunk_overlap_tokens=settings.chunking.overlap_tokens,
        )
        layout = IndexLayout(
            exact_max_vectors=settings.indexing.exact_search_max_vectors,
            nprobe=settings.indexing.ivf_nprobe,
            compressed_min_vectors=settings.indexing.compressed_min_vectors,
        )
        self.vectors = FaissVectorIndex.open(self.index_dir, self.manifest, layout)
        self._index_mtime = self.vectors.modified_time()
        self.keywords = BM25KeywordIndex.open(self.index_dir / "keyword")

    def stores(self, collection_names: Sequence[str] | None = None) -> list[CollectionStore]:
        """The stores a retriever searches: this one, if it is among ``collection_names``."""
        return [self] if collection_names is None or self.collection in collection_names else []

    @contextmanager
    def session(self) -> Iterator[DocumentRepository]:
        with database.session_scope(self.sessions) as session:
            yield DocumentRepository(session, self.collection_id)

    @contextmanager
    def writer_lock(self, wait_s: float = 0.0) -> Iterator[None]:
        """One writer at a time per collection; a second one waits up to ``wait_s``, then fails."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        with open(self.index_dir / ".writer.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() >= deadline:
                        raise RAGError(
                            f"another indexer is writing to collection {self.collection!r} "
                            f"({self.index_dir}); wait for it to finish"
                        ) from exc
                    time.sleep(0.5)
            yield

    def refresh_if_changed(self) -> bool:
        """Reload the indexes if another process (the indexer) replaced them."""
        self.keywords.reload()
        mtime = self.vectors.modified_time()
        if mtime is None or mtime == self._index_mtime:
            return False
        self.vectors.reload()
        self._index_mtime = mtime
        logger.info("reloaded the vector index: %d vectors", self.vectors.size)
        return True

    def save_vectors(self) -> None:
        self.vectors.fit_layout()
        self.vectors.save()
        self._index_mtime = self.vectors.modified_time()

    def check(self, repair: bool) -> ConsistencyReport:
        with self.session() as repo:
            sql_ids = repo.all_chunk_ids()
        vector_ids = self.vectors.ids()
        missing = sorted(sql_ids - vector_ids)
        orphans = sorted(vector_ids - sql_ids)
        keywords_stale = self.keywords.ids() != sql_ids
        if repair and (missing or orphans):
            logger.warning(
                "repairing the index: %d chunks without vectors, %d orphan vectors",
                len(missing),
                len(orphans),
            )
            self.vectors.remove(orphans)
            self._embed_stored(missing)
            self.save_vectors()
        if repair and keywords_stale:
            self.rebuild_keywords()
        return ConsistencyReport(
            sql_chunks=len(sql_ids),
            vectors=len(vector_ids),
            missing_vectors=len(missing),
            orphan_vectors=len(orphans),
            keyword_index_stale=keywords_stale,
            repaired=repair and bool(missing or orphans or keywords_stale),
        )

    def rebuild_keywords(self) -> None:
        with self.session() as repo:
            self.keywords.build(repo.iter_chunk_texts())
        self.keywords.save()
        logger.info("keyword index rebuilt: %d chunks", self.keywords.size)

    def _embed_stored(self, chunk_ids: list[int]) -> None:
        for start in range(0, len(chunk_ids), _SQL_BATCH):
            batch = chunk_ids[start : start + _SQL_BATCH]
            with self.session() as repo:
                texts = repo.chunk_texts(batch)
            ids = [i for i in batch if i in texts]
            self.vectors.add(ids, self.embedder.embed([texts[i] for i in ids]))

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()
