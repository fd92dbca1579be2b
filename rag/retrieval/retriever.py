"""Retrieval: dense (faiss), keyword (BM25) or hybrid (the two fused, rag/retrieval/fusion.py).

Metadata filters are resolved to chunk ids in SQL first and applied inside
each search, so top-k still returns k matching chunks. Several collections are
searched each in its own indexes; chunk ids are unique across collections, so
their hits merge by score (cosine for dense, BM25 for keywords) before fusion.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from rag.collections.store import CollectionStore
from rag.config import RetrievalMode, RetrievalSettings
from rag.protocols import Embedder
from rag.retrieval.filters import MetadataFilters, filter_clause
from rag.retrieval.fusion import fuse
from rag.retrieval.reranking import Reranker
from rag.storage.repository import DocumentRepository, to_retrieved
from rag.telemetry import stage
from rag.types import RetrievedChunk

Hits = list[tuple[int, float]]


class SearchableCatalog(Protocol):
    """A CollectionStore (one collection) or a CollectionCatalog (all of them)."""

    embedder: Embedder

    def stores(self, collection_names: Sequence[str] | None = None) -> list[CollectionStore]: ...

    def session(self) -> AbstractContextManager[DocumentRepository]: ...


def merge_by_score(rankings: list[Hits], limit: int) -> Hits:
    """The best ``limit`` hits of several rankings whose scores are comparable."""
    return heapq.nlargest(limit, (hit for hits in rankings for hit in hits), key=lambda hit: hit[1])


class Retriever:
    def __init__(
        self,
        catalog: SearchableCatalog,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.reranker = reranker

    @property
    def embedder(self) -> Embedder:
        return self.catalog.embedder

    def retrieve(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
        collection_names: Sequence[str] | None = None,
    ) -> list[RetrievedChunk]:
        return self.retrieve_with_relevance(question, top_k, mode, filters, collection_names)[0]

    def retrieve_with_relevance(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
        collection_names: Sequence[str] | None = None,
    ) -> tuple[list[RetrievedChunk], float | None]:
        """The chunks, and the best cosine similarity of any (allowed) chunk to the question:
        how relevant the best material is, whatever the mode ranked by.
        ``collection_names`` None searches every collection."""
        if top_k <= 0:
            raise ValueError(f"top_k must be greater than 0, got {top_k}")
        stores = self.catalog.stores(collection_names)
        if not stores:
            return [], None
        allowed = self._allowed(filters, stores) if filters else None
        depth = max(top_k, self.settings.rerank_candidates) if self.reranker else top_k
        hits, dense = self._search(stores, question, depth, mode or self.settings.mode, allowed)
        with self.catalog.session() as repo:
            stored = repo.chunks_by_ids(chunk_id for chunk_id, _ in hits)
        # A hit whose chunk was deleted since the index was saved is skipped.
        chunks = [
            to_retrieved(stored[chunk_id], score) for chunk_id, score in hits if chunk_id in stored
        ]
        if self.reranker:
            with stage("rerank"):
                chunks = self.reranker.rerank(question, chunks, top_k)
        return chunks, (dense[0][1] if dense else None)

    def search(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode,
        allowed: set[int] | None,
        collection_names: Sequence[str] | None = None,
    ) -> Hits:
        return self._search(self.catalog.stores(collection_names), question, top_k, mode, allowed)[
            0
        ]

    def _search(
        self,
        stores: list[CollectionStore],
        question: str,
        top_k: int,
        mode: RetrievalMode,
        allowed: set[int] | None,
    ) -> tuple[Hits, Hits]:
        """The ranked hits, and the dense hits they came from (top one at least)."""
        with stage("embed"):
            query = self.embedder.embed([question])[0]
        with stage("search"):
            return self._ranked(stores, query, question, top_k, mode, allowed)

    def _ranked(
        self,
        stores: list[CollectionStore],
        query: np.ndarray,
        question: str,
        top_k: int,
        mode: RetrievalMode,
        allowed: set[int] | None,
    ) -> tuple[Hits, Hits]:
        def dense_hits(k: int) -> Hits:
            return merge_by_score([store.vectors.search(query, k, allowed) for store in stores], k)

        def keyword_hits(k: int) -> Hits:
            return merge_by_score(
                [store.keywords.search(question, k, allowed) for store in stores], k
            )

        if mode == "dense":
            dense = dense_hits(top_k)
            return dense, dense
        if mode == "bm25":
            return keyword_hits(top_k), dense_hits(1)
        depth = max(top_k, self.settings.candidates)
        dense = dense_hits(depth)
        return fuse(dense, keyword_hits(depth), self.settings.fusion)[:top_k], dense

    def _allowed(self, filters: MetadataFilters, stores: list[CollectionStore]) -> set[int]:
        with stage("filter"), self.catalog.session() as repo:
            return repo.chunk_ids_where(
                filter_clause(filters), [store.collection_id for store in stores]
            )
