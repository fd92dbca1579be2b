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
from rag.answering.service import AnswerWithOmissions
from rag.storage.models import Document


def answer_response(result: AnswerWithOmissions, request: AskRequest) -> AskResponse:
    answer = result.answer
    answers = None
    if request.questions is not None:
        texts = result.per_question or (None,) * len(request.questions)
        answers = [QuestionAnswer(question=q, answer=a) for q, a in zip(request.questions, texts, strict=True)]
    return AskResponse(
        answers=answers,
        answer=answer.text,
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
