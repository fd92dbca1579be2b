"""Optional reranking stage: a sentence-transformers CrossEncoder rescoring the candidates.

Off by default: no PyPI package carries a cross-encoder today, so a user who
has one points ``RAG_RETRIEVAL__RERANKER_MODEL`` at its folder.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from rag.types import RetrievedChunk

if TYPE_CHECKING:  # imported in warm_up: only a user with a cross-encoder loads it
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    def rerank(
        self, question: str, chunks: list[RetrievedChunk], top_k: int
    ) -> list[RetrievedChunk]: ...


class CrossEncoderReranker:
    def __init__(self, model_path: str, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self._model: CrossEncoder | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import CrossEncoder

            logger.info("loading reranker %s", self.model_path)
            self._model = CrossEncoder(self.model_path, device="cpu")

    def rerank(
        self, question: str, chunks: list[RetrievedChunk], top_k: int
    ) -> list[RetrievedChunk]:
        if not chunks:
            return []
        self.warm_up()
        with self._lock:
            assert self._model is not None
            scores = self._model.predict(
                [(question, chunk.text) for chunk in chunks],
                batch_size=self.batch_size,
                show_progress_bar=False,
            )
        ranked = sorted(zip(chunks, scores), key=lambda pair: float(pair[1]), reverse=True)
        # Only the score changes: offsets and merged ids are what lets the prompt join
        # neighbours with their overlap written once.
        return [replace(chunk, score=float(score)) for chunk, score in ranked[:top_k]]
