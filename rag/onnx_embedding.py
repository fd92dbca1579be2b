"""A faster CPU encoder: the same sentence-transformers model exported to ONNX with
int8 weights (dynamic quantization of the MatMuls, per channel), run by onnxruntime.

Measured on SciFact (README): about 2.3x the documents per second of torch fp32
on two cores, with retrieval quality held. The export needs no network: it is
made from the packaged model's weights on first use and cached beside the data.
Mean pooling and normalisation are those of all-MiniLM-L6-v2's own pipeline.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from rag.config import EmbeddingSettings
from rag.embedding import Vectors, model_identity

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
QUANTIZED_FILE = "model_int8.onnx"


def export_int8(model_path: str, target: Path) -> Path:
    """Export the transformer to ONNX and quantize its MatMul weights to int8 (once)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    quantized = target / QUANTIZED_FILE
    if quantized.exists():
        return quantized
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    full = target / "model_fp32.onnx"
    logger.info("exporting %s to ONNX int8 in %s", model_path, target)
    torch.onnx.export(
        LastHiddenState(), tuple(sample[name] for name in INPUTS), str(full),
        input_names=list(INPUTS), output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    partial = target / (QUANTIZED_FILE + ".partial")
    quantize_dynamic(
        str(full), str(partial), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )
    os.replace(partial, quantized)
    full.unlink(missing_ok=True)
    return quantized


class OnnxInt8Embedder:
    """Same contract as SentenceTransformersEmbedder (the Embedder protocol)."""

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path) -> None:
        self._settings = settings
        self._cache_dir = cache_dir
        self._session = None  # type: ignore[var-annotated]
        self._tokenizer = None  # type: ignore[var-annotated]
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._session is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import onnxruntime
        from transformers import AutoTokenizer

        model_file = export_int8(self._settings.model_path, self._cache_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        self._tokenizer = AutoTokenizer.from_pretrained(self._settings.model_path)
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )

    @property
    def identity(self) -> str:
        return model_identity(self._settings.model_path) + "+onnx-int8"

    @property
    def dimension(self) -> int:
        config = json.loads((Path(self._settings.model_path) / "config.json").read_text())
        return int(config["hidden_size"])

    @property
    def max_tokens(self) -> int:
        config_file = Path(self._settings.model_path) / "sentence_bert_config.json"
        window = json.loads(config_file.read_text()).get("max_seq_length", 256) if config_file.exists() else 256
        return int(window) - 2

    def token_lengths(self, texts: list[str]) -> list[int]:
        self.warm_up()
        encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]  # type: ignore[misc]
        return [len(ids) for ids in encoded]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.warm_up()
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)  # type: ignore[misc]
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    def embed(self, texts: list[str]) -> Vectors:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths together
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        size = self._settings.batch_size
        with self._lock:
            for start in range(0, len(texts), size):
                batch = order[start : start + size]
                vectors[batch] = self._encode([texts[i] for i in batch])
        return vectors

    def _encode(self, texts: list[str]) -> Vectors:
        encoded = self._tokenizer(  # type: ignore[misc]
            texts, padding=True, truncation=True, max_length=self.max_tokens + 2, return_tensors="np"
        )
        hidden = self._session.run(None, {name: encoded[name].astype(np.int64) for name in INPUTS})[0]  # type: ignore[union-attr]
        mask = encoded["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
