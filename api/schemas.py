"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from indexer.jobs import JobStatus
from rag.collections.names import COLLECTION_NAME_PATTERN
from rag.config import RetrievalMode
from rag.generation.conversation import CondensationMethod
from rag.retrieval.filters import FIELD_PATTERN
from rag.types import Role

# Ids and offsets fit a 32-bit SQL integer (PostgreSQL's INTEGER): larger ones are 422, not 500.
MAX_SQL_INT = 2**31 - 1
DocumentId = Annotated[int, Field(ge=1, le=MAX_SQL_INT, description="A document's id.")]

CollectionName = Annotated[
    str, StringConstraints(pattern=COLLECTION_NAME_PATTERN), Field(examples=["default"])
]


FilterField = Annotated[
    str,
    StringConstraints(pattern=FIELD_PATTERN),
    Field(description="A metadata field name: a letter, digit or _, then up to 127 of those, spaces and "
          ". , : ; / @ + # $ % & ( ) ' * ! ? = ~ -"),
]  # fmt: skip


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


MAX_HISTORY_TURNS = 200
MAX_TURN_CHARS = 50_000


class ChatTurn(StrictModel):
    """An earlier turn of a conversation, as the client kept it."""

    role: Role
    content: str = Field(max_length=MAX_TURN_CHARS)


class AskRequest(StrictModel):
    question: str | None = Field(
        default=None, min_length=1, description="The question to answer from the indexed documents."
    )
    questions: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Several questions instead of one: sent in one instruction block, answered per question.",
    )
    top_k: int | None = Field(
        default=None, ge=1, description="How many chunks to retrieve (default from settings)."
    )
    include_prompt: bool = Field(
        default=False, description="Return the exact prompt sent to the model."
    )
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events: `token` events ({text}) as the model writes, then one "
        "`done` event holding the whole AskResponse (or an `error` event).",
    )
    mode: RetrievalMode | None = Field(
        default=None, description="Retrieval mode; default from settings (hybrid)."
    )
    collections: list[CollectionName] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Collections to search; default: every collection the API key may see.",
    )
    filters: dict[FilterField, Any] | None = Field(
        default=None,
        description=(
            "Metadata filters: a field maps to a value (equality) or to operators eq, ne, in, nin, "
            'gt, gte, lt, lte, e.g. {"date": {"gte": "2025-01-01"}, "source": {"in": ["/a.md"]}}. '
            "Top-k then returns k matching chunks."
        ),
        examples=[{"date": {"gte": "2025-01-01"}, "author": "Jane Doe"}],
    )

    messages: list[ChatTurn] | None = Field(
        default=None,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns of the conversation, oldest first (the question is the next user turn). "
        "Retrieval then searches a standalone rewrite of the question; the newest turns that fit the "
        "history budget go to the model before it.",
    )

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _not_blank(value)

    @field_validator("questions")
    @classmethod
    def _questions_not_blank(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_not_blank(item) for item in value]

    @model_validator(mode="after")
    def _one_of_question_or_questions(self) -> AskRequest:
        if (self.question is None) == (self.questions is None):
            raise ValueError("give either question (one) or questions (several)")
        if self.messages and self.questions is not None:
            raise ValueError("messages (a conversation) go with one question, not with questions")
        return self

    @property
    def asked(self) -> str | list[str]:
        return self.question if self.question is not None else list(self.questions or [])


class Source(BaseModel):
    """One passage sent to the model: one BEGININPUT block."""

    chunk_id: int = Field(description="The passage's first chunk.")
    chunk_ids: list[int] = Field(
        description="Every chunk the passage covers: adjacent chunks of one document are sent as one block."
    )
    document_id: int
    score: float = Field(
        description="Retrieval score: cosine similarity (dense), BM25 score, or fused RRF score (hybrid)."
    )
    metadata: dict[str, Any]
    section: str | None = Field(
        default=None,
        description="Where in the document the passage sits: its heading path, slide title or PDF outline entry.",
    )
    text: str


class CitationOut(BaseModel):
    chunk_id: int = Field(description="The cited block's first chunk.")
    chunk_ids: list[int] = Field(description="Every chunk of the cited block.")
    document_id: int
    metadata: dict[str, Any]
    cited_lines: dict[str, str] = Field(
        description="The metadata lines the model wrote, as it wrote them."
    )


