"""POST /summarize: a summary in bagel's summarization format."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest
from api.schemas import SummarizeRequest, SummarizeResponse
from api.streaming import STREAM_RESPONSES, done_event, event_stream, token_event
from rag.summarization import Summary

router = APIRouter(tags=["summaries"])


@router.post("/summarize", response_model=SummarizeResponse, responses={**ERROR_RESPONSES, **STREAM_RESPONSES})
async def summarize(request: SummarizeRequest, container: ContainerDep) -> SummarizeResponse | EventSourceResponse:
    """Summarize the text in around `words` words; text longer than the model's
    context is summarized in pieces, then the pieces' summaries together."""
    limit = container.settings.api.max_summarize_chars
    if len(request.text) > limit:
        raise InvalidRequest(f"text is longer than {limit} characters")
    if not request.stream:
        summary = await container.summarizer.summarize(request.text, request.words)
        return SummarizeResponse(summary=summary.summary, rounds=summary.rounds)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for item in container.summarizer.stream(request.text, request.words):
            if isinstance(item, Summary):
                yield done_event(SummarizeResponse(summary=item.summary, rounds=item.rounds).model_dump())
            else:
                yield token_event(item)

    return event_stream(events)
