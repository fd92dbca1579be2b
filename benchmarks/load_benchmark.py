"""Load test: N concurrent clients asking for a fixed time, then the same prompts sent to vLLM directly.

    .venv/bin/python benchmarks/load_benchmark.py [--clients 16] [--duration 60] [--output FILE]
        (starts `rag serve` on the test corpus with the embedded tiny model, and stops it)
    .venv/bin/python benchmarks/load_benchmark.py --url http://host:8000 --key KEY --vllm-url http://vllm:8000/v1
        (a running deployment)

Phase 1 sends POST /ask (non-streaming) from every client in a loop until the time is up.
Phase 2 sends the very prompts the service built (include_prompt) straight to the model
server's /chat/completions with the same settings and concurrency; with ``--with-streamed``,
phase 3 sends them streamed and reads each stream to its end, as the service asks since
issue 16 (what streaming itself costs the model server). The difference in
latency is what the service adds on top of vLLM (retrieval, prompt, citations, attribution).
Prints one JSON object; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How high were the lava fountains when Kilauea erupted in 2023?",
    "What does the duration of the honeybee waggle run encode?",
    "How deep below the surface is the ice found by the rover?",
    "How often should a sourdough starter be fed?",
    "How thick is the ice of the Aletsch Glacier at Konkordiaplatz?",
    "How much does the Trail X bicycle frame weigh?",
    "When was the Gutenberg Bible printed?",
    "Who founded the Café Procope?",
]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_clients(
    clients: int, duration_s: float, request: Callable[[httpx.AsyncClient, int], Awaitable[int]]
) -> dict[str, object]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + duration_s
    counter = itertools.count()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = await request(client, next(counter))
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] += 1

    started = time.monotonic()
    async with httpx.AsyncClient(
        timeout=300, limits=httpx.Limits(max_connections=clients)
    ) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    elapsed = time.monotonic() - started
    errors = sum(n for status, n in statuses.items() if not status.startswith("2"))
    return {
        "requests": len(latencies),
        "elapsed_s": round(elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 3),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "errors": errors,
        "status_counts": dict(statuses),
    }


@contextmanager
def local_service() -> Iterator[tuple[str, str, str, int]]:
    """`rag serve` on the test corpus: (url, key, model server url, max answer tokens)."""
    sys.path.insert(0, str(REPO_ROOT))
    from indexer.pipeline import Indexer
    from rag.access.api_keys import ApiKeyStore
    from rag.collections.store import CollectionStore
    from rag.config import load_settings
    from rag.embedding.factory import make_embedder
    from rag.generation.vllm_server import free_port
    from tests.service_process import serve_in_process

    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="rag-load-") as scratch:
        data_dir = Path(scratch) / "data"
        settings = load_settings(
            data_dir=data_dir, database_url=None, models_dir=base.model_cache_dir.resolve()
        )
        store = CollectionStore(
            settings, make_embedder(settings.embedding, settings.model_cache_dir)
        )
        Indexer(store).index_paths([REPO_ROOT / "tests" / "data" / "corpus"])
        key = ApiKeyStore(store.sessions).create("load", [], admin=True).key
        store.close()
        vllm_port = free_port()
        env = {"RAG_MODELS_DIR": str(settings.model_cache_dir), "RAG_LLM__EMBEDDED_PORT": str(vllm_port),
               "RAG_LOG_LEVEL": "WARNING"}  # fmt: skip
        with serve_in_process(data_dir, env) as url:
            yield url, key, f"http://127.0.0.1:{vllm_port}/v1", settings.llm.max_answer_tokens


async def benchmark(
    url: str,
    key: str,
    vllm_url: str,
    max_tokens: int,
    clients: int,
    duration_s: float,
    with_streamed: bool = False,
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=300) as client:
        prompts = []
        for question in QUESTIONS:
            response = await client.post(
                f"{url}/ask", json={"question": question, "include_prompt": True}, headers=headers
            )
            response.raise_for_status()
            prompts.append(response.json()["prompt"])
        model = (await client.get(f"{vllm_url}/models")).json()["data"][0]["id"]

    async def ask(client: httpx.AsyncClient, n: int) -> int:
        response = await client.post(
            f"{url}/ask", json={"question": QUESTIONS[n % len(QUESTIONS)]}, headers=headers
        )
        return response.status_code

    def body(n: int, stream: bool) -> dict[str, object]:
        from rag.config import LLMSettings
        from rag.generation.llm import CHAT_STOP_SEQUENCES

        return {
            "model": model,
            "messages": [{"role": "system", "content": LLMSettings().system_prompt},
                         {"role": "user", "content": prompts[n % len(prompts)]}],
            "max_tokens": max_tokens, "temperature": 0.0, "stop": CHAT_STOP_SEQUENCES,
            "stream": stream, **({"stream_options": {"include_usage": True}} if stream else {}),
        }  # fmt: skip

    async def direct(client: httpx.AsyncClient, n: int) -> int:
        response = await client.post(f"{vllm_url}/chat/completions", json=body(n, False))
        return response.status_code

    async def direct_streamed(client: httpx.AsyncClient, n: int) -> int:
        """As the service asks since issue 16: streamed, read to its end."""
        async with client.stream(
            "POST", f"{vllm_url}/chat/completions", json=body(n, True)
        ) as response:
            async for _ in response.aiter_lines():
                pass
        return response.status_code

    service = await run_clients(clients, duration_s, ask)
    model_only = await run_clients(clients, duration_s, direct)
    streamed = await run_clients(clients, duration_s, direct_streamed) if with_streamed else None
    return {
        "clients": clients,
        "duration_s": duration_s,
        "service": service,
        "vllm_direct": model_only,
        **({"vllm_direct_streamed": streamed} if streamed else {}),
        "service_overhead_p50_ms": round(service["p50_ms"] - model_only["p50_ms"], 1),  # type: ignore[operator]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running service; default: start one on the test corpus")
    parser.add_argument("--key", default="")
    parser.add_argument("--vllm-url", help="its model server (OpenAI API base, …/v1)")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--with-streamed", action="store_true",
        help="a third phase: the same prompts streamed straight to vLLM (as the service asks)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    if args.url:
        result = asyncio.run(
            benchmark(
                args.url,
                args.key,
                args.vllm_url,
                args.max_tokens,
                args.clients,
                args.duration,
                args.with_streamed,
            )  # fmt: skip
        )
    else:
        with local_service() as (url, key, vllm_url, max_tokens):
            result = asyncio.run(
                benchmark(
                    url,
                    key,
                    vllm_url,
                    max_tokens,
                    args.clients,
                    args.duration,
                    args.with_streamed,
                )  # fmt: skip
            )
    from evaluation.machine import machine_info

    text = json.dumps({**result, "machine": machine_info()}, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
