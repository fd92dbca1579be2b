"""Reads a BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.types import SourceDocument

SOURCE_PREFIX = "beir:"


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]  # only the queries judged in the split
    qrels: dict[str, dict[str, int]]

    def documents(self) -> Iterator[SourceDocument]:
        """Doc text is ``title + " " + text``, as BEIR and MTEB evaluate it."""
        for doc_id, (title, text) in self.corpus.items():
            yield SourceDocument(
                source=f"{SOURCE_PREFIX}{doc_id}",
                text=f"{title} {text}".strip(),
                metadata={"beir_id": doc_id, "title": title},
            )


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def load_beir(directory: Path, split: str = "test") -> BeirDataset:
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for required in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not required.exists():
            raise FileNotFoundError(f"not a BEIR dataset: {required} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as file:
        reader = csv.reader(file, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] in ("query-id", "query_id"):
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {
        q["_id"]: q["text"] for q in _jsonl(directory / "queries.jsonl") if q["_id"] in qrels
    }
    corpus = {
        d["_id"]: (d.get("title", ""), d.get("text", ""))
        for d in _jsonl(directory / "corpus.jsonl")
    }
    return BeirDataset(
        directory.name, corpus, queries, {q: r for q, r in qrels.items() if q in queries}
    )
