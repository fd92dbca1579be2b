"""Request and response bodies of the OpenAI-compatible routes (``/v1/...``).

The shapes are OpenAI's (``chat.completion``, ``chat.completion.chunk``, the model list,
the error body), so that its clients parse them unchanged. What this service adds travels
in one extension field, ``rag`` (an ``AskResponse``: sources, citations, unverified
citations, ``answerable``, ...), on the message and on the last chunk's delta: strict clients
ignore it. Unknown request fields (``top_p``, ``user``, ``seed``, ...) are accepted and
ignored, as clients send many.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import MAX_HISTORY_TURNS, MAX_TURN_CHARS, AskResponse, CollectionName
from rag.config import RetrievalMode

ALL_COLLECTIONS_MODEL = "rag"
COLLECTION_MODEL_PREFIX = "rag/"


class ContentPart(BaseModel):
    """One part of a message's content; only ``text`` parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = Field(default=None, max_length=MAX_TURN_CHARS)


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(
        max_length=200,
        description=f"`{ALL_COLLECTIONS_MODEL}` (every collection the key may see) or "
        f"`{COLLECTION_MODEL_PREFIX}<collection>` (see GET /v1/models).",
        examples=[ALL_COLLECTIONS_MODEL],
    )
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        max_length=MAX_HISTORY_TURNS,
        description="The conversation; the last message is the user's question. System messages are "
        "not sent to the model (the service keeps its own system prompt and instruction).",
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(
        default=None,
        ge=0,
        le=2,
        description="Capped at the service's limit for contextual answers (0.3).",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Capped at the service's answer budget (RAG_LLM__MAX_ANSWER_TOKENS).",
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, description="Newer name of max_tokens."
    )
    stop: str | list[str] | None = Field(default=None, description="Up to 4 more stop sequences.")
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is generated.")
    # Retrieval options (extension fields; the openai SDK sends them with `extra_body`).
    top_k: int | None = Field(default=None, ge=1, description="How many chunks to retrieve.")
    filters: dict[str, Any] | None = Field(
        default=None, description="Metadata filters, as on POST /ask."
    )
    collections: list[CollectionName] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Collections to search (with model `rag`).",
    )
    mode: RetrievalMode | None = None


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    rag: AskResponse = Field(
        description="Sources, citations, answerable, ... (this service's extension)."
    )


class Choice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    rag: AskResponse | None = Field(default=None, description="On the last chunk's delta only.")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice] = Field(description="Empty only in the usage chunk.")
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, "
                      "not_found_error, server_error")  # fmt: skip
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorBody
