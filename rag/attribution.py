"""Sentence-level attribution: for each sentence of an answer, the sentence of the sent
chunks that supports it best, found by the embedder.

It works even when a small model forgets to cite, and lets a reader check a
claim against the exact passage. A low score means no sent sentence says the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import split_paragraphs, split_sentences
from rag.embedding import Embedder
from rag.types import PromptBlock

MIN_SENTENCE_CHARS = 3


@dataclass(frozen=True)
class SentenceSupport:
    sentence: str
    chunk_id: int
    document_id: int
    source_sentence: str
    score: float


def sentences(text: str) -> list[str]:
    return [
        text[start:end]
        for paragraph in split_paragraphs(text)
        for start, end in split_sentences(text, *paragraph)
        if end - start >= MIN_SENTENCE_CHARS
    ]


def attribute(answer: str, blocks: Sequence[PromptBlock], embedder: Embedder) -> list[SentenceSupport]:
    claims = sentences(answer)
    candidates = [
        (chunk.chunk_id, chunk.document_id, sentence)
        for block in blocks
        for chunk in block.chunks
        for sentence in sentences(chunk.text)
    ]
    if not claims or not candidates:
        return []
    vectors = embedder.embed(claims + [sentence for _, _, sentence in candidates])
    similarity = vectors[: len(claims)] @ vectors[len(claims) :].T
    best = np.argmax(similarity, axis=1)
    return [
        SentenceSupport(
            sentence=claim,
            chunk_id=candidates[index][0],
            document_id=candidates[index][1],
            source_sentence=candidates[index][2],
            score=round(float(similarity[row, index]), 4),
        )
        for row, (claim, index) in enumerate(zip(claims, best, strict=True))
    ]
