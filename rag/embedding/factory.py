"""The configured embedder backend: torch, or an int8 export for ONNX Runtime or OpenVINO."""

from __future__ import annotations

from pathlib import Path

from rag.config import EmbeddingSettings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.protocols import Embedder


def make_embedder(settings: EmbeddingSettings, cache_dir: Path) -> Embedder:
    """The configured embedder backend (torch, or an int8 export cached under ``cache_dir``)."""
    if settings.backend == "openvino-int8":
        from rag.embedding.openvino import OpenVinoInt8Embedder

        return OpenVinoInt8Embedder(settings, cache_dir / "embedder-openvino-int8")
    if settings.backend == "onnx-int8":
        from rag.embedding.onnx import OnnxInt8Embedder

        return OnnxInt8Embedder(settings, cache_dir / "embedder-onnx-int8")
    return SentenceTransformersEmbedder(settings)
