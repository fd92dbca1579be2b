"""Summaries in bagel's summarization format, map-reduce when the text is too long.

A text that does not fit the context is cut into pieces at paragraph and
sentence boundaries; each piece is summarized, then the summaries are
summarized together (repeatedly, if even they do not fit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from rag.config import LLMSettings
from rag.generation.context_budget import ContextBudget
from rag.generation.llm import OpenAICompatibleLLM
from rag.generation.prompts import summarization_prompt
from rag.text.chunking import split_paragraphs, split_sentences

DEFAULT_WORDS = 130
TOKENS_PER_WORD = 2.0  # generous: the answer budget must hold the summary
MAX_ROUNDS = 4
LENGTH_TOLERANCE = 1 / 3  # a summary may run this far over its word target


def within_target(summary: str, words: int) -> str:
    """The summary cut after its last whole sentence within the target plus a third.

    Nothing is added: what is kept is the model's own text. A first sentence that is
    itself too long is cut at the word limit."""
    limit = int(words * (1 + LENGTH_TOLERANCE))
    if len(summary.split()) <= limit:
        return summary
    kept_end, count = 0, 0
    for start, end in split_sentences(summary, 0, len(summary)):
        count += len(summary[start:end].split())
        if count > limit:
            break
        kept_end = end
    if kept_end:
        return summary[:kept_end].strip()
    return " ".join(summary.split()[:limit])


@dataclass(frozen=True)
class Summary:
    text: str
    prompts: tuple[str, ...]
    rounds: int


class Summarizer:
    def __init__(
        self, llm: OpenAICompatibleLLM, settings: LLMSettings, budget: ContextBudget
    ) -> None:
        self.llm = llm
        self.settings = settings
        self.budget = budget

    async def summarize(self, text: str, words: int = DEFAULT_WORDS) -> Summary:
        prompt, prompts, rounds = await self.final_prompt(text, words)
        return Summary(within_target(await self._generate(prompt, words), words), prompts, rounds)

    async def stream(self, text: str, words: int = DEFAULT_WORDS) -> AsyncIterator[str | Summary]:
        """Tokens of the final summary as they come (map rounds run first), then the Summary."""
        prompt, prompts, rounds = await self.final_prompt(text, words)
        parts = []
        async for token in self.llm.stream(
            prompt,
            self.settings.system_prompt,
            self._answer_tokens(words),
            self.settings.temperature,
        ):
            parts.append(token)
            yield token
        yield Summary(within_target("".join(parts).strip(), words), prompts, rounds)

    async def final_prompt(self, text: str, words: int) -> tuple[str, tuple[str, ...], int]:
        """The prompt whose answer is the summary, after as many map rounds as the text needs."""
        await self.model_budget()
        prompts: list[str] = []
        pieces = [text]
        for round_number in range(1, MAX_ROUNDS + 1):
            if len(pieces) == 1 and self._fits(pieces[0], words):
                prompt = summarization_prompt(pieces[0], words)
                return prompt, (*prompts, prompt), round_number
            pieces = self._split(" \n\n".join(pieces), words)
            piece_prompts = [summarization_prompt(piece, words) for piece in pieces]
            prompts.extend(piece_prompts)
            pieces = list(await asyncio.gather(*(self._generate(p, words) for p in piece_prompts)))
        final = summarization_prompt("\n\n".join(pieces), words)
        return final, (*prompts, final), MAX_ROUNDS + 1

    async def model_budget(self) -> ContextBudget:
        """The budget for the served model's window (asked of the server once, then cached)."""
        length = await self.llm.context_length(self.budget.context_length)
        if length != self.budget.context_length:
            self.budget = replace(self.budget, context_length=length)
        return self.budget

    def _answer_tokens(self, words: int) -> int:
        return min(int(words * TOKENS_PER_WORD) + 32, self.settings.max_summary_tokens)

    def _token_limit(self, words: int) -> int:
        return self.budget.context_length - self._answer_tokens(words) - 64

    def _fits(self, text: str, words: int) -> bool:
        return self.budget.count_tokens(summarization_prompt(text, words)) <= self._token_limit(
            words
        )

    def _split(self, text: str, words: int) -> list[str]:
        """Greedy pieces of whole sentences that each fit the context (costs add up)."""
        limit = self._token_limit(words) - self.budget.count_tokens(summarization_prompt("", words))
        pieces: list[str] = []
        current: list[str] = []
        used = 0
        for sentence in self._sentences(text, limit):
            cost = self.budget.count_tokens(sentence) + 1
            if current and used + cost > limit:
                pieces.append(" ".join(current))
                current, used = [], 0
            current.append(sentence)
            used += cost
        if current:
            pieces.append(" ".join(current))
        return pieces

    def _sentences(self, text: str, limit: int) -> list[str]:
        sentences = []
        for paragraph in split_paragraphs(text):
            for start, end in split_sentences(text, *paragraph):
                sentences.extend(self._cut(text[start:end], limit))
        return sentences

    def _cut(self, sentence: str, limit: int) -> list[str]:
        """A 'sentence' longer than the limit (no punctuation) is halved until it fits."""
        if self.budget.count_tokens(sentence) <= limit:
            return [sentence]
        middle = sentence.rfind(" ", 0, len(sentence) // 2 + 1)
        middle = middle if middle > 0 else len(sentence) // 2
        return self._cut(sentence[:middle], limit) + self._cut(sentence[middle:].lstrip(), limit)

    async def _generate(self, prompt: str, words: int) -> str:
        generation = await self.llm.generate(
            prompt,
            self.settings.system_prompt,
            self._answer_tokens(words),
            self.settings.temperature,
        )
        return generation.text
