"""faiss past a million chunks: IVF of full vectors against compressed IVF layouts.

    nice -n 19 .venv/bin/python benchmarks/compressed_layout_benchmark.py \\
        [--vectors 1000000] [--layouts ivf,ivf_sq8,ivf_pq48,ivf_pq96] [--train-at 1000000]

Synthetic, clustered, normalised 384-d vectors (the embedder's size; 2,000 centres plus noise,
as in vector_scale_benchmark.py) are generated a block at a time, so ten million (15 GB of
float32) never sit in memory. Queries are drawn around the same centres. Exact top-10 is
computed by brute force (numpy matmul per block, a running top-10), never with a flat index.

Like the service, the lists are trained once, when the collection reaches ``--train-at``
vectors (RAG_INDEXING__COMPRESSED_MIN_VECTORS, 1M by default: 4·√N = 4,000 lists, trained on
64 vectors a list), and later vectors are added to those lists. All layouts share that coarse
quantizer and its assignment of vectors to lists. ``ivf_sq8`` is the service's compressed
layout (``rag.indexes.vector.compressed_index``); the PQ layouts are the alternatives measured.
``ivf_pq48+rerank100`` (only when the full vectors fit in RAM) reranks 100 PQ candidates with
the full vectors: what a refine step that reads vectors from outside the index would give.

Prints one JSON object per layout: recall@10 vs exact, ms/query p50/p95 with one thread and
with faiss's default threads, bytes per chunk (index file / N and process RSS growth / N),
build times, and whether a filtered search kept to the allowed ids. Not run by CI.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

from evaluation.machine import machine_info
from rag.indexes.vector import (
    TRAINING_PER_LIST,
    FaissVectorIndex,
    IndexLayout,
    IndexManifest,
    compressed_index,
    ivf_lists,
)

DIMENSION = 384
CENTRES = 2000
MANIFEST = IndexManifest(
    embedder="synthetic", dimension=DIMENSION, chunk_max_tokens=254, chunk_overlap_tokens=32
)


def centres() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(CENTRES, DIMENSION)).astype(np.float32)


def clustered(count: int, seed: int | tuple[int, int], middle: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = middle[rng.integers(0, len(middle), count)]
    vectors += 0.5 * rng.normal(size=(count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def blocks(total: int, size: int, middle: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first position, vectors) a block at a time; the same blocks on every pass."""
    for number, start in enumerate(range(0, total, size)):
        yield start, clustered(min(size, total - start), (1, number), middle)


