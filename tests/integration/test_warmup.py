"""Start-up warm-up without a model server: it still opens and exercises everything local,
reports the model server as not ready, and does not hold the start-up."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from indexer.pipeline import Indexer
from rag.answering.service import AnswerService
from rag.answering.warmup import warm_up
from rag.collections.catalog import CollectionCatalog
from rag.generation.context_budget import ContextBudget, estimate_tokens
from rag.generation.llm import OpenAICompatibleLLM
from rag.protocols import Embedder
from rag.retrieval.retriever import Retriever
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_warm_up_opens_every_collection_and_survives_a_dead_model_server(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "Kilauea erupted again in 2023. Lava fountains reached fifty metres."
    )
    (docs / "b.txt").write_text("A sourdough starter is fed every twelve hours.")
    settings = make_settings(tmp_path / "data")
    catalog = CollectionCatalog(settings, embedder)
    for name in ("default", "second"):
        writer = catalog.writable_store(name)
        Indexer(writer).index_paths([docs])
        writer.close()
    assert not catalog._readers  # nothing opened yet: the first question would pay for it
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{closed_port()}/v1", "none", max_retries=0)
    answers = AnswerService(
        Retriever(catalog, settings.retrieval),
        llm,
        settings.llm,
        ContextBudget(estimate_tokens, 4096, 384),
    )
    report = anyio.run(warm_up, answers)
    assert report.collection_names == ("default", "second")
    assert set(catalog._readers) == {"default", "second"}
    assert all(
        store.vectors.size == 2 and store.keywords.size == 2 for store in catalog._readers.values()
    )
    assert {"encoder", "indexes", "search", "filter", "tokenizer", "llm", "total"} <= set(
        report.stages_ms
    )
    assert not report.llm_ready
    anyio.run(llm.close)
    catalog.close()
