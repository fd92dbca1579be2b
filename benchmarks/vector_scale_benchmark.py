"""faiss at scale: exact search against the IVF layout the index switches to past its limit.

    .venv/bin/python benchmarks/vector_scale_benchmark.py [--vectors 1000000] [--nprobe 32]

Synthetic, clustered, normalised 384-d vectors (the embedder's size) stand in for chunks.
Prints one JSON object: build time, ms per query and recall@10 of IVF against exact search,
and bytes of index per chunk. Not run by CI (minutes and a few GB at a million).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from evaluation.machine import machine_info
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest

DIMENSION = 384


def clustered(count: int, seed: int, centres: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, DIMENSION)).astype(np.float32)
    vectors = middle[rng.integers(0, centres, count)] + 0.5 * rng.normal(
        size=(count, DIMENSION)
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def timed_search(index: FaissVectorIndex, queries: np.ndarray) -> tuple[list[set[int]], float]:
    started = time.perf_counter()
    results = [{i for i, _ in index.search(q, 10)} for q in queries]
    return results, 1000 * (time.perf_counter() - started) / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    manifest = IndexManifest(
        embedder="synthetic", dimension=DIMENSION, chunk_max_tokens=254, chunk_overlap_tokens=32
    )
    vectors, ids = clustered(args.vectors, seed=1), list(range(1, args.vectors + 1))
    queries = clustered(args.queries, seed=2)
    with tempfile.TemporaryDirectory() as scratch:
        exact = FaissVectorIndex(
            Path(scratch) / "exact", manifest, IndexLayout(exact_max_vectors=10**12)
        )
        exact.add(ids, vectors)
        truth, exact_ms = timed_search(exact, queries)
        exact.save()
        exact_bytes = (Path(scratch) / "exact" / "vectors.faiss").stat().st_size
        del exact

        started = time.perf_counter()
        ivf = FaissVectorIndex(
            Path(scratch) / "ivf", manifest, IndexLayout(exact_max_vectors=1, nprobe=args.nprobe)
        )
        ivf.add(ids, vectors)
        ivf.fit_layout()
        build_s = time.perf_counter() - started
        found, ivf_ms = timed_search(ivf, queries)
        ivf.save()
        ivf_bytes = (Path(scratch) / "ivf" / "vectors.faiss").stat().st_size
    recall = float(np.mean([len(a & b) / 10 for a, b in zip(truth, found, strict=True)]))
    print(json.dumps({
        "vectors": args.vectors, "dimension": DIMENSION, "nprobe": args.nprobe,
        "exact_ms_per_query": round(exact_ms, 2), "ivf_ms_per_query": round(ivf_ms, 2),
        "ivf_recall_at_10": round(recall, 4), "ivf_build_s": round(build_s, 1),
        "exact_bytes_per_chunk": round(exact_bytes / args.vectors, 1),
        "ivf_bytes_per_chunk": round(ivf_bytes / args.vectors, 1),
        "machine": machine_info(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
