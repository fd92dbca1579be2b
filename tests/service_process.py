"""`rag serve` as a process of its own, as `make run` starts it (browser tests, load benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from rag.generation.vllm_server import free_port


@contextmanager
def serve_in_process(
    data_dir: Path, env: dict[str, str], startup_timeout_s: float = 300
) -> Iterator[str]:
    """Serve ``data_dir`` until ``/health`` answers 200; yields the URL. Its log is
    ``data_dir/serve.log``; the process is stopped on exit."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port)],
            env={**os.environ, "RAG_DATA_DIR": str(data_dir), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not _healthy(url):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"rag serve exited:\n{log_path.read_text(errors='replace')[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rag serve was not healthy after {startup_timeout_s:.0f} s")
                time.sleep(1)
            yield url
        finally:
            process.terminate()
            process.wait(60)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
