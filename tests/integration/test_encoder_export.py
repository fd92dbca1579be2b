"""The encoder is exported in a child process: the process that indexes or serves never holds
torch's ONNX export or NNCF's calibration state (issue 12: `rag index` into a fresh data dir
died once with SIGSEGV right after calibration; benchmarks/export_index_stress.py repeats it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.embedding.export import exported_in_child
from rag.embedding.openvino import EXPORT_FOLDER, MODEL_XML
from rag.errors import ConfigurationError
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FRESH_PROCESS = """
import json, sys
from pathlib import Path
from rag.config import EmbeddingSettings
from rag.embedding.factory import make_embedder

embedder = make_embedder(EmbeddingSettings(backend="openvino-int8", workers=1), Path(sys.argv[1]))
shape = embedder.embed(["the first text embedded with a fresh models dir"]).shape
# Only the export imports these (torch.onnx is imported by transformers anyway).
export_state = sorted(name for name in ("nncf", "onnxruntime.quantization") if name in sys.modules)
print(json.dumps({"shape": list(shape), "export_state": export_state}))
"""


def test_a_fresh_models_dir_is_exported_by_a_child_process(tmp_path: Path) -> None:
    # The export takes about 40 s on an idle 2-core machine, over 15 minutes on a loaded shared one.
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path)],
        capture_output=True, text=True, timeout=1800, cwd=REPO_ROOT, env={**_env(), "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [1, 384]
    assert (tmp_path / "embedder-openvino-int8" / EXPORT_FOLDER / MODEL_XML).exists()
    # The export (NNCF's quantization) ran, but not in this process.
    assert result["export_state"] == [], result


def test_a_failed_export_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(
        ConfigurationError,
        match=r"exporting the onnx-int8 encoder of .*no-such-model.* failed \(exit status 1\)",
    ):
        exported_in_child(
            "onnx-int8", str(missing), tmp_path / "out", tmp_path / "out" / "model.onnx"
        )
    assert not (tmp_path / "out" / "model.onnx").exists()


def _env() -> dict[str, str]:
    import os

    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
