"""Retrieval evaluation on a BEIR dataset through the normal indexer and retriever.

Chunks are ranked by the retriever and pooled into documents by their best
chunk (the first time a document appears in the ranking), as a user of the
service would see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select

from evaluation.beir import SOURCE_PREFIX, BeirDataset
from evaluation.metrics import Run, retrieval_metrics
from indexer.pipeline import Indexer, IndexReport
from rag.collections.store import CollectionStore
from rag.config import RetrievalMode, Settings
from rag.protocols import Embedder
from rag.retrieval.retriever import Retriever
from rag.storage.models import Chunk, Document
from rag.types import SourceDocument

DOCUMENTS_RANKED = 100
CHUNKS_PER_DOCUMENT_DEPTH = 3  # chunks retrieved per ranked document, to pool 100 documents

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModeResult:
    metrics: dict[str, float]
    ms_per_query: float

    def as_dict(self) -> dict[str, float]:
        return {**self.metrics, "ms_per_query": round(self.ms_per_query, 2)}


def index_dataset(
    store: CollectionStore,
    settings: Settings,
    dataset: BeirDataset,
    progress: Progress | None = None,
) -> IndexReport:
    indexer = Indexer(store)
    report = IndexReport()

    def counted() -> Iterator[SourceDocument]:
        for done, document in enumerate(dataset.documents(), start=1):
            if progress and done % 64 == 0:
                progress("indexing", done, len(dataset.corpus))
            yield document
        if progress:
            progress("indexing", len(dataset.corpus), len(dataset.corpus))

    indexer.index_documents(counted(), report)
    return report


def chunk_to_document(store: CollectionStore) -> dict[int, str]:
    with store.session() as repo:
        rows = repo.session.execute(select(Chunk.id, Document.source).join(Document))
        return {chunk_id: source.removeprefix(SOURCE_PREFIX) for chunk_id, source in rows}


def rank_documents(hits: list[tuple[int, float]], owner: dict[int, str]) -> dict[str, float]:
    ranked: dict[str, float] = {}
    for chunk_id, _ in hits:
        doc_id = owner.get(chunk_id)
        if doc_id is not None and doc_id not in ranked:
            ranked[doc_id] = float(DOCUMENTS_RANKED - len(ranked))  # strictly decreasing, no ties
            if len(ranked) == DOCUMENTS_RANKED:
                break
    return ranked


def evaluate_mode(
    retriever: Retriever, dataset: BeirDataset, owner: dict[int, str], mode: RetrievalMode,
    progress: Progress | None = None,
) -> ModeResult:  # fmt: skip
    run: Run = {}
    elapsed = 0.0
    for done, (query_id, query) in enumerate(dataset.queries.items(), start=1):
        started = time.perf_counter()
        hits = retriever.search(query, DOCUMENTS_RANKED * CHUNKS_PER_DOCUMENT_DEPTH, mode, None)
        elapsed += time.perf_counter() - started
        run[query_id] = rank_documents(hits, owner)
        if progress:
            progress(mode, done, len(dataset.queries))
    return ModeResult(retrieval_metrics(dataset.qrels, run), 1000 * elapsed / max(len(run), 1))


def evaluate_retrieval(
    settings: Settings, embedder: Embedder, dataset: BeirDataset, modes: list[RetrievalMode],
    progress: Progress | None = None,
) -> dict[str, ModeResult]:  # fmt: skip
    store = CollectionStore(settings, embedder)
    try:
        index_dataset(store, settings, dataset, progress)
        owner = chunk_to_document(store)
        retriever = Retriever(store, settings.retrieval)
        return {mode: evaluate_mode(retriever, dataset, owner, mode, progress) for mode in modes}
    finally:
        store.close()
