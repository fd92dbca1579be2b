"""Queries on documents and chunks; one round trip per batch, not per chunk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from rag.storage.models import Chunk, Document
from rag.types import ChunkSpan, RetrievedChunk


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: int
    document_id: int
    ordinal: int
    text: str
    metadata: dict[str, Any]


class DocumentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def hashes_by_source(self, sources: Sequence[str]) -> dict[str, str]:
        rows = self.session.execute(
            select(Document.source, Document.content_hash).where(Document.source.in_(sources))
        )
        return {source: content_hash for source, content_hash in rows}

    def replace_document(
        self, source: str, content_hash: str, metadata: dict[str, Any], spans: Sequence[ChunkSpan]
    ) -> tuple[Document, list[int], list[int]]:
        """Insert or overwrite a document and its chunks.

        Returns the document, the ids of the new chunks (in span order) and the
        ids of the chunks it replaced, whose vectors the caller must remove.
        """
        document = self.session.scalar(select(Document).where(Document.source == source))
        removed: list[int] = []
        if document is None:
            document = Document(source=source, content_hash=content_hash, meta=metadata)
            self.session.add(document)
        else:
            removed = list(self.session.scalars(select(Chunk.id).where(Chunk.document_id == document.id)))
            self.session.execute(delete(Chunk).where(Chunk.document_id == document.id))
            document.content_hash = content_hash
            document.meta = metadata
        self.session.flush()
        chunks = [
            Chunk(
                document_id=document.id,
                ordinal=span.ordinal,
                text=span.text,
                start_char=span.start_char,
                end_char=span.end_char,
                token_count=span.token_count,
                meta=span.metadata,
            )
            for span in spans
        ]
        self.session.add_all(chunks)
        self.session.flush()
        return document, [chunk.id for chunk in chunks], removed

    def delete_document(self, document_id: int) -> list[int] | None:
        """Delete a document; returns its chunk ids, or None when it did not exist."""
        document = self.session.get(Document, document_id)
        if document is None:
            return None
        chunk_ids = list(self.session.scalars(select(Chunk.id).where(Chunk.document_id == document_id)))
        self.session.execute(delete(Chunk).where(Chunk.document_id == document_id))
        self.session.delete(document)
        self.session.flush()
        return chunk_ids

    def delete_source(self, source: str) -> list[int] | None:
        document_id = self.session.scalar(select(Document.id).where(Document.source == source))
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
        return list(self.session.scalars(select(Document.source).where(or_(*conditions))))

    def chunks_by_ids(self, chunk_ids: Iterable[int]) -> dict[int, StoredChunk]:
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(
                Chunk.id, Chunk.document_id, Chunk.ordinal, Chunk.text,
                Document.meta.label("document_meta"), Chunk.meta.label("chunk_meta"),
            )  # fmt: skip
            .join(Document, Chunk.document_id == Document.id)
            .where(Chunk.id.in_(ids))
        )
        return {
            row.id: StoredChunk(
                row.id, row.document_id, row.ordinal, row.text,
                {**row.document_meta, **(row.chunk_meta or {})},
            )  # fmt: skip
            for row in rows
        }

    def all_chunk_ids(self) -> set[int]:
        return set(self.session.scalars(select(Chunk.id)))

    def chunk_ids_where(self, condition: ColumnElement[bool]) -> set[int]:
        query = select(Chunk.id).join(Document, Chunk.document_id == Document.id).where(condition)
        return set(self.session.scalars(query))

    def iter_chunk_texts(self, batch_size: int = 2000) -> Iterator[tuple[int, str]]:
        rows = self.session.execute(
            select(Chunk.id, Chunk.text).order_by(Chunk.id).execution_options(yield_per=batch_size)
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

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[tuple[Document, int]]:
        chunk_count = (
            select(func.count(Chunk.id)).where(Chunk.document_id == Document.id).scalar_subquery()
        )
        rows = self.session.execute(
            select(Document, chunk_count).order_by(Document.id).offset(offset).limit(limit)
        )
        return [(document, int(count)) for document, count in rows]

    def count_documents(self) -> int:
        return int(self.session.scalar(select(func.count(Document.id))) or 0)

    def count_chunks(self) -> int:
        return int(self.session.scalar(select(func.count(Chunk.id))) or 0)


def to_retrieved(stored: StoredChunk, score: float) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=stored.chunk_id,
        document_id=stored.document_id,
        score=score,
        text=stored.text,
        metadata=stored.metadata,
        ordinal=stored.ordinal,
    )
