"""Peers for the answer-overhead benchmark: LlamaIndex's query engine and a Haystack 2
pipeline answering the same questions from the same chunks and vectors, with the same
embedding model, through the same vLLM server.

Each runs in a virtual environment of its own (``make bench-answer`` builds
``.venv-llamaindex`` and ``.venv-haystack``), started by answer_overhead_benchmark.py:

    .venv-haystack/bin/python benchmarks/peer_baseline.py haystack --corpus DIR \
        --model PATH_TO_all-MiniLM-L6-v2 --vllm-url http://127.0.0.1:PORT/v1 --questions '[...]'

``DIR`` holds ``chunks.jsonl`` and ``vectors.npy``: the chunks of our index with the very
vectors it holds, loaded into each framework's in-memory store (nothing is re-embedded; the
question is embedded by the framework's own embedder on the same model). Top 5 by cosine,
the framework's default prompt, one chat completion of at most 384 tokens at temperature 0.
Per query: the whole query's wall time, the retrieval's, and the time inside the model call
(measured around the framework's LLM call), so ``total - llm`` is what the framework adds.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP_K = 5
MAX_TOKENS = 384
LLM_MS: list[float] = []


def load_corpus(folder: Path) -> tuple[list[dict[str, Any]], Any]:
    import numpy as np

    chunks = [
        json.loads(line)
        for line in (folder / "chunks.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return chunks, np.load(folder / "vectors.npy")


def timed_llm(call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            LLM_MS.append((time.perf_counter() - started) * 1000)

    return wrapper


def llamaindex(
    args: argparse.Namespace, model: str
) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.llms.openai_like import OpenAILike

    chunks, vectors = load_corpus(args.corpus)
    Settings.embed_model = HuggingFaceEmbedding(model_name=args.model, device="cpu")
    llm = OpenAILike(model=model, api_base=args.vllm_url, api_key="EMPTY", is_chat_model=True,
                     max_tokens=MAX_TOKENS, temperature=0.0, context_window=4096)  # fmt: skip
    object.__setattr__(llm, "chat", timed_llm(llm.chat))
    nodes = [TextNode(text=c["text"], id_=str(c["id"]), metadata=c["metadata"], embedding=v.tolist())
             for c, v in zip(chunks, vectors, strict=True)]  # fmt: skip
    index = VectorStoreIndex(nodes)
    engine = index.as_query_engine(llm=llm, similarity_top_k=TOP_K)
    retriever = index.as_retriever(similarity_top_k=TOP_K)
    return engine.query, retriever.retrieve


def haystack(
    args: argparse.Namespace, model: str
) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    from haystack import Document, Pipeline
    from haystack.components.builders import ChatPromptBuilder
    from haystack.components.embedders import SentenceTransformersTextEmbedder
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.dataclasses import ChatMessage
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import Secret

    chunks, vectors = load_corpus(args.corpus)
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    store.write_documents([Document(id=str(c["id"]), content=c["text"], meta=c["metadata"], embedding=v.tolist())
                           for c, v in zip(chunks, vectors, strict=True)])  # fmt: skip
    template = [ChatMessage.from_user(
        "Given these documents, answer the question.\nDocuments:\n{% for doc in documents %}{{ doc.content }}\n"
        "{% endfor %}\nQuestion: {{question}}\nAnswer:"
    )]  # fmt: skip
    generator = OpenAIChatGenerator(api_key=Secret.from_token("EMPTY"), model=model, api_base_url=args.vllm_url,
                                    generation_kwargs={"max_tokens": MAX_TOKENS, "temperature": 0.0})  # fmt: skip
    object.__setattr__(generator, "run", timed_llm(generator.run))
    pipeline = Pipeline()
    pipeline.add_component(
        "embedder", SentenceTransformersTextEmbedder(model=args.model, device=None)
    )
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=TOP_K))
    pipeline.add_component(
        "prompt", ChatPromptBuilder(template=template, required_variables=["question", "documents"])
    )
    pipeline.add_component("llm", generator)
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "prompt.documents")
    pipeline.connect("prompt.prompt", "llm.messages")
    pipeline.warm_up()
    retrieval = Pipeline()
    retrieval.add_component(
        "embedder", SentenceTransformersTextEmbedder(model=args.model, device=None)
    )
    retrieval.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=TOP_K))
    retrieval.connect("embedder.embedding", "retriever.query_embedding")
    retrieval.warm_up()
    return (
        lambda q: pipeline.run({"embedder": {"text": q}, "prompt": {"question": q}}),
        lambda q: retrieval.run({"embedder": {"text": q}}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("framework", choices=["llamaindex", "haystack"])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument(
        "--model", required=True, help="folder of all-MiniLM-L6-v2 (the packaged one)"
    )
    parser.add_argument("--vllm-url", required=True)
    parser.add_argument("--questions", required=True, help="JSON list")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import httpx

    model = httpx.get(f"{args.vllm_url}/models").json()["data"][0]["id"]
    build = llamaindex if args.framework == "llamaindex" else haystack
    answer, retrieve = build(args, model)
    questions = json.loads(args.questions)
    answer(questions[0])  # warm-up, as ours is warmed at start-up
    LLM_MS.clear()
    queries = []
    for question in questions * args.rounds:
        started = time.perf_counter()
        retrieve(question)
        retrieve_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        answer(question)
        total_ms = (time.perf_counter() - started) * 1000
        queries.append(
            {
                "total_ms": round(total_ms, 2),
                "llm_ms": round(LLM_MS.pop(), 2),
                "retrieve_ms": round(retrieve_ms, 2),
            }
        )
    versions = {}
    from importlib import metadata

    for name in (
        "llama-index-core",
        "llama-index-llms-openai-like",
        "haystack-ai",
        "sentence-transformers",
        "torch",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    print(json.dumps({"framework": args.framework, "versions": versions, "queries": queries}))


if __name__ == "__main__":
    main()
