"""What a request may reach, checked before the work starts: retrieval options within the
limits, and documents only in the collections the caller's key may see."""

from __future__ import annotations

from typing import Any

from api.container import Container
from api.errors import InvalidRequest
from rag.access.api_keys import Principal
from rag.errors import NotFoundError
from rag.retrieval.filters import FilterError, filter_clause
from rag.storage.models import Document


def check_retrieval_options(
    container: Container, top_k: int | None, filters: dict[str, Any] | None
) -> int:
    """The top_k to use; a top_k over the limit or a bad filter is an invalid request."""
    limits = container.settings.retrieval
    top_k = top_k or limits.default_top_k
    if top_k > limits.max_top_k:
        raise InvalidRequest(f"top_k must be at most {limits.max_top_k}, got {top_k}")
    if filters is not None:
        try:
            filter_clause(filters)
        except FilterError as exc:
            raise InvalidRequest(str(exc)) from exc
    return top_k


def visible_document(
    container: Container, principal: Principal, document_id: int
) -> tuple[Document, str, int]:
    """The document, its collection's name and its chunk count; 404 if this key may not see it."""
    names = {i: name for name, i in container.catalog.collection_ids().items()}
    with container.catalog.session() as repo:
        document = repo.get_document(document_id)
        collection = names.get(document.collection_id, "") if document else ""
        if document is None or not principal.can_see(collection):
            raise NotFoundError(f"document {document_id} does not exist")
        return document, collection, len(document.chunks)
