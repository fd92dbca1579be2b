"""Attribution with cached passage sentence vectors gives exactly what embedding them all
again gave, on the test corpus, and the cache stays within its bound."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import numpy as np
import pytest

from indexer.pipeline import Indexer
from rag.answering.answer_sentences import AnswerSentenceEmbedder
from rag.answering.attribution import SentenceSupport, attribute, sentences
from rag.answering.citations import parse_answer
from rag.answering.request import AnswerRequest
from rag.answering.sentence_vectors import SentenceVectorCache
from rag.answering.service import AnswerResult, AnswerService
from rag.collections.store import CollectionStore
from rag.generation.context_budget import ContextBudget, estimate_tokens
from rag.generation.llm import OpenAICompatibleLLM
from rag.generation.prompts import build_blocks
from rag.protocols import Embedder
from rag.retrieval.retriever import Retriever
from rag.types import PromptBlock, RetrievedChunk
from tests.conftest import CORPUS_DIR, make_settings
from tests.fake_model_server import MODEL, FakeModelServer

pytestmark = pytest.mark.integration

QUESTIONS = [
    "How high were the lava fountains when Kilauea erupted in 2023?",
    "What does the duration of the honeybee waggle run encode?",
    "How deep below the surface is the ice found by the rover?",
    "How often should a sourdough starter be fed?",
    "How thick is the ice of the Aletsch Glacier at Konkordiaplatz?",
    "How much does the Trail X bicycle frame weigh?",
]


def attribute_before_the_cache(
    answer: str, blocks: Sequence[PromptBlock], embedder: Embedder
) -> list[SentenceSupport]:
    """The computation as it was: every passage sentence embedded with the answer's, each time."""
    claims = sentences(answer)
    candidates = [
        (c.chunk_id, c.document_id, s) for b in blocks for c in b.chunks for s in sentences(c.text)
    ]
    if not claims or not candidates:
        return []
    vectors = embedder.embed(claims + [s for _, _, s in candidates])
    similarity = vectors[: len(claims)] @ vectors[len(claims) :].T
    best = np.argmax(similarity, axis=1)
    return [
        SentenceSupport(
            claim,
            candidates[i][0],
            candidates[i][1],
            candidates[i][2],
            round(float(similarity[row, i]), 4),
        )
        for row, (claim, i) in enumerate(zip(claims, best, strict=True))
    ]


@pytest.fixture(scope="module")
def retrieved(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[list[list[PromptBlock]]]:
    """The blocks sent for each question, retrieved from the indexed test corpus (SQLite)."""
    folder: Path = tmp_path_factory.mktemp("attribution-cache")
    settings = make_settings(folder / "data")
    store = CollectionStore(settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR])
    retriever = Retriever(store, settings.retrieval)
    yield [build_blocks(retriever.retrieve(question, 4)) for question in QUESTIONS]
    store.close()


def answers_for(blocks: list[PromptBlock]) -> list[str]:
    """Answers of the kinds a model writes: a sentence lifted from a passage, one reworded,
    one about something else, several at once."""
    first = sentences(blocks[0].text)
    lifted = first[0] if first else "Nothing."
    return [
        lifted,
        f"According to the documents, {lifted.lower()}",
        "Penguins cannot fly. " + lifted + " The answer is in the second document.",
    ]


def test_cached_attribution_equals_the_full_computation(
    retrieved: list[list[PromptBlock]], embedder: Embedder
) -> None:
    cache = SentenceVectorCache(max_passages=1000)
    compared = 0
    for blocks in retrieved:
        for answer in answers_for(blocks):
            before = attribute_before_the_cache(answer, blocks, embedder)
            assert before
            assert (
                attribute(answer, blocks, embedder, cache) == before
            )  # first: some passages embedded now
            assert (
                attribute(answer, blocks, embedder, cache) == before
            )  # then: every passage cached
            assert attribute(answer, blocks, embedder) == before  # and without a cache
            compared += len(before)
    assert compared >= 3 * len(QUESTIONS)
    assert cache.hits > cache.misses


def test_a_cached_passage_is_not_embedded_again(
    retrieved: list[list[PromptBlock]], embedder: Embedder
) -> None:
    calls: list[list[str]] = []

    class CountingEmbedder:
        def __getattr__(self, name: str) -> object:
            return getattr(embedder, name)

        def embed(self, texts: list[str]) -> np.ndarray:
            calls.append(texts)
            return embedder.embed(texts)

    blocks = retrieved[0]
    cache = SentenceVectorCache(max_passages=100)
    attribute(
        "Lava fountains reached fifty metres. It erupted in 2023.",
        blocks,
        CountingEmbedder(),
        cache,
    )  # type: ignore[arg-type]
    attribute("The eruption resumed in September.", blocks, CountingEmbedder(), cache)  # type: ignore[arg-type]
    passage_sentences = sum(
        len(sentences(chunk.text)) for block in blocks for chunk in block.chunks
    )
    assert len(calls[0]) == 2 + passage_sentences
    assert calls[1] == [
        "The eruption resumed in September."
    ]  # one small batch: the answer's sentences only


def test_the_cache_keeps_at_most_its_bound_and_keys_on_the_text(embedder: Embedder) -> None:
    cache = SentenceVectorCache(max_passages=2)
    chunks = [
        RetrievedChunk(i, 1, 0.5, f"Passage number {i} is here. It has two sentences.", {})
        for i in range(3)
    ]
    for chunk in chunks:
        attribute("Passage number one.", build_blocks([chunk]), embedder, cache)
    assert len(cache) == 2
    assert (
        cache.get(chunks[0]) is None and cache.get(chunks[2]) is not None
    )  # least recently used went first
    changed = RetrievedChunk(2, 1, 0.5, "A different text under the same chunk id.", {})
    assert cache.get(changed) is None
    support = attribute("A different text.", build_blocks([changed]), embedder, cache)
    assert support[0].source_sentence == "A different text under the same chunk id."
    assert cache.nbytes > 0
    with pytest.raises(ValueError, match="max_passages must be 0 or more, got -1"):
        SentenceVectorCache(-1)


