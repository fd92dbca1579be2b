"""GET /collections: the collections this key may see."""

from __future__ import annotations

import anyio
from fastapi import APIRouter

from api.auth import PrincipalDep
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES
from api.schemas import CollectionList, CollectionOut

router = APIRouter(tags=["documents"])


@router.get("/collections", response_model=CollectionList, responses=ERROR_RESPONSES)
async def list_collections(container: ContainerDep, principal: PrincipalDep) -> CollectionList:
    def load() -> CollectionList:
        ids = container.catalog.collection_ids()
        with container.catalog.session() as repo:
            return CollectionList(
                collections=[
                    CollectionOut(name=name, documents=repo.count_documents([ids[name]]))
                    for name in principal.visible(sorted(ids))
                ]
            )

    return await anyio.to_thread.run_sync(load)
