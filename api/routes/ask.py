"""POST /ask: a grounded answer with its sources and verified citations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import PrincipalDep, visible_collections
from api.container import Container
from api.deps import ContainerDep
from api.errors import ERROR_RESPONSES, InvalidRequest
from api.schemas import (
    AskRequest,
    AskResponse,
    CitationOut,
    QuestionAnswer,
    Source,
    SupportOut,
    UnverifiedCitationOut,
)
from api.streaming import STREAM_RESPONSES, done_event, event_stream, token_event
from rag.answering import AnswerWithOmissions
from rag.conversation import Turn
from rag.filters import FilterError, filter_clause

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
            raise InvalidRequest(f"question is longer than {limits.api.max_question_chars} characters")
    top_k = check_retrieval_options(container, request.top_k, request.filters)
    existing = await anyio.to_thread.run_sync(container.knowledge.collection_names)
    collections = visible_collections(principal, existing, request.collections)
    answers = container.answers
    history = [Turn(turn.role, turn.content) for turn in request.messages or []]
    if not request.stream:
        result = await answers.ask(asked, top_k, request.mode, request.filters, collections, history)
        return to_response(result, request)

    prepared = await answers.prepare(asked, top_k, request.mode, request.filters, collections, history)

    async def events() -> AsyncIterator[ServerSentEvent]:
        if prepared.abstained is not None:
            yield done_event(to_response(prepared.abstained, request).model_dump())
            return
        parts = []
        async for token in answers.stream(prepared):
            parts.append(token)
            yield token_event(token)
        result = await answers.finish(prepared, "".join(parts))
        yield done_event(to_response(result, request).model_dump())

    return event_stream(events)


def check_retrieval_options(container: Container, top_k: int | None, filters: dict[str, Any] | None) -> int:
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


def to_response(result: AnswerWithOmissions, request: AskRequest) -> AskResponse:
    answer = result.answer
    answers = None
    if request.questions is not None:
        texts = result.per_question or (None,) * len(request.questions)
        answers = [QuestionAnswer(question=q, answer=a) for q, a in zip(request.questions, texts, strict=True)]
    return AskResponse(
        answers=answers,
        answer=answer.answer,
        answerable=answer.answerable,
        abstention_reason=answer.abstention_reason,
        sources=[
            Source(
                chunk_id=chunk.chunk_id,
                chunk_ids=list(chunk.chunk_ids),
                document_id=chunk.document_id,
                score=chunk.score,
                metadata=chunk.metadata,
                section=chunk.metadata.get("section") or None,
                text=chunk.text,
            )
            for chunk in answer.sources
        ],
        citations=[
            CitationOut(
                chunk_id=citation.chunk_ids[0],
                chunk_ids=list(citation.chunk_ids),
                document_id=citation.document_id,
                metadata=citation.metadata,
                cited_lines=dict(citation.cited_lines),
            )
            for citation in answer.citations
        ],
        unverified_citations=[
            UnverifiedCitationOut(cited_lines=list(item.cited_lines)) for item in answer.unverified_citations
        ],
        omitted_chunk_ids=[i for chunk in result.omitted for i in chunk.chunk_ids],
        supporting_sentences=[
            SupportOut(
                sentence=item.sentence,
                chunk_id=item.chunk_id,
                document_id=item.document_id,
                source_sentence=item.source_sentence,
                score=item.score,
            )
            for item in result.support
        ],
        raw_answer=answer.raw_answer,
        standalone_question=result.conversation.standalone_question,
        condensation=result.conversation.condensation,
        history_turns_used=result.conversation.history_turns_used,
        dropped_turns=result.conversation.dropped_turns,
        prompt=answer.prompt if request.include_prompt else None,
        timings_ms=answer.timings_ms,
    )
