"""GET /health: whether the database, the index and the model server are ready."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ContainerDep
from api.schemas import ComponentHealth, HealthResponse
from rag.storage.database import ping

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A component is not ready"}},
)
async def health(container: ContainerDep) -> JSONResponse:
    """200 when every component is ready, 503 (same body) when one is not."""
    try:
        await anyio.to_thread.run_sync(ping, container.knowledge.engine)
        database = ComponentHealth(ok=True, detail=container.knowledge.engine.url.get_backend_name())
        await anyio.to_thread.run_sync(container.knowledge.vector_count)  # opens and refreshes them
        # No sizes here: /health needs no key, and sizes would hint at other teams' collections.
        index = ComponentHealth(ok=True, detail="loaded")
    except SQLAlchemyError as exc:
        database = ComponentHealth(ok=False, detail=f"unreachable: {type(exc).__name__}")
        index = ComponentHealth(ok=False, detail="unknown: the database is unreachable")
    llm_ok = await container.llm.ready()
    llm = ComponentHealth(
        ok=llm_ok, detail=f"{container.llm.base_url} {'ready' if llm_ok else 'not answering'}"
    )
    healthy = database.ok and index.ok and llm.ok
    body = HealthResponse(
        status="ok" if healthy else "degraded", database=database, index=index, llm=llm
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
