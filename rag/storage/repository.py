"""Queries on documents and chunks; one round trip per batch, not per chunk."""

from __future__ import annotations

from collections.abc import Collection as Collection_
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVarTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rag.storage.models import Chunk, ChunkChange, Collection, Document, utcnow
from rag.types import ChunkSpan, RetrievedChunk


@dataclass(frozen=True)
class EmbeddedDocument:
    """A document ready to store: its chunks and their vectors (one row per span)."""

    source: str
    content_hash: str
    metadata: dict[str, Any]
    spans: Sequence[ChunkSpan]
    vectors: npt.NDArray[np.float32]


@dataclass(frozen=True)
class BatchWritten:
    chunk_ids: list[int]  # the new chunks, in document and span order
    removed_chunk_ids: list[int]  # the chunks of the documents replaced
    documents: int  # distinct sources written
    updated: int  # of them, documents that replaced a stored version


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: int
    document_id: int
    ordinal: int
    text: str
    metadata: dict[str, Any]
    start_char: int = 0
    end_char: int = 0


def ensure_collection(session: Session, name: str) -> int:
    """The collection's id, creating it (safely against a concurrent creator)."""
    found = session.scalar(select(Collection.id).where(Collection.name == name))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            collection = Collection(name=name)
            session.add(collection)
        return collection.id
    except IntegrityError:  # created meanwhile by another process
        created = session.scalar(select(Collection.id).where(Collection.name == name))
        if created is None:
            raise
        return created


def collection_ids(session: Session, names: Iterable[str] | None = None) -> dict[str, int]:
    """Ids of the collections that exist, by name (all of them when names is None)."""
    query = select(Collection.name, Collection.id)
    if names is not None:
        query = query.where(Collection.name.in_(list(names)))
    return {name: collection_id for name, collection_id in session.execute(query)}


_Columns = TypeVarTuple("_Columns")


