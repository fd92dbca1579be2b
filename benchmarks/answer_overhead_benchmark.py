"""What the service adds to generation, measured against vLLM itself and against peers.

    .venv/bin/python benchmarks/answer_overhead_benchmark.py [--chunks 100000] [--rounds 3]
        [--phases overhead ttft peers load] [--output benchmarks/answer_overhead.json]

It builds a collection of the test corpus (indexed normally) plus ``--chunks`` synthetic
chunks (benchmarks/synthetic_corpus.py: Wikipedia sentences in SQL and BM25, random unit
vectors in faiss), and a second collection ``corpus`` of the test corpus alone, then starts
`rag serve` with the embedded SmolLM2 on vLLM (the `make run` path) and runs:

- local: in this process, without a model server, a cold first question against one after
  warm-up, and `prepare` + `finish` of every question (retrieval, prompt, parsing, attribution);
- overhead: the test questions one at a time, hybrid mode, on the large collection:
  ``total_ms - generate_ms`` of each answer, and the client's wall time minus ``generate_ms``;
  the first answer after start-up is reported apart (warm-up). Once with ``--pause`` seconds
  before each question (a person reading the answer), once back to back: vLLM's worker
  busy-polls its queue for a second after each request (vllm/distributed/device_communicators/
  shm_broadcast.py, ``busy_loop_s``), on one of the two cores the service computes on;
- ttft: each question streamed through ``/ask`` and its very prompt streamed straight to vLLM,
  alternately, ``--pause`` seconds before each: time to the first token of each, and the
  difference per question (questions the tiny model answers with nothing are counted apart);
- peers: LlamaIndex's query engine and a Haystack 2 pipeline, each in its own virtual
  environment (benchmarks/peer_baseline.py), retrieving from the ``corpus`` collection's chunks
  and vectors with the same model and calling the same vLLM; ours on the same collection;
- load: benchmarks/load_benchmark.py's 16 clients against this server and against vLLM.

The machine is shared: compare numbers within one run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.load_benchmark import QUESTIONS, percentile  # noqa: E402
from benchmarks.load_benchmark import benchmark as load_phase  # noqa: E402
from benchmarks.synthetic_corpus import insert_chunks, synthetic_texts  # noqa: E402
from evaluation.machine import machine_info as machine  # noqa: E402
from rag.answering.request import AnswerRequest  # noqa: E402

CORPUS_DIR = REPO_ROOT / "tests" / "data" / "corpus"
PEER_VENVS = {
    "llamaindex": REPO_ROOT / ".venv-llamaindex",
    "haystack": REPO_ROOT / ".venv-haystack",
}


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 1), "p95_ms": round(percentile(values, 0.95), 1),
            "mean_ms": round(statistics.fmean(values), 1), "n": len(values)}  # fmt: skip


def build(data_dir: Path, chunks: int) -> tuple[str, dict[str, object]]:
    """The two collections, an admin key, and the corpus collection exported for the peers."""
    from indexer.pipeline import Indexer
    from rag.access.api_keys import ApiKeyStore
    from rag.collections.store import CollectionStore
    from rag.config import load_settings
    from rag.embedding.factory import make_embedder

    base = load_settings()
    settings = load_settings(
        data_dir=data_dir, database_url=None, models_dir=base.model_cache_dir.resolve()
    )
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    timings: dict[str, object] = {}
    started = time.perf_counter()
    large = CollectionStore(settings, embedder)
    Indexer(large).index_paths([CORPUS_DIR])
    with large.session() as repo:
        insert_chunks(
            repo.session, large.collection_id, chunks, synthetic_texts(chunks), embedder.dimension
        )
    timings["sql_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    large.cache.rebuild()  # faiss and BM25 from SQL, as a replica starting empty builds them
    timings["cache_from_sql_s"] = round(time.perf_counter() - started, 1)
    key = ApiKeyStore(large.sessions).create("benchmark", [], admin=True).key
    timings["chunks"] = large.vectors.size
    large.close()
    small = CollectionStore(settings, embedder, collection="corpus")
    Indexer(small).index_paths([CORPUS_DIR])
    export_for_peers(small, data_dir / "peer_corpus")
    small.close()
    return key, timings


def export_for_peers(store: object, folder: Path) -> None:
    """Chunk texts, metadata and the very vectors the index holds, for the peers to load."""
    folder.mkdir(parents=True, exist_ok=True)
    with store.session() as repo:  # type: ignore[attr-defined]
        ids = sorted(repo.all_chunk_ids())
        stored = repo.chunks_by_ids(ids)
    index = store.vectors._index  # type: ignore[attr-defined]
    vectors = np.stack([index.reconstruct(int(i)) for i in ids])
    np.save(folder / "vectors.npy", vectors)
    with open(folder / "chunks.jsonl", "w") as out:
        for chunk_id in ids:
            chunk = stored[chunk_id]
            out.write(
                json.dumps({"id": chunk_id, "text": chunk.text, "metadata": chunk.metadata}) + "\n"
            )


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, str]]:
    from rag.config import load_settings
    from rag.generation.vllm_server import free_port
    from tests.service_process import serve_in_process

    vllm_port = free_port()
    models_dir = str(load_settings().model_cache_dir.resolve())
    env = {"RAG_LLM__EMBEDDED_PORT": str(vllm_port), "RAG_LOG_LEVEL": "WARNING", "RAG_MODELS_DIR": models_dir,
           "RAG_LLM__EMBEDDED_STARTUP_TIMEOUT_S": "1500",
           "RAG_LLM__REQUEST_TIMEOUT_S": "900"}  # fmt: skip
    with serve_in_process(data_dir, env, startup_timeout_s=1800) as url:
        yield url, f"http://127.0.0.1:{vllm_port}/v1"


async def overhead_phase(
    url: str, headers: dict[str, str], rounds: int, pause_s: float
) -> dict[str, object]:
    answers = []
    async with httpx.AsyncClient(timeout=300, headers=headers) as client:
        for question in QUESTIONS * rounds:
            await asyncio.sleep(pause_s)
            started = time.perf_counter()
            response = await client.post(
                f"{url}/ask", json={"question": question, "mode": "hybrid"}
            )
            if response.status_code != 200:  # a model server too slow on a loaded machine: counted
                answers.append({"error": response.status_code})
                continue
            wall_ms = (time.perf_counter() - started) * 1000
            answers.append({"wall_ms": wall_ms, **response.json()["timings_ms"]})
    errors = [a for a in answers if "error" in a]
    answers = [a for a in answers if "error" not in a] or [{}]
    generated = [a for a in answers if "generate_ms" in a]
    stages = sorted({key for a in generated for key in a} - {"wall_ms"})
    return {
        "pause_before_each_question_s": pause_s,
        "first_answer_after_start": answers[0],
        "answers": len(answers),
        "errors": len(errors),
        "abstained": len(answers) - len(generated),
        "total_minus_generate": summary([a["total_ms"] - a["generate_ms"] for a in generated]),
        "client_wall_minus_generate": summary([a["wall_ms"] - a["generate_ms"] for a in generated]),
        "stages": {stage: summary([a[stage] for a in generated if stage in a]) for stage in stages},
    }


async def first_token_ms(
    client: httpx.AsyncClient, method_url: str, body: dict[str, object], event: str
) -> float | None:
    """Milliseconds to the first token: an SSE ``token`` event (/ask) or a content delta (vLLM);
    None when the answer has no token (the tiny model answers some questions with nothing)."""
    started = time.perf_counter()
    async with client.stream("POST", method_url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if event == "token" and line.startswith("event: token"):
                return (time.perf_counter() - started) * 1000
            if event == "delta" and line.startswith("data: {") and '"content":"' in line.replace(" ", "") \
                    and '"content":""' not in line.replace(" ", ""):  # fmt: skip
                return (time.perf_counter() - started) * 1000
    return None


async def ttft_phase(
    url: str, vllm_url: str, headers: dict[str, str], rounds: int, pause_s: float
) -> dict[str, object]:
    from rag.config import LLMSettings
    from rag.generation.llm import CHAT_STOP_SEQUENCES

    settings = LLMSettings()
    through, direct = [], []
    async with httpx.AsyncClient(timeout=300, headers=headers) as client:
        model = (await client.get(f"{vllm_url}/models")).json()["data"][0]["id"]
        prompts = {}
        for question in QUESTIONS:
            asked = await client.post(
                f"{url}/ask", json={"question": question, "include_prompt": True, "mode": "hybrid"}
            )
            prompts[question] = asked.json()["prompt"]
        without_tokens = 0
        for question in QUESTIONS * rounds:
            await asyncio.sleep(pause_s)
            ours = await first_token_ms(
                client,
                f"{url}/ask",
                {"question": question, "stream": True, "mode": "hybrid"},
                "token",
            )
            body = {"model": model, "stream": True, "max_tokens": settings.max_answer_tokens, "temperature": 0.0,
                    "stop": CHAT_STOP_SEQUENCES,
                    "messages": [{"role": "system", "content": settings.system_prompt},
                                 {"role": "user", "content": prompts[question]}]}  # fmt: skip
            await asyncio.sleep(pause_s)
            theirs = await first_token_ms(client, f"{vllm_url}/chat/completions", body, "delta")
            if ours is None or theirs is None:
                without_tokens += 1
                continue
            through.append(ours)
            direct.append(theirs)
    return {
        "pause_before_each_request_s": pause_s,
        "questions_without_tokens": without_tokens,
        "through_ask": summary(through),
        "straight_to_vllm": summary(direct),
        "difference_per_question": summary([a - b for a, b in zip(through, direct, strict=True)]),
    }


async def ours_on_corpus(url: str, headers: dict[str, str], rounds: int) -> dict[str, object]:
    added = []
    async with httpx.AsyncClient(timeout=300, headers=headers) as client:
        for question in QUESTIONS * rounds:
            started = time.perf_counter()
            response = await client.post(
                f"{url}/ask",
                json={"question": question, "collections": ["corpus"], "mode": "dense"},
            )
            wall = (time.perf_counter() - started) * 1000
            timings = response.json()["timings_ms"]
            if "generate_ms" in timings:
                added.append(
                    (timings["total_ms"] - timings["generate_ms"], wall - timings["generate_ms"])
                )
    return {
        "total_minus_generate": summary([a for a, _ in added]),
        "client_wall_minus_generate": summary([b for _, b in added]),
    }


class _NoModel:
    """Stands in for the model server in the ``local`` phase: only the context window is asked."""

    async def context_length(self, default: int) -> int:
        return default


def local_phase(data_dir: Path, rounds: int) -> dict[str, object]:
    """In this process, no model server: a cold first question (fresh objects, no warm-up),
    then warm-up and every question: ``prepare`` (retrieve, prompt) plus ``finish`` (parse,
    citations, attribution) of an answer made of two sentences of its first passage. That is
    ``total_ms - generate_ms`` without HTTP and without vLLM competing for the two cores."""
    from rag.answering.attribution import sentences
    from rag.answering.sentence_vectors import SentenceVectorCache
    from rag.answering.service import AnswerService
    from rag.answering.warmup import warm_up_retrieval
    from rag.collections.catalog import CollectionCatalog
    from rag.config import load_settings
    from rag.embedding.factory import make_embedder
    from rag.generation.context_budget import ContextBudget, tokenizer_counter
    from rag.retrieval.retriever import Retriever

    base = load_settings()
    settings = load_settings(
        data_dir=data_dir, database_url=None, models_dir=base.model_cache_dir.resolve()
    )

    def service() -> tuple[AnswerService, CollectionCatalog]:
        catalog = CollectionCatalog(
            settings, make_embedder(settings.embedding, settings.model_cache_dir)
        )
        budget = ContextBudget(
            tokenizer_counter(settings.embedded_generator_dir), 4096, settings.llm.max_answer_tokens
        )
        retriever = Retriever(catalog, settings.retrieval)
        cache = SentenceVectorCache(settings.retrieval.attribution_cache_passages)
        return AnswerService(retriever, _NoModel(), settings.llm, budget, cache), catalog  # type: ignore[arg-type]

    async def answer(answers: AnswerService, question: str) -> dict[str, float]:
        prepared = await answers.prepare(
            AnswerRequest.of(
                question, settings.retrieval.default_top_k, mode="hybrid",
                collection_names=["default"],
            )
        )  # fmt: skip
        if prepared.abstained is not None:
            return dict(prepared.timings)
        text = " ".join(sentences(prepared.kept[0].text)[:2]) if prepared.kept else ""
        prepared.timings["generate_ms"] = 0.0
        finished = await answers.finish(prepared, text)
        return dict(finished.answer.timings_ms)

    cold_service, catalog = service()
    cold = asyncio.run(answer(cold_service, QUESTIONS[0]))
    catalog.close()
    answers, catalog = service()
    started = time.perf_counter()
    warm_up_stages, _ = warm_up_retrieval(answers)
    warm_up_ms = (time.perf_counter() - started) * 1000
    results = [asyncio.run(answer(answers, question)) for question in QUESTIONS * rounds]
    catalog.close()
    stages = sorted({key for r in results for key in r} - {"generate_ms"})
    return {
        "first_question_cold_no_warm_up": cold,
        "first_question_after_warm_up": results[0],
        "warm_up": {"total_ms": round(warm_up_ms, 1), **warm_up_stages},
        "total_minus_generate": summary([r["total_ms"] for r in results if "total_ms" in r]),
        "first_round_total_minus_generate": summary(
            [r["total_ms"] for r in results[: len(QUESTIONS)] if "total_ms" in r]
        ),
        "stages": {stage: summary([r[stage] for r in results if stage in r]) for stage in stages},
    }


def peers_phase(data_dir: Path, vllm_url: str, rounds: int) -> dict[str, object]:
    from rag.config import load_settings

    model_path = load_settings().embedding.model_path
    results: dict[str, object] = {}
    for name, venv in PEER_VENVS.items():
        python = venv / "bin" / "python"
        if not python.exists():
            results[name] = {
                "skipped": f"{python} missing (see the Makefile's bench-answer target)"
            }
            continue
        done = subprocess.run(
            [str(python), str(REPO_ROOT / "benchmarks" / "peer_baseline.py"), name, "--corpus", str(data_dir / "peer_corpus"),
             "--model", model_path, "--vllm-url", vllm_url, "--rounds", str(rounds), "--questions", json.dumps(QUESTIONS)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if done.returncode:
            results[name] = {"failed": done.stderr[-2000:]}
            continue
        peer = json.loads(done.stdout)
        queries = peer.pop("queries")
        peer["added_beyond_generation"] = summary([q["total_ms"] - q["llm_ms"] for q in queries])
        peer["retrieval"] = summary([q["retrieve_ms"] for q in queries])
        results[name] = peer
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each of the 8 questions is asked per phase"
    )
    parser.add_argument(
        "--phases", nargs="+", default=["local", "overhead", "ttft", "peers", "load"]
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=2.0,
        help="seconds between one client's requests (vLLM's worker busy-polls for 1 s after each; see the README)",
    )
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument("--load-duration", type=float, default=60.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    report: dict[str, object] = {"machine": machine(), "synthetic_chunks": args.chunks}
    with tempfile.TemporaryDirectory(prefix="rag-overhead-") as scratch:
        data_dir = Path(scratch) / "data"
        key, report["build"] = build(data_dir, args.chunks)
        headers = {"Authorization": f"Bearer {key}"}
        if "local" in args.phases:
            report["overhead_in_process_no_model"] = local_phase(data_dir, args.rounds)
            print(json.dumps(report["overhead_in_process_no_model"]), file=sys.stderr)
        served = [phase for phase in args.phases if phase != "local"]
        with serving(data_dir) if served else contextlib.nullcontext(("", "")) as (url, vllm_url):
            if "overhead" in args.phases:
                report["overhead_one_client"] = asyncio.run(
                    overhead_phase(url, headers, args.rounds, args.pause)
                )
                print(json.dumps(report["overhead_one_client"]), file=sys.stderr)
                report["overhead_one_client_back_to_back"] = asyncio.run(
                    overhead_phase(url, headers, args.rounds, 0.0)
                )
                print(json.dumps(report["overhead_one_client_back_to_back"]), file=sys.stderr)
            if "ttft" in args.phases:
                report["streaming_first_token"] = asyncio.run(
                    ttft_phase(url, vllm_url, headers, args.rounds, args.pause)
                )
                print(json.dumps(report["streaming_first_token"]), file=sys.stderr)
            if "peers" in args.phases:
                report["peers_on_test_corpus"] = {
                    "ours": asyncio.run(ours_on_corpus(url, headers, args.rounds)),
                    **peers_phase(data_dir, vllm_url, args.rounds),
                }
                print(json.dumps(report["peers_on_test_corpus"]), file=sys.stderr)
            if "load" in args.phases:
                report["load"] = asyncio.run(
                    load_phase(url, key, vllm_url, 384, args.load_clients, args.load_duration)
                )
                service, direct = report["load"]["service"], report["load"]["vllm_direct"]  # type: ignore[index]
                report["load"]["service_share_of_vllm_rps"] = round(
                    service["requests_per_s"] / direct["requests_per_s"], 3
                )  # type: ignore[index]
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
