"""Chooses how hybrid retrieval fuses dense and BM25 rankings, by measurement.

    .venv/bin/python benchmarks/fusion_study.py --shared ../shared/evaldata --out benchmarks/fusion_study.json

Each dataset is indexed once through the normal indexer; every query's dense and BM25 lists
(300 chunks each, as `rag eval retrieval` ranks) are computed once, and every fusion function
of the grid is scored on them with the evaluation's own pooling and pytrec_eval. The fusion is
chosen on the tuning splits only (SciFact train, SQuAD v2 tune articles) and reported on the
splits it never saw (SciFact test, SQuAD v2 test articles).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from evaluation.beir import BeirDataset, load_beir
from evaluation.machine import machine_info
from evaluation.metrics import retrieval_metrics
from evaluation.retrieval import (
    CHUNKS_PER_DOCUMENT_DEPTH,
    DOCUMENTS_RANKED,
    chunk_to_document,
    index_dataset,
)
from evaluation.squad_beir import write_squad_beir
from rag.collections.store import CollectionStore
from rag.config import load_settings
from rag.embedding.factory import make_embedder
from rag.retrieval.fusion import FusionSettings, fuse

DEPTH = DOCUMENTS_RANKED * CHUNKS_PER_DOCUMENT_DEPTH
Hits = list[tuple[int, float]]
Lists = dict[str, tuple[Hits, Hits]]  # query id -> (dense, bm25)


def query_lists(store: CollectionStore, queries: dict[str, str]) -> Lists:
    ids = list(queries)
    vectors = store.embedder.embed([queries[i] for i in ids])
    return {
        query_id: (
            store.vectors.search(vector, DEPTH),
            store.keywords.search(queries[query_id], DEPTH),
        )
        for query_id, vector in zip(ids, vectors)
    }


def score(lists: Lists, qrels: dict[str, dict[str, int]], owner: dict[int, str],
          ranking: Callable[[Hits, Hits], Hits]) -> float:  # fmt: skip
    from evaluation.retrieval import rank_documents

    run = {q: rank_documents(ranking(*lists[q]), owner) for q in qrels if q in lists}
    return retrieval_metrics(qrels, run)["ndcg@10"]


def candidates() -> list[FusionSettings]:
    grid = [FusionSettings(method="rrf", dense_weight=w, keyword_weight=1 - w, rrf_k=k)
            for k in (10, 30, 60) for w in (0.3, 0.4, 0.5, 0.6, 0.7)]  # fmt: skip
    grid += [FusionSettings(method=m, dense_weight=w, keyword_weight=1 - w)
             for m in ("minmax", "max", "zscore") for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]  # fmt: skip
    return grid


def prepare(name: str, dataset_dir: Path, splits: tuple[str, str], work: Path) -> dict[str, object]:
    settings = load_settings(data_dir=work / name, database_url=None)
    store = CollectionStore(settings, make_embedder(settings.embedding, settings.model_cache_dir))
    try:
        tune, test = (load_beir(dataset_dir, split) for split in splits)
        index_dataset(store, settings, tune)
        owner = chunk_to_document(store)
        return {
            "owner": owner,
            "tune": (tune, query_lists(store, tune.queries)),
            "test": (test, query_lists(store, test.queries)),
        }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/evaldata"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/fusion_study.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fusion-study-"))
    squad_dir = work / "squad_v2_beir"
    write_squad_beir(args.shared / "squad_v2_dev_cs224n" / "dev-v2.0.json", squad_dir)
    data = {
        "scifact": prepare("scifact", args.shared / "scifact", ("train", "test"), work),
        "squad_v2": prepare("squad_v2", squad_dir, ("tune", "test"), work),
    }

    def evaluate(split: str, ranking: Callable[[Hits, Hits], Hits]) -> dict[str, float]:
        results = {}
        for name, prepared in data.items():
            dataset, lists = prepared[split]  # type: ignore[index]
            assert isinstance(dataset, BeirDataset)
            results[name] = score(lists, dataset.qrels, prepared["owner"], ranking)  # type: ignore[arg-type]
        return results

    parts = {
        "dense": lambda dense, bm25: dense,
        "bm25": lambda dense, bm25: bm25,
    }
    part_scores = {
        split: {p: evaluate(split, f) for p, f in parts.items()} for split in ("tune", "test")
    }
    grid = []
    for fusion in candidates():
        tuned = evaluate("tune", lambda dense, bm25, f=fusion: fuse(dense, bm25, f)[:DEPTH])
        # Never worse than the better part: judge by the smallest margin over it, then the mean.
        margin = min(tuned[n] - max(part_scores["tune"][p][n] for p in parts) for n in tuned)
        grid.append({"fusion": fusion.model_dump(), "tune": tuned, "worst_margin": round(margin, 5),
                     "mean": round(sum(tuned.values()) / len(tuned), 5)})  # fmt: skip
        print(json.dumps(grid[-1]), flush=True)
    best = max(grid, key=lambda row: (row["worst_margin"] >= 0, row["mean"]))
    chosen = FusionSettings.model_validate(best["fusion"])
    report = {
        "machine": machine_info(),
        "chosen_on": "tune splits (SciFact train, SQuAD v2 tune articles)",
        "chosen": chosen.model_dump(),
        "parts": part_scores,
        "textbook_rrf_test": evaluate(
            "test", lambda d, b: fuse(d, b, FusionSettings(method="rrf"))[:DEPTH]
        ),
        "chosen_test": evaluate("test", lambda d, b: fuse(d, b, chosen)[:DEPTH]),
        "grid": grid,
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=1))


if __name__ == "__main__":
    main()
