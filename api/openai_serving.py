"""The OpenAI-compatible chat: messages in, the /ask pipeline, OpenAI's bodies out.

- The last message is the question; earlier user and assistant messages are the
  conversation (rag.generation.conversation); system and developer messages are not sent to the
  model, which keeps the service's system prompt and BEGININPUT instruction.
- A model id names what is searched: ``rag`` every collection the key may see,
  ``rag/<collection>`` one of them.
- ``content`` is what the model wrote (its citation trailer included, as streamed); when
  nothing grounded it, a sentence saying why. The parsed answer, sources and verified
  citations are in the ``rag`` extension field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from api.auth import visible_collections
from api.errors import InvalidRequest, ModelNotFound
from api.openai_errors import error_response
from api.openai_protocol import (
    ALL_COLLECTIONS_MODEL,
    COLLECTION_MODEL_PREFIX,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageOut,
    Choice,
    ChunkChoice,
    DeltaMessage,
    ModelCard,
    ModelList,
    Usage,
)
from api.presenters import answer_response  # the /ask body: one shape for both APIs
from api.schemas import MAX_TURN_CHARS, AskRequest, AskResponse
from rag.access.api_keys import Principal
from rag.answering.service import AnswerResult, AnswerService, PreparedAnswer
from rag.generation.conversation import GenerationOptions
from rag.types import Turn

OWNED_BY = "contextual-rag"
MAX_STOP_SEQUENCES = 4
NOT_ANSWERED = "I could not answer this from the documents: {reason}."


def model_list(principal: Principal, created: dict[str, datetime], started: int) -> ModelList:
    """One model for every visible collection, and ``rag`` for all of them."""
    names = principal.visible(sorted(created))
    cards = [ModelCard(id=ALL_COLLECTIONS_MODEL, created=started, owned_by=OWNED_BY)]
    cards += [
        ModelCard(
            id=f"{COLLECTION_MODEL_PREFIX}{name}",
            created=int(created[name].timestamp()),
            owned_by=OWNED_BY,
        )
        for name in names
    ]
    return ModelList(data=cards)


def collections_for(
    model: str, principal: Principal, existing: Sequence[str], requested: Sequence[str] | None
) -> list[str]:
    """The collections a model id (and the optional ``collections`` field) searches."""
    if model == ALL_COLLECTIONS_MODEL:
        return visible_collections(principal, existing, requested)
    name = model.removeprefix(COLLECTION_MODEL_PREFIX)
    if (
        not model.startswith(COLLECTION_MODEL_PREFIX)
        or name not in existing
        or not principal.can_see(name)
    ):
        raise ModelNotFound(
            f"the model {model!r} does not exist; GET /v1/models lists the models of this key"
        )
    if requested is not None and list(dict.fromkeys(requested)) != [name]:
        raise InvalidRequest(
            f"collections must be left out with model {model!r} (it searches {name!r} only); "
            f"use model {ALL_COLLECTIONS_MODEL!r} to choose collections",
            "collections",
        )
    return [name]


def conversation_of(
    request: ChatCompletionRequest, max_question_chars: int
) -> tuple[str, list[Turn]]:
    """The question (last message) and the earlier user and assistant turns."""
    turns: list[Turn] = []
    for position, message in enumerate(request.messages):
        if message.role in ("tool", "function"):
            raise InvalidRequest(
                f"messages.{position}: {message.role} messages are not supported", "messages"
            )
        text = message.text()
        if len(text) > MAX_TURN_CHARS:
            raise InvalidRequest(
                f"messages.{position}: longer than {MAX_TURN_CHARS} characters", "messages"
            )
        if message.role in ("user", "assistant"):
            turns.append(Turn(message.role, text))
    last = request.messages[-1]
    if last.role != "user" or not last.text().strip():
        raise InvalidRequest("the last message must be the user's question, with text", "messages")
    question = turns.pop().content
    if len(question) > max_question_chars:
        raise InvalidRequest(
            f"the question is longer than {max_question_chars} characters", "messages"
        )
    return question, turns


def generation_options(request: ChatCompletionRequest) -> GenerationOptions:
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stop) > MAX_STOP_SEQUENCES or any(not item for item in stop):
        raise InvalidRequest(f"stop takes at most {MAX_STOP_SEQUENCES} non-empty sequences", "stop")
    return GenerationOptions(
        max_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=request.temperature,
        stop=tuple(stop),
    )


def content_of(result: AnswerResult) -> str:
    answer = result.answer
    if answer.raw_answer.strip():
        return answer.raw_answer
    return NOT_ANSWERED.format(reason=answer.abstention_reason or "the model produced no answer")


def extension(result: AnswerResult, question: str) -> AskResponse:
    return answer_response(result, AskRequest(question=question))


def _finish_reason(result: AnswerResult) -> str:
    return "length" if result.usage.finish_reason == "length" else "stop"


def _usage(result: AnswerResult) -> Usage:
    usage = result.usage
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def completion(result: AnswerResult, question: str, model: str) -> ChatCompletion:
    message = ChatMessageOut(content=content_of(result), rag=extension(result, question))
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(message=message, finish_reason=_finish_reason(result))],  # type: ignore[arg-type]
        usage=_usage(result),
    )


async def chunks(
    answers: AnswerService, prepared: PreparedAnswer, question: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """``data:`` lines of chat.completion.chunk events, ending with ``data: [DONE]``."""
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        body = ChatCompletionChunk(
            id=chunk_id, created=created, model=model, choices=choices, usage=usage
        )
        data = body.model_dump(mode="json")
        for choice in data["choices"]:
            choice["delta"] = {
                key: value for key, value in choice["delta"].items() if value is not None
            }
        if not include_usage:
            data.pop("usage")
        return f"data: {json.dumps(data)}\n\n"

    yield event([ChunkChoice(delta=DeltaMessage(role="assistant", content=""))])
    try:
        if prepared.abstained is not None:
            result = prepared.abstained
        else:
            parts = []
            async for token in answers.stream(prepared):
                parts.append(token)
                yield event([ChunkChoice(delta=DeltaMessage(content=token))])
            result = await answers.finish(prepared, "".join(parts))
        if not result.answer.raw_answer.strip():
            yield event([ChunkChoice(delta=DeltaMessage(content=content_of(result)))])
        last = ChunkChoice(
            delta=DeltaMessage(rag=extension(result, question)),
            finish_reason=_finish_reason(result),  # type: ignore[arg-type]
        )
        yield event([last])
        if include_usage:
            yield event([], _usage(result))
    except Exception as exc:  # the status is sent: the error goes in the stream, as OpenAI does
        yield f"data: {bytes(error_response(exc).body).decode()}\n\n"
    yield "data: [DONE]\n\n"
