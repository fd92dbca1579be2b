"""One collection's store: SQL, the source of truth, and this process's cache of it.

Writers (the indexer, HTTP jobs, Ray) only write SQL: documents, chunks with their vectors,
and the change log, one transaction per batch with the collection's row locked, so change
ids grow in commit order. Readers search a local faiss + BM25 cache (``CollectionCache``)
that follows the change log; it is opened on first use, so a process that only writes
never builds one. A lost or corrupt cache is rebuilt from SQL, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from rag.collections.cache import CollectionCache
from rag.collections.names import DEFAULT_COLLECTION, validate_collection_name
from rag.config import Settings
from rag.embedding.embedder import model_identity
from rag.indexes.keyword import BM25KeywordIndex
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest
from rag.protocols import Embedder
from rag.storage import database
from rag.storage.repository import DocumentRepository, EmbeddedDocument, ensure_collection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteReport:
    added: int = 0  # documents new to the collection
    updated: int = 0  # documents that replaced a stored version
    chunks_written: int = 0


@dataclass(frozen=True)
class ConsistencyReport:
    """This process's cache against SQL."""

    sql_chunks: int
    vectors: int
    missing_vectors: int
    orphan_vectors: int
    keyword_index_stale: bool
    repaired: bool
    change_id: int = 0  # the last SQL change the cache holds
    sql_change_id: int = 0
    chunks_without_vector: int = 0  # in SQL (written before revision 0004)

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
    """One collection: its rows in SQL and, once read, its local vector and keyword cache."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        migrate: bool = True,
        collection: str = DEFAULT_COLLECTION,
        shared: SharedDatabase | None = None,
        on_write: Callable[[bool], None] | None = None,
    ) -> None:
        """``on_write(run_ended)`` runs after each committed write and at ``flush`` (the catalog
        refreshes its readers: vectors after each batch, the keyword index once a run ends)."""
        self.settings = settings
        self._on_write = on_write
        self.embedder = embedder
        self.collection = validate_collection_name(collection)
        self._owns_engine = shared is None
        shared = shared or SharedDatabase.open(settings, migrate)
        self.engine: Engine = shared.engine
        self.sessions: sessionmaker[Session] = shared.sessions
        with database.session_scope(self.sessions) as session:
            self.collection_id = ensure_collection(session, self.collection)
        self.index_dir = settings.index_dir / self.collection
        # The model, not the backend: torch, ONNX and OpenVINO vectors of one model agree
        # within the encoder contract's floors (tests/integration/test_encoder_contract.py), so a
        # GPU indexer in torch and CPU replicas in OpenVINO share one collection.
        self.manifest = IndexManifest(
            embedder=model_identity(settings.embedding.model_path),
            dimension=embedder.dimension,
            chunk_max_tokens=settings.chunking.max_tokens,
            chunk_overlap_tokens=settings.chunking.overlap_tokens,
        )
        self.layout = IndexLayout(
            exact_max_vectors=settings.indexing.exact_search_max_vectors,
            nprobe=settings.indexing.ivf_nprobe,
            compressed_min_vectors=settings.indexing.compressed_min_vectors,
            shortlist_min_vectors=settings.indexing.shortlist_min_vectors,
            search_threads=settings.indexing.search_threads,
        )
        self._check_manifest()
        self._cache: CollectionCache | None = None
        self._cache_lock = threading.Lock()

    def _check_manifest(self) -> None:
        """Refuse settings that would mix two kinds of vectors or chunks in this collection."""
        with self.session() as repo:
            repo.record_index_manifest(asdict(self.manifest))
            stored = repo.index_manifest()
        if stored is not None:
            self.manifest.check_compatible(
                IndexManifest(**stored), f"collection {self.collection!r}"
            )

    # Reading: the local cache, opened (loaded or built from SQL) on first use.

    @property
    def cache(self) -> CollectionCache:
        if self._cache is None:
            with self._cache_lock:
                if self._cache is None:
                    self._cache = CollectionCache.open(
                        self.index_dir, self.manifest, self.layout, self.sessions,
                        self.collection_id, self.embedder,
                    )  # fmt: skip
        return self._cache

    @property
    def vectors(self) -> FaissVectorIndex:
        return self.cache.vectors

    @property
    def keywords(self) -> BM25KeywordIndex:
        return self.cache.keywords

    def refresh(self, rebuild_keywords: bool = False) -> int:
        """Catch the cache up with SQL (if this process has one); returns the changes applied.
        The keyword index follows at once with ``rebuild_keywords``, else once writers pause."""
        return self._cache.catch_up(rebuild_keywords) if self._cache is not None else 0

    def flush(self) -> None:
        """The cache complete and saved, keyword index included (end of an indexing run)."""
        if self._cache is not None:
            self._cache.flush()
        if self._on_write is not None:
            self._on_write(True)

    def stores(self, collection_names: Sequence[str] | None = None) -> list[CollectionStore]:
        """The stores a retriever searches: this one, if it is among ``collection_names``."""
        return [self] if collection_names is None or self.collection in collection_names else []

    @contextmanager
    def session(self) -> Iterator[DocumentRepository]:
        with database.session_scope(self.sessions) as session:
            yield DocumentRepository(session, self.collection_id)

    # Writing: SQL only, one transaction per call, the collection's writers serialized.

    @contextmanager
    def _writing(self) -> Iterator[DocumentRepository]:
        with self.session() as repo:
            if self.engine.dialect.name == "postgresql":
                wait_ms = int(self.settings.api.job_lock_wait_s * 1000)
                repo.session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
            repo.lock_collection()
            yield repo
        self.refresh()  # this process reads what it wrote at once (BM25 when the run ends)
        if self._on_write is not None:
            self._on_write(False)

    def stored_hashes(self, sources: Sequence[str]) -> dict[str, str]:
        with self.session() as repo:
            return repo.hashes_by_source(sources)

    def write_documents(self, documents: Sequence[EmbeddedDocument]) -> WriteReport:
        """Insert or replace the documents, their chunks and vectors, in one transaction."""
        with self._writing() as repo:
            written = repo.replace_documents(documents)
        return WriteReport(
            written.documents - written.updated, written.updated, len(written.chunk_ids)
        )

    def delete_sources(self, sources: Sequence[str]) -> int:
        """Remove documents by source; returns how many existed."""
        removed = 0
        with self._writing() as repo:
            for source in sources:
                removed += repo.delete_source(source) is not None
        return removed

    def delete_documents(self, document_ids: Sequence[int]) -> int:
        """Remove documents of this collection by id; returns how many existed."""
        removed = 0
        with self._writing() as repo:
            for document_id in document_ids:
                removed += repo.delete_document(document_id) is not None
        return removed

    def sources_under(self, roots: Sequence[str]) -> list[str]:
        with self.session() as repo:
            return repo.sources_under(roots)

    # Consistency: ``rag check`` compares this process's cache with SQL.

    def check(self, repair: bool) -> ConsistencyReport:
        cache = self.cache
        cache.catch_up(rebuild_keywords=True)
        with self.session() as repo:
            sql_ids = repo.all_chunk_ids()
            sql_change = repo.last_change()
            without_vector = repo.count_chunks_without_vector()
        vector_ids = cache.vectors.ids()
        missing = sorted(sql_ids - vector_ids)
        orphans = sorted(vector_ids - sql_ids)
        keywords_stale = cache.keywords.ids() != sql_ids
        broken = bool(missing or orphans or keywords_stale or without_vector)
        if repair and broken:
            logger.warning(
                "rebuilding the cache of %s from SQL: %d chunks without vectors, %d orphan vectors, "
                "keyword index %s, %d chunks without a vector in SQL",
                self.collection, len(missing), len(orphans), "stale" if keywords_stale else "current",
                without_vector,
            )  # fmt: skip
            cache.rebuild()
        return ConsistencyReport(
            sql_chunks=len(sql_ids),
            vectors=len(vector_ids),
            missing_vectors=len(missing),
            orphan_vectors=len(orphans),
            keyword_index_stale=keywords_stale,
            repaired=repair and broken,
            change_id=cache.change_id,
            sql_change_id=sql_change,
            chunks_without_vector=without_vector,
        )

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()
