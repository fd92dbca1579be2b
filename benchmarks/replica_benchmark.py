"""Replicas that share only SQL: the SQL write rate, a cache built from SQL, the follow delay.

- **SQL write rate**: documents of 5 chunks written through ``CollectionStore.write_documents``
  (the path every indexer takes: chunks, their vectors, the change log) in batches of 256
  documents: the ceiling of bulk indexing however many GPUs embed.
- **Cache from SQL**: what a replica starting with an empty data dir pays to build faiss and
  BM25 for N chunks (vectors read from SQL, BM25 built over the texts).
- **Follow delay**: a writer commits one document at a time; a reader's catalog follows the
  change log (``RAG_INDEXING__FOLLOW_INTERVAL_S``); the delay is from commit to the reader's
  cache holding the new chunks, p50/p95.

    python benchmarks/replica_benchmark.py [--chunks 100000] [--postgres URL] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.synthetic_corpus import insert_chunks, synthetic_texts, unit_vectors  # noqa: E402
from evaluation.machine import machine_info  # noqa: E402
from rag.collections.catalog import CollectionCatalog  # noqa: E402
from rag.collections.store import CollectionStore  # noqa: E402
from rag.config import Settings, load_settings  # noqa: E402
from rag.embedding.factory import make_embedder  # noqa: E402
from rag.storage.repository import EmbeddedDocument  # noqa: E402
from rag.types import ChunkSpan  # noqa: E402

CHUNKS_PER_DOCUMENT = 5
BATCH_DOCUMENTS = 256


def documents(count: int, dimension: int, seed: int) -> list[EmbeddedDocument]:
    vectors = unit_vectors(count * CHUNKS_PER_DOCUMENT, dimension, seed)
    texts = synthetic_texts(count * CHUNKS_PER_DOCUMENT, seed)
    made = []
    for n in range(count):
        spans = tuple(
            ChunkSpan(i, text := next(texts), i * 1000, i * 1000 + len(text), 100)
            for i in range(CHUNKS_PER_DOCUMENT)
        )
        rows = vectors[n * CHUNKS_PER_DOCUMENT : (n + 1) * CHUNKS_PER_DOCUMENT]
        made.append(
            EmbeddedDocument(f"bench/{seed}/{n}.txt", uuid.uuid4().hex, {"n": n}, spans, rows)
        )
    return made


def write_rate(store: CollectionStore, total_documents: int) -> dict[str, float]:
    batches = [
        documents(BATCH_DOCUMENTS, store.manifest.dimension, seed)
        for seed in range(total_documents // BATCH_DOCUMENTS)
    ]
    started = time.perf_counter()
    for batch in batches:
        store.write_documents(batch)
    seconds = time.perf_counter() - started
    chunks = len(batches) * BATCH_DOCUMENTS * CHUNKS_PER_DOCUMENT
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds)}


def cache_build(settings: Settings, chunks: int, embedder: object) -> dict[str, float]:
    store = CollectionStore(settings, embedder, collection="large")  # type: ignore[arg-type]
    with store.session() as repo:
        started = time.perf_counter()
        insert_chunks(
            repo.session,
            store.collection_id,
            chunks,
            synthetic_texts(chunks),
            store.manifest.dimension,
        )
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    size = store.vectors.size  # opens the cache: nothing on disk, so built from SQL
    built = time.perf_counter() - started
    store.close()
    return {"chunks": size, "sql_insert_s": round(inserted, 1), "cache_from_sql_s": round(built, 1)}


def follow_delay(settings: Settings, embedder: object, rounds: int) -> dict[str, float]:
    writer = CollectionStore(settings, embedder, collection="follow")  # type: ignore[arg-type]
    reader_settings = settings.model_copy(
        update={
            "data_dir": settings.data_dir / "replica",
            "database_url": settings.resolved_database_url,
        }
    )
    catalog = CollectionCatalog(reader_settings, embedder, migrate=False)  # type: ignore[arg-type]
    for store in catalog.stores():  # every cache built first, as a replica does at start
        store.cache  # noqa: B018
    [served] = catalog.stores(["follow"])
    catalog.follow(settings.indexing.follow_interval_s)
    delays = []
    for n in range(rounds):
        before = served.vectors.size
        document = documents(1, writer.manifest.dimension, 10_000 + n)
        changed = threading.Event()
        started = time.perf_counter()
        writer.write_documents(document)
        while served.vectors.size == before:
            changed.wait(0.005)
        delays.append(time.perf_counter() - started)
        time.sleep(
            float(np.random.default_rng(n).uniform(0, 0.5))
        )  # commits at any phase of a poll
    catalog.close()
    writer.close()
    ordered = sorted(delays)
    return {
        "rounds": rounds,
        "follow_interval_s": settings.indexing.follow_interval_s,
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def run(database_url: str | None, chunks: int, rounds: int) -> dict[str, object]:
    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="rag-replicas-") as folder:
        settings = load_settings(
            data_dir=Path(folder),
            database_url=database_url,
            models_dir=base.model_cache_dir.resolve(),
        )
        embedder = make_embedder(settings.embedding, settings.model_cache_dir)
        store = CollectionStore(settings, embedder, collection="writes")
        result = {
            "database": settings.resolved_database_url.split(":", 1)[0],
            "write_rate": write_rate(store, 20 * BATCH_DOCUMENTS),
            "cache_build": cache_build(settings, chunks, embedder),
            "follow_delay": follow_delay(settings, embedder, rounds),
        }
        store.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--postgres", help="also measure on this PostgreSQL (a database the user may write)"
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "replicas.json")
    args = parser.parse_args()
    results = [run(None, args.chunks, args.rounds)]
    if args.postgres:
        results.append(run(args.postgres, args.chunks, args.rounds))
    report = {"machine": machine_info(), "results": results}
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
