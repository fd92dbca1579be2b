"""Start-up warm-up: what the first question would otherwise pay is paid before the
service takes requests.

Cold, the first ``/ask`` opened every collection's faiss and BM25 files, compiled the
encoder's kernels for its input shape, prepared SQLAlchemy's statements (the chunk fetch,
the JSON filter path), and opened the model server connection and asked it for its context
window: 693 ms of retrieval against 13-28 ms for later questions. ``warm_up`` runs each of
those once, timed; a model server that is not answering yet is logged, not fatal (``/health``
reports it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from rag.answering.service import AnswerService
from rag.collections.store import CollectionStore
from rag.errors import LLMError, RAGError
from rag.generation.prompts import build_blocks, render_block

logger = logging.getLogger(__name__)

WARM_UP_QUESTION = "What does the warm-up question ask about the documents?"
# Questions padded to 16, 32, 48 and 64 tokens: the encoder's kernels for each query shape.
_QUERY_WORDS = (4, 20, 36, 52)
_NO_MATCH_FILTER = {"source": "\x01rag-warm-up"}
# A model server that hangs must not hold the start-up for the client's whole timeout.
LLM_WARM_UP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class WarmUpReport:
    stages_ms: dict[str, float]
    collection_names: tuple[str, ...]
    llm_ready: bool


def _timed(stages: dict[str, float], name: str, step: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = step()
    stages[name] = round((time.perf_counter() - started) * 1000, 2)
    return result


def warm_up_retrieval(answers: AnswerService) -> tuple[dict[str, float], tuple[str, ...]]:
    """Encoder, indexes, hybrid search, the SQL filter path and the tokenizer (blocking)."""
    stages: dict[str, float] = {}
    retriever = answers.retriever
    embedder = retriever.embedder
    _timed(
        stages, "encoder", lambda: [embedder.embed([" ".join(["warm"] * n)]) for n in _QUERY_WORDS]
    )
    stores = _timed(stages, "indexes", lambda: _with_caches(retriever.catalog.stores()))
    chunks = _timed(stages, "search", lambda: retriever.retrieve(WARM_UP_QUESTION, 1, "hybrid"))
    _timed(
        stages,
        "filter",
        lambda: retriever.retrieve(WARM_UP_QUESTION, 1, "hybrid", _NO_MATCH_FILTER),
    )
    blocks = build_blocks(chunks)  # type: ignore[arg-type]
    sample = render_block(blocks[0]) if blocks else WARM_UP_QUESTION
    _timed(stages, "tokenizer", lambda: answers.budget.count_tokens(sample))
    return stages, tuple(store.collection for store in stores)  # type: ignore[attr-defined]


def _with_caches(stores: list[CollectionStore]) -> list[CollectionStore]:
    """Every collection's faiss and BM25 cache loaded, or built from SQL, before requests."""
    for store in stores:
        store.cache  # noqa: B018
    return stores


async def warm_up(answers: AnswerService) -> WarmUpReport:
    """Everything above, then the model server: its context window and a one-token answer."""
    started = time.perf_counter()
    try:
        stages, collection_names = await anyio.to_thread.run_sync(warm_up_retrieval, answers)
    except (
        RAGError
    ) as exc:  # e.g. an index built with another embedder: each request reports it, as before
        logger.warning("warm-up of retrieval failed: %s", exc)
        stages, collection_names = {}, ()
    llm_started = time.perf_counter()
    llm_ready = False
    with anyio.move_on_after(LLM_WARM_UP_TIMEOUT_S) as deadline:
        try:
            await answers.model_budget()
            await answers.llm.generate(WARM_UP_QUESTION, answers.settings.system_prompt, 1, 0.0)
            llm_ready = True
        except LLMError as exc:
            logger.warning(
                "warm-up: the model server is not answering (%s); /health reports it", exc
            )
    if deadline.cancelled_caught:
        logger.warning(
            "warm-up: no answer from the model server within %s s", LLM_WARM_UP_TIMEOUT_S
        )
    stages["llm"] = round((time.perf_counter() - llm_started) * 1000, 2)
    stages["total"] = round((time.perf_counter() - started) * 1000, 2)
    logger.info("warm-up done in %.0f ms: %s", stages["total"], stages)
    return WarmUpReport(stages, collection_names, llm_ready)
