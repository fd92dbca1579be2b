"""Sentence-transformers text embedder (normalised vectors for cosine search)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.config import EmbeddingSettings
from rag.protocols import Vectors

if TYPE_CHECKING:  # imported in warm_up: loading the service must not load torch
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def model_identity(model_path: str) -> str:
    """A name for the model that is the same on every machine (no install path)."""
    path = Path(model_path)
    if not path.exists():
        return model_path
    return path.parent.name if path.name == "model" else path.name


class SentenceTransformersEmbedder:
    """Loads lazily in ``warm_up()``; thread-safe ``embed``."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self._settings = settings
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        logger.info("loading embedder %s", self._settings.model_path)
        self._model = SentenceTransformer(self._settings.model_path, device=self._settings.device)

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def identity(self) -> str:
        return model_identity(self._settings.model_path)

    @property
    def dimension(self) -> int:
        dimension = self.model.get_embedding_dimension()
        assert dimension is not None, "every sentence-transformers text model has one"
        return int(dimension)

    @property
    def max_tokens(self) -> int:
        """Tokens of text the model sees, special tokens excluded."""
        return int(self.model.max_seq_length or 512) - 2

    def token_lengths(self, texts: list[str]) -> list[int]:
        encoded = self.model.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoded = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=self._settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
