"""Sentence-level attribution: for each sentence of an answer, the sentence of the sent
chunks that supports it best, found by the embedder.

It works even when a small model forgets to cite, and lets a reader check a
claim against the exact passage. A low score means no sent sentence says the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answering.sentence_vectors import PassageSentences, SentenceVectorCache, split_rows
from rag.protocols import Embedder, Vectors
from rag.telemetry import stage
from rag.text.chunking import split_paragraphs, split_sentences
from rag.types import PromptBlock, RetrievedChunk

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


def attribute(
    answer: str,
    blocks: Sequence[PromptBlock],
    embedder: Embedder,
    cache: SentenceVectorCache | None = None,
    known: Mapping[str, Vectors] | None = None,
) -> list[SentenceSupport]:
    """The best supporting sentence of every answer sentence. The passages' sentence vectors
    come from ``cache`` when it holds them, the answer's from ``known`` (embedded while it
    streamed); the rest are embedded in one call (a text's vector does not depend on its
    batch), and the passages' kept in ``cache``."""
    claims = sentences(answer)
    chunks = [chunk for block in blocks for chunk in block.chunks]
    if not claims or not chunks:
        return []
    with stage("attribute"):
        passages = _passage_sentences(claims, chunks, embedder, cache, known or {})
        return _best_support(claims, chunks, passages)


def cache_passage_sentences(
    blocks: Sequence[PromptBlock], embedder: Embedder, cache: SentenceVectorCache
) -> None:
    """Embed the sentences of the sent passages that ``cache`` does not hold yet, and keep them.
    The answer service calls this while the model writes the answer, so that attribution
    afterwards only embeds the answer's own sentences."""
    chunks = [chunk for block in blocks for chunk in block.chunks]
    _passage_sentences([], chunks, embedder, cache, {})


def _passage_sentences(
    claims: list[str],
    chunks: list[RetrievedChunk],
    embedder: Embedder,
    cache: SentenceVectorCache | None,
    known: Mapping[str, Vectors],
) -> tuple[Vectors, list[PassageSentences]]:
    """The claims' vectors, and each chunk's sentences with their vectors."""
    passages: list[PassageSentences | None] = [
        cache.get(chunk) if cache else None for chunk in chunks
    ]
    missing = {
        index: tuple(sentences(chunk.text))
        for index, chunk in enumerate(chunks)
        if passages[index] is None
    }
    unknown = [claim for claim in dict.fromkeys(claims) if claim not in known]
    texts = unknown + [sentence for found in missing.values() for sentence in found]
    vectors = embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
    parts = split_rows(vectors, [len(unknown), *(len(found) for found in missing.values())])
    for (index, found), part in zip(missing.items(), parts[1:], strict=True):
        passages[index] = PassageSentences(found, part)
        if cache is not None:
            cache.put(chunks[index], passages[index])  # type: ignore[arg-type]
    embedded = {**known, **dict(zip(unknown, parts[0], strict=True))}
    claim_vectors = np.vstack([embedded[claim] for claim in claims]) if claims else parts[0]
    return claim_vectors, [entry for entry in passages if entry is not None]


def _best_support(
    claims: list[str], chunks: list[RetrievedChunk], found: tuple[Vectors, list[PassageSentences]]
) -> list[SentenceSupport]:
    claim_vectors, passages = found
    candidates = [
        (chunk.chunk_id, chunk.document_id, sentence)
        for chunk, passage in zip(chunks, passages, strict=True)
        for sentence in passage.sentences
    ]
    if not candidates:
        return []
    similarity = claim_vectors @ np.concatenate([passage.vectors for passage in passages]).T
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
