"""``rag index --ray`` against the local indexer on SciFact, on this machine, in one run.

    .venv/bin/python benchmarks/ray_indexing_benchmark.py [--beir ../shared/evaldata/scifact] \
        [--actors 2] [--parts 8] [--limit N] [--output benchmarks/ray_indexing.json]

The corpus (BEIR: a document's text is title + " " + text) is written as ``--parts`` JSONL
files, then indexed from scratch twice into SQLite: by the local indexer (``Indexer``) and by
the Ray pipeline on a local cluster of this machine's cores with ``--actors`` CPU embedder
actors. Both read, chunk, embed and write the same files with the same code; each is timed
from the call to the report, its model loading included (the local indexer loads the
embedder on first use, each Ray actor its own copy). The Ray cluster's own start is timed
apart. Writes one JSON object with the machine (evaluation/machine.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ray

from evaluation.machine import machine_info
from indexer.pipeline import Indexer
from indexer.ray_indexing import RayIndexer, connect
from rag.collections.store import CollectionStore
from rag.config import load_settings
from rag.embedding.factory import make_embedder


def write_parts(corpus: Path, folder: Path, parts: int, limit: int) -> int:
    lines = corpus.read_text(encoding="utf-8").splitlines()
    if limit:
        lines = lines[:limit]
    folder.mkdir()
    outputs = [(folder / f"part{n:02d}.jsonl").open("w", encoding="utf-8") for n in range(parts)]
    for number, line in enumerate(lines):
        record = json.loads(line)
        text = f"{record.get('title', '')} {record['text']}".strip()
        outputs[number % parts].write(json.dumps({"id": record["_id"], "text": text}) + "\n")
    for output in outputs:
        output.close()
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, default=Path("../shared/evaldata/scifact"))
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/ray_indexing.json"))
    args = parser.parse_args()

    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="rag-ray-bench-") as scratch:
        folder = Path(scratch) / "scifact"
        documents = write_parts(args.beir / "corpus.jsonl", folder, args.parts, args.limit)
        results: dict[str, dict[str, float]] = {}

        settings = load_settings(
            data_dir=Path(scratch) / "local", database_url=None,
            models_dir=base.model_cache_dir.resolve(),
        )  # fmt: skip
        store = CollectionStore(
            settings, make_embedder(settings.embedding, settings.model_cache_dir)
        )
        started = time.perf_counter()
        report = Indexer(store).index_paths([folder])
        results["local"] = timing(report.as_dict(), time.perf_counter() - started)
        store.close()

        settings = load_settings(
            data_dir=Path(scratch) / "ray", database_url=None,
            models_dir=base.model_cache_dir.resolve(),
            ray={"embed_actors": args.actors},
        )  # fmt: skip
        started = time.perf_counter()
        connect("local", len(os.sched_getaffinity(0)))
        cluster_seconds = time.perf_counter() - started
        store = CollectionStore(
            settings, make_embedder(settings.embedding, settings.model_cache_dir)
        )
        started = time.perf_counter()
        report = RayIndexer(store).index([str(folder)])
        results["ray"] = timing(report.as_dict(), time.perf_counter() - started)
        results["ray"]["cluster_start_seconds"] = round(cluster_seconds, 1)
        store.close()
        ray.shutdown()

    ratio = results["ray"]["documents_per_s"] / results["local"]["documents_per_s"]
    record = {
        "corpus": "scifact",
        "documents": documents,
        "files": args.parts,
        "backend": base.embedding.backend,
        "ray_embed_actors": args.actors,
        "ray_version": ray.__version__,
        **{
            f"{name}_{key}": value
            for name, result in results.items()
            for key, value in result.items()
        },
        "ray_over_local": round(ratio, 3),
        "machine": machine_info(),
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def timing(report: dict[str, object], seconds: float) -> dict[str, float]:
    documents = float(report["documents"])  # type: ignore[arg-type]
    chunks = float(report["chunks_embedded"])  # type: ignore[arg-type]
    assert not report["failed"], report["failed"]
    return {
        "seconds": round(seconds, 1),
        "documents": documents,
        "chunks": chunks,
        "documents_per_s": round(documents / seconds, 1),
        "chunks_per_s": round(chunks / seconds, 1),
    }


if __name__ == "__main__":
    main()
