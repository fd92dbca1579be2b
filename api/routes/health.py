"""GET /health: whether the database, the index and the model server are ready.

No key is needed, so an anonymous answer names nothing internal (no database
backend, no model server address, no sizes); an admin key (or auth off) also
gets those details.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.exc import SQLAlchemyError

from api.auth import bearer
from api.container import Container
from api.deps import ContainerDep
from api.schemas import ComponentHealth, HealthResponse
from rag.storage.database import ping

router = APIRouter(tags=["service"])


async def _is_admin(container: Container, credentials: HTTPAuthorizationCredentials | None) -> bool:
    if container.settings.api.auth == "off":
        return True
    if credentials is None or not credentials.credentials:
        return False
    principal = await anyio.to_thread.run_sync(container.keys.authenticate, credentials.credentials)
    return principal is not None and principal.admin


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A component is not ready"}},
)
async def health(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> JSONResponse:
    """200 when every component is ready, 503 (same body) when one is not. Details such as the
    database backend and the model server's address only for an admin key."""
    admin = await _is_admin(container, credentials)
    try:
        await anyio.to_thread.run_sync(ping, container.catalog.engine)
        backend = container.catalog.engine.url.get_backend_name()
        database = ComponentHealth(ok=True, detail=backend if admin else "ready")
        await anyio.to_thread.run_sync(container.catalog.vector_count)  # opens and refreshes them
        # No sizes here: /health needs no key, and sizes would hint at other teams' collections.
        index = ComponentHealth(ok=True, detail="loaded")
    except SQLAlchemyError as exc:
        database = ComponentHealth(
            ok=False, detail=f"unreachable: {type(exc).__name__}" if admin else "unreachable"
        )
        index = ComponentHealth(ok=False, detail="unknown: the database is unreachable")
    llm_ok = await container.llm.ready()
    state = "ready" if llm_ok else "not answering"
    llm = ComponentHealth(ok=llm_ok, detail=f"{container.llm.base_url} {state}" if admin else state)
    healthy = database.ok and index.ok and llm.ok
    body = HealthResponse(
        status="ok" if healthy else "degraded", database=database, index=index, llm=llm
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
