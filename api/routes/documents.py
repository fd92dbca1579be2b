"""GET /documents and /documents/{id}: what is indexed."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Query

from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES
from api.schemas import DocumentList, DocumentOut
from rag.errors import NotFoundError
from rag.storage.models import Document

router = APIRouter(tags=["documents"])


def _out(document: Document, chunk_count: int) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        source=document.source,
        metadata=document.meta,
        content_hash=document.content_hash,
        chunk_count=chunk_count,
        created_at=document.created_at.isoformat(),
        updated_at=document.updated_at.isoformat(),
    )


@router.get("/documents", response_model=DocumentList, responses=ERROR_RESPONSES)
async def list_documents(
    container: ContainerDep,
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> DocumentList:
    def load() -> DocumentList:
        with container.store.session() as repo:
            rows = repo.list_documents(offset, limit)
            total = repo.count_documents()
            return DocumentList(
                total=total, offset=offset, limit=limit, documents=[_out(d, n) for d, n in rows]
            )

    return await anyio.to_thread.run_sync(load)


@router.get("/documents/{document_id}", response_model=DocumentOut, responses=ERROR_RESPONSES)
async def get_document(document_id: int, container: ContainerDep) -> DocumentOut:
    def load() -> DocumentOut:
        with container.store.session() as repo:
            document = repo.get_document(document_id)
            if document is None:
                raise NotFoundError(f"document {document_id} does not exist")
            return _out(document, len(document.chunks))

    return await anyio.to_thread.run_sync(load)
