"""Response bodies built from the library's results: one place per shape, shared by the
REST routes and the OpenAI-compatible ones."""

from __future__ import annotations

from api.schemas import (
    AskRequest,
    AskResponse,
    CitationOut,
    DocumentOut,
    JobOut,
    QuestionAnswer,
    Source,
    SupportOut,
    UnverifiedCitationOut,
)
from indexer.jobs import JobInfo
from rag.answering.attribution import SentenceSupport
from rag.answering.service import AnswerResult
from rag.storage.models import Document
from rag.types import Citation, RetrievedChunk


def answer_response(result: AnswerResult, request: AskRequest) -> AskResponse:
    """The /ask body (also the content of the OpenAI-compatible answers) for one result."""
    answer = result.answer
    return AskResponse(
        answers=_per_question(result, request),
        answer=answer.text,
        answerable=answer.answerable,
        abstention_reason=answer.abstention_reason,
        sources=[_source(chunk) for chunk in answer.sources],
        citations=[_citation(citation) for citation in answer.citations],
        unverified_citations=[
            UnverifiedCitationOut(cited_lines=list(item.cited_lines))
            for item in answer.unverified_citations
        ],
        omitted_chunk_ids=[i for chunk in result.omitted for i in chunk.chunk_ids],
        supporting_sentences=[_support(item) for item in result.support],
        raw_answer=answer.raw_answer,
        standalone_question=result.conversation.standalone_question,
        condensation=result.conversation.condensation,
        history_turns_used=result.conversation.history_turns_used,
        dropped_turns=result.conversation.dropped_turns,
        prompt=answer.prompt if request.include_prompt else None,
        timings_ms=answer.timings_ms,
    )


def _per_question(result: AnswerResult, request: AskRequest) -> list[QuestionAnswer] | None:
    if request.questions is None:
        return None
    texts = result.per_question or (None,) * len(request.questions)
    return [
        QuestionAnswer(question=q, answer=a) for q, a in zip(request.questions, texts, strict=True)
    ]


def _source(chunk: RetrievedChunk) -> Source:
    return Source(
        chunk_id=chunk.chunk_id,
        chunk_ids=list(chunk.chunk_ids),
        document_id=chunk.document_id,
        score=chunk.score,
        metadata=chunk.metadata,
        section=chunk.metadata.get("section") or None,
        text=chunk.text,
    )


def _citation(citation: Citation) -> CitationOut:
    return CitationOut(
        chunk_id=citation.chunk_ids[0],
        chunk_ids=list(citation.chunk_ids),
        document_id=citation.document_id,
        metadata=citation.metadata,
        cited_lines=dict(citation.cited_lines),
    )


def _support(item: SentenceSupport) -> SupportOut:
    return SupportOut(
        sentence=item.sentence,
        chunk_id=item.chunk_id,
        document_id=item.document_id,
        source_sentence=item.source_sentence,
        score=item.score,
    )


def job_response(job: JobInfo) -> JobOut:
    return JobOut(**job.__dict__)


def document_response(document: Document, collection: str, chunk_count: int) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        collection=collection,
        source=document.source,
        metadata=document.meta,
        content_hash=document.content_hash,
        chunk_count=chunk_count,
        created_at=document.created_at.isoformat(),
        updated_at=document.updated_at.isoformat(),
    )
