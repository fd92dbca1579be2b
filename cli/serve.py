"""``rag serve``: the HTTP API (and the embedded vLLM unless an external server is set)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import setup_logging
from rag.config import load_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RAG_PORT).")] = None,
) -> None:
    """Run the HTTP API (and the embedded vLLM unless RAG_LLM_BASE_URL is set)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    setup_logging(settings, with_request_ids=True)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers go through the handler above (request ids, JSON)
        access_log=False,  # the service logs each request itself, with its id
        timeout_graceful_shutdown=10,
    )
