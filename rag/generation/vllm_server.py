"""Starts, watches and stops a local vLLM OpenAI-compatible server (CPU, float32, eager)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rag.errors import ConfigurationError, LLMUnavailableError

logger = logging.getLogger(__name__)

SERVED_MODEL_NAME = "smollm2-135m-instruct"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the service process dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: stop() still ends it on a normal exit
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedVLLMServer:
    def __init__(
        self,
        model_dir: Path,
        port: int,
        log_path: Path,
        max_model_len: int = 4096,
        kv_cache_gb: int = 1,
        served_model_name: str = SERVED_MODEL_NAME,
    ) -> None:
        if not (model_dir / "config.json").exists():
            raise ConfigurationError(
                f"no prepared generator in {model_dir}: run `rag models prepare` (make install does)"
            )
        self.model_dir = model_dir
        self.port = port
        self.log_path = log_path
        self.max_model_len = max_model_len
        self.kv_cache_gb = kv_cache_gb
        self.served_model_name = served_model_name
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--dtype", "float32",
            "--enforce-eager",
            "--max-model-len", str(self.max_model_len),
            "--disable-uvicorn-access-log",
            "--disable-log-stats",
        ]  # fmt: skip

    def start(self) -> None:
        """Call from a long-lived thread (the event loop's): the child's parent-death
        signal fires when the thread that started it ends."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gb),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        logger.info("starting embedded vLLM on port %d (log: %s)", self.port, self.log_path)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise LLMUnavailableError(
                    f"embedded vLLM exited during start-up:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    logger.info("embedded vLLM is ready at %s", self.base_url)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise LLMUnavailableError(
            f"embedded vLLM not ready after {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def restart(self) -> None:
        """Start again after a crash; what is left of the old process group (vLLM's engine
        process, which may hold the port) is killed first."""
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        self.start()

    def stop(self, grace_s: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        logger.info("stopping embedded vLLM")
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