class UnverifiedCitationOut(BaseModel):
    cited_lines: list[tuple[str, str]] = Field(
        description="Cited lines that match no block that was sent."
    )


class SupportOut(BaseModel):
    sentence: str = Field(description="A sentence of the answer.")
    chunk_id: int
    document_id: int
    source_sentence: str = Field(description="The sentence of that sent chunk most similar to it.")
    score: float = Field(
        description="Cosine similarity of the two (embedder); low means unsupported."
    )


class QuestionAnswer(BaseModel):
    question: str
    answer: str | None = Field(
        description="The model's numbered answer to it; null when it gave none."
    )


class AskResponse(BaseModel):
    answer: str = Field(description="The model's answer, without its citation trailer.")
    answerable: bool = Field(
        description="False when nothing relevant was found or the model declined."
    )
    abstention_reason: str | None = None
    sources: list[Source] = Field(description="The chunks sent to the model, best first.")
    citations: list[CitationOut] = Field(
        description="Sources the model cited, matched to the blocks sent."
    )
    unverified_citations: list[UnverifiedCitationOut] = Field(default_factory=list)
    omitted_chunk_ids: list[int] = Field(
        default_factory=list, description="Retrieved chunks left out to fit the model's context."
    )
    answers: list[QuestionAnswer] | None = Field(
        default=None, description="With `questions`: the answer split per question."
    )
    supporting_sentences: list[SupportOut] = Field(
        default_factory=list,
        description="For each answer sentence, the best-matching sentence of the chunks sent (by the embedder).",
    )
    raw_answer: str = Field(description="The model's output exactly as generated.")
    standalone_question: str | None = Field(
        default=None,
        description="With earlier turns: the question retrieval searched (the follow-up rewritten).",
    )
    condensation: CondensationMethod = Field(
        default="none",
        description="How standalone_question was made: by the model, or (fallback) the last user turn and "
        "the follow-up joined when the model gave nothing usable.",
    )
    history_turns_used: int = Field(default=0, description="Earlier turns sent to the model.")
    dropped_turns: int = Field(
        default=0, description="Earlier turns left out to fit the budget, oldest first."
    )
    prompt: str | None = Field(
        default=None,
        description="The exact prompt (the final user turn), when include_prompt is true.",
    )
    timings_ms: dict[str, float]


class SummarizeRequest(StrictModel):
    text: str | None = Field(default=None, min_length=1, description="The text to summarize.")
    document_id: int | None = Field(
        default=None, ge=1, le=MAX_SQL_INT, description="Or an indexed document to summarize."
    )
    words: int = Field(
        default=130, ge=10, le=1000, description="Target length of the summary in words."
    )
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events: `token` events, then a `done` event with the SummarizeResponse.",
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _not_blank(value)

    @model_validator(mode="after")
    def _one_of_text_or_document(self) -> SummarizeRequest:
        if (self.text is None) == (self.document_id is None):
            raise ValueError("give either text or document_id")
        return self


class SummarizeResponse(BaseModel):
    summary: str
    rounds: int = Field(description="1 when the text fit the context; more for map-reduce.")


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    database: ComponentHealth
    index: ComponentHealth
    llm: ComponentHealth


class DocumentOut(BaseModel):
    id: int
    collection: str
    source: str
    metadata: dict[str, Any]
    content_hash: str
    chunk_count: int
    created_at: str
    updated_at: str


class DocumentList(BaseModel):
    total: int
    offset: int
    limit: int
    documents: list[DocumentOut]


class ErrorBody(BaseModel):
    type: str = Field(
        description="Machine-readable error kind, e.g. invalid_request, llm_unavailable."
    )
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class JobOut(BaseModel):
    id: str
    collection: str
    source: str
    status: JobStatus
    stage: str = Field(description="What the job is doing: queued, reading, embedding, done, ...")
    attempts: int
    report: dict[str, Any] | None = Field(
        default=None,
        description="The indexing summary: added, updated, unchanged, chunks_embedded, failed.",
    )
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


class CollectionOut(BaseModel):
    name: str
    documents: int


class CollectionList(BaseModel):
    collections: list[CollectionOut]
