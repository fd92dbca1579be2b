"""The heavy objects the service builds once at start-up and shares."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from indexer.jobs import QUEUED, IngestionJobs
from rag.access.api_keys import ApiKeyStore
from rag.answering.sentence_vectors import SentenceVectorCache
from rag.answering.service import AnswerService
from rag.answering.summarization import Summarizer
from rag.answering.warmup import WarmUpReport, warm_up
from rag.collections.catalog import CollectionCatalog
from rag.config import Settings
from rag.embedding.factory import make_embedder
from rag.generation.context_budget import ContextBudget, tokenizer_counter
from rag.generation.llm import OpenAICompatibleLLM
from rag.generation.model_prep import prepare_generator
from rag.generation.vllm_server import EmbeddedVLLMServer, free_port
from rag.retrieval.reranking import CrossEncoderReranker
from rag.retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

WATCHDOG_INTERVAL_S = 5.0
RETRY_DELAY_S = 5.0


@dataclass
class Container:
    settings: Settings
    catalog: CollectionCatalog
    keys: ApiKeyStore
    jobs: IngestionJobs
    llm: OpenAICompatibleLLM
    answers: AnswerService
    summarizer: Summarizer
    embedded: EmbeddedVLLMServer | None = None
    warm_up_report: WarmUpReport | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _job_queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue, repr=False)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.llm.close()
        if self.embedded:
            await anyio.to_thread.run_sync(self.embedded.stop)
        self.catalog.close()

    def start_background_tasks(self) -> None:
        if self.embedded:
            self._tasks.append(asyncio.create_task(self._restart_when_dead(self.embedded)))
        for job_id in self.jobs.pending():
            self._job_queue.put_nowait(job_id)
        for _ in range(self.settings.api.ingestion_workers):  # one slow upload holds one worker
            self._tasks.append(asyncio.create_task(self._run_jobs()))
        # What other processes and replicas write reaches this one's caches (SQL's change log).
        self.catalog.follow(self.settings.indexing.follow_interval_s)

    def enqueue_job(self, job_id: str) -> None:
        self._job_queue.put_nowait(job_id)

    async def _run_jobs(self) -> None:
        """One ingestion worker: jobs one at a time, off the event loop; a retried job waits its turn again."""
        loop = asyncio.get_running_loop()
        while True:
            job_id = await self._job_queue.get()
            try:
                outcome = await anyio.to_thread.run_sync(self.jobs.run, job_id)
            except Exception:
                logger.exception("ingestion job %s crashed the worker step", job_id)
                continue
            if outcome is not None and outcome.status == QUEUED:
                loop.call_later(
                    RETRY_DELAY_S * outcome.attempts, self._job_queue.put_nowait, job_id
                )

    async def _restart_when_dead(self, server: EmbeddedVLLMServer) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            if not server.running:
                logger.error("embedded vLLM died; restarting it:\n%s", server.log_tail(10))
                server.restart()
                try:
                    await anyio.to_thread.run_sync(
                        server.wait_ready, self.settings.llm.embedded_startup_timeout_s
                    )
                except Exception:  # keep watching; /health reports the outage
                    logger.exception("embedded vLLM did not come back")


def embedded_server(settings: Settings) -> EmbeddedVLLMServer:
    """The embedded vLLM server on the prepared generator; a model cache that lacks it (a new
    ``RAG_MODELS_DIR``) gets it converted now from the packaged GGUF instead of failing."""
    source = Path(settings.llm.embedded_source_gguf) if settings.llm.embedded_source_gguf else None
    prepare_generator(settings.embedded_generator_dir, source)
    return EmbeddedVLLMServer(
        model_dir=settings.embedded_generator_dir,
        port=settings.llm.embedded_port or free_port(),
        log_path=settings.data_dir / "logs" / "vllm.log",
        max_model_len=settings.llm.embedded_max_model_len,
        kv_cache_gb=settings.llm.embedded_kv_cache_gb,
    )


async def build_container(settings: Settings) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = embedded_server(settings) if settings.llm.embedded else None
    if embedded:
        embedded.start()  # loads in parallel with the embedder and the database
    try:
        embedder = make_embedder(settings.embedding, settings.model_cache_dir)
        catalog = await anyio.to_thread.run_sync(CollectionCatalog, settings, embedder)
        if embedded:
            await anyio.to_thread.run_sync(
                embedded.wait_ready, settings.llm.embedded_startup_timeout_s
            )
    except BaseException:
        if embedded:
            embedded.stop()
        raise
    llm = OpenAICompatibleLLM(
        base_url=embedded.base_url if embedded else settings.llm.base_url or "",
        model=embedded.served_model_name if embedded else settings.llm.model,
        api_key=settings.llm.api_key,
        timeout_s=settings.llm.request_timeout_s,
        max_retries=settings.llm.max_retries,
        mode=settings.llm.prompt_mode,
    )
    tokenizer_dir = settings.llm.tokenizer or (str(embedded.model_dir) if embedded else "")
    count_tokens = tokenizer_counter(Path(tokenizer_dir) if tokenizer_dir else None)
    budget = ContextBudget(
        count_tokens, settings.llm.context_length, settings.llm.max_answer_tokens
    )
    reranker = (
        CrossEncoderReranker(settings.retrieval.reranker_model)
        if settings.retrieval.reranker_model
        else None
    )
    container = Container(
        settings=settings,
        catalog=catalog,
        keys=ApiKeyStore(catalog.shared.sessions),
        jobs=IngestionJobs(
            catalog,
            settings.data_dir / "uploads",
            settings.api.job_max_attempts,
        ),
        llm=llm,
        answers=AnswerService(
            Retriever(catalog, settings.retrieval, reranker),
            llm,
            settings.llm,
            budget,
            SentenceVectorCache(settings.retrieval.attribution_cache_passages),
        ),  # fmt: skip
        summarizer=Summarizer(llm, settings.llm, budget),
        embedded=embedded,
    )
    if settings.api.auth == "keys":
        await anyio.to_thread.run_sync(print_first_admin_key, container.keys)
    if settings.api.warm_up:
        container.warm_up_report = await warm_up(container.answers)
    container.start_background_tasks()
    return container


def print_first_admin_key(keys: ApiKeyStore) -> None:
    """On the very first start with keys required, make an admin key and show it once."""
    if keys.count():
        return
    created = keys.create("first-admin", [], admin=True)
    logger.warning(
        "no API key existed, so an admin key was created. It is shown only now; keep it:\n\n"
        "    %s\n\nSend it as `Authorization: Bearer <key>`; make more with `rag keys create`.",
        created.key,
    )
