"""One vLLM server on the tiny model, shared by every test that only needs answers from it.

Each vLLM start costs close to a minute of a small CI machine, so modules that do not test the
embedded server's own lifecycle (start, watchdog restart, port choice) point their
settings at this one instead of letting each app start its own. It is built by the
service's own ``embedded_server`` (same model, same arguments as the embedded default),
and the settings it hands out make the app behave as in embedded mode: the same served
model name and the same tokenizer for token budgets. The ``model_server`` fixture in
conftest starts it on first use and stops it at the end of the session.
"""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.generation.vllm_server import SERVED_MODEL_NAME, EmbeddedVLLMServer, free_port

STARTUP_TIMEOUT_S = 900.0  # a busy 2-core machine


class SharedModelServer:
    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        # Chosen now, started later: modules that build their apps at import (test_fuzz)
        # need the address before any fixture runs.
        self.port = free_port()
        self._server: EmbeddedVLLMServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def tokenizer_dir(self) -> Path:
        """Where embedded mode takes its tokenizer from: the prepared generator."""
        return Settings(models_dir=self.models_dir).embedded_generator_dir

    def llm_settings(self, **overrides: object) -> dict[str, object]:
        """``llm`` settings for an app that uses this server as embedded mode would use its own."""
        return {
            "base_url": self.base_url,
            "model": SERVED_MODEL_NAME,
            "tokenizer": str(self.tokenizer_dir),
            **overrides,
        }

    def env(self) -> dict[str, str]:
        """The same, as environment variables for `rag serve` in a process of its own."""
        return {
            "RAG_LLM__BASE_URL": self.base_url,
            "RAG_LLM__MODEL": SERVED_MODEL_NAME,
            "RAG_LLM__TOKENIZER": str(self.tokenizer_dir),
        }

    def start(self, data_dir: Path) -> None:
        """Start and wait until it serves; its log is ``data_dir/logs/vllm.log``. Call from
        the main thread: the server is stopped when the thread that started it ends."""
        if self._server is not None:
            return
        from api.container import embedded_server  # the service's heavy imports: only when used

        settings = Settings(
            data_dir=data_dir, models_dir=self.models_dir, llm={"embedded_port": self.port}
        )  # type: ignore[arg-type]
        server = embedded_server(settings)
        server.start()
        try:
            server.wait_ready(STARTUP_TIMEOUT_S)
        except BaseException:
            server.stop()
            raise
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