def rss_bytes() -> int:
    """Resident memory after handing freed heap back to the system (glibc)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def new_layout(name: str, quantizer: faiss.IndexFlatIP, lists: int) -> faiss.IndexIVF:
    index: faiss.IndexIVF
    if name == "ivf":
        index = faiss.IndexIVFFlat(quantizer, DIMENSION, lists, faiss.METRIC_INNER_PRODUCT)
    elif name == "ivf_sq8":
        index = compressed_index(DIMENSION, lists)
        index.quantizer.add(quantizer.reconstruct_n(0, lists))
    elif name.startswith("ivf_pq"):
        index = faiss.IndexIVFPQ(
            quantizer, DIMENSION, lists, int(name[6:]), 8, faiss.METRIC_INNER_PRODUCT
        )
    else:
        raise ValueError(name)
    return index


def percentile_ms(index: FaissVectorIndex, queries: np.ndarray, threads: int) -> dict[str, float]:
    faiss.omp_set_num_threads(threads)
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, 10)
        times.append(1000 * (time.perf_counter() - started))
    return {"p50": round(float(np.percentile(times, 50)), 3),
            "p95": round(float(np.percentile(times, 95)), 3)}  # fmt: skip


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)]))  # fmt: skip


def streamed(args: argparse.Namespace) -> None:
    """The service's compressed layout built as the service grows it, in one pass: vectors are
    held until ``--train-at`` (the lists are trained on a sample of them), then every block is
    added to the trained index and dropped. Exact top-10 is updated from the same blocks; a row
    is measured at each of ``--checkpoints`` and at the end."""
    middle = centres()
    queries = clustered(args.queries, 2, middle)
    train_at = min(args.train_at, args.vectors)
    lists = ivf_lists(train_at)
    truth = RunningTop10(args.queries)
    checkpoints = {int(n) for n in args.checkpoints.split(",") if n}
    rows: list[dict[str, object]] = []
    rss_before = rss_bytes()
    built = compressed_index(DIMENSION, lists)
    held: list[np.ndarray] = []
    seconds = {"generate": 0.0, "truth": 0.0, "train": 0.0, "add": 0.0}
    clock = time.perf_counter()
    for start, block in blocks(args.vectors, args.block, middle):
        seconds["generate"] += time.perf_counter() - clock
        clock = time.perf_counter()
        truth.update(queries @ block.T, start)
        seconds["truth"] += time.perf_counter() - clock
        clock = time.perf_counter()
        if not built.is_trained:
            held.append(block)
            if start + len(block) < train_at:
                continue
            first = np.concatenate(held)
            held = []
            sample = np.random.default_rng(0).choice(
                len(first), size=min(len(first), lists * TRAINING_PER_LIST), replace=False
            )
            built.train(first[sample])
            seconds["train"] += time.perf_counter() - clock
            clock = time.perf_counter()
            built.add_with_ids(first, np.arange(1, len(first) + 1, dtype=np.int64))
            del first
        else:
            built.add_with_ids(block, np.arange(start + 1, start + len(block) + 1, dtype=np.int64))
        seconds["add"] += time.perf_counter() - clock
        print(json.dumps({"added": int(built.ntotal), "seconds": {k: round(v, 1) for k, v in seconds.items()}}), flush=True)  # fmt: skip
        if built.ntotal in checkpoints or built.ntotal == args.vectors:
            rows.append(measure_streamed(built, truth, queries, rss_before, seconds, args, lists, train_at))  # fmt: skip
        clock = time.perf_counter()
    print(json.dumps({"results": rows}))


def measure_streamed(
    built: faiss.IndexIVF, truth: RunningTop10, queries: np.ndarray, rss_before: int,
    seconds: dict[str, float], args: argparse.Namespace, lists: int, train_at: int,
) -> dict[str, object]:  # fmt: skip
    """One row for the vectors added so far (recall against the exact top-10 of those)."""
    default_threads = faiss.omp_get_max_threads()
    vectors = int(built.ntotal)
    rss_growth = rss_bytes() - rss_before
    index = FaissVectorIndex(Path("/nonexistent"), MANIFEST, IndexLayout(use_gpu=False))
    index._index = built
    with tempfile.TemporaryDirectory() as scratch:
        index.directory = Path(scratch)
        index.save()
        file_bytes = (Path(scratch) / "vectors.faiss").stat().st_size
    row: dict[str, object] = {
        "layout": "ivf_sq8", "kind": index.kind, "vectors": vectors, "lists": lists,
        "trained_at": train_at, "code_bytes": built.code_size,
        "file_bytes_per_chunk": round(file_bytes / vectors, 1),
        "rss_bytes_per_chunk": round(rss_growth / vectors, 1),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }  # fmt: skip
    for nprobe in [int(n) for n in args.nprobe.split(",")]:
        index.layout = IndexLayout(nprobe=nprobe, use_gpu=False)
        found = [[i for i, _ in index.search(q, 10)] for q in queries]
        row[f"nprobe{nprobe}"] = {
            "recall_at_10": round(recall(found, truth.ids), 4),
            "ms_1_thread": percentile_ms(index, queries, 1),
            f"ms_{default_threads}_threads": percentile_ms(index, queries, default_threads),
        }
    faiss.omp_set_num_threads(default_threads)
    allowed = set(range(1, vectors + 1, 97))
    hits = index.search(queries[0], 10, allowed)
    row["filtered_ok"] = len(hits) == 10 and {i for i, _ in hits} <= allowed
    row["machine"] = machine_info()
    print(json.dumps(row), flush=True)
    return row


class RunningTop10:
    """Exact top-10 ids (positions + 1) per query over blocks of scores."""

    def __init__(self, queries: int) -> None:
        self.scores = np.full((queries, 10), -np.inf, dtype=np.float32)
        self.ids = np.zeros((queries, 10), dtype=np.int64)

    def update(self, scores: np.ndarray, start: int) -> None:
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        merged_scores = np.concatenate([self.scores, np.take_along_axis(scores, top, 1)], axis=1)
        merged_ids = np.concatenate([self.ids, top + start + 1], axis=1)
        order = np.argsort(-merged_scores, axis=1)[:, :10]
        self.scores = np.take_along_axis(merged_scores, order, 1)
        self.ids = np.take_along_axis(merged_ids, order, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--layouts", default="ivf,ivf_sq8,ivf_pq48,ivf_pq96")
    parser.add_argument("--train-at", type=int, default=1_000_000)
    parser.add_argument("--nprobe", default="32,64")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--block", type=int, default=250_000)
    parser.add_argument("--keep-vectors", action="store_true", help="hold all vectors (rerank row)")
    parser.add_argument(
        "--stream", action="store_true", help="ivf_sq8 only, one pass over the vectors (10M)"
    )
    parser.add_argument("--checkpoints", default="", help="--stream: also measure at these sizes")
    args = parser.parse_args()
    if args.stream:
        streamed(args)
        return
    default_threads = faiss.omp_get_max_threads()
    middle = centres()
    queries = clustered(args.queries, 2, middle)

    # Exact top-10 by brute force, and the training sample from the first --train-at vectors.
    started = time.perf_counter()
    train_at = min(args.train_at, args.vectors)
    lists = ivf_lists(train_at)
    wanted = np.sort(
        np.random.default_rng(0).choice(
            train_at, size=min(train_at, lists * TRAINING_PER_LIST), replace=False
        )
    )
    truth = RunningTop10(args.queries)
    sample, kept = [], []
    for start, block in blocks(args.vectors, args.block, middle):
        truth.update(queries @ block.T, start)
        chosen = wanted[(wanted >= start) & (wanted < start + len(block))] - start
        sample.append(block[chosen])
        if args.keep_vectors:
            kept.append(block)
    sample_array = np.concatenate(sample)
    del sample
    truth_s = time.perf_counter() - started
    print(json.dumps({"vectors": args.vectors, "queries": args.queries, "exact_truth_s": round(truth_s, 1),
                      "lists": lists, "trained_at": train_at, "training_sample": len(sample_array)}), flush=True)  # fmt: skip

    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(DIMENSION)
    faiss.IndexIVFFlat(quantizer, DIMENSION, lists, faiss.METRIC_INNER_PRODUCT).train(sample_array)
    coarse_train_s = time.perf_counter() - started
    started = time.perf_counter()
    assignments = [
        quantizer.search(block, 1)[1].ravel()
        for _, block in blocks(args.vectors, args.block, middle)
    ]
    assign_s = time.perf_counter() - started
    print(json.dumps({"coarse_train_s": round(coarse_train_s, 1), "assign_s": round(assign_s, 1)}), flush=True)  # fmt: skip

    allowed = set(range(1, args.vectors + 1, 97))
    results = []
    for name in args.layouts.split(","):
        rss_before = rss_bytes()
        started = time.perf_counter()
        built = new_layout(name, quantizer, lists)
        built.train(sample_array)  # the coarse quantizer is trained: the codec only
        train_s = time.perf_counter() - started
        started = time.perf_counter()
        for (start, block), assigned in zip(blocks(args.vectors, args.block, middle), assignments, strict=True):  # fmt: skip
            block_ids = np.arange(start + 1, start + len(block) + 1, dtype=np.int64)
            built.add_core(len(block), faiss.swig_ptr(block), faiss.swig_ptr(block_ids),
                           faiss.swig_ptr(assigned))  # fmt: skip
        add_s = time.perf_counter() - started
        rss_growth = rss_bytes() - rss_before
        with tempfile.TemporaryDirectory() as scratch:
            index = FaissVectorIndex(Path(scratch), MANIFEST, IndexLayout(use_gpu=False))
            index._index = built
            index.save()
            file_bytes = (Path(scratch) / "vectors.faiss").stat().st_size
        row: dict[str, object] = {
            "layout": name, "kind": index.kind, "vectors": args.vectors, "lists": lists,
            "code_bytes": built.code_size,
            "file_bytes_per_chunk": round(file_bytes / args.vectors, 1),
            "rss_bytes_per_chunk": round(rss_growth / args.vectors, 1),
            "coarse_train_s": round(coarse_train_s, 1), "assign_s": round(assign_s, 1),
            "codec_train_s": round(train_s, 1), "encode_add_s": round(add_s, 1),
        }  # fmt: skip
        for nprobe in [int(n) for n in args.nprobe.split(",")]:
            index.layout = IndexLayout(nprobe=nprobe, use_gpu=False)
            found = [[i for i, _ in index.search(q, 10)] for q in queries]
            row[f"nprobe{nprobe}"] = {
                "recall_at_10": round(recall(found, truth.ids), 4),
                "ms_1_thread": percentile_ms(index, queries, 1),
                f"ms_{default_threads}_threads": percentile_ms(index, queries, default_threads),
            }
            if name == "ivf_pq48" and kept:
                full = np.concatenate(kept)
                reranked = []
                for q in queries:
                    candidates = np.array([i for i, _ in index.search(q, 100)], dtype=np.int64)
                    scores = full[candidates - 1] @ q
                    reranked.append(candidates[np.argsort(-scores)[:10]].tolist())
                row[f"nprobe{nprobe}"]["recall_at_10_rerank100"] = round(recall(reranked, truth.ids), 4)  # type: ignore[index]  # fmt: skip
                del full
        faiss.omp_set_num_threads(default_threads)
        hits = index.search(queries[0], 10, allowed)
        row["filtered_ok"] = len(hits) == 10 and {i for i, _ in hits} <= allowed
        row["machine"] = machine_info()
        print(json.dumps(row), flush=True)
        results.append(row)
        del index, built
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
