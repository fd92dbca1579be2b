"""Calibrates the abstention threshold on the best dense similarity of a question.

    .venv/bin/python benchmarks/calibrate_relevance.py --shared ../shared/evaldata

Indexes the SQuAD v2 paragraphs; in-corpus questions are SQuAD's answerable ones, off-topic
questions are SciFact claims and NFCorpus queries (other domains, nothing to ground on).
The threshold keeps 99.9% of in-corpus questions (wrongly refusing is worse than asking the
model, which can still say IRRELEVANT); the share of off-topic questions it stops is reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from evaluation.machine import machine_info
from indexer.pipeline import Indexer, IndexReport
from rag.collections.store import CollectionStore
from rag.config import load_settings
from rag.embedding.factory import make_embedder
from rag.types import SourceDocument

KEEP_IN_CORPUS = 0.999


def squad(shared: Path) -> tuple[list[SourceDocument], list[str]]:
    data = json.loads((shared / "squad_v2_dev_cs224n" / "dev-v2.0.json").read_text())["data"]
    documents, questions = [], []
    for article in data:
        for number, paragraph in enumerate(article["paragraphs"]):
            source = f"squad:{article['title']}#{number}"
            documents.append(
                SourceDocument(
                    source, paragraph["context"], {"title": article["title"], "source": source}
                )
            )
            questions += [q["question"] for q in paragraph["qas"] if not q["is_impossible"]]
    return documents, questions


def off_topic(shared: Path) -> list[str]:
    lines = (shared / "scifact" / "queries.jsonl").read_text().splitlines()
    lines += (shared / "nfcorpus" / "queries.test.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def best_similarities(store: CollectionStore, questions: list[str]) -> np.ndarray:
    vectors = store.embedder.embed(questions)
    return np.asarray([store.vectors.search(vector, 1)[0][1] for vector in vectors])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, required=True)
    args = parser.parse_args()
    documents, in_corpus = squad(args.shared)
    outside = off_topic(args.shared)
    base = load_settings()
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(
            data_dir=Path(scratch), database_url=None, models_dir=base.model_cache_dir.resolve()
        )
        store = CollectionStore(
            settings, make_embedder(settings.embedding, settings.model_cache_dir)
        )
        with store.writer_lock():
            Indexer(store).index_documents(documents, IndexReport())
        inside_scores, outside_scores = (
            best_similarities(store, in_corpus),
            best_similarities(store, outside),
        )
        store.close()
    threshold = float(np.quantile(inside_scores, 1 - KEEP_IN_CORPUS))
    print(json.dumps({
        "embedder_backend": settings.embedding.backend,
        "in_corpus_questions": len(inside_scores), "off_topic_questions": len(outside_scores),
        "threshold": round(threshold, 3),
        "in_corpus_kept": round(float((inside_scores >= threshold).mean()), 4),
        "off_topic_stopped": round(float((outside_scores < threshold).mean()), 4),
        "in_corpus_median": round(float(np.median(inside_scores)), 3),
        "in_corpus_quantiles": {q: round(float(np.quantile(inside_scores, q)), 3) for q in (0.001, 0.01, 0.05)},
        "off_topic_stopped_at": {
            str(t): round(float((outside_scores < t).mean()), 4) for t in (0.15, 0.2, 0.25, 0.3)
        },
        "off_topic_median": round(float(np.median(outside_scores)), 3),
        "machine": machine_info(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
