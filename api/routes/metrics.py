"""GET /metrics: Prometheus text format (admin key)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from api.auth import PrincipalDep, require_admin
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES

router = APIRouter(tags=["service"])

INDEX_VECTORS = Gauge("rag_index_vectors", "Vectors in each collection's index.", ["collection"])
INDEX_DOCUMENTS = Gauge("rag_index_documents", "Documents in each collection.", ["collection"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"},
    },
)
async def metrics(container: ContainerDep, principal: PrincipalDep) -> Response:
    """Requests and latency per route, time per stage (embed, search, generate, ...), model
    tokens in and out, and the size of every collection. Needs an admin key."""
    require_admin(principal)

    def sizes() -> None:
        ids = container.catalog.collection_ids()
        for store in container.catalog.stores():
            INDEX_VECTORS.labels(store.collection).set(store.vectors.size)
        with container.catalog.session() as repo:
            for name, collection_id in ids.items():
                INDEX_DOCUMENTS.labels(name).set(repo.count_documents([collection_id]))

    await anyio.to_thread.run_sync(sizes)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
