"""OpenAI-compatible routes: GET /v1/models, GET /v1/models/{model}, POST /v1/chat/completions.

Chat clients (the openai SDK, Open WebUI, LibreChat, simonw's llm, LangChain's ChatOpenAI)
talk to the catalog base unchanged: base URL ``http://HOST:PORT/v1``, an API key of
this service, a model from /v1/models. Errors on these routes use OpenAI's shape.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.access import check_retrieval_options
from api.auth import PrincipalDep
from api.container import Container
from api.deps import ContainerDep
from api.errors import ModelNotFound
from api.openai_errors import OPENAI_ERROR_RESPONSES, OpenAIRoute
from api.openai_protocol import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from api.openai_serving import (
    chunks,
    collections_for,
    completion,
    conversation_of,
    generation_options,
    model_list,
)
from rag.answering.request import AnswerRequest
from rag.storage import database
from rag.storage.models import Collection

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
STARTED = int(time.time())

STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A chat.completion, or with `stream: true` server-sent `chat.completion.chunk` "
        "events (`data: {...}`), the last with `rag` on its delta, then `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _created_at(container: Container) -> dict[str, datetime]:
    with database.session_scope(container.catalog.shared.sessions) as session:
        return {
            name: created
            for name, created in session.execute(select(Collection.name, Collection.created_at))
        }


@router.get("/models", response_model=ModelList, responses=OPENAI_ERROR_RESPONSES)
async def list_models(container: ContainerDep, principal: PrincipalDep) -> ModelList:
    """`rag` searches every collection this key may see; `rag/<collection>` one of them."""
    created = await anyio.to_thread.run_sync(_created_at, container)
    return model_list(principal, created, STARTED)


@router.get("/models/{model:path}", response_model=ModelCard, responses=OPENAI_ERROR_RESPONSES)
async def get_model(model: str, container: ContainerDep, principal: PrincipalDep) -> ModelCard:
    created = await anyio.to_thread.run_sync(_created_at, container)
    for card in model_list(principal, created, STARTED).data:
        if card.id == model:
            return card
    raise ModelNotFound(
        f"the model {model!r} does not exist; GET /v1/models lists the models of this key"
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={**OPENAI_ERROR_RESPONSES, **STREAM_RESPONSE},
)
async def chat_completions(
    request: ChatCompletionRequest, container: ContainerDep, principal: PrincipalDep
) -> ChatCompletion | StreamingResponse:
    """Answers the last user message from the documents, as POST /ask does (retrieval, the
    BEGININPUT prompt, verified citations, abstention), with the earlier messages as the
    conversation. Sources and citations are in the `rag` extension field."""
    settings = container.settings
    question, history = conversation_of(request, settings.api.max_question_chars)
    options = generation_options(request)
    top_k = check_retrieval_options(container, request.top_k, request.filters)
    existing = await anyio.to_thread.run_sync(container.catalog.collection_names)
    collections = collections_for(request.model, principal, existing, request.collections)
    answers = container.answers
    wanted = AnswerRequest.of(
        question, top_k, mode=request.mode, filters=request.filters,
        collection_names=collections, history=history, options=options,
    )  # fmt: skip
    if not request.stream:
        return completion(await answers.ask(wanted), question, request.model)
    prepared = await answers.prepare(wanted)
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    return StreamingResponse(
        chunks(answers, prepared, question, request.model, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
