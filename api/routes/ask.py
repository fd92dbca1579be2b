"""POST /ask: a grounded answer with its sources and verified citations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.access import check_retrieval_options
from api.auth import PrincipalDep, visible_collections
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest
from api.presenters import answer_response
from api.schemas import AskRequest, AskResponse
from api.streaming import STREAM_RESPONSES, done_event, event_stream, token_event
from rag.answering.request import AnswerRequest
from rag.types import Turn

router = APIRouter(tags=["questions"])


@router.post("/ask", response_model=AskResponse, responses={**ERROR_RESPONSES, **STREAM_RESPONSES})
async def ask(
    request: AskRequest, container: ContainerDep, principal: PrincipalDep
) -> AskResponse | EventSourceResponse:
    """Retrieve the chunks closest to the question, send them to the model in bagel's
    BEGININPUT/BEGINCONTEXT format, and return its answer with the cited sources."""
    limits = container.settings
    asked = request.asked
    for text in [asked] if isinstance(asked, str) else asked:
        if len(text) > limits.api.max_question_chars:
            raise InvalidRequest(
                f"question is longer than {limits.api.max_question_chars} characters"
            )
    top_k = check_retrieval_options(container, request.top_k, request.filters)
    existing = await anyio.to_thread.run_sync(container.catalog.collection_names)
    collections = visible_collections(principal, existing, request.collections)
    answers = container.answers
    history = [Turn(turn.role, turn.content) for turn in request.messages or []]
    wanted = AnswerRequest.of(
        asked, top_k, mode=request.mode, filters=request.filters,
        collection_names=collections, history=history,
    )  # fmt: skip
    if not request.stream:
        return answer_response(await answers.ask(wanted), request)

    prepared = await answers.prepare(wanted)

    async def events() -> AsyncIterator[ServerSentEvent]:
        if prepared.abstained is not None:
            yield done_event(answer_response(prepared.abstained, request).model_dump())
            return
        parts = []
        async for token in answers.stream(prepared):
            parts.append(token)
            yield token_event(token)
        result = await answers.finish(prepared, "".join(parts))
        yield done_event(answer_response(result, request).model_dump())

    return event_stream(events)
