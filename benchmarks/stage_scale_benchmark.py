"""The answer stages that grow with the corpus, at 10k, 100k and 1M chunks: BM25 scoring
(with and without a filter's mask) and filter resolution in SQL.

    .venv/bin/python benchmarks/stage_scale_benchmark.py [--sizes 10000 100000 1000000]
        [--queries 40] [--output benchmarks/stage_scale.json]

Synthetic collections (benchmarks/synthetic_corpus.py): rows written to a fresh SQLite
database with the service's own schema (documents of ten chunks, metadata with a
``shard`` of 100 values and a ``year`` of 25), and a BM25 score matrix of Zipf-distributed
terms. Each stage runs through the service's own code (``BM25KeywordIndex.search``,
``DocumentRepository.chunk_ids_where``). The faiss search at a million chunks has its own
benchmark (vector_scale_benchmark.py). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.synthetic_corpus import insert_chunks, query_terms, synthetic_bm25  # noqa: E402
from evaluation.machine import machine_info as machine  # noqa: E402
from rag.indexes.keyword import BM25KeywordIndex, IdPositions  # noqa: E402
from rag.retrieval.filters import filter_clause  # noqa: E402
from rag.storage import database  # noqa: E402
from rag.storage.repository import DocumentRepository, ensure_collection  # noqa: E402

FILTERS = {"selective (1%)": {"shard": 7}, "broad (48%)": {"year": {"gte": 2013}}}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"p50_ms": round(pick(0.5), 3), "p95_ms": round(pick(0.95), 3), "runs": len(ordered)}


def timed(call: Callable[[], object], runs: int) -> tuple[dict[str, float], object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples), result


def old_mask(ids: np.ndarray, position: dict[int, int], allowed: set[int]) -> np.ndarray:
    """The mask as it was built before issue 16: a lookup per allowed id in a dict of
    positions built at load (that dict cost memory too: about 100 MB at a million chunks)."""
    mask = np.zeros(len(ids), dtype=np.float32)
    mask[[position[i] for i in allowed if i in position]] = 1.0
    return mask


def measure(size: int, queries: int, folder: Path) -> dict[str, object]:
    url = f"sqlite:///{folder / f'scale-{size}.sqlite3'}"
    database.upgrade(url)
    engine = database.make_engine(url)
    sessions = database.make_session_factory(engine)
    started = time.perf_counter()
    with database.session_scope(sessions) as session:
        collection_id = ensure_collection(session, "default")
        chunk_ids = insert_chunks(session, collection_id, size)
    built_sql_s = time.perf_counter() - started
    started = time.perf_counter()
    keywords = BM25KeywordIndex(folder / f"keyword-{size}")
    keywords._model, keywords._ids = synthetic_bm25(size), np.asarray(chunk_ids, dtype=np.int64)
    keywords._positions = IdPositions.of(keywords._ids)
    built_bm25_s = time.perf_counter() - started
    rng = np.random.default_rng(1)
    texts = [query_terms(rng) for _ in range(queries)]
    cycle = iter(texts * 1000)
    result: dict[str, object] = {
        "chunks": size,
        "build_s": {"sql": round(built_sql_s, 1), "bm25": round(built_bm25_s, 1)},
    }
    result["bm25_search"], _ = timed(lambda: keywords.search(next(cycle), 100), queries)
    runs = max(3, min(20, 2_000_000 // size))
    position = {int(chunk_id): i for i, chunk_id in enumerate(chunk_ids)}
    for name, filters in FILTERS.items():

        def resolve() -> set[int]:
            with database.session_scope(sessions) as session:
                return DocumentRepository(session).chunk_ids_where(
                    filter_clause(filters), [collection_id]
                )

        resolution, allowed = timed(resolve, runs)
        assert isinstance(allowed, set) and allowed
        filtered, _ = timed(lambda: keywords.search(next(cycle), 100, allowed), queries)  # noqa: B023
        new, _ = timed(lambda: keywords._positions.mask(allowed), runs)  # noqa: B023
        old, _ = timed(lambda: old_mask(keywords._ids, position, allowed), runs)  # noqa: B023
        result[f"filter {name}"] = {
            "matching_chunks": len(allowed),
            "sql_resolution": resolution,
            "bm25_search_with_mask": filtered,
            "mask_now": new,
            "mask_before_issue_16": old,
        }
    engine.dispose()
    return result


def growth(
    results: list[dict[str, object]], path: Callable[[dict[str, object]], float]
) -> list[str]:
    return [
        f"{a['chunks']:,} -> {b['chunks']:,}: x{path(b) / path(a):.1f}"
        for a, b in zip(results, results[1:], strict=False)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    report: dict[str, object] = {"machine": machine()}
    results = []
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as scratch:
        for size in args.sizes:
            results.append(measure(size, args.queries, Path(scratch)))
            print(json.dumps(results[-1]), file=sys.stderr)
    report["results"] = results
    report["growth_p50"] = {
        "bm25_search": growth(results, lambda r: r["bm25_search"]["p50_ms"]),  # type: ignore[index]
        **{
            f"sql filter {name}": growth(
                results, lambda r, n=name: r[f"filter {n}"]["sql_resolution"]["p50_ms"]
            )  # type: ignore[index,misc]
            for name in FILTERS
        },
        **{
            f"bm25 with {name} mask": growth(
                results, lambda r, n=name: r[f"filter {n}"]["bm25_search_with_mask"]["p50_ms"]
            )  # type: ignore[index,misc]
            for name in FILTERS
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
