"""Bearer API keys on every endpoint but /health and /config, and what each key may see.

A collection a key may not see is reported exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ContainerDep
from rag.access.api_keys import Principal
from rag.errors import NotFoundError, RAGError

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `rag keys create` (or the admin key the first start prints).",
)


class AuthenticationError(RAGError):
    """No key, or a key that is unknown or revoked (401)."""


class ForbiddenError(RAGError):
    """The key is valid but the action needs an admin key (403)."""


async def current_principal(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if container.settings.api.auth == "off":
        principal = Principal.unrestricted()
    elif credentials is None or not credentials.credentials:
        raise AuthenticationError("an API key is required: send `Authorization: Bearer <key>`")
    else:
        found = await anyio.to_thread.run_sync(container.keys.authenticate, credentials.credentials)
        if found is None:
            raise AuthenticationError("the API key is unknown or revoked")
        principal = found
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise ForbiddenError("this needs an admin key")


def collection_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"collection {name!r} does not exist")


def visible_collections(
    principal: Principal, existing: Sequence[str], requested: Sequence[str] | None
) -> list[str]:
    """The collections to search: the requested ones (each must be visible and exist),
    or every visible one when none is requested."""
    if requested is None:
        return principal.visible(existing)
    for name in requested:
        if name not in existing or not principal.can_see(name):
            raise collection_not_found(name)
    return list(dict.fromkeys(requested))
