"""The API documentation, served from the service's own files.

FastAPI's default /docs and /redoc pages load Swagger UI and ReDoc from a CDN
and start them with an inline script: unusable offline and against a
Content-Security-Policy of ``'self'``. Here the same two pages load the scripts
shipped in the ``fastapi-offline`` package (``/docs-assets/``) and start them
from a file (``api/web/docs/``). ``RAG_API__DOCS=false`` serves neither, nor
``/openapi.json``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

DOCS_PAGES = Path(__file__).resolve().parent / "web" / "docs"
# ReDoc's styles come from styled-components, which writes <style> elements: that page alone
# allows inline styles (never inline scripts), and blob: workers for its search.
REDOC_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def docs_assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    app.mount("/docs-assets", StaticFiles(directory=docs_assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> FileResponse:
        return FileResponse(DOCS_PAGES / "swagger.html")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> FileResponse:
        return FileResponse(
            DOCS_PAGES / "redoc.html", headers={"content-security-policy": REDOC_CSP}
        )
