"""Retrieval: dense (faiss), keyword (BM25) or hybrid (reciprocal rank fusion).

Metadata filters are resolved to chunk ids in SQL first and applied inside
each search, so top-k still returns k matching chunks.
"""

from __future__ import annotations

from collections import defaultdict

from rag.config import RetrievalMode, RetrievalSettings
from rag.filters import MetadataFilters, filter_clause
from rag.reranking import Reranker
from rag.storage.repository import to_retrieved
from rag.store import KnowledgeStore
from rag.types import RetrievedChunk

Hits = list[tuple[int, float]]


def reciprocal_rank_fusion(rankings: list[tuple[Hits, float]], k: int) -> Hits:
    """Sum of weight / (k + rank) over the rankings a chunk appears in."""
    fused: dict[int, float] = defaultdict(float)
    for hits, weight in rankings:
        for rank, (chunk_id, _) in enumerate(hits, start=1):
            fused[chunk_id] += weight / (k + rank)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


class Retriever:
    def __init__(
        self, store: KnowledgeStore, settings: RetrievalSettings, reranker: Reranker | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.reranker = reranker

    def retrieve(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[RetrievedChunk]:
        return self.retrieve_with_relevance(question, top_k, mode, filters)[0]

    def retrieve_with_relevance(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
    ) -> tuple[list[RetrievedChunk], float | None]:
        """The chunks, and the best cosine similarity of any (allowed) chunk to the question:
        how relevant the best material is, whatever the mode ranked by."""
        if top_k <= 0:
            raise ValueError(f"top_k must be greater than 0, got {top_k}")
        self.store.refresh_if_changed()
        allowed = self._allowed(filters) if filters else None
        depth = max(top_k, self.settings.rerank_candidates) if self.reranker else top_k
        hits, dense = self._search(question, depth, mode or self.settings.mode, allowed)
        with self.store.session() as repo:
            stored = repo.chunks_by_ids(chunk_id for chunk_id, _ in hits)
        # A hit whose chunk was deleted since the index was saved is skipped.
        chunks = [to_retrieved(stored[chunk_id], score) for chunk_id, score in hits if chunk_id in stored]
        if self.reranker:
            chunks = self.reranker.rerank(question, chunks, top_k)
        return chunks, (dense[0][1] if dense else None)

    def search(self, question: str, top_k: int, mode: RetrievalMode, allowed: set[int] | None) -> Hits:
        return self._search(question, top_k, mode, allowed)[0]

    def _search(
        self, question: str, top_k: int, mode: RetrievalMode, allowed: set[int] | None
    ) -> tuple[Hits, Hits]:
        """The ranked hits, and the dense hits they came from (top one at least)."""
        query = self.store.embedder.embed([question])[0]
        if mode == "dense":
            dense = self.store.vectors.search(query, top_k, allowed)
            return dense, dense
        if mode == "bm25":
            return self.store.keywords.search(question, top_k, allowed), self.store.vectors.search(query, 1, allowed)
        depth = max(top_k, self.settings.candidates)
        dense = self.store.vectors.search(query, depth, allowed)
        fused = reciprocal_rank_fusion(
            [
                (dense, self.settings.dense_weight),
                (self.store.keywords.search(question, depth, allowed), self.settings.keyword_weight),
            ],
            self.settings.rrf_k,
        )
        return fused[:top_k], dense

    def _allowed(self, filters: MetadataFilters) -> set[int]:
        with self.store.session() as repo:
            return repo.chunk_ids_where(filter_clause(filters))
