"""App factory. Importing this module loads no model and opens no database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import rag
from api.container import build_container
from api.docs import install_docs
from api.errors import install_error_handlers
from api.observability import ObservabilityMiddleware
from api.request_limits import BodyLimitMiddleware, body_limit_for
from api.routes import (
    ask,
    collections,
    config,
    documents,
    health,
    jobs,
    metrics,
    openai_compat,
    summarize,
)
from api.safe_json import JSONGuardMiddleware
from api.security_headers import SecurityHeadersMiddleware
from api.unhandled import UnhandledErrorMiddleware
from rag.config import Settings, load_settings

WEB_DIR = Path(__file__).resolve().parent / "web"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.container = await build_container(settings)
        try:
            yield
        finally:
            await app.state.container.close()

    app = FastAPI(
        title="Contextual RAG",
        version=rag.__version__,
        description=(
            "Answers questions from your documents with the sources cited. Retrieved chunks are "
            "sent in the BEGININPUT/BEGINCONTEXT format and every citation is matched back to "
            "the blocks that were sent."
        ),
        lifespan=lifespan,
        docs_url=None,  # api.docs serves them without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api.docs else None,
    )
    install_error_handlers(app)
    # Innermost first: the last added runs first on a request.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(JSONGuardMiddleware, max_depth=settings.api.max_json_depth)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit_for(settings.api))
    app.add_middleware(ObservabilityMiddleware, request_timeout_s=settings.api.request_timeout_s)
    app.add_middleware(SecurityHeadersMiddleware)
    for module in (
        ask,
        summarize,
        documents,
        jobs,
        collections,
        config,
        health,
        metrics,
        openai_compat,
    ):
        app.include_router(module.router)
    app.include_router(documents.upload_router)
    if settings.api.docs:
        install_docs(app)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The web page: ask, summarize, documents (it calls the API documented here)."""
        return FileResponse(WEB_DIR / "index.html")

    return app
