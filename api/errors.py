"""Every error leaves the API in one shape: ``{"error": {"type", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.auth import AuthenticationError, ForbiddenError
from api.schemas import ErrorResponse
from indexer.metadata_limits import MetadataLimitError
from rag.errors import (
    ConfigurationError,
    IndexMismatchError,
    LLMResponseError,
    LLMUnavailableError,
    NotFoundError,
    RAGError,
)

logger = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be parsed (not JSON, not UTF-8, broken form)"},
    401: {"model": ErrorResponse, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorResponse, "description": "The API key may not do this"},
    404: {"model": ErrorResponse, "description": "Not found"},
    413: {"model": ErrorResponse, "description": "The request body is larger than allowed (refused before it is read)"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    500: {"model": ErrorResponse, "description": "Internal error"},
    502: {"model": ErrorResponse, "description": "The model server gave an unusable answer"},
    503: {"model": ErrorResponse, "description": "The model server or the service is not available; see Retry-After"},
    504: {"model": ErrorResponse, "description": "The request took longer than the configured limit"},
}


class InvalidRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PayloadTooLarge(InvalidRequest):
    """An upload over the configured size (413)."""


def error_json(status: int, kind: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, "details": details}}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
        return error_json(422, "invalid_request", summary or "invalid request", details)

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        if isinstance(exc, PayloadTooLarge):
            return error_json(413, "payload_too_large", exc.message)
        return error_json(422, "invalid_request", exc.message)

    @app.exception_handler(MetadataLimitError)
    async def _metadata_limit(_: Request, exc: MetadataLimitError) -> JSONResponse:
        return error_json(422, "invalid_request", str(exc))  # upload metadata over the limits, before a job exists

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        kind = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_json(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(AuthenticationError)
    async def _unauthenticated(_: Request, exc: AuthenticationError) -> JSONResponse:
        return error_json(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return error_json(403, "forbidden", str(exc))

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error_json(404, "not_found", str(exc))

    @app.exception_handler(LLMUnavailableError)
    async def _llm_down(_: Request, exc: LLMUnavailableError) -> JSONResponse:
        logger.warning("model server unavailable: %s", exc)
        return error_json(
            503, "llm_unavailable", str(exc).splitlines()[0], headers={"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(LLMResponseError)
    async def _llm_bad(_: Request, exc: LLMResponseError) -> JSONResponse:
        return error_json(502, "llm_error", str(exc))

    @app.exception_handler(IndexMismatchError)
    @app.exception_handler(ConfigurationError)
    async def _config(_: Request, exc: RAGError) -> JSONResponse:
        return error_json(500, "configuration_error", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        # Reached only by an error of a middleware (api.unhandled catches the rest): the
        # server drops the connection after this, so say so.
        return error_json(500, "internal_error", "internal server error; see the service log", headers={"connection": "close"})
