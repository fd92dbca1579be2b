"""Answers a question from retrieved chunks: prompt, generate, parse citations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio

from rag.abstention import is_refusal
from rag.attribution import SentenceSupport, attribute
from rag.citations import match_citations, parse_answer
from rag.config import LLMSettings, RetrievalMode
from rag.context_budget import ContextBudget
from rag.filters import MetadataFilters
from rag.llm.client import OpenAICompatibleLLM
from rag.multi_question import interleave, numbered_questions, split_numbered_answers
from rag.prompts import (
    build_blocks,
    contextual_prompt,
    instruction_template,
    question_instruction,
    render_block,
)
from rag.retrieval import Retriever
from rag.sentence_vectors import SentenceVectorCache
from rag.telemetry import collect_stages, record_stage
from rag.types import Answer, PromptBlock, RetrievedChunk

NOTHING_RETRIEVED = "no indexed chunk was retrieved for the question"
NOTHING_RELEVANT = "nothing relevant enough to the question was found"
MODEL_DECLINED = "the model said the context does not contain the answer"
NO_ANSWER = "the model produced no answer"


@dataclass(frozen=True)
class AnswerWithOmissions:
    answer: Answer
    omitted: tuple[RetrievedChunk, ...]
    support: tuple[SentenceSupport, ...] = ()
    per_question: tuple[str | None, ...] = ()  # answers split by number, for several questions


@dataclass
class PreparedAnswer:
    started: float
    timings: dict[str, float]
    kept: list[PromptBlock]
    left_out: list[PromptBlock]
    prompt: str
    abstained: AnswerWithOmissions | None = None
    questions: list[str] = field(default_factory=list)


class AnswerService:
    def __init__(
        self,
        retriever: Retriever,
        llm: OpenAICompatibleLLM,
        settings: LLMSettings,
        budget: ContextBudget,
        sentence_cache: SentenceVectorCache | None = None,
    ) -> None:
        self.retriever = retriever
        self.sentence_cache = sentence_cache
        self.llm = llm
        self.settings = settings
        self.budget = budget
        self.template = instruction_template(settings.ask_for_irrelevant)

    async def ask(
        self,
        question: str | list[str],
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
        collections: Sequence[str] | None = None,
    ) -> AnswerWithOmissions:
        prepared = await self.prepare(question, top_k, mode, filters, collections)
        if prepared.abstained is not None:
            return prepared.abstained
        generated_at = time.perf_counter()
        generation = await self.llm.generate(
            prepared.prompt, self.settings.system_prompt, self.settings.max_answer_tokens, self.settings.temperature
        )
        prepared.timings["generate_ms"] = _ms_since(generated_at)
        return await self.finish(prepared, generation.text)

    async def stream(self, prepared: PreparedAnswer) -> AsyncIterator[str]:
        """The answer's tokens as the model writes them; call ``finish`` with their sum."""
        generated_at = time.perf_counter()
        async for token in self.llm.stream(
            prepared.prompt, self.settings.system_prompt, self.settings.max_answer_tokens, self.settings.temperature
        ):
            yield token
        prepared.timings["generate_ms"] = _ms_since(generated_at)

    async def prepare(
        self,
        question: str | list[str],
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
        collections: Sequence[str] | None = None,
    ) -> PreparedAnswer:
        """Retrieve and build the prompt; ``abstained`` is set when there is nothing to ground on.
        Several questions share one instruction block and the chunks retrieved for each."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        questions = [question] if isinstance(question, str) else list(question)
        with collect_stages() as retrieval_stages:
            found = [
                await anyio.to_thread.run_sync(
                    self.retriever.retrieve_with_relevance, q, top_k, mode, filters, collections
                )
                for q in questions
            ]
        chunks = interleave([chunks for chunks, _ in found], top_k * len(questions))
        scores = [score for _, score in found if score is not None]
        relevance = max(scores) if scores else None
        question = questions[0] if len(questions) == 1 else numbered_questions(questions)
        timings["retrieve_ms"] = _ms_since(started)
        timings.update(retrieval_stages)  # embed_ms, filter_ms, dense_search_ms, keyword_search_ms, ...
        threshold = self.retriever.settings.min_relevance
        reason = None
        if not chunks:
            reason = NOTHING_RETRIEVED
        elif relevance is not None and relevance < threshold:
            reason = f"{NOTHING_RELEVANT} (best similarity {relevance:.2f} < {threshold:.2f})"
        if reason is not None:
            abstained = AnswerWithOmissions(_abstain(reason, timings), ())
            return PreparedAnswer(started, timings, [], [], "", abstained, questions)
        blocks = build_blocks(chunks)
        self.budget.context_length = await self.llm.context_length(self.budget.context_length)
        kept, left_out = await anyio.to_thread.run_sync(
            self.budget.fit, blocks, render_block, question_instruction(question, self.template)
        )
        prompt = contextual_prompt(kept, question, self.template)
        timings["prompt_ms"] = round(_ms_since(started) - timings["retrieve_ms"], 2)
        record_stage("prompt", timings["prompt_ms"] / 1000)
        return PreparedAnswer(started, timings, kept, left_out, prompt, questions=questions)

    async def finish(self, prepared: PreparedAnswer, text: str) -> AnswerWithOmissions:
        """Parse the model's text: answer body, verified citations, sentence support, abstention."""
        text = text.strip()
        parsed = parse_answer(text)
        citations, unverified = match_citations(parsed.cited_groups, prepared.kept)
        attributed_at = time.perf_counter()
        support = await anyio.to_thread.run_sync(
            attribute, parsed.body, prepared.kept, self.retriever.embedder, self.sentence_cache
        )
        prepared.timings["attribute_ms"] = _ms_since(attributed_at)
        reason = None if parsed.body else NO_ANSWER
        if reason is None and is_refusal(parsed.body):
            reason = MODEL_DECLINED
        prepared.timings["total_ms"] = _ms_since(prepared.started)
        answer = Answer(
            answer=parsed.body,
            raw_answer=text,
            sources=tuple(chunk for block in prepared.kept for chunk in block.chunks),
            citations=tuple(citations),
            unverified_citations=tuple(unverified),
            prompt=prepared.prompt,
            answerable=reason is None,
            abstention_reason=reason,
            timings_ms=prepared.timings,
        )
        omitted = tuple(chunk for block in prepared.left_out for chunk in block.chunks)
        per_question: tuple[str | None, ...] = ()
        if len(prepared.questions) > 1:
            per_question = tuple(split_numbered_answers(parsed.body, len(prepared.questions)))
        return AnswerWithOmissions(answer, omitted, tuple(support), per_question)


def _abstain(reason: str, timings: dict[str, float]) -> Answer:
    return Answer(
        answer="",
        raw_answer="",
        sources=(),
        citations=(),
        unverified_citations=(),
        prompt="",
        answerable=False,
        abstention_reason=reason,
        timings_ms=timings,
    )


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
