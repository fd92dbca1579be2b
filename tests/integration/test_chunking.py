"""Chunking with the real embedder tokenizer."""

from __future__ import annotations

import pytest

from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.text.chunking import TokenChunker

pytestmark = pytest.mark.integration

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120)]


def paragraphs_text() -> str:
    return "\n\n".join(" ".join(SENTENCES[i : i + 6]) for i in range(0, len(SENTENCES), 6))


def test_chunks_fit_the_window_and_break_at_sentences(
    embedder: SentenceTransformersEmbedder,
) -> None:
    text = paragraphs_text()
    chunks = TokenChunker(embedder, max_tokens=64, overlap_tokens=16).chunk(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start_char : chunk.end_char]
        assert embedder.token_lengths([chunk.text])[0] <= 64
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_and_cover_the_text(
    embedder: SentenceTransformersEmbedder,
) -> None:
    text = paragraphs_text()
    chunks = TokenChunker(embedder, max_tokens=64, overlap_tokens=16).chunk(text)
    for before, after in zip(chunks, chunks[1:]):
        assert after.start_char < before.end_char  # overlap
        assert after.start_char > before.start_char  # progress
    assert chunks[0].start_char == 0 and chunks[-1].end_char == len(text)


def test_no_overlap_gives_disjoint_chunks(embedder: SentenceTransformersEmbedder) -> None:
    chunks = TokenChunker(embedder, max_tokens=64, overlap_tokens=0).chunk(paragraphs_text())
    for before, after in zip(chunks, chunks[1:]):
        assert after.start_char > before.end_char


def test_a_sentence_longer_than_a_chunk_is_cut_in_token_windows(
    embedder: SentenceTransformersEmbedder,
) -> None:
    text = " ".join(f"word{i}" for i in range(400))  # no sentence boundary at all
    chunks = TokenChunker(embedder, max_tokens=50, overlap_tokens=10).chunk(text)
    assert len(chunks) > 3
    assert all(embedder.token_lengths([c.text])[0] <= 50 for c in chunks)
    assert chunks[-1].end_char == len(text)


def test_default_chunk_size_stays_inside_the_embedder_window(
    embedder: SentenceTransformersEmbedder,
) -> None:
    assert embedder.max_tokens == 254  # all-MiniLM-L6-v2: 256 with [CLS] and [SEP]
    chunks = TokenChunker(embedder, max_tokens=254, overlap_tokens=32).chunk(paragraphs_text() * 3)
    assert all(embedder.token_lengths([c.text])[0] <= 254 for c in chunks)


def test_short_and_empty_texts(embedder: SentenceTransformersEmbedder) -> None:
    chunker = TokenChunker(embedder, max_tokens=64, overlap_tokens=16)
    assert chunker.chunk("") == [] and chunker.chunk("  \n\n ") == []
    [only] = chunker.chunk("  One short sentence.  ")
    assert only.text == "One short sentence." and only.start_char == 2
