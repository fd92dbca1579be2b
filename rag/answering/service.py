"""Answers a question from retrieved chunks: prompt, generate, parse citations."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import anyio

from rag.answering.answer_sentences import AnswerSentenceEmbedder
from rag.answering.attribution import SentenceSupport, attribute, cache_passage_sentences, sentences
from rag.answering.citations import match_citations, parse_answer
from rag.answering.request import AnswerRequest
from rag.answering.sentence_vectors import SentenceVectorCache
from rag.config import MAX_CONTEXTUAL_TEMPERATURE, LLMSettings
from rag.errors import LLMUnavailableError
from rag.generation.abstention import is_refusal
from rag.generation.context_budget import ContextBudget
from rag.generation.conversation import (
    CONDENSE_MAX_TOKENS,
    Condensation,
    ConversationUse,
    FittedHistory,
    GenerationOptions,
    condensation_prompt,
    condensed,
    fallback_question,
    fit_history,
)
from rag.generation.llm import OpenAICompatibleLLM
from rag.generation.multi_question import interleave, numbered_questions, split_numbered_answers
from rag.generation.prompts import (
    build_blocks,
    contextual_prompt,
    instruction_template,
    question_instruction,
    render_block,
)
from rag.protocols import Vectors
from rag.retrieval.retriever import Retriever
from rag.telemetry import collect_stages, record_stage
from rag.types import Answer, PromptBlock, RetrievedChunk, StreamReport, TokenUsage, Turn

logger = logging.getLogger(__name__)

NOTHING_RETRIEVED = "no indexed chunk was retrieved for the question"
NOTHING_RELEVANT = "nothing relevant enough to the question was found"
MODEL_DECLINED = "the model said the context does not contain the answer"
NO_ANSWER = "the model produced no answer"


@dataclass(frozen=True)
class AnswerResult:
    answer: Answer
    omitted: tuple[RetrievedChunk, ...]
    support: tuple[SentenceSupport, ...] = ()
    per_question: tuple[str | None, ...] = ()  # answers split by number, for several questions
    conversation: ConversationUse = ConversationUse()
    usage: TokenUsage = TokenUsage()


@dataclass(frozen=True)
class Retrieved:
    chunks: tuple[RetrievedChunk, ...]
    relevance: float | None  # the best cosine similarity of a chunk to a question


@dataclass(frozen=True)
class FollowedConversation:
    searched: tuple[str, ...]  # what retrieval searches: the questions, or a standalone rewrite
    history: FittedHistory  # the earlier turns sent to the model
    conversation: ConversationUse


@dataclass
class PreparedAnswer:
    started: float
    timings: dict[str, float]
    kept: list[PromptBlock]
    left_out: list[PromptBlock]
    prompt: str
    abstained: AnswerResult | None = None
    questions: list[str] = field(default_factory=list)
    history: FittedHistory = FittedHistory((), 0, 0)
    conversation: ConversationUse = ConversationUse()
    options: GenerationOptions = GenerationOptions()
    usage: StreamReport = field(default_factory=StreamReport)  # every model call, added up
    # The sent passages' sentence vectors, embedded while the model writes (see ``finish``).
    passages_embedded: asyncio.Task[None] | None = None
    # The answer's own sentences, embedded as the model finishes each (see ``stream``).
    answer_sentences: AnswerSentenceEmbedder | None = None


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

    async def ask(self, request: AnswerRequest) -> AnswerResult:
        """Retrieve, generate and finish the answer: ``prepare``, the model, ``finish``."""
        prepared = await self.prepare(request)
        if prepared.abstained is not None:
            return prepared.abstained
        return await self.finish(prepared, await self._whole_answer(prepared))

    async def _whole_answer(self, prepared: PreparedAnswer) -> str:
        """The answer streamed from the model even when the caller wants it whole: its
        sentences are embedded for attribution while the rest is written
        (rag/answering/answer_sentences.py). A stream broken off midway is asked again, as
        the client retries a whole response that broke off (nobody has seen its tokens)."""
        for retries_left in reversed(range(self.llm.max_retries + 1)):
            parts: list[str] = []
            try:
                async for token in self.stream(
                    prepared, self.settings.whole_answer_stream_interval
                ):
                    parts.append(token)
                break
            except LLMUnavailableError:
                if not parts or not retries_left:  # one that never started: the client retried
                    raise
                logger.warning("the model's answer broke off midway; asking again")
                prepared.answer_sentences = AnswerSentenceEmbedder(self.retriever.embedder)
        return "".join(parts)

    async def stream(
        self, prepared: PreparedAnswer, stream_interval: int = 0
    ) -> AsyncIterator[str]:
        """The answer's tokens as the model writes them; call ``finish`` with their sum.
        ``stream_interval``: ask vLLM for that many tokens a chunk (0: one, its default)."""
        generated_at = time.perf_counter()
        report = StreamReport()
        async for token in self.llm.stream(
            prepared.prompt, self.settings.system_prompt, *self._limits(prepared.options),
            history=prepared.history.turns, stop=prepared.options.stop, report=report,
            stream_interval=stream_interval,
        ):  # fmt: skip
            if prepared.answer_sentences is not None:
                prepared.answer_sentences.add(token)
            yield token
        prepared.timings["generate_ms"] = _ms_since(generated_at)
        _add_usage(
            prepared.usage, report.prompt_tokens, report.completion_tokens, report.finish_reason
        )

    def _limits(self, options: GenerationOptions) -> tuple[int, float]:
        """The caller's max_tokens and temperature, never beyond the service's own."""
        max_tokens = min(
            options.max_tokens or self.settings.max_answer_tokens, self.settings.max_answer_tokens
        )
        temperature = (
            self.settings.temperature if options.temperature is None else options.temperature
        )
        return max_tokens, min(temperature, MAX_CONTEXTUAL_TEMPERATURE)

    async def condense(
        self, history: FittedHistory, turns: Sequence[Turn], question: str, usage: StreamReport
    ) -> Condensation:
        """The follow-up as a standalone question for retrieval (see rag.generation.conversation)."""
        shown = history.turns or tuple(turn for turn in turns if turn.content.strip())[-2:]
        if not self.settings.condense_follow_ups:
            return Condensation(fallback_question(shown, question), "fallback")
        generation = await self.llm.generate(
            condensation_prompt(shown, question),
            self.settings.system_prompt,
            CONDENSE_MAX_TOKENS,
            0.0,
        )
        _add_usage(usage, generation.prompt_tokens, generation.completion_tokens, None)
        return condensed(shown, question, generation.text)

    async def prepare(self, request: AnswerRequest) -> PreparedAnswer:
        """Retrieve and build the prompt; ``abstained`` is set when there is nothing to ground on.
        Several questions share one instruction block and the chunks retrieved for each.
        With earlier turns (``history``), retrieval searches a standalone rewrite of the
        question, and the newest turns that fit the budget go to the model before it."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        questions = list(request.questions)
        usage = StreamReport()
        followed = await self._follow_conversation(questions, request.history, usage)
        if request.history and len(questions) == 1:  # a follow-up: its rewrite took this long
            timings["condense_ms"] = _ms_since(started)
        # What retrieval searches: the questions, or a follow-up's standalone rewrite.
        query = replace(request, questions=tuple(followed.searched))
        retrieved = await self._retrieve(query, len(questions), timings)
        timings["retrieve_ms"] = round(_ms_since(started) - timings.get("condense_ms", 0.0), 2)
        reason = self._abstention_reason(retrieved)
        if reason is not None:
            abstained = AnswerResult(
                _abstain(reason, timings),
                (),
                conversation=followed.conversation,
                usage=_usage(usage),
            )
            return PreparedAnswer(started, timings, [], [], "", abstained, questions)
        instruction_question = (
            questions[0] if len(questions) == 1 else numbered_questions(questions)
        )
        kept, left_out, prompt = await self._fit_prompt(
            retrieved.chunks, instruction_question, followed.history
        )
        timings["prompt_ms"] = round(
            _ms_since(started) - timings["retrieve_ms"] - timings.get("condense_ms", 0.0), 2
        )
        record_stage("prompt", timings["prompt_ms"] / 1000)
        return PreparedAnswer(
            started, timings, kept, left_out, prompt, questions=questions,
            history=followed.history, conversation=followed.conversation, options=request.options,
            usage=usage,
            passages_embedded=self._embed_passages_meanwhile(kept),
            answer_sentences=AnswerSentenceEmbedder(self.retriever.embedder),
        )  # fmt: skip

    async def model_budget(self) -> ContextBudget:
        """The budget for the served model's window (asked of the server once, then cached)."""
        length = await self.llm.context_length(self.budget.context_length)
        if length != self.budget.context_length:
            self.budget = replace(self.budget, context_length=length)
        return self.budget

    async def _follow_conversation(
        self, questions: list[str], history: Sequence[Turn], usage: StreamReport
    ) -> FollowedConversation:
        """What retrieval searches, and the earlier turns that go to the model: with history
        (one question only), a standalone rewrite of the question and the newest turns that fit."""
        if not history or len(questions) != 1:
            return FollowedConversation(
                tuple(questions), FittedHistory((), 0, 0), ConversationUse()
            )
        budget = await self.model_budget()
        allowance = min(self.settings.max_history_tokens, budget.prompt_tokens // 2)
        fitted = await anyio.to_thread.run_sync(
            fit_history, history, allowance, budget.count_tokens
        )
        condensation = await self.condense(fitted, history, questions[0], usage)
        conversation = ConversationUse(
            condensation.question, condensation.method, len(fitted.turns), fitted.dropped
        )
        return FollowedConversation((condensation.question,), fitted, conversation)

    async def _retrieve(
        self, query: AnswerRequest, question_count: int, timings: dict[str, float]
    ) -> Retrieved:
        """The chunks of every searched question, interleaved, and the best relevance found."""
        with collect_stages() as retrieval_stages:
            found = [
                await anyio.to_thread.run_sync(
                    self.retriever.retrieve_with_relevance,
                    q,
                    query.top_k,
                    query.mode,
                    query.filters,
                    query.collection_names,
                )  # fmt: skip
                for q in query.questions
            ]
        timings.update(
            retrieval_stages
        )  # embed_ms, filter_ms, dense_search_ms, keyword_search_ms, ...
        chunks = interleave([chunks for chunks, _ in found], query.top_k * question_count)
        scores = [score for _, score in found if score is not None]
        return Retrieved(tuple(chunks), max(scores) if scores else None)

    def _abstention_reason(self, retrieved: Retrieved) -> str | None:
        """Why the model is not asked at all: nothing retrieved, or nothing relevant enough."""
        threshold = self.retriever.settings.min_relevance
        if not retrieved.chunks:
            return NOTHING_RETRIEVED
        if retrieved.relevance is not None and retrieved.relevance < threshold:
            return (
                f"{NOTHING_RELEVANT} (best similarity {retrieved.relevance:.2f} < {threshold:.2f})"
            )
        return None

    async def _fit_prompt(
        self, chunks: Sequence[RetrievedChunk], question: str, history: FittedHistory
    ) -> tuple[list[PromptBlock], list[PromptBlock], str]:
        """The blocks that fit the model's window (best first), those left out, and the prompt."""
        budget = await self.model_budget()
        kept, left_out = await anyio.to_thread.run_sync(
            budget.fit,
            build_blocks(chunks),
            render_block,
            question_instruction(question, self.template),
            history.tokens,
        )
        return kept, left_out, contextual_prompt(kept, question, self.template)

    def _embed_passages_meanwhile(self, kept: list[PromptBlock]) -> asyncio.Task[None] | None:
        """Start embedding the sent passages' sentences for attribution, to run while the model
        generates: the answer then waits only for its own sentences' vectors (issue 16). The
        vectors are the ones attribution would compute itself (same texts, same encoder)."""
        cache = self.sentence_cache
        if cache is None or not cache.max_passages:
            return None

        async def embed() -> None:
            try:
                await anyio.to_thread.run_sync(
                    cache_passage_sentences, kept, self.retriever.embedder, cache
                )
            except Exception:  # attribution embeds whatever is missing itself
                logger.warning(
                    "embedding the passages' sentences ahead of the answer failed", exc_info=True
                )

        return asyncio.create_task(embed())

    async def finish(self, prepared: PreparedAnswer, text: str) -> AnswerResult:
        """Parse the model's text: answer body, verified citations, sentence support, abstention."""
        text = text.strip()
        parsed = parse_answer(text)
        citations, unverified = match_citations(parsed.cited_groups, prepared.kept)
        attributed_at = time.perf_counter()
        known: dict[str, Vectors] = {}
        if sentences(parsed.body):  # both done by now unless the answer came faster
            if prepared.passages_embedded is not None:
                await prepared.passages_embedded
            if prepared.answer_sentences is not None:
                known = await prepared.answer_sentences.vectors()
        support = await anyio.to_thread.run_sync(
            attribute, parsed.body, prepared.kept, self.retriever.embedder, self.sentence_cache,
            known,
        )  # fmt: skip
        prepared.timings["attribute_ms"] = _ms_since(attributed_at)
        reason = None if parsed.body else NO_ANSWER
        if reason is None and is_refusal(parsed.body):
            reason = MODEL_DECLINED
        prepared.timings["total_ms"] = _ms_since(prepared.started)
        answer = Answer(
            text=parsed.body,
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
        return AnswerResult(
            answer,
            omitted,
            tuple(support),
            per_question,
            prepared.conversation,
            _usage(prepared.usage),
        )


def _abstain(reason: str, timings: dict[str, float]) -> Answer:
    return Answer(
        text="",
        raw_answer="",
        sources=(),
        citations=(),
        unverified_citations=(),
        prompt="",
        answerable=False,
        abstention_reason=reason,
        timings_ms=timings,
    )


def _add_usage(
    usage: StreamReport, prompt_tokens: int, completion_tokens: int, finish_reason: str | None
) -> None:
    usage.prompt_tokens += prompt_tokens
    usage.completion_tokens += completion_tokens
    usage.finish_reason = finish_reason or usage.finish_reason


def _usage(report: StreamReport) -> TokenUsage:
    return TokenUsage(report.prompt_tokens, report.completion_tokens, report.finish_reason)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
