"""Indexing throughput on a BEIR corpus, against the raw encoder on the same chunk texts.

    .venv/bin/python benchmarks/indexing_benchmark.py --beir ../shared/evaldata/scifact \
        [--backend torch|onnx-int8|openvino-int8] [--limit N] [--llamaindex-python .venv-llamaindex/bin/python]

Prints one JSON object: chunks per second of the whole indexer (read, chunk, embed,
SQL, faiss, BM25) and of the encoder alone on the very same chunk texts, their
ratio, the peak resident memory of the process, and dense retrieval quality
(nDCG@10) on the index just built. With ``--llamaindex-python`` it first runs
``llamaindex_baseline.py`` with that interpreter (same corpus, same model, same
machine, same moment), scores its retrieval the same way, and reports how many
times faster our indexer is and the difference in nDCG@10 (``make bench-indexing``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import get_args

from evaluation.beir import BeirDataset, load_beir
from evaluation.machine import machine_info
from evaluation.metrics import retrieval_metrics
from evaluation.retrieval import chunk_to_document, evaluate_mode
from indexer.pipeline import Indexer, IndexReport
from rag.collections.store import CollectionStore
from rag.config import EmbeddingSettings, load_settings
from rag.embedding.factory import make_embedder
from rag.retrieval.retriever import Retriever


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, required=True)
    backends = get_args(EmbeddingSettings.model_fields["backend"].annotation)
    parser.add_argument("--backend", choices=backends, default=load_settings().embedding.backend)
    parser.add_argument("--limit", type=int, default=0, help="index only the first N documents")
    parser.add_argument(
        "--llamaindex-python",
        type=Path,
        help="interpreter of a virtual environment with LlamaIndex (the baseline)",
    )
    args = parser.parse_args()

    dataset = load_beir(args.beir)
    base = load_settings()
    baseline = None
    if args.llamaindex_python:
        baseline = run_llamaindex(args.llamaindex_python, dataset, base.embedding.model_path)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as scratch:
        settings = load_settings(
            data_dir=Path(scratch), database_url=None, models_dir=base.model_cache_dir.resolve(),
            embedding={"backend": args.backend},
        )  # fmt: skip
        embedder = make_embedder(settings.embedding, settings.model_cache_dir)
        embedder.embed(["warm up"])  # model loading is not indexing
        store = CollectionStore(settings, embedder)
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
        dense = None
        if not args.limit:
            retriever = Retriever(store, settings.retrieval)
            dense = evaluate_mode(retriever, dataset, chunk_to_document(store), "dense").metrics[
                "ndcg@10"
            ]
        store.close()

    chunks = report.chunks_embedded
    comparison = {}
    if baseline:
        comparison = {
            "llamaindex_index_seconds": baseline["index_seconds"], "llamaindex_chunks": baseline["chunks"],
            "llamaindex_dense_ndcg@10": baseline["ndcg@10"],
            "speedup_over_llamaindex": round(baseline["index_seconds"] / index_seconds, 2),
        }  # fmt: skip
    print(json.dumps({
        "corpus": dataset.name, "backend": args.backend, "documents": report.documents, "chunks": chunks,
        "index_seconds": round(index_seconds, 1),
        "indexer_chunks_per_s": round(chunks / index_seconds, 1),
        "indexer_documents_per_s": round(report.documents / index_seconds, 1),
        "encoder_chunks_per_s": round(chunks / encoder_seconds, 1),
        "indexer_over_encoder": round(encoder_seconds / index_seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dense_ndcg@10": dense, **comparison, "machine": machine_info(),
    }))  # fmt: skip


def run_llamaindex(python: Path, dataset: BeirDataset, model_path: str) -> dict[str, float]:
    """Runs the baseline in its own interpreter on the very texts we index (``title + " " +
    text``) and queries, and scores its retrieval run like ours."""
    script = Path(__file__).with_name("llamaindex_baseline.py")
    with tempfile.TemporaryDirectory(prefix="rag-bench-llamaindex-") as scratch:
        dataset_file, run_file = Path(scratch) / "dataset.json", Path(scratch) / "run.json"
        texts = {d.metadata["beir_id"]: d.text for d in dataset.documents()}
        dataset_file.write_text(
            json.dumps({"documents": texts, "queries": dataset.queries}), encoding="utf-8"
        )
        completed = subprocess.run(
            [str(python), str(script), "--dataset", str(dataset_file), "--model", model_path, "--run", str(run_file)],
            check=True, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        result["ndcg@10"] = retrieval_metrics(dataset.qrels, json.loads(run_file.read_text()))[
            "ndcg@10"
        ]
    print(json.dumps(result), file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
