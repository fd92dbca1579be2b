"""Dense retrieval: embed the question, search faiss, load the chunks from SQL."""

from __future__ import annotations

from rag.store import KnowledgeStore
from rag.storage.repository import to_retrieved
from rag.types import RetrievedChunk


class DenseRetriever:
    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store

    def retrieve(self, question: str, top_k: int) -> list[RetrievedChunk]:
        if top_k <= 0:
            raise ValueError(f"top_k must be greater than 0, got {top_k}")
        self.store.refresh_if_changed()
        query = self.store.embedder.embed([question])[0]
        hits = self.store.vectors.search(query, top_k)
        with self.store.session() as repo:
            stored = repo.chunks_by_ids(chunk_id for chunk_id, _ in hits)
        # A vector whose chunk was deleted since the index was saved is skipped.
        return [to_retrieved(stored[chunk_id], score) for chunk_id, score in hits if chunk_id in stored]
