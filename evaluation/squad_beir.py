"""SQuAD v2 as a BEIR-format retrieval set: paragraphs are the documents, answerable
questions the queries, each judged relevant to the paragraph it was written on.

Questions are split by article (alternating, in file order) into ``tune`` and ``test``
qrels, so a fusion or threshold tuned on one split is reported on articles it never saw.
"""

from __future__ import annotations

import json
from pathlib import Path

SPLITS = ("tune", "test")


def write_squad_beir(squad_json: Path, target: Path) -> dict[str, int]:
    """Writes corpus.jsonl, queries.jsonl and qrels/{tune,test}.tsv; returns the counts."""
    articles = json.loads(squad_json.read_text(encoding="utf-8"))["data"]
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    qrels: dict[str, list[str]] = {split: [] for split in SPLITS}
    counts = {"documents": 0, **{f"{split}_queries": 0 for split in SPLITS}}
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as corpus, \
         (target / "queries.jsonl").open("w", encoding="utf-8") as queries:  # fmt: skip
        for number, article in enumerate(articles):
            split = SPLITS[number % 2]
            for paragraph_number, paragraph in enumerate(article["paragraphs"]):
                doc_id = f"{number}-{paragraph_number}"
                corpus.write(
                    json.dumps({"_id": doc_id, "title": "", "text": paragraph["context"]}) + "\n"
                )
                counts["documents"] += 1
                for question in paragraph["qas"]:
                    if question.get("is_impossible"):
                        continue
                    queries.write(
                        json.dumps({"_id": question["id"], "text": question["question"]}) + "\n"
                    )
                    qrels[split].append(f"{question['id']}\t{doc_id}\t1")
                    counts[f"{split}_queries"] += 1
    for split, rows in qrels.items():
        (target / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n"
        )
    return counts
