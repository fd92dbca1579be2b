"""The fastest CPU encoder here: the same sentence-transformers model, quantized to int8
(weights and activations, calibrated) by NNCF and run by OpenVINO.

Static quantization fixes each activation's int8 scale once, from calibration text, where
dynamic quantization (the onnx-int8 backend) measures it on every batch: so a text's vector
does not depend on the texts batched with it, and OpenVINO runs the whole transformer in
int8 kernels. Calibration uses 256 Wikipedia paragraphs shipped with the package
(``rag/data/calibration_paragraphs.jsonl``, SQuAD 2.0, CC BY-SA 4.0), never the user's
documents, so every installation exports the same model. Speed and retrieval quality against
the other backends and LlamaIndex are in the README (benchmarks/indexing_benchmark.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from rag.embedding.export import exported_in_child
from rag.embedding.exported import INPUTS, Batch, ExportedEncoder, Runner
from rag.embedding.onnx import export_fp32

if TYPE_CHECKING:
    import openvino

logger = logging.getLogger(__name__)

# The folder name changes with the export recipe, so that a cached export of an older one is redone.
EXPORT_FOLDER = "openvino-int8-nncf-v1"
MODEL_XML = "model.xml"
CALIBRATION_BATCH = 16


def calibration_texts() -> list[str]:
    data = resources.files("rag") / "data" / "calibration_paragraphs.jsonl"
    rows = [
        json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [f"{row['title'].replace('_', ' ')} {row['text']}" for row in rows]


def export_openvino_int8(model_path: str, target: Path) -> Path:
    """Export to ONNX, quantize with NNCF on the calibration paragraphs, save as OpenVINO IR (once)."""
    folder = target / EXPORT_FOLDER
    if (folder / MODEL_XML).exists():
        return folder / MODEL_XML
    import nncf
    import openvino
    from transformers import AutoTokenizer

    full = export_fp32(model_path, target)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    texts = calibration_texts()
    batches = []
    for start in range(0, len(texts), CALIBRATION_BATCH):
        encoded = tokenizer(
            texts[start : start + CALIBRATION_BATCH],
            padding=True,
            truncation=True,
            max_length=256,
            return_tensors="np",
        )
        batches.append({name: encoded[name].astype(np.int64) for name in INPUTS})
    logger.info(
        "quantizing %s to int8 with NNCF (%d calibration paragraphs)", model_path, len(texts)
    )
    quantized = nncf.quantize(
        openvino.Core().read_model(str(full)),
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),
    )
    partial = target / (EXPORT_FOLDER + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    openvino.save_model(quantized, str(partial / MODEL_XML))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)  # the folder appears whole or not at all
    full.unlink(missing_ok=True)
    return folder / MODEL_XML


class OpenVinoInt8Embedder(ExportedEncoder):
    backend = "openvino-int8"
    # OpenVINO's CPU plugin keeps the kernels it compiled for each input shape (up to 5,000
    # shapes). Unpadded, nearly every batch has a new shape: indexing SciFact grew the process
    # to 2.1 GB. Padded to multiples of 16 tokens, batches share at most 16 shapes (plus the
    # last of each length): 1.2 GB, and no slower (the cached kernels are reused).
    pad_to_multiple = 16
    # What OpenVINO runs the layers that are not int8 in (LayerNorm, softmax, GELU, the
    # attention matmuls). Left to itself, the CPU plugin picks bf16 on CPUs with AMX or
    # AVX512-BF16 (most current Xeons): there, one query in a hundred of SciFact came out at
    # cosine 0.74 to the model's own vector and dense nDCG@10 fell from 0.65 to 0.61 (issue 12).
    # f32 costs nothing on CPUs without bf16, where it is what the plugin picks anyway.
    inference_precision: ClassVar[str] = "f32"
    _compiled: openvino.CompiledModel | None = None

    def _load_runners(self, count: int) -> list[Runner]:
        import openvino

        model_file = exported_in_child(
            self.backend,
            self._settings.model_path,
            self._cache_dir,
            self._cache_dir / EXPORT_FOLDER / MODEL_XML,
        )
        # No pinning of streams to cores (OpenVINO pins them under the THROUGHPUT hint): the
        # embedded vLLM pins its worker to a core and busy-polls it for a second after every
        # request, and a question or an answer's sentences embedded on a stream pinned to that
        # core waited for it (attribution p95 0.5 s instead of 11 ms; issue 16). Unpinned, the
        # kernel runs them on the core that is free.
        self._compiled = openvino.Core().compile_model(
            str(model_file), "CPU",
            {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": str(count), "INFERENCE_NUM_THREADS": str(count),
             "INFERENCE_PRECISION_HINT": self.inference_precision, "ENABLE_CPU_PINNING": "NO"},
        )  # fmt: skip
        return [_runner(self._compiled.create_infer_request()) for _ in range(count)]

    def pinned_to_cores(self) -> bool:
        """Whether the compiled model's streams are pinned to cores (they should not be)."""
        self.warm_up()
        assert self._compiled is not None
        return bool(self._compiled.get_property("ENABLE_CPU_PINNING"))

    def compiled_precision(self) -> str:
        """The precision the compiled model really runs non-int8 layers in (``f32``)."""
        self.warm_up()
        assert self._compiled is not None
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())


def _runner(request: openvino.InferRequest) -> Runner:
    def run(batch: Batch) -> npt.NDArray[np.float32]:
        return request.infer(batch)[0]  # type: ignore[no-any-return]  # a copy: share_outputs=False

    return run
