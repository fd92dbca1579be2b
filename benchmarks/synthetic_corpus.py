"""Large synthetic collections, written straight to SQL, faiss and BM25 (seconds, not hours).

Embedding 100,000 chunks would take the encoder minutes on two cores and tells nothing about
the answer path, so the rows are inserted with SQLAlchemy Core and the indexes are filled
directly: random unit vectors (in SQL with the change log, so the service builds its cache
from them as it would from the indexer's rows), and for BM25 either real text (the service's own
build) or a score matrix built from Zipf-distributed term ids, the shape
bm25s builds (at a million chunks tokenizing text alone would take minutes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources

import bm25s
import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from rag.storage.models import Chunk, ChunkChange, Document
from rag.storage.repository import vector_bytes

CHUNKS_PER_DOCUMENT = 10
VOCABULARY = 50_000
TERMS_PER_CHUNK = 32  # distinct non-stopword stems of a short chunk
_ROWS_PER_INSERT = 20_000


def wikipedia_sentences() -> list[str]:
    """The calibration paragraphs shipped with the package, as sentences."""
    data = resources.files("rag") / "data" / "calibration_paragraphs.jsonl"
    rows = [
        json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [s.strip() + "." for row in rows for s in row["text"].split(". ") if len(s) > 20]


def synthetic_texts(count: int, seed: int = 0, sentences_per_chunk: int = 6) -> Iterator[str]:
    sentences = wikipedia_sentences()
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield " ".join(sentences[i] for i in rng.integers(0, len(sentences), sentences_per_chunk))


def document_metadata(number: int) -> dict[str, object]:
    """year: 25 values (a broad filter), shard: 100 values (a selective one)."""
    return {"source": f"synthetic/{number}.txt", "year": 2000 + number % 25, "shard": number % 100,
            "author": f"author {number % 7}"}  # fmt: skip


def insert_chunks(
    session: Session,
    collection_id: int,
    count: int,
    texts: Iterator[str] | None = None,
    dimension: int | None = None,
) -> list[int]:
    """``count`` chunks in documents of ten; returns their ids in order (= faiss ids). With
    ``dimension``, each chunk gets a random unit vector in SQL and a row of the change log,
    as the indexer writes them, so a service builds its cache from SQL as it would."""
    documents = (count + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT
    first = int(
        session.execute(
            insert(Document).returning(Document.id), [_document(collection_id, 0)]
        ).scalar_one()
    )
    for start in range(1, documents, _ROWS_PER_INSERT):
        rows = [
            _document(collection_id, n)
            for n in range(start, min(documents, start + _ROWS_PER_INSERT))
        ]
        session.execute(insert(Document), rows)
    chunk_ids: list[int] = []
    for start in range(0, count, _ROWS_PER_INSERT):
        rows = [
            {"document_id": first + n // CHUNKS_PER_DOCUMENT, "ordinal": n % CHUNKS_PER_DOCUMENT,
             "text": next(texts) if texts else f"synthetic chunk {n}", "start_char": 0, "end_char": 1, "token_count": 1}
            for n in range(start, min(count, start + _ROWS_PER_INSERT))
        ]  # fmt: skip
        if dimension is not None:
            vectors = unit_vectors(len(rows), dimension, seed=start)
            for row, vector in zip(rows, vectors, strict=True):
                row["vector"] = vector_bytes(vector)
        ids = session.scalars(
            insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows
        ).all()
        if dimension is not None:
            session.execute(
                insert(ChunkChange),
                [{"collection_id": collection_id, "chunk_id": i, "removed": False} for i in ids],
            )
        chunk_ids += ids
    return chunk_ids


def _document(collection_id: int, number: int) -> dict[str, object]:
    return {"collection_id": collection_id, "source": f"synthetic/{number}.txt", "content_hash": "0" * 64,
            "meta": document_metadata(number)}  # fmt: skip


def unit_vectors(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def zipf_terms(count: int, rng: np.random.Generator, skip: int = 0) -> np.ndarray:
    """Term ids drawn with probability 1/rank (rank > ``skip``: the most common are stopwords)."""
    ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
    weights = 1 / ranks
    weights[:skip] = 0
    cumulative = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(count)), VOCABULARY - 1).astype(
        np.int32
    )


def synthetic_bm25(chunks: int, seed: int = 0) -> bm25s.BM25:
    """A bm25s model over ``chunks`` synthetic documents of TERMS_PER_CHUNK Zipf terms, its
    score matrix (term-major, CSC as bm25s keeps it) filled directly. Term ``i`` is ``w{i}``."""
    rng = np.random.default_rng(seed)
    terms = zipf_terms(chunks * TERMS_PER_CHUNK, rng, skip=20)
    order = np.argsort(terms, kind="stable")
    documents = (order // TERMS_PER_CHUNK).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(terms, minlength=VOCABULARY))]).astype(
        np.int64
    )
    del terms, order
    model = bm25s.BM25()
    model.scores = {
        "data": rng.uniform(0.5, 3.0, len(documents)).astype(np.float32),
        "indices": documents,
        "indptr": indptr,
        "num_docs": chunks,
    }
    model.vocab_dict = {f"w{i}": i for i in range(VOCABULARY)}
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.nonoccurrence_array = None  # bm25s sets it in index(); lucene scoring has none
    return model


def query_terms(rng: np.random.Generator, terms: int = 4) -> str:
    return " ".join(f"w{i}" for i in zipf_terms(terms, rng, skip=20))
