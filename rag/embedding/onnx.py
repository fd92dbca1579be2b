"""A faster CPU encoder: the same sentence-transformers model exported to ONNX with int8
weights (dynamic quantization of the MatMuls, per channel), run by onnxruntime.

The export needs no network: it is made from the packaged model's weights on first use and
cached beside the data. Its speed and retrieval quality against torch fp32, OpenVINO int8 and
LlamaIndex are in the README (benchmarks/indexing_benchmark.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag.embedding.export import exported_in_child
from rag.embedding.exported import INPUTS, Batch, ExportedEncoder, Runner

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

# The file name changes with the export recipe, so that a cached export of an older one is redone.
QUANTIZED_FILE = "model_int8_eager_attention.onnx"
FP32_FILE = "model_fp32_eager_attention.onnx"

# onnxruntime's CPU kernels have no bf16 fast path on x86 (its bf16 fast-math GEMM is an
# Arm64 option, off by default), so AMX does not change the vectors. What does: on x86 CPUs
# without VNNI (this AMD EPYC, AVX2 only) the default u8 x s8 int8 matmul adds pairs of
# products in saturating 16 bits; x64quantprecision runs u8 x u8 there instead, without the
# saturation (VNNI CPUs are unaffected). Measured on the EPYC, SciFact queries against fp32
# vectors: min cosine 0.9853 without it, 0.9892 with it (issue 12).
SESSION_CONFIG = {"session.x64quantprecision": "1"}


def export_fp32(model_path: str, target: Path) -> Path:
    """Export the transformer (its last hidden state) to ONNX in fp32, once."""
    exported = target / FP32_FILE
    if exported.exists():
        return exported
    import torch
    from transformers import AutoModel, AutoTokenizer

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # Eager attention exports as MatMul + Add(mask) + Softmax. The default (SDPA) exports with a
    # Where over every batch x heads x tokens x tokens score tensor plus an IsNaN guard: about a
    # third of onnxruntime's time at 256 tokens, for the same result.
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    partial = target / (FP32_FILE + ".partial")
    logger.info("exporting %s to ONNX in %s", model_path, target)
    torch.onnx.export(
        LastHiddenState(), tuple(sample[name] for name in INPUTS), str(partial),
        input_names=list(INPUTS), output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    os.replace(partial, exported)
    return exported


def export_int8(model_path: str, target: Path) -> Path:
    """Export to ONNX and quantize its MatMul weights to int8 (once)."""
    quantized = target / QUANTIZED_FILE
    if quantized.exists():
        return quantized
    from onnxruntime.quantization import QuantType, quantize_dynamic

    full = export_fp32(model_path, target)
    partial = target / (QUANTIZED_FILE + ".partial")
    quantize_dynamic(
        str(full),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
    )
    os.replace(partial, quantized)
    full.unlink(missing_ok=True)
    return quantized


class OnnxInt8Embedder(ExportedEncoder):
    backend = "onnx-int8"
    sessions: list[onnxruntime.InferenceSession] = []  # noqa: RUF012  # set per instance by warm_up()

    def _load_runners(self, count: int) -> list[Runner]:
        import onnxruntime

        model_file = exported_in_child(
            self.backend,
            self._settings.model_path,
            self._cache_dir,
            self._cache_dir / QUANTIZED_FILE,
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        self.sessions = [
            onnxruntime.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
            for _ in range(count)
        ]
        return [_runner(session) for session in self.sessions]


def _runner(session: onnxruntime.InferenceSession) -> Runner:
    def run(batch: Batch) -> npt.NDArray[np.float32]:
        return session.run(None, batch)[0]  # type: ignore[no-any-return]

    return run
