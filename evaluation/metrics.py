"""IR metrics computed by pytrec_eval (trec_eval's implementation, as BEIR uses it)."""

from __future__ import annotations

import pytrec_eval

Run = dict[str, dict[str, float]]  # query id -> doc id -> score
Qrels = dict[str, dict[str, int]]


def _mean(per_query: dict[str, dict[str, float]], measure: str) -> float:
    return sum(values[measure] for values in per_query.values()) / max(len(per_query), 1)


def retrieval_metrics(qrels: Qrels, run: Run) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 averaged over the judged queries."""
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda d: -d[1])[:10]) for q, docs in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    # Queries the run has no answer for count as zero, not as absent.
    for query in qrels:
        full.setdefault(query, {"ndcg_cut_10": 0.0, "recall_100": 0.0})
        mrr.setdefault(query, {"recip_rank": 0.0})
    return {
        "ndcg@10": round(_mean(full, "ndcg_cut_10"), 5),
        "recall@100": round(_mean(full, "recall_100"), 5),
        "mrr@10": round(_mean(mrr, "recip_rank"), 5),
    }
