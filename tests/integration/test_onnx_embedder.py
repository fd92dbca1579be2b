"""The ONNX int8 encoder against the torch one it was exported from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import EmbeddingSettings
from rag.embedding import SentenceTransformersEmbedder, make_embedder
from rag.onnx_embedding import OnnxInt8Embedder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = [
    "The Aletsch Glacier is the largest glacier in the Alps.",
    "Forager honeybees dance to show where the flowers are.",
    "A sourdough starter doubles in volume within hours of feeding. " * 12,  # long: padding and truncation
    "短い日本語の文です。",
]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxInt8Embedder:
    embedder = make_embedder(EmbeddingSettings(backend="onnx-int8"), tmp_path_factory.mktemp("models"))
    assert isinstance(embedder, OnnxInt8Embedder)
    return embedder


def test_vectors_agree_with_torch(onnx_embedder: OnnxInt8Embedder, torch_embedder: SentenceTransformersEmbedder) -> None:
    quantized, reference = onnx_embedder.embed(TEXTS), torch_embedder.embed(TEXTS)
    assert quantized.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    agreement = (quantized * reference).sum(axis=1)
    assert agreement.min() > 0.97, agreement
    # Same neighbours: each text is closest to its own torch vector.
    assert (np.argmax(quantized @ reference.T, axis=1) == np.arange(len(TEXTS))).all()


def test_order_and_batching_barely_change_vectors(onnx_embedder: OnnxInt8Embedder) -> None:
    # Dynamic quantization scales activations per batch, so a vector moves a little with its
    # batch companions: the order of the inputs must not matter, only that bit of rounding.
    together = onnx_embedder.embed(TEXTS)
    alone = np.stack([onnx_embedder.embed([text])[0] for text in TEXTS])
    assert (together * alone).sum(axis=1).min() > 0.98  # measured: 0.989 at worst
    reversed_order = onnx_embedder.embed(TEXTS[::-1])[::-1]
    assert np.allclose(together, reversed_order, atol=1e-5)


def test_identity_keeps_indexes_apart(onnx_embedder: OnnxInt8Embedder, torch_embedder: SentenceTransformersEmbedder) -> None:
    assert onnx_embedder.identity == torch_embedder.identity + "+onnx-int8"
    assert onnx_embedder.max_tokens == torch_embedder.max_tokens == 254
    assert onnx_embedder.token_lengths(TEXTS) == torch_embedder.token_lengths(TEXTS)
    assert (Path(onnx_embedder._cache_dir) / "model_int8.onnx").exists()
