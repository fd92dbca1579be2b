"""Token-aware chunking that breaks at paragraph and sentence boundaries.

Chunks never exceed the embedder's window: a text is cut into sentences (and
sentences longer than a chunk into token windows), which are packed greedily
up to ``max_tokens``; each chunk starts with the last sentences of the one
before it, up to ``overlap_tokens``. Offsets point into the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.embedding import TokenCounter
from rag.types import ChunkSpan

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    return [_trim(text, start, end) for start, end in spans if text[start:end].strip()]


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, position = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((position, match.start() + len(match.group().rstrip())))
        position = match.end()
    spans.append((position, end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class TokenChunker:
    def __init__(self, counter: TokenCounter, max_tokens: int, overlap_tokens: int) -> None:
        if overlap_tokens >= max_tokens:
            raise ValueError(
                f"overlap_tokens must be smaller than max_tokens; got {overlap_tokens} >= {max_tokens}"
            )
        self._counter = counter
        self._max = max_tokens
        self._overlap = overlap_tokens

    def chunk(self, text: str) -> list[ChunkSpan]:
        units = self._units(text)
        chunks: list[ChunkSpan] = []
        current: list[_Unit] = []
        for unit in units:
            if current and sum(u.tokens for u in current) + unit.tokens > self._max:
                chunks.append(self._make_chunk(text, current, len(chunks)))
                current = self._overlap_tail(current, unit.tokens)
            current.append(unit)
        if current:
            chunks.append(self._make_chunk(text, current, len(chunks)))
        return chunks

    def _units(self, text: str) -> list[_Unit]:
        spans = [
            sentence
            for paragraph in split_paragraphs(text)
            for sentence in split_sentences(text, *paragraph)
        ]
        lengths = self._counter.token_lengths([text[s:e] for s, e in spans]) if spans else []
        units: list[_Unit] = []
        for (start, end), tokens in zip(spans, lengths):
            if tokens <= self._max:
                units.append(_Unit(start, end, tokens))
            else:
                units.extend(self._split_long(text, start, end))
        return units

    def _split_long(self, text: str, start: int, end: int) -> list[_Unit]:
        """Cut a sentence longer than a chunk into windows of whole tokens."""
        offsets = self._counter.token_offsets(text[start:end])
        step = self._max - self._overlap
        pieces = []
        for first in range(0, len(offsets), step):
            window = offsets[first : first + self._max]
            pieces.append(_Unit(start + window[0][0], start + window[-1][1], len(window)))
            if first + self._max >= len(offsets):
                break
        return pieces

    def _overlap_tail(self, previous: list[_Unit], next_tokens: int) -> list[_Unit]:
        tail: list[_Unit] = []
        budget = min(self._overlap, self._max - next_tokens)
        for unit in reversed(previous):
            if unit.tokens > budget:
                break
            tail.insert(0, unit)
            budget -= unit.tokens
        return tail

    @staticmethod
    def _make_chunk(text: str, units: list[_Unit], ordinal: int) -> ChunkSpan:
        start, end = units[0].start, units[-1].end
        return ChunkSpan(
            ordinal=ordinal,
            text=text[start:end],
            start_char=start,
            end_char=end,
            token_count=sum(u.tokens for u in units),
        )
