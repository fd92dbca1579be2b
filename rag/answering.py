"""Answers a question from retrieved chunks: prompt, generate, parse citations."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from rag.abstention import is_refusal
from rag.citations import match_citations, parse_answer
from rag.config import LLMSettings, RetrievalMode
from rag.context_budget import ContextBudget
from rag.filters import MetadataFilters
from rag.llm.client import OpenAICompatibleLLM
from rag.prompts import build_blocks, contextual_prompt, question_instruction, render_block
from rag.retrieval import Retriever
from rag.types import Answer, RetrievedChunk

NOTHING_RETRIEVED = "no indexed chunk was retrieved for the question"
MODEL_DECLINED = "the model said the context does not contain the answer"
NO_ANSWER = "the model produced no answer"


@dataclass(frozen=True)
class AnswerWithOmissions:
    answer: Answer
    omitted: tuple[RetrievedChunk, ...]


class AnswerService:
    def __init__(
        self,
        retriever: Retriever,
        llm: OpenAICompatibleLLM,
        settings: LLMSettings,
        budget: ContextBudget,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.settings = settings
        self.budget = budget

    async def ask(
        self,
        question: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        filters: MetadataFilters | None = None,
    ) -> AnswerWithOmissions:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        chunks = await anyio.to_thread.run_sync(
            self.retriever.retrieve, question, top_k, mode, filters
        )
        timings["retrieve_ms"] = _ms_since(started)
        if not chunks:
            return AnswerWithOmissions(_abstain(NOTHING_RETRIEVED, timings), ())

        blocks = build_blocks(chunks)
        self.budget.context_length = await self.llm.context_length(self.budget.context_length)
        instruction = question_instruction(question)
        kept, left_out = await anyio.to_thread.run_sync(
            self.budget.fit, blocks, render_block, instruction
        )
        prompt = contextual_prompt(kept, question)
        timings["prompt_ms"] = _ms_since(started) - timings["retrieve_ms"]

        generated_at = time.perf_counter()
        generation = await self.llm.generate(
            prompt, self.settings.system_prompt, self.settings.max_answer_tokens, self.settings.temperature
        )
        timings["generate_ms"] = _ms_since(generated_at)

        parsed = parse_answer(generation.text)
        citations, unverified = match_citations(parsed.cited_groups, kept)
        reason = None if parsed.body else NO_ANSWER
        if reason is None and is_refusal(parsed.body):
            reason = MODEL_DECLINED
        timings["total_ms"] = _ms_since(started)
        answer = Answer(
            answer=parsed.body,
            raw_answer=generation.text,
            sources=tuple(chunk for block in kept for chunk in block.chunks),
            citations=tuple(citations),
            unverified_citations=tuple(unverified),
            prompt=prompt,
            answerable=reason is None,
            abstention_reason=reason,
            timings_ms=timings,
        )
        omitted = tuple(chunk for block in left_out for chunk in block.chunks)
        return AnswerWithOmissions(answer, omitted)


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
