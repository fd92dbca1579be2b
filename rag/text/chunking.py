"""Token-aware chunking that breaks at paragraph and sentence boundaries.

Chunks never exceed the embedder's window: a text is cut into sentences (and
sentences longer than a chunk into token windows), which are packed greedily
up to ``max_tokens``; each chunk starts with the last sentences of the one
before it, up to ``overlap_tokens``. Offsets point into the original text.

Markdown tables (rag/text/tables.py) are split only between rows, never overlap,
and every chunk that continues a table starts with its header row: that
chunk's text is the header, a newline, then the text its offsets point to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.protocols import TokenCounter
from rag.text.tables import find_tables
from rag.types import ChunkSpan

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    table: int | None = None  # which table of the text this row (or header) belongs to
    header: bool = False


@dataclass(frozen=True)
class _Header:
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
        units, headers = self._units(text)
        chunks: list[ChunkSpan] = []
        current: list[_Unit] = []
        for unit in units:
            if current and self._tokens(current, headers) + unit.tokens > self._max:
                carried = [current.pop()] if current[-1].header and len(current) > 1 else []
                chunks.append(self._make_chunk(text, current, len(chunks), headers))
                current = carried or self._overlap_tail(current, unit)
            current.append(unit)
        if current:
            chunks.append(self._make_chunk(text, current, len(chunks), headers))
        return chunks

    @staticmethod
    def _tokens(units: list[_Unit], headers: dict[int, _Header]) -> int:
        first = units[0]
        repeated = headers[first.table].tokens if first.table in headers and not first.header else 0
        return repeated + sum(u.tokens for u in units)

    def _spans(self, text: str) -> list[tuple[int, int, int | None, bool]]:
        """Sentences of prose, and the header and rows of each table: (start, end, table, header)."""
        spans: list[tuple[int, int, int | None, bool]] = []
        table_count = 0
        for p_start, p_end in split_paragraphs(text):
            position = p_start
            for table in find_tables(text, p_start, p_end):
                spans += [
                    (s, e, None, False) for s, e in split_sentences(text, position, table.header[0])
                ]
                spans.append((*table.header, table_count, True))
                spans += [(s, e, table_count, False) for s, e in table.rows]
                table_count, position = table_count + 1, table.end
            spans += [(s, e, None, False) for s, e in split_sentences(text, position, p_end)]
        return spans

    def _units(self, text: str) -> tuple[list[_Unit], dict[int, _Header]]:
        spans = self._spans(text)
        lengths = self._counter.token_lengths([text[s:e] for s, e, _, _ in spans]) if spans else []
        units: list[_Unit] = []
        headers: dict[int, _Header] = {}
        for (start, end, table, header), tokens in zip(spans, lengths):
            if header and table is not None and tokens <= self._max // 2:
                headers[table] = _Header(start, end, tokens)  # repeated; a huge one is not
            limit = self._max - (headers[table].tokens if table in headers and not header else 0)
            if tokens <= limit:
                units.append(_Unit(start, end, tokens, table, header))
            else:
                units.extend(self._split_long(text, start, end, limit, table))
        return units, headers

    def _split_long(
        self, text: str, start: int, end: int, limit: int | None = None, table: int | None = None
    ) -> list[_Unit]:
        """Cut a sentence (or table row) longer than a chunk into windows of whole tokens."""
        limit = limit or self._max
        offsets = self._counter.token_offsets(text[start:end])
        step = max(limit - self._overlap, 1) if table is None else limit
        pieces = []
        for first in range(0, len(offsets), step):
            window = offsets[first : first + limit]
            pieces.append(_Unit(start + window[0][0], start + window[-1][1], len(window), table))
            if first + limit >= len(offsets):
                break
        return pieces

    def _overlap_tail(self, previous: list[_Unit], next_unit: _Unit) -> list[_Unit]:
        """The last sentences of the previous chunk; none into, within or out of a table
        (a continued table repeats its header instead)."""
        if next_unit.table is not None or previous[-1].table is not None:
            return []
        next_tokens = next_unit.tokens
        tail: list[_Unit] = []
        budget = min(self._overlap, self._max - next_tokens)
        for unit in reversed(previous):
            if unit.tokens > budget:
                break
            tail.insert(0, unit)
            budget -= unit.tokens
        return tail

    def _make_chunk(
        self, text: str, units: list[_Unit], ordinal: int, headers: dict[int, _Header]
    ) -> ChunkSpan:
        start, end = units[0].start, units[-1].end
        first = units[0]
        header = headers.get(first.table) if first.table is not None and not first.header else None
        prefix = text[header.start : header.end] + "\n" if header else ""
        return ChunkSpan(
            ordinal=ordinal,
            text=prefix + text[start:end],
            start_char=start,
            end_char=end,
            token_count=self._tokens(units, headers),
        )