def test_a_cache_of_size_zero_keeps_nothing(embedder: Embedder) -> None:
    cache = SentenceVectorCache(max_passages=0)
    blocks = build_blocks([RetrievedChunk(1, 1, 0.5, "Only sentence here.", {})])
    assert attribute("Only sentence.", blocks, embedder, cache)[0].chunk_id == 1
    assert len(cache) == 0


def test_the_service_embeds_the_passages_while_the_model_writes(
    tmp_path: Path, embedder: Embedder
) -> None:
    """`prepare` starts embedding the sent passages' sentences (issue 16); by the time the
    answer is finished they are cached, so `finish` embeds only the answer's sentences, and the
    support is what the full computation gives."""
    settings = make_settings(tmp_path / "data")
    store = CollectionStore(settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR])

    class NoModelServer(OpenAICompatibleLLM):
        """Stands in for the model server, which `prepare` asks only for its context window."""

        async def context_length(self, default: int) -> int:
            return default

    llm = NoModelServer("http://127.0.0.1:9/v1", "none", max_retries=0)
    cache = SentenceVectorCache(max_passages=100)
    service = AnswerService(
        Retriever(store, settings.retrieval),
        llm,
        settings.llm,
        ContextBudget(estimate_tokens, 4096, 384),
        cache,
    )

    async def answer() -> tuple[list[PromptBlock], str, int, AnswerResult]:
        prepared = await service.prepare(AnswerRequest.of(QUESTIONS[0], 4))
        assert prepared.passages_embedded is not None and prepared.kept
        await prepared.passages_embedded
        misses = cache.misses
        text = answers_for(prepared.kept)[2]
        return prepared.kept, text, misses, await service.finish(prepared, text)

    kept, text, misses_before_finish, result = anyio.run(answer)
    assert all(cache.get(chunk) is not None for block in kept for chunk in block.chunks)
    assert cache.misses == misses_before_finish  # finish found every passage cached
    assert list(result.support) == attribute_before_the_cache(text, kept, embedder)
    anyio.run(llm.close)
    store.close()


def streamed_tokens(text: str) -> list[str]:
    """The text in the pieces a model streams: each word with the spaces after it."""
    return re.findall(r"\s*\S+\s*", text)


async def embedded_while_streaming(text: str, embedder: Embedder) -> dict[str, np.ndarray]:
    answer_sentences = AnswerSentenceEmbedder(embedder)
    for token in streamed_tokens(text):
        answer_sentences.add(token)
        await anyio.sleep(0)  # the model's next token is a network read away
    return await answer_sentences.vectors()


def test_an_answer_embedded_as_it_streams_is_attributed_as_before(
    retrieved: list[list[PromptBlock]], embedder: Embedder
) -> None:
    """Every finished sentence is embedded before the last token; attribution with those
    vectors gives what embedding them all afterwards gave (issue 16)."""
    embedded_early = 0
    for blocks in retrieved:
        for answer in answers_for(blocks):
            written = answer + " The documents say so.\nSource:\n- title: A field report"
            body = parse_answer(written).body
            known = anyio.run(embedded_while_streaming, written, embedder)
            claims = sentences(body)
            assert set(known) == set(claims[:-1])
            embedded_early += len(known)
            before = attribute_before_the_cache(body, blocks, embedder)
            assert attribute(body, blocks, embedder, None, known) == before
    assert embedded_early >= 2 * len(QUESTIONS)


def test_the_service_embeds_only_the_last_sentence_after_the_model_is_done(
    tmp_path: Path, embedder: Embedder, fake_model: FakeModelServer
) -> None:
    """Through the OpenAI HTTP interface (the scripted model server streams word by word):
    `ask` streams, so attribution after the last token embeds the last sentence alone."""
    calls: list[list[str]] = []

    class CountingEmbedder:
        def __getattr__(self, name: str) -> object:
            return getattr(embedder, name)

        def embed(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return embedder.embed(texts)

    settings = make_settings(tmp_path / "data")
    store = CollectionStore(settings, CountingEmbedder())  # type: ignore[arg-type]
    Indexer(store).index_paths([CORPUS_DIR])
    calls.clear()
    llm = OpenAICompatibleLLM(fake_model.base_url, MODEL, max_retries=0)
    service = AnswerService(
        Retriever(store, settings.retrieval),
        llm,
        settings.llm,
        ContextBudget(estimate_tokens, 4096, 384),
        SentenceVectorCache(max_passages=100),
    )
    reply = (
        "Fountains of lava rose some fifty metres, the report says. Its first phase began "
        "in January 2023! Did it pause in March? The report says it resumed in September."
    )
    fake_model.enqueue(reply)

    async def ask() -> AnswerResult:
        try:
            return await service.ask(AnswerRequest.of(QUESTIONS[0], 4))
        finally:
            await llm.close()

    result = anyio.run(ask)
    assert fake_model.requests[0]["stream"] is True
    claims = sentences(reply)
    assert [s.sentence for s in result.support] == claims
    assert calls[-1] == [claims[-1]]  # after the last token: only the last sentence
    embedded = [text for batch in calls for text in batch]
    assert all(embedded.count(claim) == 1 for claim in claims)  # each sentence once
    kept = [chunk for chunk in result.answer.sources]
    assert kept and list(result.support) == attribute_before_the_cache(
        reply, build_blocks(kept), embedder
    )
    store.close()
