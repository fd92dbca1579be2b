"""Documents: list, read, upload (indexed in the background) and delete, per collection."""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status

from api.access import visible_document
from api.auth import PrincipalDep, collection_not_found, visible_collections
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest, PayloadTooLarge
from api.presenters import document_response, job_response
from api.safe_json import UnsafeJSON, loads_bounded
from api.schemas import MAX_SQL_INT, CollectionName, DocumentList, DocumentOut, JobOut
from api.upload_form import UploadRoute
from indexer.pipeline import Indexer
from indexer.uploads import (
    UnsupportedUpload,
    UploadPayload,
    check_supported,
    safe_filename,
    text_source,
)
from rag.collections.names import DEFAULT_COLLECTION
from rag.errors import NotFoundError

router = APIRouter(tags=["documents"])
# Only the upload parses its form with the data-dir spool and the upload size limit.
upload_router = APIRouter(tags=["documents"], route_class=UploadRoute)

DocumentIdPath = Annotated[int, Path(ge=1, le=MAX_SQL_INT, description="A document's id.")]

_READ_BLOCK = 1 << 20


@router.get("/documents", response_model=DocumentList, responses=ERROR_RESPONSES)
async def list_documents(
    container: ContainerDep,
    principal: PrincipalDep,
    collection: Annotated[CollectionName | None, Query(description="Only this collection.")] = None,
    offset: int = Query(0, ge=0, le=MAX_SQL_INT),
    limit: int = Query(50, ge=1, le=500),
) -> DocumentList:
    """The documents of the collections this key may see, oldest first."""

    def load() -> DocumentList:
        ids = container.catalog.collection_ids()
        names = visible_collections(principal, list(ids), [collection] if collection else None)
        wanted = {ids[name]: name for name in names}
        with container.catalog.session() as repo:
            rows = repo.list_documents(offset, limit, list(wanted))
            total = repo.count_documents(list(wanted))
            documents = [document_response(d, wanted[d.collection_id], n) for d, n in rows]
        return DocumentList(total=total, offset=offset, limit=limit, documents=documents)

    return await anyio.to_thread.run_sync(load)


@router.get("/documents/{document_id}", response_model=DocumentOut, responses=ERROR_RESPONSES)
async def get_document(
    document_id: DocumentIdPath, container: ContainerDep, principal: PrincipalDep
) -> DocumentOut:
    document, collection, chunks = await anyio.to_thread.run_sync(
        visible_document, container, principal, document_id
    )
    return document_response(document, collection, chunks)


@router.delete(
    "/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def delete_document(
    document_id: DocumentIdPath, container: ContainerDep, principal: PrincipalDep
) -> Response:
    """Remove the document, its chunks and its vectors (waits for a running indexer of its collection)."""

    def delete() -> None:
        _, collection, _ = visible_document(container, principal, document_id)
        store = container.catalog.writable_store(collection)
        try:
            if not Indexer(store).delete_documents([document_id]):
                raise NotFoundError(f"document {document_id} does not exist")
        finally:
            store.close()

    await anyio.to_thread.run_sync(delete)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@upload_router.post(
    "/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={
        **ERROR_RESPONSES,
        413: {
            "model": ERROR_RESPONSES[422]["model"],
            "description": "The upload is larger than allowed",
        },
    },
)
async def upload_document(
    container: ContainerDep,
    principal: PrincipalDep,
    response: Response,
    file: Annotated[
        UploadFile | None, File(description="A document: .txt .md .html .pdf .docx .csv .jsonl ...")
    ] = None,
    text: Annotated[str | None, Form(description="Or the document's text itself.")] = None,
    metadata: Annotated[
        str | None,
        Form(
            description='Metadata as a JSON object, e.g. {"title": "...", "url": "...", "date": "..."}.'
        ),
    ] = None,
    collection: Annotated[
        CollectionName, Form(description="Collection to index into (created if new).")
    ] = DEFAULT_COLLECTION,
    source: Annotated[
        str | None,
        Form(
            max_length=2048,
            description="The document's identity; re-sending a source replaces it. "
            "Default: the file name, or text:<hash> for text.",
        ),
    ] = None,
) -> JobOut:
    """Index a file or a text in the background: returns the job to follow at GET /jobs/{id}."""
    if not principal.can_see(collection):
        raise collection_not_found(collection)
    if (file is None) == (text is None):
        raise InvalidRequest("send either a file or a text")
    parsed = _parse_metadata(
        metadata, container.settings.api.max_metadata_bytes, container.settings.api.max_json_depth
    )
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in SQL.
    for name, value in (("source", source), ("text", text), ("metadata", json.dumps(parsed))):
        if value is not None and ("\x00" in value or (name == "metadata" and "\\u0000" in value)):
            raise InvalidRequest(f"{name} must not contain NUL characters")
    limit = container.settings.api.max_upload_bytes
    if file is not None:
        filename = safe_filename(file.filename or "upload")
        try:
            check_supported(filename)
        except UnsupportedUpload as exc:
            raise InvalidRequest(str(exc)) from exc
        content = await _read_limited(file, limit)
        payload = UploadPayload("file", (source or filename).strip() or filename, filename, parsed)
        job = await anyio.to_thread.run_sync(
            lambda: container.jobs.submit(collection, payload, content=content)
        )
    else:
        assert text is not None
        if not text.strip():
            raise InvalidRequest("text must not be empty or only whitespace")
        if len(text.encode()) > limit:
            raise PayloadTooLarge(
                f"the text is larger than {container.settings.api.max_upload_mb:g} MB"
            )
        payload = UploadPayload("text", (source or "").strip() or text_source(text), "text", parsed)
        job = await anyio.to_thread.run_sync(
            lambda: container.jobs.submit(collection, payload, text=text)
        )
    container.enqueue_job(job.id)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job_response(job)


def _parse_metadata(raw: str | None, max_bytes: int, max_depth: int) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    if len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise PayloadTooLarge(
            f"metadata is larger than {max_bytes / 1000:g} KB (RAG_API__MAX_METADATA_KB)"
        )
    try:
        parsed = loads_bounded(raw, max_depth)
    except UnsafeJSON as exc:
        raise InvalidRequest(f"metadata was refused: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequest("metadata must be a JSON object")
    return parsed


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while block := await file.read(_READ_BLOCK):
        size += len(block)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than {limit / 1_000_000:g} MB")
        parts.append(block)
    return b"".join(parts)
