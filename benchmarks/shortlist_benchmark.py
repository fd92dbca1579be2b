"""Exact search with and without the 8-bit shortlist (rag/indexes/shortlist.py): speed, and
agreement with a full scan, on vectors of real text.

    .venv/bin/python benchmarks/shortlist_benchmark.py [--sizes 10000 50000 100000 200000]
        [--queries 300] [--output benchmarks/shortlist.json]

The vectors: SciFact's 5,183 abstracts embedded with the service's encoder, and, to reach each
size, mixtures of two of them with a little noise (``normalise(a + u·b + 0.02·noise)``), so
the index is as crowded with near neighbours as a large corpus on a few topics. The queries:
SciFact's claims, embedded the same way. Each search goes through ``FaissVectorIndex.search``
at k = 10 (``/ask``'s top_k) and k = 100 (hybrid's dense candidates): a full scan on one
faiss thread (the service's default) and on every core, and the shortlist. Agreement: the share of
queries whose k results are the full scan's k, in order, and the largest score difference.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from evaluation.machine import machine_info as machine  # noqa: E402
from rag.indexes.vector import FaissVectorIndex, IndexLayout, IndexManifest  # noqa: E402

SCIFACT = REPO_ROOT.parent / "shared" / "evaldata" / "scifact"


def embed_scifact(queries: int) -> tuple[np.ndarray, np.ndarray]:
    from rag.config import load_settings
    from rag.embedding.factory import make_embedder

    settings = load_settings()
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    with (SCIFACT / "corpus.jsonl").open() as file:
        documents = [json.loads(line) for line in file]
    with (SCIFACT / "queries.jsonl").open() as file:
        claims = [json.loads(line)["text"] for line in file][:queries]
    texts = [f"{d['title']} {d['text']}" for d in documents]
    return embedder.embed(texts), embedder.embed(claims)


def crowd(real: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    extra = size - len(real)
    if extra <= 0:
        return real[:size]
    a, b = real[rng.integers(0, len(real), extra)], real[rng.integers(0, len(real), extra)]
    mixed = a + rng.random((extra, 1), dtype=np.float32) * b
    mixed += 0.02 * rng.standard_normal(mixed.shape, dtype=np.float32)
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.vstack([real, mixed]).astype(np.float32)


def timed_searches(
    index: FaissVectorIndex, queries: np.ndarray, k: int
) -> tuple[list[list[tuple[int, float]]], dict[str, float]]:
    index.search(queries[0], k)  # builds the shortlist, if any
    results, samples = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(index.search(query, k))
        samples.append((time.perf_counter() - started) * 1000)
    return results, {
        "p50_ms": round(float(np.percentile(samples, 50)), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
    }


def agreement(
    got: list[list[tuple[int, float]]], want: list[list[tuple[int, float]]]
) -> dict[str, float]:
    same_order = sum([i for i, _ in a] == [i for i, _ in b] for a, b in zip(got, want))
    same_set = sum({i for i, _ in a} == {i for i, _ in b} for a, b in zip(got, want))
    worst = max(abs(s - t) for a, b in zip(got, want) for (_, s), (_, t) in zip(a, b, strict=True))
    return {
        "same_ids_in_order": round(same_order / len(want), 4),
        "same_ids": round(same_set / len(want), 4),
        "max_score_difference": float(f"{worst:.3g}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    info = machine()
    started = time.perf_counter()
    real, queries = embed_scifact(args.queries)
    embed_s = round(time.perf_counter() - started, 1)
    manifest = IndexManifest("scifact", real.shape[1], 254, 32)
    rows = []
    for size in args.sizes:
        vectors = crowd(real, size)
        ids = list(range(1, size + 1))
        with tempfile.TemporaryDirectory() as scratch:
            cores = int(info["cores_usable"])  # type: ignore[call-overload]
            layouts = {
                "full_scan": IndexLayout(shortlist_min_vectors=0, use_gpu=False),
                "full_scan_all_cores": IndexLayout(
                    shortlist_min_vectors=0, use_gpu=False, search_threads=cores
                ),
                "shortlist": IndexLayout(shortlist_min_vectors=1, use_gpu=False),
            }
            indexes = {}
            for name, layout in layouts.items():
                indexes[name] = FaissVectorIndex(Path(scratch) / name, manifest, layout)
                indexes[name].add(ids, vectors)
            built = time.perf_counter()
            indexes["shortlist"].search(queries[0], 1)
            row: dict[str, object] = {
                "vectors": size,
                "shortlist_build_ms": round((time.perf_counter() - built) * 1000, 1),
            }
            for k in (10, 100):
                want, full = timed_searches(indexes["full_scan"], queries, k)
                _, full_all_cores = timed_searches(indexes["full_scan_all_cores"], queries, k)
                got, short = timed_searches(indexes["shortlist"], queries, k)
                row[f"k{k}"] = {
                    "full_scan_one_thread": full,
                    f"full_scan_{cores}_threads": full_all_cores,
                    "shortlist_one_thread": short,
                    "agreement": agreement(got, want),
                }
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    result = {
        "machine": info,
        "queries": len(queries),
        "embedding_s": embed_s,
        "shortlist_factor": IndexLayout().shortlist_factor,
        "sizes": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
