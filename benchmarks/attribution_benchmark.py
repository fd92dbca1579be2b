"""Attribution at answer time, and where a passage's sentence vectors should come from.

    .venv/bin/python benchmarks/attribution_benchmark.py [--documents 300] [--output FILE]

SciFact abstracts (../shared/evaldata/scifact, or --corpus) are chunked as the indexer
chunks them (254 tokens); answers of three sentences are attributed against five chunks,
the default top_k. It measures, with the default encoder on this machine:

- per answer: attribution as it was (every passage sentence embedded again), with the cache
  cold (this answer's passages embedded once, then kept) and warm (only the answer embedded);
- the two places the vectors could be computed once: at indexing, stored with the chunk
  (the encoder time it adds to indexing, against embedding the chunks themselves, and the
  bytes per chunk), or on first use, kept by chunk id (bytes per cached passage).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from evaluation.machine import machine_info as machine  # noqa: E402
from rag.answering.attribution import attribute, sentences  # noqa: E402
from rag.answering.sentence_vectors import SentenceVectorCache  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.embedding.factory import make_embedder  # noqa: E402
from rag.generation.prompts import build_blocks  # noqa: E402
from rag.text.chunking import TokenChunker  # noqa: E402
from rag.types import RetrievedChunk  # noqa: E402


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(ordered[len(ordered) // 2], 2), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "n": len(ordered)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "evaldata" / "scifact" / "corpus.jsonl",
    )
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--answers", type=int, default=30)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    embedder.embed(["warm up"])
    chunker = TokenChunker(embedder, settings.chunking.max_tokens, settings.chunking.overlap_tokens)
    rows = [json.loads(line) for line in args.corpus.read_text().splitlines()[: args.documents]]
    texts = [
        span.text for row in rows for span in chunker.chunk(f"{row['title']}\n\n{row['text']}")
    ]
    chunk_sentences = [sentences(text) for text in texts]
    flat = [s for found in chunk_sentences for s in found]

    started = time.perf_counter()
    embedder.embed(texts)
    chunks_s = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed(flat)
    sentences_s = time.perf_counter() - started

    rng = np.random.default_rng(0)
    old, cold, warm = [], [], []
    cache = SentenceVectorCache(settings.retrieval.attribution_cache_passages)
    for n in range(args.answers):
        picked = rng.choice(len(texts), 5, replace=False)
        blocks = build_blocks(
            [RetrievedChunk(int(i) + 1, int(i) + 1, 1.0, texts[i], {}) for i in picked]
        )
        claims = [chunk_sentences[picked[k]][0] for k in range(3) if chunk_sentences[picked[k]]]
        answer = " ".join(f"In short, {c[0].lower()}{c[1:]}" for c in claims)
        for bucket, use in ((old, None), (cold, cache), (warm, cache)):
            started = time.perf_counter()
            attribute(answer, blocks, embedder, use)
            bucket.append((time.perf_counter() - started) * 1000)
    dimension = embedder.dimension
    report = {
        "machine": machine(),
        "corpus": f"SciFact, first {len(rows)} abstracts: {len(texts)} chunks, {len(flat)} sentences",
        "per_answer_5_passages_3_sentences": {
            "before_issue_16_everything_embedded": percentiles(old),
            "cache_cold_first_use_of_these_passages": percentiles(cold),
            "cache_warm": percentiles(warm),
        },
        "computed_at_indexing": {
            "encoder_s_chunks": round(chunks_s, 2),
            "encoder_s_their_sentences": round(sentences_s, 2),
            "indexing_encoder_time_added": f"{100 * sentences_s / chunks_s:.0f}%",
            "bytes_per_chunk_float32": round(len(flat) / len(texts) * dimension * 4),
        },
        "cached_on_first_use": {
            "bytes_per_cached_passage": round(cache.nbytes / max(1, len(cache))),
            "cached_passages": len(cache),
            "default_bound_passages": settings.retrieval.attribution_cache_passages,
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
