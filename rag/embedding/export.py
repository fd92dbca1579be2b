"""The int8 encoders are exported in a child process, never in the process that serves or indexes.

Exporting runs ``torch.onnx.export`` and, for OpenVINO, NNCF's calibration, which runs the
model in an OpenVINO runtime of its own and leaves torch's and OpenVINO's thread pools and
NNCF's state behind. `rag index` into a fresh data dir used to export and then compile the
quantized model for its runners in that same process, and once died with SIGSEGV right after
calibration (issue 12). The child saves the model and exits, taking all of that with it;
the parent only ever reads the saved file (``benchmarks/export_index_stress.py`` repeats the
fresh-directory case).

The child is ``python -m rag.embedding.export_worker BACKEND MODEL_PATH TARGET``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from rag.errors import ConfigurationError

logger = logging.getLogger(__name__)


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
    package_root = str(Path(__file__).resolve().parents[2])  # the child imports this very code
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
    }
    command = [
        sys.executable,
        "-m",
        "rag.embedding.export_worker",
        backend,
        model_path,
        str(target),
    ]
    logger.info("exporting the %s encoder to %s in a child process (once)", backend, target)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not exported.exists():
        how = (
            f"signal {-done.returncode}"
            if done.returncode < 0
            else f"exit status {done.returncode}"
        )
        raise ConfigurationError(
            f"exporting the {backend} encoder of {model_path} into {target} failed ({how}): {done.stderr[-2000:]}"
        )
    logger.info("%s encoder exported in %.1f s", backend, time.perf_counter() - started)
