"""The knowledge store: SQL (the source of truth) plus the faiss and BM25 indexes beside it.

SQL is committed first and the faiss file is saved after, so after a crash the
index can only lack vectors of committed chunks or hold vectors of deleted
ones. ``reconcile()`` repairs both, and runs whenever the indexer starts.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import RAGError
from rag.keyword_index import BM25KeywordIndex
from rag.storage import database
from rag.storage.repository import DocumentRepository
from rag.vector_index import FaissVectorIndex, IndexLayout, IndexManifest

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
        return self.missing_vectors == 0 and self.orphan_vectors == 0 and not self.keyword_index_stale


class KnowledgeStore:
    def __init__(self, settings: Settings, embedder: Embedder, migrate: bool = True) -> None:
        self.settings = settings
        self.embedder = embedder
        url = settings.resolved_database_url
        if migrate:
            database.upgrade(url)
        self.engine: Engine = database.make_engine(url)
        self.sessions: sessionmaker[Session] = database.make_session_factory(self.engine)
        self.manifest = IndexManifest(
            embedder=embedder.identity,
            dimension=embedder.dimension,
            chunk_max_tokens=settings.chunking.max_tokens,
            chunk_overlap_tokens=settings.chunking.overlap_tokens,
        )
        layout = IndexLayout(
            exact_max_vectors=settings.indexing.exact_search_max_vectors, nprobe=settings.indexing.ivf_nprobe
        )
        self.vectors = FaissVectorIndex.open(settings.index_dir, self.manifest, layout)
        self._index_mtime = self.vectors.modified_time()
        self.keywords = BM25KeywordIndex.open(settings.index_dir / "keyword")

    @contextmanager
    def session(self) -> Iterator[DocumentRepository]:
        with database.session_scope(self.sessions) as session:
            yield DocumentRepository(session)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time per data dir (a second indexer fails fast)."""
        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.index_dir / ".writer.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise RAGError(
                    f"another indexer is writing to {self.settings.index_dir}; wait for it to finish"
                ) from exc
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
                len(missing), len(orphans),
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
        self.engine.dispose()
