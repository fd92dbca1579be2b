"""Start-up warm-up without a model server: it still opens and exercises everything local,
reports the model server as not ready, and does not hold the start-up."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from indexer.pipeline import Indexer
from rag.answering import AnswerService
from rag.context_budget import ContextBudget, estimate_tokens
from rag.embedding import Embedder
from rag.knowledge_base import KnowledgeBase
from rag.llm.client import OpenAICompatibleLLM
from rag.retrieval import Retriever
from rag.warmup import warm_up
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_warm_up_opens_every_collection_and_survives_a_dead_model_server(tmp_path: Path, embedder: Embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Kilauea erupted again in 2023. Lava fountains reached fifty metres.")
    (docs / "b.txt").write_text("A sourdough starter is fed every twelve hours.")
    settings = make_settings(tmp_path / "data")
    knowledge = KnowledgeBase(settings, embedder)
    for name in ("default", "second"):
        writer = knowledge.writer(name)
        Indexer(writer).index_paths([docs])
        writer.close()
    assert not knowledge._readers  # nothing opened yet: the first question would pay for it
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{closed_port()}/v1", "none", max_retries=0)
    answers = AnswerService(
        Retriever(knowledge, settings.retrieval), llm, settings.llm, ContextBudget(estimate_tokens, 4096, 384)
    )
    report = anyio.run(warm_up, answers)
    assert report.collection_names == ("default", "second")
    assert set(knowledge._readers) == {"default", "second"}
    assert all(store.vectors.size == 2 and store.keywords.size == 2 for store in knowledge._readers.values())
    assert {"encoder", "indexes", "search", "filter", "tokenizer", "llm", "total"} <= set(report.stages_ms)
    assert not report.llm_ready
    anyio.run(llm.close)
    knowledge.close()
