"""Follow-ups through the real pipeline (embedder, faiss, BM25, SQLite, the real tokenizer),
with a scripted model where the tiny one cannot be steered: its condensation output.

The scripted model is the real client with its two network calls replaced; it records what
it was sent (simonw/llm's MockModel pattern).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from indexer.pipeline import Indexer
from rag.answering.request import AnswerRequest
from rag.answering.service import AnswerService
from rag.collections.catalog import CollectionCatalog
from rag.collections.store import CollectionStore
from rag.generation.context_budget import ContextBudget, tokenizer_counter
from rag.generation.conversation import GenerationOptions
from rag.generation.llm import OpenAICompatibleLLM
from rag.protocols import Embedder
from rag.retrieval.retriever import Retriever
from rag.types import Generation, StreamReport, Turn
from tests.conftest import CORPUS_DIR, MODELS_DIR, make_settings

pytestmark = [pytest.mark.integration]

LAKE_QUESTION = "How large was the lava lake when Kilauea erupted in 2023?"
FOLLOW_UP = "and how deep is it?"
HISTORY = [Turn("user", LAKE_QUESTION), Turn("assistant", "About 1.5 square kilometres.")]
STANDALONE = "How deep was the lava lake when Kilauea erupted in 2023?"


class ScriptedLLM(OpenAICompatibleLLM):
    """Answers from a queue; records every call (prompt, history, limits)."""

    def __init__(self, outputs: Sequence[str]) -> None:
        super().__init__("http://127.0.0.1:9/v1", "scripted")
        self.outputs = list(outputs)
        self.calls: list[dict[str, object]] = []

    async def context_length(self, default: int) -> int:
        return 4096

    async def generate(self, prompt: str, system: str | None, max_tokens: int, temperature: float,
                       history: Sequence[Turn] = (), stop: Sequence[str] = ()) -> Generation:  # fmt: skip
        self.calls.append({"prompt": prompt, "history": tuple(history), "max_tokens": max_tokens,
                           "temperature": temperature, "stop": tuple(stop)})  # fmt: skip
        text = self.outputs.pop(0)
        return Generation(text, len(prompt.split()), len(text.split()), "stop")

    async def stream(self, prompt: str, system: str | None, max_tokens: int, temperature: float,
                     history: Sequence[Turn] = (), stop: Sequence[str] = (),
                     report: StreamReport | None = None, stream_interval: int = 0,
                     ) -> AsyncIterator[str]:  # fmt: skip
        generation = await self.generate(prompt, system, max_tokens, temperature, history, stop)
        if report is not None:
            report.prompt_tokens, report.completion_tokens = (
                generation.prompt_tokens,
                generation.completion_tokens,
            )
        for word in generation.text.split(" "):
            yield word + " "


@pytest.fixture(scope="module")
def catalog(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[CollectionCatalog]:
    settings = make_settings(tmp_path_factory.mktemp("conversation") / "data")
    store = CollectionStore(settings, embedder)
    Indexer(store).index_paths([CORPUS_DIR])
    store.close()
    catalog = CollectionCatalog(settings, embedder)
    yield catalog
    catalog.close()


def service(catalog: CollectionCatalog, llm: ScriptedLLM, **llm_settings: object) -> AnswerService:
    settings = catalog.settings.llm.model_copy(update=llm_settings)
    count = tokenizer_counter(MODELS_DIR / "smollm2-135m-instruct-f32")
    budget = ContextBudget(count, 4096, settings.max_answer_tokens)
    return AnswerService(Retriever(catalog, catalog.settings.retrieval), llm, settings, budget)


def names(sources: Sequence[object]) -> list[str]:
    return [Path(source.metadata["source"]).name for source in sources]  # type: ignore[attr-defined]


async def test_the_follow_up_alone_does_not_find_the_volcano(catalog: CollectionCatalog) -> None:
    """Why condensation is needed: alone, the follow-up finds other deep things (ice)."""
    result = await service(catalog, ScriptedLLM(["It is deep."])).ask(
        AnswerRequest.of(FOLLOW_UP, 2)
    )
    assert "volcano.md" not in names(result.answer.sources)


async def test_the_models_standalone_question_is_searched(catalog: CollectionCatalog) -> None:
    llm = ScriptedLLM([STANDALONE, "Not said."])
    result = await service(catalog, llm).ask(AnswerRequest.of(FOLLOW_UP, 2, history=HISTORY))
    assert names(result.answer.sources)[0] == "volcano.md"
    conversation = result.conversation
    assert conversation.condensation == "model"
    assert conversation.standalone_question == STANDALONE
    assert (conversation.history_turns_used, conversation.dropped_turns) == (2, 0)
    condense_call, answer_call = llm.calls
    assert "Follow-up question: and how deep is it?" in str(condense_call["prompt"])
    assert condense_call["history"] == ()  # the condensation is one user turn
    assert answer_call["history"] == tuple(
        HISTORY
    )  # the answer sees the earlier turns as chat turns
    prompt = str(answer_call["prompt"])
    assert prompt.split("BEGININSTRUCTION\n", 1)[1].startswith(FOLLOW_UP)  # the user's own words
    assert result.usage.prompt_tokens == sum(len(str(c["prompt"]).split()) for c in llm.calls)


@pytest.mark.parametrize("useless", ["", "I don't know.", "x" * 600])
async def test_unusable_condensation_falls_back(catalog: CollectionCatalog, useless: str) -> None:
    llm = ScriptedLLM([useless, "Two metres."])
    result = await service(catalog, llm).ask(AnswerRequest.of(FOLLOW_UP, 2, history=HISTORY))
    assert result.conversation.condensation == "fallback"
    assert result.conversation.standalone_question == f"{LAKE_QUESTION} {FOLLOW_UP}"
    assert "volcano.md" in names(result.answer.sources)


async def test_condensation_can_be_turned_off(catalog: CollectionCatalog) -> None:
    llm = ScriptedLLM(["Two metres."])
    result = await service(catalog, llm, condense_follow_ups=False).ask(
        AnswerRequest.of(FOLLOW_UP, 2, history=HISTORY)
    )
    assert len(llm.calls) == 1 and result.conversation.condensation == "fallback"
    assert "volcano.md" in names(result.answer.sources)


async def test_oldest_turns_are_dropped_to_fit_the_budget(catalog: CollectionCatalog) -> None:
    filler = "The glacier moves slowly and the bees dance. " * 30  # about 300 tokens per answer
    history = []
    for number in range(4):
        history += [
            Turn("user", f"Question {number}?"),
            Turn("assistant", f"Answer {number}. {filler}"),
        ]
    history += HISTORY
    llm = ScriptedLLM([STANDALONE, "Not said."])
    result = await service(catalog, llm, max_history_tokens=700).ask(
        AnswerRequest.of(FOLLOW_UP, 2, history=history)
    )
    sent = llm.calls[1]["history"]
    assert sent[-2:] == tuple(HISTORY) and Turn("user", "Question 0?") not in sent
    assert result.conversation.history_turns_used == len(sent) < len(history)
    assert result.conversation.dropped_turns == len(history) - len(sent)


async def test_citations_are_verified_against_the_blocks_of_this_turn(
    catalog: CollectionCatalog,
) -> None:
    answer = (
        "The report does not say.\nSource:\nurl: https://volcano.example.org/kilauea-2023\n\n"
        "url: https://planets.example.com/rover-ice"  # a document of no block of this turn
    )
    llm = ScriptedLLM([STANDALONE, answer])
    result = await service(catalog, llm).ask(AnswerRequest.of(FOLLOW_UP, 1, history=HISTORY))
    [citation] = result.answer.citations
    assert citation.metadata["url"] == "https://volcano.example.org/kilauea-2023"
    assert [dict(u.cited_lines) for u in result.answer.unverified_citations] == [
        {"url": "https://planets.example.com/rover-ice"}
    ]


async def test_caller_limits_are_capped(catalog: CollectionCatalog) -> None:
    llm = ScriptedLLM(["Fine."])
    options = GenerationOptions(max_tokens=100_000, temperature=1.5, stop=("END",))
    await service(catalog, llm).ask(AnswerRequest.of(LAKE_QUESTION, 2, options=options))
    [call] = llm.calls
    assert call["max_tokens"] == 384 and call["temperature"] == 0.3 and call["stop"] == ("END",)


async def test_an_unanswered_earlier_question_still_informs_retrieval(
    catalog: CollectionCatalog,
) -> None:
    """A user turn without an answer is not sent as a chat turn (roles must alternate), but
    the condensation sees it."""
    llm = ScriptedLLM(["", "Not said."])
    result = await service(catalog, llm).ask(
        AnswerRequest.of(FOLLOW_UP, 2, history=[Turn("user", LAKE_QUESTION)])
    )
    assert LAKE_QUESTION in str(llm.calls[0]["prompt"]) and llm.calls[1]["history"] == ()
    assert result.conversation.condensation == "fallback" and "volcano.md" in names(
        result.answer.sources
    )
