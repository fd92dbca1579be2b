"""How close an encoder backend's vectors are to sentence-transformers' fp32 vectors.

The contract every encoder backend must meet (tests/integration/test_encoder_contract.py) and
what ``benchmarks/encoder_agreement.py`` reports per backend and machine: cosine of each text's
vector to the reference vector, on SciFact queries and abstracts, one text per call (a
question at serving time) and in batches (indexing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.beir import load_beir
from rag.protocols import Embedder, Vectors


@dataclass(frozen=True)
class Agreement:
    mean: float
    min: float
    worst_text: str

    def as_dict(self) -> dict[str, float | str]:
        return {
            "mean": round(self.mean, 5),
            "min": round(self.min, 5),
            "worst_text": self.worst_text[:120],
        }


@dataclass(frozen=True)
class SciFactSample:
    queries: list[str]
    documents: list[str]  # title + " " + text, as indexed


def scifact_sample(directory: Path, queries: int = 100, documents: int = 100) -> SciFactSample:
    """The first ``queries`` test queries and the abstracts judged for them (then the corpus's
    first ones, up to ``documents``): texts of the lengths the encoder really meets."""
    dataset = load_beir(directory, "test")
    query_ids = list(dataset.queries)[:queries]
    doc_ids = list(
        dict.fromkeys(d for q in query_ids for d in dataset.qrels[q] if d in dataset.corpus)
    )
    doc_ids += [d for d in dataset.corpus if d not in set(doc_ids)]
    texts = [
        f"{title} {text}".strip()
        for title, text in (dataset.corpus[d] for d in doc_ids[:documents])
    ]
    return SciFactSample([dataset.queries[q] for q in query_ids], texts)


def agreement(encoder: Embedder, reference: Vectors, texts: list[str], per_call: bool) -> Agreement:
    """Cosine of ``encoder``'s vectors to ``reference`` (normalised rows, one per text)."""
    vectors = (
        np.stack([encoder.embed([text])[0] for text in texts]) if per_call else encoder.embed(texts)
    )
    cosines = (
        (vectors * reference).sum(axis=1)
        / np.linalg.norm(vectors, axis=1)
        / np.linalg.norm(reference, axis=1)
    )
    worst = int(np.argmin(cosines))
    return Agreement(float(cosines.mean()), float(cosines[worst]), texts[worst])