class DocumentRepository:
    """Documents and chunks of one collection (``collection_id``), or of all of them (None)."""

    def __init__(self, session: Session, collection_id: int | None = None) -> None:
        self.session = session
        self.collection_id = collection_id

    def _scoped(self, query: Select[*_Columns]) -> Select[*_Columns]:
        if self.collection_id is None:
            return query
        return query.where(Document.collection_id == self.collection_id)

    def _collection_id(self) -> int:
        if self.collection_id is None:
            raise ValueError("writing a document needs a repository scoped to one collection")
        return self.collection_id

    def hashes_by_source(self, sources: Sequence[str]) -> dict[str, str]:
        rows = self.session.execute(
            self._scoped(
                select(Document.source, Document.content_hash).where(Document.source.in_(sources))
            )
        )
        return {source: content_hash for source, content_hash in rows}

    def index_manifest(self) -> dict[str, Any] | None:
        return self.session.scalar(
            select(Collection.index_manifest).where(Collection.id == self._collection_id())
        )

    def record_index_manifest(self, manifest: dict[str, Any]) -> None:
        """Set the collection's manifest if none is set yet (the first opener wins)."""
        self.session.execute(
            update(Collection)
            .where(Collection.id == self._collection_id(), Collection.index_manifest.is_(None))
            .values(index_manifest=manifest)
        )

    def lock_collection(self) -> None:
        """Serialize this collection's writers until the transaction ends (PostgreSQL row lock;
        SQLite serializes every writer anyway), so change ids grow in commit order."""
        self.session.execute(
            select(Collection.id).where(Collection.id == self._collection_id()).with_for_update()
        )

    def replace_documents(self, documents: Sequence[EmbeddedDocument]) -> BatchWritten:
        """Insert or overwrite a batch of documents with their chunks and vectors in a few
        statements (one per table, not one per document), and log what was removed and added."""
        collection_id = self._collection_id()
        documents = list({document.source: document for document in documents}.values())
        found = self.session.execute(
            select(Document.source, Document.id).where(
                Document.collection_id == collection_id,
                Document.source.in_([document.source for document in documents]),
            )
        )
        ids: dict[str, int] = {source: document_id for source, document_id in found}
        removed: list[int] = []
        if ids:
            removed = list(
                self.session.scalars(
                    select(Chunk.id).where(Chunk.document_id.in_(list(ids.values())))
                )
            )
            self.session.execute(delete(Chunk).where(Chunk.document_id.in_(list(ids.values()))))
            self.session.execute(
                update(Document),
                [
                    {
                        "id": ids[d.source],
                        "content_hash": d.content_hash,
                        "meta": d.metadata,
                        "updated_at": utcnow(),
                    }
                    for d in documents
                    if d.source in ids
                ],
            )
        new = [document for document in documents if document.source not in ids]
        if new:
            inserted = self.session.scalars(
                insert(Document).returning(Document.id, sort_by_parameter_order=True),
                [{"collection_id": collection_id, "source": d.source, "content_hash": d.content_hash, "meta": d.metadata}
                 for d in new],
            ).all()  # fmt: skip
            ids.update(zip([document.source for document in new], inserted, strict=True))
        rows = [
            {"document_id": ids[d.source], "ordinal": span.ordinal, "text": span.text,
             "start_char": span.start_char, "end_char": span.end_char, "token_count": span.token_count,
             "meta": span.metadata, "vector": vector_bytes(d.vectors[position])}
            for d in documents
            for position, span in enumerate(d.spans)
        ]  # fmt: skip
        added: list[int] = []
        if rows:
            added = list(
                self.session.scalars(
                    insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows
                )
            )
        self.log_changes(removed, removed=True)
        self.log_changes(added, removed=False)
        return BatchWritten(added, removed, len(documents), len(documents) - len(new))

    def delete_document(self, document_id: int) -> list[int] | None:
        """Delete a document; returns its chunk ids, or None when it did not exist."""
        document = self.session.get(Document, document_id)
        if document is None or self.collection_id not in (None, document.collection_id):
            return None
        chunk_ids = list(
            self.session.scalars(select(Chunk.id).where(Chunk.document_id == document_id))
        )
        self.session.execute(delete(Chunk).where(Chunk.document_id == document_id))
        collection_id = document.collection_id
        self.session.delete(document)
        self.session.flush()
        self.log_changes(chunk_ids, removed=True, collection_id=collection_id)
        return chunk_ids

    def log_changes(
        self, chunk_ids: Sequence[int], removed: bool, collection_id: int | None = None
    ) -> None:
        if not chunk_ids:
            return
        collection = collection_id if collection_id is not None else self._collection_id()
        self.session.execute(
            insert(ChunkChange),
            [{"collection_id": collection, "chunk_id": i, "removed": removed} for i in chunk_ids],
        )

    def changes_since(self, after: int, limit: int) -> list[tuple[int, int, bool]]:
        """This collection's changes after change id ``after``: (change id, chunk id, removed)."""
        rows = self.session.execute(
            select(ChunkChange.id, ChunkChange.chunk_id, ChunkChange.removed)
            .where(ChunkChange.collection_id == self._collection_id(), ChunkChange.id > after)
            .order_by(ChunkChange.id)
            .limit(limit)
        )
        return [(int(change), int(chunk), bool(removed)) for change, chunk, removed in rows]

    def last_change(self) -> int:
        query = select(func.max(ChunkChange.id)).where(
            ChunkChange.collection_id == self._collection_id()
        )
        return int(self.session.scalar(query) or 0)

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, bytes | None]:
        """Stored vectors of the chunks that still exist (None: written before vectors were kept)."""
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self.session.execute(select(Chunk.id, Chunk.vector).where(Chunk.id.in_(ids)))
        return {int(chunk_id): vector for chunk_id, vector in rows}

    def iter_chunk_rows(self, batch_size: int = 2000) -> Iterator[tuple[int, str, bytes | None]]:
        """Every chunk of the collection: id, text and stored vector, in id order."""
        rows = self.session.execute(
            self._scoped(_chunks_with_documents(Chunk.id, Chunk.text, Chunk.vector))
            .order_by(Chunk.id)
            .execution_options(yield_per=batch_size)
        )
        yield from ((int(i), text, vector) for i, text, vector in rows)

    def set_vectors(self, vectors: dict[int, bytes]) -> None:
        """Store vectors of existing chunks that had none (no change is logged: same chunks)."""
        for chunk_id, vector in vectors.items():
            self.session.execute(update(Chunk).where(Chunk.id == chunk_id).values(vector=vector))

    def delete_source(self, source: str) -> list[int] | None:
        document_id = self.session.scalar(
            self._scoped(select(Document.id).where(Document.source == source))
        )
        return None if document_id is None else self.delete_document(document_id)

    def sources_under(self, paths: Sequence[str]) -> list[str]:
        """Sources equal to a path, inside it (a folder) or a part of it (``file#id``)."""
        conditions = []
        for path in paths:
            stem = path.rstrip("/")
            conditions += [
                Document.source == stem,
                Document.source.startswith(stem + "/", autoescape=True),
                Document.source.startswith(stem + "#", autoescape=True),
            ]
        if not conditions:
            return []
        return list(
            self.session.scalars(self._scoped(select(Document.source).where(or_(*conditions))))
        )

    def chunks_by_ids(self, chunk_ids: Iterable[int]) -> dict[int, StoredChunk]:
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(
                Chunk.id,
                Chunk.document_id,
                Chunk.ordinal,
                Chunk.text,
                Document.meta.label("document_meta"),
                Chunk.meta.label("chunk_meta"),
                Chunk.start_char,
                Chunk.end_char,
            )  # fmt: skip
            .join(Document, Chunk.document_id == Document.id)
            .where(Chunk.id.in_(ids))
        )
        return {
            row.id: StoredChunk(
                row.id,
                row.document_id,
                row.ordinal,
                row.text,
                {**row.document_meta, **(row.chunk_meta or {})},
                row.start_char,
                row.end_char,
            )  # fmt: skip
            for row in rows
        }

    def all_chunk_ids(self) -> set[int]:
        return set(self.session.scalars(self._scoped(_chunks_with_documents(Chunk.id))))

    def chunk_ids_where(
        self, condition: ColumnElement[bool], collection_ids: Collection_[int] | None = None
    ) -> set[int]:
        query = self._scoped(_chunks_with_documents(Chunk.id).where(condition))
        if collection_ids is not None:
            query = query.where(Document.collection_id.in_(list(collection_ids)))
        return set(self.session.scalars(query))

    def iter_chunk_texts(self, batch_size: int = 2000) -> Iterator[tuple[int, str]]:
        rows = self.session.execute(
            self._scoped(_chunks_with_documents(Chunk.id, Chunk.text))
            .order_by(Chunk.id)
            .execution_options(yield_per=batch_size)
        )
        yield from ((chunk_id, text) for chunk_id, text in rows)

    def chunk_texts(self, chunk_ids: Iterable[int]) -> dict[int, str]:
        ids = list(chunk_ids)
        rows = self.session.execute(select(Chunk.id, Chunk.text).where(Chunk.id.in_(ids)))
        return {chunk_id: text for chunk_id, text in rows}

    def document_text(self, document_id: int) -> str | None:
        """A document's text rebuilt from its chunks (overlaps removed by their offsets)."""
        if self.session.get(Document, document_id) is None:
            return None
        rows = self.session.execute(
            select(Chunk.text, Chunk.start_char, Chunk.end_char)
            .where(Chunk.document_id == document_id)
            .order_by(Chunk.ordinal)
        )
        parts: list[str] = []
        cursor = 0
        for text, start, end in rows:
            if end <= cursor:
                continue
            if parts and start > cursor:
                parts.append("\n\n")  # only whitespace lies between chunks
            parts.append(text[max(0, cursor - start) :])
            cursor = end
        return "".join(parts)

    def get_document(self, document_id: int) -> Document | None:
        return self.session.get(Document, document_id)

    def list_documents(
        self, offset: int = 0, limit: int = 100, collection_ids: Collection_[int] | None = None
    ) -> list[tuple[Document, int]]:
        chunk_count = (
            select(func.count(Chunk.id)).where(Chunk.document_id == Document.id).scalar_subquery()
        )
        query = self._scoped(select(Document, chunk_count))
        if collection_ids is not None:
            query = query.where(Document.collection_id.in_(list(collection_ids)))
        rows = self.session.execute(query.order_by(Document.id).offset(offset).limit(limit))
        return [(document, int(count)) for document, count in rows]

    def count_documents(self, collection_ids: Collection_[int] | None = None) -> int:
        query = self._scoped(select(func.count(Document.id)))
        if collection_ids is not None:
            query = query.where(Document.collection_id.in_(list(collection_ids)))
        return int(self.session.scalar(query) or 0)

    def count_chunks_without_vector(self) -> int:
        query = _chunks_with_documents(func.count(Chunk.id)).where(Chunk.vector.is_(None))
        return int(self.session.scalar(self._scoped(query)) or 0)

    def count_chunks(self) -> int:
        return int(
            self.session.scalar(self._scoped(_chunks_with_documents(func.count(Chunk.id)))) or 0
        )


def _chunks_with_documents(*columns: Any) -> Select[Any]:
    return select(*columns).join(Document, Chunk.document_id == Document.id)


def to_retrieved(stored: StoredChunk, score: float) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=stored.chunk_id,
        document_id=stored.document_id,
        score=score,
        text=stored.text,
        metadata=stored.metadata,
        ordinal=stored.ordinal,
        start_char=stored.start_char,
        end_char=stored.end_char,
    )


def vector_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    """A vector as SQL stores it: float32, little-endian."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vectors_from_bytes(rows: Sequence[bytes], dimension: int) -> npt.NDArray[np.float32]:
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    joined = np.frombuffer(b"".join(rows), dtype="<f4").reshape(len(rows), dimension)
    return joined.astype(np.float32, copy=False)
