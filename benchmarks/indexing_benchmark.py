"""Indexing throughput on a BEIR corpus, against the raw encoder on the same chunk texts.

    .venv/bin/python benchmarks/indexing_benchmark.py --beir ../shared/evaldata/scifact \
        [--backend torch|onnx-int8] [--limit N]

Prints one JSON object: chunks per second of the whole indexer (read, chunk, embed,
SQL, faiss, BM25) and of the encoder alone on the very same chunk texts, their
ratio, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import tempfile
import time
from pathlib import Path

from indexer.pipeline import Indexer, IndexReport
from rag.config import load_settings
from rag.embedding import make_embedder
from rag.evaluation.beir import load_beir
from rag.store import KnowledgeStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--backend", choices=["torch", "onnx-int8"], default=load_settings().embedding.backend)
    parser.add_argument("--limit", type=int, default=0, help="index only the first N documents")
    args = parser.parse_args()

    dataset = load_beir(args.beir)
    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as scratch:
        settings = load_settings(
            data_dir=Path(scratch), database_url=None, models_dir=base.model_cache_dir.resolve(),
            embedding={"backend": args.backend},
        )  # fmt: skip
        embedder = make_embedder(settings.embedding, settings.model_cache_dir)
        embedder.embed(["warm up"])  # model loading is not indexing
        store = KnowledgeStore(settings, embedder)
        documents = dataset.documents()
        if args.limit:
            documents = itertools.islice(documents, args.limit)
        report = IndexReport()
        started = time.perf_counter()
        with store.writer_lock():
            Indexer(store).index_documents(documents, report)
        index_seconds = time.perf_counter() - started

        with store.session() as repo:
            texts = [text for _, text in repo.iter_chunk_texts()]
        started = time.perf_counter()
        embedder.embed(texts)
        encoder_seconds = time.perf_counter() - started
        store.close()

    chunks = report.chunks_embedded
    print(json.dumps({
        "corpus": dataset.name, "backend": args.backend, "documents": report.documents, "chunks": chunks,
        "index_seconds": round(index_seconds, 1),
        "indexer_chunks_per_s": round(chunks / index_seconds, 1),
        "indexer_documents_per_s": round(report.documents / index_seconds, 1),
        "encoder_chunks_per_s": round(chunks / encoder_seconds, 1),
        "indexer_over_encoder": round(encoder_seconds / index_seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
