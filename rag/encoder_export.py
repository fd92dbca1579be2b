"""The int8 encoders are exported in a child process, never in the process that serves or indexes.

Exporting runs ``torch.onnx.export`` and, for OpenVINO, NNCF's calibration, which runs the
model in an OpenVINO runtime of its own and leaves torch's and OpenVINO's thread pools and
NNCF's state behind. `rag index` into a fresh data dir used to export and then compile the
quantized model for its runners in that same process, and once died with SIGSEGV right after
calibration (issue 12). The child saves the model and exits, taking all of that with it;
the parent only ever reads the saved file (``benchmarks/export_index_stress.py`` repeats the
fresh-directory case).

    python -m rag.encoder_export BACKEND MODEL_PATH TARGET   # prints the exported file's path
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rag.errors import ConfigurationError

logger = logging.getLogger(__name__)

Exporter = Callable[[str, Path], Path]


def _exporters() -> dict[str, Exporter]:
    from rag.onnx_embedding import export_int8
    from rag.openvino_embedding import export_openvino_int8

    return {"onnx-int8": export_int8, "openvino-int8": export_openvino_int8}


def exported_in_child(backend: str, model_path: str, target: Path, exported: Path) -> Path:
    """``exported`` when it exists; else export it in a child process and return it."""
    if exported.exists():
        return exported
    target.mkdir(parents=True, exist_ok=True)
    # Two processes starting on a fresh models dir (the service and `rag index`) export once.
    with (target / ".export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exported.exists():
            _export(backend, model_path, target, exported)
    return exported


def _export(backend: str, model_path: str, target: Path, exported: Path) -> None:
    package_root = str(Path(__file__).resolve().parents[1])  # the child imports this very code
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    command = [sys.executable, "-m", "rag.encoder_export", backend, model_path, str(target)]
    logger.info("exporting the %s encoder to %s in a child process (once)", backend, target)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not exported.exists():
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        raise ConfigurationError(
            f"exporting the {backend} encoder of {model_path} into {target} failed ({how}): {done.stderr[-2000:]}"
        )
    logger.info("%s encoder exported in %.1f s", backend, time.perf_counter() - started)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in _exporters():
        print(f"usage: python -m rag.encoder_export {{{','.join(_exporters())}}} MODEL_PATH TARGET", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    backend, model_path, target = argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(_exporters()[backend](model_path, Path(target)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
