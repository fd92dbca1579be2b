"""Sentence vectors of retrieved passages, computed once and kept by chunk id.

Attribution compares every sentence of an answer with every sentence of the passages
that were sent. Embedding those passage sentences again on each answer cost about a
second per question on two cores; the same passages come back for related questions,
so their sentences are embedded on first use and kept here, least recently used first
out beyond ``max_passages``. A passage is keyed by the chunk ids it covers *and* its text
(adjacent chunks are merged into one passage, whose sentences differ from its parts'), so a
changed text is never answered with stale vectors. Why a cache rather than vectors stored
at indexing: README, "Answer overhead".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.protocols import Vectors
from rag.types import RetrievedChunk

PassageKey = tuple[tuple[int, ...], str]


@dataclass(frozen=True)
class PassageSentences:
    sentences: tuple[str, ...]
    vectors: Vectors  # one row per sentence

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes) + sum(len(sentence) for sentence in self.sentences)


def passage_key(chunk: RetrievedChunk) -> PassageKey:
    return chunk.chunk_ids, chunk.text


class SentenceVectorCache:
    """A bounded, thread-safe LRU of ``PassageSentences``; ``max_passages`` 0 keeps nothing."""

    def __init__(self, max_passages: int) -> None:
        if max_passages < 0:
            raise ValueError(f"max_passages must be 0 or more, got {max_passages}")
        self.max_passages = max_passages
        self._entries: OrderedDict[PassageKey, PassageSentences] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def get(self, chunk: RetrievedChunk) -> PassageSentences | None:
        key = passage_key(chunk)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, chunk: RetrievedChunk, entry: PassageSentences) -> None:
        if not self.max_passages:
            return
        entry.vectors.setflags(write=False)  # shared by every later answer
        with self._lock:
            self._entries[passage_key(chunk)] = entry
            self._entries.move_to_end(passage_key(chunk))
            while len(self._entries) > self.max_passages:
                self._entries.popitem(last=False)


def split_rows(vectors: Vectors, counts: Sequence[int]) -> list[Vectors]:
    """Consecutive row blocks of ``vectors``, one of each count."""
    bounds = np.cumsum([0, *counts])
    return [
        np.ascontiguousarray(vectors[start:end])
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
