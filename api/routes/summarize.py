"""POST /summarize: a summary in bagel's summarization format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.access import visible_document
from api.auth import PrincipalDep
from api.container import Container
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest
from api.schemas import SummarizeRequest, SummarizeResponse
from api.streaming import STREAM_RESPONSES, done_event, event_stream, token_event
from rag.access.api_keys import Principal
from rag.answering.summarization import Summary
from rag.errors import NotFoundError

router = APIRouter(tags=["summaries"])


@router.post(
    "/summarize",
    response_model=SummarizeResponse,
    responses={**ERROR_RESPONSES, **STREAM_RESPONSES},
)
async def summarize(
    request: SummarizeRequest, container: ContainerDep, principal: PrincipalDep
) -> SummarizeResponse | EventSourceResponse:
    """Summarize the text (or an indexed document) in around `words` words; text longer than the model's
    context is summarized in pieces, then the pieces' summaries together."""
    if request.document_id is not None:
        text = await anyio.to_thread.run_sync(
            _document_text, container, principal, request.document_id
        )
    else:
        text = request.text or ""
        limit = container.settings.api.max_summarize_chars
        if len(text) > limit:
            raise InvalidRequest(f"text is longer than {limit} characters")
    if not request.stream:
        summary = await container.summarizer.summarize(text, request.words)
        return SummarizeResponse(summary=summary.text, rounds=summary.rounds)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for item in container.summarizer.stream(text, request.words):
            if isinstance(item, Summary):
                yield done_event(
                    SummarizeResponse(summary=item.text, rounds=item.rounds).model_dump()
                )
            else:
                yield token_event(item)

    return event_stream(events)


def _document_text(container: Container, principal: Principal, document_id: int) -> str:
    visible_document(container, principal, document_id)
    with container.catalog.session() as repo:
        text = repo.document_text(document_id)
    if text is None:
        raise NotFoundError(f"document {document_id} does not exist")
    return text
