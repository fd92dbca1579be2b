"""GET /jobs/{id}: progress and outcome of a document sent to POST /documents."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path

from api.auth import PrincipalDep
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES
from api.presenters import job_response
from api.schemas import JobOut
from rag.errors import NotFoundError

router = APIRouter(tags=["documents"])


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERROR_RESPONSES)
async def get_job(
    job_id: Annotated[str, Path(max_length=64)], container: ContainerDep, principal: PrincipalDep
) -> JobOut:
    job = await anyio.to_thread.run_sync(container.jobs.get, job_id)
    if job is None or not principal.can_see(job.collection):
        raise NotFoundError(f"job {job_id} does not exist")
    return job_response(job)
